"""P-values for prose and for families: formatting, and Holm / Benjamini–Hochberg adjustment."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests


def p_clause(p: float, name: str = "p") -> str:
    """'p = 0.012' or 'p < 0.001' for prose."""
    text = format_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3f}"


def adjust(pvalues, correction: str = "holm") -> np.ndarray:
    """Family-wise (Holm) or false-discovery (Benjamini–Hochberg, "fdr_bh") adjustment; "none" returns them as is."""
    p = np.asarray(pvalues, float)
    if p.size == 0 or correction == "none":
        return p
    out = np.full(p.shape, np.nan)  # a comparison without a test (NaN) is left out of the family
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _holm(p[ok]) if correction == "holm" else multipletests(p[ok], method=correction)[1]
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment. statsmodels' `multipletests(method="holm")` gives the same numbers but runs a full
    `gc.collect()` on every call (about 50 ms in a report process; 38% of the time to build a study's claims)."""
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return out
