"""Markdown + self-contained HTML report of a results folder, with the tables as CSV under `report/stats/`."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pandas as pd

from analysis import guidelines
from analysis.claims import Settings, study_claims
from analysis.consistency_section import consistency_section
from analysis.design_section import design_section
from analysis.convergence import convergence_lines, improving_configurations, still_improving
from analysis.examples_figure import examples_section
from analysis.influence import perceptual_influence_section
from analysis.load import HIGHER_IS_BETTER, load_results, split_test_sets, unit_suffix
from analysis.markdown import md_table
from analysis.methods import methods_text, skipped_metrics_lines
from study.readers.analyze import reader_section_lines
from analysis.network_section import network_section
from analysis.paper1_section import pairs_section, published_section
from analysis.provenance import provenance_section
from analysis.psi_calibration import lam_section
from analysis.sections import metric_section, power_section


def _spec_of(results_dir: Path) -> dict:
    import yaml

    path = results_dir / "study.yaml"
    spec = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return spec if isinstance(spec, dict) else {}


def settings_of(results_dir: Path, spec: dict | None = None) -> Settings:
    """The study's `analysis:` section (study.spec.AnalysisSpec), validated; a bad value is a one-line error."""
    from pydantic import ValidationError

    from study.spec import AnalysisSpec
    from study.errors import StudyError

    raw = (_spec_of(results_dir) if spec is None else spec).get("analysis") or {}
    try:
        a = AnalysisSpec.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise StudyError(f"{results_dir / 'study.yaml'}: field 'analysis.{where}': {e['msg']} (got {e.get('input')!r})") from None
    return Settings(alpha=a.alpha, min_effect=dict(a.min_effect), min_seeds=a.min_seeds, min_patients=a.min_patients,
                    psi_min_effect=a.psi_min_effect)


def patients_known(spec: dict, per_image: pd.DataFrame) -> bool:
    """Whether the test set knows its patients: real data (mayo, tcia, dicom) do, the synthetic phantoms do not."""
    data = spec.get("data")
    source = data.get("source", "phantom") if isinstance(data, dict) else None  # "phantom" is the spec's default
    if source == "phantom" or "patient" not in per_image:
        return False
    return not per_image["patient"].astype(str).eq("phantom").all()


def _window_of(spec: dict) -> dict:
    """The study's metric window (study.spec.Window: centre, width, bits) with its `label`, `low` and `high`."""
    from study.spec import WINDOWS, Window  # torch-free

    w = spec.get("metric_window", "abdomen")
    if isinstance(w, str):
        c, width = WINDOWS[w]
        w = {"name": w, "center": c, "width": width}
    win = Window.model_validate(w)
    return {**win.model_dump(), "label": win.label, "low": win.low, "high": win.high}


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


def extra_section(name: str, images: pd.DataFrame, metrics: list[str], stats_dir: Path) -> list[str]:
    """A small extra test set (e.g. the real CT slices): means per configuration, descriptive only (no tests)."""
    cols = [m for m in metrics if m in images and images[m].notna().any()]  # CT-specific ones need phantoms
    table = images.groupby("configuration")[cols].mean()
    inputs = {m: images[f"input_{m}"].mean() for m in cols if f"input_{m}" in images}
    table.loc["low-dose input"] = pd.Series(inputs)
    table.reset_index().to_csv(stats_dir / f"{name}_means.csv", index=False)
    n = images["image_id"].nunique()
    return [f"## Extra test set: {name} ({n} images, descriptive)", "",
            f"Means over the {n} images ({', '.join(sorted(images['image_id'].unique()))}) and seeds; too few "
            f"images for tests.", "", md_table(table.reset_index()), ""]


def search_section(results_dir: Path) -> list[str]:
    """The Optuna refinement (`search.parquet`), if any: the best trial per (feature level, pretraining)."""
    path = Path(results_dir) / "search.parquet"
    if not path.is_file():
        return []
    t = pd.read_parquet(path)
    if t.empty:
        return []
    best = t.sort_values("val_psnr", ascending=False).groupby(["feature_level", "pretraining"]).head(1)
    cols = [c for c in ("feature_level", "pretraining", "psi_target", "lam", "lam_calibrated", "val_psnr", "psnr", "ssim")
            if c in best]
    return ["## Refinement search (Optuna)", "",
            f"{len(t)} refinement trials (validation PSNR maximised per feature level and pretraining; not part of the "
            f"tests above). Best per pair:", "", md_table(best[cols]), ""]


