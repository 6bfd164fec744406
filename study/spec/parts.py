"""The parts of a study spec (pydantic): display window, data, model, training, losses, encoders. The only place
their defaults live."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from study.spec.metric_names import MetricName

#: named metric windows (centre, width) in HU: display windows, and `full`, paper 1's whole −1024…3072 HU range in 8
#: bits (a `Window` named full is always 8-bit)
WINDOWS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "chest": (-600.0, 1500.0),
    "head": (40.0, 80.0),
    "full": (1024.0, 4096.0),
}
FULL_RANGE = "full"
BUILTIN_PRETRAININGS = ("random", "imagenet")
#: loss terms a `losses:` composition combines by name (study.losses.PIXEL_TERMS)
PixelTerm = Literal["mse", "l1", "charbonnier", "ssim", "ms_ssim", "sobel"]
#: what a study or encoder name may be (they name the results folder, the MLflow experiment, weights files)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StrictModel(BaseModel):
    """Base of every spec section: unknown fields are errors, and a validated spec is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(StrictModel):
    """The HU window in which the full-reference metrics (PSNR, SSIM, NRMSE, MS-SSIM, VIF, GMSD) are computed: the
    images are mapped to [0, 1] inside [centre − width/2, centre + width/2] and clipped (data range 1).

    `metric_window: full` (or `{name: full}`) is paper 1's: the whole −1024…3072 HU range, (HU + 1024)/4096 clipped
    to [0, 1], ×255 and cast to uint8 (`bits: 8`; the 3-channel repeat paper 1 adds changes no value), data range
    255. A custom `{center, width}` is labelled by its `name` where given, else `custom (centre/width)`."""

    name: Optional[str] = Field(None, description="a named window (abdomen, chest, head, full) or a label for a "
                                                  "custom one")
    center: float = WINDOWS["abdomen"][0]
    width: float = Field(WINDOWS["abdomen"][1], gt=0)
    bits: Optional[Literal[8]] = Field(None, description="8: the [0, 1] images ×255 cast to uint8 (truncated) before "
                                       "the metrics, data range 255, as paper 1; unset: float images, data range 1")

    @model_validator(mode="before")
    @classmethod
    def _full(cls, data):
        if isinstance(data, dict) and data.get("name") == FULL_RANGE:  # the full range is one thing: fill it in
            c, w = WINDOWS[FULL_RANGE]
            data = {"center": c, "width": w, "bits": 8, **data}
        return data

    @model_validator(mode="after")
    def _full_is_full(self):
        if self.name == FULL_RANGE and (self.center, self.width, self.bits) != (*WINDOWS[FULL_RANGE], 8):
            raise ValueError("window 'full' is −1024…3072 HU in 8 bits (centre 1024, width 4096, bits 8); give a "
                             "custom window another name")
        return self

    @property
    def label(self) -> str:
        """What reports call the window: its name (a custom one unnamed: `custom (centre/width)`), 8-bit marked."""
        if self.name == FULL_RANGE:
            return "full range −1024…3072 HU, 8-bit"
        named = self.name or next((k for k, v in WINDOWS.items() if k != FULL_RANGE
                                   and v == (self.center, self.width)), None)
        text = named or f"custom ({self.center:g}/{self.width:g})"
        return f"{text}, 8-bit" if self.bits else text

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high): centre ∓ width/2, in HU."""
        return self.low, self.high


#: paper 1's patient split of the AAPM-Mayo 2016 data
MAYO_SPLIT = {"train": ["L067", "L310", "L286", "L333", "L291", "L109", "L143"], "val": ["L192"], "test": ["L096", "L506"]}


class DataSpec(StrictModel):
    """Where the low/full-dose pairs come from, and how they are normalised.

    - `phantom` (default): embedded abdomen-like phantoms with projection-domain low dose (+ the real CT slices that
      pydicom and pydicom-data ship, as an extra "real" test set).
    - `mayo`: AAPM-Mayo 2016 Grand Challenge data under `root`, in one of the layouts of `layout` (found by itself
      by default): per-patient DICOM folders, paper 1's preprocessed arrays, or the DICOM releases as distributed.
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
                          description="mayo, layout study: folder of one series; dose = full|quarter, kernel = '' "
                                      "(B30) | '_sharp' (D45)")
    layout: Literal["auto", "study", "authors", "mayo-dicom"] = Field(
        "auto", description="mayo: the files under root. study: root/<template> (L067/quarter_1mm_sharp/). authors: "
        "paper 1's arrays npy_img/<thickness> <kernel>/<patient>_<slice>_input.npy (quarter dose) and _target.npy "
        "(full dose), e.g. npy_img/1mm B30/L067_0001_input.npy, stored as (HU+1024)/4096 and converted back to HU "
        "(x·4096 − 1024); blocks per (patient, thickness, slice), kernels merged, 1 mm and 3 mm not. mayo-dicom: "
        "the AAPM download <thickness> <kernel>/[<zip folder>/]<dose>_<thickness>[_sharp]/<patient>/<dose>_"
        "<thickness>[_sharp]/ (1mm B30/full_1mm/L067/full_1mm/) or TCIA's [LDCT-and-Projection-data/]<patient>/"
        "<study>/<n>-Full Dose Images-<id>/ and …-Low Dose Images-…/ (one reconstruction per patient). auto: the "
        "one found under root, named on the console and in the prepared data's manifest")
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
        if self.layout != "auto" and self.source != "mayo":
            raise ValueError(f"layout {self.layout!r} applies to source 'mayo' only (source is {self.source!r})")
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


