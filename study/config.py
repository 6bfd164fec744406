"""The study spec: pydantic models loaded from YAML. The only place defaults live.

Every mistake in a spec becomes a `StudyError` whose one-line message names the file, the field and the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from study.errors import StudyError
from study.layers import LAYER_END
from study.yaml_io import read_yaml

#: named display windows (centre, width) in HU
WINDOWS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "chest": (-600.0, 1500.0),
    "head": (40.0, 80.0),
}
BUILTIN_PRETRAININGS = ("random", "imagenet")
METRICS = ("psnr", "ssim", "rmse_hu")  # the default test metrics
#: every metric a spec may ask for (study.metrics.QUALITY_METRICS; kept here so that config stays torch-free)
CT_METRICS = ("noise_std", "cnr", "edge_width")  # need the phantom's label map and body outline
MetricName = Literal["psnr", "ssim", "rmse_hu", "ms_ssim", "vif", "gmsd", "noise_std", "cnr", "edge_width"]
#: loss terms a `losses:` composition combines by name (study.losses.PIXEL_TERMS)
PixelTerm = Literal["mse", "l1", "charbonnier", "ssim", "ms_ssim", "sobel"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """Display window in which PSNR and SSIM are computed."""

    name: str = "abdomen"
    center: float = WINDOWS["abdomen"][0]
    width: float = Field(WINDOWS["abdomen"][1], gt=0)

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2


#: paper 1's patient split of the AAPM-Mayo 2016 data
MAYO_SPLIT = {"train": ["L067", "L310", "L286", "L333", "L291", "L109", "L143"], "val": ["L192"], "test": ["L096", "L506"]}


class DataSpec(_Strict):
    """Where the low/full-dose pairs come from, and how they are normalised.

    - `phantom` (default): embedded abdomen-like phantoms with projection-domain low dose (+ the real CT slices that
      pydicom and pydicom-data ship, as an extra "real" test set).
    - `mayo`: AAPM-Mayo 2016 Grand Challenge folders, `root/<template>` per patient, dose, thickness and kernel.
    - `tcia`: TCIA LDCT-and-Projection-data image series listed in a CSV manifest (patient, split, full, low).
    - `dicom-simulated`: any full-dose CT series under `root`; low dose made by the simulator.
    Splits are by patient, never by slice.
    """

    source: Literal["phantom", "mayo", "tcia", "dicom-simulated"] = "phantom"
    # phantom
    size: int = Field(128, ge=32, le=1024, description="phantom slice size in pixels (square)")
    fov_mm: float = Field(350.0, gt=0, description="phantom field of view; sets the pixel size of the line integrals")
    n_train: int = Field(32, ge=1)
    n_val: int = Field(8, ge=1)
    n_test: int = Field(24, ge=2)
    real_slices: bool = Field(True, description="phantom: also test on the real CT slices pydicom ships")
    # DICOM sources
    root: Optional[str] = Field(None, description="mayo / tcia / dicom-simulated: data root folder")
    manifest: Optional[str] = Field(None, description="tcia: CSV with columns patient, split, full, low")
    splits: Optional[dict[Literal["train", "val", "test"], list[str]]] = Field(
        None, description="patient ids per split (mayo default: paper 1's split)")
    thickness: list[Literal["1mm", "3mm"]] = Field(default_factory=lambda: ["1mm", "3mm"])
    kernel: list[Literal["B30", "D45"]] = Field(default_factory=lambda: ["B30", "D45"])
    template: str = Field("{patient}/{dose}_{thickness}{kernel}",
                          description="mayo folder layout; dose = full|quarter, kernel = '' (B30) | '_sharp' (D45)")
    slice_step: int = Field(1, ge=1, description="use every k-th slice of a series")
    max_slices: Optional[int] = Field(None, ge=1, description="at most this many slices per series")
    # simulation (phantom, dicom-simulated)
    dose_fraction: float = Field(0.25, gt=0, le=1, description="low dose / full dose")
    photons: float = Field(1e5, gt=0, description="incident photons per ray at full dose (I0)")
    electronic_noise: float = Field(10.0, ge=0, description="std of Gaussian electronic noise, in photon counts")
    n_angles: Optional[int] = Field(None, ge=16, description="projection angles over 180°; default 1.5 × size")
    seed: int = 0
    workers: Optional[int] = Field(None, ge=1, description="processes for simulation (default: all cores); "
                                                           "does not change the data")
    # normalisation
    hu_min: float = -1024.0
    hu_max: float = 3072.0
    clip: bool = Field(False, description="clip HU to [hu_min, hu_max] before normalising (paper 1: no)")

    @model_validator(mode="after")
    def _range(self):
        if self.hu_max <= self.hu_min:
            raise ValueError(f"hu_max ({self.hu_max}) must exceed hu_min ({self.hu_min})")
        if self.source != "phantom" and not self.root:
            raise ValueError(f"source {self.source!r} needs 'root' (the data folder)")
        if self.source == "tcia" and not self.manifest:
            raise ValueError("source 'tcia' needs 'manifest' (CSV with columns patient, split, full, low)")
        if self.source == "dicom-simulated" and not self.splits:
            raise ValueError("source 'dicom-simulated' needs 'splits' (patient ids for train, val and test)")
        if self.splits is not None:
            missing = [k for k in ("train", "val", "test") if not self.splits.get(k)]
            if missing:
                raise ValueError(f"splits: no patients for {missing}")
            seen: dict[str, str] = {}
            for split, ids in self.splits.items():
                for pid in ids:
                    if pid in seen:
                        raise ValueError(f"patient {pid!r} is in both {seen[pid]!r} and {split!r}: split by patient")
                    seen[pid] = split
        return self

    def patient_splits(self) -> dict[str, list[str]]:
        if self.splits:
            return {k: list(v) for k, v in self.splits.items()}
        return {k: list(v) for k, v in MAYO_SPLIT.items()}


class ModelSpec(_Strict):
    name: Literal["unet", "redcnn"] = "unet"
    channels: int = Field(32, ge=1, description="U-Net: width of the first level, paper 1 uses 32 (32→512); "
                                                "RED-CNN: filters per layer, its paper uses 96")
    levels: int = Field(5, ge=2, le=6, description="U-Net resolution levels; paper 1 uses 5 (RED-CNN: unused)")


class TrainingSpec(_Strict):
    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0)
    patch_size: int = Field(96, ge=16)
    select: Literal["best_val", "last"] = "best_val"
    val_slices: Optional[int] = Field(64, ge=1, description="validate each epoch on this many evenly spaced slices")
    lam_schedule: Literal["fixed", "hold-psi"] = Field(
        "fixed", description="Ψ-target trials: λ calibrated once (fixed) or re-solved during training (hold-psi)")
    calibration_steps: int = Field(0, ge=0, description="pixel-only warm-up steps before λ is calibrated")
    calibration_batches: int = Field(4, ge=1, description="batches over which the loss magnitudes are measured")
    hold_every: int = Field(10, ge=1, description="hold-psi: steps between λ updates")
    threads: int = Field(1, ge=1, description="torch CPU threads per trial")
    amp: bool = Field(False, description="CUDA: bf16 autocast for the forward passes (ignored on CPU)")
    channels_last: bool = Field(True, description="CUDA: channels-last memory format (ignored on CPU)")
    compile: bool = Field(False, description="torch.compile the denoiser (pays a compile per trial)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    val_metrics: list[MetricName] = Field(
        default_factory=lambda: ["psnr"], description="validation metrics logged every epoch as val_<name> (the best "
        "epoch is still chosen by val_psnr); the CT-specific ones need phantom data")


class CriticSpec(_Strict):
    """The WGAN-GP critic of an adversarial term (WGAN-VGG's architecture, study.adversarial)."""

    n_critic: int = Field(4, ge=1, description="critic updates per denoiser update")
    gp_weight: float = Field(10.0, ge=0, description="gradient-penalty weight")
    lr: float = Field(1e-4, gt=0)
    width: int = Field(64, ge=4, description="filters of the first critic layer (64, 64, 128, 128, 256, 256)")


class LossSpec(_Strict):
    """A named loss (a level of the `loss` factor): a weighted sum of pixel terms, optionally + the perceptual term
    (its weight is λ from factors.lam, or calibrated for factors.psi_target) and + a WGAN-GP adversarial term."""

    terms: dict[PixelTerm, float] = Field(default_factory=dict, description="pixel term → weight")
    perceptual: bool = Field(False, description="add λ·L_perceptual (feature_level × pretraining × λ/Ψ factors)")
    adversarial: float = Field(0.0, ge=0, description="weight of the generator's WGAN-GP term −E[D(G(x))]")
    critic: CriticSpec = CriticSpec()

    @field_validator("terms")
    @classmethod
    def _weights(cls, v):
        for name, w in v.items():
            if not (w >= 0 and w < float("inf")):
                raise ValueError(f"weight of {name!r} must be a finite number ≥ 0, got {w!r}")
        return v

    @model_validator(mode="after")
    def _something(self):
        if not any(w > 0 for w in self.terms.values()) and not self.perceptual:
            raise ValueError("a loss needs a pixel term with weight > 0 or perceptual: true")
        return self


#: losses a spec may name in factors.loss without defining them: each pixel term alone, and MSE + perceptual
BUILTIN_LOSSES = {**{t: LossSpec(terms={t: 1.0}) for t in PixelTerm.__args__},
                  "perceptual": LossSpec(terms={"mse": 1.0}, perceptual=True)}


class EncoderSpec(_Strict):
    """A named encoder weighting (a level of the `pretraining` factor).

    - `random` (seeded torchvision init), `imagenet` (torchvision file in $TORCH_HOME), `file` (`path` to a
      torchvision-format VGG-19 state_dict or a `study pretrain` output);
    - `rotnet` / `supervised`: pretrained by the study itself, once (cached by recipe and data), on `dataset`:
      `study-ct` (the study's training slices + the shipped real CT slices), `natural` (photographs shipped by
      scikit-image / scikit-learn) or a folder (for `supervised`: `<class>/<image>`).
    """

    source: Literal["random", "imagenet", "file", "rotnet", "supervised"]
    path: Optional[str] = None
    seed: int = 0
    input: Literal["auto", "unit", "x255", "imagenet"] = "auto"
    dataset: str = Field("study-ct", description="rotnet/supervised: study-ct | natural | a folder")
    steps: int = Field(60, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-4, gt=0)
    patch: int = Field(32, ge=16)

    @model_validator(mode="after")
    def _path(self):
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs a 'path'")
        if self.source == "supervised" and self.dataset in ("study-ct", "natural"):
            raise ValueError("source 'supervised' needs 'dataset': a labelled folder <class>/<image>")
        return self


class Factors(_Strict):
    feature_level: list[str] = Field(default_factory=lambda: ["block3_conv2"], min_length=1)
    pretraining: list[str] = Field(default_factory=lambda: ["random"], min_length=1)
    lam: list[float] = Field(default_factory=lambda: [0.0, 0.1], min_length=1)
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


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)
    retries: int = Field(1, ge=0, description="re-runs of a trial that crashed (error, lost worker), each from its "
                                              "last checkpoint; a diverged trial (non-finite loss) is not retried")


