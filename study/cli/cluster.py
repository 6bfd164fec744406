"""Cluster commands of `study`: submit (SLURM), run-trial (one array task), mlflow-server (tracking at scale)."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
import sys
from pathlib import Path
from typing import List, Optional

import typer

from study.cli.app import SubmitMode, app, console, user_errors
from study.errors import StudyError


@app.command()
@user_errors
def submit(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: results/<name>)"),
    mode: Optional[SubmitMode] = typer.Option(None, "--mode", help="ray: one allocation running a Ray cluster; "
                                                                   "array: a job array (default: the spec's)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the sbatch script(s); submit nothing"),
    partition: Optional[str] = typer.Option(None, "--partition", "-p"),
    account: Optional[str] = typer.Option(None, "--account", "-A"),
    time_limit: Optional[str] = typer.Option(None, "--time", "-t", help="e.g. 12:00:00 or 2-00:00:00"),
    nodes: Optional[int] = typer.Option(None, "--nodes", "-N", min=1, help="ray mode: nodes"),
    gpus_per_node: Optional[int] = typer.Option(None, "--gpus-per-node", min=0),
    cpus_per_node: Optional[int] = typer.Option(None, "--cpus-per-node", min=1),
    mem: Optional[str] = typer.Option(None, "--mem", help="e.g. 64G"),
    qos: Optional[str] = typer.Option(None, "--qos"),
    constraint: Optional[str] = typer.Option(None, "--constraint", "-C"),
    throttle: Optional[int] = typer.Option(None, "--throttle", min=1, help="array mode: tasks at once"),
    extra: Optional[List[str]] = typer.Option(None, "--sbatch", help="one more sbatch option, e.g. --sbatch=--mail-type=END"),
):
    """Render the sbatch script(s) of the study and submit them (SLURM options from the spec's `slurm:` or flags)."""
    from study.spec import load_spec
    from study.running.submit import submit_study, with_overrides

    spec = load_spec(study, check_paths=not dry_run)
    spec = with_overrides(spec, {"mode": mode.value if mode else None, "partition": partition, "account": account, "time": time_limit,
                                 "nodes": nodes, "gpus_per_node": gpus_per_node, "cpus_per_node": cpus_per_node,
                                 "mem": mem, "qos": qos, "constraint": constraint, "throttle": throttle,
                                 "extra": extra or []})
    jobs, out = submit_study(spec, output=output, dry_run=dry_run)
    if dry_run:
        for job in jobs:
            script = out / "slurm" / f"<stamp>-{job.name}.sbatch"
            print(f"# sbatch {' '.join(job.args)} {script}")
            print(job.script)
        return
    ids = ", ".join(f"{j.name} {j.job_id}" for j in jobs)
    console.print(f"submitted {ids} → {out}; follow it with `study status {out}`", highlight=False)


@app.command("run-trial")
@user_errors
def run_trial_command(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o"),
    run_key: Optional[str] = typer.Option(None, "--run-key", help="the trial to run"),
    keys: Optional[Path] = typer.Option(None, "--keys", help="a file of run keys, one per line (SLURM arrays)"),
    index: Optional[int] = typer.Option(None, "--index", min=0, help="line of --keys (0-based)"),
):
    """Run one trial of a study (what each task of `study submit --mode array` does); skipped if finished."""
    from study.spec import load_spec
    from study.running.run import run_one_trial

    if (run_key is None) == (keys is None):
        raise StudyError("run-trial: give either --run-key or --keys with --index")
    if keys is not None:
        if index is None:
            raise StudyError("run-trial: --keys needs --index")
        lines = [ln.strip() for ln in keys.read_text().splitlines() if ln.strip()] if keys.is_file() else []
        if index >= len(lines):
            raise StudyError(f"{keys}: no run key at index {index} ({len(lines)} keys)")
        run_key = lines[index]
    rec = run_one_trial(load_spec(study), output, run_key, console)
    if rec["status"] != "finished":
        raise typer.Exit(1)


def interface_address(name: str) -> str:
    """The IPv4 address of a network interface (e.g. ib0), read with the SIOCGIFADDR ioctl."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
        except OSError:
            raise StudyError(f"--interface: no IPv4 address on interface {name!r}") from None
    return socket.inet_ntoa(packed[20:24])


def server_command(host: str, port: int, store: str, artifacts: Path, workers: int,
                   allow_all_interfaces: bool = False) -> list[str]:
    """The `mlflow server` command line; refuses to listen on every interface unless asked to."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise StudyError(f"--host: {host!r} is not an IP address (use --interface NAME for a cluster network)") from None
    if ip.is_unspecified and not allow_all_interfaces:
        raise StudyError(f"--host {host}: listening on every interface exposes the runs to the whole network; "
                         "name the cluster interface (--interface ib0) or pass --allow-all-interfaces")
    scheme = store.split(":", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql", "mssql"):
        raise StudyError(f"--backend-store-uri: unsupported store {store!r}; use sqlite:///FILE or postgresql://…")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--backend-store-uri", store,
           "--artifacts-destination", str(Path(artifacts).resolve()), "--workers", str(workers)]
    if not ip.is_loopback and not ip.is_unspecified:
        cmd += ["--allowed-hosts", f"{host},{host}:{port},localhost,localhost:{port},127.0.0.1,127.0.0.1:{port}"]
    return cmd


@app.command("mlflow-server")
@user_errors
def mlflow_server(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (never 0.0.0.0 by default)"),
    interface: Optional[str] = typer.Option(None, "--interface", help="listen on this interface's IPv4 (e.g. ib0)"),
    port: int = typer.Option(5000, "--port", min=1, max=65535),
    store: str = typer.Option("sqlite:///mlflow.db", "--backend-store-uri", help="sqlite:///FILE or postgresql://…"),
    artifacts: Path = typer.Option(Path("mlartifacts"), "--artifacts-destination", help="folder for run artifacts"),
    workers: int = typer.Option(2, "--workers", min=1),
    allow_all_interfaces: bool = typer.Option(False, "--allow-all-interfaces"),
):
    """Start an MLflow tracking server for studies on a cluster (set `tracking.uri: http://HOST:PORT`)."""
    if interface:
        host = interface_address(interface)
    cmd = server_command(host, port, store, artifacts, workers, allow_all_interfaces)
    if store.startswith("sqlite:///"):  # create the schema once, before the server's workers open the file
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=store).search_experiments(max_results=1)
    console.print(f"MLflow server on http://{host}:{port} (store {store}); in the study spec: "
                  f"tracking: {{uri: http://{host}:{port}}}", highlight=False)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
