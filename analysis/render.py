"""The render layer: `write_report(evidence, out_dir)` writes report.md, report.html, guidelines.md/json,
summary.json, provenance.json, stats/*.csv, figures/*.png|pdf and tables/*.tex from an `analysis.evidence.Evidence`
alone: it recomputes nothing and never reads its own outputs back. A section is a function of the Evidence (and the
folder its files go to) returning Markdown lines."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from pathlib import Path

import pandas as pd

from analysis import guidelines
from analysis.consistency_section import consistency_lines
from analysis.convergence import convergence_lines
from analysis.design_section import design_lines
from analysis.stages_section import stages_lines
from analysis.evidence import Evidence
from analysis.examples_figure import examples_lines
from analysis.figures import report_style
from analysis.influence import perceptual_influence_lines
from analysis.markdown import md_table
from analysis.methods import methods_text, skipped_metrics_lines
from analysis.network_section import network_lines
from analysis.paper1_section import pairs_lines, published_lines
from analysis.provenance import provenance_lines
from analysis.psi_calibration import lam_lines
from analysis.sections import metric_lines
from analysis.summary import summary_lines
from analysis.readers import reader_lines


def write_report(evidence: Evidence, out_dir: str | Path) -> Path:
    """Write the report of `evidence` into `out_dir` (created; files already there are overwritten)."""
    out = Path(out_dir)
    (out / "stats").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    with report_style():
        md = "\n".join(_lines(evidence, out))
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(html(md, out))
    summary = {m: {k: v for k, v in n.items() if k not in ("pairwise", "effects")} for m, n in evidence.numbers().items()}
    if evidence.consistency is not None and evidence.consistency.numbers():
        summary["consistency"] = evidence.consistency.numbers()
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return out


def _lines(ev: Evidence, out: Path) -> list[str]:
    st, nets = ev.study, ev.networks
    lines = [f"# Study report: {st.name}", "", *summary_lines(ev), *design_lines(ev.design, st),
             *stages_lines(ev.stages), *skipped_metrics_lines(st.trials)]
    lines += perceptual_influence_lines(ev.influence, st.trials, out)
    lines += lam_lines(ev.lam_three_ways, out)
    lines += published_lines(ev.published, st, out)
    if ev.convergence is not None:
        ev.convergence.to_csv(out / "stats" / "convergence.csv", index=False)
    if nets is not None:
        lines += ["", *network_lines(nets, list(st.metrics), st.min_effect, out)]
    lines += convergence_lines(ev.convergence, "psnr", st.min_effect) if ev.convergence is not None else []
    lines += blocked_lines(ev, out)
    if ev.examples is not None:
        lines += examples_lines(ev.examples, st.window, out)
    lines += pairs_lines(ev.paper1_pairs, st, out)
    lines += consistency_lines(ev.consistency, out)
    for name, table in ev.extra_means.items():
        lines += extra_lines(name, st.extra[name], table, out / "stats")
    lines += search_lines(ev.search)
    lines += reader_lines(ev.readers, out)
    lines += guidelines_lines(ev, out)
    lines += ["## Methods", "", methods_text(st.window, ev.numbers(), st.seeds, list(st.metrics), st.settings,
                                             nets.context if nets else {}), ""]
    lines += provenance_lines(ev.provenance, st.results_dir.resolve(), out)
    return lines + tables_lines(ev, out)


def blocked_lines(ev: Evidence, out: Path) -> list[str]:
    """The image-blocked results of every metric (and its power section)."""
    lines = ["", "## Results per metric, conditional on these trained networks and these test images", "",
             "Image-blocked analysis (what paper 1 did): seeds averaged, test images as blocks. It describes these "
             "networks on these images; it does not treat the variation between trained networks or patients as "
             "error, so the guidelines do not rest on it.", ""]
    if not ev.blocked:
        return lines + ["No finished trial yet: nothing to test.", ""]
    for b in ev.blocked.values():
        lines += metric_lines(b, out)
    return lines


def extra_lines(name: str, images: pd.DataFrame, table: pd.DataFrame, stats_dir: Path) -> list[str]:
    """A small extra test set (e.g. the real CT slices): means per configuration, descriptive only (no tests)."""
    table.reset_index().to_csv(stats_dir / f"{name}_means.csv", index=False)
    n = images["image_id"].nunique()
    return [f"## Extra test set: {name} ({n} images, descriptive)", "",
            f"Means over the {n} images ({', '.join(sorted(images['image_id'].unique()))}) and seeds; too few "
            f"images for tests.", "", md_table(table.reset_index()), ""]


def search_lines(t: pd.DataFrame | None) -> list[str]:
    """The Optuna refinement (`search.parquet`), if any: the best trial per (feature level, pretraining)."""
    if t is None:
        return []
    best = t.sort_values("val_psnr", ascending=False).groupby(["feature_level", "pretraining"]).head(1)
    cols = [c for c in ("feature_level", "pretraining", "psi_target", "lam", "lam_calibrated", "val_psnr", "psnr", "ssim")
            if c in best]
    return ["## Refinement search (Optuna)", "",
            f"{len(t)} refinement trials (validation PSNR maximised per feature level and pretraining; not part of the "
            f"tests above). Best per pair:", "", md_table(best[cols]), ""]


def tables_lines(ev: Evidence, out: Path) -> list[str]:
    """The LaTeX tables (`tables/*.tex`) from the Evidence; the report's lines."""
    from analysis.latex_tables import write_tables
    from analysis.load import higher_is_better
    from analysis.style import unit

    summaries = {m: (b.summary, higher_is_better(m), unit(m), float(b.reference.mean()),
                     float(b.reference.std(ddof=1))) for m, b in ev.blocked.items()}
    readers = ev.readers is not None and "error" not in ev.readers
    paths = write_tables(out, ev.claims, summaries, ev.networks.tables if ev.networks else {},
                         ev.influence.lam_table if ev.influence else None, readers)
    return ["## Tables for a paper", "",
            "LaTeX (booktabs) versions of the results, guidelines, pairwise and Ψ-λ tables, each a `table` float to "
            "`\\input` (needs `\\usepackage{booktabs}`); `tables/preview.tex` compiles them all: "
            + ", ".join(f"`tables/{p.name}`" for p in paths) + ". Every figure has a vector PDF twin beside its PNG "
            "in `figures/`.", ""]


