"""Report sections asked for by `analysis: {paper1: true}`: "As paper 1 analysed it" (its all-pairs statistics beside
the network-level verdicts, stats/paper1_pairs.csv) and paper 1's published loss magnitudes beside the measured ones
(stats/paper1_published.csv). The numbers come from `analysis.paper1`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.load import BASELINE
from analysis.markdown import MAX_ROWS, md_table
from analysis.paper1 import (PAPER_ALPHA, PAPER_LAM, PUBLISHED_SOURCE, compare, first_seed_scores,
                             guideline_verdicts, measured_vs_published, network_pairs, paper_pairs,
                             uses_paper_setting)
from analysis.influence import PSI_FORMULA

METRIC = "ssim"  # paper 1 tested the per-slice SSIM
MAX_CONFIGS = 40  # above this, the pairs of the 40 configurations with the best first-seed mean (+ pixel-only)


def _scores(per_image: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int], str]:
    scores, seeds = first_seed_scores(per_image, METRIC)
    note = ""
    if scores.shape[1] > MAX_CONFIGS:
        top = scores.mean().sort_values(ascending=False).index[:MAX_CONFIGS].tolist()
        top += [c for c in (BASELINE,) if c in scores and c not in top]
        note = (f" With {scores.shape[1]} configurations ({scores.shape[1] * (scores.shape[1] - 1) // 2} pairs) only "
                f"the pairs of the {MAX_CONFIGS} with the best first-seed mean (and pixel-only) are tested.")
        scores = scores[top]
    return scores, seeds, note


def _seed_text(seeds: dict[str, int]) -> str:
    used = sorted(set(seeds.values()))
    if len(used) == 1:
        return f"the seed-{used[0]} network of every configuration"
    odd = [f"{c} (seed {s})" for c, s in seeds.items() if s != used[0]]
    return f"the seed-{used[0]} network of each configuration, else its first finished seed: {', '.join(odd)}"


def _ssim_note(spec: dict) -> str:
    w = spec.get("metric_window", "abdomen")
    name = w if isinstance(w, str) else (w or {}).get("name") or "custom"
    if name == "full":
        return "The SSIM is paper 1's: the whole −1024…3072 HU range in 8 bits (`metric_window: full`)."
    return (f"The SSIM is this study's, in its `{name}` window (see Methods), not paper 1's full-range 8-bit one "
            "(`metric_window: full`).")


def paper1_pairs(st, nets) -> dict | None:
    """ "As paper 1 analysed it" (st: analysis.evidence.Study): None unless `analysis.paper1` is set and the study
    has SSIM on ≥ 2 configurations; else the pairs table with what its text says."""
    per_image = st.per_image
    if not (st.analysis.paper1 and len(per_image) and METRIC in per_image and per_image[METRIC].notna().any()):
        return None
    scores, seeds, note = _scores(per_image)
    if scores.shape[1] < 2:
        return None
    paper = paper_pairs(scores)
    per_network = nets.per_metric.get(METRIC) if nets else None
    if per_network is None:  # `study report --metric` without ssim: its per-network analysis, here only
        from analysis.factors import design_networks

        per_network = design_networks(per_image, METRIC, st.settings.min_patients)[0]
    net = network_pairs(per_network, METRIC, paper, st.settings)
    t = compare(paper, net, st.settings, METRIC, guideline_verdicts(nets.tables.get("vs_best") if nets else None, METRIC))
    return {"table": t, "k": scores.shape[1], "n_images": len(scores), "seeds": seeds, "note": note,
            "n_seeds": int(per_image.groupby("configuration")["run_key"].nunique().median())}


def pairs_lines(p: dict | None, st, out: Path) -> list[str]:
    if p is None:
        return []
    t, s, k = p["table"], st.settings, p["k"]
    t.to_csv(out / "stats" / "paper1_pairs.csv", index=False)
    n = len(t)
    n_changed, n_paper = int(t["changed"].sum()), int(t["winner"].notna().sum())
    n_net = int(t["net_winner"].notna().sum()) if len(t) else 0
    cols = ["a", "b", "paper_style", "network_level"] + (["guidelines"] if (t["guidelines"] != "—").any() else [])
    return ["## As paper 1 analysed it (SSIM, first seed, every pair, no correction)", "",
            "Paper 1's own statistics, reproduced: for every pair of configurations a two-sided Wilcoxon signed-rank "
            f"test (`scipy.stats.wilcoxon`) on the per-image SSIM, no correction for the {n} comparisons, α = "
            f"{PAPER_ALPHA:g}, |Cohen's d| with the pooled SD (ddof = 1); the configuration with the larger mean is the "
            f"winner when p < {PAPER_ALPHA:g}. Paper 1 trained one network per model, so this uses "
            f"{_seed_text(p['seeds'])}, on the {p['n_images']} test images every one of them was tested on (each "
            f"image a slice, reconstructions not averaged).{p['note']} {_ssim_note(st.spec)}", "",
            f"Beside each pair, the network-level analysis of the same pair (the unit is the trained network: t on the "
            f"per-network means of all seeds — typically {p['n_seeds']} per configuration — Holm over these {n} pairs, "
            f"better only when at least {s.effect(METRIC):g} apart, equivalent by TOST inside ± that, no claim with "
            f"fewer than {s.min_seeds} seeds) and, where the guidelines test the pair (configurations against the "
            "best), their verdict.", "",
            f"**{n_changed} of {n} pairs change their conclusion** (listed first). Paper-style: {n_paper} pairs with a "
            f"winner among {k} configurations (by chance alone about {PAPER_ALPHA * n:.0f} of {n} uncorrected tests "
            f"reach p < {PAPER_ALPHA:g} when nothing differs); network-level: {n_net}. Shown: up to {MAX_ROWS} rows; "
            "all in `stats/paper1_pairs.csv`.", "", md_table(t[cols].head(MAX_ROWS)), ""]


def _data_note(spec: dict) -> str:
    data = spec.get("data") if isinstance(spec.get("data"), dict) else {}
    source = data.get("source", "phantom")
    if source != "mayo":
        return (f"**This study's data are `{source}`, not the AAPM-Mayo 2016 scans paper 1 trained on: the loss "
                "magnitudes depend on the images (and L_P on the encoder's weights and input scaling), so these rows "
                "are not expected to agree — they check the order of magnitude of the pipeline; only a run on the "
                "real data is a reproduction.**")
    return ("The data are AAPM-Mayo 2016 (`mayo`), paper 1's: a faithful reproduction should land within about 2× of "
            "the published magnitudes. Remaining differences to expect: torchvision's and Keras's ImageNet VGG-19 "
            "weights differ, and so may the medical encoder.")


_FORMATS = {"mse_published": "{:.3g}", "mse_measured": "{:.3g}", "mse_ratio": "{:.3g}", "l_p_published": "{:.4g}",
            "l_p_measured": "{:.4g}", "l_p_ratio": "{:.3g}", "psi_published": "{:.4f}", "psi_measured": "{:.4f}"}


def _num(v, fmt: str) -> str:
    return fmt.format(v) if pd.notna(v) else "—"


def published_table(st) -> pd.DataFrame | None:
    """Paper 1's published last-epoch magnitudes and Ψ at λ = 0.1 beside the measured ones: None unless
    `analysis.paper1` is set and a finished trial used paper 1's setting (its feature levels and encoders)."""
    encoders = dict(st.analysis.paper1_encoders)
    if not (st.analysis.paper1 and uses_paper_setting(st.trials, encoders)):
        return None
    return measured_vs_published(st.trials, encoders)


