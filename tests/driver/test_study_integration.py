"""A tiny study end to end through the real local Ray, a real sqlite MLflow store, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from study.cli import app
from study.spec import load_spec
from study.running.run import run_study

from helpers import mlflow_runs, tiny_spec, write_spec

pytestmark = pytest.mark.slow


def _mtimes(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")}


@pytest.fixture(scope="module")
def ray_study(tmp_path_factory, ray_session, vgg_weights_file):
    """6 trials (2 baselines + 1 level × 2 pretrainings × λ=0.1 × 2 seeds) run by the Ray backend."""
    tmp = tmp_path_factory.mktemp("ray_study")
    raw = tiny_spec(tmp, name="tiny-ray", backend="ray",
                    encoders={"mine": {"source": "file", "path": str(vgg_weights_file)}},
                    factors={"pretraining": ["random", "mine"], "seed": [0, 1]},
                    tracking={"enabled": True, "example_images": 1})
    path = write_spec(tmp, raw)
    run_study(load_spec(path), spec_text=path.read_text())
    return tmp, path, tmp / "tiny-ray"


def test_the_study_ran_on_a_two_node_ray_cluster(ray_study, ray_session):
    alive = [n for n in ray_session.nodes() if n["Alive"]]
    assert len(alive) == 2 and ray_session.cluster_resources()["CPU"] == 2  # head + worker, `ray start` each
    # where the trials ran: each trial's events.log names its Ray node and worker pid, never the driver's process
    _, _, out = ray_study
    starts = [json.loads(line) for log in (out / "trials").glob("*/events.log")
              for line in log.read_text().splitlines() if json.loads(line)["event"] == "start"]
    assert len(starts) == 6 and {e["node"] for e in starts} == {n["NodeID"] for n in alive}
    assert os.getpid() not in {e["pid"] for e in starts}


def test_results_folder_follows_the_contract(ray_study):
    _, _, out = ray_study
    trials = pd.read_parquet(out / "trials.parquet")
    per_image = pd.read_parquet(out / "per_image.parquet")
    assert len(trials) == 6 and set(trials["status"]) == {"finished"}
    for col in ("run_key", "feature_level", "pretraining", "lam", "seed", "psi", "psnr", "ssim", "rmse_hu", "wall_s",
                "git_commit", "data_id", "encoder_id", "encoder_sha256"):
        assert col in trials, col
    assert trials["run_key"].is_unique
    assert (trials["patches_per_s"] > 0).all()
    clock = json.loads((out / "timings.json").read_text())
    assert clock["started"] <= clock["trials_started"] < clock["trials_ended"] <= clock["ended"]
    assert (trials.loc[trials.lam == 0, "psi"] == 0).all()
    assert (trials.loc[trials.lam > 0, "psi"] > 0).all()
    assert trials.loc[trials.lam > 0, "encoder_sha256"].notna().all()
    assert not per_image.duplicated(["run_key", "image_id"]).any()
    assert (per_image["test_set"] == "test").sum() == 6 * 4
    real = per_image[per_image["test_set"] == "real"]
    assert set(real["image_id"]) == {"real-CT_small", "real-693_UNCR"} and len(real) == 6 * 2
    assert trials["real_psnr"].notna().all()
    for col in ("image_id", "patient", "psnr", "ssim", "rmse_hu", "input_psnr", "input_ssim", "input_rmse_hu"):
        assert col in per_image, col
    assert (per_image["rmse_hu"] > 0).all()
    report = out / "report"
    for name in ("report.md", "report.html", "guidelines.md", "summary.json"):
        assert (report / name).is_file(), name
    assert list((report / "figures").glob("*.png")) and list((report / "stats").glob("*.csv"))
    text = (report / "report.md").read_text()
    assert "Friedman χ²(2)" in text and "Kendall's W" in text and "Holm" in text
    assert "Extra test set: real (2 images" in text and "parallel beam" in text
    assert "data:image/png;base64" in (report / "report.html").read_text()


def test_the_report_goes_into_a_paper(ray_study, figure_titles, tmp_path):
    """Issue #22 on a real study: LaTeX tables that compile (or parse) standalone, a PDF twin of every figure, the
    example slice with every configuration titled, and the Provenance section."""
    from analysis.report import update_report
    from helpers.latex import check_table

    _, _, out = ray_study
    report = update_report(out)
    tables = sorted((report / "tables").glob("*.tex"))
    assert {"results_psnr.tex", "results_ssim.tex", "guidelines.tex", "pairwise.tex"} <= {p.name for p in tables}
    for table in tables:
        if table.name != "preview.tex":
            check_table(table, tmp_path / "tex")
    figures = report / "figures"
    pngs = sorted(figures.glob("*.png"))
    assert pngs and {p.stem for p in pngs} == {p.stem for p in figures.glob("*.pdf")}
    assert all(p.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-" for p in pngs)
    trials = pd.read_parquet(out / "trials.parquet")
    shown = [name for name in figure_titles if name.startswith("examples_")]
    assert len(shown) == 1  # tracking.example_images: 1
    titles = figure_titles[shown[0]]
    for configuration in trials["configuration"].unique():
        assert any(t.startswith(configuration) and "PSNR" in t and "dB" in t for t in titles), configuration
    text = (report / "report.md").read_text()
    assert "![example" in text and f"figures/{shown[0]}" in text
    provenance = text.split("## Provenance", 1)[1]
    commit = trials["git_commit"].iloc[0]
    assert f"`{commit}`" in provenance and f"`{trials['data_id'].iloc[0]}`" in provenance
    assert trials["encoder_sha256"].dropna().iloc[0] in provenance and "torch" in provenance
    assert "- Factors: feature level block1_conv2; pretraining mine, random; λ 0.1; plus the pixel-only baseline." \
        in text


def test_named_example_slices_are_recomputed_from_the_saved_models(ray_study):
    """`study report --example-slice`: each configuration's smallest-seed model denoises the named test slices again;
    on a slice the trial kept itself, the output is the trial's own; an unknown id is one line and changes nothing;
    a configuration's missing file is made again after a run (`refresh`)."""
    import shutil

    import numpy as np

    from study.apply.examples import refresh
    from study.trial.examples import read_npz

    _, _, out = ray_study
    trials = pd.read_parquet(out / "trials.parquet")
    first = trials.sort_values(["configuration", "seed"]).groupby("configuration").head(1)
    key = first["run_key"].iloc[0]
    own = read_npz(out / "trials" / key / "examples.npz")
    kept = own["image_ids"][0]
    other = next(i for i in pd.read_parquet(out / "per_image.parquet")["image_id"] if i != kept and
                 i.startswith("test"))
    res = CliRunner().invoke(app, ["report", str(out), "--example-slice", other, "--example-slice", kept])
    assert res.exit_code == 0, res.output
    assert sorted(p.stem for p in (out / "examples").glob("*.npz")) == sorted(first["run_key"])
    named = read_npz(out / "examples" / f"{key}.npz")
    assert named["image_ids"] == [other, kept] and named["choice"] == "named"
    assert np.abs(named["output"][1] - own["output"][0]).max() <= 1  # the same network on the same slice (int16 HU)
    assert np.abs(named["output"][0] - own["output"][0]).max() > 1  # another slice
    assert (out / "report" / "figures" / f"examples_{other}.png").is_file()
    assert "named with `study report --example-slice`" in (out / "report" / "report.md").read_text()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "examples").iterdir()}
    res = CliRunner().invoke(app, ["report", str(out), "--example-slice", "nope"])
    assert res.exit_code == 2 and "--example-slice 'nope': not a test image" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "examples").iterdir()} == before
    (out / "examples" / f"{key}.npz").unlink()
    assert refresh(out) == 1 and read_npz(out / "examples" / f"{key}.npz")["image_ids"] == [other, kept]
    shutil.rmtree(out / "examples")  # the module's study as it was, for the tests after this one


