"""The typed result of analysing a results folder (`analysis.analyse`): every number the report shows, computed once.
The render layer (`analysis.write_report`) writes Markdown, HTML, figures, LaTeX and CSVs from it alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.blocked import Blocked
from analysis.claims import Settings


@dataclass(frozen=True)
class Study:
    """What the results folder holds, read once: its spec, tables and settings."""

    name: str
    results_dir: Path
    spec: dict
    analysis: object  # study.spec.AnalysisSpec, validated once
    settings: Settings
    window: dict  # study.spec.Window as a dict, with its label, low and high
    patients_known: bool
    trials: pd.DataFrame
    per_image: pd.DataFrame  # the main test set (extra test sets in `extra`)
    extra: dict[str, pd.DataFrame]
    metrics: tuple[str, ...]

    @property
    def seeds(self) -> list:
        return sorted(self.trials["seed"].unique().tolist())

    @property
    def min_effect(self) -> dict[str, float]:
        from analysis.load import HIGHER_IS_BETTER

        return {m: self.settings.effect(m) for m in HIGHER_IS_BETTER}


@dataclass(frozen=True)
class NetworkEvidence:
    """The network-level evidence the guidelines rest on: claims, their tables, the variance components."""

    claims: list[dict]
    tables: dict[str, pd.DataFrame]  # importance, vs_best, levels, depends, … (stats/network_<name>.csv)
    variance: pd.DataFrame | None  # one row per metric (stats/network_variance.csv)
    per_patient: dict[str, pd.DataFrame]  # metric → configuration × patient means of the 10 best
    population: str | None  # the sentence that says whom the claims are about
    context: dict  # what guidelines.md and Methods say about the unit, the thresholds, the replication
    per_metric: dict = field(default_factory=dict)  # metric → analysis.networks.Networks (the per-network means)


@dataclass(frozen=True)
class Influence:
    """Perceptual influence: Ψ per configuration, the loss magnitudes per arm and the λ each arm needs."""

    psi: pd.DataFrame  # configuration → psi, perceptual_loss, pixel_loss (mean over seeds)
    magnitudes: pd.DataFrame
    lam_table: pd.DataFrame
    targets: list[float]
    calibrated: pd.DataFrame | None  # the Ψ-target trials


@dataclass(frozen=True)
class Examples:
    """The example images: per shown configuration its examples.npz, and the slices they share."""

    data: dict  # configuration → read_npz(...)
    keys: dict  # configuration → run key
    ids: list[str]
    rows: dict  # (run_key, image_id) → per-image row
    shown: list[str]
    why: str
    seed_words: str
    metrics: list[str]
    diff_max: float
    problem: str | None = None  # why there are none, when there are none


@dataclass(frozen=True)
class Consistency:
    """Do the losses and the metrics agree? (analysis.consistency_section)"""

    shares: pd.DataFrame
    trajectories: pd.DataFrame | None = None
    trajectory_table: pd.DataFrame | None = None
    n_epochs: int = 0
    means: pd.DataFrame | None = None  # configuration × metric (for the ranking)
    concordance: dict | None = None
    disagreements: pd.DataFrame | None = None

    def numbers(self) -> dict:
        out: dict = {}
        if self.trajectory_table is not None:
            out["trajectory"] = self.trajectory_table.to_dict()
        if self.concordance is not None:
            c = self.concordance
            out.update({"kendall_w": c["kendall_w"], "kendall_w_pvalue": c["pvalue"],
                        "tau": c["tau"].to_dict("records")})
        if self.disagreements is not None and len(self.disagreements):
            out["disagreements"] = self.disagreements.to_dict("records")
        return out


@dataclass(frozen=True)
class Evidence:
    """Everything `analysis.analyse` found in a results folder (module docstring)."""

    study: Study
    design: dict  # analysis.design_section.design_facts
    networks: NetworkEvidence | None  # None without a finished trial with per-image rows
    blocked: dict[str, Blocked]  # metric → its image-blocked analysis
    influence: Influence | None = None
    lam_three_ways: pd.DataFrame | None = None
    published: pd.DataFrame | None = None  # paper 1's published magnitudes beside the measured ones
    paper1_pairs: dict | None = None  # analysis.paper1_section.paper1_pairs: the table and what its text says
    convergence: pd.DataFrame | None = None
    improving: dict = field(default_factory=dict)
    examples: Examples | None = None
    consistency: Consistency | None = None
    extra_means: dict[str, pd.DataFrame] = field(default_factory=dict)
    search: pd.DataFrame | None = None  # the Optuna refinement trials
    readers: dict | None = None  # the reader study's results (or {"error": ...})
    provenance: dict = field(default_factory=dict)
    stages: dict | None = None  # an adaptive study's stage record (analysis.stages_section)

    @property
    def claims(self) -> list[dict]:
        return self.networks.claims if self.networks else []

    def numbers(self) -> dict:
        """metric → the image-blocked numbers (summary.json, Methods, the LaTeX results tables)."""
        return {m: b.numbers() for m, b in self.blocked.items()}
