"""`study submit` rendering: scripts parse, user values are validated or quoted, dry runs write nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from study.backends import slurm
from study.cli import app
from study.spec import load_spec
from study.errors import StudyError
from study.running.submit import submit_study, with_overrides

from helpers import tiny_spec, write_spec


def _spec(tmp_path, **slurm_fields):
    raw = tiny_spec(tmp_path, slurm={"time": "01:00:00", **slurm_fields})
    return load_spec(write_spec(tmp_path, raw))


@pytest.mark.parametrize("mode", ["ray", "array"])
def test_rendered_scripts_parse_and_carry_the_options(tmp_path, mode):
    spec = _spec(tmp_path, mode=mode, partition="gpu", account="proj-42", qos="normal", constraint="a100&ib",
                 mem="64G", nodes=2, gpus_per_node=4, throttle=3, extra=["--mail-type=END"],
                 setup=["module load cuda/12.4"])
    jobs, out = submit_study(spec, dry_run=True)
    assert [j.name for j in jobs] == (["ray"] if mode == "ray" else ["array", "finalize"])
    for job in jobs:
        assert subprocess.run(["bash", "-n"], input=job.script, text=True).returncode == 0
        lines = job.script.splitlines()
        assert lines[0] == "#!/bin/bash" and "#SBATCH --partition=gpu" in lines and "#SBATCH --mail-type=END" in lines
        assert "module load cuda/12.4" in lines
        # every #SBATCH line comes before the first command (sbatch stops reading them there)
        first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
        assert all(i < first_cmd for i, ln in enumerate(lines) if ln.startswith("#SBATCH"))
    main = jobs[0].script
    assert "#SBATCH --requeue" in main and "#SBATCH --signal=B:USR1@300" in main and "trap requeue USR1" in main
    if mode == "ray":
        assert "#SBATCH --nodes=2" in main and "#SBATCH --gpus-per-node=4" in main
        assert "RAY_AUTH_MODE=token" in main and "SLURM_JOB_ID % 400" in main and "--num-gpus=" in main
    else:
        assert "#SBATCH --array=0-1%3" in main  # 2 pending trials, at most 3 at once
        assert "--report-only" in jobs[1].script
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.parametrize("field,value", [
    ("partition", "gpu; rm -rf ~"), ("partition", "gpu\n#SBATCH --wrap=x"), ("account", "a'b"),
    ("time", "$(reboot)"), ("mem", "64 G"), ("constraint", "a100 && `id`"), ("extra", ["--wrap=$(id)"]),
    ("extra", ["--comment=a b"]), ("setup", ["module load x\nid"]), ("python", "/usr/bin/python\n$(id)"),
])
def test_hostile_values_are_rejected_with_one_line(tmp_path, field, value):
    path = write_spec(tmp_path, tiny_spec(tmp_path, slurm={field: value}))
    with pytest.raises(StudyError) as err:
        load_spec(path)
    msg = str(err.value)
    assert "\n" not in msg and f"slurm.{field}" in msg and str(path) in msg


def test_hostile_study_names_are_rejected(tmp_path):
    for name in ("x$(id)", "a'b", "a b", "a\nb"):
        path = write_spec(tmp_path, tiny_spec(tmp_path, name=name))
        with pytest.raises(StudyError, match="field 'name'"):
            load_spec(path)


def test_hostile_paths_are_quoted_so_the_shell_sees_them_verbatim(tmp_path):
    evil = tmp_path / "it's $(touch PWNED) `touch PWNED2`; x"
    evil.mkdir()
    spec = _spec(evil, mode="array")
    jobs, out = submit_study(spec, output=evil / "out dir", dry_run=True)
    script = jobs[0].script
    assignments = "\n".join(ln for ln in script.splitlines() if ln.split("=", 1)[0] in ("py", "spec", "out", "keys"))
    probe = subprocess.run(["bash", "-c", assignments + '\nprintf "%s\\n" "$out" "$spec"'], cwd=tmp_path,
                           capture_output=True, text=True)
    assert probe.returncode == 0
    got_out, got_spec = probe.stdout.splitlines()
    assert got_out == str((evil / "out dir").resolve()) and got_spec.startswith(str(evil.resolve()))
    assert not list(tmp_path.rglob("PWNED*"))
    with pytest.raises(StudyError, match="newline"):
        slurm.quote_path(tmp_path / "a\nb", "results folder")


def test_flags_override_the_spec_and_are_validated(tmp_path):
    spec = _spec(tmp_path, partition="cpu")
    assert with_overrides(spec, {"partition": "gpu", "nodes": 3}).slurm.partition == "gpu"
    assert with_overrides(spec, {"extra": ["--exclusive"]}).slurm.extra == ["--exclusive"]
    with pytest.raises(StudyError, match=r"slurm\.time"):
        with_overrides(spec, {"time": "tomorrow"})


def test_submit_dry_run_cli_prints_the_script(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    res = CliRunner().invoke(app, ["submit", str(path), "--dry-run", "--mode", "array", "--partition", "short",
                                   "--time", "30"])
    assert res.exit_code == 0, res.output
    assert "#SBATCH --partition=short" in res.output and "#SBATCH --time=30" in res.output
    assert "run-trial" in res.output and not (tmp_path / "tiny").exists()
    res = CliRunner().invoke(app, ["submit", str(path), "--dry-run", "--partition", "a;b"])
    assert res.exit_code == 2 and "slurm.partition" in res.output


def test_mlflow_server_never_binds_every_interface_by_default():
    from study.cli.cluster import server_command

    cmd = server_command("127.0.0.1", 5001, "sqlite:///x.db", Path("art"), 1)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    with pytest.raises(StudyError, match="every interface"):
        server_command("0.0.0.0", 5001, "sqlite:///x.db", Path("art"), 1)
    assert "0.0.0.0" in server_command("0.0.0.0", 5001, "sqlite:///x.db", Path("art"), 1, allow_all_interfaces=True)
    with pytest.raises(StudyError, match="backend-store-uri"):
        server_command("127.0.0.1", 5001, "file:///tmp/mlruns", Path("art"), 1)
    cluster = server_command("10.1.2.3", 5001, "postgresql://u@db/mlflow", Path("art"), 1)
    assert "10.1.2.3:5001" in cluster[cluster.index("--allowed-hosts") + 1]
