"""The report's tables as LaTeX files for a paper (`report/tables/*.tex`, booktabs), and a `preview.tex` that
inputs them all."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd

from analysis.style import metric_name as _label
from analysis.latex import (booktabs, decimals, escape, estimate_ci, fixed, num, plain, preview, pvalue, to_float,
                            write_tex)
from analysis.guidelines import population_sentence
from analysis.latex_side_tables import psi_lambda_table

PAIRWISE = ("better", "worse", "equivalent", "undecided", "best", "depends")
KINDS = {"better": "better than", "worse": "worse than", "equivalent": "equivalent to", "undecided": "undecided vs.",
         "best": "best (vs. reference)"}


def _bests(values: list[str], raw, best) -> set[int]:
    """Rows whose shown value equals the shown value of the best raw one (ties in print are bold together)."""
    s = pd.Series(raw, dtype=float)
    if s.notna().sum() == 0:
        return set()
    top = values[int(best(s))]
    return {i for i, v in enumerate(values) if v == top}


def results_table(summary: pd.DataFrame, metric: str, *, higher_is_better: bool, unit: str = "",
                  input_mean=None, input_sd=None, path: Path) -> Path:
    """`results_<metric>.tex` in the folder `path`: mean ± SD, median and mean rank per configuration (the report's
    summary table, best first), the best of each column in bold, and the low-dose input last when given."""
    d = decimals(float(summary["sd"].median()))
    ok = plain(*summary["mean"], *summary["median"])
    f = (lambda x: fixed(x, d)) if ok else (lambda x: num(x, 3))
    mean_sd = [f"{f(m)} $\\pm$ {f(s)}" for m, s in zip(summary["mean"], summary["sd"])]
    median = [f(x) for x in summary["median"]]
    rank = [fixed(x, 2) for x in summary["mean_rank"]]
    best = pd.Series.idxmax if higher_is_better else pd.Series.idxmin
    bold = {(i, 1) for i in _bests(mean_sd, summary["mean"].to_numpy(), best)}
    bold |= {(i, 2) for i in _bests(median, summary["median"].to_numpy(), best)}
    bold |= {(i, 3) for i in _bests(rank, summary["mean_rank"].to_numpy(), pd.Series.idxmin)}
    rows = [[escape(c), *v] for c, *v in zip(summary["configuration"], mean_sd, median, rank)]
    rules = {}
    if input_mean is not None and math.isfinite(float(input_mean)):
        rules[len(rows)] = r"\midrule"
        sd = f" $\\pm$ {f(input_sd)}" if input_sd is not None and math.isfinite(float(input_sd)) else ""
        rows.append(["Low-dose input", f(input_mean) + sd, "--", "--"])
    u = f" ({escape(unit)})" if unit else ""
    name = escape(_label(metric))
    direction = "higher is better" if higher_is_better else "lower is better"
    caption = (f"{name}{u} on the test images ({direction}): mean $\\pm$ SD and median over test images of the "
               "mean over seeds per test image, and the mean rank over test images (1 = best). "
               "Best value of each column in bold.")
    cols = ["Configuration", f"{name} mean $\\pm$ SD{u}", f"Median{u}", "Mean rank"]
    text = _continued(_cut(rows, rules, bold), cols, caption=caption, label=f"tab:results-{_key(metric)}",
                      align="lrrr")
    return write_tex(Path(path), f"results_{metric}.tex", text)


def _key(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in str(text))


def _kind(c: dict) -> str:
    """The claim's kind in words."""
    k = c["kind"]
    if k == "factor_importance":
        share = fixed(100 * c["share"], 0) + r"\%" if c.get("share") is not None else "?"
        return ("matters" if c.get("matters") else "not shown to matter") + f" (share {share})"
    if k == "depends":
        return f"better than (depends on {escape(c.get('on', '?'))})"
    if k == "insufficient_replication":
        if c.get("would_be"):
            return f"too few seeds; would be {KINDS.get(c['would_be'], escape(c['would_be']))}"
        return "too few seeds" + (f" (need {c['seeds_needed']})" if c.get("seeds_needed") is not None else "")
    return KINDS.get(k, escape(k))


def _subject(c: dict) -> str:
    ctx = _context(c)
    return escape(c["subject"]) + (f" (within {escape(ctx)})" if ctx else "")


