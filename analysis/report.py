"""Markdown + self-contained HTML report of a results folder, with the tables as CSV under `report/stats/`."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import boxplot
from analysis.guidelines import guidelines
from analysis.load import BASELINE, HIGHER_IS_BETTER, block_scores, input_scores, load_results
from analysis.stats import format_p, friedman, mean_ranks, pairwise_wilcoxon

ALPHA = 0.05


def _window_of(results_dir: Path) -> dict:
    import yaml

    spec = yaml.safe_load((results_dir / "study.yaml").read_text()) if (results_dir / "study.yaml").is_file() else {}
    w = (spec or {}).get("metric_window", "abdomen")
    if isinstance(w, str):
        from study.config import WINDOWS  # torch-free

        c, width = WINDOWS[w]
        return {"name": w, "center": c, "width": width}
    return w


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v) if np.isfinite(v) else "—"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def metric_section(per_image: pd.DataFrame, metric: str, out: Path) -> tuple[list[str], dict]:
    """Markdown lines for one metric, CSVs and figure written under `out`; returns lines and the numbers."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    scores, dropped = block_scores(per_image, metric)
    ref = input_scores(per_image, metric).loc[scores.index]
    ranks = mean_ranks(scores, higher)
    summary = pd.DataFrame({
        "configuration": ranks.index,
        "mean": [scores[c].mean() for c in ranks.index],
        "sd": [scores[c].std(ddof=1) for c in ranks.index],
        "median": [scores[c].median() for c in ranks.index],
        "mean_rank": ranks.to_numpy(),
    })
    summary.to_csv(out / "stats" / f"{metric}_summary.csv", index=False)
    lines = [f"### {metric} ({'higher' if higher else 'lower'} is better)", ""]
    shown = summary.assign(**{"mean ± sd": [f"{m:.4g} ± {s:.2g}" for m, s in zip(summary["mean"], summary["sd"])]})
    lines += [_md_table(shown[["configuration", "mean ± sd", "median", "mean_rank"]]), ""]
    lines += [f"Low-dose input: {ref.mean():.4g} ± {ref.std(ddof=1):.2g} (n = {len(ref)} images)."]
    if dropped:
        lines += [f"{dropped} images lacked a configuration and were left out of the tests."]
    numbers = {"n_images": int(len(scores)), "k": int(scores.shape[1]), "best": str(ranks.index[0]),
               "input_mean": float(ref.mean()), "means": dict(zip(summary["configuration"], summary["mean"]))}
    if scores.shape[1] >= 3 and len(scores) >= 2:
        fr = friedman(scores)
        pd.DataFrame([fr.__dict__]).to_csv(out / "stats" / f"{metric}_friedman.csv", index=False)
        lines += ["", f"**{fr.line()}.**"]
        numbers["friedman"] = fr.__dict__
    if scores.shape[1] >= 2 and len(scores) >= 2:
        pw = pairwise_wilcoxon(scores, "holm")
        pw.to_csv(out / "stats" / f"{metric}_pairwise.csv", index=False)
        shown = pw.assign(pvalue=[format_p(p) for p in pw["pvalue"]], pvalue_adj=[format_p(p) for p in pw["pvalue_adj"]])
        n_sig = int((pw["pvalue_adj"] < ALPHA).sum())
        lines += ["", f"Pairwise Wilcoxon signed-rank tests, Holm-adjusted: {n_sig} of {len(pw)} pairs differ at "
                      f"α = {ALPHA}. `effect_size` is the matched-pairs rank-biserial r (> 0: a better than b "
                      f"{'' if higher else 'in raw value, i.e. worse for this metric'}).", "",
                  _md_table(shown)]
        numbers["pairwise"] = pw
    fig = boxplot(scores, metric, out / "figures" / f"box_{metric}.png", order=list(ranks.index), reference=ref)
    lines += ["", f"![{metric} per configuration](figures/{fig.name})", ""]
    return lines, numbers


