"""`study readers export`: blinded cases of a results folder for a reader study (the folder contract: `layout`).

Likert: a case is (test slice, configuration) — every chosen slice with every chosen configuration's output. 2AFC: a
case is (test slice, pair of configurations) — every pair of the chosen configurations on every chosen slice (so
`cases` slices per pair), the side (a or b) of each configuration drawn at random per case. The cases are shuffled
(seeded), their ids (`secrets.token_hex(8)`) and image names (`secrets.token_hex(16)`) are random, and nothing in
cases.json, design.json or an image's name says which configuration, trial, seed or patient a case shows; key.json
does. The folder is written beside READER_DIR and renamed into place, so an error leaves nothing half written.
"""

from __future__ import annotations

import itertools
import secrets
import sqlite3
from pathlib import Path

import numpy as np

from study.errors import StudyError
from study.readers import layout
from study.readers.choose import choose_trials, test_slices
from study.store.results import write_json

ROLES_SHOWN = ("low_dose", "full_dose")
REF_FILES = {"low_dose": "test_ld.npy", "full_dose": "test_fd.npy"}  # the reference images a case may show


def to_png8(hu: np.ndarray, win: dict) -> np.ndarray:
    """HU → the 8-bit grey levels of window `win` (center, width): round(255 · clip((HU − low) / width))."""
    from study.data.ct import window

    low = win["center"] - win["width"] / 2
    return np.round(window(hu, low, low + win["width"]) * 255).astype(np.uint8)


def _answer_count(folder: Path) -> int:
    path = folder / layout.ANSWERS
    if not path.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.Error:
        return 1  # unreadable answers are kept, never overwritten


def check_reader_dir(reader_dir: Path, overwrite: bool) -> None:
    """A new or empty folder; an existing reader folder without answers only with `overwrite`."""
    reader_dir = Path(reader_dir)
    if reader_dir.exists() and not reader_dir.is_dir():
        raise StudyError(f"{reader_dir}: exists and is not a folder")
    if not reader_dir.is_dir() or not any(reader_dir.iterdir()):
        return
    if not (reader_dir / layout.DESIGN).is_file():
        raise StudyError(f"{reader_dir}: not empty and not a reader folder; choose a new folder")
    n = _answer_count(reader_dir)
    if n:
        raise StudyError(f"{reader_dir}: a reader folder with {n} answer(s); they are never overwritten — "
                         "choose a new folder")
    if not overwrite:
        raise StudyError(f"{reader_dir}: a reader folder already (no answers yet); pass --overwrite to replace it")


def _write_image(tmp: Path, case_id: str, role: str, hu: np.ndarray, windows: list[dict]) -> dict:
    from PIL import Image

    np.save(tmp / "arrays" / f"{case_id}_{role}.npy", hu.astype(np.float32))
    out = {}
    for win in windows:
        name = f"images/{secrets.token_hex(16)}.png"
        Image.fromarray(to_png8(hu, win)).save(tmp / name, optimize=False)
        out[win["id"]] = name
    return out


def _outputs(chosen, slices: list[dict], data_path: Path, device: str) -> dict:
    """run_key → the network's output (HU) on the chosen slices, each network loaded once."""
    from study.apply.denoise import device_of, predict_hu
    from study.apply.select import load_trial_model

    dev = device_of(device)
    ld = np.load(Path(data_path) / "test_ld.npy", mmap_mode="r")
    x = np.stack([np.asarray(ld[s["index"]], np.float32) for s in slices])
    out = {}
    for choice in chosen:
        model, meta = load_trial_model(choice, dev)
        out[choice.run_key] = predict_hu(model, x, meta["hu_range"], dev)
    return out


def _plan(chosen, slices, design: str, rng) -> list[dict]:
    """The cases in canonical order: (slice number, {role: trial}), then shuffled."""
    plan = []
    for k, _ in enumerate(slices):
        if design == "likert":
            plan += [{"slice": k, "roles": {"output": c}} for c in chosen]
        else:
            for c1, c2 in itertools.combinations(chosen, 2):
                a, b = (c1, c2) if rng.random() < 0.5 else (c2, c1)
                plan.append({"slice": k, "roles": {"a": a, "b": b}})
    return [plan[i] for i in rng.permutation(len(plan))]


