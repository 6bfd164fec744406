"""Report sections for one metric: tables written as CSV under `stats/`, figures under `figures/`, Markdown lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.effects import cell_means, design_factors, factor_effects
from analysis.figures import boxplot, cd_diagram, effects_plot, interaction_plot
from analysis.load import BASELINE, block_key, block_scores, higher_is_better, input_scores, seed_scores
from analysis.markdown import MAX_ROWS, md_table, pformat
from analysis.mixed import mixed_model
from analysis.omnibus import conover, friedman, mean_ranks, nemenyi, nemenyi_cd, pvalue_matrix
from analysis.pvalues import p_clause
from analysis.signed_rank import pairwise_wilcoxon, power_n
from analysis.style import metric_name

ALPHA = 0.05
MAX_ALL_PAIRS = 30  # above this many configurations the pairwise family is "each vs the best and vs pixel-only"
FIGURE_TOP = 20  # configurations in the box plot and CD diagram of a large study (best by mean rank + baseline)


def summary_table(scores: pd.DataFrame, higher: bool) -> pd.DataFrame:
    ranks = mean_ranks(scores, higher)
    return pd.DataFrame({
        "configuration": ranks.index,
        "mean": [scores[c].mean() for c in ranks.index],
        "sd": [scores[c].std(ddof=1) for c in ranks.index],
        "median": [scores[c].median() for c in ranks.index],
        "mean_rank": ranks.to_numpy(),
    })


def omnibus(scores: pd.DataFrame, metric: str, stats_dir: Path) -> tuple[list[str], dict | None]:
    if scores.shape[1] < 3 or len(scores) < 2:
        return [f"(Friedman needs ≥ 3 configurations and ≥ 2 images; have {scores.shape[1]} and {len(scores)}.)"], None
    fr = friedman(scores)
    pd.DataFrame([fr.__dict__]).to_csv(stats_dir / f"{metric}_friedman.csv", index=False)
    return [f"**{fr.line()}.** Iman–Davenport F({fr.k - 1}, {(fr.k - 1) * (fr.n_blocks - 1)}) = "
            f"{fr.iman_davenport_f:.2f}, {p_clause(fr.iman_davenport_pvalue)}."], fr.__dict__


def posthoc(scores: pd.DataFrame, pw: pd.DataFrame, metric: str, stats_dir: Path) -> tuple[list[str], dict]:
    """Nemenyi and Conover (Holm) matrices as CSV, and how often they agree with Wilcoxon–Holm on its pairs."""
    if scores.shape[1] < 3:
        return [], {}
    wil = (pw["pvalue_adj"] < ALPHA).to_numpy()
    out, matrices = [], {}
    k = scores.shape[1]
    tests = [("conover", conover)] if k > MAX_ALL_PAIRS else [("nemenyi", nemenyi), ("conover", conover)]
    for name, fn in tests:  # Nemenyi's studentized-range p-values cost ~0.1 ms a pair: skipped above 30 configurations
        m = fn(scores)
        m.to_csv(stats_dir / f"{metric}_{name}.csv")
        matrices[name] = m
        sig = m.to_numpy()[[m.index.get_loc(a) for a in pw["a"]], [m.columns.get_loc(b) for b in pw["b"]]] < ALPHA
        n_sig = int((m.to_numpy()[np.triu(np.ones((k, k), bool), 1)] < ALPHA).sum())
        out.append(f"{name.capitalize()}: {n_sig} of {k * (k - 1) // 2} pairs differ; agrees with Wilcoxon–Holm on "
                   f"{int((sig == wil).sum())} of its {len(pw)}")
    return ["Post-hoc tests after Friedman (matrices in `stats/`): " + "; ".join(out) + "."], matrices


def sensitivity(per_image: pd.DataFrame, metric: str, best: str, stats_dir: Path) -> list[str]:
    """Per-seed Friedman and a mixed model over all (image, seed) rows, beside the seed-averaged main result."""
    lines = ["Sensitivity checks:", ""]
    rows = []
    seeds = sorted(per_image["seed"].dropna().unique())
    for s in seeds:
        sc = seed_scores(per_image, metric, s)
        if sc.shape[1] >= 3 and len(sc) >= 2:
            fr = friedman(sc)
            top = mean_ranks(sc, higher_is_better(metric)).index[0]
            rows.append({"seed": s, "k": fr.k, "n": fr.n_blocks, "chi2": fr.statistic, "pvalue": fr.pvalue,
                         "kendall_w": fr.kendall_w, "best": top})
            lines.append(f"- seed {s}: {fr.line()}; best: {top}{'' if top == best else ' (differs from the seed mean)'}.")
    if rows:
        pd.DataFrame(rows).to_csv(stats_dir / f"{metric}_per_seed.csv", index=False)
    k = per_image["configuration"].nunique()
    if k > MAX_ALL_PAIRS:
        lines.append(f"- mixed model skipped: with k = {k} configurations its {k - 1} fixed effects make the fit slow "
                     f"and unreadable (call `analysis.stats.mixed_model` directly to fit it).")
        return lines
    mm = mixed_model(per_image.assign(block=per_image[block_key(per_image)]), metric, reference=BASELINE)
    if mm["ok"]:
        mm["coefficients"].to_csv(stats_dir / f"{metric}_mixed_model.csv", index=False)
        lines.append(f"- mixed model `{metric} ~ configuration + (1 | image) + (1 | network)` (crossed random "
                     f"intercepts, REML) on {mm['n_obs']} image × network rows ({mm['n_groups']} images, "
                     f"{mm['n_networks']} trained networks): Wald χ²({mm['df']}) = {mm['wald']:.2f}, "
                     f"{p_clause(mm['pvalue'])}{'' if mm['converged'] else ' (did not converge: read with care)'}; "
                     f"coefficients against {mm['reference']} in `stats/{metric}_mixed_model.csv`.")
    else:
        lines.append(f"- mixed model could not be fitted: {mm['error']}")
    return lines


def effects_section(per_image: pd.DataFrame, metric: str, out: Path) -> tuple[list[str], pd.DataFrame | None]:
    factors = design_factors(per_image)
    if not factors:
        return [], None
    eff = factor_effects(per_image, metric)
    eff.to_csv(out / "stats" / f"{metric}_effects.csv", index=False)
    table = eff
    if len(eff) > MAX_ROWS:  # main effects, then the largest significant others
        main = eff[eff["kind"] == "main"]
        rest = eff[(eff["kind"] != "main") & (eff["pvalue_adj"] < ALPHA)]
        rest = rest.reindex(rest["effect_size"].abs().sort_values(ascending=False).index).head(max(0, MAX_ROWS - len(main)))
        table = pd.concat([main, rest])
    shown = pformat(table.drop(columns=["metric", "mean_diff", "statistic"]))
    cut = "" if len(table) == len(eff) else [f"Shown: {len(table)} of {len(eff)} rows (main effects, then the largest "
                                            f"significant simple and interaction effects); all in "
                                            f"`stats/{metric}_effects.csv`.", ""]
    lines = ["#### Factor effects", "",
             "Per-image effect of changing one factor with the others held fixed (a − b; `simple`: within one level "
             "of another factor; `interaction`: change of the a − b effect between two levels of the second factor); "
             "Wilcoxon signed-rank against 0, Holm over the rows of this table, 95% bootstrap CI of the median. "
             "Factors with more than 6 levels are compared level to next level.", "",
             *(cut or []), md_table(shown), ""]
    fig = effects_plot(eff, metric, out / "figures" / f"effects_{metric}.png")
    lines += [f"![{metric} factor effects](figures/{fig.name})", ""]
    if "feature_level" in factors and "pretraining" in factors:
        cells = cell_means(per_image, metric, factors)
        base = per_image[per_image["configuration"] == BASELINE]
        ref = float(base.groupby(block_key(base))[metric].mean().mean()) if len(base) else None
        panel = next((f for f in ("weighting", "lam", "psi_target") if f in factors), None)
        fig = interaction_plot(cells, metric, out / "figures" / f"interaction_{metric}.png", panel=panel, reference=ref)
        lines += [f"![{metric}: feature level × pretraining](figures/{fig.name})", ""]
    return lines, eff


def metric_section(per_image: pd.DataFrame, metric: str, out: Path) -> tuple[list[str], dict]:
    """Markdown lines for one metric (CSVs and figures written under `out`); returns lines and the numbers."""
    stats_dir = out / "stats"
    scores, dropped = block_scores(per_image, metric)
    ref = input_scores(per_image, metric).loc[scores.index]
    summary = summary_table(scores, higher_is_better(metric))
    summary.to_csv(stats_dir / f"{metric}_summary.csv", index=False)
    lines = summary_lines(summary, ref, metric, dropped)
    numbers = {"n_images": int(len(scores)), "k": int(scores.shape[1]), "best": str(summary["configuration"].iloc[0]),
               "input_mean": float(ref.mean()), "input_sd": float(ref.std(ddof=1)), "means": dict(zip(summary["configuration"], summary["mean"]))}
    text, numbers["friedman"] = omnibus(scores, metric, stats_dir)
    lines += ["", *text]
    order = list(summary["configuration"])
    shown_configs = figure_configurations(order)
    if scores.shape[1] >= 2 and len(scores) >= 2:
        lines += pairwise_section(scores, summary, metric, out, numbers, shown_configs)
    fig = boxplot(scores[shown_configs], metric, out / "figures" / f"box_{metric}.png", order=shown_configs,
                  reference=ref)
    lines += ["", f"![{metric} per configuration](figures/{fig.name})", ""]
    if per_image["seed"].nunique() > 1 or len(per_image) > len(scores):
        lines += sensitivity(per_image, metric, numbers["best"], stats_dir) + [""]
    eff_lines, numbers["effects"] = effects_section(per_image, metric, out)
    lines += eff_lines
    return lines, numbers


def summary_lines(summary: pd.DataFrame, ref: pd.Series, metric: str, dropped: int) -> list[str]:
    """The metric's heading, its summary table (mean ± sd, median, mean rank) and the low-dose input's score."""
    lines = [f"### {metric} ({'higher' if higher_is_better(metric) else 'lower'} is better)", ""]
    shown = summary.assign(**{"mean ± sd": [f"{m:.4g} ± {s:.2g}" for m, s in zip(summary["mean"], summary["sd"])]})
    lines += [md_table(shown[["configuration", "mean ± sd", "median", "mean_rank"]]), "",
              f"Low-dose input: {ref.mean():.4g} ± {ref.std(ddof=1):.2g} (n = {len(ref)} images)."]
    if dropped:
        lines += [f"{dropped} images lacked a configuration and were left out of the tests."]
    return lines


def figure_configurations(order: list[str]) -> list[str]:
    """The configurations (best first) in the box plot and CD diagram: all, or in a large study the FIGURE_TOP best
    and the pixel-only baseline."""
    if len(order) <= MAX_ALL_PAIRS:
        return order
    return order[:FIGURE_TOP] + ([BASELINE] if BASELINE in order[FIGURE_TOP:] else [])


def pairwise_family(order: list[str], best: str) -> tuple[list[tuple[str, str]] | None, str]:
    """The pairs of the Wilcoxon–Holm family (None: all pairs) and how the report names the family."""
    k = len(order)
    if k <= MAX_ALL_PAIRS:
        return None, f"all {k * (k - 1) // 2} pairs"
    # all k(k − 1)/2 pairs would be a family too large to read or to keep power in
    pairs = [(best, c) for c in order if c != best]
    pairs += [(c, BASELINE) for c in order if BASELINE in order and c not in (best, BASELINE)]
    return pairs, (f"each configuration against the best ({best}) and against {BASELINE}: {len(pairs)} pairs "
                   f"(with k = {k}, all {k * (k - 1) // 2} pairs are in the Conover matrix)")


def pairwise_section(scores: pd.DataFrame, summary: pd.DataFrame, metric: str, out: Path, numbers: dict,
                     shown_configs: list[str]) -> list[str]:
    """Pairwise Wilcoxon–Holm table, post-hoc tests and the critical-difference diagram; adds `pairwise` and
    `nemenyi_cd` to `numbers`."""
    stats_dir = out / "stats"
    pairs, family = pairwise_family(list(summary["configuration"]), numbers["best"])
    pw = pairwise_wilcoxon(scores, "holm", pairs=pairs)
    pw.to_csv(stats_dir / f"{metric}_pairwise.csv", index=False)
    n_sig = int((pw["pvalue_adj"] < ALPHA).sum())
    table = pw if len(pw) <= MAX_ROWS else pw.sort_values("pvalue_adj", ascending=False).head(MAX_ROWS)
    cut = "" if len(pw) <= MAX_ROWS else (f" Shown: the {MAX_ROWS} pairs least separated (highest adjusted p); all "
                                          f"{len(pw)} in `stats/{metric}_pairwise.csv`.")
    lines = ["", f"Pairwise Wilcoxon signed-rank tests, Holm-adjusted over {family}: {n_sig} of {len(pw)} pairs "
                 f"differ at α = {ALPHA}. `median_diff` is a − b with its 95% bootstrap CI; `effect_size` is the "
                 f"matched-pairs rank-biserial r (> 0: a larger than b).{cut}", "",
             md_table(pformat(table[["a", "b", "median_diff", "ci_low", "ci_high", "statistic", "pvalue",
                                     "pvalue_adj", "effect_size"]])), ""]
    numbers["pairwise"] = pw
    post, matrices = posthoc(scores, pw, metric, stats_dir)
    lines += post
    if scores.shape[1] >= 3:
        if pairs is None:
            pmat, what = pvalue_matrix(pw), "Wilcoxon–Holm"
        else:
            pmat, what = matrices["conover"].loc[shown_configs, shown_configs], "Conover–Holm"
        ranks = summary.set_index("configuration")["mean_rank"].loc[shown_configs]
        lines += cd_lines(ranks, pmat, what, scores.shape, metric, out, numbers)
    return lines


def cd_lines(ranks: pd.Series, pmat: pd.DataFrame, what: str, shape: tuple[int, int], metric: str, out: Path,
             numbers: dict) -> list[str]:
    """The Nemenyi critical difference and the critical-difference diagram (bars from `pmat`, named `what`) of the
    configurations in `ranks`; adds `nemenyi_cd` to `numbers`."""
    n, k = shape
    top = "" if k <= MAX_ALL_PAIRS else f" ({len(ranks)} of {k}: the best by mean rank)"
    cd = nemenyi_cd(k, n, ALPHA)
    numbers["nemenyi_cd"] = cd
    fig = cd_diagram(ranks, pmat, out / "figures" / f"cd_{metric}.png", ALPHA,
                     f"{metric_name(metric)}: mean rank (1 = best){top}; bars join configurations {what} does not "
                     f"separate; Nemenyi CD = {cd:.2f}")
    return ["", f"Nemenyi critical difference (Demšar 2006): CD = {cd:.2f} mean ranks (k = {k}, n = "
                f"{n} images, α = {ALPHA}); two configurations whose mean ranks differ by less "
                f"are not separated by the Nemenyi test. The diagram's bars follow {what}.",
            "", f"![{metric} critical-difference diagram](figures/{fig.name})"]


def power_section(per_image: pd.DataFrame, metric: str, stats_dir: Path, effect: float | None = None) -> list[str]:
    """Images needed for 80% power per pair against the pixel-only baseline, from the observed paired differences."""
    scores, _ = block_scores(per_image, metric)
    if BASELINE not in scores or scores.shape[1] < 2:
        return []
    m = scores.shape[1] * (scores.shape[1] - 1) // 2
    rows = []
    for c in scores.columns:
        if c == BASELINE:
            continue
        d = scores[c] - scores[BASELINE]
        rows.append({"configuration": c, "mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)),
                     "n_needed": power_n(d, effect), "n_needed_holm_bound": power_n(d, effect, alpha=ALPHA / m)})
    df = pd.DataFrame(rows)
    df.to_csv(stats_dir / f"{metric}_power.csv", index=False)
    what = f"an effect of {effect:g}" if effect is not None else "the observed mean difference"
    return [f"#### Power ({metric})", "",
            f"Test images needed to detect {what} against {BASELINE} with 80% power (two-sided Wilcoxon signed-rank, "
            f"via the paired t-test sample size / ARE 3/π, sd of the observed per-image differences); "
            f"`n_needed_holm_bound` uses α/{m} (Bonferroni), a safe bound for the Holm family of {m} pairs. "
            f"Currently n = {len(scores)}.", "", md_table(df), ""]
