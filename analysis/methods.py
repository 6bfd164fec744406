"""The report's Methods text: what the unit is, which tests, which thresholds, which correction families."""

from __future__ import annotations

from importlib.metadata import version

from analysis.claims import Settings
from analysis.sections import MAX_ALL_PAIRS


def _v(pkg: str) -> str:
    return version(pkg)


def window_phrase(window: dict) -> str:
    """The metric window as the report names it: its label, then its bounds in HU (and the 8-bit scale)."""
    low = window["low"]
    if window.get("bits") == 8:
        return (f"{window['label']} ((HU {'+' if low < 0 else '−'} {abs(low):g})/{window['width']:g} clipped to [0, 1], "
                f"×255 cast to uint8, data range 255)")
    return (f"{window['label']} (centre {window['center']:g} HU, width {window['width']:g} HU: "
            f"{low:g}…{window['high']:g} HU)")


def methods_text(window: dict, numbers: dict, seeds: list, metrics: list[str], s: Settings, context: dict) -> str:
    k = max((n.get("k", 0) for n in numbers.values()), default=0)
    n_images = next((n["n_images"] for n in numbers.values()), 0)
    thresholds = context.get("thresholds", "")
    large = k > MAX_ALL_PAIRS
    unit = _unit_text(seeds, s, context)
    claims = _claims_text(s, thresholds)
    pairs = _pairs_text(k, large)
    conditional = (
        f"**Conditional analysis (what paper 1 did).** Seeds averaged, test images as blocks (n = {n_images}): the "
        f"Friedman test (scipy's tie-corrected χ²; Kendall's W; Iman–Davenport F alongside), {pairs}; the "
        f"matched-pairs rank-biserial correlation (signed: > 0 when a > b) as effect size and a 95% bootstrap (BCa, "
        f"2,000 resamples; percentile where BCa is degenerate) CI of the median paired difference. Factor effects as "
        f"per-image differences between levels, Wilcoxon against zero with Holm over all effects of a metric. This "
        f"analysis is conditional on these trained networks and these test images; the guidelines do not rest on it.")
    return "\n\n".join([unit, claims, conditional, _metric_text(window, metrics)])


def _unit_text(seeds: list, s: Settings, context: dict) -> str:
    population = context.get("population_words")
    here = f" ({population})" if population else ""
    unit = (
        f"**Unit and model.** Each configuration was trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); a "
        f"trained network (configuration × seed) is the replicate. Each network was reduced to its mean over the "
        f"same test images (images sharing an anatomical position averaged first); configurations were compared on "
        f"these per-network means. A contrast carries two errors: the between-network variance within a "
        f"configuration (seed luck; method of moments on the network × image table, pooled over configurations) and "
        f"its own deviation on this test set, estimated from the contrast itself so that a patient effect shared by "
        f"several configurations (say, all of one encoder) counts as often as it occurs: with at least "
        f"{s.min_patients} test patients (`analysis.min_patients`) the contrast computed per patient, its "
        f"between-patient variance (P − 1 df) being the error and the claim generalising over patients; with fewer, "
        f"the patients fixed and the contrast's variance between images within patients (I − P df) the error, the "
        f"claim then holding for these test patients only{here}. The image residual counted in both terms "
        f"is subtracted once; t statistics use Satterthwaite degrees of freedom. Factor importance is the Type II sum "
        f"of squares of each factor and two-way interaction on the per-network means (pixel-only baseline excluded) "
        f"as a share of the total, tested with a quasi-F (Clark 1973) whose denominator is the term's expected mean "
        f"square under the null: σ²_network plus the term × patient (or × image) mean square, which weights each "
        f"configuration's networks as the term's own sum of squares does. Seeds are treated as independent "
        f"replicates (not as blocks), which is conservative when seeds share initialisation and patch order.")
    return unit