def test_mlflow_has_one_parent_and_one_finished_child_per_run_key(ray_study):
    _, _, out = ray_study
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")  # the autouse fixture clears it for later tests
    runs = mlflow.search_runs(experiment_names=["tiny-ray"])
    parents = runs[runs["tags.study.role"] == "parent"]
    children = runs[runs["tags.run_key"].notna()]
    keys = set(pd.read_parquet(out / "trials.parquet")["run_key"])
    assert len(parents) == 1 and parents["status"].iloc[0] == "FINISHED"
    assert len(children) == 6 and set(children["tags.run_key"]) == keys
    assert (children["status"] == "FINISHED").all()
    assert (children["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]).all()
    assert children["metrics.psnr"].notna().all() and children["metrics.final_psi"].notna().all()
    assert children["params.encoder_sha256"].notna().any() and children["params.git_commit"].notna().all()
    # MLflow's standard source tag carries the same commit (issue #18: it was only a param)
    commits = children["params.git_commit"].str.removesuffix("-dirty")
    assert (children["tags.mlflow.source.git.commit"] == commits).all()
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    child = children.iloc[0]["run_id"]
    assert len(client.get_metric_history(child, "pixel_loss")) == 2  # one point per epoch
    # the per-term series reach MLflow through Ray's result stream too (one point per epoch, steps 0 and 1)
    for key in children["run_id"]:
        assert [m.step for m in client.get_metric_history(key, "share_mse")] == [0, 1]
        assert [m.step for m in client.get_metric_history(key, "loss_mse")] == [0, 1]
    artifacts = {a.path for a in client.list_artifacts(child)}
    assert {"per_image.parquet", "examples.png", "history.json"} <= artifacts
    assert any(a.path == "report" for a in client.list_artifacts(parents["run_id"].iloc[0]))


def test_second_run_does_nothing_and_a_new_lambda_runs_only_its_trials(ray_study, tmp_path):
    tmp, path, out = ray_study
    before = _mtimes(out)
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert "nothing to run" in result.output
    assert _mtimes(out) == before

    raw = tiny_spec(tmp, name="tiny-ray", backend="local",
                    encoders={"mine": {"source": "file", "path": load_spec(path).encoders["mine"].path}},
                    factors={"pretraining": ["random", "mine"], "seed": [0, 1], "lam": [0, 0.1, 0.01]},
                    tracking={"enabled": True, "example_images": 1})
    more = write_spec(tmp, raw, "more.yaml")
    result = CliRunner().invoke(app, ["run", str(more)])
    assert result.exit_code == 0, result.output
    after = _mtimes(out)
    assert {k: after[k] for k in before} == before  # old trials untouched
    assert len(after) == 10  # 4 new trials: λ=0.01 × 2 pretrainings × 2 seeds
    assert len(pd.read_parquet(out / "trials.parquet")) == 10
    runs = mlflow_runs(f"sqlite:///{out / 'mlflow.db'}", "tiny-ray")
    assert runs["tags.run_key"].dropna().is_unique and runs["tags.run_key"].notna().sum() == 10


def test_status_and_report_commands(ray_study):
    _, _, out = ray_study
    runner = CliRunner()
    res = runner.invoke(app, ["status", str(out), "--json"])
    assert res.exit_code == 0, res.output
    counts = json.loads(res.output)["counts"]
    assert counts["finished"] >= 6 and counts["failed"] == 0 and counts["pending"] == 0
    (out / "report" / "report.md").unlink()
    res = runner.invoke(app, ["report", str(out), "--metric", "ssim"])
    assert res.exit_code == 0, res.output
    text = (out / "report" / "report.md").read_text()
    assert "### ssim" in text and "### psnr" not in text
    res = runner.invoke(app, ["report", str(out), "--metric", "fid"])
    assert res.exit_code == 2 and "fid" in res.output


def test_dry_run_prints_the_table_and_count(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"seed": [0, 1, 2]}))
    res = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "6 trials" in res.output and "pixel-only" in res.output
    assert not (tmp_path / "tiny").exists()  # nothing written


