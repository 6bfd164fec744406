"""Bootstrap confidence intervals of the median of paired differences: one sample (`median_ci`) or every column of
a table at once (`median_cis`), with the same resamples and the same intervals."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr, ndtri


def median_ci(d, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap (BCa, percentile where BCa is degenerate) confidence interval of the median of paired differences."""
    d = np.asarray(d, float)
    if d.size < 2 or np.all(d == d[0]):
        return float(np.median(d)) if d.size else float("nan"), float(np.median(d)) if d.size else float("nan")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((d,), np.median, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                            rng=rng)
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            res = sps.bootstrap((d,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                                method="percentile", rng=np.random.default_rng(seed))
            lo, hi = res.confidence_interval
    return float(lo), float(hi)


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median of NaN-free data, bit for bit (the middle element, or the two middle ones added and halved), from a
    full sort: several times faster than np.median on the many short rows of a bootstrap."""
    s = np.moveaxis(np.sort(x, axis=axis), axis, -1)
    n = s.shape[-1]
    return s[..., n // 2].copy() if n % 2 else (s[..., n // 2 - 1] + s[..., n // 2]) / 2


def _jackknife_acceleration(theta_i: np.ndarray) -> float:
    """scipy's BCa acceleration from one sample's jackknife statistics, with the arithmetic of a one-sample
    `bootstrap` call (a 1-D mean and sums). NaN when the jackknife values are all equal (0 / 0)."""
    theta_i = np.ascontiguousarray(theta_i, dtype=float)
    n = float(theta_i.shape[-1])
    u = (n - 1) * (np.mean(theta_i, axis=-1, keepdims=True) - theta_i)
    num = np.sum(u**3, axis=-1) / n**3
    den = np.sum(u**2, axis=-1) / n**2
    with np.errstate(all="ignore"):
        return float(1 / 6 * (0 + num) / (0 + den) ** (3 / 2))


def median_cis(x: np.ndarray, n_resamples: int = 2000, seed: int = 0, chunk: int = 256,
               confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`median_ci` for every column of x (no NaN) at once: the same resamples as per-column calls with the same seed,
    and the same intervals.

    One batched BCa bootstrap per chunk of columns. Where a column's jackknife medians are all equal (ties at the
    median), the acceleration is 0 / 0 in a per-column call, whose interval is then non-finite and `median_ci` falls
    back to percentile; the batched call sums the jackknife values in another order, and a rounding error in their
    mean gives a spurious finite acceleration (± 1 / (6 √n)) and a different interval. For those columns (and any whose
    jackknife values are equal to within rounding) the acceleration is recomputed as a one-column call computes it,
    the BCa interval rebuilt from the same bootstrap distribution, and columns left non-finite get the percentile
    interval of that distribution, as in `median_ci`."""
    k = x.shape[1]
    lo, hi = np.full(k, np.nan), np.full(k, np.nan)
    n = x.shape[0]
    if n < 2:
        lo[:] = hi[:] = np.median(x, axis=0) if n else np.nan
        return lo, hi
    flat = np.all(x == x[0], axis=0)
    lo[flat] = hi[flat] = x[0, flat]
    idx = np.flatnonzero(~flat)
    chunk = max(1, min(chunk, 2**24 // (n_resamples * n)))  # resamples of a chunk: at most 16M values
    leave_one_out = np.array([np.delete(np.arange(n), i) for i in range(n)])  # (n, n − 1), as scipy's jackknife
    for start in range(0, idx.size, chunk):
        cols = idx[start:start + chunk]
        data = np.ascontiguousarray(x[:, cols].T)  # (columns, n)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            lo[cols], hi[cols] = _chunk_cis(data, leave_one_out, n_resamples, seed, confidence)
    return lo, hi


def _chunk_cis(data: np.ndarray, leave_one_out: np.ndarray, n_resamples: int, seed: int,
               confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The intervals of `median_cis` for the rows of `data` (columns × n, none constant): one batched BCa bootstrap,
    the acceleration recomputed where the jackknife medians are all equal, the percentile interval where BCa is
    not finite."""
    alpha = (1 - confidence) / 2
    res = sps.bootstrap((data,), _median, axis=-1, vectorized=True, method="BCa", confidence_level=confidence,
                        n_resamples=n_resamples, rng=np.random.default_rng(seed))
    a, b = (np.array(v, dtype=float, ndmin=1) for v in res.confidence_interval)
    theta_b = res.bootstrap_distribution  # (columns, n_resamples)
    jack = _median(data[:, leave_one_out], axis=-1)  # (columns, n) jackknife medians
    scale = np.abs(jack).max(axis=-1)
    fix = np.flatnonzero(np.ptp(jack, axis=-1) <= 1e-12 * scale)
    if fix.size:
        acc, cache = np.empty(fix.size), {}
        for i, row in enumerate(jack[fix]):  # few distinct rows: tied medians repeat
            key = row.tobytes()
            acc[i] = cache[key] if key in cache else cache.setdefault(key, _jackknife_acceleration(row))
        a[fix], b[fix] = _bca_interval(theta_b[fix], _median(data[fix], axis=-1)[:, None], acc, float(ndtri(alpha)))
    bad = np.flatnonzero(~(np.isfinite(a) & np.isfinite(b)))
    if bad.size:  # percentile interval of the same bootstrap distribution (what method="percentile" gives)
        ci = sps.quantile(theta_b[bad], np.asarray([alpha, 1 - np.float64(alpha)]), axis=-1)
        a[bad], b[bad] = ci[..., 0], ci[..., 1]
    return a, b


def _bca_interval(tb: np.ndarray, theta_hat: np.ndarray, acc: np.ndarray,
                  z_alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """scipy's BCa interval (Efron & Tibshirani 14.3, 15.4) from bootstrap distributions `tb` (rows), the estimates
    `theta_hat` (rows × 1) and the accelerations `acc`."""
    pct = ((tb < theta_hat).sum(axis=-1) + (tb <= theta_hat).sum(axis=-1)) / (2 * tb.shape[-1])
    z0 = ndtri(pct)
    num1, num2 = z0 + z_alpha, z0 - z_alpha
    a1 = ndtr(z0 + num1 / (1 - acc * num1))
    a2 = ndtr(z0 + num2 / (1 - acc * num2))
    ci = sps.quantile(tb, np.stack([a1, a2], axis=-1), axis=-1)
    return ci[..., 0], ci[..., 1]