def _claims_text(s: Settings, thresholds: str) -> str:
    claims = (
        f"**Claims.** A difference is called better/worse only when it is significant within its family (α = "
        f"{s.alpha}) and its estimate is at least the smallest effect that matters ({thresholds}; settable as "
        f"`analysis.min_effect` in the study spec); practically equivalent when the two one-sided tests (TOST, "
        f"Holm-adjusted) put it inside ± that effect; otherwise undecided. The effect-size rule uses the point "
        f"estimate, so a true effect exactly as large as the smallest effect is called at most about half of the "
        f"time, however many seeds and images. Families, each per metric: the factor terms (Holm); the levels of "
        f"every factor against its recommended level; the best level within a level of another factor against the "
        f"recommended level; the configurations against the best. The last three compare a choice made after "
        f"looking at the data (the best mean), so each is tested by a single-step max-t over every pair the choice "
        f"could have made (all pairs of configurations; all pairs of levels of every factor; all pairs of levels "
        f"within every context) with the multivariate-normal reference distribution simulated from the estimated "
        f"covariance of the configuration means (Hothorn, Bretz & Westfall 2008; Tukey's studentized range when "
        f"variances are equal), and their 95% CIs are simultaneous with it; the `tied` set, every \"beats\" and "
        f"the cross-metric comparison of the best configurations follow the same rule. A level or interaction claim "
        f"also needs its factor term to be significant (gatekeeping). Metrics are not corrected against each other. "
        f"Replication is judged per claim: a claim where a side of its contrast rests on fewer than {s.min_seeds} "
        f"networks (effective networks per side 2(Σ|w|/2)²/Σ(w²/n_c), rounded: n for two configurations of n seeds, "
        f"6n for a level averaged over 6 such configurations) is not made (reported as insufficient replication, "
        f"with the seeds needed for 80% power from the measured between-network SD, noncentral t). An open claim "
        f"(undecided or insufficiently replicated) is given the seeds per configuration that would decide it "
        f"(`seeds_to_decide`, at least {s.min_seeds}): decided means its family's interval separates it (|estimate| "
        f"above the half-width at α = {s.alpha} and at least the smallest effect) or lies inside ± the smallest "
        f"effect (|estimate| + half-width below it). At n seeds the contrast's SE² is its between-network part "
        f"scaled by (seeds now / n) plus its test-set part, which seeds do not shrink; the family's critical value "
        f"(half-width / SE) is kept as measured and the estimate taken as true, so this is a planning figure, not a "
        f"promise. Where the test-set part alone keeps the claim open no number of seeds decides it (more test "
        f"patients or images would); an estimate close to the smallest effect needs very many. The cost is the "
        f"extra trials of the contrast's configurations times the study's median trial wall time. Ψ versus λ: "
        f"`metric ~ cell + x + x²` within feature level × pretraining with x = logit Ψ or log λ; the R² difference "
        f"is tested by a parametric bootstrap of the null model `cell + log λ` (the part both share) with "
        f"configuration deviations and network offsets at their estimated variances (observed Ψ and λ kept; 2,000 "
        f"draws), its 95% CI from the same bootstrap around the union model, and called when p < α and the "
        f"difference is ≥ {s.psi_min_effect}. Configurations still improving at the last epoch (validation gain ≥ "
        f"the smallest effect, best epoch last, in at least half of their seeds) are marked on every claim that "
        f"involves them. The false-claim rate and power of every claim kind are measured by Monte Carlo in "
        f"benchmarks/calibration.py and checked by the test suite.")
    return claims


def _pairs_text(k: int, large: bool) -> str:
    return ("pairwise two-sided Wilcoxon signed-rank tests (zero differences discarded; exact or normal "
             "approximation per pair as scipy chooses) with Holm correction over "
             + (f"each configuration against the best and against the pixel-only baseline (with k = {k} all pairs "
                "would be too large a family); Conover post-hoc p-values (Holm) drive the critical-difference "
                "diagram of the 20 best configurations; the Nemenyi test and the mixed model are skipped"
                if large else
                "all pairs of a metric (one family per metric); Nemenyi and Conover post-hoc tests; the "
                "critical-difference diagram joins configurations that Wilcoxon–Holm does not separate and states "
                "the Nemenyi critical difference (Demšar 2006)"))


def _metric_text(window: dict, metrics: list[str]) -> str:
    return (f"**Metrics.** {', '.join(metrics)}. {'PSNR, SSIM and NRMSE' if 'nrmse' in metrics else 'PSNR and SSIM'} with "
            f"scikit-image in the metric window {window_phrase(window)}"
            + ("" if window.get("bits") == 8 else ", images mapped to [0, 1] and clipped, data range 1")
            + ("; NRMSE normalised by the reference's norm ('euclidean')" if "nrmse" in metrics else "")
            + f"; RMSE in HU over the whole slice.{_perception_text(metrics)} (scipy {_v('scipy')}, statsmodels "
            f"{_v('statsmodels')}, scikit-posthocs {_v('scikit-posthocs')}.)")


def _perception_text(metrics: list[str]) -> str:
    """How the learned (LPIPS, DISTS) and no-reference (NIQE, CT-NIQE) metrics were computed, where the report has
    them (their modules say it; imported only then: the learned ones need torch)."""
    from study.spec import LEARNED_METRICS, NO_REFERENCE_METRICS

    text = ""
    if any(m in LEARNED_METRICS for m in metrics):
        from study.metrics.learned import METHODS_TEXT

        text += " " + METHODS_TEXT
    if any(m in NO_REFERENCE_METRICS for m in metrics):
        from study.metrics.no_reference import METHODS_TEXT as NR_TEXT

        text += " " + NR_TEXT
    return text


def skipped_metrics_lines(trials) -> list[str]:
    """A note for each metric the trials could not compute (a learned metric's backbone missing from torchvision's
    cache), with the reason the trials recorded: absent from the tables, never silently."""
    if "skipped_metrics" not in trials:
        return []
    import json

    reasons: dict[str, set] = {}
    for text in trials["skipped_metrics"].dropna():
        try:
            recorded = json.loads(text)  # {metric: reason}, as the trial recorded it
        except ValueError:
            recorded = {"metrics": str(text)}
        for name, why in recorded.items():
            reasons.setdefault(name, set()).add(why)
    if not reasons:
        return []
    lines = ["**Metrics not computed.** Asked for in the spec but left out by the trials (no value in the tables):", ""]
    lines += [f"- `{name}`: {' / '.join(sorted(why))}" for name, why in sorted(reasons.items())]
    return lines + [""]