def test_bad_spec_is_one_line_and_exit_2(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, training={"batch_size": -3}))
    proc = subprocess.run([sys.executable, "-m", "study", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "training.batch_size" in lines[0] and "-3" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "tiny").exists()


def test_local_backend_runs_without_tracking(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    run_study(load_spec(path))
    trials = pd.read_parquet(tmp_path / "tiny" / "trials.parquet")
    assert len(trials) == 2 and set(trials.status) == {"finished"}
    assert not (tmp_path / "tiny" / "mlflow.db").exists()
    # a trial is a pure function of its spec: the same seed gives the same numbers on CPU
    again = tmp_path / "again"
    run_study(load_spec(path), output=again)
    a = pd.read_parquet(tmp_path / "tiny" / "per_image.parquet").sort_values(["run_key", "image_id"])
    b = pd.read_parquet(again / "per_image.parquet").sort_values(["run_key", "image_id"])
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_diverging_trials_are_failed_with_a_reason_and_the_study_goes_on(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, training={"lr": 1e9}))
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 1, res.output
    trials = pd.read_parquet(tmp_path / "tiny" / "trials.parquet")
    assert set(trials.status) == {"failed"}
    assert trials["error"].str.contains("Diverged: non-finite loss").all()
    text = (tmp_path / "tiny" / "report" / "report.md").read_text()
    assert "2 trial(s) not finished" in text and "non-finite loss" in text
