"""The report's "Design" section: trials, factors and their levels, test images, metric window, cost and data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.claims import Settings
from analysis.load import BASELINE
from analysis.markdown import md_table
from analysis.methods import window_phrase


def _geometry(results_dir: Path, trials: pd.DataFrame) -> str:
    """The data's acquisition geometry from the prepared data's manifest (the study's data id)."""
    ids = trials["data_id"].dropna().unique() if "data_id" in trials else []
    for did in ids:
        path = results_dir / "data" / f"data-{did}" / "manifest.json"
        if path.is_file():
            m = json.loads(path.read_text())
            return f"{m.get('geometry', '')}; slices per split {m.get('splits', {})}"
    return ""


def factor_levels(trials: pd.DataFrame) -> str:
    """'feature level block3_conv2, block5_conv4; λ 0.01, 0.1; plus the pixel-only baseline': the levels of the
    designed configurations; the baseline's placeholders (λ = 0, pretraining "none") are not levels."""
    designed = trials[trials["configuration"] != BASELINE]
    text = "; ".join(
        f"{label} {', '.join(sorted({f'{v:g}' if isinstance(v, float) else str(v) for v in designed[col].dropna() if v != 'none'}))}"
        for col, label in (("loss", "loss"), ("feature_level", "feature level"), ("pretraining", "pretraining"), ("lam", "λ"),
                           ("psi_target", "Ψ target")) if col in designed and designed[col].notna().any())
    return text + ("; plus the pixel-only baseline" if (trials["configuration"] == BASELINE).any() else "")


def design_section(results_dir: Path, trials: pd.DataFrame, per_image: pd.DataFrame, window: dict,
                   settings: Settings, known: bool) -> list[str]:
    """The "Design" lines, with the unfinished trials listed (missing from the analysis, not silently dropped)."""
    counts = trials["status"].value_counts().to_dict()
    seeds = sorted(trials["seed"].unique().tolist())
    factor_text = factor_levels(trials)
    wall = trials["wall_s"].fillna(0).sum() if "wall_s" in trials else 0.0
    patients = sorted(per_image["patient"].dropna().astype(str).unique()) if known else []
    lines = ["## Design", "",
             f"- Trials: {len(trials)} ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
             f"configurations: {trials['configuration'].nunique()} (including the pixel-only baseline where present); "
             f"seeds: {', '.join(map(str, seeds))}.",
             f"- Factors: {factor_text}.",
             f"- Test images: {per_image['image_id'].nunique() if len(per_image) else 0} "
             + (f"from {len(patients)} patient(s) ({', '.join(patients[:12])}{' …' if len(patients) > 12 else ''})"
                if known else "(synthetic phantoms: each an independent image, no patients)") + "; metric window: "
             f"{window_phrase(window)}.",
             f"- Cost: {wall / 3600:.2f} trial-hours ({wall:.0f} s of training and testing over all trials)."]
    if known and len(patients) < settings.min_patients:
        lines += [f"- **{len(patients)} test patient(s)**, fewer than {settings.min_patients}: every claim holds for "
                  f"these test patients only (tested with their images as the error) and does not generalise over "
                  f"patients."]
    geometry = _geometry(results_dir, trials)
    if geometry:
        lines += [f"- Data: {geometry}."]
    missing = trials[trials["status"] != "finished"]
    if len(missing):
        lines += ["", f"**{len(missing)} trial(s) not finished — missing from the analysis, not silently dropped:**", ""]
        lines += [md_table(missing[["run_key", "configuration", "seed", "status", "error"]].fillna(""))]
    return lines
