"""The training loop in named pieces: `setup` (model, optimiser, loss terms, encoder, critic, batches), `start`
(resume from the checkpoint, or calibrate λ for a Ψ target), `step` (one optimiser step), and `train_epoch` (the
steps of an epoch, with the hold-Ψ window `PsiWindow`).

L = Σ wᵢ·L_pixel,i + λ·L_perceptual (+ w_adv·L_adversarial after `n_critic` critic steps); every term is kept
unweighted on the device, one vector per step, and read back once per epoch.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from study.losses.adversarial import WGANGP
from study.losses.influence import HoldPsi, calibrate
from study.losses.terms import perceptual_loss, weighted_pixel_loss
from study.spec import BUILTIN_LOSSES
from study.data.cache import n_tiles
from study.trial.batches import Splits, device_split, init_output, tiled_batches, unit_batch
from study.trial.checkpoint import load_checkpoint, restore
from study.trial.spec import TrialSpec

class Diverged(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass
class Trainer:
    """What one trial trains with, built once by `setup`."""

    spec: TrialSpec
    device: torch.device
    model: torch.nn.Module
    forward: Callable  # the model, or its torch.compile
    opt: torch.optim.Optimizer
    pixel: Any  # the weighted pixel loss (study.losses.terms)
    encoder: Optional[torch.nn.Module]  # frozen VGG-19 cut at the feature level; None without a perceptual term
    adv: Optional[WGANGP]
    adv_weight: float
    names: list[str]  # the logged terms: each pixel term, then perceptual and adversarial where used
    rng: np.random.Generator  # draws the training batches
    src: tuple  # training pairs: memory-mapped HU arrays, or [0, 1] tensors on the accelerator
    fmt: torch.memory_format
    amp: Any  # bf16 autocast (a no-op unless CUDA and training.amp)
    zero: torch.Tensor
    probe: Optional[tuple] = None  # fixed batch on which Ψ_g is measured every epoch
    measures: Any = None  # which metrics validation and test compute (study.trial.evaluate.Measures)

    @property
    def n_pix(self) -> int:
        return len(self.pixel.weights)

    def batch(self, generator):
        tr = self.spec.training
        x, y = unit_batch(*self.src, tr.batch_size, tr.patch_size, tuple(self.spec.hu_range), generator, self.device)
        return x.contiguous(memory_format=self.fmt), y.contiguous(memory_format=self.fmt)

    @property
    def tiled(self) -> bool:
        return self.spec.training.patches == "tiled"

    @property
    def patches_per_epoch(self) -> int:
        """Training patches an epoch sees: every tile once (tiled), else steps_per_epoch × batch_size."""
        tr = self.spec.training
        return n_tiles(tuple(self.src[0].shape), tr.patch_size) if self.tiled else tr.steps_per_epoch * tr.batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch: ceil(tiles / batch_size) for a tiled pass, else the spec's steps_per_epoch."""
        tr = self.spec.training
        return -(-self.patches_per_epoch // tr.batch_size) if self.tiled else tr.steps_per_epoch

    def epoch_batches(self, epoch: int):
        """The batches of epoch `epoch`: the tiled pass of that epoch (its own permutation, so a resumed trial goes
        on with the next one), or `steps_per_epoch` random batches drawn from `rng` as they are used."""
        tr, fmt = self.spec.training, self.fmt
        if not self.tiled:
            return (self.batch(self.rng) for _ in range(tr.steps_per_epoch))
        batches = tiled_batches(*self.src, tr.batch_size, tr.patch_size, tuple(self.spec.hu_range), self.spec.seed,
                                epoch, self.device)
        return ((x.contiguous(memory_format=fmt), y.contiguous(memory_format=fmt)) for x, y in batches)


@dataclass
class RunState:
    """Where the run stands (what the checkpoint keeps besides the trainer's own state)."""

    lam: float
    start: int = 0
    epoch: int = 0  # the epoch being trained (the last finished one, in a checkpoint)
    history: list = field(default_factory=list)
    best: Optional[dict] = None  # {"epoch", "model"}: the selected weights
    best_score: float = -math.inf
    calibration: Optional[dict] = None
    hold: Optional[HoldPsi] = None
    warning: Optional[str] = None  # GPU packing
    weights: Optional[torch.Tensor] = None  # every term's weight, on the device (λ's entry follows λ)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_encoder(spec: TrialSpec, device):
    """The trial's frozen VGG-19 at its feature level, from its weights file."""
    from study.encoders.vgg import feature_extractor

    return feature_extractor(spec.feature_level, spec.encoder_path, input_mode=spec.encoder_input).to(device)


def setup(spec: TrialSpec, splits: Splits) -> Trainer:
    """Seed, then build the trainer (the order fixes what the seeded generators draw: model, encoder, critic)."""
    from study.models import build_model

    tr = spec.training
    torch.set_num_threads(tr.threads)
    device = _device(tr.device)
    _seed_everything(spec.seed)
    model = build_model(spec.model).to(device)
    init_output(model, splits.train_fd, tuple(spec.hu_range))
    opt = torch.optim.Adam(model.parameters(), lr=tr.lr)
    loss = spec.loss_spec or BUILTIN_LOSSES["perceptual"]  # paper 1: MSE + λ·perceptual
    pixel = weighted_pixel_loss(loss.terms)
    perceptual_on = loss.perceptual and ((spec.lam or 0) > 0 or spec.psi_target is not None)
    encoder = load_encoder(spec, device) if perceptual_on else None
    adv = WGANGP(device, **loss.critic.model_dump()) if loss.adversarial > 0 else None
    names = [*loss.terms, *(["perceptual"] if encoder is not None else []), *(["adversarial"] if adv else [])]
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda and tr.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    if encoder is not None:
        encoder = encoder.to(memory_format=fmt)
    t = Trainer(spec=spec, device=device, model=model, forward=torch.compile(model) if tr.compile else model,
                opt=opt, pixel=pixel, encoder=encoder, adv=adv, adv_weight=float(loss.adversarial), names=names,
                rng=np.random.default_rng(spec.seed), fmt=fmt,
                src=device_split(splits.train_ld, splits.train_fd, tuple(spec.hu_range), device)
                or (splits.train_ld, splits.train_fd),
                amp=torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and tr.amp),
                zero=torch.zeros((), device=device))
    if encoder is not None:
        t.probe = t.batch(np.random.default_rng(spec.seed + 7919))  # fixed Ψ_g probe
    return t


