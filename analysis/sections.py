"""Render one metric's image-blocked results (analysis.blocked.Blocked): CSVs under `stats/`, figures under
`figures/`, Markdown lines. Nothing is computed here that the report shows as a number."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.blocked import MAX_ALL_PAIRS, Blocked, posthoc_agreement
from analysis.figures import boxplot, cd_diagram, effects_plot, interaction_plot
from analysis.load import BASELINE, higher_is_better
from analysis.markdown import MAX_ROWS, md_table, pformat
from analysis.pvalues import p_clause
from analysis.style import metric_name


def metric_lines(b: Blocked, out: Path) -> list[str]:
    """Markdown lines for one metric (CSVs and figures written under `out`)."""
    stats_dir = out / "stats"
    m = b.metric
    b.summary.to_csv(stats_dir / f"{m}_summary.csv", index=False)
    lines = summary_lines(b.summary, b.reference, m, b.dropped) + ["", *omnibus_lines(b, stats_dir)]
    if b.pairwise is not None:
        lines += pairwise_lines(b, out)
    fig = boxplot(b.scores[b.shown], m, out / "figures" / f"box_{m}.png", order=b.shown, reference=b.reference)
    lines += ["", f"![{m} per configuration](figures/{fig.name})", ""]
    if b.per_seed is not None:
        lines += sensitivity_lines(b, stats_dir) + [""]
    lines += effects_lines(b, out)
    if b.power is not None:
        lines += power_lines(b, stats_dir)
    return lines


def omnibus_lines(b: Blocked, stats_dir: Path) -> list[str]:
    fr = b.friedman
    if fr is None:
        return [f"(Friedman needs ≥ 3 configurations and ≥ 2 images; have {b.scores.shape[1]} and {len(b.scores)}.)"]
    pd.DataFrame([fr.__dict__]).to_csv(stats_dir / f"{b.metric}_friedman.csv", index=False)
    return [f"**{fr.line()}.** Iman–Davenport F({fr.k - 1}, {(fr.k - 1) * (fr.n_blocks - 1)}) = "
            f"{fr.iman_davenport_f:.2f}, {p_clause(fr.iman_davenport_pvalue)}."]


def summary_lines(summary: pd.DataFrame, ref: pd.Series, metric: str, dropped: int) -> list[str]:
    """The metric's heading, its summary table (mean ± sd, median, mean rank) and the low-dose input's score."""
    lines = [f"### {metric} ({'higher' if higher_is_better(metric) else 'lower'} is better)", ""]
    shown = summary.assign(**{"mean ± sd": [f"{m:.4g} ± {s:.2g}" for m, s in zip(summary["mean"], summary["sd"])]})
    lines += [md_table(shown[["configuration", "mean ± sd", "median", "mean_rank"]]), "",
              f"Low-dose input: {ref.mean():.4g} ± {ref.std(ddof=1):.2g} (n = {len(ref)} images)."]
    if dropped:
        lines += [f"{dropped} images lacked a configuration and were left out of the tests."]
    return lines


def pairwise_lines(b: Blocked, out: Path) -> list[str]:
    """Pairwise Wilcoxon–Holm table, post-hoc tests and the critical-difference diagram."""
    stats_dir, m, pw = out / "stats", b.metric, b.pairwise
    pw.to_csv(stats_dir / f"{m}_pairwise.csv", index=False)
    n_sig = int((pw["pvalue_adj"] < b.alpha).sum())
    table = pw if len(pw) <= MAX_ROWS else pw.sort_values("pvalue_adj", ascending=False).head(MAX_ROWS)
    cut = "" if len(pw) <= MAX_ROWS else (f" Shown: the {MAX_ROWS} pairs least separated (highest adjusted p); all "
                                          f"{len(pw)} in `stats/{m}_pairwise.csv`.")
    lines = ["", f"Pairwise Wilcoxon signed-rank tests, Holm-adjusted over {b.family}: {n_sig} of {len(pw)} pairs "
                 f"differ at α = {b.alpha:g}. `median_diff` is a − b with its 95% bootstrap CI; `effect_size` is the "
                 f"matched-pairs rank-biserial r (> 0: a larger than b).{cut}", "",
             md_table(pformat(table[["a", "b", "median_diff", "ci_low", "ci_high", "statistic", "pvalue",
                                     "pvalue_adj", "effect_size"]])), ""]
    for name, matrix in b.matrices.items():
        matrix.to_csv(stats_dir / f"{m}_{name}.csv")
    if b.matrices:
        lines += ["Post-hoc tests after Friedman (matrices in `stats/`): " + "; ".join(posthoc_agreement(b)) + "."]
    if b.cd is not None:
        lines += cd_lines(b, out)
    return lines


def cd_lines(b: Blocked, out: Path) -> list[str]:
    """The Nemenyi critical difference and the critical-difference diagram of the shown configurations."""
    n, k = b.scores.shape
    ranks = b.summary.set_index("configuration")["mean_rank"].loc[b.shown]
    top = "" if k <= MAX_ALL_PAIRS else f" ({len(ranks)} of {k}: the best by mean rank)"
    fig = cd_diagram(ranks, b.cd_matrix, out / "figures" / f"cd_{b.metric}.png", b.alpha,
                     f"{metric_name(b.metric)}: mean rank (1 = best){top}; bars join configurations {b.cd_test} does "
                     f"not separate; Nemenyi CD = {b.cd:.2f}")
    return ["", f"Nemenyi critical difference (Demšar 2006): CD = {b.cd:.2f} mean ranks (k = {k}, n = "
                f"{n} images, α = {b.alpha:g}); two configurations whose mean ranks differ by less "
                f"are not separated by the Nemenyi test. The diagram's bars follow {b.cd_test}.",
            "", f"![{b.metric} critical-difference diagram](figures/{fig.name})"]


def sensitivity_lines(b: Blocked, stats_dir: Path) -> list[str]:
    """Per-seed Friedman and the mixed model, beside the seed-averaged main result."""
    lines = ["Sensitivity checks:", ""]
    for r in b.per_seed.itertuples(index=False):
        lines.append(f"- seed {r.seed}: {r.line}; best: {r.best}{'' if r.best == b.best else ' (differs from the seed mean)'}.")
    if len(b.per_seed):
        b.per_seed.drop(columns="line").to_csv(stats_dir / f"{b.metric}_per_seed.csv", index=False)
    if b.mixed_skipped is not None:
        k = b.mixed_skipped
        return lines + [f"- mixed model skipped: with k = {k} configurations its {k - 1} fixed effects make the fit "
                        f"slow and unreadable (call `analysis.stats.mixed_model` directly to fit it)."]
    mm = b.mixed
    if not mm["ok"]:
        return lines + [f"- mixed model could not be fitted: {mm['error']}"]
    mm["coefficients"].to_csv(stats_dir / f"{b.metric}_mixed_model.csv", index=False)
    return lines + [f"- mixed model `{b.metric} ~ configuration + (1 | image) + (1 | network)` (crossed random "
                    f"intercepts, REML) on {mm['n_obs']} image × network rows ({mm['n_groups']} images, "
                    f"{mm['n_networks']} trained networks): Wald χ²({mm['df']}) = {mm['wald']:.2f}, "
                    f"{p_clause(mm['pvalue'])}{'' if mm['converged'] else ' (did not converge: read with care)'}; "
                    f"coefficients against {mm['reference']} in `stats/{b.metric}_mixed_model.csv`."]


def effects_lines(b: Blocked, out: Path) -> list[str]:
    """The factor effects table (main effects, then the largest significant others) and its figures."""
    eff, metric = b.effects, b.metric
    if eff is None:
        return []
    eff.to_csv(out / "stats" / f"{metric}_effects.csv", index=False)
    table = eff
    if len(eff) > MAX_ROWS:  # main effects, then the largest significant others
        main = eff[eff["kind"] == "main"]
        rest = eff[(eff["kind"] != "main") & (eff["pvalue_adj"] < b.alpha)]
        rest = rest.reindex(rest["effect_size"].abs().sort_values(ascending=False).index).head(max(0, MAX_ROWS - len(main)))
        table = pd.concat([main, rest])
    shown = pformat(table.drop(columns=["metric", "mean_diff", "statistic"]))
    cut = [] if len(table) == len(eff) else [f"Shown: {len(table)} of {len(eff)} rows (main effects, then the largest "
                                            f"significant simple and interaction effects); all in "
                                            f"`stats/{metric}_effects.csv`.", ""]
    lines = ["#### Factor effects", "",
             "Per-image effect of changing one factor with the others held fixed (a − b; `simple`: within one level "
             "of another factor; `interaction`: change of the a − b effect between two levels of the second factor); "
             "Wilcoxon signed-rank against 0, Holm over the rows of this table, 95% bootstrap CI of the median. "
             "Factors with more than 6 levels are compared level to next level.", "",
             *cut, md_table(shown), ""]
    fig = effects_plot(eff, metric, out / "figures" / f"effects_{metric}.png")
    lines += [f"![{metric} factor effects](figures/{fig.name})", ""]
    if b.cells is not None:
        fig = interaction_plot(b.cells, metric, out / "figures" / f"interaction_{metric}.png", panel=b.cells_panel,
                               reference=b.baseline_mean)
        lines += [f"![{metric}: feature level × pretraining](figures/{fig.name})", ""]
    return lines


def power_lines(b: Blocked, stats_dir: Path) -> list[str]:
    """Images needed for 80% power per pair against the pixel-only baseline, from the observed paired differences."""
    df, k = b.power, b.scores.shape[1]
    m = k * (k - 1) // 2
    df.to_csv(stats_dir / f"{b.metric}_power.csv", index=False)
    what = f"an effect of {b.power_effect:g}" if b.power_effect is not None else "the observed mean difference"
    return [f"#### Power ({b.metric})", "",
            f"Test images needed to detect {what} against {BASELINE} with 80% power (two-sided Wilcoxon signed-rank, "
            f"via the paired t-test sample size / ARE 3/π, sd of the observed per-image differences); "
            f"`n_needed_holm_bound` uses α/{m} (Bonferroni), a safe bound for the Holm family of {m} pairs. "
            f"Currently n = {len(b.scores)}.", "", md_table(df), ""]
