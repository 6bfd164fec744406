"""Example slices (issue #22): chosen from the test set alone (lesions first, else soft tissue in the window, spread
over patients), a zoom box per slice, the same slices for every network, and examples.npz written atomically beside
examples.png (neither with example_images 0)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from study.data.cache import build_cache
from study.models import build_model
from study.spec import DataSpec, ModelSpec, TrainingSpec, Window
from study.trial import execute as execute_module
from study.trial.evaluate import measure_test_set
from study.trial.examples import Examples, choose, read_npz, spread_order, write_npz, zoom_box
from study.trial.spec import TrialSpec
from study.trial.train import TrialResult

BOUNDS = Window().bounds


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Eight 64² phantom test slices with label maps (1–3 lesions each), made by the study's own data code."""
    spec = DataSpec(source="phantom", size=64, n_train=1, n_val=1, n_test=8, seed=3, n_angles=48, real_slices=False,
                    workers=1)
    return build_cache(spec, tmp_path_factory.mktemp("cache"), note=None).path


def _metas(data: Path) -> list[dict]:
    import json

    return json.loads((data / "test_meta.json").read_text())


def test_the_choice_prefers_the_slices_with_most_lesion_pixels(data):
    labels = np.load(data / "test_labels.npy")
    lesion = (labels >= 2).sum(axis=(1, 2))
    c = choose(data, "test", BOUNDS, 3, _metas(data))
    assert c.choice == "lesions" and len(c.indices) == 3 and c.rule == ["lesion"] * 3
    rest = [i for i in range(len(lesion)) if i not in c.indices]
    assert min(lesion[c.indices]) >= max(lesion[rest]) and lesion[c.indices[0]] == lesion.max()
    for i, (y0, x0, size) in zip(c.indices, c.zoom):
        assert 0 <= y0 <= 64 - size and 0 <= x0 <= 64 - size and size >= 16
        assert (labels[i][y0:y0 + size, x0:x0 + size] >= 2).any()  # the zoom box holds a lesion


def test_without_label_maps_the_choice_is_soft_tissue_and_the_zoom_the_busiest_square(data, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(data, plain)
    (plain / "test_labels.npy").unlink()
    fd = np.load(plain / "test_fd.npy")
    tissue = ((fd >= BOUNDS[0]) & (fd <= BOUNDS[1])).sum(axis=(1, 2))
    c = choose(plain, "test", BOUNDS, 2, _metas(plain))
    assert c.choice == "soft tissue" and c.rule == ["edges", "edges"]
    assert min(tissue[c.indices]) >= max(np.delete(tissue, c.indices))
    flat = np.zeros((64, 64), np.float32)
    flat[40:52, 8:20] = np.random.default_rng(0).normal(0, 80, (12, 12))  # the only structure
    (y0, x0, size), rule = zoom_box(flat, None, BOUNDS)
    assert rule == "edges" and size == 16 and y0 <= 40 and y0 + size >= 52 and x0 <= 8 and x0 + size >= 20


def test_the_choice_spreads_over_patients_and_positions():
    metas = [{"patient": p, "block": f"{p}{i}"} for p, n in (("A", 30), ("B", 30)) for i in range(n)]
    score = np.zeros(60)
    score[[3, 4, 5, 40]] = [10, 9, 8, 1]  # A's three best are neighbours; B has one good slice
    assert spread_order(score, metas, 2) == [3, 40]
    assert spread_order(score, metas, 3) == [3, 40, 13]  # then A's best slice 10 or more slices from slice 3
    one = [{"patient": "A", "block": f"b{i}"} for i in range(30)]
    assert spread_order(score[:30], one, 2) == [3, 13]
    assert spread_order(score[:6], one[:6], 3) == [3, 4, 5]  # nothing far enough: best score first


def _network(seed: int):
    torch.manual_seed(seed)
    return build_model(ModelSpec(name="unet", channels=4, levels=3))


def test_two_networks_keep_the_same_slices_and_they_round_trip_through_the_npz(data, tmp_path):
    hu = (-1024.0, 3072.0)
    runs = [measure_test_set(_network(s), data, "test", hu, "cpu", Window(), 2, ["psnr"]) for s in (0, 1)]
    (rows, a), (_, b) = runs
    assert list(a.images) == list(b.images) and a.zoom == b.zoom and len(a) == 2
    assert not np.allclose(a.images[next(iter(a.images))][1], b.images[next(iter(b.images))][1])
    ids = list(a.images)
    assert ids == [rows[i]["image_id"] for i in choose(data, "test", BOUNDS, 2, _metas(data)).indices]
    write_npz(tmp_path / "examples.npz", a, Window())
    got = read_npz(tmp_path / "examples.npz")
    assert got["image_ids"] == ids and got["zoom"] == [a.zoom[i] for i in ids] and got["choice"] == "lesions"
    assert got["window"] == BOUNDS and got["window_label"] == "abdomen" and got["rule"] == ["lesion", "lesion"]
    for k, key in enumerate(("low", "output", "reference")):
        want = np.stack([a.images[i][k] for i in ids])
        assert np.abs(got[key] - want).max() <= 0.5
    with np.load(tmp_path / "examples.npz") as z:
        assert z["low"].dtype == np.int16 and z["image_ids"].dtype.kind == "U"
    assert [p.name for p in tmp_path.iterdir()] == ["examples.npz"]  # no temporary file left


def _spec(tmp_path: Path, data: Path) -> TrialSpec:
    return TrialSpec(run_key="k0", study="s", configuration="pixel-only", feature_level="none", pretraining="none",
                     lam=0.0, seed=0, model=ModelSpec(name="unet", channels=4, levels=3), training=TrainingSpec(),
                     data_path=str(data), data_id="d", window=Window(), hu_range=(-1024.0, 3072.0),
                     out_dir=str(tmp_path / "k0"))


@pytest.mark.parametrize("n", [2, 0])
def test_a_trial_writes_examples_npz_beside_the_png_and_neither_without_examples(data, tmp_path, monkeypatch, n):
    rows, ex = measure_test_set(_network(0), data, "test", (-1024.0, 3072.0), "cpu", Window(), n, ["psnr"])
    summary = {"psnr": 1.0, "best_epoch": 0}
    monkeypatch.setattr(execute_module, "run_trial", lambda spec, on_epoch: TrialResult(summary, rows, [], ex))
    record = execute_module.execute(_spec(tmp_path, data))
    out = tmp_path / "k0"
    assert record["status"] == "finished", record.get("traceback")
    assert (out / "examples.npz").is_file() == (out / "examples.png").is_file() == (n > 0)
    if n:
        assert read_npz(out / "examples.npz")["image_ids"] == list(ex.images)
    assert not list(out.glob("*.tmp")) and isinstance(TrialResult({}, [], []).examples, Examples)
