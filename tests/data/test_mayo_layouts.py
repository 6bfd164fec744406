"""The Mayo layouts researchers have (`data.layout`): today's per-patient folders (study), paper 1's preprocessed
arrays (authors), the AAPM download and TCIA's release (mayo-dicom), and `auto`, which says what it found."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pydantic import ValidationError

from study.data.cache import GENERATOR_VERSION, build_cache, data_id
from study.data.sources import input_fingerprint
from study.errors import StudyError
from study.spec import DataSpec
from study.spec.parts import MAYO_SPLIT
from study.store.ids import short_hash

from helpers.dicom import write_aapm_release, write_authors_tree, write_mayo_tree, write_series, write_tcia_release

SPLIT = {"train": ["L067"], "val": ["L192"], "test": ["L096"]}
PATIENTS = ["L067", "L192", "L096"]


def _spec(root, **kw) -> DataSpec:
    return DataSpec(source="mayo", root=str(root), **{"splits": SPLIT, **kw})


def _build(spec, folder):
    notes = []
    return build_cache(spec, folder, note=notes.append), notes


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def _fails(spec, folder, *needles):
    with pytest.raises(StudyError) as err:
        build_cache(spec, folder, note=lambda line: None)
    msg = _one_line(err)
    assert all(n in msg for n in needles), msg
    assert not folder.exists() or not list(folder.iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    return root, write_authors_tree(root, PATIENTS, n_slices=3, thickness=("1mm", "3mm"))


def test_authors_arrays_are_detected_split_by_patient_and_back_in_hu(tmp_path, authors):
    root, written = authors
    data, notes = _build(_spec(root), tmp_path)
    m = data.manifest()
    assert m["layout"]["name"] == "authors" and m["layout"]["detected"] and "npy_img" in m["layout"]["pattern"]
    assert len(notes) == 1 and "'authors' (detected)" in notes[0] and str(root) in notes[0]
    assert m["splits"] == {"train": 12, "val": 12, "test": 12}  # 3 slices × (1 mm, 3 mm) × (B30, D45)
    for split, pid in (("train", "L067"), ("test", "L096")):
        meta = data.meta(split)
        ld, fd = data.load(split)
        assert {r["patient"] for r in meta} == {pid}
        for r, a, b in zip(meta, ld, fd):
            th, ker = r["series"].split("-")
            quarter, full = written[pid, th, ker, int(r["image_id"].rsplit("-", 1)[1])]
            assert np.array_equal(a, quarter) and np.array_equal(b, full)  # input = quarter dose, exactly in HU
        # the kernels of one thickness and slice are one block; 1 mm and 3 mm are not merged (no positions)
        assert len({r["block"] for r in meta}) == 6
        assert {r["block"] for r in meta if r["series"] == "1mm-B30"} == {f"{pid}@1mm#{s}" for s in range(3)}
    assert data_id(_spec(root, layout="authors")) == data.data_id  # detected or named: the same data


def test_authors_default_split_unpadded_names_and_float32(tmp_path):
    root = tmp_path / "mayo-challenge"
    patients = [p for ids in MAYO_SPLIT.values() for p in ids] + ["L999"]  # a patient outside the split is left out
    written = write_authors_tree(root, patients, n_slices=2, size=16, kernels=("B30",), pad=0, dtype=np.float32)
    data, _ = _build(DataSpec(source="mayo", root=str(root), thickness=["1mm"], kernel=["B30"]), tmp_path / "c")
    for split, ids in MAYO_SPLIT.items():
        assert sorted({r["patient"] for r in data.meta(split)}) == sorted(ids)
    r, ld = data.meta("val")[1], data.load("val")[0][1]
    assert r["image_id"] == "L192-1mm-B30-0001" and np.array_equal(ld, written["L192", "1mm", "B30", 1][0])


def _drop_target(root):
    (root / "npy_img" / "1mm B30" / "L192_0001_target.npy").unlink()
    return ("L192_0001_input.npy", "no partner L192_0001_target.npy")


def _empty_folder(root):
    folder = root / "npy_img" / "1mm D45"
    for p in folder.iterdir():
        p.unlink()
    return (str(folder), "empty folder")


def _not_normalised(root):
    np.save(root / "npy_img" / "1mm B30" / "L096_0002_target.npy", np.full((32, 32), 40.0))
    return ("L096_0002_target.npy", "values up to 40")


def _missing_patient(root):
    for p in (root / "npy_img").rglob("L096_*"):
        p.unlink()
    return ("'L096'", "(test)")


@pytest.mark.parametrize("breaks", [_drop_target, _empty_folder, _not_normalised, _missing_patient],
                         ids=lambda f: f.__name__.strip("_"))
def test_authors_errors_name_the_file_or_patient(tmp_path, authors, breaks):
    root = tmp_path / "data"
    shutil.copytree(authors[0], root)
    needles = breaks(root)
    _fails(_spec(root), tmp_path / "cache", *needles)


def test_authors_folder_of_a_requested_reconstruction_missing(tmp_path, authors):
    root = tmp_path / "data"
    shutil.copytree(authors[0], root)
    shutil.rmtree(root / "npy_img" / "3mm D45")
    _fails(_spec(root, layout="authors"), tmp_path / "cache", "3mm D45", "not found")


def test_study_layout_is_detected_and_keeps_its_data_id(tmp_path):
    root = write_mayo_tree(tmp_path / "mayo", PATIENTS, n_slices=2, size=32, kernels=("B30",))
    spec = _spec(root, thickness=["1mm"], kernel=["B30"])
    before = short_hash({"data": spec.model_dump(exclude={"workers", "layout"}), "generator": GENERATOR_VERSION,
                         "inputs": input_fingerprint(spec)})  # how the id was made before data.layout existed
    assert data_id(spec) == data_id(_spec(root, thickness=["1mm"], kernel=["B30"], layout="study")) == before
    data, notes = _build(spec, tmp_path / "c")
    assert data.data_id == before and data.manifest()["splits"] == {"train": 2, "val": 2, "test": 2}
    assert data.manifest()["layout"]["name"] == "study" and "'study' (detected)" in notes[0]


@pytest.mark.parametrize("zip_folder", [False, True], ids=["flat", "zip-folders"])
def test_aapm_download_is_mayo_dicom(tmp_path, zip_folder):
    root = tmp_path / "Training_Image_Data"
    written = write_aapm_release(root, PATIENTS, n_slices=2, thickness=("1mm", "3mm"), zip_folder=zip_folder)
    data, notes = _build(_spec(root), tmp_path / "c")
    m = data.manifest()
    assert (m["layout"]["name"], m["layout"]["release"]) == ("mayo-dicom", "aapm") and "'mayo-dicom'" in notes[0]
    assert m["splits"] == {"train": 8, "val": 8, "test": 8}  # 2 slices × 2 thicknesses × 2 kernels
    meta, (ld, fd) = data.meta("test"), data.load("test")
    assert {r["patient"] for r in meta} == {"L096"} and len({r["block"] for r in meta}) == 2
    assert np.array_equal(ld[:2], written["L096"][0]) and np.array_equal(fd[:2], written["L096"][1])
    shutil.rmtree(root / "1mm D45")
    _fails(_spec(root), tmp_path / "c2", "patient L067", "quarter_1mm_sharp/L067/quarter_1mm_sharp/")
    _fails(_spec(root, kernel=["B30"], splits={**SPLIT, "test": ["L506"]}), tmp_path / "c3", "'L506'", "(test)")


@pytest.mark.parametrize("collection", [True, False], ids=["collection-folder", "patients-at-root"])
def test_tcia_release_is_mayo_dicom(tmp_path, collection):
    root = tmp_path / "manifest-1704460560034"
    written = write_tcia_release(root, PATIENTS, n_slices=3, collection=collection)
    data, notes = _build(_spec(root, layout="mayo-dicom"), tmp_path / "c")
    m = data.manifest()
    assert (m["layout"]["release"], m["layout"]["detected"]) == ("tcia", False) and "set by data.layout" in notes[0]
    assert m["splits"] == {"train": 3, "val": 3, "test": 3}  # one reconstruction per patient, as released
    ld, fd = data.load("val")
    assert np.array_equal(ld, written["L192"][0]) and np.array_equal(fd, written["L192"][1])
    assert {r["patient"] for r in data.meta("val")} == {"L192"}
    assert data_id(_spec(root)) == data.data_id  # auto finds the same layout
    base = root / "LDCT-and-Projection-data" if collection else root
    _fails(_spec(root, splits={**SPLIT, "val": ["L404"]}), tmp_path / "c2", "'L404'", "(val)")
    low = next((base / "L096").glob("*/*Low Dose Images*"))
    for p in low.iterdir():
        p.unlink()
    _fails(_spec(root), tmp_path / "c3", str(low), "empty folder")
    shutil.rmtree(low)
    _fails(_spec(root), tmp_path / "c4", "patient L096", "Low Dose Images")


def test_a_dicom_slice_without_its_partner_is_named(tmp_path):
    root = tmp_path / "tcia"
    write_tcia_release(root, PATIENTS, n_slices=2)
    low = next((root / "LDCT-and-Projection-data" / "L067").glob("*/*Low Dose Images*"))
    write_series(low, np.zeros((1, 32, 32)), z0=7.5, patient="L067", series_uid=_uid(low), seed=9)
    _fails(_spec(root), tmp_path / "c", "patient L067", "no full-dose partner")


def _uid(folder):
    from study.data.dicom import read_dataset

    return str(read_dataset(next(folder.iterdir()), pixels=False).SeriesInstanceUID)


def test_unknown_or_ambiguous_layout_is_one_line_naming_the_root(tmp_path, authors):
    root = tmp_path / "somewhere"
    (root / "notes").mkdir(parents=True)
    _fails(_spec(root), tmp_path / "c", f"data.root {root}: no Mayo layout found", "npy_img/<thickness> <kernel>",
           "Full Dose Images", "<dose>_<thickness>[_sharp]")
    _fails(_spec(tmp_path / "nowhere"), tmp_path / "c", "nowhere: not a folder")
    both = tmp_path / "both"
    shutil.copytree(authors[0], both)
    (both / "L067" / "full_1mm").mkdir(parents=True)
    _fails(_spec(both), tmp_path / "c", "several Mayo layouts", "set data.layout")
    _fails(_spec(authors[0], layout="mayo-dicom"), tmp_path / "c", "data.layout mayo-dicom", "neither")


def test_layout_is_for_mayo_only_and_unset_it_is_auto():
    assert DataSpec().layout == "auto"
    with pytest.raises(ValidationError, match="applies to source 'mayo' only"):
        DataSpec(layout="authors")
    with pytest.raises(ValidationError):
        DataSpec(source="mayo", root="x", layout="npy")


def test_tiled_steps_of_a_mayo_root_are_counted_from_its_files(tmp_path):
    """The dry run's steps per epoch of a tiled pass, before any data are prepared: files listed, one header read."""
    from study.data.cache import tiled_steps

    root = write_mayo_tree(tmp_path / "mayo", PATIENTS, n_slices=2, size=64, kernels=("B30",))
    spec = _spec(root, thickness=["1mm"], kernel=["B30"])
    train = len(spec.patient_splits()["train"])
    steps, where = tiled_steps(spec, 16, 5)
    assert f"{2 * train} training slices of 64×64" in where and steps == -(-(2 * train * 9) // 5)  # 3 × 3 tiles
    authors = tmp_path / "authors"
    write_authors_tree(authors, PATIENTS, n_slices=3, size=32, kernels=("B30",))
    steps, where = tiled_steps(_spec(authors, thickness=["1mm"], kernel=["B30"]), 16, 4)
    assert f"{3 * train} training slices of 32×32" in where and steps == -(-(3 * train * 1) // 4)  # corners 0 only
