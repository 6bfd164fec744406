"""One trial: fit a denoiser with L = L_pixel + λ·L_perceptual on random patches, keep the best-validation
weights, test on full slices. A pure function of its `TrialSpec`; no Ray, MLflow or SLURM imports.

A checkpoint is written to `spec.out_dir/checkpoint.pt` after every epoch and picked up again if the trial is
restarted, so a killed or preempted trial continues from its last finished epoch.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from study.data.ct import hu_to_unit, unit_to_hu
from study.data.cache import patch_positions, sample_patches
from study.losses.influence import HoldPsi, calibrate, gradient_share
from study.losses.adversarial import WGANGP
from study.losses.terms import perceptual_loss, term_shares, weighted_pixel_loss
from study.metrics.registry import quality_metrics


#: what a trial reports after every epoch (besides `epoch`)
EPOCH_METRICS = ("train_loss", "pixel_loss", "perceptual_loss", "lam", "psi", "psi_grad", "val_psnr", "val_mse",
                 "patches_per_s", "peak_mem_mb")
EPOCH_PREFIXES = ("loss_", "wloss_", "share_", "val_", "critic_")  # per term / per validation metric


def is_epoch_metric(name: str) -> bool:
    """A key of a trial's per-epoch report (what goes to MLflow as a series), not one Ray Tune adds."""
    return name in EPOCH_METRICS or name.startswith(EPOCH_PREFIXES)


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass
class TrialSpec:
    run_key: str
    study: str
    configuration: str
    feature_level: str
    pretraining: str
    lam: Optional[float]  # None for a Ψ-target trial
    seed: int
    model: dict
    training: dict
    data_path: str
    data_id: str
    window: dict  # name, center, width
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
    loss_spec: Optional[dict] = None  # config.LossSpec of `loss`: pixel terms, perceptual, adversarial, critic
    metrics: list = field(default_factory=lambda: ["psnr", "ssim", "rmse_hu"])  # test metrics per image

    def factors(self) -> dict:
        f = {"feature_level": self.feature_level, "pretraining": self.pretraining, "lam": self.lam,
             "psi_target": self.psi_target, "seed": self.seed}
        return f if self.loss is None else {**f, "loss": self.loss}


@dataclass
class TrialResult:
    summary: dict
    per_image: list[dict]
    history: list[dict]
    examples: dict = field(default_factory=dict)  # image_id -> (low-dose, output, full-dose) in HU


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _load_encoder(spec: TrialSpec, device):
    from study.encoders.vgg import FeatureExtractor, load_state_dict, vgg19_features
    from study.encoders.layers import layer_end

    sd, _ = load_state_dict(spec.encoder_path)
    feats = vgg19_features()
    feats.load_state_dict(sd)
    return FeatureExtractor(feats[: layer_end(spec.feature_level)], spec.encoder_input).to(device)


@torch.no_grad()
def _predict(model, slices_hu: np.ndarray, hu_range, device, chunk: int = 4) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(slices_hu), chunk):
        x = torch.from_numpy(hu_to_unit(np.asarray(slices_hu[i:i + chunk], np.float32), *hu_range))[:, None].to(device)
        out.append(unit_to_hu(model(x)[:, 0].float().cpu().numpy(), *hu_range))
    return np.concatenate(out)


def _geometry(data: Path, name: str):
    """Slice index → the phantom's label map, body outline and pixel size (what the CT-specific metrics need), or {}
    where the data have none (DICOM sources, the real slices). The split's meta and label maps are opened once."""
    meta_path, labels_path = data / f"{name}_meta.json", data / f"{name}_labels.npy"
    if not (meta_path.is_file() and labels_path.is_file()):
        return lambda i: {}
    metas, labels = json.loads(meta_path.read_text()), np.load(labels_path, mmap_mode="r")
    return lambda i: ({"labels": np.asarray(labels[i]), "body": metas[i]["body"], "pixel_mm": metas[i]["pixel_mm"]}
                      if "body" in metas[i] else {})


