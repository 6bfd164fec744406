"""Report section: the design evidence with the trained network as the unit (tables under stats/network_*.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.load import higher_is_better
from analysis.networks import seeds_needed
from analysis.markdown import MAX_ROWS, md_table, pformat


def variance_table(nets: dict, min_effect: dict[str, float]) -> pd.DataFrame:
    """One row per metric: the variance components of its per-network analysis (`nets`: metric → Networks)."""
    rows = []
    for m, n in nets.items():
        v = n.variance
        rows.append({"metric": m, "population": v.population, "sd_between_networks": v.sd_network,
                     "sd_test_set": v.test_term**0.5,
                     "sd_image_residual": v.ms_error**0.5 if v.ms_error == v.ms_error else float("nan"),
                     "df_between_networks": v.df_within, "df_test_set": v.df_test, "networks": v.n_networks,
                     "configurations": v.n_configurations, "images": v.n_images, "patients": v.n_patients,
                     "smallest_effect": min_effect[m], "seeds_for_80pct_power": seeds_needed(v, min_effect[m])})
    return pd.DataFrame(rows)


def per_patient(per_image: pd.DataFrame, metric: str, top: list[str]) -> pd.DataFrame:
    """Mean per configuration and test patient (over images and seeds), for the given configurations."""
    x = per_image[per_image["configuration"].isin(top)]
    t = x.groupby(["configuration", "patient"])[metric].mean().unstack("patient")
    return t.loc[[c for c in top if c in t.index]]


def per_patient_tables(per_image: pd.DataFrame, metrics: list[str]) -> dict[str, pd.DataFrame]:
    """metric → `per_patient` of its 10 best configurations (by mean), where the test set has ≥ 2 patients."""
    if "patient" not in per_image or per_image["patient"].nunique() < 2:
        return {}
    out = {}
    for m in metrics:
        means = per_image.groupby("configuration")[m].mean().sort_values(ascending=not higher_is_better(m))
        out[m] = per_patient(per_image, m, list(means.index[:10]))
    return out


def network_lines(net, metrics: list[str], min_effect: dict[str, float], out: Path) -> list[str]:
    """The section's lines (net: analysis.evidence.NetworkEvidence); its tables as stats/network_*.csv."""
    stats, tables = out / "stats", net.tables
    net.variance.to_csv(stats / "network_variance.csv", index=False)
    for name, t in tables.items():
        t.to_csv(stats / f"network_{name}.csv", index=False)
    lines = ["## Design evidence: the trained network as the unit", "",
             "Each trained network (configuration × seed) is reduced to its mean over the test images; configurations "
             "and factor levels are compared on these per-network means with the seeds as replicates, and each "
             "contrast's own variation between test patients (or, with fewer than `analysis.min_patients`, between "
             "images within these patients: `population`) as a second, shared error (see Methods). These are the "
             "tests the guidelines rest on.", "",
             "Variance components (SD in the metric's unit; `seeds_for_80pct_power`: seeds per configuration for a "
             "two-configuration difference of the smallest effect that matters to be found with 80% power, from the "
             "between-network SD measured here):", "", md_table(net.variance), ""]
    for m in metrics:
        imp = tables.get("importance")
        if imp is not None and len(imp[imp["metric"] == m]):
            t = imp[imp["metric"] == m][["term", "share", "df", "F", "df_den", "pvalue", "pvalue_adj"]]
            lines += [f"### {m}: what explains the differences between networks", "",
                      "Share of the between-network sum of squares (Type II) per factor and two-way interaction; "
                      "quasi-F against network + term × test-unit error, Holm over the terms.", "", md_table(pformat(t)), ""]
        vb = tables.get("vs_best")
        if vb is not None and len(vb[vb["metric"] == m]):
            lines += _vs_best_lines(vb[vb["metric"] == m].sort_values("p_adj", ascending=False), m, min_effect[m])
            if m in net.per_patient:
                net.per_patient[m].to_csv(stats / f"{m}_per_patient.csv")
                lines += [f"Per test patient ({m}, mean over images and seeds; the 10 best configurations):", "",
                          md_table(net.per_patient[m].reset_index()), ""]
    return lines


def _vs_best_lines(t: pd.DataFrame, m: str, delta: float) -> list[str]:
    cols = ["a", "b", "estimate", "ci_low", "ci_high", "df", "pvalue", "p_adj", "p_equiv", "verdict"]
    return [f"Configurations against the best for {m} (estimate = best − other, {len(t)} contrasts; "
            f"`pvalue_adj` and the CI: {t['procedure'].iloc[0]}; `p_equiv`: TOST inside ± {delta:g}). Shown: up to "
            f"{MAX_ROWS}, least separated first.",
            "", md_table(pformat(t[cols].head(MAX_ROWS)).rename(columns={"p_adj": "pvalue_adj"})), ""]
