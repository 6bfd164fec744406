"""Paper 1's training and test settings, usable in any study (issue #17, item 2): `training.patches: tiled` (every
tile of every slice once per epoch, a new seeded permutation each epoch), `metric_window: full` (−1024…3072 HU in
8 bits, as paper 1 measured) and NRMSE."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from helpers import tiny_spec
from study.spec import Window, parse_spec

TILED = {"patches": "tiled", "batch_size": 5, "epochs": 2}  # 4 slices × 3² tiles = 36 → 8 steps, the last of 1


# -- the tiled sampler -----------------------------------------------------------------------------------------------

def test_tile_corners_are_paper_1s():
    from study.data.cache import n_tiles, tile_corners

    assert list(tile_corners(512, 96)) == [0, 96, 192, 288, 384]  # range(0, 512 − 96, 96): 25 tiles per slice
    assert n_tiles((3, 512, 512), 96) == 75 and list(tile_corners(64, 16)) == [0, 16, 32]  # the last tile unused


def test_every_tile_of_every_slice_once_per_epoch_in_a_seeded_order():
    from study.data.cache import tile_order

    shape, size = (3, 64, 80), 16
    want = {(i, y, x) for i in range(3) for y in (0, 16, 32) for x in (0, 16, 32, 48)}
    orders = {(seed, epoch): tile_order(shape, size, seed, epoch) for seed in (0, 1) for epoch in (0, 1, 2)}
    for order in orders.values():
        visits = Counter(map(tuple, order.tolist()))
        assert set(visits) == want and set(visits.values()) == {1}
    first = orders[(0, 0)].tolist()
    assert orders[(0, 1)].tolist() != first and orders[(0, 2)].tolist() != orders[(0, 1)].tolist()  # per epoch
    assert orders[(1, 0)].tolist() != first  # per seed
    assert tile_order(shape, size, 0, 0).tolist() == first  # fixed by (seed, epoch): a resumed epoch is the same


def test_tiled_batches_cover_the_epoch_with_a_short_last_batch():
    from study.trial.batches import tiled_batches

    rng = np.random.default_rng(0)
    ld, fd = rng.normal(0, 100, (2, 48, 48)).astype(np.float32), rng.normal(0, 100, (2, 48, 48)).astype(np.float32)
    batches = list(tiled_batches(ld, fd, 3, 16, (-1024.0, 3072.0), seed=4, epoch=0))  # 2 × 2² = 8 tiles
    assert [len(x) for x, _ in batches] == [3, 3, 2]
    got = np.concatenate([x.numpy() for x, _ in batches])[:, 0]
    tiles = [(ld[i, y:y + 16, x:x + 16] + 1024) / 4096 for i in range(2) for y in (0, 16) for x in (0, 16)]
    assert sorted(t.sum() for t in got) == pytest.approx(sorted(t.sum() for t in tiles))


def test_tiled_patches_stay_out_of_default_run_keys_and_ignore_steps_per_epoch(tmp_path):
    from study.planning.plan import plan

    def keys(**training):
        raw = tiny_spec(tmp_path, factors={"lam": [0]}, training=training)
        return [t.run_key for t in plan(parse_spec(raw, check_paths=False)).trials]

    assert keys() == keys(patches="random")
    assert keys(patches="tiled") != keys()
    assert keys(patches="tiled", steps_per_epoch=3) == keys(patches="tiled", steps_per_epoch=50)


# -- a tiled trial ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    """A pixel-only trial with tiled patches, the full-range 8-bit metrics and NRMSE, its plan and prepared data."""
    from rich.console import Console

    from study.planning.plan import plan, trial_spec
    from study.running.prepare import prepare

    tmp = tmp_path_factory.mktemp("tiled")
    spec = parse_spec(tiny_spec(tmp, factors={"lam": [0]}, training=TILED, metric_window="full",
                                metrics=["psnr", "ssim", "rmse_hu", "nrmse"]))
    p = plan(spec)
    before = _dry_run(p)
    data, encoders = prepare(p, Console(quiet=True))
    return p, trial_spec(p, p.trials[0], data, encoders), before


def _dry_run(p) -> str:
    from rich.console import Console

    from study.planning.plan import print_table

    console = Console(record=True, width=200)
    print_table(p, console)
    return console.export_text()


def test_a_tiled_trial_steps_once_through_every_tile_per_epoch(tiled, tmp_path, monkeypatch):
    import study.trial.loop as loop
    from study.trial.train import run_trial

    p, ts, before = tiled
    sizes, step = [], loop.step
    monkeypatch.setattr(loop, "step", lambda t, x, y, *a, **k: (sizes.append(len(x)), step(t, x, y, *a, **k))[1])
    res = run_trial(replace(ts, out_dir=str(tmp_path / "t")))
    n_tiles = 4 * 3 * 3
    assert sizes == [5] * 7 + [1] + [5] * 7 + [1] and len(sizes) == 2 * math.ceil(n_tiles / 5)
    assert [h["epoch"] for h in res.history] == [0, 1] and all(np.isfinite(h["train_loss"]) for h in res.history)
    row = res.per_image[0]
    assert 0 < row["nrmse"] < 1 and 0 < row["input_nrmse"] and np.isfinite(res.summary["nrmse"])
    assert "8 steps per epoch (36 tiles of 16² in batches of 5, from the spec: 4 phantom slices of 64²)" in before
    assert "8 steps per epoch (36 tiles of 16² in batches of 5, from the prepared data)" in _dry_run(p)


def test_a_resumed_tiled_trial_goes_on_with_the_next_epochs_permutation(tiled, tmp_path):
    from study.trial.train import run_trial

    _, ts, _ = tiled
    whole = run_trial(replace(ts, out_dir=str(tmp_path / "a")))
    short = replace(ts, out_dir=str(tmp_path / "b"), training=ts.training.model_copy(update={"epochs": 1}))
    run_trial(short)
    resumed = run_trial(replace(short, training=ts.training))
    assert resumed.summary["resumed_from"] == 1 and [h["epoch"] for h in resumed.history] == [0, 1]
    for key in ("train_loss", "val_psnr"):
        assert resumed.history[-1][key] == pytest.approx(whole.history[-1][key], rel=1e-6)


# -- the metrics -----------------------------------------------------------------------------------------------------

def _paper1_images(hu: np.ndarray) -> np.ndarray:
    """Paper 1's test images: (HU + 1024)/4096 clipped to [0, 1], ×255, uint8, repeated to 3 channels."""
    x = np.clip((hu + 1024.0) / 4096.0, 0, 1)
    return np.repeat((x * 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_full_range_metrics_and_nrmse_equal_scikit_image_on_paper_1s_images():
    from study.metrics.registry import quality_metrics

    rng = np.random.default_rng(1)
    ref = rng.normal(40, 600, (96, 96)).clip(-1200, 3300)  # some HU outside −1024…3072: clipped
    pred = ref + rng.normal(0, 40, ref.shape)
    w = parse_spec({"name": "m", "metric_window": "full"}).window
    assert (w.bounds, w.bits) == ((-1024.0, 3072.0), 8)
    got = quality_metrics(pred, ref, *w.bounds, ("psnr", "ssim", "rmse_hu", "nrmse"), bits=w.bits)
    r, p = _paper1_images(ref), _paper1_images(pred)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(r, p), abs=1e-12)
    assert got["ssim"] == pytest.approx(structural_similarity(r, p, channel_axis=-1), abs=1e-12)
    assert got["nrmse"] == pytest.approx(normalized_root_mse(r, p), abs=1e-12)
    assert got["rmse_hu"] == pytest.approx(np.sqrt(np.mean((pred - ref) ** 2)))  # in HU, unchanged
    windowed = quality_metrics(pred, ref, -160, 240, ("nrmse",))  # a display window: float images in [0, 1]
    wr, wp = np.clip((ref + 160) / 400, 0, 1), np.clip((pred + 160) / 400, 0, 1)
    assert windowed["nrmse"] == pytest.approx(normalized_root_mse(wr, wp), abs=1e-12)


def test_nrmse_is_a_lower_is_better_unitless_metric_with_a_smallest_effect():
    from study.metrics.registry import QUALITY_METRICS
    from study.spec import METRIC_UNITS, MIN_EFFECT, MetricName

    assert "nrmse" in MetricName.__args__ and QUALITY_METRICS["nrmse"] is False
    assert METRIC_UNITS["nrmse"] == "" and 0 < MIN_EFFECT["nrmse"] < 0.01


# -- the window's name -----------------------------------------------------------------------------------------------

def test_windows_are_labelled_truthfully(tmp_path):
    from analysis.methods import window_phrase
    from analysis.settings import window_of as _window_of
    from study.planning.plan import plan

    def window(w):
        return parse_spec({"name": "w", "metric_window": w}).window

    assert window({"center": 50, "width": 350}).label == "custom (50/350)"  # no longer called "abdomen"
    assert window({"name": "liver", "center": 60, "width": 160}).label == "liver"
    assert window({"center": -600, "width": 1500}).label == "chest" and window("abdomen").label == "abdomen"
    assert window("full") == window({"name": "full"}) and window("full").label == "full range −1024…3072 HU, 8-bit"
    with pytest.raises(ValueError, match="window 'full' is −1024…3072 HU in 8 bits"):
        Window(name="full", width=400)
    text = window_phrase(_window_of({"metric_window": {"center": 50, "width": 350}}))
    assert text.startswith("custom (50/350) (centre 50 HU, width 350 HU: -125…225 HU)") and "abdomen" not in text
    assert "uint8, data range 255" in window_phrase(_window_of({"metric_window": "full"}))

    def key(w):  # a custom window keeps the run key it had when it was (wrongly) named "abdomen"
        return plan(parse_spec(tiny_spec(tmp_path, factors={"lam": [0]}, metric_window=w), check_paths=False)).trials
    assert key({"center": 50, "width": 350})[0].run_key == key({"name": "abdomen", "center": 50,
                                                                "width": 350})[0].run_key