def _trial_key(choice) -> dict:
    return {"run_key": choice.run_key, "configuration": choice.configuration, "seed": int(choice.seed)}


def _write_cases(tmp: Path, plan, slices, outputs, refs, show, windows, design) -> tuple[list, dict]:
    cases, key = [], {}
    for item in plan:
        case_id, s = secrets.token_hex(8), slices[item["slice"]]
        images = {role: _write_image(tmp, case_id, role, outputs[c.run_key][item["slice"]], windows)
                  for role, c in item["roles"].items()}
        images.update({role: _write_image(tmp, case_id, role, refs[role][item["slice"]], windows) for role in show})
        cases.append({"case_id": case_id, "images": images})
        entry = {"image_id": s["image_id"], "patient": s["patient"], "test_set": "test"}
        if design == "likert":
            entry.update(_trial_key(item["roles"]["output"]))
        else:
            entry.update({role: _trial_key(c) for role, c in item["roles"].items()})
        key[case_id] = entry
    return cases, key


def _check_args(design: str, readers, show, chosen) -> None:
    if design not in ("likert", "2afc"):
        raise StudyError(f"--design {design!r}: choose likert or 2afc")
    names = [str(r).strip() for r in readers]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise StudyError(f"--readers {','.join(map(str, readers))!r}: give distinct, non-empty names")
    bad = [s for s in show if s not in ROLES_SHOWN]
    if bad:
        raise StudyError(f"show {bad[0]!r}: choose from {', '.join(ROLES_SHOWN)}")
    if design == "2afc" and len(chosen) < 2:
        raise StudyError("a 2afc study compares configurations: choose at least 2")


def export(results_dir, reader_dir, *, trials=None, configurations=None, top=None, metric="psnr", cases=20, seed=0,
           design="likert", readers=("reader1", "reader2", "reader3"), show=ROLES_SHOWN, overwrite=False,
           device="cpu") -> dict:
    """Write the reader folder READER_DIR for the chosen trials of RESULTS_DIR; a summary of what was written."""
    from study.apply.denoise import staged

    results_dir, reader_dir = Path(results_dir).resolve(), Path(reader_dir)
    check_reader_dir(reader_dir, overwrite)
    chosen = choose_trials(results_dir, trials=trials, configurations=configurations, top=top, metric=metric)
    _check_args(design, readers, show, chosen)
    data_path = Path(chosen[0].record["spec"]["data_path"])
    slices = test_slices(data_path, int(cases), seed)
    outputs = _outputs(chosen, slices, data_path, device)
    refs = {role: np.stack([np.load(data_path / REF_FILES[role], mmap_mode="r")[s["index"]] for s in slices])
            for role in show}
    plan = _plan(chosen, slices, design, np.random.default_rng(seed))
    with staged(reader_dir) as tmp:
        (tmp / "images").mkdir()
        (tmp / "arrays").mkdir()
        case_list, key = _write_cases(tmp, plan, slices, outputs, refs, list(show), layout.DEFAULT_WINDOWS, design)
        write_json(tmp / layout.DESIGN, {
            "version": 1, "design": design, "seed": int(seed), "results_dir": str(results_dir),
            "criteria": layout.DEFAULT_CRITERIA, "windows": layout.DEFAULT_WINDOWS, "show": list(show),
            "question_2afc": layout.QUESTION_2AFC})
        write_json(tmp / layout.CASES, case_list)
        write_json(tmp / layout.KEY, key)
        write_json(tmp / layout.READERS, {str(r).strip(): {"token": secrets.token_urlsafe(32)} for r in readers})
    return {"reader_dir": str(reader_dir), "design": design, "cases": len(case_list), "slices": len(slices),
            "readers": [str(r).strip() for r in readers],
            "trials": [{**_trial_key(c), "reason": c.reason} for c in chosen]}
