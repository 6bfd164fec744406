"""The fast path's judges (analysis.planning_fast): per study of a batch of Stats, what the report's claims code
would decide about a planted effect, and whether it makes a false claim, with the report's estimators.

- a level of a factor is found when it is the recommended (best-mean) level and its contrast with the second level
  is separated at α by the levels family's max-t (the `levels` table of analysis.claims);
- the best configuration is found when it has the best mean and its contrast with the pixel-only baseline is
  separated at α by the max-t over all pairs of configurations (the `vs_best` table);
- a null study makes a false claim when a factor term (main or two-way, quasi-F, Holm over the terms) is
  significant, which every better/worse/depends claim needs (gatekeeping), where the true means are flat (over
  these test patients, whose own terms make them differ, a term is true of them; a level claim against its true
  gap is not judged here), or when its `best` claim beats (p_adj < α
  and ≥ δ) a configuration whose true mean is at least as good (analysis.judge.best_beats/other_firm).

Contrasts of a balanced grid are marginal means: their weights are the report's (`level_weights`: ±1 over the
other factors' combinations), their SE and df come from `Variance.combination`, their p from the reference draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats as sps

from analysis.factors import configuration_cells, level_pairs
from analysis.networks import Networks
from analysis.planning_fast import FACTORS, Layout, Stats, variance
from analysis.pvalues import adjust
from analysis.simultaneous import Reference, max_over_contrasts, max_over_pairs, normal_deviate


@dataclass(frozen=True)
class References:
    """A candidate's family reference draws (analysis.simultaneous): all pairs of configurations, and all pairs of
    levels of every factor (None without factors)."""

    pairs: Reference
    levels: Reference | None


def references(lay: Layout, nets: Networks) -> References:
    """The report's reference draws for one study (analysis.planning_fast.networks of drawn Stats, or a study the
    report analysed)."""
    pairs = max_over_pairs(nets, list(nets.config_means.index))
    if not lay.factors:
        return References(pairs, None)
    cells = configuration_cells(nets, list(lay.factors))
    return References(pairs, max_over_contrasts(nets, [w for f in lay.factors for w in level_pairs(cells, f)]))


def p_adjusted(ref: Reference, t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Single-step max-t p (analysis.simultaneous.simultaneous): the share of reference maxima at least as large."""
    maxima = np.sort(ref.maxima[np.isfinite(ref.maxima)])
    if not maxima.size:
        return np.full(np.shape(t), np.nan)
    stat = np.abs(t) if ref.scale == "t" else normal_deviate(t, df)
    beyond = maxima.size - np.searchsorted(maxima, stat, side="left")
    return np.minimum((1 + beyond) / (1 + maxima.size), 1.0)


