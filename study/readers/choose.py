"""Which finished trials a reader study shows, and which test slices.

Trials: explicit run keys; or configurations; or the `top` K configurations by mean `metric` over their finished seeds
(direction from `study.metrics.registry.QUALITY_METRICS`); by default every configuration. A reader study needs one
network per configuration, not every seed: for a configuration we take the seed whose test mean of `metric` is the
median of its finished seeds (seeds sorted by that mean, then by seed; with an even count the lower middle one, i.e.
index (n − 1) // 2 of the ascending order) — a typical network, neither its luckiest nor its unluckiest seed.

Slices: `cases` slices of the `test` set, stratified over patients: patients in a seeded random order, each patient's
slices in a seeded random order, then one slice from each patient in turn until `cases` are taken (or the test set
is used up).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from study.apply.select import Choice, by_configuration, by_run_key, finished, listing, metric_values, trials_table
from study.errors import StudyError


def median_seed(results_dir: Path, df: pd.DataFrame, configuration: str, metric: str) -> Choice:
    """The configuration's finished seed whose test mean of `metric` is the (lower) median of its seeds."""
    done = df[(df["status"] == "finished") & (df["configuration"] == configuration)]
    if done.empty:
        configs = sorted(set(df.loc[df["status"] == "finished", "configuration"].astype(str)))
        raise StudyError(f"configuration {configuration!r} has no finished trial in {results_dir} "
                         f"(configurations: {listing(configs)})")
    done = metric_values(done, metric, results_dir).sort_values(["_v", "seed"])
    row = done.iloc[(len(done) - 1) // 2]
    choice = by_configuration(results_dir, df, configuration, int(row["seed"]))
    choice.reason = f"seed with the median test {metric} ({row['_v']:.4g}) of {len(done)} finished seed(s)"
    return choice


def top_configurations(results_dir: Path, df: pd.DataFrame, k: int, metric: str) -> list[str]:
    """The K configurations with the best mean `metric` over their finished seeds."""
    from study.metrics.registry import QUALITY_METRICS

    if k < 1:
        raise StudyError(f"--top {k}: choose at least 1 configuration")
    done = metric_values(finished(df, results_dir), metric, results_dir)
    means = done.groupby("configuration")["_v"].mean().reset_index()
    means = means.sort_values(["_v", "configuration"], ascending=[not QUALITY_METRICS[metric], True])
    return [str(c) for c in means["configuration"].head(k)]


def choose_trials(results_dir: Path, *, trials=None, configurations=None, top=None, metric="psnr") -> list[Choice]:
    """The trials to show (at most one of `trials`, `configurations`, `top`; none = every configuration)."""
    if sum(x is not None for x in (trials, configurations, top)) > 1:
        raise StudyError("choose the trials with one of --trials, --configurations, --top")
    df = trials_table(results_dir)
    if trials is not None:
        chosen = [by_run_key(results_dir, df, key) for key in trials]
    else:
        if configurations is None and top is None:
            configurations = sorted(set(finished(df, results_dir)["configuration"].astype(str)))
        names = configurations if top is None else top_configurations(results_dir, df, int(top), metric)
        chosen = [median_seed(results_dir, df, name, metric) for name in names]
    keys = [c.run_key for c in chosen]
    if not chosen or len(set(keys)) != len(keys):
        raise StudyError(f"choose distinct trials (got {listing(keys)})")
    data = {str(c.record.get("spec", {}).get("data_path")) for c in chosen}
    if len(data) != 1:
        raise StudyError(f"the chosen trials were tested on different data ({listing(sorted(data))}); choose trials "
                         "of one data set")
    return chosen


def test_slices(data_path: Path, cases: int, seed: int) -> list[dict]:
    """`cases` slices of the test set, stratified over patients: [{"index", "image_id", "patient"}]."""
    meta_path = Path(data_path) / "test_meta.json"
    if not (Path(data_path) / "test_ld.npy").is_file():
        raise StudyError(f"{data_path}: no test_ld.npy; the prepared data of the results folder are missing")
    n = len(np.load(Path(data_path) / "test_ld.npy", mmap_mode="r"))
    metas = json.loads(meta_path.read_text()) if meta_path.is_file() else [
        {"image_id": f"test-{i:04d}", "patient": ""} for i in range(n)]
    if cases < 1:
        raise StudyError(f"--cases {cases}: choose at least 1")
    rng = np.random.default_rng(seed)
    by_patient: dict[str, list[int]] = {}
    for i, m in enumerate(metas[:n]):
        by_patient.setdefault(str(m.get("patient", "")), []).append(i)
    queues = [list(rng.permutation(by_patient[p])) for p in rng.permutation(sorted(by_patient))]
    picked: list[int] = []
    while len(picked) < cases and any(queues):
        for q in queues:
            if q and len(picked) < cases:
                picked.append(int(q.pop(0)))
    return [{"index": i, "image_id": str(metas[i]["image_id"]), "patient": str(metas[i].get("patient", ""))}
            for i in picked]
