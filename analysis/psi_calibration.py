"""λ for a target Ψ from *converged* loss magnitudes, as paper 1 calibrated it: λ = Ψ/(1 − Ψ) · L_MSE / L_P with the
last-epoch (unweighted epoch-mean) magnitudes of a trained model of the same feature level and encoder — here the
study's finished fixed-λ trials — and how that λ compares with the two in-training ways (calibrated on the network
at the start of training; held at Ψ during training). Pure pandas; torch-free."""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.losses.psi import lam_for_influence

PAIR = ["feature_level", "pretraining"]


def _fixed_lambda(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished fixed-λ perceptual trials with both last-epoch magnitudes."""
    need = {"status", "lam", "pixel_loss", "perceptual_loss", *PAIR}
    if not need <= set(trials):
        return trials.iloc[0:0]
    t = trials[(trials["status"] == "finished") & (trials["lam"].fillna(0) > 0)]
    if "psi_target" in t:
        t = t[t["psi_target"].isna()]
    return t[(t["pixel_loss"] > 0) & (t["perceptual_loss"] > 0)]


def converged_lams(trials: pd.DataFrame, targets: list[float]) -> pd.DataFrame:
    """One row per (feature level, pretraining, Ψ target): λ from the median last-epoch magnitudes of the pair's
    finished fixed-λ trials (over seeds and λ values), with the magnitudes, the λ values they were trained at and
    how many trials they come from."""
    rows = []
    for (level, pre), g in _fixed_lambda(trials).groupby(PAIR):
        pix, perc = float(g["pixel_loss"].median()), float(g["perceptual_loss"].median())
        for psi in targets:
            rows.append({"feature_level": level, "pretraining": pre, "psi_target": float(psi),
                         "lam_converged": lam_for_influence(psi, pix, perc), "pixel_loss": pix,
                         "perceptual_loss": perc, "from_lam": ", ".join(f"{x:g}" for x in sorted(g["lam"].unique())),
                         "n_trials": len(g)})
    return pd.DataFrame(rows, columns=["feature_level", "pretraining", "psi_target", "lam_converged", "pixel_loss",
                                       "perceptual_loss", "from_lam", "n_trials"])


def lam_three_ways(trials: pd.DataFrame) -> pd.DataFrame:
    """For each Ψ-target configuration of the study: the λ its trials calibrated at the start of training
    (`lam_calibrated`, median over seeds), the λ they ended at (`lam_final`: differs under hold-psi), and the λ the
    converged magnitudes of the pair's fixed-λ trials give; the ratio converged / start says how far apart they are."""
    cols = ["feature_level", "pretraining", "psi_target", "lam_start", "lam_end", "lam_converged", "ratio"]
    if "psi_target" not in trials or trials["psi_target"].isna().all():
        return pd.DataFrame(columns=cols)
    psi = trials[(trials["status"] == "finished") & trials["psi_target"].notna()]
    start = psi.groupby(PAIR + ["psi_target"]).agg(
        lam_start=("lam_calibrated", "median"),
        lam_end=("lam_final", "median") if "lam_final" in psi else ("lam_calibrated", "median")).reset_index()
    conv = converged_lams(trials, sorted(psi["psi_target"].unique()))
    out = start.merge(conv[PAIR + ["psi_target", "lam_converged"]], on=PAIR + ["psi_target"], how="left")
    out["ratio"] = out["lam_converged"] / out["lam_start"].replace(0, np.nan)
    return out[cols]


def lam_lines(table: pd.DataFrame | None, out) -> list[str]:
    """The report's "λ for a target Ψ, three ways" (stats/psi_calibration.csv); [] without Ψ-target trials."""
    from analysis.markdown import md_table

    if table is None or table.empty:
        return []
    table.to_csv(out / "stats" / "psi_calibration.csv", index=False)
    return ["", "## λ for a target Ψ, three ways", "",
            "`lam_start`: the λ each Ψ-target trial calibrated on its network at the start of training (median over "
            "seeds); `lam_end`: the λ it ended at (differs only under `hold-psi`); `lam_converged`: λ = Ψ/(1 − Ψ) · "
            "L_MSE / L_P from the last-epoch magnitudes of the finished fixed-λ trials of the same feature level and "
            "pretraining (paper 1's calibration; empty without such trials). `ratio` = converged / start: how far "
            "apart the untrained-network and the converged calibration are.", "", md_table(table), ""]
