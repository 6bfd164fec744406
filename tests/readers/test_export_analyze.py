"""`study readers export | analyze` (issue #20): blinded cases of a tiny real study, the analysis on simulated
readers, and the agreement statistics against published examples."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import tiny_spec, write_spec
from study.errors import StudyError
from study.readers import layout
from analysis.compute import reader_results
from analysis.readers import analyze, reader_lines


def reader_section_lines(results_dir, out=None):
    return reader_lines(reader_results(results_dir), out)
from study.readers.export import export
from analysis.readers_stats import alpha, icc
from study.store.results import write_json


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("study")
    spec = tiny_spec(tmp, data={"n_test": 6}, metrics=["psnr", "ssim", "rmse_hu"])
    proc = subprocess.run([sys.executable, "-m", "study", "run", str(write_spec(tmp, spec))], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp / "tiny"


@pytest.fixture(scope="module")
def likert(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rd") / "likert"
    summary = export(results, out, cases=6, seed=1)
    assert summary["cases"] == 12 and summary["slices"] == 6 and len(summary["trials"]) == 2
    return out


def _trials(results: Path) -> pd.DataFrame:
    return pd.read_parquet(results / "trials.parquet")


def test_blinded(likert, results):
    cases, key = layout.read_json(likert, layout.CASES), layout.read_json(likert, layout.KEY)
    shown = (likert / layout.CASES).read_text() + (likert / layout.DESIGN).read_text()
    names = " ".join(p.name for p in (likert / "images").iterdir())
    secrets_ = set(_trials(results)["run_key"]) | set(_trials(results)["configuration"])
    secrets_ |= {v["patient"] for v in key.values()} | {v["image_id"] for v in key.values()}
    for s in secrets_:
        assert s not in shown and s not in names, s
    assert set(key) == {c["case_id"] for c in cases} and len(cases) == 12
    slices = {}
    for v in key.values():
        slices.setdefault(v["configuration"], set()).add(v["image_id"])
    assert len(slices) == 2 and len({frozenset(s) for s in slices.values()}) == 1
    assert all(len(s) == 6 for s in slices.values())
    tokens = [r["token"] for r in layout.read_json(likert, layout.READERS).values()]
    assert len(tokens) == 3 and len(set(tokens)) == 3 and all(len(t) == 43 for t in tokens)


def test_pngs_are_windowed_arrays(likert, results):
    design, cases = layout.read_json(likert, layout.DESIGN), layout.read_json(likert, layout.CASES)
    key = layout.read_json(likert, layout.KEY)
    data = Path(json.loads((results / "trials" / key[cases[0]["case_id"]]["run_key"] / "result.json").read_text())
                ["spec"]["data_path"])
    ids = [m["image_id"] for m in json.loads((data / "test_meta.json").read_text())]
    ld = np.load(data / "test_ld.npy")
    for case in cases[:3]:
        assert set(case["images"]) == {"output", "low_dose", "full_dose"}
        low = np.load(likert / "arrays" / f"{case['case_id']}_low_dose.npy")
        np.testing.assert_array_equal(low, ld[ids.index(key[case["case_id"]]["image_id"])].astype(np.float32))
        for role, by_window in case["images"].items():
            hu = np.load(likert / "arrays" / f"{case['case_id']}_{role}.npy")
            for win in design["windows"]:
                img = Image.open(likert / by_window[win["id"]])
                assert img.mode == "L"
                lo = win["center"] - win["width"] / 2
                want = np.round(np.clip((hu.astype(np.float64) - lo) / win["width"], 0, 1) * 255)
                np.testing.assert_array_equal(np.asarray(img), want.astype(np.uint8))


def test_2afc_and_refusals(results, likert, tmp_path):
    out = tmp_path / "afc"
    res = export(results, out, cases=3, design="2afc", readers=["ann", "bob"])
    key, cases = layout.read_json(out, layout.KEY), layout.read_json(out, layout.CASES)
    assert res["cases"] == 3 and set(cases[0]["images"]) == {"a", "b", "low_dose", "full_dose"}
    assert all(v["a"]["configuration"] != v["b"]["configuration"] for v in key.values())
    with pytest.raises(StudyError, match="--overwrite"):
        export(results, out, cases=3)
    export(results, out, cases=2, overwrite=True)  # a reader folder without answers may be replaced
    assert len(layout.read_json(out, layout.CASES)) == 4
    _answers(out, [("r", layout.read_json(out, layout.CASES)[0]["case_id"], "overall", 3)])
    with pytest.raises(StudyError, match="answer"):
        export(results, out, cases=2, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(StudyError, match="not a reader folder"):
        export(results, tmp_path / "other", cases=2, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left


def _answers(folder: Path, rows) -> None:
    con = sqlite3.connect(folder / layout.ANSWERS)
    con.execute("CREATE TABLE IF NOT EXISTS answers(reader TEXT, case_id TEXT, criterion TEXT, value INTEGER, "
                "answered_at REAL, PRIMARY KEY (reader, case_id, criterion))")
    con.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, 0.0)", rows)
    con.commit()
    con.close()


def _simulated(tmp: Path, metric: str, higher: bool) -> Path:
    """A synthetic results folder (per_image.parquet only) and reader folder: 3 configurations × 20 images, three
    readers whose overall score follows `metric` (z-scored, with noise)."""
    rng = np.random.default_rng(0)
    rows = [{"run_key": f"k{c}", "configuration": f"conf{c}", "seed": 0, "image_id": f"img{i}", "patient": f"p{i % 4}",
             "test_set": "test", "psnr": rng.normal(30, 2), "ssim": rng.uniform(0.6, 0.9),
             "rmse_hu": rng.uniform(10, 30)}
            for c in range(3) for i in range(20)]
    per_image = pd.DataFrame(rows)
    (tmp / "res").mkdir()
    per_image.to_parquet(tmp / "res" / "per_image.parquet")
    folder = tmp / "rd"
    folder.mkdir()
    write_json(folder / layout.DESIGN, {"version": 1, "design": "likert", "seed": 0,
                                               "results_dir": str(tmp / "res"),
                                               "criteria": [c for c in layout.DEFAULT_CRITERIA if c["id"] == "overall"],
                                               "windows": layout.DEFAULT_WINDOWS, "show": []})
    key = {f"case{n}": {"image_id": r["image_id"], "patient": r["patient"], "test_set": "test", "run_key": r["run_key"],
                        "configuration": r["configuration"], "seed": 0} for n, r in enumerate(rows)}
    write_json(folder / layout.KEY, key)
    write_json(folder / layout.CASES, [{"case_id": c, "images": {}} for c in key])
    z = (per_image[metric] - per_image[metric].mean()) / per_image[metric].std() * (1 if higher else -1)
    _answers(folder, [(f"r{j}", f"case{n}", "overall", int(np.clip(np.round(3 + 2 * z[n] + rng.normal(0, 0.5)), 1, 5)))
                      for j in range(3) for n in range(len(rows))])
    return folder


@pytest.mark.parametrize("metric,higher", [("ssim", True), ("rmse_hu", False)])
def test_analysis_finds_the_readers_metric(tmp_path, metric, higher):
    folder = _simulated(tmp_path, metric, higher)
    res = analyze(folder)
    m = res["metrics"]
    image = m[(m["level"] == "image") & (m["criterion"] == "overall")].sort_values("value", ascending=False)
    assert image.iloc[0]["metric"] == metric and image.iloc[0]["value"] > 0.5 and image.iloc[0]["ci_low"] > 0.3
    agree = res["agreement"].set_index("criterion").loc["overall"]
    assert agree["ICC2"] > 0.6 and agree["alpha_ordinal"] > 0.6
    assert set(res["configurations"]["configuration"]) == {"conf0", "conf1", "conf2"}
    for name in ("reader_study.md", "agreement.csv", "configurations.csv", "metric_agreement.csv"):
        assert (folder / "analysis" / name).is_file()


def test_report_section(tmp_path):
    assert reader_section_lines(tmp_path) == []
    folder = _simulated(tmp_path, "ssim", True)
    folder.rename(tmp_path / "readers")
    lines = reader_section_lines(tmp_path, tmp_path / "report")
    assert lines[0] == "## Readers" and any("ssim" in line for line in lines)
    table = tmp_path / "report" / "tables" / "readers.tex"  # the paper's table of the same analysis
    text = table.read_text()
    metric_rows = [r for r in text.splitlines() if r.startswith("metric: ")]
    assert metric_rows and metric_rows[0].startswith("metric: SSIM &") and "agreement: overall &" in text
    pytest.importorskip("pylatexenc")
    from helpers.latex import check_table

    check_table(table, tmp_path / "tex")


def test_agreement_on_published_examples():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers × 12 units, NaN = missing
    n = np.nan
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    assert alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert alpha(data, "ordinal") == pytest.approx(0.815, abs=5e-4)
    # Shrout & Fleiss (1979), Table 2: 6 targets × 4 judges
    sf = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    long = pd.DataFrame([(t, j, sf[t, j]) for t in range(6) for j in range(4)], columns=["target", "rater", "rating"])
    res = icc(long)
    assert res["ICC2"][0] == pytest.approx(0.29, abs=5e-3) and res["ICC3"][0] == pytest.approx(0.71, abs=5e-3)
    assert res["ICC1"][0] == pytest.approx(0.17, abs=5e-3)


def test_cli(results, tmp_path):
    from typer.testing import CliRunner

    from study.cli import app

    out = tmp_path / "cli"
    run = CliRunner().invoke(app, ["readers", "export", str(results), "-o", str(out), "--cases", "2",
                                   "--top", "1", "--metric", "ssim", "--readers", "ann,bob"])
    assert run.exit_code == 0, run.output
    assert "2 likert case(s)" in run.output and len(layout.read_json(out, layout.READERS)) == 2
    run = CliRunner().invoke(app, ["readers", "analyze", str(out)])
    assert run.exit_code == 2 and "no answers" in run.output
