"""The report's Provenance section (issue #22): what the trials recorded, where they disagree, and a dirty checkout."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from analysis.design_section import factor_levels
from analysis.provenance import provenance, provenance_lines


def provenance_section(results_dir, trials, out):
    """The section as the report builds it: the facts of the (resolved) folder, then the lines."""
    results_dir = results_dir.resolve()
    return provenance_lines(provenance(results_dir, trials), results_dir, out)


def _trials(commits: list[str]) -> pd.DataFrame:
    n = len(commits)
    versions = [json.dumps({"torch": "2.14.1" if i else "2.13.0", "numpy": "2.4.6"}) for i in range(n)]
    return pd.DataFrame({
        "run_key": [f"k{i}" for i in range(n)], "status": "finished", "configuration": ["pixel-only"] + ["a"] * (n - 1),
        "pretraining": ["none"] + ["imagenet"] * (n - 1), "lam": [0.0] + [0.1] * (n - 1),
        "feature_level": ["none"] + ["block3_conv2"] * (n - 1),
        "git_commit": commits, "versions": versions, "finished_at": [1.8e9 + 60 * i for i in range(n)],
        "device": ["cuda:0 (NVIDIA H100)"] * n, "data_id": "d1", "data_sha256": "ab" * 32,
        "encoder_id": [None] + ["e1"] * (n - 1), "encoder_sha256": [None] + ["cd" * 32] * (n - 1)})


def test_provenance_names_commits_versions_data_encoders_and_the_spec_hash(tmp_path):
    spec = b"name: x\n"
    (tmp_path / "study.yaml").write_bytes(spec)
    (tmp_path / "identity.json").write_text(json.dumps({"study_id": "s1", "name": "x", "created": 1.8e9}))
    out = tmp_path / "report"
    out.mkdir()
    text = "\n".join(provenance_section(tmp_path, _trials(["c1", "c1", "c2-dirty"]), out))
    assert f"sha256 `{hashlib.sha256(spec).hexdigest()}`" in text and "id `s1`" in text
    assert "`c1` (2 trials), `c2-dirty` (1 trials)" in text and "**Uncommitted changes**" in text
    assert "id `d1` (sha256 `" + "ab" * 32 + "`)" in text and "| imagenet | e1 | " + "cd" * 32 + " |" in text
    assert "| torch | 2.14.1 (2 trials), 2.13.0 (1 trials) |" in text and "| numpy | 2.4.6 |" in text
    assert "cuda:0 (NVIDIA H100) (3)" in text and "2027-01-15" in text  # 1.8e9 s: the finish dates
    saved = json.loads((out / "provenance.json").read_text())
    assert saved["dirty"] is True and saved["git_commits"] == {"c1": 2, "c2-dirty": 1}


def test_a_clean_study_says_so_and_the_baseline_is_not_a_factor_level(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    trials = _trials(["c1", "c1"])
    text = "\n".join(provenance_section(tmp_path, trials, out))
    assert "Clean checkout" in text and "Uncommitted" not in text and "no `study.yaml`" in text
    levels = factor_levels(trials)
    assert levels == "feature level block3_conv2; pretraining imagenet; λ 0.1; plus the pixel-only baseline"


def test_trials_without_provenance_say_not_recorded_and_claim_nothing(tmp_path):
    """Results from a version (or a tool) that recorded no commit: no "clean checkout" claim, the folder's name."""
    out = tmp_path / "my-study" / "report"
    out.mkdir(parents=True)
    trials = pd.DataFrame({"run_key": ["k0"], "status": ["finished"], "configuration": ["a"]})
    text = "\n".join(provenance_section(tmp_path / "my-study" / ".", trials, out))
    assert "- Study: my-study;" in text and "git commit not recorded." in text
    assert "Clean checkout" not in text and "Trials finished: not recorded" in text
