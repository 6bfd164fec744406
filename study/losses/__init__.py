"""Loss terms: pixel terms (`terms`), the VGG perceptual term, the WGAN-GP adversarial term (`adversarial`) and
the perceptual influence Ψ (`psi`: formula and inverse, torch-free; `influence`: calibration, hold-Ψ, gradient
share). Pure math: no Ray, MLflow or SLURM.

`perceptual_influence` and `lam_for_influence` (the contract names) are imported here; the torch-based names load
on first use, so `study.losses.psi` stays importable without torch (the analysis uses it).
"""

from importlib import import_module

from study.losses.psi import lam_for_influence, perceptual_influence

_LAZY = {"mse_loss": "terms", "perceptual_loss": "terms", "PIXEL_TERMS": "terms", "weighted_pixel_loss": "terms",
         "term_shares": "terms", "calibrate": "influence", "HoldPsi": "influence", "gradient_share": "influence"}

__all__ = ["lam_for_influence", "perceptual_influence", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"study.losses.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'study.losses' has no attribute {name!r}")