def published_lines(t: pd.DataFrame | None, st, out: Path) -> list[str]:
    if t is None:
        return []
    t.to_csv(out / "stats" / "paper1_published.csv", index=False)
    names = ", ".join(f"{k} → `{v}`" for k, v in dict(st.analysis.paper1_encoders).items())
    spec = st.spec
    shown = t.assign(**{c: [_num(v, f) for v in t[c]] for c, f in _FORMATS.items()})
    return ["## Paper 1's published loss magnitudes beside the measured ones", "",
            f"Published: the last-epoch MSE and unweighted L_P of paper 1 ({PUBLISHED_SOURCE}) and Ψ at λ = "
            f"{PAPER_LAM:g} from them, Ψ = {PSI_FORMULA}. Measured: the mean last-epoch `pixel_loss` and "
            f"`perceptual_loss` of this study's finished trials of the λ = {PAPER_LAM:g} arm (else the fixed-λ arm "
            f"nearest to it, shown in `arm`), Ψ at λ = {PAPER_LAM:g} by the same formula. Ratios are measured / "
            "published; the verdict is on the worse of the two magnitudes. Paper 1's encoders are this study's "
            f"pretrainings {names} (`analysis.paper1_encoders`).", "", _data_note(spec), "", md_table(shown), ""]
