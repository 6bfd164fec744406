"""Progress in a log file (issue #18, item 1): with stdout redirected (a SLURM job log, nohup, CI) every trial's
start and end is a line with counts, elapsed time and ETA, and a heartbeat line comes while trials run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import tiny_spec, write_spec

pytestmark = pytest.mark.slow


def test_a_study_logging_to_a_file_writes_a_line_per_trial_and_a_heartbeat(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0], "seed": [0, 1]},
                                          training={"epochs": 8, "steps_per_epoch": 3}))
    log = tmp_path / "job.log"
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "study", "run", str(path)], stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "STUDY_HEARTBEAT_S": "0.2"}, timeout=300)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    keys = [r["run_key"] for r in json.loads((tmp_path / "tiny" / "grid.json").read_text())]
    lines = text.splitlines()
    for key in keys:
        started = [ln for ln in lines if f"trials: started {key}" in ln]
        ended = [ln for ln in lines if f"trials: finished {key}" in ln]
        assert len(started) == 1 and len(ended) == 1, (key, text[-2000:])
    last = next(ln for ln in lines if f"trials: finished {keys[-1]}" in ln)
    assert "2 done · 0 running · 0 failed of 2" in last and "elapsed 0:00:" in last
    first_end = next(ln for ln in lines if "trials: finished" in ln)
    assert "1 done" in first_end and "ETA 0:00:" in first_end
    assert any("trials: heartbeat — " in ln for ln in lines)