def _validate(model, val_ld, val_fd, geometry, hu_range, device, low, high, names) -> dict:
    """Validation metrics of this epoch (means over the validation slices; NaN-aware for the CT-specific ones)."""
    pred = _predict(model, val_ld, hu_range, device)
    names = ["psnr", *[n for n in names if n != "psnr"]]
    rows = [quality_metrics(p, r, low, high, names, **g) for p, r, g in zip(pred, val_fd, geometry)]
    out = {f"val_{n}": _mean([r.get(n) for r in rows]) for n in names}
    out["val_mse"] = float(np.mean((hu_to_unit(pred, *hu_range) - hu_to_unit(val_fd, *hu_range)) ** 2))
    return out


def _test(model, data: Path, name: str, hu_range, device, low: float, high: float, n_examples: int, names):
    """Per-image metrics of the output and of the low-dose input on one test set (full slices)."""
    ld, fd = np.load(data / f"{name}_ld.npy", mmap_mode="r"), np.load(data / f"{name}_fd.npy", mmap_mode="r")
    meta_path = data / f"{name}_meta.json"
    metas = json.loads(meta_path.read_text()) if meta_path.is_file() else [
        {"image_id": f"{name}-{i:04d}", "patient": "", "block": f"{name}-{i:04d}"} for i in range(len(ld))]
    rows, examples, geometry = [], {}, _geometry(data, name)
    for start in range(0, len(ld), 16):  # bounded memory on large test sets
        x, r = np.asarray(ld[start:start + 16]), np.asarray(fd[start:start + 16])
        pred = _predict(model, x, hu_range, device)
        for k, (p, xi, ri) in enumerate(zip(pred, x, r)):
            m, g = metas[start + k], geometry(start + k)
            row = {"image_id": m["image_id"], "patient": m["patient"], "block": m["block"], "test_set": name,
                   **quality_metrics(p, ri, low, high, names, **g)}
            row.update({f"input_{key}": v for key, v in quality_metrics(xi, ri, low, high, names, **g).items()})
            rows.append(row)
            if len(examples) < n_examples:
                examples[m["image_id"]] = (xi, p, ri)
    return rows, examples


