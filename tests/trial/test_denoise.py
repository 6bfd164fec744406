"""`study denoise` (issue #18 item 5): a finished trial's network applied to real DICOM files written with pydicom,
to the CT slice pydicom ships and to .npy slices; the trial chosen by run key, configuration + seed or best metric;
its weights from `model.pt` or an older folder's `checkpoint.pt`; one-line errors that leave no output behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
import torch
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from helpers import tiny_spec, write_spec
from helpers.dicom import phantom_volume, write_series, write_slice
from study.apply.select import choose, load_trial_model
from study.cli import app
from study.models import build_model
from study.spec import ModelSpec
from study.store.results import write_json, write_parquet
from study.trial.evaluate import predict
from study.trial.model_file import load_model, save_model

HU_RANGE = (-1024.0, 3072.0)
MODEL = {"name": "unet", "channels": 4, "levels": 3}


def add_trial(results: Path, key: str, configuration: str, seed: int, status="finished", weights="model", **metrics):
    """A trial folder as `study run` leaves it: result.json, and the network in model.pt (or checkpoint.pt)."""
    folder = results / "trials" / key
    torch.manual_seed(seed + 7 * len(configuration))
    state = build_model(ModelSpec(**MODEL)).state_dict()
    spec = SimpleNamespace(model=ModelSpec(**MODEL), hu_range=HU_RANGE, run_key=key, configuration=configuration,
                           seed=seed, study="denoise-test")
    if weights == "model":
        save_model(folder, spec, {"epoch": 1, "model": state})
    elif weights == "checkpoint":
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"best": {"epoch": 3, "model": state}, "epoch": 4}, folder / "checkpoint.pt")
    record = {"run_key": key, "status": status, "configuration": configuration, "seed": seed, **metrics,
              "spec": {"run_key": key, "model": MODEL, "hu_range": list(HU_RANGE), "study": "denoise-test"}}
    write_json(folder / "result.json", record)
    return folder


@pytest.fixture
def results(tmp_path) -> Path:
    """Two configurations × two seeds, and a failed trial. Mean PSNR: a 31, b 31.25 (best); RMSE: a lower."""
    out = tmp_path / "results"
    add_trial(out, "a0a0a0a0a0a0a0a0", "a · λ=0.1", 0, psnr=30.0, rmse_hu=10.0)
    add_trial(out, "a1a1a1a1a1a1a1a1", "a · λ=0.1", 1, psnr=32.0, rmse_hu=12.0)
    add_trial(out, "b0b0b0b0b0b0b0b0", "b", 0, psnr=31.5, rmse_hu=20.0)
    add_trial(out, "b1b1b1b1b1b1b1b1", "b", 1, psnr=31.0, rmse_hu=21.0)
    add_trial(out, "f0f0f0f0f0f0f0f0", "b", 2, status="failed", weights=None)
    return out


def network_hu(results: Path, key: str, hu: np.ndarray) -> np.ndarray:
    model, meta = load_model(results / "trials" / key / "model.pt")
    return predict(model, np.asarray(hu, np.float32), meta["hu_range"], "cpu")


def run(*args, ok=True):
    res = CliRunner().invoke(app, ["denoise", *map(str, args)], env={"COLUMNS": "200"})
    if ok:
        assert res.exit_code == 0, res.output
    return res


def hu_of_file(ds) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def check_derived(src: list, out: list, expected_hu: list, key: str) -> None:
    """Output datasets `out` derived from inputs `src` (same order) hold `expected_hu` in one new series."""
    assert len(out) == len(src)
    series = {str(d.SeriesInstanceUID) for d in out}
    assert len(series) == 1 and series.isdisjoint({str(d.SeriesInstanceUID) for d in src})
    sops = [str(d.SOPInstanceUID) for d in out]
    assert len(set(sops)) == len(out) and set(sops).isdisjoint({str(d.SOPInstanceUID) for d in src})
    for s, d, hu in zip(src, out, expected_hu):
        assert str(d.file_meta.MediaStorageSOPInstanceUID) == str(d.SOPInstanceUID)
        assert d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert (d.Rows, d.Columns) == (s.Rows, s.Columns)
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "PatientID",
                    "StudyInstanceUID", "Modality"):
            assert d.get(tag) == s.get(tag), tag
        assert list(d.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert list(d.ImageType[2:]) == list((s.get("ImageType") or [])[2:])
        assert key[:12] in d.SeriesDescription and len(d.SeriesDescription) <= 64 and key in d.DerivationDescription
        assert d.SourceImageSequence[0].ReferencedSOPInstanceUID == s.SOPInstanceUID
        written = hu_of_file(d)
        assert np.abs(written - hu).max() <= float(d.RescaleSlope) + 1e-3
        assert np.abs(written - hu_of_file(s)).mean() > 20  # the network changed the image


def test_the_ct_slice_pydicom_ships_is_denoised_by_run_key(results, tmp_path):
    src = tmp_path / "scan"
    src.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), src / "CT_small.dcm")
    (src / "notes.txt").write_text("not DICOM: skipped")
    res = run(results, src, "-o", tmp_path / "out", "--run-key", "a1a1a1a1")
    assert "1 slice(s)" in res.stdout and "a1a1a1a1a1a1a1a1" in res.stdout and "a · λ=0.1 · seed 1" in res.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["CT_small.dcm"]
    s, d = pydicom.dcmread(src / "CT_small.dcm"), pydicom.dcmread(tmp_path / "out" / "CT_small.dcm")
    check_derived([s], [d], network_hu(results, "a1a1a1a1a1a1a1a1", hu_of_file(s)[None]), "a1a1a1a1a1a1a1a1")
    assert d.SeriesDescription == "denoised study a1a1a1a1a1a1 a - lambda=0.1"
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left


def test_a_compressed_three_slice_series_becomes_one_new_uncompressed_series(results, tmp_path):
    vol = np.round(phantom_volume(3, size=40, seed=5))
    write_series(tmp_path / "scan", vol, slope=0.5, signed=False, compress=True)
    run(results, tmp_path / "scan", "-o", tmp_path / "out", "--configuration", "b", "--seed", "1")
    names = sorted(p.name for p in (tmp_path / "scan").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    src = [pydicom.dcmread(tmp_path / "scan" / n) for n in names]
    out = [pydicom.dcmread(tmp_path / "out" / n) for n in names]
    expected = network_hu(results, "b1b1b1b1b1b1b1b1", np.stack([hu_of_file(s) for s in src]))
    check_derived(src, out, expected, "b1b1b1b1b1b1b1b1")
    assert all(d.PixelRepresentation == 0 and d.RescaleSlope == 0.5 for d in out)


def test_npy_slices_are_denoised_by_the_best_configuration_and_seed(results, tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "npy"
    src.mkdir()
    stack, single = phantom_volume(2, size=32, seed=1), phantom_volume(1, size=32, seed=9)[0]
    np.save(src / "b_stack.npy", stack.astype(np.float64))
    np.save(src / "a_slice.npy", (single + rng.normal(0, 20, single.shape)).astype(np.float32))
    res = run(results, src, "-o", tmp_path / "out", "--best", "psnr")
    assert "run key b0b0b0b0b0b0b0b0" in res.stdout and "best mean psnr" in res.stdout
    assert "3 slice(s)" in res.stdout
    for name in ("a_slice.npy", "b_stack.npy"):
        inp, got = np.load(src / name), np.load(tmp_path / "out" / name)
        assert got.shape == inp.shape and got.dtype == np.float32
        want = network_hu(results, "b0b0b0b0b0b0b0b0", inp.reshape(-1, 32, 32)).reshape(inp.shape)
        np.testing.assert_allclose(got, want, atol=1e-2)
        assert np.abs(got - inp).mean() > 20


def test_best_follows_each_metrics_direction_and_prefers_trials_parquet(results):
    best = choose(results, best="psnr")
    assert (best.configuration, best.seed, best.run_key) == ("b", 0, "b0b0b0b0b0b0b0b0")
    best = choose(results, best="rmse_hu")  # lower is better: a (mean 11), its seed 0 (10)
    assert (best.configuration, best.seed) == ("a · λ=0.1", 0) and "lower is better" in best.reason
    rows = [json.loads((f / "result.json").read_text()) for f in sorted((results / "trials").iterdir())]
    for r in rows:
        r.pop("spec")
        r["psnr"] = 40.0 if r["run_key"] == "a0a0a0a0a0a0a0a0" else r.get("psnr")
    import pandas as pd

    write_parquet(pd.DataFrame(rows), results / "trials.parquet")
    assert choose(results, best="psnr").run_key == "a0a0a0a0a0a0a0a0"


def test_an_older_trial_folder_with_only_its_checkpoint_still_denoises(tmp_path):
    add_trial(tmp_path / "r", "c0c0c0c0c0c0c0c0", "old", 0, weights="checkpoint", psnr=30.0)
    choice = choose(tmp_path / "r", configuration="old", seed=0)
    model, meta = load_trial_model(choice)
    assert meta["epoch"] == 3 and meta["source"].endswith("checkpoint.pt") and meta["hu_range"] == list(HU_RANGE)
    hu = phantom_volume(1, size=24, seed=2)
    np.save(tmp_path / "slice.npy", hu[0])
    run(tmp_path / "r", tmp_path / "slice.npy", "-o", tmp_path / "out", "--run-key", "c0c0c0c0c0c0c0c0")
    want = predict(model, hu, HU_RANGE, "cpu")[0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "slice.npy"), want, atol=1e-2)


def _mixed(tmp: Path) -> Path:
    write_series(tmp / "mixed", phantom_volume(2, size=32), series_uid=generate_uid())
    write_slice(tmp / "mixed" / "other.dcm", phantom_volume(1, size=32)[0], z=9.0)
    return tmp / "mixed"


def _sizes(tmp: Path) -> Path:
    write_slice(tmp / "sizes" / "a.dcm", np.zeros((32, 32)), series_uid="1.2.3", z=0.0)
    write_slice(tmp / "sizes" / "b.dcm", np.zeros((32, 40)), series_uid="1.2.3", z=1.0)
    return tmp / "sizes"


def _mr(tmp: Path) -> Path:
    return write_slice(tmp / "mr" / "a.dcm", np.zeros((32, 32)), modality="MR").parent


def _tiny(tmp: Path) -> Path:
    (tmp / "tiny").mkdir()
    np.save(tmp / "tiny" / "s.npy", np.zeros((3, 3), np.float32))
    return tmp / "tiny"


def _bits32(tmp: Path) -> Path:
    """A 32-bit slice: read fine, refused only when its pixels are written back (the staging folder goes)."""
    path = write_slice(tmp / "bits32" / "a.dcm", phantom_volume(1, size=32)[0])
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.int32)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path.parent


def _good(tmp: Path) -> Path:
    return write_slice(tmp / "good" / "a.dcm", phantom_volume(1, size=32)[0]).parent


@pytest.mark.parametrize("make, choice, needle", [
    (_mixed, ["--run-key", "a0a0a0a0a0a0a0a0"], "several series"),
    (_sizes, ["--run-key", "a0a0a0a0a0a0a0a0"], "32×40"),
    (_mr, ["--run-key", "a0a0a0a0a0a0a0a0"], "'MR'"),
    (_tiny, ["--run-key", "a0a0a0a0a0a0a0a0"], "3×3"),
    (_bits32, ["--run-key", "a0a0a0a0a0a0a0a0"], "BitsAllocated 32"),
    (lambda t: (t / "empty").mkdir() or t / "empty", ["--best", "psnr"], "empty folder"),
    (_good, ["--run-key", "deadbeef"], "'deadbeef'"),
    (_good, ["--run-key", "f0f0f0f0f0f0f0f0"], "failed"),
    (_good, ["--configuration", "c", "--seed", "0"], "'c'"),
    (_good, ["--best", "sharpness"], "'sharpness'"),
])
def test_mistakes_end_in_one_line_naming_the_value_and_leave_no_output(results, tmp_path, make, choice, needle):
    src = make(tmp_path)
    res = run(results, src, "-o", tmp_path / "out", *choice, ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and len(res.stderr.strip().splitlines()) == 1
    assert needle in res.stderr, res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_an_output_folder_with_files_is_refused_unless_overwrite(results, tmp_path):
    src = _good(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    res = run(results, src, "-o", tmp_path / "out", "--best", "psnr", ok=False)
    assert res.exit_code == 2 and "out: not empty" in res.stderr and "--overwrite" in res.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    run(results, src, "-o", tmp_path / "out", "--best", "psnr", "--overwrite")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.dcm"] and not list(tmp_path.glob(".out.*"))


@pytest.mark.slow
def test_the_model_of_a_real_tiny_study_denoises_a_series(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0], "seed": [0, 1]}))
    done = subprocess.run([sys.executable, "-m", "study", "run", str(path), "--backend", "local"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    vol = np.round(phantom_volume(2, size=64, seed=40))
    write_series(tmp_path / "scan", vol)
    res = subprocess.run([sys.executable, "-m", "study", "denoise", str(tmp_path / "tiny"), str(tmp_path / "scan"),
                          "-o", str(tmp_path / "out"), "--best", "ssim", "--device", "cpu"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    choice = choose(tmp_path / "tiny", best="ssim")
    assert choice.run_key in res.stdout and "2 slice(s)" in res.stdout
    model, meta = load_trial_model(choice)
    names = sorted(p.name for p in (tmp_path / "scan").iterdir())
    src = [pydicom.dcmread(tmp_path / "scan" / n) for n in names]
    out = [pydicom.dcmread(tmp_path / "out" / n) for n in names]
    expected = predict(model, np.stack([hu_of_file(s) for s in src]).astype(np.float32), meta["hu_range"], "cpu")
    check_derived(src, out, expected, choice.run_key)