def step(t: Trainer, x, y, lam: float, critic: bool = True):
    """One optimiser step (after `n_critic` critic steps on fresh batches when adversarial); returns the unweighted
    terms (in `t.names` order) and the critic's loss as device tensors (no host sync here)."""
    adv, zero = t.adv, t.zero
    critic_loss = zero
    if adv is not None and critic:
        for _ in range(adv.n_critic):
            xc, yc = t.batch(t.rng)
            with torch.no_grad(), t.amp:
                fake = t.forward(xc).float()
            critic_loss = critic_loss + adv.critic_step(yc, fake) / adv.n_critic
    with t.amp:
        out = t.forward(x)
        o = out.float()
        parts = t.pixel.parts(o, y)
        perc = [perceptual_loss(t.encoder, out, y).float() if lam > 0 else zero] if t.encoder is not None else []
        terms = parts + perc
        l_adv = adv.generator_loss(o).float() if adv is not None else zero
    l_pix = t.pixel.combine(parts)
    total = (l_pix + (lam * terms[len(parts)] if t.encoder is not None and lam > 0 else 0)
             + (t.adv_weight * l_adv if critic else 0))  # no adversarial term in a pixel-only warm-up
    t.opt.zero_grad(set_to_none=True)
    total.backward()
    t.opt.step()
    return torch.stack([v.detach() for v in terms] + ([l_adv.detach()] if adv is not None else [])), critic_loss


def calibrate_lam(t: Trainer) -> dict:
    """λ for the trial's Ψ target, measured after `calibration_steps` pixel-only warm-up steps."""
    spec, tr = t.spec, t.spec.training
    t.model.train()
    for _ in range(tr.calibration_steps):
        step(t, *t.batch(t.rng), 0.0, critic=False)
    cal_rng = np.random.default_rng(spec.seed + 104729)
    return calibrate(t.model, t.encoder, [t.batch(cal_rng) for _ in range(tr.calibration_batches)],
                     spec.psi_target, t.pixel)