def _mean(values) -> float:
    """Mean of the finite values (a CT-specific metric is NaN or absent on slices without phantom geometry)."""
    v = np.array([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def unit_batch(ld, fd, batch_size: int, patch_size: int, hu_range, generator, device="cpu"):
    """A random batch of aligned (low-dose, full-dose) patches, normalised to the network's [0, 1] scale.
    `ld`, `fd` are arrays in HU, or tensors already in [0, 1] on the device (`device_split`): then the patches are
    cut there and nothing crosses the bus (same positions from the same generator either way)."""
    if isinstance(ld, torch.Tensor):
        idx, ys, xs = patch_positions(tuple(ld.shape), batch_size, patch_size, generator)
        cut = lambda t: torch.stack([t[i, y:y + patch_size, x:x + patch_size] for i, y, x in zip(idx, ys, xs)])[:, None]
        return cut(ld), cut(fd)
    a, b = sample_patches(ld, fd, batch_size, patch_size, generator)
    return torch.from_numpy(hu_to_unit(a, *hu_range)).to(device), torch.from_numpy(hu_to_unit(b, *hu_range)).to(device)


def device_split(ld, fd, hu_range, device, max_bytes: int = 2 << 30):
    """The training split on the accelerator once per trial, in [0, 1] (None on CPU, where the memory-mapped cache
    is already shared through the page cache, or when it is larger than `max_bytes`)."""
    if device.type != "cuda" or 2 * ld.size * 4 > max_bytes:
        return None
    to = lambda a: torch.from_numpy(hu_to_unit(np.asarray(a, np.float32), *hu_range)).to(device)
    return to(ld), to(fd)


def init_output(model, train_fd, hu_range) -> None:
    """Start the model's output at the training targets' mean (models that support it), from ≤ ~64 slices so a
    memory-mapped split is never read whole."""
    if hasattr(model, "init_output_bias"):
        sample = train_fd[:: max(1, len(train_fd) // 64)]
        model.init_output_bias(float(np.mean(hu_to_unit(np.asarray(sample, np.float64), *hu_range))))


CHECKPOINT_KEYS = ("model", "opt", "rng", "torch_rng", "epoch", "history", "best", "best_score")


def _load_checkpoint(path: Path, device) -> dict | None:
    """The trial's checkpoint (tensors and plain data only: `weights_only=True`), or None when there is none. A file
    that cannot be read as one (garbage, truncated, missing keys) is moved aside to `checkpoint.pt.corrupt-<time>`,
    named in a warning and in `events.log`, and the trial starts again from scratch instead of failing for ever."""
    if not path.is_file():
        return None
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
        if missing:
            raise ValueError(f"not a trial checkpoint (missing {', '.join(missing)})")
        return ck
    except Exception as err:  # noqa: BLE001 - whatever the file holds, it is not a checkpoint we can resume from
        from study.store.events import log_event

        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.replace(path, aside)
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        print(f"warning: {path} could not be read as a checkpoint ({reason}); moved to {aside.name}, training "
              f"this trial from the start", flush=True)
        log_event(path.parent, "checkpoint_corrupt", file=str(path), moved_to=aside.name, reason=reason)
        return None


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_trial(spec: TrialSpec, on_epoch: Optional[Callable[[int, dict], None]] = None) -> TrialResult:
    """Train, select and test one configuration. `on_epoch(epoch, metrics)` is called after every epoch."""
    from study.models import build_model
    from study.spec import ModelSpec

    t0 = time.time()
    tr = spec.training
    torch.set_num_threads(int(tr.get("threads", 1)))
    device = _device(tr.get("device", "auto"))
    _seed_everything(spec.seed)
    hu_range = tuple(spec.hu_range)
    low, high = spec.window["center"] - spec.window["width"] / 2, spec.window["center"] + spec.window["width"] / 2

    data = Path(spec.data_path)
    train_ld, train_fd = np.load(data / "train_ld.npy", mmap_mode="r"), np.load(data / "train_fd.npy", mmap_mode="r")
    val_ld, val_fd = np.load(data / "val_ld.npy", mmap_mode="r"), np.load(data / "val_fd.npy", mmap_mode="r")
    keep = np.unique(np.linspace(0, len(val_ld) - 1, min(len(val_ld), int(tr.get("val_slices") or len(val_ld)))).astype(int))
    val_ld, val_fd = np.asarray(val_ld[keep]), np.asarray(val_fd[keep])  # evenly spaced validation slices
    val_geometry = [_geometry(data, "val")(i) for i in keep]
    test_sets = [name for name in ("test", "real") if (data / f"{name}_ld.npy").is_file()]

    model = build_model(ModelSpec(**spec.model)).to(device)
    init_output(model, train_fd, hu_range)
    opt = torch.optim.Adam(model.parameters(), lr=tr["lr"])
    loss_spec = spec.loss_spec or {"terms": {"mse": 1.0}, "perceptual": True}  # paper 1: MSE + λ·perceptual
    pixel = weighted_pixel_loss(loss_spec["terms"])
    perceptual_on = bool(loss_spec.get("perceptual")) and ((spec.lam or 0) > 0 or spec.psi_target is not None)
    encoder = _load_encoder(spec, device) if perceptual_on else None
    adv_weight = float(loss_spec.get("adversarial") or 0.0)
    adv = WGANGP(device, **loss_spec["critic"]) if adv_weight > 0 else None
    # the logged terms: each pixel term, then perceptual and adversarial where used (one device vector per step)
    names = [*loss_spec["terms"], *(["perceptual"] if encoder is not None else []), *(["adversarial"] if adv else [])]
    rng = np.random.default_rng(spec.seed)
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda and tr.get("channels_last", True) else torch.contiguous_format
    model = model.to(memory_format=fmt)
    if encoder is not None:
        encoder = encoder.to(memory_format=fmt)
    forward = torch.compile(model) if tr.get("compile", False) else model
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and bool(tr.get("amp", False)))
    on_device = device_split(train_ld, train_fd, hu_range, device)
    src = on_device or (train_ld, train_fd)

    def batch(generator):
        x, y = unit_batch(*src, tr["batch_size"], tr["patch_size"], hu_range, generator, device)
        return x.contiguous(memory_format=fmt), y.contiguous(memory_format=fmt)

    zero = torch.zeros((), device=device)

    def step(x, y, lam, critic: bool = True):
        """One optimiser step (after `n_critic` critic steps on fresh batches when adversarial); returns the
        unweighted terms (in `names` order) and the critic's loss as device tensors (no host sync here)."""
        critic_loss = zero
        if adv is not None and critic:
            for _ in range(adv.n_critic):
                xc, yc = batch(rng)
                with torch.no_grad(), amp:
                    fake = forward(xc).float()
                critic_loss = critic_loss + adv.critic_step(yc, fake) / adv.n_critic
        with amp:
            out = forward(x)
            o = out.float()
            parts = pixel.parts(o, y)
            terms = parts + ([perceptual_loss(encoder, out, y).float() if lam > 0 else zero] if encoder is not None else [])
            l_adv = adv.generator_loss(o).float() if adv is not None else zero
        l_pix = pixel.combine(parts)
        total = (l_pix + (lam * terms[len(parts)] if encoder is not None and lam > 0 else 0)
                 + (adv_weight * l_adv if critic else 0))  # no adversarial term in a pixel-only warm-up
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return torch.stack([t.detach() for t in terms] + ([l_adv.detach()] if adv is not None else [])), critic_loss

    probe = batch(np.random.default_rng(spec.seed + 7919)) if encoder is not None else None  # fixed Ψ_g probe

    out_dir = Path(spec.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    start, history, best, best_score = 0, [], None, -math.inf
    ck = _load_checkpoint(ckpt_path, device)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, history, best, best_score = ck["epoch"] + 1, ck["history"], ck["best"], ck["best_score"]
        if adv is not None:
            adv.load(ck["critic"])
    lam, calibration, hold, epoch, warning = spec.lam or 0.0, None, None, start, None
    if start > 0:
        lam, calibration = ck.get("lam", lam), ck.get("calibration")
    elif spec.psi_target is not None:
        model.train()
        for _ in range(int(tr.get("calibration_steps", 0))):  # pixel-only warm-up before measuring
            step(*batch(rng), 0.0, critic=False)
        cal_rng = np.random.default_rng(spec.seed + 104729)
        calibration = calibrate(model, encoder, [batch(cal_rng) for _ in range(int(tr.get("calibration_batches", 4)))],
                                spec.psi_target, pixel)
        lam = calibration["lam"]
    if spec.psi_target is not None and tr.get("lam_schedule", "fixed") == "hold-psi":
        hold = HoldPsi(spec.psi_target, lam, every=int(tr.get("hold_every", 10)))
        if start > 0 and ck.get("hold"):
            hold.load(ck["hold"])

    n_pix, k = len(pixel.weights), len(names)
    weights = torch.tensor(pixel.weights + ([lam] if encoder is not None else []) + ([adv_weight] if adv else []),
                           device=device, dtype=torch.float64)  # λ's entry is updated where λ changes
    for epoch in range(start, tr["epochs"]):
        model.train()
        t_train = time.perf_counter()
        sums = torch.zeros(2, k, device=device, dtype=torch.float64)  # unweighted, weighted per term
        critic_sum = torch.zeros((), device=device, dtype=torch.float64)
        window, in_window = torch.zeros(2, device=device, dtype=torch.float64), 0  # hold-psi: since its last update
        for _ in range(tr["steps_per_epoch"]):
            values, critic_loss = step(*batch(rng), lam)
            values = values.double()
            sums += torch.stack((values, values * weights))
            critic_sum += critic_loss
            if hold is not None:
                window += torch.stack(((values[:n_pix] * weights[:n_pix]).sum(), values[n_pix]))
                in_window += 1
                if in_window >= hold.every - hold.n:  # one host sync per λ update, not per step
                    lam = hold.add(*window.tolist(), in_window)
                    weights[n_pix] = lam
                    window.zero_()
                    in_window = 0
        if hold is not None and in_window:
            lam = hold.add(*window.tolist(), in_window)
            weights[n_pix] = lam
        raw, weighted = (sums / tr["steps_per_epoch"]).tolist()  # the epoch's one sync
        train_s = time.perf_counter() - t_train
        if not all(math.isfinite(v) for v in raw + weighted):
            raise Diverged(f"non-finite loss at epoch {epoch}: " + ", ".join(f"{n}={v}" for n, v in zip(names, raw)))
        pix = sum(weighted[:n_pix])
        perc = raw[n_pix] if encoder is not None else 0.0
        w_perc = weighted[n_pix] if encoder is not None else 0.0
        val = _validate(model, val_ld, val_fd, val_geometry, hu_range, device, low, high, tr.get("val_metrics") or ["psnr"])
        val_psnr = val["val_psnr"]
        metrics = {"epoch": epoch, "train_loss": sum(weighted), "pixel_loss": pix, "perceptual_loss": perc, "lam": lam,
                   "psi": 0.0 if w_perc == 0 else w_perc / (pix + w_perc), **val,
                   "patches_per_s": tr["steps_per_epoch"] * tr["batch_size"] / train_s}
        shares = term_shares(dict(zip(names, weighted)), dict.fromkeys(names, 1.0))
        for n, u, w in zip(names, raw, weighted):  # every term unweighted, weighted and as its share of the total
            metrics.update({f"loss_{n}": u, f"wloss_{n}": w, f"share_{n}": shares[n]})
        if adv is not None:
            metrics.update({"critic_loss": float(critic_sum) / tr["steps_per_epoch"], "critic_steps": adv.steps})
        if cuda:
            metrics["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            if epoch == start and warning is None:
                from study.trial.packing import packing_warning

                warning = packing_warning(torch.cuda.max_memory_allocated(device),
                                          torch.cuda.get_device_properties(device).total_memory, spec.gpu_fraction)
                if warning:
                    print(f"trial {spec.run_key}: {warning}", flush=True)
        if probe is not None:
            model.train()
            metrics["psi_grad"] = gradient_share(model, encoder, *probe, lam, pixel)
        history.append(metrics)
        if tr.get("select", "best_val") == "last" or val_psnr > best_score:
            best_score, best = val_psnr, {"epoch": epoch, "model": copy.deepcopy(model.state_dict())}
        _save_checkpoint(ckpt_path, {"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                                     "torch_rng": torch.get_rng_state(), "epoch": epoch, "history": history,
                                     "best": best, "best_score": best_score, "lam": lam, "calibration": calibration,
                                     "hold": hold.state() if hold else None,
                                     "critic": adv.state() if adv else None})
        if on_epoch:
            on_epoch(epoch, metrics)

    model.load_state_dict(best["model"])
    per_image, examples = [], {}
    for name in test_sets:
        rows, ex = _test(model, data, name, hu_range, device, low, high, spec.example_images if name == "test" else 0,
                         spec.metrics)
        per_image += rows
        examples.update(ex)
    main = [r for r in per_image if r["test_set"] == "test"]
    last = history[-1]
    numeric = [k for k, v in main[0].items() if isinstance(v, float)]
    means = {k: _mean([r.get(k) for r in main]) for k in numeric}
    for name in test_sets[1:]:  # extra test sets: their means under a prefix (e.g. real_psnr)
        rows = [r for r in per_image if r["test_set"] == name]
        means.update({f"{name}_{k}": _mean([r.get(k) for r in rows]) for k in numeric})
    summary = {"resumed_from": start, "packing_warning": warning,
               "patches_per_s": float(np.median([h["patches_per_s"] for h in history if "patches_per_s" in h] or [np.nan])), "psi": last["psi"], "psi_grad": last.get("psi_grad", 0.0), "lam_final": lam,
               "lam_calibrated": calibration["lam"] if calibration else None,
               "pixel_loss": last["pixel_loss"], "perceptual_loss": last["perceptual_loss"],
               "best_epoch": best["epoch"], "val_psnr": best_score, **means, "wall_s": time.time() - t0,
               "device": str(device), "loss_terms": ",".join(names),
               **{k: v for k, v in last.items() if k.startswith(("loss_", "wloss_", "share_"))}}
    return TrialResult(summary=summary, per_image=per_image, history=history, examples=examples)
