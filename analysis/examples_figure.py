"""Report section "Example images" (issue #22): the same test slices, side by side, for the low-dose input, the
full-dose reference and the best configurations, from the trials' `examples.npz` (study.trial.examples).

One figure per slice (`figures/examples_<image_id>.png`): columns low-dose input, full-dose reference, then the
configurations best first; rows: the slice in the metric window with its zoom box, the box enlarged, and
|x − reference| of the images clipped to the window on one colour scale (0–V HU for every panel and slice: V the
99.5th percentile of the shown networks' errors, rounded up to 1, 2, 2.5 or 5 × 10^k; the input may saturate).
numpy/pandas/matplotlib only.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures
from analysis.load import BASELINE
from analysis.methods import window_phrase
from analysis.style import metric_name
from study.trial.examples import read_npz  # numpy only

INPUT, REFERENCE = "low-dose input", "full-dose reference"
COLUMN_IN = 1.3  # inches per image column: 8 columns make a 10.9-inch figure, titles at 6 pt
BOX = "#ffd21f"  # the zoom box and the frame of its enlargement
MAX_ALL = 6  # up to this many configurations are all shown; more: the 5 best and the pixel-only baseline
CHOICE = {"lesions": "the test slices with the most lesion pixels in the phantoms' label maps",
          "soft tissue": "the test slices whose reference has the most pixels inside the metric window (soft "
                         "tissue), spread over patients",
          "named": "the test slices named with `study report --example-slice`, recomputed from each configuration's "
                   "saved model"}
ZOOM = {"lesion": "centred on the slice's largest lesion",
        "edges": "the quarter-side square with the most gradient energy in the reference"}


def shown_configurations(order: list[str], metric: str) -> tuple[list[str], str]:
    """The configurations to show (best first) and the caption's words for why."""
    if len(order) <= MAX_ALL:
        return list(order), f"all {len(order)} configurations, best first by mean rank of {metric}"
    best = list(order[:MAX_ALL - 1])
    if BASELINE in order and BASELINE not in best:
        return best + [BASELINE], f"the {MAX_ALL - 1} best by mean rank of {metric} and {BASELINE}"
    among = f" ({BASELINE} among them)" if BASELINE in order[:MAX_ALL] else ""
    return list(order[:MAX_ALL]), f"the {MAX_ALL} best by mean rank of {metric}{among}"


def npz_path(results_dir, run_key) -> Path:
    """The trial's example slices: where slices were named with `study report --example-slice`, its file in
    RESULTS_DIR/examples/ (trials without one are left out, never mixed with other slices); else the slices the
    trial chose itself (trials/<run_key>/examples.npz)."""
    named = Path(results_dir) / "examples"
    if (named / "slices.json").is_file():
        return named / f"{run_key}.npz"
    return Path(results_dir) / "trials" / str(run_key) / "examples.npz"


def example_trials(results_dir: Path, trials: pd.DataFrame, shown: list[str]) -> tuple[dict, str]:
    """configuration → run_key of the trial shown (one seed for all where possible) and the caption's seed words."""
    done = trials[trials["status"] == "finished"]
    have = {c: {int(r.seed): r.run_key for r in done[done["configuration"] == c].sort_values("seed").itertuples()
                if npz_path(results_dir, r.run_key).is_file()} for c in shown}
    have = {c: s for c, s in have.items() if s}
    if not have:
        return {}, ""
    common = sorted(set.intersection(*(set(s) for s in have.values())))
    if common:
        return {c: s[common[0]] for c, s in have.items()}, f"seed {common[0]} for every configuration"
    first = {c: min(s) for c, s in have.items()}
    return ({c: have[c][s] for c, s in first.items()},
            "no seed has examples of every shown configuration, so each is shown with its smallest seed that has them ("
            + ", ".join(f"{c}: {s}" for c, s in first.items()) + ")")


