"""Preflight and an informative dry run (issue #18, item 4): every missing input of a study is listed at once, by the
dry run and before a real run writes anything, with exit code 2; a large grid's dry run prints its trials by factor
(every row with --all) and an estimate of trial-hours and disk. No Ray: nothing here runs a trial."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import REPO, tiny_spec, write_spec
from study.cli import app
from study.planning.preflight import preflight
from study.spec import load_spec, parse_spec

IMAGENET = Path("hub") / "checkpoints" / "vgg19-dcbb9e9d.pth"
GRID = REPO / "experiments" / "perceptual_grid.yaml"


def _missing_inputs_spec(tmp_path: Path, **over) -> dict:
    """A study on a Mayo root that does not exist, a medical encoder file that does not exist, and ImageNet."""
    return tiny_spec(tmp_path, data={"source": "mayo", "root": str(tmp_path / "mayo2016")},
                     encoders={"medical": {"source": "file", "path": str(tmp_path / "w" / "medical.pth")}},
                     factors={"pretraining": ["imagenet", "medical"]}, metrics=["psnr", "ssim", "rmse_hu"], **over)


def _invoke(args: list[str], torch_home: Path):
    return CliRunner().invoke(app, args, env={"TORCH_HOME": str(torch_home), "COLUMNS": "200"})


def _problems(output: str) -> list[str]:
    """The lines under "preflight: N problem(s):"."""
    head = re.search(r"preflight: (\d+) problem\(s\):\n", output)
    assert head, output
    lines = output[head.end():].splitlines()[:int(head[1])]
    assert all(line.startswith("  - ") for line in lines), output
    return lines


def test_a_dry_run_lists_every_missing_input_and_fails(tmp_path):
    torch_home = tmp_path / "torch"  # empty: no ImageNet weights
    torch_home.mkdir()
    path = write_spec(tmp_path, _missing_inputs_spec(tmp_path))
    res = _invoke(["run", str(path), "--dry-run"], torch_home)
    assert res.exit_code == 2, res.output
    problems = _problems(res.output)
    assert len(problems) == 3, problems
    assert any(f"data.root {tmp_path / 'mayo2016'}: folder not found" in p for p in problems)
    assert any(f"encoders.medical.path {tmp_path / 'w' / 'medical.pth'}: file not found" in p for p in problems)
    assert any(f"{torch_home / IMAGENET}: file not found" in p and "download.pytorch.org" in p for p in problems)
    assert "error: preflight: 3 problem(s)" in res.output and "Traceback" not in res.output
    assert "3 trials (3 configurations × 1 seeds)" in res.output  # planned all the same
    assert not (tmp_path / "tiny").exists()  # nothing written


def test_weights_files_that_are_there_but_not_vgg19_and_a_mayo_root_without_a_layout(tmp_path, monkeypatch):
    torch_home = tmp_path / "torch"
    (torch_home / IMAGENET).parent.mkdir(parents=True)
    (torch_home / IMAGENET).write_bytes(b"not a torch file")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "medical.pth").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "mayo2016").mkdir()
    spec = parse_spec(_missing_inputs_spec(tmp_path), check_paths=False)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    problems = preflight(spec)
    assert len(problems) == 3, problems
    assert "no Mayo layout found" in problems[0] and str(tmp_path / "mayo2016") in problems[0]
    assert sum("not a readable torch state_dict" in p for p in problems) == 2


def test_an_output_folder_that_cannot_be_written(tmp_path, vgg_weights_file):
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        raw = _missing_inputs_spec(tmp_path, output=str(locked / "sub" / "out"))
        path = write_spec(tmp_path, raw)
        res = _invoke(["run", str(path), "--dry-run"], tmp_path / "torch")
        assert res.exit_code == 2, res.output
        problems = _problems(res.output)
        assert len(problems) == 4, problems
        assert any(f"output {locked / 'sub' / 'out'}: not there yet, and its nearest existing parent {locked} "
                   f"cannot be written" in p for p in problems)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_a_refused_write_is_named_with_the_folder_it_was_tried_in(tmp_path, monkeypatch):
    """What the test above checks where it cannot (as root): the write refused, here by the operating system's
    answer to an unprivileged user, stands in for it."""
    import study.planning.preflight as preflight_module

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(preflight_module.tempfile, "mkstemp", refuse)
    spec = parse_spec(tiny_spec(tmp_path, output=str(tmp_path / "a" / "b")), check_paths=False)
    assert preflight(spec) == [f"output {tmp_path / 'a' / 'b'}: not there yet, and its nearest existing parent "
                               f"{tmp_path} cannot be written (Permission denied)"]
    spec = parse_spec(tiny_spec(tmp_path, output=str(tmp_path)), check_paths=False)
    assert preflight(spec) == [f"output {tmp_path}: cannot be written (Permission denied)"]


def test_an_output_folder_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    spec = parse_spec(tiny_spec(tmp_path, output=str(tmp_path / "afile" / "out")), check_paths=False)
    assert preflight(spec) == [f"output {tmp_path / 'afile' / 'out'}: {tmp_path / 'afile'} is not a folder"]
    spec = parse_spec(tiny_spec(tmp_path, output=str(tmp_path / "new" / "deeper")), check_paths=False)
    assert preflight(spec) == [] and not (tmp_path / "new").exists()  # checked in tmp_path, nothing made


def test_a_missing_psi_pilot_folder_is_listed_and_the_dry_run_still_plans(tmp_path):
    raw = tiny_spec(tmp_path, training={"psi_calibration": "converged", "psi_pilot": str(tmp_path / "pilot")},
                    factors={"psi_target": [0.9]})
    res = _invoke(["run", str(write_spec(tmp_path, raw)), "--dry-run"], tmp_path / "torch")
    assert res.exit_code == 2, res.output
    assert _problems(res.output) == [f"  - training.psi_pilot {tmp_path / 'pilot'}: folder not found (a finished "
                                     f"results folder)"]
    assert "3 trials (3 configurations × 1 seeds)" in res.output  # the Ψ trial is planned without its λ


def _grid_dry_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    if Path("/data/mayo2016").exists():
        pytest.skip("this machine has the Mayo data the grid points at")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "study", "run", str(GRID), "--dry-run", "-o", str(tmp_path / "out"),
                           *extra], capture_output=True, text=True, timeout=300, env=env)


def test_the_perceptual_grid_dry_run_names_its_three_missing_inputs_and_summarises(tmp_path):
    res = _grid_dry_run(tmp_path)
    assert res.returncode == 2, res.stderr
    problems = _problems(res.stdout)
    assert len(problems) == 3, problems
    assert "data.root /data/mayo2016: folder not found" in problems[0]
    assert "ImageNet weights" in problems[1] and str(tmp_path / "torch" / IMAGENET) in problems[1]
    assert "encoders.medical.path" in problems[2] and "medical_vgg19.pth: file not found" in problems[2]
    out = res.stdout
    assert "2165 trials (433 configurations × 5 seeds): 0 finished, 0 running, 0 failed, 2165 pending" in out
    assert "  feature_level: block1_conv1 135 · block1_conv2 135 ·" in out and "block5_conv4 135 · none 5" in out
    assert "  pretraining: imagenet 720 · medical 720 · random 720 · none 5" in out
    assert "  psi_target: 0.95 240 · — 1,925" in out and "  seed: 0 433 · 1 433 · 2 433 · 3 433 · 4 433" in out
    assert len(out.splitlines()) < 30 and "run_key" not in out  # no row per trial
    disk = re.search(r"disk ≈ ([\d.]+) GB \(model\.pt ([\d.]+) MB per trial", out)
    assert disk and 31.0 <= float(disk[2]) <= 31.1, out  # 7.76 M float32 parameters
    examples = 2 * 3 * 2 * 512 ** 2 / 1e9  # examples.npz: 2 slices × (low, output, reference) int16
    assert 2165 * (31.0e-3 + examples) <= float(disk[1]) <= 2165 * (31.4e-3 + examples) + 0.1  # + a random encoder
    assert "trial-hours unknown" in out and "steps per epoch from the data" in out
    assert "1 problem(s)" not in res.stderr and "error: preflight: 3 problem(s)" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_large_grid_prints_every_row_with_all(tmp_path):
    lams = [round(0.001 * i, 3) for i in range(70)]
    path = write_spec(tmp_path, tiny_spec(tmp_path, name="wide", factors={"lam": lams}))
    summary = _invoke(["run", str(path), "--dry-run"], tmp_path / "torch")
    assert summary.exit_code == 0 and "70 trials, more than 60: by factor" in summary.output, summary.output
    res = _invoke(["run", str(path), "--dry-run", "--all"], tmp_path / "torch")
    rows = [line for line in res.output.splitlines() if re.match(r"│ \d+ +│", line)]
    assert res.exit_code == 0 and len(rows) == 70 and rows[-1].startswith("│ 69 "), res.output
    assert "by factor" not in res.output


def test_the_smoke_study_passes_preflight_and_its_dry_run_estimates(tmp_path):
    spec = load_spec(REPO / "experiments" / "smoke.yaml")
    assert preflight(spec, tmp_path / "out") == []  # its encoders are made by the run, not inputs
    res = _invoke(["run", str(REPO / "experiments" / "smoke.yaml"), "--dry-run", "-o", str(tmp_path / "out")],
                  tmp_path / "torch")
    assert res.exit_code == 0, res.output
    assert "preflight" not in res.output and "57 trials (19 configurations × 3 seeds)" in res.output
    assert re.search(r"estimate: 57 trials ≥ [\d.]+ trial-hours \(a lower bound\) \([\d.]+ s per trial: [\d.]+ s per step × 25 "
                     r"steps × 3 epochs, .*2-step CPU timing of the denoiser without the perceptual term",
                     res.output), res.output
    assert re.search(r"disk ≈ [\d.]+ GB \(model\.pt [\d.]+ MB per trial .*encoders the study makes 240 MB",
                     res.output), res.output
    assert not (tmp_path / "out").exists()


def _finish(out: Path, run_key: str, wall_s: float) -> None:
    folder = out / "trials" / run_key
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"run_key": run_key, "status": "finished", "wall_s": wall_s}))
    (folder / "model.pt").write_bytes(b"m" * 2_000_000)
    (folder / "checkpoint.pt").write_bytes(b"c" * 5_000_000)  # written before model files: dropped from now on
    (folder / "examples.png").write_bytes(b"e" * 1_000_000)


def test_the_estimate_uses_the_finished_trials_of_the_results_folder(tmp_path):
    from study.planning.estimate import estimate
    from study.planning.plan import plan

    raw = tiny_spec(tmp_path, factors={"seed": [0, 1, 2]})
    p = plan(parse_spec(raw, check_paths=False))
    base = [t for t in p.trials if t.is_baseline]
    perceptual = [t for t in p.trials if not t.is_baseline]
    for t, wall in ((base[0], 7200), (base[1], 7200), (perceptual[0], 1800)):
        _finish(p.out, t.run_key, wall)
    res = _invoke(["run", str(write_spec(tmp_path, raw)), "--dry-run"], tmp_path / "torch")
    assert res.exit_code == 0, res.output
    # per configuration: 7200 s for the last baseline + 2 × 1800 s (the overall median, 7200 s, would give 6 h)
    assert "estimate: 3 trials ≈ 3 trial-hours (measured on 3 finished trials" in res.output, res.output
    assert "measured on 3 finished trials: median 3 MB per trial" in res.output
    keep = parse_spec(tiny_spec(tmp_path, factors={"seed": [0, 1, 2]}, training={"keep_checkpoint": True}),
                      check_paths=False)
    assert estimate(plan(keep)).disk - estimate(p).disk == 3 * 5_000_000  # the checkpoints they keep are counted


def test_a_real_run_with_a_missing_input_stops_before_writing_anything(tmp_path):
    out = tmp_path / "tiny"
    out.mkdir()  # a results folder that exists (empty) stays empty
    path = write_spec(tmp_path, _missing_inputs_spec(tmp_path, backend="local"))
    res = _invoke(["run", str(path)], tmp_path / "torch")
    assert res.exit_code == 2, res.output
    assert len(_problems(res.output)) == 3 and "nothing was started" in res.output
    assert list(out.iterdir()) == []
