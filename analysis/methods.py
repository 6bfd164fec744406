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
    unit = (
        f"**Unit and model.** Each configuration was trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); a "
        f"trained network (configuration × seed) is the replicate. Each network was reduced to its mean over the "
        f"same test images (images sharing an anatomical position averaged first); configurations were compared on "
        f"these per-network means, with two error terms estimated by the method of moments from the (network × "
        f"image) table: the between-network variance within a configuration (seed luck) and the configuration × "
        f"patient interaction (or configuration × image where the test set has fewer than two patients), which is "
        f"shared by all networks of a configuration and makes the claims generalise over test images and patients "
        f"(crossed random factors; quasi-F in the sense of Clark 1973). Contrasts (a configuration against the best, "
        f"a factor level against the recommended level averaged over the other factors' combinations, a level within "
        f"a level of another factor) are tested with a t statistic with Satterthwaite degrees of freedom; factor "
        f"importance is the Type II sum of squares of each factor and two-way interaction on the per-network means "
        f"(statsmodels OLS, pixel-only baseline excluded) as a share of the total, tested with a quasi-F against the "
        f"expected null mean square σ²_network + n_seeds·T. Seeds are treated as independent replicates (not as "
        f"blocks), which is conservative when seeds share initialisation and patch order. Calibration on simulated "
        f"result folders with no configuration effect is checked by the test suite.")
    claims = (
        f"**Claims.** A difference is called better/worse only when it is significant after Holm correction within "
        f"its family (α = {s.alpha}) and its estimate is at least the smallest effect that matters ({thresholds}; "
        f"settable as `analysis.min_effect` in the study spec); practically equivalent when the two one-sided tests "
        f"(TOST, Holm-adjusted) put it inside ± that effect; otherwise undecided. Families, each per metric: the "
        f"factor terms; the levels of every factor against its recommended level; the best level within a level of "
        f"another factor against the recommended level; the configurations against the best. A level or "
        f"interaction claim also needs its factor term to be significant (gatekeeping). Metrics are not corrected "
        f"against each other. With fewer than {s.min_seeds} seeds per configuration no claim about configurations "
        f"is made (reported as insufficient replication, with the seeds needed for 80% power from the measured "
        f"between-network SD, noncentral t); with fewer than {s.min_patients} test patients the report says the "
        f"results cannot generalise across patients. Ψ versus λ: `metric ~ cell + x + x²` within feature level × "
        f"pretraining with x = logit Ψ or log λ, R² difference with a bootstrap CI (networks redrawn within "
        f"configurations plus the test-set deviation), called when the CI excludes 0 and the difference is ≥ "
        f"{s.psi_min_effect}. Configurations still improving at the last epoch (validation gain ≥ the smallest "
        f"effect, best epoch last, in at least half of their seeds) are marked on every claim that involves them.")
    pairs = ("pairwise two-sided Wilcoxon signed-rank tests (zero differences discarded; exact or normal "
             "approximation per pair as scipy chooses) with Holm correction over "
             + (f"each configuration against the best and against the pixel-only baseline (with k = {k} all pairs "
                "would be too large a family); Conover post-hoc p-values (Holm) drive the critical-difference "
                "diagram of the 20 best configurations; the Nemenyi test and the mixed model are skipped"
                if large else
                "all pairs of a metric (one family per metric); Nemenyi and Conover post-hoc tests; the "
                "critical-difference diagram joins configurations that Wilcoxon–Holm does not separate and states "
                "the Nemenyi critical difference (Demšar 2006)"))
    conditional = (
        f"**Conditional analysis (what paper 1 did).** Seeds averaged, test images as blocks (n = {n_images}): the "
        f"Friedman test (scipy's tie-corrected χ²; Kendall's W; Iman–Davenport F alongside), {pairs}; the "
        f"matched-pairs rank-biserial correlation (signed: > 0 when a > b) as effect size and a 95% bootstrap (BCa, "
        f"2,000 resamples; percentile where BCa is degenerate) CI of the median paired difference. Factor effects as "
        f"per-image differences between levels, Wilcoxon against zero with Holm over all effects of a metric. This "
        f"analysis is conditional on these trained networks and these test images; the guidelines do not rest on it.")
    return "\n\n".join([unit, claims, conditional, _metric_text(window, metrics)])


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


