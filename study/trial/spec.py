"""The trial contract: `TrialSpec`, everything one trial needs, built by `study.planning.plan.trial_spec` from the
validated study spec. Its model, training, window and loss parts are the spec's own pydantic models, so the trainer
reads them as attributes and their defaults live only in `study.spec`. Torch-free; pickles (Ray ships it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

from pydantic import BaseModel

from study.spec import METRICS, LossSpec, ModelSpec, TrainingSpec, Window


@dataclass
class TrialSpec:
    run_key: str
    study: str
    configuration: str
    feature_level: str
    pretraining: str
    lam: Optional[float]  # None for a Ψ-target trial
    seed: int
    model: ModelSpec
    training: TrainingSpec
    data_path: str
    data_id: str
    window: Window
    hu_range: tuple[float, float]
    out_dir: str
    encoder_path: Optional[str] = None
    encoder_id: Optional[str] = None
    encoder_input: str = "x255"
    encoder_sha256: Optional[str] = None
    data_sha256: Optional[str] = None
    example_images: int = 2
    psi_target: Optional[float] = None  # λ is calibrated for this Ψ (and held there with lam_schedule: hold-psi)
    gpu_fraction: float = 0.0  # the share of a GPU this trial runs under (resources.gpu): checked after epoch 0
    loss: Optional[str] = None  # the `loss` factor's level; None = paper 1's MSE + λ·perceptual
    loss_spec: Optional[LossSpec] = None  # the LossSpec of `loss`: pixel terms, perceptual, adversarial, critic
    metrics: list = field(default_factory=lambda: list(METRICS))  # test metrics per image
    lam_converged: Optional[float] = None  # Ψ target with psi_calibration: converged: λ from the pilot's magnitudes

    def factors(self) -> dict:
        f = {"feature_level": self.feature_level, "pretraining": self.pretraining, "lam": self.lam,
             "psi_target": self.psi_target, "seed": self.seed}
        return f if self.loss is None else {**f, "loss": self.loss}

    def to_dict(self) -> dict:
        """Plain JSON-able data (what result.json's `spec` and the MLflow params hold): the pydantic parts as
        their `model_dump(mode="json")`, everything else as it is."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, BaseModel):
                v = v.model_dump(mode="json")
            elif isinstance(v, (list, tuple)):
                v = list(v)
            elif f.name == "lam_converged" and v is None:
                continue  # absent unless used: records and MLflow params of other trials stay as they were
            out[f.name] = v
        return out
