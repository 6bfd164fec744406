"""Which finished trial of a results folder to apply, and its network.

A trial is chosen by run key (or a unique prefix of one), by configuration and seed, or as the best: the
configuration with the best mean of a metric over its finished seeds (higher or lower is better as
`study.metrics.registry.QUALITY_METRICS` says), and within it the seed with the best value. The trials come from
`trials.parquet` when the folder has one, else from the trial folders' `result.json`. The network comes from the
trial's `model.pt`, else from the selected weights in its resume checkpoint (`checkpoint.pt`, older folders) built
from the model spec in its record. Every mistake is a one-line StudyError naming the value and what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from study.errors import StudyError
from study.store.results import read_record, trial_dir, trial_state

_SHOWN = 8  # values listed in an error message before "… (N more)"


@dataclass
class Choice:
    run_key: str
    configuration: str
    seed: int
    reason: str  # why this trial, one line
    folder: Path
    record: dict  # its result.json


def listing(values) -> str:
    """`a, b, c, … (5 more)`: the first few of `values`, for an error message."""
    values = [str(v) for v in values]
    if not values:
        return "none"
    more = f", … ({len(values) - _SHOWN} more)" if len(values) > _SHOWN else ""
    return ", ".join(values[:_SHOWN]) + more


def trials_table(results_dir: Path) -> pd.DataFrame:
    """One row per trial (run_key, status, configuration, seed, metric means): `trials.parquet`, else the records."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise StudyError(f"{results_dir}: no such results folder")
    table = results_dir / "trials.parquet"
    if table.is_file():
        try:
            df = pd.read_parquet(table)
        except Exception as err:  # noqa: BLE001 - truncated or foreign files raise many kinds
            raise StudyError(f"{table}: unreadable ({type(err).__name__})") from None
    else:
        rows = []
        folders = sorted(p for p in (results_dir / "trials").glob("*") if p.is_dir())
        for folder in folders:
            rec = read_record(folder) or {"status": trial_state(folder)}
            rows.append({k: v for k, v in rec.items() if k not in ("spec", "traceback")} | {"run_key": folder.name})
        df = pd.DataFrame(rows)
    missing = [c for c in ("run_key", "status", "configuration", "seed") if c not in df]
    if df.empty or missing:
        raise StudyError(f"{results_dir}: no trials (neither trials.parquet nor trials/<run_key>/result.json)")
    return df


def finished(df: pd.DataFrame, results_dir: Path) -> pd.DataFrame:
    """The finished trials of `df`; none is a one-line StudyError listing the states there are."""
    done = df[df["status"] == "finished"]
    if done.empty:
        raise StudyError(f"{results_dir}: no finished trial (states: {listing(sorted(set(df['status'])))})")
    return done


def row_choice(results_dir: Path, row, reason: str) -> Choice:
    """The chosen table row as a Choice, after checking its record says it finished."""
    key = str(row["run_key"])
    desc = f"trial {key} ({row['configuration']} · seed {int(row['seed'])})"
    if row["status"] != "finished":
        raise StudyError(f"{desc} is {row['status']}, not finished: choose a finished one")
    folder = trial_dir(results_dir, key)
    record = read_record(folder)
    if record is None or record.get("status") != "finished":
        raise StudyError(f"{folder}: no finished result.json although trials.parquet says finished; rerun `study run`")
    return Choice(key, str(row["configuration"]), int(row["seed"]), reason, folder, record)


def by_run_key(results_dir: Path, df: pd.DataFrame, key: str) -> Choice:
    rows = df[df["run_key"] == key]
    if rows.empty:
        rows = df[df["run_key"].astype(str).str.startswith(key)] if len(key) >= 4 else rows
    if len(rows) != 1:
        what = "matches several trials" if len(rows) > 1 else "is not a trial"
        keys = rows["run_key"] if len(rows) > 1 else finished(df, results_dir)["run_key"]
        raise StudyError(f"run key {key!r} {what} in {results_dir} (finished: {listing(sorted(keys))})")
    return row_choice(results_dir, rows.iloc[0], f"run key {key}")


def by_configuration(results_dir: Path, df: pd.DataFrame, configuration: str | None, seed: int | None) -> Choice:
    configs = sorted(set(df["configuration"].astype(str)))
    if configuration is None:
        raise StudyError(f"--seed {seed} needs --configuration (configurations: {listing(configs)})")
    rows = df[df["configuration"] == configuration]
    if rows.empty:
        raise StudyError(f"configuration {configuration!r} is not in {results_dir} (configurations: {listing(configs)})")
    done = sorted(int(s) for s in rows.loc[rows["status"] == "finished", "seed"])
    if seed is None:
        raise StudyError(f"--configuration {configuration!r} needs --seed (finished seeds: {listing(done)})")
    rows = rows[pd.to_numeric(rows["seed"], errors="coerce") == int(seed)]
    if rows.empty:
        raise StudyError(f"configuration {configuration!r} has no seed {seed} (finished seeds: {listing(done)})")
    return row_choice(results_dir, rows.iloc[0], f"configuration {configuration!r}, seed {seed}")


