"""Command-line papercuts (issue #18, item 6): --version, choices listed and enforced, status filtered by state,
help text, a --metric error that lists the metrics present, every spec problem at once with "did you mean"."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from helpers import tiny_spec, write_spec
from study.cli import app
from study.errors import StudyError


def test_version_and_choices():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"study {version('study')}"
    for cmd, option, choices in (("run", "--backend", "ray|local"), ("pretrain", "--method", "rotnet|supervised"),
                                 ("pretrain", "--input", "x255|unit|imagenet"), ("submit", "--mode", "ray|array"),
                                 ("status", "--state", "finished|running|failed|pending")):
        res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert option in res.output and choices in res.output, (cmd, option)
    res = CliRunner().invoke(app, ["run", "spec.yaml", "--backend", "slurm"])
    assert res.exit_code == 2 and "slurm" in res.output and "ray" in res.output
    res = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert "80% power" in res.output and "80%%" not in res.output


def test_status_lists_only_the_asked_state(tmp_path):
    from study.store.results import write_json

    out = tmp_path / "res"
    keys = ["failedkey", "pendingone", "pendingtwo"]
    write_json(out / "grid.json", [{"run_key": k, "configuration": "c", "seed": i} for i, k in enumerate(keys)])
    write_json(out / "trials" / "failedkey" / "result.json", {"run_key": "failedkey", "status": "failed",
                                                              "error": "boom", "wall_s": 1.0, "finished_at": 1.0})
    res = CliRunner().invoke(app, ["status", str(out), "--state", "pending"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "pendingone" in res.output and "pendingtwo" in res.output
    assert "failedkey" not in res.output and "boom" not in res.output
    assert "1 failed" in res.output and "2 pending" in res.output  # the counts stay the study's


def test_every_spec_problem_at_once_with_did_you_mean(tmp_path):
    from study.spec import parse_spec

    raw = tiny_spec(tmp_path, training={"epochz": 3, "lr": -1}, factors={"seed": [-1]})
    with pytest.raises(StudyError) as err:
        parse_spec(raw, "study.yaml", check_paths=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.count("field '") == 3
    assert "training.epochz" in msg and "did you mean 'epochs'?" in msg
    assert "training.lr" in msg and "factors.seed.0" in msg and "(got -1)" in msg


@pytest.mark.slow
def test_report_metric_error_lists_the_metrics_present(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0]}))
    assert CliRunner().invoke(app, ["run", str(path)]).exit_code == 0
    res = CliRunner().invoke(app, ["report", str(tmp_path / "tiny"), "--metric", "vif"])
    assert res.exit_code == 2
    present = re.search(r"it has ([a-z_, ]+)\)", res.output).group(1).split(", ")
    assert sorted(present) == ["psnr", "rmse_hu", "ssim"]
