"""The report's "Provenance" section: where the numbers came from, in the document a reader sees.

Everything is read from what the trials recorded (`trials.parquet`: git commit, package versions, finish time, device,
data and encoder ids) and from the results folder (`study.yaml`, `identity.json`); the versions of the packages that
wrote the report itself are added, since the statistics depend on them too. Also written as `provenance.json`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd

from analysis.markdown import md_table

REPORT_PACKAGES = ("study", "numpy", "pandas", "scipy", "statsmodels", "scikit-posthocs", "matplotlib")


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _counted(values: pd.Series) -> str:
    """'a' when every trial has the same value, else 'a (40 trials), b (17 trials)'."""
    counts = values.dropna().astype(str).value_counts()
    if len(counts) <= 1:
        return counts.index[0] if len(counts) else "not recorded"
    return ", ".join(f"{v} ({n} trials)" for v, n in counts.items())


def trial_versions(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per package: the version(s) the trials recorded, with trial counts where they differ."""
    parsed = [json.loads(v) for v in trials.get("versions", pd.Series(dtype=str)).dropna()]
    names = sorted({k for v in parsed for k in v})
    return pd.DataFrame([{"package": name, "version": _counted(pd.Series([v.get(name) for v in parsed]))}
                         for name in names])


def encoder_ids(trials: pd.DataFrame) -> pd.DataFrame:
    """Per pretraining: the encoder weights' id and sha256 the trials used (the pixel-only baseline has none)."""
    if "pretraining" not in trials or "encoder_id" not in trials:
        return pd.DataFrame(columns=["pretraining", "encoder_id", "sha256"])
    used = trials[trials["encoder_id"].notna()]
    rows = [{"pretraining": pre, "encoder_id": _counted(g["encoder_id"]),
             "sha256": _counted(g.get("encoder_sha256", pd.Series(dtype=str)))}
            for pre, g in used.groupby("pretraining")]
    return pd.DataFrame(rows, columns=["pretraining", "encoder_id", "sha256"])


def provenance(results_dir: Path, trials: pd.DataFrame) -> dict:
    """The facts of the section, as a dict (also written as provenance.json)."""
    from study.store.provenance import git_commit, versions  # torch-free

    spec = results_dir / "study.yaml"
    ident = results_dir / "identity.json"
    done = trials[trials["status"] == "finished"] if "status" in trials else trials
    commits = done.get("git_commit", pd.Series(dtype=str)).dropna().astype(str)
    finished = done.get("finished_at", pd.Series(dtype=float)).dropna()
    return {
        "study": json.loads(ident.read_text()) if ident.is_file() else {"name": results_dir.name},
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest() if spec.is_file() else None,
        "git_commits": commits.value_counts().to_dict(),
        "dirty": bool(commits.str.endswith("-dirty").any()),
        "trials_finished": [_utc(finished.min()), _utc(finished.max())] if len(finished) else None,
        "devices": done.get("device", pd.Series(dtype=str)).dropna().astype(str).value_counts().to_dict(),
        "data": sorted({(i, s) for i, s in zip(done.get("data_id", []), done.get("data_sha256", []))
                        if isinstance(i, str)}),
        "encoders": encoder_ids(done).to_dict("records"),
        "trial_versions": trial_versions(done).to_dict("records"),
        "report": {"written": _utc(dt.datetime.now(dt.timezone.utc).timestamp()), "git_commit": git_commit(),
                   "versions": versions(REPORT_PACKAGES)},
    }


def provenance_lines(p: dict, results_dir: Path, out: Path) -> list[str]:
    """Markdown lines of the "Provenance" section (p: `provenance`); writes `out/provenance.json`."""
    (out / "provenance.json").write_text(json.dumps(p, indent=1))
    commits = ", ".join(f"`{c}` ({n} trials)" if len(p["git_commits"]) > 1 else f"`{c}`"
                        for c, n in p["git_commits"].items()) or "not recorded"
    dirty = "" if not p["git_commits"] else (
        " **Uncommitted changes** were present in at least one trial's checkout (`-dirty`): the commit alone does "
        "not reproduce it.") if p["dirty"] else " Clean checkout (no uncommitted changes)."
    study = p["study"]
    when = f"{p['trials_finished'][0]} – {p['trials_finished'][1]}" if p["trials_finished"] else "not recorded"
    lines = ["## Provenance", "",
             f"- Study: {study.get('name', results_dir.name)}"
             + (f" (id `{study['study_id']}`, created {_utc(study['created'])})" if "study_id" in study else "")
             + (f"; spec `study.yaml` sha256 `{p['spec_sha256']}`." if p["spec_sha256"] else "; no `study.yaml`."),
             f"- Code: git commit {commits}.{dirty}",
             f"- Trials finished: {when}; devices: "
             f"{', '.join(f'{d} ({n})' for d, n in p['devices'].items()) or 'not recorded'}.",
             f"- Data: {'; '.join(f'id `{i}` (sha256 `{s}`)' for i, s in p['data']) or 'not recorded'}.",
             f"- Report written {p['report']['written']} from commit `{p['report']['git_commit']}` with "
             + ", ".join(f"{k} {v}" for k, v in p["report"]["versions"].items()) + ".", ""]
    enc = pd.DataFrame(p["encoders"])
    if len(enc):
        lines += ["Encoder weights (id: the study's key of the weights; sha256 of the weights file):", "",
                  md_table(enc), ""]
    ver = pd.DataFrame(p["trial_versions"])
    if len(ver):
        lines += ["Package versions the trials ran with:", "", md_table(ver), ""]
    return lines
