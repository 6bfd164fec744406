"""The study spec (pydantic): factors, resources, tracking, search, analysis and the whole `StudySpec`. The only
place their defaults live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from study.encoders.layers import LAYER_END
from study.spec.adaptive import Adaptive
from study.spec.metric_names import CT_METRICS, METRICS, MIN_EFFECT, MetricName
from study.spec.parts import (BUILTIN_LOSSES, BUILTIN_PRETRAININGS, DataSpec, EncoderSpec, LossSpec, ModelSpec,
                              TrainingSpec, WINDOWS, Window, NAME_PATTERN, StrictModel)
from study.spec.slurm import SlurmSpec

class Factors(StrictModel):
    """The grid: one trial per combination of the factors' levels (λ = 0 needs no encoder, so there is one
    pixel-only baseline per seed)."""

    feature_level: list[str] = Field(default_factory=lambda: ["block3_conv2"], min_length=1,
                                     description="VGG-19 layers: Keras names (block3_conv2, post-ReLU) or torchvision "
                                                 "names (relu3_2; conv3_2 for pre-ReLU)")
    pretraining: list[str] = Field(default_factory=lambda: ["random"], min_length=1,
                                   description="encoder weightings: random, imagenet or a name under `encoders:`")
    lam: list[float] = Field(default_factory=lambda: [0.0, 0.1], min_length=1,
                             description="λ, the weight of the perceptual term (0: the pixel-only baseline)")
    psi_target: list[float] = Field(default_factory=list, description="Ψ targets: λ calibrated inside each trial")
    loss: list[str] = Field(default_factory=list, description="named losses (built in or under `losses:`); empty = "
                                                              "paper 1's MSE + λ·perceptual")
    seed: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(default_factory=lambda: [0], min_length=1,
                                                                  description="seeds 0 … 2³² − 1 (numpy's range)")

    @field_validator("feature_level")
    @classmethod
    def _levels(cls, v):
        for name in v:
            if name not in LAYER_END:
                raise ValueError(f"unknown VGG-19 layer {name!r} (use Keras names like block3_conv2 or relu3_2)")
        return v

    @field_validator("psi_target")
    @classmethod
    def _psis(cls, v):
        for x in v:
            if not 0 < x < 1:
                raise ValueError(f"a Ψ target must be in (0, 1), got {x!r}")
        return v

    @field_validator("lam")
    @classmethod
    def _lams(cls, v):
        for x in v:
            if not (x >= 0 and x < float("inf")):
                raise ValueError(f"λ must be a finite number ≥ 0, got {x!r}")
        return v


class Resources(StrictModel):
    """What each trial asks of the backend."""

    cpu: float = Field(1.0, gt=0, description="CPUs per trial")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; fractional GPUs pack several trials per GPU "
                                              "(0.25: four)")
    retries: int = Field(1, ge=0, description="re-runs of a trial that crashed (error, lost worker), each from its "
                                              "last checkpoint; a diverged trial (non-finite loss) is not retried")


class Tracking(StrictModel):
    """MLflow: one parent run per study, one child run per run key."""

    enabled: bool = True
    uri: Optional[str] = Field(None, description="default: sqlite:///<output>/mlflow.db")
    experiment: Optional[str] = Field(None, description="default: the study name")
    example_images: int = Field(2, ge=0)


class SearchSpec(StrictModel):
    """Refinement after the exhaustive grid: Optuna (through Ray Tune's OptunaSearch) over a continuous Ψ target or
    log λ for each (feature level, pretraining), maximising a validation metric. Its Optuna storage lives in the
    results folder, so an interrupted refinement resumes; the grid itself is never searched or early-stopped."""

    method: Literal["optuna"] = "optuna"
    over: Literal["psi_target", "log_lam"] = "psi_target"
    low: float = Field(0.5, description="psi_target: lowest Ψ; log_lam: lowest λ")
    high: float = Field(0.99, description="psi_target: highest Ψ; log_lam: highest λ")
    budget: int = Field(8, ge=1, description="trials per (feature level, pretraining)")
    metric: Literal["val_psnr"] = "val_psnr"
    seed: int = 0

    @model_validator(mode="after")
    def _bounds(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.over == "psi_target" and not (0 < self.low and self.high < 1):
            raise ValueError(f"Ψ bounds must lie in (0, 1), got [{self.low}, {self.high}]")
        if self.over == "log_lam" and self.low <= 0:
            raise ValueError(f"λ bounds must be > 0, got [{self.low}, {self.high}]")
        return self


class Prior(StrictModel):
    """Stated variance components of one metric (in its unit) and the test set, for `study plan` without a pilot."""

    network_sd: float = Field(ge=0, description="SD between trained networks (seeds) of one configuration, of their "
                              "test-set means")
    patient_sd: float = Field(0.0, ge=0, description="SD of a configuration × patient interaction")
    image_sd: float = Field(0.0, ge=0, description="SD of a configuration × image interaction")
    residual_sd: float = Field(gt=0, description="SD of a network's per-image score around its configuration's")
    patients: int = Field(1, ge=1, description="test patients")
    slices: int = Field(ge=2, description="test slices per patient")


class AnalysisSpec(StrictModel):
    """How the report turns results into guidelines."""

    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error rate of each correction family")
    min_effect: dict[MetricName, float] = Field(default_factory=dict, description="smallest difference worth acting "
                                                "on, per metric in its unit (defaults: MIN_EFFECT)")
    min_seeds: int = Field(3, ge=2, description="networks each side of a claim's contrast must rest on (a pair of "
                           "configurations: their seeds; a factor level: the networks of all its configurations); "
                           "below it the claim is reported as insufficiently replicated")
    min_patients: int = Field(5, ge=1, description="test patients from which claims generalise over patients "
                              "(each contrast tested against its own between-patient variation); with fewer, every "
                              "claim holds for these test patients only")
    psi_min_effect: float = Field(0.05, gt=0, lt=1, description="smallest difference in variance explained "
                                  "(within feature level × pretraining) for 'Ψ explains the metric better than λ'")
    prior: dict[MetricName, Prior] = Field(default_factory=dict, description="stated variance components per metric, "
                                           "for `study plan` without --pilot")
    paper1: bool = Field(False, description="add paper 1's own analysis to the report (every pair of configurations "
                         "by an uncorrected Wilcoxon on per-image SSIM of the first seed's networks, |Cohen's d|), "
                         "beside the network-level verdicts, and its published loss magnitudes beside the measured ones")
    paper1_encoders: dict[Literal["imagenet", "medical"], str] = Field(
        default_factory=lambda: {"imagenet": "imagenet"}, description="which pretraining (a factors.pretraining name) "
        "plays paper 1's ImageNet and its medical VGG-19, for the published loss magnitudes")

    @field_validator("min_effect")
    @classmethod
    def _positive(cls, v):
        bad = {k: x for k, x in v.items() if not x > 0}
        if bad:
            raise ValueError(f"smallest effects must be > 0, got {bad}")
        return v

    def effect(self, metric: str) -> float:
        return float(self.min_effect.get(metric, MIN_EFFECT.get(metric, 0.0)))


class StudySpec(StrictModel):
    """A study: one YAML file. Every field is checked; a wrong one is reported in one line naming the file, field
    and value."""

    name: str = Field(description="letters, digits, '_', '-', '.' (max 64), starting with a letter or digit")
    description: str = Field("", description="free text about the study")
    output: Optional[str] = Field(None, description="default: results/<name>")
    backend: Literal["ray", "local"] = Field("ray", description="where trials run: Ray Tune, or local (sequential, "
                                                                "in-process)")
    max_concurrent: Optional[int] = Field(None, ge=1, description="trials at once (default: as resources allow)")
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    training: TrainingSpec = TrainingSpec()
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict, description="named weightings, used as levels "
                                             "of factors.pretraining")
    factors: Factors = Factors()
    metric_window: Union[str, Window] = Field("abdomen", validate_default=True, description="the HU window of the "
                                              "full-reference metrics: abdomen, chest, head, full or {center, width}")
    metrics: list[MetricName] = Field(default_factory=lambda: list(METRICS), description="test metrics per image "
                                      "(psnr, ssim and rmse_hu are always computed)")
    losses: dict[str, LossSpec] = Field(default_factory=dict, description="named losses for factors.loss")
    resources: Resources = Resources()
    tracking: Tracking = Tracking()
    search: Optional[SearchSpec] = Field(None, description="Optuna refinement after the grid; needs the search "
                                         "extra (pip install 'study[search]') and backend: ray")
    slurm: SlurmSpec = SlurmSpec()
    analysis: AnalysisSpec = AnalysisSpec()
    adaptive: Optional[Adaptive] = Field(None, description="seeds in two stages: stage 2 adds seeds only where the "
                                         "stage-1 networks say they are needed (docs/planning.md)")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not NAME_PATTERN.match(v):
            raise ValueError("use letters, digits, '_', '-', '.' (max 64), starting with a letter or digit")
        return v

    @field_validator("metric_window")
    @classmethod
    def _window(cls, v):
        if isinstance(v, str):
            if v not in WINDOWS:
                raise ValueError(f"unknown window {v!r}; use one of {sorted(WINDOWS)} or {{center, width}}")
            c, w = WINDOWS[v]
            return Window(name=v, center=c, width=w)
        return v

    @model_validator(mode="after")
    def _pretrainings(self):
        for name in self.factors.pretraining:
            if name not in BUILTIN_PRETRAININGS and name not in self.encoders:
                raise ValueError(
                    f"factors.pretraining: {name!r} is neither built in {BUILTIN_PRETRAININGS} nor defined under 'encoders'"
                )
        for name in self.encoders:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"encoders: bad name {name!r}")
        for name in self.factors.loss:
            if name not in self.losses and name not in BUILTIN_LOSSES:
                raise ValueError(f"factors.loss: {name!r} is neither built in {sorted(BUILTIN_LOSSES)} nor defined "
                                 f"under 'losses'")
            if self.loss(name).perceptual and not (any(x > 0 for x in self.factors.lam) or self.factors.psi_target):
                raise ValueError(f"factors.loss: {name!r} has a perceptual term but factors.lam has no λ > 0 and "
                                 f"factors.psi_target is empty")
            if self.loss(name).perceptual and self.factors.psi_target and not any(self.loss(name).terms.values()):
                raise ValueError(f"factors.loss: {name!r} has no pixel term, so a Ψ target (the perceptual share of "
                                 f"pixel + perceptual) cannot be reached")
        if self.data.source == "phantom" and self.training.patch_size > self.data.size:
            raise ValueError(f"training.patch_size {self.training.patch_size} is larger than the {self.data.size}² "
                             f"phantom slices (data.size)")
        if ("niqe" in self.metrics or "niqe" in self.training.val_metrics) and self.data.source == "phantom" \
                and self.data.size < 192:
            raise ValueError(f"metric niqe scores 96×96 patches at full and half resolution, so it needs slices of at "
                             f"least 192 pixels; data.size is {self.data.size} (ct_niqe scales its patches and works)")
        ct = sorted(set(CT_METRICS) & (set(self.metrics) | set(self.training.val_metrics)))
        if ct and self.data.source != "phantom":
            raise ValueError(f"metrics {ct} need the phantom's lesion and outline geometry (data.source: phantom); "
                             f"the source is {self.data.source!r}")
        self._check_adaptive()
        if self.search and self.factors.loss:
            raise ValueError("search: the Optuna refinement tunes λ/Ψ of paper 1's grid; it does not combine with "
                             "factors.loss")
        for name in self.losses:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$", name):
                raise ValueError(f"losses: bad name {name!r}")
        return self

    def _check_adaptive(self) -> None:
        a = self.adaptive
        if a is None:
            return
        if a.metric is not None and a.metric not in self.metrics:
            raise ValueError(f"adaptive.metric: {a.metric!r} is not one of metrics {self.metrics}")
        if a.min_seeds < self.analysis.min_seeds:
            raise ValueError(f"adaptive.min_seeds ({a.min_seeds}) is below analysis.min_seeds "
                             f"({self.analysis.min_seeds}): stage 1 alone could then make no claim")
        if a.screen_alpha is not None and not a.screen_alpha < self.analysis.alpha:
            raise ValueError(f"adaptive.screen_alpha ({a.screen_alpha}) must be below analysis.alpha "
                             f"({self.analysis.alpha})")
        if self.search:
            raise ValueError("adaptive: the Optuna refinement (search) does not combine with adaptive seeds")
        if self.training.psi_pilot == "self":
            raise ValueError("adaptive: training.psi_pilot: self would change its Ψ trials' run keys at stage 2 "
                             "(their λ comes from every fixed-λ seed); use a pilot folder")

    @property
    def adaptive_metric(self) -> str:
        return (self.adaptive.metric if self.adaptive and self.adaptive.metric else self.metrics[0])

    @property
    def window(self) -> Window:
        assert isinstance(self.metric_window, Window)
        return self.metric_window

    def output_dir(self, override: str | Path | None = None) -> Path:
        return Path(override or self.output or Path("results") / self.name)

    def loss(self, name: str) -> LossSpec:
        return self.losses[name] if name in self.losses else BUILTIN_LOSSES[name]

    def encoder(self, name: str) -> EncoderSpec:
        if name in self.encoders:
            return self.encoders[name]
        return EncoderSpec(source=name)  # built-ins