class ModelSpec(StrictModel):
    """The denoiser: paper 1's U-Net or RED-CNN."""

    name: Literal["unet", "redcnn"] = "unet"
    channels: int = Field(32, ge=1, description="U-Net: width of the first level, paper 1 uses 32 (32→512); "
                                                "RED-CNN: filters per layer, its paper uses 96")
    levels: int = Field(5, ge=2, le=6, description="U-Net resolution levels; paper 1 uses 5 (RED-CNN: unused)")


class TrainingSpec(StrictModel):
    """How each trial trains (Adam on patches) and which epoch's weights it keeps."""

    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(100, ge=1, description="random patches: optimiser steps per epoch; ignored with "
                                 "patches: tiled (there it is ceil(tiles / batch_size), from the data)")
    patches: Literal["random", "tiled"] = Field(
        "random", description="random: batches of patches at random positions of random slices; tiled (paper 1): "
        "every training slice cut into non-overlapping patch_size tiles with corners range(0, H − patch_size, "
        "patch_size) per axis, the (slice, tile) pairs shuffled anew each epoch (seeded by seed and epoch), one "
        "epoch = every tile once, the last short batch kept")
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0)
    patch_size: int = Field(96, ge=16)
    select: Literal["best_val", "last"] = Field("best_val", description="the weights a trial keeps: the epoch with "
                                                "the best val_psnr, or the last")
    val_slices: Optional[int] = Field(64, ge=1, description="validate each epoch on this many evenly spaced slices")
    lam_schedule: Literal["fixed", "hold-psi"] = Field(
        "fixed", description="Ψ-target trials: λ calibrated once (fixed) or re-solved during training (hold-psi)")
    calibration_steps: int = Field(0, ge=0, description="pixel-only warm-up steps before λ is calibrated")
    calibration_batches: int = Field(4, ge=1, description="batches over which the loss magnitudes are measured")
    hold_every: int = Field(10, ge=1, description="hold-psi: steps between λ updates")
    psi_calibration: Literal["start", "converged"] = Field(
        "start", description="Ψ-target trials: λ measured on the network at the start of training (start), or, as "
        "paper 1 did, λ = Ψ/(1−Ψ)·L_MSE/L_P from the last-epoch magnitudes of the finished fixed-λ trials of the "
        "same feature level and pretraining (converged): those of `psi_pilot`")
    psi_pilot: Optional[str] = Field(None, description="psi_calibration: converged: `self` (this study's own fixed-λ "
                                     "trials, which then run first) or a finished results folder (`study calibrate "
                                     "DIR` shows its λ)")
    threads: int = Field(1, ge=1, description="torch CPU threads per trial")
    amp: bool = Field(False, description="CUDA: bf16 autocast for the forward passes (ignored on CPU)")
    channels_last: bool = Field(True, description="CUDA: channels-last memory format (ignored on CPU)")
    compile: bool = Field(False, description="torch.compile the denoiser (pays a compile per trial)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    keep_checkpoint: bool = Field(False, description="keep each finished trial's resume checkpoint (model, Adam state, "
                                  "the best weights: about 4× model.pt) beside model.pt; by default only model.pt, the "
                                  "selected weights, stays")
    val_metrics: list[MetricName] = Field(
        default_factory=lambda: ["psnr"], description="validation metrics logged every epoch as val_<name> (the best "
        "epoch is still chosen by val_psnr); the CT-specific ones need phantom data")


    @model_validator(mode="after")
    def _pilot(self):
        if self.psi_calibration == "converged" and not self.psi_pilot:
            raise ValueError("psi_calibration: converged needs psi_pilot: a finished results folder")
        return self

class CriticSpec(StrictModel):
    """The WGAN-GP critic of an adversarial term (WGAN-VGG's architecture, study.losses.adversarial)."""

    n_critic: int = Field(4, ge=1, description="critic updates per denoiser update")
    gp_weight: float = Field(10.0, ge=0, description="gradient-penalty weight")
    lr: float = Field(1e-4, gt=0)
    width: int = Field(64, ge=4, description="filters of the first critic layer (64, 64, 128, 128, 256, 256)")


class LossSpec(StrictModel):
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


class EncoderSpec(StrictModel):
    """A named encoder weighting (a level of the `pretraining` factor).

    - `random` (seeded torchvision init), `imagenet` (torchvision file in $TORCH_HOME), `file` (`path` to a
      torchvision-format VGG-19 state_dict or a `study pretrain` output);
    - `rotnet` / `supervised`: pretrained by the study itself, once (cached by recipe and data), on `dataset`:
      `study-ct` (the study's training slices + the shipped real CT slices), `natural` (photographs shipped by
      scikit-image / scikit-learn) or a folder (for `supervised`: `<class>/<image>`).
    """

    source: Literal["random", "imagenet", "file", "rotnet", "supervised"]
    path: Optional[str] = Field(None, description="file: the weights file")
    seed: int = 0
    input: Literal["auto", "unit", "x255", "imagenet"] = Field(
        "auto", description="the encoder's input from the image in [0, 1]: unit (as is), x255 (× 255, no mean "
        "subtraction: paper 1), imagenet (ImageNet mean/std); auto: imagenet for imagenet weights, else x255")
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