def _fmt(v: float) -> str:
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def metric_text(row: pd.Series | None, metrics, prefix: str = "") -> str:
    """'PSNR 27.3 dB · SSIM 0.812' for one slice (`prefix` input_: the low-dose input's); '' where none is known."""
    from analysis.load import unit_suffix

    parts = []
    for m in metrics:
        v = None if row is None else row.get(prefix + m)
        if v is not None and np.isfinite(v):
            parts.append(f"{metric_name(m)} {_fmt(float(v))}{unit_suffix(m)}")
    return " · ".join(parts)


def nice_ceiling(v: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above v (v > 0)."""
    k = 10.0 ** np.floor(np.log10(v))
    return next(k * f for f in (1, 2, 2.5, 5, 10) if k * f >= v - 1e-9)


def _title(name: str, text: str) -> str:
    """The name wrapped, then the metric line (broken at ' · ' where it would be wider than the panel)."""
    metric_lines: list[str] = []
    for part in text.split(" · ") if text else []:
        if metric_lines and len(metric_lines[-1]) + 3 + len(part) <= 26:
            metric_lines[-1] += " · " + part
        else:
            metric_lines.append(part)
    return "\n".join(textwrap.wrap(name, 24) + metric_lines)


def examples_figure(images: dict[str, np.ndarray], texts: dict[str, str], zoom, window: dict, diff_max: float):
    """The figure of one slice: `images` name → HU image in column order (INPUT, REFERENCE, configurations),
    `texts` name → its metric line, `zoom` (y0, x0, size). Panel titles: the name, then the metric line."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    lo, hi = window["low"], window["high"]
    names, (y0, x0, s) = list(images), zoom
    ref = np.clip(images[REFERENCE], lo, hi)
    n = len(names)
    fig = Figure(figsize=(COLUMN_IN * n + 0.45, 3 * COLUMN_IN + 0.5))
    grid = fig.add_gridspec(3, n + 1, width_ratios=[1] * n + [0.07])
    for j, name in enumerate(names):
        top, mid, low = (fig.add_subplot(grid[r, j]) for r in range(3))
        top.imshow(images[name], cmap="gray", vmin=lo, vmax=hi)
        top.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec=BOX, lw=0.8))
        top.set_title(_title(name, texts.get(name, "")), fontsize=6)
        mid.imshow(images[name][y0:y0 + s, x0:x0 + s], cmap="gray", vmin=lo, vmax=hi)
        if name != REFERENCE:
            im = low.imshow(np.abs(np.clip(images[name], lo, hi) - ref), cmap="magma", vmin=0, vmax=diff_max)
        for ax in (top, mid, low):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(ax is mid)
                spine.set_color(BOX)
    fig.axes[1].set_ylabel("zoom", fontsize=7)
    fig.axes[2].set_ylabel("difference", fontsize=7)
    bar = fig.colorbar(im, cax=fig.add_subplot(grid[2, n]))
    bar.set_label("|x − reference| (HU)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def _rows(per_image: pd.DataFrame, keys: dict, ids: list[str]) -> dict:
    """(run_key, image_id) → that slice's row of per_image.parquet, for the shown trials and slices only."""
    if per_image is None or not len(per_image) or not {"run_key", "image_id"} <= set(per_image):
        return {}
    sub = per_image[per_image["run_key"].astype(str).isin([str(k) for k in keys.values()])
                    & per_image["image_id"].astype(str).isin(ids)]
    return {(str(r["run_key"]), str(r["image_id"])): r for _, r in sub.iterrows()}


def _load(results_dir: Path, keys: dict) -> dict:
    """configuration → its examples.npz as read_npz gives it; unreadable files are left out."""
    out = {}
    for c, key in keys.items():
        try:
            out[c] = read_npz(npz_path(results_dir, key))
        except (OSError, ValueError, KeyError):
            continue
    return out


def _diff_max(data: dict, ids: list[str], window: dict) -> float:
    """The shared scale of the difference maps (module docstring)."""
    lo, hi = window["low"], window["high"]
    errors = []
    for d in data.values():
        for iid in ids:
            k = d["image_ids"].index(iid)
            errors.append(np.abs(np.clip(d["output"][k], lo, hi) - np.clip(d["reference"][k], lo, hi)).ravel())
    top = float(np.percentile(np.concatenate(errors), 99.5)) if errors else 0.0
    return nice_ceiling(max(top, 1.0))


def _figures(ex, window: dict, out: Path) -> None:
    """Write figures/examples_<id>.png (and what analysis.figures.save adds) per slice."""
    data, keys, rows, first = ex.data, ex.keys, ex.rows, next(iter(ex.data.values()))
    for iid in ex.ids:
        k = first["image_ids"].index(iid)
        images = {INPUT: first["low"][k], REFERENCE: first["reference"][k]}
        images |= {c: d["output"][d["image_ids"].index(iid)] for c, d in data.items()}
        texts = {c: metric_text(rows.get((str(keys[c]), iid)), ex.metrics) for c in data}
        any_row = next((rows[(str(keys[c]), iid)] for c in data if (str(keys[c]), iid) in rows), None)
        texts[INPUT] = metric_text(any_row, ex.metrics, "input_")
        fig = examples_figure(images, texts, first["zoom"][k], window, ex.diff_max)
        figures.save(fig, out / "figures" / f"examples_{safe_name(iid)}.png")


def safe_name(image_id: str) -> str:
    return re.sub(r"[^\w.-]", "_", str(image_id))


NO_NPZ = ("No example images: no finished trial has `examples.npz` (results of a version before the side-by-side "
          "figure, or `tracking.example_images: 0`). New studies write it with every trial; for these results, "
          "re-run the trials to add it.")


def examples_evidence(st, order: list[str], metrics=None):
    """The example slices of the shown configurations (st: analysis.evidence.Study; `order`: configurations best
    first by mean rank of the first metric) as analysis.evidence.Examples. Never raises for missing or older
    results: `problem` says what is missing instead."""
    from analysis.evidence import Examples

    metrics = metrics or [m for m in ("psnr", "ssim") if m in st.metrics] or list(st.metrics[:2])
    trials, results_dir = st.trials, Path(st.results_dir)
    present = set(trials["configuration"]) if len(trials) else set()
    shown, why = shown_configurations([c for c in order if c in present], metric_name(metrics[0]))
    keys, seed_words = example_trials(results_dir, trials, shown)
    data = _load(results_dir, keys)
    none = Examples({}, {}, [], {}, shown, why, seed_words, metrics, 0.0, NO_NPZ)
    if not data:
        return none
    keys = {c: keys[c] for c in data}
    first = next(iter(data.values()))
    ids = [i for i in first["image_ids"] if all(i in d["image_ids"] for d in data.values())]
    if not ids:
        return replace(none, problem="No example images: the trials' `examples.npz` files share no slice.")
    return Examples(data, keys, ids, _rows(st.per_image, keys, ids), shown, why, seed_words, metrics,
                    _diff_max(data, ids, st.window))


def examples_lines(ex, window: dict, out: Path) -> list[str]:
    """Markdown lines of the "Example images" section; its figures under `out`/figures."""
    head = ["## Example images", ""]
    if ex.problem:
        return head + [ex.problem, ""]
    _figures(ex, window, Path(out))
    first, ids = next(iter(ex.data.values())), ex.ids
    left = [c for c in ex.shown if c not in ex.data]
    rules = dict.fromkeys(first["rule"][first["image_ids"].index(i)] for i in ids)
    caption = (f"The same {len(ids)} test slice(s) in every trial: {CHOICE.get(first['choice'], first['choice'])}. "
               f"Shown in the metric window {window_phrase(window)}; {ex.seed_words}; configurations: {ex.why}"
               + (f" ({', '.join(left)} left out: no trial with `examples.npz`)" if left else "") + ". "
               f"Row 1: the slice with its zoom box ({'; '.join(ZOOM.get(r, r) for r in rules)}); row 2: the box "
               f"enlarged; row 3: |x − reference| of the images clipped to the window, 0–{ex.diff_max:g} HU on every "
               "panel and slice (the 99.5th percentile of the shown networks' errors, rounded up; the low-dose input "
               f"may saturate). Titles: each panel's {', '.join(metric_name(m) for m in ex.metrics)} on "
               "that slice (the input's against the reference).")
    return head + [caption, ""] + [f"![example {i}](figures/examples_{safe_name(i)}.png)" for i in ids] + [""]