def guidelines_lines(ev: Evidence, out: Path) -> list[str]:
    """guidelines.json and guidelines.md under `out`; the report's "Guidelines" lines."""
    if ev.networks is not None:
        md = guidelines.write(ev.claims, ev.networks.context, out)
        return ["## Guidelines", "", md.split("\n", 2)[2]]
    (out / "guidelines.json").write_text("[]")
    (out / "guidelines.md").write_text("# Guidelines\n\nNo finished trial yet: no claims.\n")
    return []


def _slug(text: str, seen: set[str]) -> str:
    plain = unicodedata.normalize("NFKD", re.sub(r"<[^>]+>", "", text)).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "section"
    slug, n = base, 1
    while slug in seen:
        n += 1
        slug = f"{base}-{n}"
    seen.add(slug)
    return slug


def _anchored(body: str) -> tuple[str, list[tuple[int, str, str]], list[tuple[str, str]]]:
    """The HTML body with an id on every h2–h4 and every image; the headings (level, id, text) and figures (id, alt)."""
    seen: set[str] = set()
    heads: list[tuple[int, str, str]] = []
    figs: list[tuple[str, str]] = []

    def head(m):
        slug = _slug(m.group(2), seen)
        heads.append((int(m.group(1)), slug, re.sub(r"<[^>]+>", "", m.group(2))))
        return f'<h{m.group(1)} id="{slug}">{m.group(2)}</h{m.group(1)}>'

    def image(m):
        fid = f"figure-{len(figs) + 1}"
        alt = re.search(r'alt="([^"]*)"', m.group(0))
        figs.append((fid, alt.group(1) if alt else fid))
        return f'<img id="{fid}"' + m.group(0)[4:]

    body = re.sub(r"<h([2-4])>(.*?)</h\1>", head, body)
    return re.sub(r"<img\b[^>]*>", image, body), heads, figs


def _toc(heads: list[tuple[int, str, str]], figs: list[tuple[str, str]]) -> str:
    items = "".join(f'<li class="l{lv}"><a href="#{slug}">{text}</a></li>' for lv, slug, text in heads if lv <= 3)
    figures = "".join(f'<li><a href="#{fid}">{alt}</a></li>' for fid, alt in figs)
    return (f'<nav id="contents"><details open><summary>Contents</summary><ul>{items}</ul>'
            + (f"<details><summary>Figures ({len(figs)})</summary><ul>{figures}</ul></details>" if figs else "")
            + "</details></nav>")


def html(md: str, report_dir: Path) -> str:
    """report.md as one self-contained HTML file: figures embedded, a table of contents linking every section and
    figure."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(md)

    def embed(m):
        src = m.group(1)
        p = report_dir / src
        if p.is_file():
            return f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"'
        return m.group(0)

    body, heads, figs = _anchored(re.sub(r'src="([^"]+\.png)"', embed, body))
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em}"
             "th{background:#f3f3f3}img{max-width:100%}code{background:#f6f6f6}"
             "nav#contents{font-size:.9em;border:1px solid #ddd;padding:.3em .8em;margin:1em 0}"
             "nav#contents ul{margin:.2em 0;padding-left:1.2em}nav#contents li.l3{margin-left:1.2em;font-size:.92em}")
    h1 = re.search(r"<h1>(.*?)</h1>", body)
    title = re.sub(r"<[^>]+>", "", h1.group(1)) if h1 else "study report"
    first = body.find("</h1>")
    cut = first + len("</h1>") if first >= 0 else 0
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
            f"<body>{body[:cut]}{_toc(heads, figs)}{body[cut:]}</body></html>")
