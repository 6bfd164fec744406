"""LaTeX tables for a paper (analysis/latex.py, analysis/latex_tables.py): every file parses (pylatexenc: matched
environments, as many cells per tabular row as the column spec has columns) and, where pdflatex is installed,
compiles standalone; escaping, bold bests and the pairwise numbers against the stats CSVs. Inputs are trimmed from
a real report (a 2 × 3 × 3 perceptual-loss study)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.latex import escape, num, pvalue, standalone
from analysis.latex_tables import results_table, write_tables

pytest.importorskip("pylatexenc")
from helpers.latex import PDFLATEX, compiles, parses  # noqa: E402

ODD = "a_b & 50% #1 {x} · Ψ=0.95 ~^\\ é 漢"
BEST = "block5_conv4 · natural-rotnet · λ=0.01"
TEST = "t (Satterthwaite df) on per-network means (networks = replicates, images/patients random)"
N = {"n_images": 24, "n_patients": 1, "test": TEST, "family": "f"}
CLAIMS = [
    {**N, "metric": "psnr", "kind": "factor_importance", "subject": "feature level × pretraining", "reference": None,
     "estimate": 6.6, "ci_low": 4.5, "ci_high": 8.7, "p_adj": 1e-5, "n_networks": 54, "share": 0.35, "matters": True},
    {**N, "metric": "psnr", "kind": "better", "subject": "weighting=λ=0.1", "reference": "weighting=Ψ=0.95",
     "estimate": 2.97, "ci_low": 1.92, "ci_high": 4.02, "p_adj": 6.4e-06, "n_networks": 36, "factor": "weighting"},
    {**N, "metric": "psnr", "kind": "depends", "subject": "feature_level=block5_conv4", "on": "weighting",
     "reference": "feature_level=block3_conv2", "context": "weighting=λ=0.01", "estimate": 9.9, "ci_low": 9.0,
     "ci_high": 11.0, "p_adj": 0.5, "n_networks": 18},  # stale numbers: the table must take the CSV's
    {**N, "metric": "psnr", "kind": "best", "subject": BEST, "reference": "pixel-only", "estimate": 0.166,
     "ci_low": -2.4, "ci_high": 2.73, "p_adj": 1.0, "n_networks": 6},
    {**N, "metric": "psnr", "kind": "worse", "subject": "Ψ", "reference": "log λ", "estimate": -0.0965,
     "ci_low": -0.166, "ci_high": -0.029, "p_adj": 0.003, "n_networks": 54},
    {**N, "metric": "ssim", "kind": "equivalent", "subject": ODD, "reference": "pixel-only", "estimate": 1e-4,
     "ci_low": -3e-4, "ci_high": 5e-4, "p_adj": 0.012, "n_networks": 6},
    {**N, "metric": "rmse_hu", "kind": "insufficient_replication", "would_be": "better", "subject": "loss=ssim",
     "reference": "loss=l1", "estimate": -2.2, "ci_low": -3.4, "ci_high": -1.0, "p_adj": 0.007, "n_networks": 4},
    {**N, "metric": "rmse_hu", "kind": "insufficient_replication", "subject": "seeds per configuration",
     "reference": "≥ 3", "estimate": 0.508, "ci_low": None, "ci_high": None, "p_adj": None, "n_networks": 14,
     "seeds_needed": 5},
]
HEAD = "estimate,se,df,t,pvalue,ci_low,ci_high,n_networks,p_adj,p_equiv,family,metric,"
CSV = {
    "network_levels.csv": HEAD + "factor,a,b\n2.9707910794607897,0.5172431218119395,38.009906231534174,"
    "5.743510071344973,1.2789996477984573e-06,1.923696084152445,4.017886074769134,36,6.394998238992287e-06,1.0,"
    "f,psnr,weighting,λ=0.1,Ψ=0.95\n",
    "network_depends.csv": HEAD + "factor,context,a,b\n1.6138945070510422,0.7314922379106437,38.009906231534174,"
    "2.2063043507622146,0.03347877844421389,0.1330785635929892,3.094710450509095,18,0.10043633533264167,0.92,f,"
    "psnr,feature_level,weighting=λ=0.01,block5_conv4,block3_conv2\n",
    "network_vs_best.csv": HEAD + f"a,b,verdict\n0.16556857907929157,1.2669817214034957,38.00990623153419,"
    f"0.1306793,0.8967,-2.399279871648099,2.730417029806682,6,1.0,1.0,f,psnr,{BEST},pixel-only,undecided\n",
    "lambda_for_psi.csv": "feature_level,pretraining,arm,n,L_pixel,L_P,psi_at_lam_0.1,lam_for_psi_0.5,"
    "lam_for_psi_0.95\nblock3_conv2,ct-rotnet,λ=0.01,3,0.000766,0.0731,0.905,0.0105,0.199\n"
    "block5_conv4,random,Ψ=0.95,3,0.00454,0.0112,0.198,0.405,7.69\n"
    "block5_conv4,ct-rotnet,λ=0.1,3,0.000407,5.26e-05,0.0128,7.73,2760.0\n",
}


def summary(higher=True) -> pd.DataFrame:
    """Best mean rank first; the best mean and the best median are on other rows."""
    mean, median = ([22.37, 22.41, 22.21, 20.05], [22.45, 22.42, 22.59, 20.10]) if higher else \
        ([3.10, 3.30, 2.90, 3.60], [3.00, 2.80, 3.20, 3.50])
    return pd.DataFrame({"configuration": [BEST, ODD, "pixel-only", "block3_conv2 · random · λ=0.1"],
                         "mean": mean, "sd": [0.44, 0.45, 0.46, 0.40], "median": median,
                         "mean_rank": [1.33, 1.67, 3.0, 4.0]})


def report(tmp_path: Path, claims=CLAIMS, csv=CSV) -> tuple[Path, list[Path]]:
    import io

    out = tmp_path / "report"
    (out / "stats").mkdir(parents=True)
    tables = {name.removeprefix("network_").removesuffix(".csv"): pd.read_csv(io.StringIO(text))
              for name, text in csv.items()}  # the claims' network-level tables, as the Evidence holds them
    lam = tables.pop("lambda_for_psi", None)
    sums = {"psnr": (summary(), True, "dB", 20.1, 1.2), "rmse_hu": (summary(False), False, "HU", 61.0, None)}
    return out, write_tables(out, claims, sums, tables, lam)


# -- tests -------------------------------------------------------------------------------------------------------
def test_every_table_parses_and_compiles(tmp_path):
    out, paths = report(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["guidelines.tex", "pairwise.tex", "preview.tex", "psi_lambda.tex", "results_psnr.tex",
                     "results_rmse_hu.tex"]
    tables = [p for p in paths if p.name != "preview.tex"]
    for p in tables:
        text = p.read_text()
        assert text.startswith("% generated by study ") and "needs \\usepackage{booktabs}" in text.splitlines()[0]
        parses(text)
    preview = (out / "tables" / "preview.tex").read_text()
    assert all(f"\\input{{{p.stem}}}" in preview for p in tables)
    if PDFLATEX:
        for p in tables:
            (tmp_path / p.name).write_text(standalone(p.read_text()))
            compiles(tmp_path, p.name)
        compiles(out / "tables", "preview.tex")


def test_escape_and_numbers():
    assert escape("a_b & 50% #1 {x}") == r"a\_b \& 50\% \#1 \{x\}"
    assert escape(BEST) == r"block5\_conv4 $\cdot$ natural-rotnet $\cdot$ $\lambda$=0.01"
    assert escape("Ψλ² ≥ 3 – 4") == r"$\Psi \lambda ^{2}$ $\geq$ 3 -- 4"
    assert escape("é漢−1") == "e?$-$1"
    assert (num(22.3736), num(0.00012), num(-0.0231), num(float("nan")), num(None), num(54)) == \
        ("22.37", r"$1.200\times10^{-4}$", "$-$0.02310", "--", "--", "54")
    assert num(123456.0, 3) == r"$1.23\times10^{5}$"
    assert (pvalue(0.0004), pvalue(0.0123), pvalue(None)) == ("$<0.001$", "0.012", "--")


def body(text: str) -> list[list[str]]:
    rows = text.split("\\midrule\n", 1)[1].split("\\bottomrule")[0]
    return [r.split(" & ") for r in rows.replace("\\midrule\n", "").split(" \\\\\n") if r.strip()]


@pytest.mark.parametrize("higher", [True, False])
def test_best_in_bold(tmp_path, higher):
    text = results_table(summary(higher), "psnr", higher_is_better=higher, unit="dB", input_mean=19.0,
                         input_sd=1.0, path=tmp_path).read_text()
    rows = body(text)
    bold = {(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c.startswith("\\textbf")}
    assert bold == ({(1, 1), (2, 2), (0, 3)} if higher else {(2, 1), (1, 2), (0, 3)})
    assert rows[-1][0] == "Low-dose input" and rows[-1][3] == "--" and len(rows) == 5
    assert "higher is better" in text if higher else "lower is better" in text


def test_pairwise_numbers_are_the_network_tables(tmp_path):
    import io

    out, _ = report(tmp_path)
    rows = body((out / "tables" / "pairwise.tex").read_text())
    assert len(rows) == 6  # every claim with a reference but the replication one
    dep = next(r for r in rows if r[1].startswith("feature\\_level=block5\\_conv4"))
    csv = pd.read_csv(io.StringIO(CSV["network_depends.csv"])).iloc[0]
    assert dep[2] == "feature\\_level=block3\\_conv2" and "(within weighting=$\\lambda$=0.01)" in dep[1]
    assert dep[3] == "1.61" and dep[4] == "[0.13, 3.09]" and dep[5] == "0.73"
    assert dep[6:] == [num(csv["df"], 3), num(csv["t"], 3), pvalue(csv["pvalue"]), pvalue(csv["p_adj"]),
                       pvalue(csv["p_equiv"])]
    psi = next(r for r in rows if r[1] == "$\\Psi$")  # no CSV row: the claim's own numbers
    assert psi[5:9] == ["--"] * 4 and psi[9] == "0.003" and psi[3] == "$-$0.097"
    eq = next(r for r in rows if r[0] == "SSIM")
    assert eq[9] == "--" and eq[10] == "0.012"  # an equivalence claim's p is TOST's


def test_guidelines_rows_and_conditional_tables(tmp_path):
    out, _ = report(tmp_path)
    text = (out / "tables" / "guidelines.tex").read_text()
    rows = body(text)
    assert len(rows) == len(CLAIMS) and [r[0] for r in rows if r[0]] == ["PSNR", "SSIM", "RMSE"]
    assert text.count("\\midrule") == 3  # under the header, and between the three metrics
    assert "matters (share 35\\%)" in text and "too few seeds (need 5)" in text
    out2, paths = report(tmp_path / "empty", claims=[], csv={})
    assert {p.name for p in paths} == {"results_psnr.tex", "results_rmse_hu.tex", "guidelines.tex", "preview.tex"}
    empty = (out2 / "tables" / "guidelines.tex").read_text()
    assert "No claims" in empty
    parses(empty)


def test_a_long_guidelines_table_becomes_floats_that_fit_a_page(tmp_path):
    """131 claims (the loss-function study's count) over 11 metrics: pieces of at most 40 rows, broken between
    metrics, each metric named at the top of its piece, the later pieces "continued"; every piece parses and the whole
    file compiles."""
    from analysis.latex_tables import MAX_ROWS, guidelines_table

    metrics = ["psnr", "ssim", "rmse_hu", "nrmse", "ms_ssim", "vif", "gmsd", "lpips_alex", "dists", "niqe", "ct_niqe"]
    claims = [{**CLAIMS[1], "metric": metrics[i * len(metrics) // 131], "subject": f"loss=l{i}"} for i in range(131)]
    text = guidelines_table(claims, tmp_path).read_text()
    assert parses(text) == 4 and text.count("\\begin{table*}") == 4 and text.count("% generated by") == 1
    pieces = text.split("\\begin{table*}")[1:]
    sizes = [len(body(p)) for p in pieces]
    assert sum(sizes) == 131 and max(sizes) <= MAX_ROWS
    assert "\\label{tab:guidelines}" in pieces[0] and "\\label{tab:guidelines-4}" in pieces[3]
    assert all("(Continued, part" in p for p in pieces[1:])
    for p in pieces:  # broken between metrics: each piece's first row names its metric, no metric split in two
        assert body(p)[0][0] != ""
    named = [r[0] for p in pieces for r in body(p) if r[0]]
    assert len(named) == len(set(named)) == len(metrics)
    if PDFLATEX:
        (tmp_path / "doc.tex").write_text(standalone(text))
        compiles(tmp_path, "doc.tex")


def test_a_results_table_of_many_configurations_is_cut_into_floats_with_its_bold_cells(tmp_path):
    """100 configurations (the paper grid has 433): floats of at most 40 rows; the bests stay bold in the piece they
    fall in, the low-dose input is the last row of the last piece, after its rule."""
    from analysis.latex_tables import MAX_ROWS

    n = 100
    s = pd.DataFrame({"configuration": [f"c{i}" for i in range(n)], "mean": [30.0 - 0.01 * i for i in range(n)],
                      "sd": 0.5, "median": [30.0 - 0.01 * i for i in range(n)], "mean_rank": range(1, n + 1)})
    s.loc[57, "median"] = 31.0  # the best median deep in the second piece
    text = results_table(s, "psnr", higher_is_better=True, unit="dB", input_mean=25.0, input_sd=1.0,
                         path=tmp_path).read_text()
    pieces = text.split("\\begin{table}")[1:]
    assert parses(text) == 3 and [len(body(p)) for p in pieces] == [MAX_ROWS, MAX_ROWS, n - 2 * MAX_ROWS + 1]
    second = body(pieces[1])
    assert second[57 - MAX_ROWS][0] == "c57" and second[57 - MAX_ROWS][2].startswith("\\textbf")
    assert body(pieces[0])[0][1].startswith("\\textbf") and body(pieces[2])[-1][0] == "Low-dose input"
    assert "\\label{tab:results-psnr-3}" in pieces[2] and pieces[2].count("\\midrule") == 2
    if PDFLATEX:
        (tmp_path / "doc.tex").write_text(standalone(text))
        compiles(tmp_path, "doc.tex")
