"""How a trial is measured: its report after every epoch (losses per term, λ, Ψ, validation on evenly spaced
slices), the selected weights on full test slices (per image, output and low-dose input), the example slices
(chosen by `study.trial.examples`), and the trial's summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from study.data.ct import hu_to_unit, unit_to_hu
from study.losses.influence import gradient_share
from study.losses.terms import term_shares
from study.metrics.registry import quality_metrics
from study.trial.examples import Examples, choose
from study.trial.packing import packing_warning

#: what a trial reports after every epoch (besides `epoch`)
EPOCH_METRICS = ("train_loss", "pixel_loss", "perceptual_loss", "lam", "psi", "psi_grad", "val_psnr", "val_mse",
                 "patches_per_s", "peak_mem_mb")
EPOCH_PREFIXES = ("loss_", "wloss_", "share_", "val_", "critic_")  # per term / per validation metric


def is_epoch_metric(name: str) -> bool:
    """A key of a trial's per-epoch report (what goes to MLflow as a series), not one Ray Tune adds."""
    return name in EPOCH_METRICS or name.startswith(EPOCH_PREFIXES)


@torch.no_grad()
def predict(model, slices_hu: np.ndarray, hu_range, device, chunk: int = 4) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(slices_hu), chunk):
        x = torch.from_numpy(hu_to_unit(np.asarray(slices_hu[i:i + chunk], np.float32), *hu_range))[:, None].to(device)
        out.append(unit_to_hu(model(x)[:, 0].float().cpu().numpy(), *hu_range))
    return np.concatenate(out)


def geometry(data: Path, name: str):
    """Slice index → the phantom's label map, body outline and pixel size (what the CT-specific metrics need), or {}
    where the data have none (DICOM sources, the real slices). The split's meta and label maps are opened once."""
    meta_path, labels_path = data / f"{name}_meta.json", data / f"{name}_labels.npy"
    if not (meta_path.is_file() and labels_path.is_file()):
        return lambda i: {}
    metas, labels = json.loads(meta_path.read_text()), np.load(labels_path, mmap_mode="r")
    return lambda i: ({"labels": np.asarray(labels[i]), "body": metas[i]["body"], "pixel_mm": metas[i]["pixel_mm"]}
                      if "body" in metas[i] else {})


