"""A results folder's spec, read once: the validated `analysis:` settings, the metric window, whether the test set
knows its patients. Torch-free."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.claims import Settings


def spec_of(results_dir: Path) -> dict:
    import yaml

    path = results_dir / "study.yaml"
    spec = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return spec if isinstance(spec, dict) else {}


def analysis_spec_of(results_dir: Path, spec: dict | None = None):
    """The study's `analysis:` section as study.spec.AnalysisSpec, validated once; a bad value is a one-line error."""
    from pydantic import ValidationError

    from study.spec import AnalysisSpec
    from study.errors import StudyError

    raw = (spec_of(results_dir) if spec is None else spec).get("analysis") or {}
    try:
        return AnalysisSpec.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise StudyError(f"{results_dir / 'study.yaml'}: field 'analysis.{where}': {e['msg']} (got {e.get('input')!r})") from None


def settings_of(results_dir: Path, spec: dict | None = None, a=None) -> Settings:
    """The claims' settings (α, smallest effects, replication) from the study's validated `analysis:` section; an
    adaptive study's α is what its stage-1 screen left (α₂ = α − α₁)."""
    a = a or analysis_spec_of(results_dir, spec)
    adaptive = (spec_of(results_dir) if spec is None else spec).get("adaptive")
    alpha = a.alpha
    if isinstance(adaptive, dict):  # an adaptive study: its stage-1 screen spent α₁ of α (analysis.adaptive)
        from analysis.adaptive import final_alpha

        alpha = final_alpha(a.alpha, adaptive.get("screen_alpha"))
    return Settings(alpha=alpha, min_effect=dict(a.min_effect), min_seeds=a.min_seeds, min_patients=a.min_patients,
                    psi_min_effect=a.psi_min_effect)


def patients_known(spec: dict, per_image: pd.DataFrame) -> bool:
    """Whether the test set knows its patients: real data (mayo, tcia, dicom) do, the synthetic phantoms do not."""
    data = spec.get("data")
    source = data.get("source", "phantom") if isinstance(data, dict) else None  # "phantom" is the spec's default
    if source == "phantom" or "patient" not in per_image:
        return False
    return not per_image["patient"].astype(str).eq("phantom").all()


def window_of(spec: dict) -> dict:
    """The study's metric window (study.spec.Window: centre, width, bits) with its `label`, `low` and `high`."""
    from study.spec import WINDOWS, Window  # torch-free

    w = spec.get("metric_window", "abdomen")
    if isinstance(w, str):
        c, width = WINDOWS[w]
        w = {"name": w, "center": c, "width": width}
    win = Window.model_validate(w)
    return {**win.model_dump(), "label": win.label, "low": win.low, "high": win.high}