def write_report(results_dir: str | Path, metrics: list[str] | None = None, power: bool = False,
                 power_effect: float | None = None) -> Path:
    """(Re)write `RESULTS_DIR/report/`: report.md, report.html, guidelines.md, stats/*.csv, figures/*.png.

    Built in a temporary folder and swapped in at the end, so a failure leaves the previous report intact.
    """
    results_dir = Path(results_dir)
    trials, all_images = load_results(results_dir)
    per_image, extra = split_test_sets(all_images)
    metrics = metrics or [m for m in HIGHER_IS_BETTER if m in per_image and per_image[m].notna().any()]
    for m in metrics:
        if m not in per_image:
            have = sorted(c for c in HIGHER_IS_BETTER if c in per_image and per_image[c].notna().any())
            raise KeyError(f"--metric {m!r}: not in {results_dir / 'per_image.parquet'} (it has {', '.join(have)})")
    from study.store.locks import file_lock
    from study.store.results import replaced_folder

    final = results_dir / "report"
    with file_lock(results_dir / ".report.lock"):  # one writer; what a killed writer left behind is removed
        for stale in results_dir.glob(".report-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with replaced_folder(final) as out:
            _build(results_dir, trials, per_image, metrics, out, power, power_effect, extra)
    return final


def _build(results_dir: Path, trials: pd.DataFrame, per_image: pd.DataFrame, metrics: list[str], out: Path,
           power: bool, power_effect: float | None, extra: dict | None = None) -> None:
    (out / "stats").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    spec = _spec_of(results_dir)
    window = _window_of(spec)
    settings = settings_of(results_dir, spec)
    known = patients_known(spec, per_image)
    min_effect = {m: settings.effect(m) for m in HIGHER_IS_BETTER}
    seeds = sorted(trials["seed"].unique().tolist())
    lines = [f"# Study report: {results_dir.name}", "", *design_section(results_dir, trials, per_image, window, settings, known),
             *skipped_metrics_lines(trials)]
    lines += perceptual_influence_section(trials, out)
    lines += lam_section(trials, out)  # analysis.psi_calibration
    lines += published_section(spec, trials, out)  # analysis.paper1
    conv = still_improving(results_dir, trials, min_effect)
    improving = improving_configurations(conv) if len(conv) else {}
    if len(conv):
        conv.to_csv(out / "stats" / "convergence.csv", index=False)
    claims, context = [], {}
    tables: dict = {}
    if len(per_image):
        claims, tables = study_claims(per_image, trials, metrics, settings, improving)
        lines += ["", *network_section(per_image, metrics, tables, min_effect, out, settings.min_patients)]
        context = {**_context(per_image, claims, settings, metrics, improving), "patients_known": known}
        who = guidelines.population_sentence(claims, settings.min_patients, known)
        lines[2:2] = [f"**Who the claims are about:** {who} (See Guidelines and Methods.)", ""] if who else []
        context["population_words"] = f"here: {who[0].lower()}{who[1:]}" if who else None
    lines += convergence_lines(conv, "psnr", min_effect) if len(conv) else []
    section, numbers = _metric_sections(per_image, metrics, out, power, power_effect)
    lines += section
    if numbers:  # analysis.examples_figure: the outputs side by side, configurations best first by metrics[0]
        lines += examples_section(results_dir, trials, per_image, list(numbers[metrics[0]]["means"]), window, out,
                                  [m for m in ("psnr", "ssim") if m in metrics] or metrics[:2])
    lines += pairs_section(spec, per_image, settings, tables, out)  # analysis.paper1
    section, numbers_consistency = consistency_section(results_dir, trials, per_image, metrics, out)
    lines += section
    for name, images in (extra or {}).items():
        lines += extra_section(name, images, metrics, out / "stats")
    lines += search_section(results_dir)
    lines += reader_section_lines(results_dir, out)  # study.readers.analyze: where RESULTS_DIR/readers has answers
    lines += _guidelines(claims, context, bool(len(per_image)), out)
    lines += ["## Methods", "", methods_text(window, numbers, seeds, metrics, settings, context), ""]
    lines += provenance_section(results_dir, trials, out)
    lines += _tables(out, claims, numbers)
    _write(out, "\n".join(lines), numbers, numbers_consistency)


def _metric_sections(per_image: pd.DataFrame, metrics: list[str], out: Path, power: bool,
                     power_effect: float | None) -> tuple[list[str], dict]:
    """The image-blocked results of every metric (and its power section); lines and the numbers per metric."""
    numbers = {}
    lines = ["", "## Results per metric, conditional on these trained networks and these test images", "",
             "Image-blocked analysis (what paper 1 did): seeds averaged, test images as blocks. It describes these "
             "networks on these images; it does not treat the variation between trained networks or patients as "
             "error, so the guidelines do not rest on it.", ""]
    if len(per_image) == 0:
        return lines + ["No finished trial yet: nothing to test.", ""], numbers
    for m in metrics:
        sec, numbers[m] = metric_section(per_image, m, out)
        lines += sec
        if power:
            lines += power_section(per_image, m, out / "stats", power_effect)
    return lines, numbers


def _tables(out: Path, claims: list[dict], numbers: dict) -> list[str]:
    """The LaTeX tables (`tables/*.tex`) from the summary CSVs, the claims and the Ψ-λ table; the report's lines."""
    from analysis.latex_tables import write_tables
    from analysis.load import higher_is_better
    from analysis.style import unit

    summaries = {m: (pd.read_csv(out / "stats" / f"{m}_summary.csv"), higher_is_better(m), unit(m),
                     n.get("input_mean"), n.get("input_sd")) for m, n in numbers.items()
                 if (out / "stats" / f"{m}_summary.csv").is_file()}
    paths = write_tables(out, claims, summaries)
    return ["## Tables for a paper", "",
            "LaTeX (booktabs) versions of the results, guidelines, pairwise and Ψ-λ tables, each a `table` float to "
            "`\\input` (needs `\\usepackage{booktabs}`); `tables/preview.tex` compiles them all: "
            + ", ".join(f"`tables/{p.name}`" for p in paths) + ". Every figure has a vector PDF twin beside its PNG "
            "in `figures/`.", ""]


def _guidelines(claims: list[dict], context: dict, any_images: bool, out: Path) -> list[str]:
    """guidelines.json and guidelines.md under `out`; the report's "Guidelines" lines."""
    if any_images:
        md = guidelines.write(claims, context, out)
        return ["## Guidelines", "", md.split("\n", 2)[2]]
    (out / "guidelines.json").write_text("[]")
    (out / "guidelines.md").write_text("# Guidelines\n\nNo finished trial yet: no claims.\n")
    return []


def _write(out: Path, md: str, numbers: dict, numbers_consistency: dict) -> None:
    """report.md, report.html and summary.json (the numbers, without the pairwise and effects tables)."""
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(md, out))
    summary = {m: {k: v for k, v in n.items() if k not in ("pairwise", "effects")} for m, n in numbers.items()}
    if numbers_consistency:
        summary["consistency"] = numbers_consistency
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))


def _context(per_image: pd.DataFrame, claims: list[dict], s: Settings, metrics: list[str], improving: dict) -> dict:
    first = next((c for c in claims if c["kind"] == "factor_importance" or c.get("would_be") == "best"
                  or c["kind"] == "best"), claims[0] if claims else {})
    counts = per_image.groupby("configuration")["run_key"].nunique()
    return {"n_networks": int(per_image["run_key"].nunique()), "seeds": int(counts.median()),
            "n_images": first.get("n_images", per_image["image_id"].nunique()),
            "n_patients": first.get("n_patients", 1), "alpha": s.alpha, "min_seeds": s.min_seeds,
            "min_patients": s.min_patients, "improving": improving,
            "thresholds": ", ".join(f"{m} {s.effect(m):g}{unit_suffix(m)}" for m in metrics)}
