"""Example slices a user names, recomputed from the trials' saved models (`study report --example-slice ID`).

Every trial keeps the example slices it chose itself (study.trial.examples). To show others in the report's
side-by-side figure — the lesion a radiologist points at, a slice of a given patient — name their image ids: the
model of each configuration the figure shows (all up to 6, else the 5 best and pixel-only; its smallest seed that
kept one) denoises those test slices again, and the results go to
`RESULTS_DIR/examples/<run_key>.npz` (the figure prefers them to the trials' own) with `examples/slices.json` (the
ids asked for). `study run` brings the folder up to date for trials added later. The folder is built aside and
swapped in, so a failure leaves the previous one as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from study.apply.select import row_choice, finished, listing, load_trial_model, trials_table
from study.errors import StudyError
from study.store.locks import file_lock
from study.store.results import replaced_folder
from study.spec import Window
from study.trial.examples import Examples, write_npz, zoom_box

FOLDER, SLICES = "examples", "slices.json"


def _data_folder(results_dir: Path, record: dict) -> Path:
    """The prepared data of the study: `RESULTS_DIR/data/data-<id>` (the folder moves with the results), else the
    path the trial ran with."""
    spec = record.get("spec") or {}
    for folder in (results_dir / "data" / f"data-{record.get('data_id')}", Path(str(spec.get("data_path", "")))):
        if (folder / "test_fd.npy").is_file():
            return folder
    raise StudyError(f"{results_dir / 'data'}: the study's prepared test data (test_fd.npy) are not there; "
                     f"`study run` prepares them again")


def _indices(data: Path, image_ids: list[str]) -> list[int]:
    """Test-set positions of the named image ids; an unknown id is a one-line StudyError listing the ids there are."""
    meta = data / "test_meta.json"
    n = len(np.load(data / "test_fd.npy", mmap_mode="r"))
    ids = [m["image_id"] for m in json.loads(meta.read_text())] if meta.is_file() else [f"test-{i:04d}" for i in range(n)]
    unknown = [i for i in image_ids if i not in ids]
    if unknown:
        raise StudyError(f"--example-slice {unknown[0]!r}: not a test image of {data} (test images: {listing(ids)})")
    return [ids.index(i) for i in image_ids]


def shown(results_dir: Path, done) -> set[str]:
    """The configurations the report's example figure shows: ranked as the report ranks them (mean rank over the
    test images of its first metric), then `analysis.examples_figure.shown_configurations`."""
    from analysis.examples_figure import shown_configurations
    from analysis.load import HIGHER_IS_BETTER, block_scores, load_results, split_test_sets
    from analysis.omnibus import mean_ranks

    per_image, _ = split_test_sets(load_results(results_dir)[1])
    metric = next((m for m in HIGHER_IS_BETTER if m in per_image and per_image[m].notna().any()), None)
    if metric is None:
        return set(done["configuration"])
    scores, _ = block_scores(per_image, metric)
    order = list(mean_ranks(scores, HIGHER_IS_BETTER[metric]).index)
    return set(shown_configurations(order, metric)[0]) | (set(done["configuration"]) - set(order))


def _models(results_dir: Path, done) -> list:
    """Per configuration the figure shows, the finished trial of its smallest seed that kept its weights (model.pt
    or checkpoint.pt)."""
    chosen = []
    done = done[done["configuration"].isin(shown(results_dir, done))]
    for configuration, rows in done.sort_values("seed").groupby("configuration", sort=True):
        for _, row in rows.iterrows():
            folder = results_dir / "trials" / str(row["run_key"])
            if (folder / "model.pt").is_file() or (folder / "checkpoint.pt").is_file():
                chosen.append(row_choice(results_dir, row, f"configuration {configuration!r}"))
                break
    if not chosen:
        raise StudyError(f"{results_dir}: no finished trial kept its weights (model.pt): nothing to recompute")
    return chosen


def _write(stage: Path, choice, data: Path, idx: list[int], ids: list[str], device) -> None:
    from study.trial.evaluate import predict

    window = Window.model_validate(choice.record["spec"]["window"])
    ld, fd = np.load(data / "test_ld.npy", mmap_mode="r"), np.load(data / "test_fd.npy", mmap_mode="r")
    labels_path = data / "test_labels.npy"
    labels = np.load(labels_path, mmap_mode="r") if labels_path.is_file() else None
    model, meta = load_trial_model(choice, device)
    low, ref = np.asarray(ld[idx], np.float32), np.asarray(fd[idx], np.float32)
    out = predict(model, low, tuple(meta["hu_range"]), device)
    boxes = [zoom_box(r, None if labels is None else np.asarray(labels[k]), window.bounds) for r, k in zip(ref, idx)]
    ex = Examples(images={i: (lo, o, r) for i, lo, o, r in zip(ids, low, out, ref)},
                  zoom={i: b for i, (b, _) in zip(ids, boxes)}, rule={i: r for i, (_, r) in zip(ids, boxes)},
                  choice="named")
    write_npz(stage / f"{choice.run_key}.npz", ex, window)


def named_examples(results_dir: Path, image_ids: list[str], device: str = "auto", only_missing: bool = False) -> int:
    """Write `examples/<run_key>.npz` for `image_ids` from each configuration's model; returns how many were written.
    `only_missing`: keep the files there are and add those of configurations without one (after `study run`)."""
    from study.apply.denoise import device_of

    results_dir, ids = Path(results_dir), list(dict.fromkeys(image_ids))
    chosen = _models(results_dir, finished(trials_table(results_dir), results_dir))
    data = _data_folder(results_dir, chosen[0].record)
    idx = _indices(data, ids)
    final = results_dir / FOLDER
    with file_lock(results_dir / ".examples.lock"), replaced_folder(final) as stage:
        if only_missing and final.is_dir():
            shutil.copytree(final, stage, dirs_exist_ok=True)
        todo = [c for c in chosen if not (stage / f"{c.run_key}.npz").is_file()]
        for choice in todo:
            _write(stage, choice, data, idx, ids, device_of(device))
        (stage / SLICES).write_text(json.dumps({"image_ids": ids}))
    return len(todo)


def refresh(results_dir: Path, console=None) -> int:
    """After `study run`: the named slices (examples/slices.json) for configurations added since; 0 where none.
    A failure is reported on `console` and leaves the folder as it was: it never fails the study."""
    path = Path(results_dir) / FOLDER / SLICES
    if not path.is_file():
        return 0
    try:
        return named_examples(results_dir, json.loads(path.read_text())["image_ids"], only_missing=True)
    except (StudyError, OSError, ValueError, KeyError) as err:
        if console is not None:
            console.print(f"example slices not brought up to date: {err}")
        return 0