def _methods(window: dict, n_images: int, seeds: list, metrics: list[str]) -> str:
    return (f"Each configuration was trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); per test image, "
            f"metrics were averaged over seeds so that test images are the blocks (n = {n_images}). "
            f"PSNR and SSIM were computed with scikit-image on images mapped to [0, 1] in the display window "
            f"{window.get('name', '')} (centre {window['center']:g} HU, width {window['width']:g} HU, data range 1); "
            f"RMSE is in HU over the whole slice. Configurations were compared with the Friedman test (Kendall's W as "
            f"effect size) and pairwise two-sided Wilcoxon signed-rank tests (zero differences discarded) with Holm "
            f"correction over all pairs of a metric, with the matched-pairs rank-biserial correlation as effect size "
            f"(scipy {_v('scipy')}, statsmodels {_v('statsmodels')}). Metrics: {', '.join(metrics)}.")


def _v(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)


def _html(md: str, report_dir: Path) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(md)

    def embed(m):
        src = m.group(1)
        p = report_dir / src
        if p.is_file():
            return f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"'
        return m.group(0)

    body = re.sub(r'src="([^"]+\.png)"', embed, body)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em}"
             "th{background:#f3f3f3}img{max-width:100%}code{background:#f6f6f6}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>study report</title><style>{style}</style></head><body>{body}</body></html>"


def write_report(results_dir: str | Path, metrics: list[str] | None = None) -> Path:
    """(Re)write `RESULTS_DIR/report/`: report.md, report.html, guidelines.md, stats/*.csv, figures/*.png."""
    results_dir = Path(results_dir)
    trials, per_image = load_results(results_dir)
    out = results_dir / "report"
    (out / "stats").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    window = _window_of(results_dir)
    metrics = metrics or [m for m in HIGHER_IS_BETTER if m in per_image]
    for m in metrics:
        if m not in per_image:
            raise KeyError(f"--metric {m!r}: not in {results_dir / 'per_image.parquet'} (have {sorted(HIGHER_IS_BETTER)})")
    name = results_dir.name
    counts = trials["status"].value_counts().to_dict()
    seeds = sorted(trials["seed"].unique().tolist())
    lines = [f"# Study report: {name}", "",
             "## Design", "",
             f"- Trials: {len(trials)} ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
             f"configurations: {trials['configuration'].nunique()}; seeds: {seeds}.",
             f"- Factors: feature level {', '.join(sorted(map(str, trials['feature_level'].unique())))}; pretraining "
             f"{', '.join(sorted(map(str, trials['pretraining'].unique())))}; "
             f"λ {', '.join(f'{v:g}' for v in sorted(trials['lam'].unique()))}.",
             f"- Test images: {per_image['image_id'].nunique() if len(per_image) else 0}; metric window: "
             f"{window.get('name', '')} (centre {window['center']:g} HU, width {window['width']:g} HU).",
             f"- Cost: {trials.get('wall_s', pd.Series(dtype=float)).fillna(0).sum() / 3600:.2f} trial-hours."]
    missing = trials[trials["status"] != "finished"]
    if len(missing):
        lines += ["", f"**{len(missing)} trial(s) not finished — missing from the analysis, not silently dropped:**", ""]
        lines += [_md_table(missing[["run_key", "configuration", "seed", "status", "error"]].fillna(""))]
    psi = trials[trials["status"] == "finished"].groupby("configuration")[["psi", "perceptual_loss", "pixel_loss"]].mean()
    if len(psi):
        psi.reset_index().to_csv(out / "stats" / "perceptual_influence.csv", index=False)
        lines += ["", "## Perceptual influence", "",
                  "Ψ = λ·L_P / (L_pixel + λ·L_P) from the unweighted last-epoch means of both terms (mean over seeds).", "",
                  _md_table(psi.reset_index())]
    numbers = {}
    lines += ["", "## Results per metric", ""]
    if len(per_image) == 0:
        lines += ["No finished trial yet: nothing to test."]
    else:
        for m in metrics:
            sec, numbers[m] = metric_section(per_image, m, out)
            lines += sec
    rules = guidelines(numbers, alpha=ALPHA)
    (out / "guidelines.md").write_text("# Guidelines\n\n" + "\n".join(f"- {r}" for r in rules) + "\n")
    lines += ["## Guidelines", "", *[f"- {r}" for r in rules], "",
              "## Methods", "", _methods(window, numbers[metrics[0]]["n_images"] if numbers else 0, seeds, metrics), ""]
    md = "\n".join(lines)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(md, out))
    summary = {m: {k: v for k, v in n.items() if k != "pairwise"} for m, n in numbers.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return out
