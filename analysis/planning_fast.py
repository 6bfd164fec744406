"""The fast path of `study plan`: the report's claims about a synthetic study, from the network-level statistics
they rest on instead of its per-image table.

The report's claims of one metric use, per study, only: each configuration's mean (over its seeds and the test
images), the configuration × test-unit deviations (`analysis.networks.Units.dev`: patients, or images within
patients), the between-network mean square σ̂²_w and the image residual σ̂²_e. For the normal components of
`analysis.simulate` and a balanced design (every configuration with the same seeds, every patient the same slices)
their joint distribution is known, with n seeds, I = P·S images and K configurations:

- a configuration's seed-averaged score on a unit: its planted effect + its configuration × patient term (and
  pretraining × patient) + the unit's mean configuration × image term + its mean network offset (SD σ_net/√n) + the
  mean residual over its seeds and the unit's images; the units' own main effect (image difficulty) cancels in every
  statistic and is left out;
- σ̂²_w ~ (σ²_net + σ²_e/I)·χ²/df with K(n − 1) df, and σ̂²_e ~ σ²_e·χ²/df with K(n − 1)(I − 1) df, independent of
  the seed-averaged table (they are within-configuration deviations).

So this module draws those statistics for a batch of studies at once (numpy, no per-image table) and then judges them
with the report's own estimators: `Variance.combination` for the SE and Satterthwaite df, `normal_deviate` for the
statistic, and the single-step max-t p of `analysis.simultaneous.simultaneous` against the reference draws of
`max_over_pairs` / `max_over_contrasts` (analysis.planning_judge). Those reference draws depend on a study only
through its variance estimates: on a balanced design their 95% point moves by about 0.001 (normal max-t) to 0.01
(bootstrap) between studies, so they are computed once per candidate, by the report's functions, on one drawn
study's statistics. tests/evidence/test_planning_fast.py checks that the judged p-values equal the report's on the
same studies and that the drawn statistics have the distribution of the report's; tests/evidence/
test_plan_recommendation.py and benchmarks/plan_check.py that power and false-claim rates agree with the full claims
code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.effects import level_label
from analysis.load import BASELINE
from analysis.networks import Networks, Units, Variance
from analysis.simulate import Components, Design, label, psi_of

FACTORS = ("feature_level", "pretraining", "lam")
CHUNK = 2_000_000  # values of the (studies × units × configurations) table drawn at once


@dataclass(frozen=True)
class Layout:
    """A balanced Design as the report sees it: configuration labels in its order (sorted, as `groupby` gives
    them), `grid` the label index of each entry of Design.configurations(), `cube` the label index of each
    non-baseline configuration as a (levels × pretrainings × λ) array, the design factors with ≥ 2 levels."""

    design: Design
    labels: pd.Index
    grid: np.ndarray
    cube: np.ndarray
    baseline: int | None
    factors: tuple[str, ...]

    @property
    def pretraining(self) -> np.ndarray:
        """Each label's pretraining index (−1 for the baseline)."""
        out = np.full(len(self.labels), -1)
        out[self.cube] = np.arange(len(self.design.pretrainings))[None, :, None]
        return out


def layout(design: Design) -> Layout:
    configs = design.configurations()
    names = [label(*c) for c in configs]
    labels = pd.Index(sorted(names))
    grid = labels.get_indexer(names)
    cube = grid[1 if design.baseline else 0:].reshape(len(design.levels), len(design.pretrainings), len(design.lams))
    factors = tuple(f for f, lv in zip(FACTORS, (design.levels, design.pretrainings, design.lams)) if len(lv) > 1)
    return Layout(design, labels, grid, cube, labels.get_loc(BASELINE) if design.baseline else None, factors)


def applies(design: Design, comp: Components) -> bool:
    """The fast path's assumptions hold: normal network offsets and every trial finished (a balanced design)."""
    return comp.net_df is None and not design.failed_share


def planted(lay: Layout, effect) -> np.ndarray:
    """The planted effect (dB) of each configuration, in the Layout's order."""
    out = np.zeros(len(lay.labels))
    if effect is not None:
        for i, (lv, p, lam) in zip(lay.grid, lay.design.configurations()):
            out[i] = effect(lv, p, lam, psi_of(lv, p, lam))
    return out


@dataclass(frozen=True)
class Stats:
    """What the report's claims rest on, for a batch of studies (first axis), configurations in the Layout's order:
    means (studies × K, dB), dev (studies × units × K: Units.dev), σ̂²_w and σ̂²_e (studies), and the true means of
    the population the claims state (studies × K: the planted effects, plus these patients' terms when the claims
    hold for these test patients only)."""

    means: np.ndarray
    dev: np.ndarray
    ms_within: np.ndarray
    ms_error: np.ndarray
    truth: np.ndarray
    population: str
    kappa: float
    df: float

    def __len__(self) -> int:
        return len(self.means)


