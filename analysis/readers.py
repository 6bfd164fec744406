"""`study readers analyze`: what the readers' answers say, written to READER_DIR/analysis/.

    agreement.csv         inter-reader agreement per criterion: likert ICC2 / ICC2k (two-way random, absolute
                          agreement; pingouin) with 95% CIs and Krippendorff's α ordinal; 2afc: α nominal on the
                          choices
    configurations.csv    likert: per criterion (and "overall") the mean score of each configuration with its 95% CI
                          from score ~ configuration, slice as group, reader as variance component (MixedLM), and the
                          Wald test that all are equal; 2afc: per configuration pair the share choosing each, binomial p
    metric_agreement.csv  which metrics agree with the readers: likert Kendall τ-b between a case's metric value
                          (sign-flipped where lower is better, so τ > 0 = agrees) and its mean reader score, over cases
                          ("image") and over configuration means ("configuration"), seeded bootstrap 95% CIs; 2afc the
                          share of choices of the image the metric prefers, as 2·share − 1 (> 0 = agrees)
    reader_study.md       all of it, readable; the metrics ranked by per-image τ
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from study.errors import StudyError
from study.readers import layout
from analysis import readers_stats as st
from study.readers.layout import per_image_metrics

OVERALL = "overall"


def read_answers(reader_dir: Path) -> pd.DataFrame:
    """The answers (reader, case_id, criterion, value), read-only; empty when there is no answers.sqlite."""
    path = Path(reader_dir) / layout.ANSWERS
    cols = ["reader", "case_id", "criterion", "value"]
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return pd.read_sql_query(f"SELECT {', '.join(cols)} FROM answers", con)
        finally:
            con.close()
    except (sqlite3.Error, pd.errors.DatabaseError) as err:
        raise StudyError(f"{path}: unreadable ({err})".splitlines()[0]) from None


def _likert_scores(answers: pd.DataFrame, key: dict, design: dict) -> pd.DataFrame:
    """One row per (case, reader, criterion) with the case's key; "overall" added as the mean of the criteria
    where the design has none."""
    df = answers[answers["case_id"].isin(list(key))].copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    if OVERALL not in set(df["criterion"]) and not df.empty:
        mean = df.groupby(["case_id", "reader"], as_index=False)["value"].mean().assign(criterion=OVERALL)
        df = pd.concat([df, mean], ignore_index=True)
    k = pd.DataFrame([{"case_id": c, **{f: v[f] for f in ("image_id", "run_key", "configuration")}}
                      for c, v in key.items()])
    return df.merge(k, on="case_id")


def _likert_agreement(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for crit, g in df.groupby("criterion", sort=False):
        icc = st.icc(g, target="case_id", rater="reader", rating="value")
        mat = g.pivot_table(index="reader", columns="case_id", values="value", aggfunc="mean")
        row = {"criterion": crit, "cases": g["case_id"].nunique(), "readers": g["reader"].nunique()}
        for name in ("ICC2", "ICC2k"):
            v = icc.get(name, (np.nan,) * 3)
            row.update({name: v[0], f"{name}_ci_low": v[1], f"{name}_ci_high": v[2]})
        rows.append(row | {"alpha_ordinal": st.alpha(mat.to_numpy(), "ordinal")})
    return pd.DataFrame(rows)


def _likert_configurations(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for crit, g in df.groupby("criterion", sort=False):
        means, test = st.mixed_means(g.rename(columns={"value": "score", "image_id": "block"}))
        out.append(means.assign(criterion=crit, wald_chi2=test["chi2"], wald_df=test["df"], wald_p=test["p"],
                                method=test["method"]))
    cols = ["criterion", "configuration", "mean", "ci_low", "ci_high", "n", "wald_chi2", "wald_df", "wald_p", "method"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def _likert_metrics(df: pd.DataFrame, design: dict, seed: int = 0) -> pd.DataFrame:
    from study.spec.metric_names import HIGHER_IS_BETTER as QUALITY_METRICS

    per_image, names = per_image_metrics(design)
    rows = []
    for crit, g in df.groupby("criterion", sort=False) if names else []:
        cases = g.groupby(["case_id", "run_key", "configuration", "image_id"], as_index=False)["value"].mean()
        cases = cases.merge(per_image[["run_key", "image_id", *names]], on=["run_key", "image_id"], how="left")
        for m in names:
            sign = 1.0 if QUALITY_METRICS[m] else -1.0
            x = sign * pd.to_numeric(cases[m], errors="coerce")
            conf = pd.DataFrame({"x": x, "y": cases["value"], "c": cases["configuration"]}).groupby("c").mean()
            for level, (a, b) in {"image": (x, cases["value"]), "configuration": (conf["x"], conf["y"])}.items():
                t, lo, hi = st.tau_ci(a, b, seed=seed)
                rows.append({"metric": m, "criterion": crit, "level": level, "statistic": "kendall_tau_b", "value": t,
                             "ci_low": lo, "ci_high": hi, "n": int(np.isfinite(a.to_numpy(float)).sum())})
    return pd.DataFrame(rows, columns=["metric", "criterion", "level", "statistic", "value", "ci_low", "ci_high", "n"])


def compute(reader_dir: Path) -> dict:
    """{"design", "answers" (count), "readers", "agreement", "configurations", "metrics"} of a reader folder."""
    from analysis import readers_2afc

    design, key = layout.read_json(reader_dir, layout.DESIGN), layout.read_json(reader_dir, layout.KEY)
    answers = read_answers(reader_dir)
    out = {"design": design, "answers": len(answers), "readers": sorted(set(answers["reader"]))}
    if answers.empty:
        raise StudyError(f"{Path(reader_dir) / layout.ANSWERS}: no answers yet — nothing to analyse")
    if design["design"] == "2afc":
        return out | readers_2afc.compute(answers, key, design)
    df = _likert_scores(answers, key, design)
    return out | {"agreement": _likert_agreement(df), "configurations": _likert_configurations(df),
                  "metrics": _likert_metrics(df, design, int(design.get("seed", 0)))}


def _table(df: pd.DataFrame) -> list[str]:
    if df.empty:
        return ["(none)", ""]
    fmt = df.copy()
    for c in fmt.columns:
        if pd.api.types.is_float_dtype(fmt[c]):
            fmt[c] = fmt[c].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    lines = ["| " + " | ".join(map(str, fmt.columns)) + " |", "|" + "---|" * len(fmt.columns)]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in fmt.itertuples(index=False)] + [""]


def markdown(res: dict, level: str = "#") -> list[str]:
    """The analysis as markdown lines, headings starting at `level`."""
    d, sub = res["design"], level + "#"
    lines = [f"{level} Readers", "", f"{d['design']} design · {res['answers']} answers · readers "
             f"{', '.join(res['readers'])} · results {d['results_dir']}", "",
             f"{sub} Inter-reader agreement", "", *_table(res["agreement"]),
             f"{sub} Configurations on reader scores", "", *_table(res["configurations"])]
    m = res["metrics"]
    if not m.empty:
        main = m["level"].isin(["image", "choice"]) & m["criterion"].isin([OVERALL, layout.CHOICE])
        rank = m[main].sort_values("value", ascending=False)
        lines += [f"{sub} Which metrics agree with the readers (overall, or the 2afc choice; ranked; > 0 = agrees)",
                  "", *_table(rank.drop(columns=["criterion", "level"])),
                  f"{sub} Metric agreement, all criteria and levels", "", *_table(m)]
    return lines


def analyze(reader_dir) -> dict:
    """Analyse READER_DIR's answers and write READER_DIR/analysis/ (see the module doc); the results."""
    reader_dir = Path(reader_dir)
    res = compute(reader_dir)
    out = reader_dir / "analysis"
    out.mkdir(exist_ok=True)
    for name in ("agreement", "configurations"):
        res[name].to_csv(out / f"{name}.csv", index=False)
    res["metrics"].to_csv(out / "metric_agreement.csv", index=False)
    (out / "reader_study.md").write_text("\n".join(markdown(res)) + "\n")
    return res | {"analysis_dir": str(out)}


def reader_lines(res: dict | None, out: Path | None = None) -> list[str]:
    """`study report`'s "## Readers" section from the reader study's results (analysis.compute.reader_results), or []
    without answers; with `out` (the report folder being built) also its LaTeX table, `out/tables/readers.tex`."""
    if res is None:
        return []
    if "error" in res:
        return ["## Readers", "", f"not analysed: {res['error']}", ""]
    if out is not None:
        from analysis.latex_side_tables import readers_table

        readers_table(res, Path(out) / "tables")
    return markdown(res, level="##")
