"""One look for every figure of the report, and the names and units its axes carry.

Figures are written twice by `analysis.figures.save`: a PNG for the Markdown/HTML report and a vector PDF twin for a
paper (fonts embedded as TrueType, so the text stays text and journals accept it).
"""

from __future__ import annotations

from study.spec.metric_names import METRIC_INFO  # torch-free

PNG_DPI = 150  # the report's raster copy; the PDF twin is vector

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 7, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": False, "lines.linewidth": 1.3, "lines.markersize": 4, "image.interpolation": "nearest",
    "savefig.dpi": PNG_DPI, "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "figure.dpi": 100,
}

NAMES = {k: m.label for k, m in METRIC_INFO.items()}  # the one metric table: study.spec.metric_names

FACTORS = {"weighting": "loss weighting", "lam": "λ", "psi_target": "Ψ target", "feature_level": "feature level", "pretraining": "pretraining",
           "loss": "loss", "seed": "seed"}


def metric_name(metric: str) -> str:
    """The metric as a paper writes it: 'PSNR', 'LPIPS (AlexNet)'; unknown names unchanged."""
    return NAMES.get(metric, metric)


def unit(metric: str) -> str:
    """The metric's unit ('dB', 'HU', 'mm') or '' (analysis.load.unit_suffix without its space)."""
    info = METRIC_INFO.get(metric)
    return info.unit if info else ""


def metric_label(metric: str, prefix: str = "") -> str:
    """An axis label with its unit: 'PSNR (dB)', 'mean RMSE (HU)', 'SSIM'."""
    u = unit(metric)
    text = f"{prefix} {metric_name(metric)}".strip()
    return f"{text} ({u})" if u else text


def factor_name(factor: str) -> str:
    """A design factor as a reader names it: 'λ', 'Ψ target', 'feature level'."""
    return FACTORS.get(factor, factor.replace("_", " "))