def draw(lay: Layout, comp: Components, effect: np.ndarray, reps: int, rng: np.random.Generator,
         min_patients: int) -> Stats:
    """The statistics of `reps` synthetic studies (module docstring), seeded by `rng`."""
    d = lay.design
    k, n, p, s = len(lay.labels), d.seeds, d.patients, d.slices
    images = p * s
    pre = lay.pretraining
    pre_pat = rng.normal(0, comp.pretraining_patient_sd, (reps, len(d.pretrainings), p))
    per_pat = rng.normal(0, comp.config_patient_sd, (reps, k, p)) + np.where(pre[:, None] >= 0, pre_pat[:, pre], 0.0)
    shift = effect[None, :, None] + rng.normal(0, comp.net_sd / np.sqrt(n), (reps, k, 1))
    if p >= max(2, min_patients):  # patients are the units: each configuration's mean over a patient's slices
        sd = np.sqrt(comp.config_image_sd**2 / s + comp.residual_sd**2 / (n * s))
        z = shift + per_pat + rng.normal(0, sd, (reps, k, p))
        means = z.mean(axis=2)
        dev, population, kappa, df = z - means[..., None], "patients", 1.0 / p, float(p - 1)
    else:  # images within patients are the units; the patient terms are fixed
        sd = np.sqrt(comp.config_image_sd**2 + comp.residual_sd**2 / n)
        z = (shift + np.repeat(per_pat, s, axis=2) + rng.normal(0, sd, (reps, k, images))).reshape(reps, k, p, s)
        means = z.mean(axis=(2, 3))
        dev = (z - z.mean(axis=3, keepdims=True)).reshape(reps, k, images)
        population, kappa, df = "these_test_patients", 1.0 / images, float(images - p)
    df_w = k * (n - 1)
    df_e = df_w * (images - 1)
    ms_w = (comp.net_sd**2 + comp.residual_sd**2 / images) * rng.chisquare(df_w, reps) / df_w
    ms_e = comp.residual_sd**2 * rng.chisquare(df_e, reps) / df_e
    truth = effect[None, :] + (per_pat.mean(axis=2) if population == "these_test_patients" else np.zeros((reps, k)))
    return Stats(means, dev.transpose(0, 2, 1), ms_w, ms_e, truth, population, kappa, df)


def batches(lay: Layout, comp: Components, effect: np.ndarray, reps: int, rng: np.random.Generator,
            min_patients: int):
    """`draw` in batches that keep the (studies × units × configurations) table near CHUNK values."""
    d = lay.design
    units = d.patients if d.patients >= max(2, min_patients) else d.patients * d.slices
    step = max(1, CHUNK // max(1, len(lay.labels) * units))
    for start in range(0, reps, step):
        yield draw(lay, comp, effect, min(step, reps - start), rng, min_patients)


def variance(lay: Layout, st: Stats, r: int) -> Variance:
    """Study r's analysis.networks.Variance (the fields the claims use; the configuration × unit mean square of
    the replication claim is not drawn)."""
    d = lay.design
    k, n, images = len(lay.labels), d.seeds, d.patients * d.slices
    df_w = float(k * (n - 1))
    return Variance(ms_within=float(st.ms_within[r]), df_within=df_w, ms_test=float("nan"), df_test=float("nan"),
                    ms_error=float(st.ms_error[r]), df_error=df_w * (images - 1), n_seeds=float(n), n_images=images,
                    n_patients=d.patients, n_networks=k * n, n_configurations=k, population=st.population,
                    kappa=st.kappa, df_units=st.df)


def networks(lay: Layout, st: Stats, r: int, metric: str = "psnr") -> Networks:
    """Study r as an analysis.networks.Networks (every network of a configuration at its mean: the reference
    distributions use only the counts, the variance estimates and the units), for the report's own functions."""
    d = lay.design
    n = d.seeds
    rows = [(lab, lv, p, lam) for lab, (lv, p, lam) in zip(np.asarray(lay.labels)[lay.grid], d.configurations())]
    cols = pd.DataFrame(rows, columns=["configuration", *FACTORS]).set_index("configuration").loc[lay.labels]
    table = pd.DataFrame({"run_key": [f"{i}-{s}" for i in range(len(cols)) for s in range(n)],
                          "configuration": np.repeat(lay.labels, n), "seed": np.tile(np.arange(n), len(cols)),
                          **{f: np.repeat([level_label(v) for v in cols[f]], n) for f in FACTORS},
                          "y": np.repeat(st.means[r], n)})
    units = Units(st.population, st.dev[r], lay.labels, st.df, st.kappa)
    return Networks(metric, table, variance(lay, st, r), units)


def from_networks(lay: Layout, nets: Networks, truth: np.ndarray | None = None) -> Stats:
    """The Stats of one study the report analysed (analysis.networks.Networks of a balanced design), for checking
    the fast judges against the report on the same study."""
    v, u = nets.variance, nets.units
    assert list(u.configurations) == list(lay.labels)
    means = nets.config_means.reindex(lay.labels).to_numpy(float)
    return Stats(means[None], u.dev[None], np.array([v.ms_within]), np.array([v.ms_error]),
                 np.zeros((1, len(means))) if truth is None else truth[None], u.population, u.kappa, u.df)