def start(t: Trainer, checkpoint: Path) -> RunState:
    """Continue from the trial's checkpoint where there is one; else start at epoch 0 (λ calibrated first for a Ψ
    target). The hold-Ψ schedule, where asked for, starts at that λ (or where the checkpoint left it)."""
    spec = t.spec
    run = RunState(lam=spec.lam or 0.0)
    ck = load_checkpoint(checkpoint, t.device)
    if ck is not None:
        restore(t, ck)
        run.start, run.history, run.best, run.best_score = ck["epoch"] + 1, ck["history"], ck["best"], ck["best_score"]
        run.lam, run.calibration = ck.get("lam", run.lam), ck.get("calibration")  # older checkpoints: no λ
    elif spec.psi_target is not None and spec.lam_converged is not None:  # paper 1's calibration, by the driver
        run.calibration = {"lam": spec.lam_converged, "psi_target": spec.psi_target, "source": "converged"}
        run.lam = spec.lam_converged
    elif spec.psi_target is not None:
        run.calibration = calibrate_lam(t)
        run.lam = run.calibration["lam"]
    if spec.psi_target is not None and spec.training.lam_schedule == "hold-psi":
        run.hold = HoldPsi(spec.psi_target, run.lam, every=spec.training.hold_every)
        if ck is not None and ck.get("hold"):
            run.hold.load(ck["hold"])
    run.weights = torch.tensor(t.pixel.weights + ([run.lam] if t.encoder is not None else [])
                               + ([t.adv_weight] if t.adv else []), device=t.device, dtype=torch.float64)
    return run


class PsiWindow:
    """hold-Ψ: the weighted pixel loss and the perceptual loss summed on the device since λ's last update; handed to
    `HoldPsi` when an update is due (one host sync per λ update, not per step)."""

    def __init__(self, hold: HoldPsi, weights: torch.Tensor, n_pix: int):
        self.hold, self.weights, self.n_pix = hold, weights, n_pix
        self.sums, self.n = torch.zeros(2, device=weights.device, dtype=torch.float64), 0

    def add(self, values: torch.Tensor) -> bool:
        """One step's unweighted terms; True where λ was updated."""
        k, w = self.n_pix, self.weights
        self.sums += torch.stack(((values[:k] * w[:k]).sum(), values[k]))
        self.n += 1
        return self.n >= self.hold.every - self.hold.n and self.flush()

    def flush(self) -> bool:
        """Hand what the window holds to `HoldPsi` (also at the end of an epoch); True where it held anything."""
        if not self.n:
            return False
        self.weights[self.n_pix] = self.hold.add(*self.sums.tolist(), self.n)
        self.sums.zero_()
        self.n = 0
        return True


def train_epoch(t: Trainer, run: RunState) -> tuple[list[float], list[float], torch.Tensor, float]:
    """Epoch `run.epoch`: `t.steps_per_epoch` steps (`Trainer.epoch_batches`). Returns the mean unweighted and
    weighted terms (means over patches: a short last batch counts by its size), the critic's summed loss (a device
    tensor) and the seconds it took; `Diverged` where a mean is not finite."""
    bs = t.spec.training.batch_size
    t.model.train()
    t0 = time.perf_counter()
    sums = torch.zeros(2, len(t.names), device=t.device, dtype=torch.float64)  # unweighted, weighted per term
    critic_sum = torch.zeros((), device=t.device, dtype=torch.float64)
    window = PsiWindow(run.hold, run.weights, t.n_pix) if run.hold is not None else None
    steps = 0.0  # full batches' worth of patches
    for x, y in t.epoch_batches(run.epoch):
        values, critic_loss = step(t, x, y, run.lam)
        values, share = values.double(), len(x) / bs
        pair = torch.stack((values, values * run.weights))
        sums += pair if share == 1 else pair * share
        steps += share
        critic_sum += critic_loss
        if window is not None and window.add(values):
            run.lam = run.hold.lam
    if window is not None and window.flush():
        run.lam = run.hold.lam
    raw, weighted = (sums / steps).tolist()  # the epoch's one sync
    train_s = time.perf_counter() - t0
    if not all(math.isfinite(v) for v in raw + weighted):
        raise Diverged(f"non-finite loss at epoch {run.epoch}: " + ", ".join(f"{n}={v}" for n, v in zip(t.names, raw)))
    return raw, weighted, critic_sum, train_s