def t_values(lay: Layout, st: Stats, est: np.ndarray, a, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """t and Satterthwaite df of contrasts (studies × contrasts: estimate, Σw²/n, test-set variance)."""
    t, df = np.empty_like(est), np.empty_like(est)
    for r in range(len(st)):
        var, df[r] = variance(lay, st, r).combination(np.broadcast_to(a, est[r].shape), q[r], st.df)
        with np.errstate(divide="ignore", invalid="ignore"):
            t[r] = np.where(var > 0, est[r] / np.sqrt(var), np.where(est[r] == 0, 0.0, np.inf))
    return t, df


def _test_variance(st: Stats, w: np.ndarray) -> np.ndarray:
    """Units.test_variance of the contrasts: w is (studies × contrasts × units-dev) already applied, summed here."""
    return st.kappa * (w**2).sum(axis=-1) / st.df if st.df > 0 else np.zeros(w.shape[:-1])


def _cube(lay: Layout, x: np.ndarray) -> np.ndarray:
    """(…, K) → (…, levels, pretrainings, λ) over the non-baseline configurations."""
    return x[..., lay.cube]


def level_p(lay: Layout, st: Stats, refs: References, factor: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per study: the recommended level's index, and the estimate and p_adj of the factor's first level against its
    second (the `levels` row the report writes when the first level is the recommended one)."""
    axis = FACTORS.index(factor)
    others = tuple(i for i in range(3) if i != axis)
    marg = _cube(lay, st.means).mean(axis=tuple(1 + i for i in others))  # studies × levels
    dev = _cube(lay, st.dev).mean(axis=tuple(2 + i for i in others))  # studies × units × levels
    est = (marg[:, 0] - marg[:, 1])[:, None]
    cells = lay.cube.size / lay.cube.shape[axis]
    q = _test_variance(st, (dev[:, :, 0] - dev[:, :, 1])[:, None, :])
    t, df = t_values(lay, st, est, 2.0 / (cells * lay.design.seeds), q)
    return marg.argmax(axis=1), est[:, 0], p_adjusted(refs.levels, t, df)[:, 0]


def level_found(lay: Layout, st: Stats, refs: References, factor: str, alpha: float) -> np.ndarray:
    """Per study: the factor's first level is the recommended one and separated from its second at α."""
    rec, est, p = level_p(lay, st, refs, factor)
    return (rec == 0) & (p < alpha) & (est > 0)


def best_found(lay: Layout, st: Stats, refs: References, config: int, alpha: float) -> np.ndarray:
    """Per study: configuration `config` has the best mean and is separated from the baseline at α."""
    if lay.baseline is None:
        return np.zeros(len(st), bool)
    b = lay.baseline
    est = (st.means[:, config] - st.means[:, b])[:, None]
    q = _test_variance(st, (st.dev[:, :, config] - st.dev[:, :, b])[:, None, :])
    t, df = t_values(lay, st, est, 2.0 / lay.design.seeds, q)
    return (st.means.argmax(axis=1) == config) & (p_adjusted(refs.pairs, t, df)[:, 0] < alpha)


def vs_best_p(lay: Layout, st: Stats, refs: References) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per study: the best-mean configuration, and the estimate and p_adj of it against every configuration
    (studies × K; itself included, to be ignored): the `vs_best` table."""
    rows = np.arange(len(st))
    best = st.means.argmax(axis=1)
    est = st.means[rows, best][:, None] - st.means
    diff = st.dev[rows, :, best][:, :, None] - st.dev  # studies × units × K
    t, df = t_values(lay, st, est, 2.0 / lay.design.seeds, _test_variance(st, diff.transpose(0, 2, 1)))
    return best, est, p_adjusted(refs.pairs, t, df)


def best_beats(lay: Layout, st: Stats, refs: References, delta: float, alpha: float, min_seeds: int) -> np.ndarray:
    """Per study: the best claim beats a configuration whose true mean is at least as good (analysis.judge)."""
    if lay.design.seeds < min_seeds - 0.5:  # the best claim is withheld as insufficiently replicated
        return np.zeros(len(st), bool)
    rows = np.arange(len(st))
    best, est, p = vs_best_p(lay, st, refs)
    beaten = (p < alpha) & (est >= delta - 1e-12)
    beaten[rows, best] = False
    wrong = st.truth[rows, best][:, None] - st.truth <= 1e-12
    return (beaten & wrong).any(axis=1)


def term_pvalues(lay: Layout, st: Stats) -> np.ndarray:
    """Per study (rows) the quasi-F p of every main effect and two-way interaction (analysis.factors.importance:
    on a balanced grid its Type II sums of squares are the classical ones; the term × unit sums of squares the same
    on every unit's deviations)."""
    means, dev = _cube(lay, st.means), _cube(lay, st.dev)  # studies × cube, studies × units × cube
    axes = [FACTORS.index(f) for f in lay.factors]
    terms = [(a,) for a in axes] + list(combinations(axes, 2))
    n, shape = lay.design.seeds, lay.cube.shape
    out = np.empty((len(st), len(terms)))
    for j, term in enumerate(terms):
        ss, df = _ss(means, term, shape, n, 1), int(np.prod([shape[a] - 1 for a in term]))
        q_ss = _ss(dev, term, shape, n, 2).sum(axis=1)
        df_q = df * st.df
        for r in range(len(st)):
            q = st.kappa * q_ss[r] / df_q if df_q > 0 else 0.0
            den, df_den = (float(x) for x in variance(lay, st, r).combination(1.0, q, df_q))
            f = (ss[r] / df) / den if den > 0 and df > 0 else float("nan")
            out[r, j] = float(sps.f.sf(f, df, df_den)) if np.isfinite(f) else float("nan")
    return out


def _ss(x: np.ndarray, term: tuple[int, ...], shape: tuple, n: int, lead: int) -> np.ndarray:
    """Sum of squares of a main effect or two-way interaction of the balanced cube in the last 3 axes of x, each
    cell weighted by its n networks."""
    ax = lambda keep: tuple(lead + i for i in range(3) if i not in keep)
    grand = x.mean(axis=ax(()), keepdims=True)
    effect = x.mean(axis=ax(term[:1]), keepdims=True) - grand
    if len(term) == 2:
        effect = (x.mean(axis=ax(term), keepdims=True) - x.mean(axis=ax(term[:1]), keepdims=True)
                  - x.mean(axis=ax(term[1:]), keepdims=True) + grand)
    cells = int(np.prod(shape)) / int(np.prod([shape[a] for a in term]))
    return n * cells * (effect**2).sum(axis=ax(()))


def any_term(lay: Layout, st: Stats, alpha: float) -> np.ndarray:
    """Per study whose true means are flat: a factor term significant after Holm over the terms. Where these test
    patients' own terms make the true means differ, a term is true of them (analysis.judge.other_firm)."""
    flat = np.ptp(st.truth, axis=1) <= 1e-12
    if not lay.factors or not flat.any():
        return np.zeros(len(st), bool)
    p = term_pvalues(lay, st)
    return flat & np.array([bool((adjust(row, "holm") < alpha).any()) for row in p])
