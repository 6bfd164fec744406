"""Fault injection (issue #21 item 3): a corrupt checkpoint is moved aside and its trial trains again from scratch."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from helpers import tiny_spec, write_spec
from study.store.events import read_events


@pytest.mark.parametrize("garbage", [b"\x00garbage, not a checkpoint" * 10, b""])
def test_a_corrupt_checkpoint_is_moved_aside_and_the_trial_restarts(tmp_path, garbage):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0]}))
    run = [sys.executable, "-m", "study", "run", str(path), "--backend", "local"]
    assert subprocess.run(run, capture_output=True, text=True, timeout=300).returncode == 0
    out = tmp_path / "tiny"
    folder = next((out / "trials").iterdir())
    (folder / "result.json").unlink()  # the trial is pending again, with a checkpoint that is garbage
    (folder / "checkpoint.pt").write_bytes(garbage)
    res = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    aside = list(folder.glob("checkpoint.pt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert "could not be read as a checkpoint" in res.stdout + res.stderr and aside[0].name in res.stdout + res.stderr
    events = [e for e in read_events(folder) if e["event"] == "checkpoint_corrupt"]
    assert len(events) == 1 and events[0]["moved_to"] == aside[0].name
    trials = pd.read_parquet(out / "trials.parquet")
    assert (trials["status"] == "finished").all()
    assert (folder / "model.pt").is_file() and not (folder / "checkpoint.pt").exists()  # retrained, then pruned
