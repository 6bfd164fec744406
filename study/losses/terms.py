"""Loss terms and the perceptual influence Ψ (pure math: no Ray, MLflow or SLURM).

Ψ = λ·L_P / (L_pixel + λ·L_P) is the share of the total loss that is perceptual (paper 1). Loss magnitudes differ by
orders of magnitude between layers and encoders, so λ alone says little; Ψ says how much the pixel term still counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (paper 1's pixel term)."""
    return F.mse_loss(output, target)


def perceptual_loss(encoder, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between frozen encoder features of output and target (target features carry no gradient)."""
    with torch.no_grad():
        ft = encoder(target)
    return F.mse_loss(encoder(output), ft)

def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output, target)


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt((x − y)² + ε²) − ε: a smooth L1 that is exactly 0 at identity."""
    return (torch.sqrt((output - target) ** 2 + eps**2) - eps).mean()


def ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − SSIM (Gaussian window 11, σ 1.5, data range 1; torchmetrics)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    return 1 - ssim(output, target, data_range=1.0)


def ms_ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − MS-SSIM (torchmetrics) over as many of the 5 standard scales as the patch allows
    (`study.metrics.quality.ms_ssim_betas`), the standard weights renormalised."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    from study.metrics.quality import ms_ssim_betas

    return 1 - ms_ssim(output, target, data_range=1.0, betas=ms_ssim_betas(min(output.shape[-2:])), normalize="relu")


_SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    k = torch.stack([_SOBEL, _SOBEL.T])[:, None].to(x)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return torch.sqrt(g.pow(2).sum(1, keepdim=True) + 1e-12)


def sobel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between Sobel gradient magnitudes: penalises blurred or displaced edges."""
    return F.l1_loss(sobel_magnitude(output), sobel_magnitude(target))


#: the pixel-level loss terms a spec can combine by name (perceptual and adversarial need a network each)
PIXEL_TERMS = {"mse": mse_loss, "l1": l1_loss, "charbonnier": charbonnier_loss, "ssim": ssim_loss,
               "ms_ssim": ms_ssim_loss, "sobel": sobel_loss}


def term_shares(values: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    """Ψ generalised to k terms: each term's share |w_i·L_i| / Σ_j |w_j·L_j| of the total loss (0 when the total is
    0). Magnitudes, because an adversarial term (−E[D(G(x))]) has a sign; for non-negative terms this is w_i·L_i / L."""
    weighted = {k: abs(weights[k] * values[k]) for k in values}
    total = sum(weighted.values())
    return {k: (v / total if total else 0.0) for k, v in weighted.items()}


def weighted_pixel_loss(terms: dict[str, float]):
    """The pixel part Σ w_i·L_i of a loss (config.LossSpec.terms) as one function (out, target) → tensor, with
    `fn.parts(out, target)` → [L_i] (unweighted), `fn.combine([L_i])` → Σ w_i·L_i and `fn.weights` → [w_i]."""
    fns = [PIXEL_TERMS[name] for name in terms]
    weights = [float(w) for w in terms.values()]

    def parts(output, target):
        return [fn(output, target) for fn in fns]

    def combine(values):
        return sum(w * v for w, v in zip(weights, values))

    def total(output, target):
        return combine(parts(output, target))

    total.parts, total.combine, total.weights = parts, combine, weights
    return total
