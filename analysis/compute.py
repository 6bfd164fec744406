"""The compute layer: `analyse(results_dir, metrics=None) -> Evidence` reads a results folder and computes every number
the report shows, once. It writes nothing (the folder is left byte-identical); `analysis.render.write_report` turns
the Evidence into files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.blocked import blocked
from analysis.claims import study_claims
from analysis.consistency_section import consistency_evidence
from analysis.convergence import improving_configurations, still_improving
from analysis.design_section import design_facts
from analysis.evidence import Evidence, NetworkEvidence, Study
from analysis.examples_figure import examples_evidence
from analysis.influence import influence_evidence
from analysis.load import HIGHER_IS_BETTER, load_results, split_test_sets
from analysis.network_section import per_patient_tables, variance_table
from analysis.paper1_section import paper1_pairs, published_table
from analysis.provenance import provenance
from analysis.psi_calibration import lam_three_ways
from analysis.stages_section import stages_evidence
from analysis.settings import analysis_spec_of, patients_known, settings_of, spec_of, window_of
from study.errors import StudyError


def read_study(results_dir: str | Path, metrics: list[str] | None = None) -> Study:
    """The folder's spec, settings and tables; a metric the folder lacks is a one-line error."""
    results_dir = Path(results_dir)
    trials, all_images = load_results(results_dir)
    per_image, extra = split_test_sets(all_images)
    have = [m for m in HIGHER_IS_BETTER if m in per_image and per_image[m].notna().any()]
    for m in metrics or []:
        if m not in per_image:
            raise StudyError(f"--metric {m!r}: not in {results_dir / 'per_image.parquet'} (it has {', '.join(have)})")
    spec = spec_of(results_dir)
    a = analysis_spec_of(results_dir, spec)
    return Study(results_dir.name, results_dir, spec, a, settings_of(results_dir, spec, a), window_of(spec),
                 patients_known(spec, per_image), trials, per_image, extra, tuple(metrics or have))


def analyse(results_dir: str | Path, metrics: list[str] | None = None, power: bool = False,
            power_effect: float | None = None) -> Evidence:
    """Every number of the report of `results_dir` (module docstring); `power` adds the image-blocked power tables."""
    st = read_study(results_dir, metrics)
    trials, per_image, metrics = st.trials, st.per_image, list(st.metrics)
    conv = still_improving(st.results_dir, trials, st.min_effect)
    improving = improving_configurations(conv) if len(conv) else {}
    nets = _networks(st, improving) if len(per_image) else None
    blocks = ({m: blocked(per_image, m, power, power_effect, st.settings.alpha) for m in metrics}
              if len(per_image) else {})
    order = blocks[metrics[0]].order if blocks else []
    pairs = paper1_pairs(st, nets)
    return Evidence(
        study=st, design=design_facts(st), networks=nets, blocked=blocks,
        influence=influence_evidence(trials), lam_three_ways=lam_three_ways(trials),
        published=published_table(st), paper1_pairs=pairs,
        convergence=conv if len(conv) else None, improving=improving,
        examples=examples_evidence(st, order) if blocks else None,
        consistency=consistency_evidence(st.results_dir, trials, per_image, metrics),
        extra_means={name: extra_means(images, metrics) for name, images in st.extra.items()},
        search=search_trials(st.results_dir), readers=reader_results(st.results_dir),
        provenance=provenance(st.results_dir.resolve(), trials), stages=stages_evidence(st.results_dir, trials))


def _networks(st: Study, improving: dict) -> NetworkEvidence:
    from analysis import guidelines

    s, metrics = st.settings, list(st.metrics)
    claims, tables, per_metric = study_claims(st.per_image, st.trials, metrics, s, improving)
    who = guidelines.population_sentence(claims, s.min_patients, st.patients_known)
    context = {**_context(st.per_image, claims, st, improving), "patients_known": st.patients_known,
               "population_words": f"here: {who[0].lower()}{who[1:]}" if who else None}
    vb = tables.get("vs_best")
    shown = [m for m in metrics if vb is not None and (vb["metric"] == m).any()]
    return NetworkEvidence(claims, tables, variance_table(per_metric, st.min_effect),
                           per_patient_tables(st.per_image, shown), who, context, per_metric)


def _context(per_image: pd.DataFrame, claims: list[dict], st: Study, improving: dict) -> dict:
    from analysis.load import unit_suffix

    s = st.settings
    first = next((c for c in claims if c["kind"] == "factor_importance" or c.get("would_be") == "best"
                  or c["kind"] == "best"), claims[0] if claims else {})
    counts = per_image.groupby("configuration")["run_key"].nunique()
    return {"n_networks": int(per_image["run_key"].nunique()), "seeds": int(counts.median()),
            "n_images": first.get("n_images", per_image["image_id"].nunique()),
            "n_patients": first.get("n_patients", 1), "alpha": s.alpha, "min_seeds": s.min_seeds,
            "min_patients": s.min_patients, "improving": improving,
            "thresholds": ", ".join(f"{m} {s.effect(m):g}{unit_suffix(m)}" for m in st.metrics)}


def extra_means(images: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """A small extra test set (e.g. the real CT slices): means per configuration and of the low-dose input."""
    cols = [m for m in metrics if m in images and images[m].notna().any()]  # CT-specific ones need phantoms
    table = images.groupby("configuration")[cols].mean()
    table.loc["low-dose input"] = pd.Series({m: images[f"input_{m}"].mean() for m in cols if f"input_{m}" in images})
    return table


def search_trials(results_dir: Path) -> pd.DataFrame | None:
    """The Optuna refinement trials (`search.parquet`), if any."""
    path = Path(results_dir) / "search.parquet"
    t = pd.read_parquet(path) if path.is_file() else None
    return t if t is not None and len(t) else None


def reader_results(results_dir: Path) -> dict | None:
    """The reader study's results where RESULTS_DIR/readers has answers ({"error": why} when they cannot be
    analysed); None without answers."""
    from study.readers import layout
    from analysis.readers import compute, read_answers

    reader_dir = Path(results_dir) / "readers"
    if not (reader_dir / layout.ANSWERS).is_file():
        return None
    try:
        return None if read_answers(reader_dir).empty else compute(reader_dir)
    except StudyError as err:
        return {"error": str(err)}