def _grouped(rows: list[tuple[str, list[str]]]) -> tuple[list[list[str]], dict[int, str]]:
    """Rows of (metric, cells): the metric named on its first row only, a midrule between metrics."""
    out, rules, last = [], {}, None
    for metric, cells in rows:
        if last is not None and metric != last:
            rules[len(out)] = r"\midrule"
        out.append([escape(_label(metric)) if metric != last else "", *cells])
        last = metric
    return out, rules


MAX_ROWS = 40  # rows per float: a longer table becomes several floats ("continued"), each fitting a page


def _chunks(rows: list[tuple[str, list[str]]]) -> list[list[tuple[str, list[str]]]]:
    """Rows of (metric, cells) in pieces of at most MAX_ROWS, broken between metrics where a metric fits whole."""
    out, cur = [], []
    for _, group in itertools.groupby(rows, key=lambda r: r[0]):
        group = list(group)
        if cur and len(cur) + len(group) > MAX_ROWS:
            out.append(cur)
            cur = []
        cur += group
        while len(cur) > MAX_ROWS:
            out.append(cur[:MAX_ROWS])
            cur = cur[MAX_ROWS:]
    return out + ([cur] if cur else [])


def _continued(pieces: list[tuple[list, dict, set]], cols: list[str], *, caption: str, label: str, **kw) -> str:
    """One booktabs float per (rows, rules, bold) piece; the later ones captioned "continued" and labelled
    `label`-2, -3, …; the "% generated by" line once."""
    texts = []
    for k, (body, rules, bold) in enumerate(pieces):
        cap = caption if k == 0 else f"(Continued, part {k + 1} of {len(pieces)}.)"
        text = booktabs(body, cols, caption=cap, label=label if k == 0 else f"{label}-{k + 1}", rules=rules,
                        bold=bold, **kw)
        texts.append(text if k == 0 else text.split("\n", 1)[1])
    return "\n".join(texts)


def _floats(rows: list[tuple[str, list[str]]], cols: list[str], *, caption: str, label: str, **kw) -> str:
    """Rows of (metric, cells) as floats of at most MAX_ROWS rows (`_chunks`), the metric named again at the top of
    each."""
    pieces = [(*_grouped(piece), set()) for piece in _chunks(rows)]
    return _continued(pieces, cols, caption=caption, label=label, **kw)


def _cut(rows: list, rules: dict, bold: set) -> list[tuple[list, dict, set]]:
    """Plain rows in pieces of at most MAX_ROWS, their rules and bold cells re-indexed per piece."""
    out = []
    for a in range(0, len(rows), MAX_ROWS):
        b = a + MAX_ROWS
        out.append((rows[a:b], {i - a: r for i, r in rules.items() if a < i < b},
                    {(i - a, j) for i, j in bold if a <= i < b}))
    return out


def guidelines_table(claims: list[dict], path: Path) -> Path:
    """`guidelines.tex` in the folder `path`: one row per claim of guidelines.json, grouped by metric."""
    order = list(dict.fromkeys(c["metric"] for c in claims))
    rows = []
    for c in sorted(claims, key=lambda c: order.index(c["metric"])):
        est, ci = estimate_ci(c["estimate"], c["ci_low"], c["ci_high"])
        ref = escape(c["reference"]) if c.get("reference") is not None else "--"
        rows.append((c["metric"], [_kind(c), _subject(c), ref, f"{est} {ci}" if ci != "--" else est,
                                   pvalue(c["p_adj"]), num(c.get("n_networks"))]))
    cols = ["Metric", "Claim", "Subject", "Reference", r"Estimate [95\% CI]", r"$p_\mathrm{adj}$", "Networks"]
    who = population_sentence(claims)
    caption = ("Design claims per metric (guidelines.json). Estimates are subject $-$ reference in the metric's "
               r"unit (factor terms: the largest level difference); $p_\mathrm{adj}$ is adjusted within the claim's "
               r"family: single-step max-$t$ over every pair a selection could make for best, level and depends "
               "claims, Holm for factor terms, Holm-adjusted TOST for equivalence." + (f" {escape(who)}" if who else ""))
    kw = {"align": "llp{4cm}p{4cm}lrr", "size": "footnotesize", "wide": True}
    text = _floats(rows, cols, caption=caption, label="tab:guidelines", **kw) if rows else \
        booktabs([["No claims", *[""] * 6]], cols, caption=caption, label="tab:guidelines", **kw)
    return write_tex(Path(path), "guidelines.tex", text)