# SLURM values end up in #SBATCH lines and a bash script: each is checked against the shape SLURM accepts, so that
# no quote, `$(...)`, `;` or newline can reach a shell (paths are quoted separately, see study.backends.slurm).
_SLURM_WORD = re.compile(r"^[A-Za-z0-9_.,:+=@%/-]{1,128}$")
_SLURM_CONSTRAINT = re.compile(r"^[A-Za-z0-9_.,&|\[\]*:-]{1,256}$")
_SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_SLURM_MEM = re.compile(r"^\d+[KMGT]?$")
_SLURM_EXTRA = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_.,:+=@%/&|\[\]*-]+)?$")
_SAFE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")


class SlurmSpec(_Strict):
    """`study submit`: how the study runs on a SLURM cluster."""

    mode: Literal["ray", "array"] = Field("ray", description="ray: one allocation of `nodes` nodes running a Ray "
                                                             "cluster; array: one job-array task per pending trial")
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    time: str = Field("24:00:00", description="time limit per job (ray) or per array task")
    nodes: int = Field(1, ge=1, description="ray mode: nodes in the allocation")
    gpus_per_node: int = Field(0, ge=0, description="ray mode: GPUs per node (array mode: ceil(resources.gpu) per task)")
    cpus_per_node: Optional[int] = Field(None, ge=1, description="ray mode: CPUs per node (default: SLURM's)")
    mem: Optional[str] = Field(None, description="memory per node (ray) or per task (array), e.g. 64G")
    throttle: Optional[int] = Field(None, ge=1, description="array mode: at most this many tasks at once (%)")
    requeue: bool = Field(True, description="requeue on preemption and shortly before the time limit")
    signal_seconds: int = Field(300, ge=10, description="USR1 this long before the time limit → requeue")
    launcher: Literal["auto", "symmetric-run", "ray-start"] = Field(
        "auto", description="ray mode: `ray symmetric-run` (needs exclusive nodes: it runs `ray stop` at the end) or "
                            "head + workers with `ray start --block`; auto = symmetric-run when --exclusive is set")
    exclusive: bool = Field(False, description="ray mode: whole nodes (#SBATCH --exclusive)")
    extra: list[str] = Field(default_factory=list, description="more sbatch options, e.g. --mail-type=END")
    setup: list[str] = Field(default_factory=list, description="shell lines run before `study` on each job "
                                                               "(module load …, source venv/bin/activate)")
    python: Optional[str] = Field(None, description="Python on the nodes (default: the one running `study submit`)")

    @field_validator("partition", "account", "qos")
    @classmethod
    def _word(cls, v):
        if v is not None and not _SLURM_WORD.match(v):
            raise ValueError("not a SLURM name (letters, digits and _.,:+=@%/- only)")
        return v

    @field_validator("constraint")
    @classmethod
    def _constraint(cls, v):
        if v is not None and not _SLURM_CONSTRAINT.match(v):
            raise ValueError("not a SLURM constraint expression (features joined by & | , [ ] *)")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v):
        if not _SLURM_TIME.match(v):
            raise ValueError("not a SLURM time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        return v

    @field_validator("mem")
    @classmethod
    def _mem(cls, v):
        if v is not None and not _SLURM_MEM.match(v):
            raise ValueError("not a SLURM memory size (a number with an optional K, M, G or T)")
        return v

    @field_validator("extra")
    @classmethod
    def _extra(cls, v):
        for opt in v:
            if not _SLURM_EXTRA.match(opt):
                raise ValueError(f"sbatch option {opt!r} must look like --name or --name=value (no spaces, quotes, $ or ;)")
        return v

    @field_validator("setup")
    @classmethod
    def _setup(cls, v):
        for line in v:
            if not _SAFE_LINE.match(line):
                raise ValueError(f"setup line {line!r} has a newline or control character")
        return v

    @field_validator("python")
    @classmethod
    def _python(cls, v):
        if v is not None and not _SAFE_LINE.match(v):
            raise ValueError("has a newline or control character")
        return v


class Tracking(_Strict):
    enabled: bool = True
    uri: Optional[str] = Field(None, description="default: sqlite:///<output>/mlflow.db")
    experiment: Optional[str] = Field(None, description="default: the study name")
    example_images: int = Field(2, ge=0)


class SearchSpec(_Strict):
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


#: the smallest difference worth acting on per metric, in its unit (`analysis.min_effect` overrides per metric)
MIN_EFFECT = {"psnr": 0.1, "ssim": 0.002, "rmse_hu": 1.0, "ms_ssim": 0.002, "vif": 0.005, "gmsd": 0.002,
              "noise_std": 1.0, "cnr": 0.05, "edge_width": 0.05}
#: each metric's unit as reports print it ("" = unitless)
METRIC_UNITS = {"psnr": "dB", "ssim": "", "rmse_hu": "HU", "ms_ssim": "", "vif": "", "gmsd": "", "noise_std": "HU",
                "cnr": "", "edge_width": "mm"}


class AnalysisSpec(_Strict):
    """How the report turns results into guidelines."""

    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error rate of each correction family")
    min_effect: dict[MetricName, float] = Field(default_factory=dict, description="smallest difference worth acting "
                                                "on, per metric in its unit (defaults: MIN_EFFECT)")
    min_seeds: int = Field(3, ge=2, description="seeds per configuration below which claims about configurations "
                           "are reported as insufficiently replicated")
    min_patients: int = Field(5, ge=1, description="test patients below which the report says results cannot "
                              "generalise across patients")
    psi_min_effect: float = Field(0.05, gt=0, lt=1, description="smallest difference in variance explained "
                                  "(within feature level × pretraining) for 'Ψ explains the metric better than λ'")

    @field_validator("min_effect")
    @classmethod
    def _positive(cls, v):
        bad = {k: x for k, x in v.items() if not x > 0}
        if bad:
            raise ValueError(f"smallest effects must be > 0, got {bad}")
        return v

    def effect(self, metric: str) -> float:
        return float(self.min_effect.get(metric, MIN_EFFECT.get(metric, 0.0)))


class StudySpec(_Strict):
    name: str
    description: str = ""
    output: Optional[str] = Field(None, description="default: results/<name>")
    backend: Literal["ray", "local"] = "ray"
    max_concurrent: Optional[int] = Field(None, ge=1)
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    training: TrainingSpec = TrainingSpec()
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict)
    factors: Factors = Factors()
    metric_window: Union[str, Window] = Field("abdomen", validate_default=True)
    metrics: list[MetricName] = Field(default_factory=lambda: list(METRICS), description="test metrics per image "
                                      "(psnr, ssim and rmse_hu are always computed)")
    losses: dict[str, LossSpec] = Field(default_factory=dict, description="named losses for factors.loss")
    resources: Resources = Resources()
    tracking: Tracking = Tracking()
    search: Optional[SearchSpec] = None
    slurm: SlurmSpec = SlurmSpec()
    analysis: AnalysisSpec = AnalysisSpec()

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not _NAME.match(v):
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
            if not _NAME.match(name):
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
        ct = sorted(set(CT_METRICS) & (set(self.metrics) | set(self.training.val_metrics)))
        if ct and self.data.source != "phantom":
            raise ValueError(f"metrics {ct} need the phantom's lesion and outline geometry (data.source: phantom); "
                             f"the source is {self.data.source!r}")
        if self.search and self.factors.loss:
            raise ValueError("search: the Optuna refinement tunes λ/Ψ of paper 1's grid; it does not combine with "
                             "factors.loss")
        for name in self.losses:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$", name):
                raise ValueError(f"losses: bad name {name!r}")
        return self

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