def mean(values) -> float:
    """Mean of the finite values (a CT-specific metric is NaN or absent on slices without phantom geometry)."""
    v = np.array([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


@dataclass
class Measures:
    """The metrics a trial computes: at validation (`val`) and test (`test`), those left out because they cannot run
    here (`skipped`: name → the one-line reason, e.g. a backbone missing from torchvision's cache), and what the
    metrics need besides the images (`kw`: the device, the CT-NIQE model)."""

    val: list
    test: list
    skipped: dict = field(default_factory=dict)
    kw: dict = field(default_factory=dict)


def measures(spec, device) -> Measures:
    """The trial's `Measures`: skipped metrics are named in the job log (and in the record, then the report); the
    CT-NIQE model is fitted once per data folder and window (study.metrics.no_reference.ct_niqe_model)."""
    from study.metrics.registry import usable_metrics

    test, skipped = usable_metrics(list(spec.metrics))
    val, skipped_val = usable_metrics(list(spec.training.val_metrics))
    skipped |= skipped_val
    for name, why in skipped.items():
        print(f"trial {spec.run_key}: metric {name} skipped: {why}", flush=True)
    kw = {"device": device}
    if "ct_niqe" in test + val:
        from study.metrics.no_reference import ct_niqe_model

        kw["ct_niqe_model"] = ct_niqe_model(Path(spec.data_path), spec.data_id, spec.window.bounds)
    return Measures(val, test, skipped, kw)


def validate(model, splits, hu_range, device, window, names, kw: dict | None = None) -> dict:
    """Validation metrics of this epoch (means over the validation slices; NaN-aware for the CT-specific ones)."""
    low, high = window.bounds
    pred = predict(model, splits.val_ld, hu_range, device)
    names = ["psnr", *[n for n in names if n != "psnr"]]
    rows = [quality_metrics(p, r, low, high, names, bits=window.bits, **g, **(kw or {}))
            for p, r, g in zip(pred, splits.val_fd, splits.val_geometry)]
    out = {f"val_{n}": mean([r.get(n) for r in rows]) for n in names}
    out["val_mse"] = float(np.mean((hu_to_unit(pred, *hu_range) - hu_to_unit(splits.val_fd, *hu_range)) ** 2))
    return out


def epoch_metrics(t, run, splits, raw: list, weighted: list, critic_sum, train_s: float) -> dict:
    """What epoch `run.epoch` of trainer `t` reports: the losses (total, pixel, perceptual; every term unweighted,
    weighted and as its share), λ, Ψ, validation metrics, throughput, critic, GPU memory and Ψ_g on the probe."""
    spec, k = t.spec, t.n_pix
    pix = sum(weighted[:k])
    perc = raw[k] if t.encoder is not None else 0.0
    w_perc = weighted[k] if t.encoder is not None else 0.0
    val = validate(t.model, splits, tuple(spec.hu_range), t.device, spec.window, t.measures.val, t.measures.kw)
    metrics = {"epoch": run.epoch, "train_loss": sum(weighted), "pixel_loss": pix, "perceptual_loss": perc,
               "lam": run.lam, "psi": 0.0 if w_perc == 0 else w_perc / (pix + w_perc), **val,
               "patches_per_s": t.patches_per_epoch / train_s}
    shares = term_shares(dict(zip(t.names, weighted)), dict.fromkeys(t.names, 1.0))
    for n, u, w in zip(t.names, raw, weighted):  # every term unweighted, weighted and as its share of the total
        metrics.update({f"loss_{n}": u, f"wloss_{n}": w, f"share_{n}": shares[n]})
    if t.adv is not None:
        metrics.update({"critic_loss": float(critic_sum) / t.steps_per_epoch, "critic_steps": t.adv.steps})
    if t.device.type == "cuda":
        metrics["peak_mem_mb"] = torch.cuda.max_memory_allocated(t.device) / 2**20
        if run.epoch == run.start and run.warning is None:
            run.warning = _packing_warning(t)
    if t.probe is not None:
        t.model.train()
        metrics["psi_grad"] = gradient_share(t.model, t.encoder, *t.probe, run.lam, t.pixel)
    return metrics


def _packing_warning(t):
    """After the first epoch on a GPU: a warning where the trial's peak memory will not fit its share of the GPU."""
    warning = packing_warning(torch.cuda.max_memory_allocated(t.device),
                              torch.cuda.get_device_properties(t.device).total_memory, t.spec.gpu_fraction)
    if warning:
        print(f"trial {t.spec.run_key}: {warning}", flush=True)
    return warning


def measure_test_set(model, data: Path, name: str, hu_range, device, window, n_examples: int, names,
                     kw: dict | None = None):
    """Per-image metrics of the output and of the low-dose input on one test set (full slices), and up to
    `n_examples` example slices (`study.trial.examples.Examples`, chosen from the test set alone)."""
    low, high = window.bounds
    ld, fd = np.load(data / f"{name}_ld.npy", mmap_mode="r"), np.load(data / f"{name}_fd.npy", mmap_mode="r")
    meta_path = data / f"{name}_meta.json"
    metas = json.loads(meta_path.read_text()) if meta_path.is_file() else [
        {"image_id": f"{name}-{i:04d}", "patient": "", "block": f"{name}-{i:04d}"} for i in range(len(ld))]
    choice = choose(data, name, (low, high), n_examples, metas)
    rows, kept, geo = [], {}, geometry(data, name)
    for start in range(0, len(ld), 16):  # bounded memory on large test sets
        x, r = np.asarray(ld[start:start + 16]), np.asarray(fd[start:start + 16])
        pred = predict(model, x, hu_range, device)
        for k, (p, xi, ri) in enumerate(zip(pred, x, r)):
            m, g = metas[start + k], geo(start + k)
            row = {"image_id": m["image_id"], "patient": m["patient"], "block": m["block"], "test_set": name,
                   **quality_metrics(p, ri, low, high, names, bits=window.bits, **g, **(kw or {}))}
            row.update({f"input_{key}": v for key, v in
                        quality_metrics(xi, ri, low, high, names, bits=window.bits, **g, **(kw or {})).items()})
            rows.append(row)
            if start + k in choice.indices:
                kept[start + k] = (xi, p, ri)
    ids = [metas[i]["image_id"] for i in choice.indices]
    return rows, Examples({iid: kept[i] for iid, i in zip(ids, choice.indices)}, dict(zip(ids, choice.zoom)),
                          dict(zip(ids, choice.rule)), choice.choice)


def measure_tests(model, spec, splits, device, ms: Measures | None = None) -> tuple[list[dict], Examples]:
    """Every test set of the data (`test`, and `real` where there is one): per-image rows and example slices (from
    `test` only). `ms`: the trial's `Measures` (default: the spec's metrics, as they are)."""
    per_image, examples = [], Examples()
    ms = ms or Measures(list(spec.training.val_metrics), list(spec.metrics))
    for name in splits.test_sets:
        rows, ex = measure_test_set(model, Path(spec.data_path), name, tuple(spec.hu_range), device, spec.window,
                                    spec.example_images if name == "test" else 0, ms.test, ms.kw)
        per_image += rows
        examples = ex if len(ex) else examples
    return per_image, examples


def means_over_tests(per_image: list[dict], test_sets: list[str]) -> dict:
    """Means of every numeric column over the main test set; those of extra test sets under a prefix (real_psnr)."""
    main = [r for r in per_image if r["test_set"] == "test"]
    numeric = [k for k, v in main[0].items() if isinstance(v, float)]
    means = {k: mean([r.get(k) for r in main]) for k in numeric}
    for name in test_sets[1:]:
        rows = [r for r in per_image if r["test_set"] == name]
        means.update({f"{name}_{k}": mean([r.get(k) for r in rows]) for k in numeric})
    return means


def summarise(run, means: dict, names: list[str], device, wall_s: float) -> dict:
    """The trial's summary (its result.json fields besides the spec): the last epoch's losses and Ψ, λ, the selected
    epoch and its validation PSNR, the test means, throughput and where it ran."""
    last, history = run.history[-1], run.history
    rates = [h["patches_per_s"] for h in history if "patches_per_s" in h]
    return {"resumed_from": run.start, "packing_warning": run.warning,
            "patches_per_s": float(np.median(rates or [np.nan])), "psi": last["psi"],
            "psi_grad": last.get("psi_grad", 0.0), "lam_final": run.lam,
            "lam_calibrated": run.calibration["lam"] if run.calibration else None,
            "pixel_loss": last["pixel_loss"], "perceptual_loss": last["perceptual_loss"],
            "best_epoch": run.best["epoch"], "val_psnr": run.best_score, **means, "wall_s": wall_s,
            "device": str(device), "loss_terms": ",".join(names),
            **{k: v for k, v in last.items() if k.startswith(("loss_", "wloss_", "share_"))}}