def pairwise_claims(claims: list[dict]) -> list[dict]:
    """The claims that compare a subject with a reference (one per metric, subject, reference and context)."""
    out, seen = [], set()
    for c in claims:
        kind = c.get("would_be", c["kind"])
        key = (c["metric"], c["subject"], c.get("reference"), _context(c))
        if kind in PAIRWISE and c.get("reference") is not None and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _context(c: dict):
    return c.get("context") if c.get("would_be", c["kind"]) == "depends" and c.get("on") != "metric" else None


def _contrasts(tables: dict[str, pd.DataFrame]) -> dict[tuple, dict]:
    """Network-level contrasts by (metric, subject, reference, context) from the claims' tables (network_*.csv)."""
    out = {}
    for name in ("vs_best", "depends", "levels"):
        t = tables.get(name)
        if t is None:
            continue
        for r in t.to_dict("records"):
            r = {k: (str(v) if k in ("metric", "factor", "context", "a", "b") and pd.notna(v) else v) for k, v in r.items()}
            fac = f"{r['factor']}=" if "factor" in r else ""
            ctx = r.get("context") if name == "depends" else None
            out.setdefault((r["metric"], fac + r["a"], fac + r["b"], ctx), r)
    return out


def pairwise_table(claims: list[dict], tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """`pairwise.tex` in the folder `path`: the full test of every pairwise claim, from the network-level contrast
    tables (the claim's own numbers where no row matches)."""
    found = _contrasts(tables)
    rows = []
    for c in pairwise_claims(claims):
        r = found.get((c["metric"], c["subject"], c["reference"], _context(c)))
        if r is None:
            p_eq = c["p_adj"] if c["kind"] == "equivalent" else None
            r = {**c, "se": None, "df": None, "t": None, "pvalue": None, "p_equiv": p_eq,
                 "p_adj": None if p_eq is not None else c["p_adj"]}
        se = to_float(r["se"])
        est, ci = estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], scale=se if math.isfinite(se) else None)
        se_txt = fixed(se, decimals(se)) if plain(se) else num(se, 3)
        rows.append((c["metric"], [_subject(c), escape(c["reference"]), est, ci, se_txt, num(r["df"], 3),
                                   num(r["t"], 3), pvalue(r["pvalue"]), pvalue(r["p_adj"]), pvalue(r["p_equiv"])]))
    cols = ["Metric", "A", "B", r"$\Delta$ (A $-$ B)", r"95\% CI", "SE", "df", "$t$", "$p$",
            r"$p_\mathrm{adj}$ (max-$t$)", r"$p_\mathrm{equiv}$ (TOST)"]
    who = population_sentence(claims)
    caption = ("The tests behind the pairwise claims: per-network means, $t$ with Satterthwaite df (networks are the "
               r"replicates); $p_\mathrm{adj}$ single-step max-$t$ over every pair of the claim's family (the 95\% "
               r"CIs simultaneous with it), $p_\mathrm{equiv}$ the Holm-adjusted two one-sided tests against the "
               "metric's smallest effect." + (f" {escape(who)}" if who else ""))
    text = _floats(rows, cols, caption=caption, label="tab:pairwise", align="lp{2.8cm}p{2.8cm}rlrrrrrr",
                   size="scriptsize", wide=True)
    return write_tex(Path(path), "pairwise.tex", text)


def write_tables(out: Path, claims: list[dict], summaries: dict[str, tuple], tables: dict[str, pd.DataFrame],
                 lam_table: pd.DataFrame | None = None, readers: bool = False) -> list[Path]:
    """Every table under `out/tables` (results per metric, guidelines, pairwise and Ψ-λ where there is data) and
    `preview.tex` that compiles them all; `summaries[metric]` = (summary, higher, unit, input_mean, input_sd);
    `readers`: the Readers section wrote tables/readers.tex."""
    folder = Path(out) / "tables"
    paths = [results_table(s, m, higher_is_better=h, unit=u, input_mean=im, input_sd=isd, path=folder)
             for m, (s, h, u, im, isd) in summaries.items()]
    paths.append(guidelines_table(claims, folder))
    if pairwise_claims(claims):
        paths.append(pairwise_table(claims, tables, folder))
    if lam_table is not None and len(lam_table):
        paths.append(psi_lambda_table(lam_table, folder))
    paths += [folder / "readers.tex"] if readers else []
    paths.append(write_tex(folder, "preview.tex", preview([p.stem for p in paths])))
    return paths
