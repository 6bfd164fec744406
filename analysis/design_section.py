"""The report's "Design" section: trials, factors and their levels, test images, metric window, cost and data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.load import BASELINE
from analysis.markdown import md_table
from analysis.methods import window_phrase
from analysis.style import factor_name


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
        for col, label in ((c, factor_name(c)) for c in ("loss", "feature_level", "pretraining", "lam", "psi_target"))
        if col in designed and designed[col].notna().any())
    return text + ("; plus the pixel-only baseline" if (trials["configuration"] == BASELINE).any() else "")


def design_facts(st) -> dict:
    """The facts of the "Design" section (st: analysis.evidence.Study)."""
    trials, per_image = st.trials, st.per_image
    return {"counts": trials["status"].value_counts().to_dict(), "seeds": st.seeds,
            "configurations": int(trials["configuration"].nunique()), "factors": factor_levels(trials),
            "wall_s": float(trials["wall_s"].fillna(0).sum()) if "wall_s" in trials else 0.0,
            "n_images": int(per_image["image_id"].nunique()) if len(per_image) else 0,
            "patients": sorted(per_image["patient"].dropna().astype(str).unique()) if st.patients_known else [],
            "geometry": _geometry(st.results_dir, trials), "missing": trials[trials["status"] != "finished"]}


def design_lines(d: dict, st) -> list[str]:
    """The "Design" lines, with the unfinished trials listed (missing from the analysis, not silently dropped)."""
    known, patients, wall = st.patients_known, d["patients"], d["wall_s"]
    lines = ["## Design", "",
             f"- Trials: {len(st.trials)} ({', '.join(f'{v} {k}' for k, v in d['counts'].items())}); "
             f"configurations: {d['configurations']} (including the pixel-only baseline where present); "
             f"seeds: {', '.join(map(str, d['seeds']))}.",
             f"- Factors: {d['factors']}.",
             f"- Test images: {d['n_images']} "
             + (f"from {len(patients)} patient(s) ({', '.join(patients[:12])}{' …' if len(patients) > 12 else ''})"
                if known else "(synthetic phantoms: each an independent image, no patients)") + "; metric window: "
             f"{window_phrase(st.window)}.",
             f"- Cost: {wall / 3600:.2f} trial-hours ({wall:.0f} s of training and testing over all trials)."]
    if known and len(patients) < st.settings.min_patients:
        lines += [f"- **{len(patients)} test patient(s)**, fewer than {st.settings.min_patients}: every claim holds "
                  f"for these test patients only (tested with their images as the error) and does not generalise "
                  f"over patients."]
    if d["geometry"]:
        lines += [f"- Data: {d['geometry']}."]
    missing = d["missing"]
    if len(missing):
        lines += ["", f"**{len(missing)} trial(s) not finished — missing from the analysis, not silently dropped:**", ""]
        lines += [md_table(missing[["run_key", "configuration", "seed", "status", "error"]].fillna(""))]
    return lines
