"""The two layers of analysis/ (issue #28): `analyse` computes an Evidence and writes nothing; `write_report` renders
it with the same claims and numbers as the report before the split (tests/evidence/golden/, written by the code of
d95944b on the same synthetic folder); the report opens with the answer."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from analysis import analyse, write_report
from analysis.decide import FIELDS, OPEN
from helpers.synthetic import add_examples, results_folder

GOLDEN = Path(__file__).parent / "golden" / "synthetic_report.json"


def _effect(level, pre, lam):
    return (0.8 if pre == "medical" else 0.0) + (0.3 if level == "block3_conv2" else 0.0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The folder the golden file was made from: 9 configurations × 3 seeds, 36 images of 6 patients."""
    d = results_folder(tmp_path_factory.mktemp("evidence"), seeds=(0, 1, 2), n_images=36, patients=6, patient_sd=0.1,
                       net_sd=0.2, effect=_effect, spec={"data": {"source": "dicom"}})
    add_examples(d)
    return d


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(folder, tmp_path_factory):
    before = _snapshot(folder)
    evidence = analyse(folder)
    after = _snapshot(folder)
    out = write_report(evidence, tmp_path_factory.mktemp("rendered") / "report")
    return evidence, before, after, out


def test_analyse_writes_nothing(rendered):
    evidence, before, after, _ = rendered
    assert after == before and len(before) > 3  # the tables, study.yaml and every examples.npz, byte for byte
    assert evidence.claims and set(evidence.blocked) == {"psnr", "ssim", "rmse_hu"}


def test_the_rendered_report_has_the_claims_and_numbers_of_the_report_before_the_split(rendered):
    _, _, _, out = rendered
    golden = json.loads(GOLDEN.read_text())
    claims = json.loads((out / "guidelines.json").read_text())
    # issue 29 adds what more would decide each open claim (analysis.decide.FIELDS); every other field as before
    assert [{k: v for k, v in c.items() if k not in FIELDS} for c in claims] == golden["claims"]
    open_ = [c for c in claims if c["kind"] in OPEN and c["subject"] != "seeds per configuration"]
    assert open_ and all(set(FIELDS) <= set(c) for c in open_)
    assert all(not set(FIELDS) & set(c) for c in claims if c["kind"] not in OPEN)
    assert json.loads((out / "summary.json").read_text()) == golden["summary"]
    stats = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted((out / "stats").glob("*.csv"))}
    assert stats == golden["stats"]  # all 33 CSVs byte-identical


def test_the_first_screen_names_each_metrics_recommendation_with_effect_and_ci(rendered):
    evidence, _, _, out = rendered
    head = (out / "report.md").read_text().splitlines()[:30]
    assert "## Summary" in head and "## Design" not in head[:head.index("## Summary") + 1]
    for m in ("psnr", "ssim", "rmse_hu"):
        best = next(c for c in evidence.claims if c["metric"] == m and c["kind"] == "best")
        row = next(line for line in head if line.startswith(f"| {m} |"))
        assert best["subject"] in row and f"[{best['ci_low']:.3g}, {best['ci_high']:.3g}]" in row
        assert row.endswith("| 6 · 36 · 6 | patients |")
    assert any(line.startswith("- **Cost:** 0.07 trial-hours over 27 trials") for line in head)
    assert any("Undecided (psnr)" in line and "lam=0.1 vs lam=0.01" in line for line in head)


def test_the_html_has_a_table_of_contents_linking_every_section_and_figure(rendered):
    _, _, _, out = rendered
    html = (out / "report.html").read_text()
    anchors = set(re.findall(r'id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert links and set(links) <= anchors
    md = (out / "report.md").read_text()
    assert len([ln for ln in md.splitlines() if ln.startswith("## ")]) <= len(links)
    assert html.count("<img") >= 1 and "figure-" in " ".join(links)


BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "ray", "mlflow"):
            raise ImportError(f"{name} is blocked: study report and study status read tables")
sys.meta_path.insert(0, Block())
from study.cli.app import app
sys.argv = ["study", *sys.argv[1:]]
app()
"""


@pytest.mark.parametrize("command", ["report", "status"])
def test_report_and_status_run_with_torch_unimportable(tmp_path, command):
    import subprocess
    import sys

    import pandas as pd

    d = results_folder(tmp_path, lams=(0.1,), n_images=12)
    grid = pd.read_parquet(d / "trials.parquet")[["run_key", "configuration", "seed"]]
    (d / "grid.json").write_text(grid.to_json(orient="records"))  # what `study status` starts from
    run = subprocess.run([sys.executable, "-c", BLOCK_TORCH, command, str(d)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (d / "report" / "report.md").is_file() if command == "report" else "finished" in run.stdout
