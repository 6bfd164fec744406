"""A real `mlflow server` on 127.0.0.1 (started by `study mlflow-server`) receiving a study's runs over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import free_port, mlflow_runs, tiny_spec, write_spec

pytestmark = pytest.mark.slow


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on `port` (from /proc/net/tcp; state 0A = LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    return found


def test_a_study_logs_to_a_real_mlflow_server_over_http(tmp_path):
    port = free_port()
    store = f"sqlite:///{tmp_path / 'server.db'}"
    server = subprocess.Popen([sys.executable, "-m", "study", "mlflow-server", "--port", str(port),
                               "--backend-store-uri", store, "--artifacts-destination", str(tmp_path / "artifacts"),
                               "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        assert _listening_addresses(port) == {"127.0.0.1"}  # never every interface by default

        from study.spec import load_spec
        from study.running.run import run_study

        raw = tiny_spec(tmp_path, name="over-http", tracking={"enabled": True, "uri": uri, "example_images": 1})
        run_study(load_spec(write_spec(tmp_path, raw)))
        runs = mlflow_runs(uri, "over-http")
        children = runs[runs["tags.run_key"].notna()]
        assert len(runs[runs["tags.study.role"] == "parent"]) == 1 and len(children) == 2
        assert set(runs["status"]) == {"FINISHED"} and children["metrics.psnr"].notna().all()
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        run_id = children["run_id"].iloc[0]
        assert {"per_image.parquet", "examples.png"} <= {a.path for a in client.list_artifacts(run_id)}
        assert list((tmp_path / "artifacts").rglob("per_image.parquet"))  # proxied into the server's folder
        assert not (tmp_path / "over-http" / "mlflow.db").exists()  # nothing went to the local default store
    finally:
        server.terminate()
        server.wait(timeout=30)
