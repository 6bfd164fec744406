"""Perceptual influence in training: λ for a target Ψ from measured loss magnitudes, λ held at a target Ψ, and the
gradient share Ψ_g. Pure torch; no Ray, MLflow or SLURM.
"""

from __future__ import annotations

import torch

from study.losses.psi import lam_for_influence
from study.losses.terms import mse_loss, perceptual_loss


@torch.no_grad()
def loss_magnitudes(model, encoder, batches, pixel=mse_loss) -> tuple[float, float]:
    """Mean L_pixel and unweighted L_P of `model` over `batches` [(x, y), ...] (the model in train mode, as in
    training). `pixel(out, y)`: the pixel part of the loss (MSE, or a weighted sum of pixel terms)."""
    pix = perc = 0.0
    for x, y in batches:
        out = model(x)
        pix += float(pixel(out, y))
        perc += float(perceptual_loss(encoder, out, y))
    return pix / len(batches), perc / len(batches)


def calibrate(model, encoder, batches, psi: float, pixel=mse_loss) -> dict:
    """λ such that Ψ = psi at the measured magnitudes (paper 1's recipe, done before training instead of after)."""
    pix, perc = loss_magnitudes(model, encoder, batches, pixel)
    return {"lam": lam_for_influence(psi, pix, perc), "pixel_loss": pix, "perceptual_loss": perc, "psi_target": psi}


def gradient_share(model, encoder, x, y, lam: float, pixel=mse_loss) -> float:
    """Ψ_g = ‖λ ∇_out L_P‖ / (‖∇_out L_pixel‖ + ‖λ ∇_out L_P‖) at the network output on a probe batch: how much of
    the signal that actually steers the network comes from the perceptual term."""
    out = model(x).detach().requires_grad_(True)
    g_pix = torch.autograd.grad(pixel(out, y), out)[0]
    g_per = torch.autograd.grad(perceptual_loss(encoder, out, y), out)[0] * lam
    a, b = float(g_pix.norm()), float(g_per.norm())
    return 0.0 if b == 0 else b / (a + b)


class HoldPsi:
    """Re-solves λ every `every` steps from running means of both terms so that Ψ stays at `target`; each update
    changes λ by at most a factor `max_change` (keeps the optimiser from being jolted)."""

    def __init__(self, target: float, lam: float, every: int = 10, max_change: float = 2.0):
        self.target, self.lam, self.every, self.max_change = target, lam, every, max_change
        self.pix = self.perc = 0.0
        self.n = 0

    def step(self, pix: float, perc: float) -> float:
        self.pix, self.perc, self.n = self.pix + pix, self.perc + perc, self.n + 1
        if self.n >= self.every and self.perc > 0 and self.pix > 0:
            want = lam_for_influence(self.target, self.pix / self.n, self.perc / self.n)
            self.lam = min(max(want, self.lam / self.max_change), self.lam * self.max_change)
            self.pix = self.perc = 0.0
            self.n = 0
        return self.lam

    def add(self, pix_sum: float, perc_sum: float, n: int) -> float:
        """`n` steps at once (their summed terms): the same as n calls of `step` when n reaches at most the next
        update, which is how the trainer calls it (one host sync per update instead of one per step)."""
        self.pix, self.perc, self.n = self.pix + pix_sum, self.perc + perc_sum, self.n + n - 1
        return self.step(0.0, 0.0)

    def state(self) -> dict:
        return {"lam": self.lam, "pix": self.pix, "perc": self.perc, "n": self.n}

    def load(self, state: dict) -> None:
        self.lam, self.pix, self.perc, self.n = state["lam"], state["pix"], state["perc"], state["n"]