MAX_QUOTE = 200  # characters of a bad value an error message quotes


def _short(value) -> str:
    """repr of a bad value, cut to MAX_QUOTE characters (a huge value must not become a huge message)."""
    if isinstance(value, (list, tuple)) and len(value) > 50:
        value = type(value)(value[:50])
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + f"… ({len(text)} characters)"


def _describe(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after")) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    value = e.get("input")
    shown = "" if isinstance(value, dict) else f" (got {_short(value)})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"field '{loc}': {msg}{shown}{more}"


def parse_spec(raw: dict, source: str = "<spec>", *, check_paths: bool = True) -> StudySpec:
    """Validate a spec; relative paths are resolved against the spec's folder and, with `check_paths`, must exist
    (a dry run on a machine without the data or weights passes `check_paths=False`)."""
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: a study spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as err:
        raise StudyError(f"{source}: {_describe(err)}") from None
    base = Path(source).parent if source != "<spec>" else Path(".")

    def resolve(value: str, field: str, want_dir: bool) -> str:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else base / p
        if check_paths and not (p.is_dir() if want_dir else p.is_file()):
            kind = "folder" if want_dir else "file"
            raise StudyError(f"{source}: field '{field}': {kind} not found (got {value!r})")
        return str(p.resolve())

    encoders = {}
    for name, enc in spec.encoders.items():
        if enc.source == "file":
            enc = enc.model_copy(update={"path": resolve(enc.path, f"encoders.{name}.path", False)})
        if enc.source in ("rotnet", "supervised") and enc.dataset not in ("study-ct", "natural"):
            enc = enc.model_copy(update={"dataset": resolve(enc.dataset, f"encoders.{name}.dataset", True)})
        encoders[name] = enc
    data_update = {key: resolve(getattr(spec.data, key), f"data.{key}", key == "root")
                   for key in ("root", "manifest") if getattr(spec.data, key)}
    return spec.model_copy(update={"encoders": encoders, "data": spec.data.model_copy(update=data_update)})


def load_spec(path: str | Path, *, check_paths: bool = True) -> StudySpec:
    """Read and validate a study YAML; raises StudyError with one line naming file, field and value."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: study spec not found")
    return parse_spec(read_yaml(path), str(path), check_paths=check_paths)