def metric_values(done: pd.DataFrame, metric: str, results_dir: Path) -> pd.DataFrame:
    """The trials of `done` that measured `metric`, its value in column `_v`; an unknown or unmeasured metric is a
    one-line StudyError listing the metrics measured there."""
    from study.metrics.registry import QUALITY_METRICS

    measured = [m for m in QUALITY_METRICS if m in done and pd.to_numeric(done[m], errors="coerce").notna().any()]
    if metric not in QUALITY_METRICS:
        raise StudyError(f"unknown metric {metric!r}: choose one of {listing(measured)} (measured in {results_dir})")
    if metric not in measured:
        raise StudyError(f"metric {metric!r} was not measured in {results_dir} (measured: {listing(measured)})")
    return done.assign(_v=pd.to_numeric(done[metric], errors="coerce")).dropna(subset=["_v"])


def by_best(results_dir: Path, df: pd.DataFrame, metric: str) -> Choice:
    """The configuration with the best mean `metric` over its finished seeds; within it, the best seed."""
    from study.metrics.registry import QUALITY_METRICS

    done = metric_values(finished(df, results_dir), metric, results_dir)
    higher = QUALITY_METRICS[metric]
    means = done.groupby("configuration")["_v"].agg(["mean", "count"]).reset_index()
    means = means.sort_values(["mean", "configuration"], ascending=[not higher, True])
    best = means.iloc[0]
    seeds = done[done["configuration"] == best["configuration"]].sort_values(["_v", "seed"], ascending=[not higher, True])
    row = seeds.iloc[0]
    runner = (f"; next {means.iloc[1]['configuration']!r} {means.iloc[1]['mean']:.4g}" if len(means) > 1 else "")
    reason = (f"best mean {metric} ({'higher' if higher else 'lower'} is better) over its {int(best['count'])} finished "
              f"seed(s): {best['mean']:.4g}{runner}; seed {int(row['seed'])} has its best {metric}, {row['_v']:.4g}")
    return row_choice(results_dir, row, reason)


def choose(results_dir: Path, run_key: str | None = None, configuration: str | None = None, seed: int | None = None,
           best: str | None = None) -> Choice:
    """The trial to apply: exactly one of `run_key`, `configuration` + `seed`, `best` (a metric name)."""
    ways = [run_key is not None, configuration is not None or seed is not None, best is not None]
    if sum(ways) != 1:
        raise StudyError("choose the model with one of --run-key KEY, --configuration NAME --seed S, --best METRIC")
    df = trials_table(results_dir)
    if run_key is not None:
        return by_run_key(results_dir, df, run_key)
    if best is not None:
        return by_best(results_dir, df, best)
    return by_configuration(results_dir, df, configuration, seed)


def load_trial_model(choice: Choice, device="cpu"):
    """(network in eval mode on `device`, metadata as `study.trial.model_file.load_model` gives it plus `source`, the
    file read) from the trial's `model.pt`, else from the selected weights in its `checkpoint.pt`."""
    from study.trial.model_file import MODEL_FILE, load_model

    path = choice.folder / MODEL_FILE
    if path.is_file():
        model, meta = load_model(path, device)
        return model, {**meta, "source": str(path)}
    path = choice.folder / "checkpoint.pt"
    if not path.is_file():
        raise StudyError(f"{choice.folder}: neither {MODEL_FILE} nor checkpoint.pt: this trial's weights were not kept")
    return _from_checkpoint(choice, path, device)


def _from_checkpoint(choice: Choice, path: Path, device):
    import torch

    from study.models import build_model
    from study.spec import ModelSpec

    try:
        best = torch.load(path, map_location=device, weights_only=True)["best"]
        weights, epoch = best["model"], int(best["epoch"])
    except Exception as err:  # noqa: BLE001 - whatever it holds, it has no selected weights
        raise StudyError(f"{path}: no selected weights in it ({type(err).__name__}: {err})".splitlines()[0]) from None
    spec = choice.record.get("spec") or {}
    if "model" not in spec or "hu_range" not in spec:
        raise StudyError(f"{choice.folder / 'result.json'}: its spec has no model or hu_range; cannot rebuild the network")
    model_spec = ModelSpec.model_validate(spec["model"])
    model = build_model(model_spec)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise StudyError(f"{path}: weights do not fit model {model_spec.model_dump()} ({str(err).splitlines()[0]})") from None
    meta = {"model_spec": model_spec.model_dump(mode="json"), "hu_range": [float(v) for v in spec["hu_range"]],
            "run_key": choice.run_key, "configuration": choice.configuration, "seed": choice.seed, "epoch": epoch,
            "study": spec.get("study"), "source": str(path)}
    return model.to(device).eval(), meta
