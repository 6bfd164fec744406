"""Factors → trials, and the run key that names a trial everywhere (Ray trial, MLflow run, result rows).

λ = 0 is the pixel-only baseline: it needs no encoder, so the grid holds one baseline per seed rather than one
per (feature level × pretraining). The run key is a stable hash of the canonical trial config, including the
ids of the data and of the encoder weights, so changing any of them gives new trials and adding a λ value
adds only the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from study.spec import StudySpec
from study.store.ids import short_hash

NONE = "none"  # feature_level / pretraining of the pixel-only baseline
BASELINE = "pixel-only"  # the baseline's configuration label (the analysis compares against it)


def weighting_label(lam, psi_target=None) -> str:
    """How a trial weights its perceptual term: "Ψ=<psi_target>" where a Ψ target is set, else "λ=<lam>"."""
    if _set(psi_target):
        return f"Ψ={psi_target:g}"
    return f"λ={float(lam):g}"


def _set(v) -> bool:
    return v is not None and v == v  # not None, not NaN


@dataclass(frozen=True)
class Trial:
    feature_level: str
    pretraining: str
    lam: Optional[float]  # None for a Ψ-target trial (λ is calibrated inside the trial)
    seed: int
    psi_target: Optional[float] = None
    loss: Optional[str] = None  # a level of the `loss` factor (None: paper 1's MSE + λ·perceptual)
    lam_converged: Optional[float] = None  # Ψ target, psi_calibration: converged: λ from the pilot's magnitudes
    pilot_keys: tuple = ()  # psi_pilot: self: the run keys of this study's fixed-λ trials the λ comes from
    run_key: str = ""
    config: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_baseline(self) -> bool:
        return self.lam == 0

    @property
    def configuration(self) -> str:
        """Label of the configuration (all factors but the seed)."""
        return configuration_label(self.feature_level, self.pretraining, self.lam, self.psi_target, self.loss)

    def factors(self) -> dict:
        f = {"feature_level": self.feature_level, "pretraining": self.pretraining, "lam": self.lam, "seed": self.seed}
        if self.psi_target is not None:  # only then: fixed-λ run keys stay what they were
            f["psi_target"] = self.psi_target
        if self.loss is not None:  # likewise for studies without a loss factor
            f["loss"] = self.loss
        if self.lam_converged is not None:
            f["lam_converged"] = self.lam_converged
        if self.pilot_keys:
            f["lam_from"] = list(self.pilot_keys)
        return f


def configuration_label(feature_level: str, pretraining: str, lam: Optional[float], psi_target: Optional[float] = None,
                        loss: Optional[str] = None) -> str:
    if loss is not None:
        return loss if lam == 0 else f"{loss} · {configuration_label(feature_level, pretraining, lam, psi_target)}"
    if not _set(psi_target) and lam == 0:
        return BASELINE
    return f"{feature_level} · {pretraining} · {weighting_label(lam, psi_target)}"



def _training_key(spec: StudySpec) -> dict:
    """The training section as run keys hash it: what does not change the outcome stays out (threads, device, …;
    steps_per_epoch of a tiled pass, which the data fix), and so do new fields at their defaults (amp off, random
    patches), so that keys written before them stay what they were."""
    tiled = spec.training.patches == "tiled"
    return {k: v for k, v in spec.training.model_dump().items()
            if k not in ("threads", "device", "channels_last", "compile", "val_metrics", "keep_checkpoint")
            and not (k == "amp" and not v) and not (k == "patches" and not tiled)
            and not (k == "steps_per_epoch" and tiled) and k != "psi_pilot"  # its λ values are keyed instead
            and not (k == "psi_calibration" and v == "start")}


def _window_key(spec: StudySpec) -> dict:
    """The metric window as run keys hash it: `bits` only where set, and an unnamed (custom) window under the name
    "abdomen" that keys gave it before custom windows were labelled by their own values (a name changes no metric)."""
    w = spec.window.model_dump(exclude_none=True)
    w.setdefault("name", "abdomen")
    return w


def trial_config(spec: StudySpec, t: Trial, data_id: str, encoder_ids: dict[str, str]) -> dict:
    """Everything that determines a trial's outcome, in canonical form."""
    cfg = {
        "factors": t.factors(),
        "model": spec.model.model_dump(),
        "training": _training_key(spec),
        "data_id": data_id,
        "metric_window": _window_key(spec),
    }
    if t.loss is not None:
        loss = spec.loss(t.loss)
        cfg["loss"] = loss.model_dump(exclude=set() if loss.adversarial else {"critic"})
    if not t.is_baseline:
        enc = spec.encoder(t.pretraining)
        cfg["encoder_id"] = encoder_ids[t.pretraining]
        cfg["encoder_input"] = enc.input
    return cfg


def keyed(spec: StudySpec, t: Trial, data_id: str, encoder_ids: dict[str, str]) -> Trial:
    """`t` with its canonical config and the run key hashed from it (the one naming rule of every trial)."""
    cfg = trial_config(spec, t, data_id, encoder_ids)
    return replace(t, run_key=short_hash(cfg), config=cfg)


def refinement_trial(spec: StudySpec, feature_level: str, pretraining: str, seed: int, data_id: str,
                     encoder_ids: dict[str, str], *, psi_target: Optional[float] = None,
                     lam: Optional[float] = None) -> Trial:
    """The trial of one point the Optuna refinement samples (a Ψ target, or a λ): keyed like the grid's, so a point
    that is also in the grid is the grid's trial (same run key, same folder) and is not trained twice."""
    if (psi_target is None) == (lam is None):
        raise ValueError("a refinement point has either a Ψ target or a λ")
    psi = None if psi_target is None else float(psi_target)
    lam = None if lam is None else float(lam)
    return keyed(spec, Trial(feature_level, pretraining, lam, int(seed), psi), data_id, encoder_ids)


def expand(spec: StudySpec, data_id: str, encoder_ids: dict[str, str]) -> list[Trial]:
    """All trials of the study, baselines first, each with its run key. No duplicates."""
    f = spec.factors
    seen: dict[tuple, Trial] = {}
    arms = [(float(lam), None) for lam in sorted(set(f.lam))] + [(None, float(p)) for p in sorted(set(f.psi_target))]
    # without a loss factor: paper 1's grid (λ = 0 is the pixel-only baseline); with one, each loss without a
    # perceptual term is one trial per seed and each loss with one is crossed with the perceptual arms (λ > 0, Ψ)
    losses = [(None, arms)] if not f.loss else [
        (name, [a for a in arms if a[0] != 0] if spec.loss(name).perceptual else [(0.0, None)]) for name in f.loss]
    for seed in f.seed:
        for loss, loss_arms in losses:
            for lam, psi in loss_arms:
                levels = [NONE] if lam == 0 else f.feature_level
                pretrainings = [NONE] if lam == 0 else f.pretraining
                for level in levels:
                    for pre in pretrainings:
                        key = (loss, level, pre, lam, psi, int(seed))
                        if key in seen:
                            continue
                        seen[key] = keyed(spec, Trial(level, pre, lam, int(seed), psi, loss), data_id, encoder_ids)
    order = {name: i for i, name in enumerate(f.loss)}
    return sorted(seen.values(), key=lambda t: (order.get(t.loss, -1), not t.is_baseline, t.feature_level,
                                                t.pretraining, t.psi_target is not None, t.lam or 0.0,
                                                t.psi_target or 0.0, t.seed))
