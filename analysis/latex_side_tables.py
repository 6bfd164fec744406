"""LaTeX tables of the study's side analyses: the loss magnitudes and the λ per target Ψ (`psi_lambda.tex`) and the
reader study (`readers.tex`); the main tables are in `analysis.latex_tables`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.latex import booktabs, escape, estimate_ci, num, plain, write_tex
from analysis.style import metric_name as _label


def _psi_header(col: str) -> str:
    fixed_names = {"feature_level": "Feature level", "pretraining": "Pretraining", "arm": "Arm", "n": "$n$",
                   "L_pixel": r"$L_\mathrm{pixel}$", "L_P": "$L_P$"}
    if col in fixed_names:
        return fixed_names[col]
    for prefix, fmt in (("psi_at_lam_", r"$\Psi$ at $\lambda={}$"), ("lam_for_psi_", r"$\lambda$ for $\Psi={}$")):
        if col.startswith(prefix):
            return fmt.format(escape(col[len(prefix):]))
    return escape(col)


def psi_lambda_table(table: pd.DataFrame, path: Path) -> Path:
    """`psi_lambda.tex` in the folder `path`: loss magnitudes, Ψ at a common λ and the λ each target Ψ needs
    (stats/lambda_for_psi.csv); a column with a tiny or huge value is in scientific notation throughout."""
    cols = list(table.columns)
    fmt = {}
    for col in cols:
        v = pd.to_numeric(table[col], errors="coerce") if col not in ("feature_level", "pretraining", "arm") else None
        if v is None or v.isna().all() or col == "n":
            fmt[col] = (lambda x: escape(x)) if v is None else (lambda x: num(x))
        else:
            sci = not plain(*v.dropna())
            fmt[col] = (lambda x, sci=sci: num(x, 3, sci=sci))
    rows, rules = [], {}
    for i, r in enumerate(table.to_dict("records")):
        if i and "feature_level" in r and r["feature_level"] != table["feature_level"].iloc[i - 1]:
            rules[i] = r"\addlinespace"
        rows.append([fmt[c](r[c]) for c in cols])
    caption = (r"Loss magnitudes per training arm (pixel $L_\mathrm{pixel}$, perceptual $L_P$), the perceptual "
               r"share $\Psi = \lambda L_P / (L_\mathrm{pixel} + \lambda L_P)$ at a common $\lambda$, and the "
               r"$\lambda$ that gives each target $\Psi$.")
    align = "".join("l" if c in ("feature_level", "pretraining", "arm") else "r" for c in cols)
    text = booktabs(rows, [_psi_header(c) for c in cols], caption=caption, label="tab:psi-lambda", align=align,
                    rules=rules, size="footnotesize", wide=True)
    return write_tex(Path(path), "psi_lambda.tex", text)


def readers_table(res: dict, path: Path) -> Path:
    """`readers.tex` in the folder `path` from a reader-study analysis (`analysis.readers.compute`): the
    inter-reader agreement per criterion (ICC(2,1) and ICC(2,k) with 95% CIs, Krippendorff's alpha), then each
    metric's agreement with the readers (Kendall tau-b over cases, overall criterion; 2afc: 2 * share - 1)."""
    rows, rules = [], {}
    for r in res.get("agreement", pd.DataFrame()).to_dict("records"):
        icc = [estimate_ci(r.get(k), r.get(f"{k}_ci_low"), r.get(f"{k}_ci_high")) for k in ("ICC2", "ICC2k")]
        alpha = r.get("alpha_ordinal", r.get("alpha_nominal"))
        rows.append([escape(f"agreement: {r['criterion']}"), *(f"{e} {c}" if c != "--" else e for e, c in icc),
                     num(alpha, 3), num(r.get("cases")), num(r.get("readers"))])
    m = res.get("metrics", pd.DataFrame())
    main = m[m["level"].isin(["image", "choice"]) & m["criterion"].isin(["overall", "choice"])] if len(m) else m
    rules[len(rows)] = r"\midrule"
    for r in main.sort_values("value", ascending=False).to_dict("records"):
        est, ci = estimate_ci(r["value"], r["ci_low"], r["ci_high"])
        rows.append([escape(f"metric: {_label(r['metric'])}"), f"{est} {ci}", "--", "--", num(r["n"]), "--"])
    cols = ["", r"ICC(2,1) / metric $\tau$ [95\% CI]", r"ICC(2,$k$) [95\% CI]", r"$\alpha$", "Cases", "Readers"]
    caption = ("Reader study: inter-reader agreement per criterion (two-way random ICC, absolute agreement; "
               r"Krippendorff's $\alpha$), then each metric's agreement with the readers' overall scores "
               r"(Kendall $\tau_b$ over cases, sign-flipped where lower is better, so $> 0$ agrees; bootstrap 95\% "
               "CIs; 2AFC: 2 $\\times$ share choosing the image the metric prefers $-$ 1).")
    text = booktabs(rows, cols, caption=caption, label="tab:readers", align="lllrrr", rules=rules,
                    size="footnotesize")
    return write_tex(Path(path), "readers.tex", text)
