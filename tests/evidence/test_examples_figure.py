"""The report's side-by-side example images (issue #22): one figure per example slice from the trials'
examples.npz, every shown configuration titled, the > 6 configurations rule, one seed for all, and a plain line for
results without examples."""

from __future__ import annotations

import pandas as pd

from analysis.compute import read_study
from analysis.examples_figure import INPUT, REFERENCE, examples_evidence, examples_lines, nice_ceiling
from analysis.settings import window_of

from helpers.synthetic import add_examples, results_folder

WINDOW = window_of({"metric_window": "abdomen"})


def examples_section(folder, trials, per_image, order, window, out):
    """The section as the report builds it: its evidence from the folder, then its lines and figures."""
    return examples_lines(examples_evidence(read_study(folder), order), window, out)


def _tables(folder):
    trials, per_image = pd.read_parquet(folder / "trials.parquet"), pd.read_parquet(folder / "per_image.parquet")
    order = per_image.groupby("configuration")["psnr"].mean().sort_values(ascending=False).index.tolist()
    return trials, per_image, order


def test_every_slice_gets_a_figure_with_every_configuration_titled(tmp_path, figure_titles):
    folder = results_folder(tmp_path, lams=(0.1,), n_images=10)
    add_examples(folder)
    trials, per_image, order = _tables(folder)
    assert len(order) == 5
    out = folder / "report"
    lines = examples_section(folder, trials, per_image, order, WINDOW, out)
    for iid in ("img003", "img007"):
        assert (out / "figures" / f"examples_{iid}.png").is_file()
        assert f"![example {iid}](figures/examples_{iid}.png)" in lines
        panel = figure_titles[f"examples_{iid}.png"]
        assert len(panel) == 2 + len(order)
        for name in [INPUT, REFERENCE, *order]:
            assert any(t.startswith(name) for t in panel), (name, panel)
    key = trials[(trials.configuration == order[0]) & (trials.seed == 0)].run_key.iloc[0]
    psnr = per_image[(per_image.run_key == key) & (per_image.image_id == "img003")].psnr.iloc[0]
    assert f"PSNR {psnr:.1f} dB · SSIM" in next(t for t in figure_titles["examples_img003.png"] if t.startswith(order[0]))
    assert any(t.startswith(INPUT) and "PSNR" in t for t in figure_titles["examples_img003.png"])
    text = " ".join(lines)
    assert lines[0] == "## Example images" and "seed 0 for every configuration" in text
    assert "abdomen (centre 40 HU, width 400 HU" in text and "all 5 configurations" in text
    assert "largest lesion" in text and "|x − reference|" in text


def test_more_than_six_configurations_show_the_five_best_and_pixel_only(tmp_path, figure_titles):
    folder = results_folder(tmp_path)  # 9 configurations
    add_examples(folder, image_ids=("img001",))
    trials, per_image, order = _tables(folder)
    order = [c for c in order if c != "pixel-only"] + ["pixel-only"]
    lines = examples_section(folder, trials, per_image, order, WINDOW, folder / "report")
    panel = figure_titles["examples_img001.png"]
    shown = [c for c in order if any(t.startswith(c) for t in panel)]
    assert shown == order[:5] + ["pixel-only"] and len(panel) == 8
    assert "the 5 best by mean rank of PSNR and pixel-only" in " ".join(lines)


def test_without_a_common_seed_each_configuration_uses_its_smallest(tmp_path, figure_titles):
    folder = results_folder(tmp_path, lams=(0.1,))
    trials, per_image, order = _tables(folder)
    best = trials[trials.configuration == order[0]]
    others = trials[trials.configuration != order[0]]
    skip = set(best[best.seed == 0].run_key) | set(others[others.seed == 1].run_key)  # no seed has them all
    add_examples(folder, image_ids=("img002",), skip=skip)
    text = " ".join(examples_section(folder, trials, per_image, order, WINDOW, folder / "report"))
    assert "each is shown with its smallest seed" in text and f"{order[0]}: 1" in text and f"{order[1]}: 0" in text
    assert len(figure_titles["examples_img002.png"]) == 7


def test_results_without_examples_get_one_line_and_no_figure(tmp_path, figure_titles):
    folder = results_folder(tmp_path, lams=(0.1,))
    trials, per_image, order = _tables(folder)
    lines = examples_section(folder, trials, per_image, order, WINDOW, folder / "report")
    assert [x for x in lines if x and not x.startswith("#")][0].startswith("No example images: no finished trial")
    assert not figure_titles and not (folder / "report" / "figures").exists()


def test_the_difference_scale_is_a_round_number():
    assert [nice_ceiling(v) for v in (1.0, 3.2, 21.0, 47.0, 120.0)] == [1.0, 5.0, 25.0, 50.0, 200.0]


def test_which_configurations_are_shown():
    from analysis.examples_figure import shown_configurations

    six = [f"c{i}" for i in range(5)] + ["pixel-only"]
    assert shown_configurations(six, "PSNR") == (six, "all 6 configurations, best first by mean rank of PSNR")
    nine = ["pixel-only"] + [f"c{i}" for i in range(8)]
    assert shown_configurations(nine, "PSNR") == (nine[:6], "the 6 best by mean rank of PSNR (pixel-only among them)")
    assert shown_configurations(nine[1:], "PSNR")[0] == nine[1:7]  # no baseline in the study
