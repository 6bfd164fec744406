"""DICOM series reading, pairing, DICOM data sources and `study simulate`, on files written with pydicom."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from study.cli import app
from study.spec import DataSpec
from study.data.dicom import pair_slices, read_series
from study.data.cache import build_cache
from study.data.sources import real_slice_paths
from study.errors import StudyError

from helpers.dicom import phantom_volume, write_mayo_tree, write_series, write_slice


@pytest.fixture(scope="module")
def volume():
    return phantom_volume(4, 32)


def test_slices_are_sorted_by_position_not_by_name_or_instance(tmp_path, volume):
    write_series(tmp_path / "s", volume, z0=-20.0, thickness=2.5, patient="L001", kernel="D45", seed=3)
    vol, meta = read_series(tmp_path / "s")
    assert vol.dtype == np.float32 and vol.shape == volume.shape
    np.testing.assert_allclose(vol, np.round(volume), atol=0.5)
    assert meta.positions == [-20.0, -17.5, -15.0, -12.5] and meta.patient == "L001" and meta.kernel == "D45"
    assert meta.slice_thickness == 2.5 and meta.pixel_spacing == (0.7, 0.7) and meta.shape == (32, 32)


@pytest.mark.parametrize("slope, intercept, signed, compress", [
    (1.0, -1024.0, True, False), (0.5, -1000.0, False, False), (2.0, 0.0, True, False), (1.0, -1024.0, False, True)])
def test_rescale_signedness_and_compression(tmp_path, volume, slope, intercept, signed, compress):
    hu = np.clip(volume, -1000, 2000)
    write_series(tmp_path / "s", hu, slope=slope, intercept=intercept, signed=signed, compress=compress)
    vol, _ = read_series(tmp_path / "s")
    np.testing.assert_allclose(vol, hu, atol=slope / 2 + 1e-3)


def test_real_shipped_slices_read_as_plausible_hu(tmp_path):
    paths = real_slice_paths()
    assert {p.name for p in paths} == {"CT_small.dcm", "693_UNCR.dcm"}
    for p in paths:
        (tmp_path / p.stem).mkdir()
        shutil.copy(p, tmp_path / p.stem / p.name)
        vol, meta = read_series(tmp_path / p.stem)
        inside = vol[0][vol[0] > -1100]
        assert vol.shape[0] == 1 and -1100 < np.percentile(inside, 5) < 100 and np.percentile(inside, 99) > 100


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def _corrupt(d, volume):
    write_series(d, volume)
    (d / "IMG0001.dcm").write_bytes(b"\x00" * 200 + b"garbage")
    return "IMG0001.dcm"


def _truncated(d, volume):
    write_series(d, volume)
    data = (d / "IMG0002.dcm").read_bytes()
    (d / "IMG0002.dcm").write_bytes(data[: len(data) // 2])
    return "IMG0002.dcm"


def _modality(d, volume):
    write_slice(d / "a.dcm", volume[0], modality="MR")
    return "'MR'"


def _no_intercept(d, volume):
    write_slice(d / "a.dcm", volume[0], drop=("RescaleIntercept",))
    return "missing RescaleIntercept"


def _mixed(d, volume):
    write_slice(d / "a.dcm", volume[0], z=0)
    write_slice(d / "b.dcm", volume[1], z=1)
    return "mixed series"


def _spacing(d, volume):
    write_series(d, volume[:2], series_uid="1.2.3.4", shuffle=False)
    write_slice(d / "IMG0009.dcm", volume[2], series_uid="1.2.3.4", z=9, spacing=(0.8, 0.8))
    return "pixel spacing"


def _shape(d, volume):
    write_series(d, volume[:2], series_uid="1.2.3.5", shuffle=False)
    write_slice(d / "IMG0009.dcm", volume[2][:16], series_uid="1.2.3.5", z=9)
    return "shape"


def _empty(d, volume):
    d.mkdir()
    return "empty folder"


@pytest.mark.parametrize("make", [_corrupt, _truncated, _modality, _no_intercept, _mixed, _spacing, _shape, _empty],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_files_are_named(tmp_path, volume, make):
    folder = tmp_path / "series"
    needle = make(folder, volume)
    with pytest.raises(StudyError) as err:
        read_series(folder)
    msg = _one_line(err)
    assert needle in msg and str(folder) in msg, msg


def test_pairing_by_position_and_missing_partner(tmp_path, volume):
    write_series(tmp_path / "full", volume, patient="L1")
    write_series(tmp_path / "low", volume + 5, patient="L1")
    _, lm = read_series(tmp_path / "low")
    _, fm = read_series(tmp_path / "full")
    assert pair_slices(lm, fm) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    write_series(tmp_path / "low2", volume[:3], patient="L1", z0=0.5)
    _, lm2 = read_series(tmp_path / "low2")
    with pytest.raises(StudyError, match=r"patient L1: low-dose slice at 0\.50 mm .* no full-dose partner"):
        pair_slices(lm2, fm)


@pytest.fixture(scope="module")
def mayo_root(tmp_path_factory):
    return write_mayo_tree(tmp_path_factory.mktemp("mayo"), ["L067", "L192", "L096"])


def _mayo(root, **kw):
    return DataSpec(source="mayo", root=str(root), splits={"train": ["L067"], "val": ["L192"], "test": ["L096"]},
                    thickness=["1mm"], **kw)


def test_mayo_pairs_are_split_by_patient_and_blocks_merge_kernels(tmp_path, mayo_root):
    data = build_cache(_mayo(mayo_root), tmp_path)
    m = data.manifest()
    assert m["splits"] == {"train": 6, "val": 6, "test": 6}  # 3 slices × 2 kernels per patient
    test_meta = data.meta("test")
    assert {r["patient"] for r in test_meta} == {"L096"}
    assert len({r["block"] for r in test_meta}) == 3  # B30 and D45 of one position are one block
    ld, fd = data.load("test")
    assert ld.shape == (6, 64, 64) and (ld != fd).any()
    assert "vendor" in m["geometry"]


def test_missing_patient_is_named_and_nothing_is_cached(tmp_path, mayo_root):
    spec = DataSpec(source="mayo", root=str(mayo_root), thickness=["1mm"],
                    splits={"train": ["L067"], "val": ["L192"], "test": ["L999"]})
    with pytest.raises(StudyError) as err:
        build_cache(spec, tmp_path / "cache")
    assert "L999" in _one_line(err)
    assert not list((tmp_path / "cache").iterdir())  # no half-written data folder


def test_tcia_manifest_and_dicom_simulated(tmp_path, mayo_root):
    manifest = tmp_path / "tcia.csv"
    manifest.write_text("patient,split,full,low\n"
                        "L067,train,L067/full_1mm,L067/quarter_1mm\nL192,val,L192/full_1mm,L192/quarter_1mm\n"
                        "L096,test,L096/full_1mm_sharp,L096/quarter_1mm_sharp\n")
    data = build_cache(DataSpec(source="tcia", root=str(mayo_root), manifest=str(manifest)), tmp_path / "c1")
    assert data.manifest()["splits"] == {"train": 3, "val": 3, "test": 3}
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,split,full,low\nL067,train,L067/nowhere,L067/quarter_1mm\n")
    with pytest.raises(StudyError, match=r"bad\.csv: line 2: patient L067: folder .*nowhere not found"):
        build_cache(DataSpec(source="tcia", root=str(mayo_root), manifest=str(bad)), tmp_path / "c2")
    sim_root = tmp_path / "fulldose"
    for pid in ("A", "B", "C"):
        write_series(sim_root / pid, phantom_volume(2, 64, seed=ord(pid)), patient=pid, spacing=(0.9, 0.9))
    sim = build_cache(DataSpec(source="dicom-simulated", root=str(sim_root), dose_fraction=0.25,
                           splits={"train": ["A"], "val": ["B"], "test": ["C"]}), tmp_path / "c3")
    ld, fd = sim.load("test")
    body = fd[0] > -500
    assert ld.shape == (2, 64, 64) and np.std(ld[0][body] - fd[0][body]) > 5  # noise was inserted
    assert "simulated" in sim.manifest()["geometry"]


def test_noise_insertion_reaches_the_target_dose(tmp_path):
    """A scan at I0 plus inserted noise must look like a scan at I0 · dose (noise ∝ 1/√dose)."""
    from study.data.simulate import low_dose

    size = 128
    yy, xx = np.mgrid[:size, :size]
    disc = np.where((yy - 63.5) ** 2 + (xx - 63.5) ** 2 < (0.4 * size) ** 2, 0.0, -1000.0).astype(np.float32)
    roi = (yy - 63.5) ** 2 + (xx - 63.5) ** 2 < 25**2
    kw = dict(photons=1e5, electronic_noise=0.0, pixel_mm=350 / size)
    sd_full, sd_insert = [], []
    for s in range(3):
        full = low_dose(disc, 1.0, seed=s, **kw)
        sd_full.append(full[roi].std())
        sd_insert.append(low_dose(full, 0.25, seed=10 + s, input_photons=1e5, **kw)[roi].std())
    assert np.mean(sd_insert) / np.mean(sd_full) == pytest.approx(2.0, rel=0.15)


def test_simulate_cli_writes_pairs_with_hashes(tmp_path):
    src = tmp_path / "in"
    write_series(src / "s1", phantom_volume(2, 48), patient="X", spacing=(0.8, 0.8))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["simulate", str(src), "-o", str(out), "--dose", "0.25", "--seed", "1"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "manifest.json").read_text())
    low, full = np.load(out / "low.npy"), np.load(out / "full.npy")
    assert low.shape == full.shape == (2, 48, 48) and m["slices"] == 2 and m["dose_fraction"] == 0.25
    import hashlib

    assert m["sha256"]["low.npy"] == hashlib.sha256(low.tobytes()).hexdigest()
    res = CliRunner().invoke(app, ["simulate", str(src), "-o", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
    res = CliRunner().invoke(app, ["simulate", str(tmp_path / "empty_src"), "-o", str(tmp_path / "o2")])
    assert res.exit_code == 2 and not (tmp_path / "o2").exists()


def test_a_study_on_a_mayo_tree_runs_end_to_end(tmp_path, mayo_root):
    import pandas as pd

    from helpers import tiny_spec, write_spec

    shutil.copytree(mayo_root, tmp_path / "mayo")
    raw = tiny_spec(tmp_path, name="mayo-study",
                    data={"source": "mayo", "root": "mayo", "thickness": ["1mm"], "kernel": ["B30", "D45"],
                          "splits": {"train": ["L067"], "val": ["L192"], "test": ["L096"]}})
    raw["data"] = {k: v for k, v in raw["data"].items() if k not in ("size", "n_train", "n_val", "n_test", "n_angles")}
    path = write_spec(tmp_path, raw)  # data.root is relative to the spec file
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 0, res.output
    per_image = pd.read_parquet(tmp_path / "mayo-study" / "per_image.parquet")
    assert set(per_image["patient"]) == {"L096"} and per_image["block"].nunique() == 3
    assert len(per_image) == 2 * 6  # 2 trials × (3 positions × 2 kernels)
    assert "vendor low/full-dose reconstructions" in (tmp_path / "mayo-study" / "report" / "report.md").read_text()
    # a patient that does not exist: one line naming it, exit 2, nothing cached
    raw["data"]["splits"]["test"] = ["L404"]
    raw["name"], raw["output"] = "mayo-bad", str(tmp_path / "mayo-bad")
    bad = write_spec(tmp_path, raw, "bad.yaml")
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2 and "L404" in res.output
    data_dir = tmp_path / "mayo-bad" / "data"
    assert not data_dir.exists() or not list(data_dir.iterdir())
