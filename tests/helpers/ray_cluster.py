"""A real multi-node Ray cluster on one machine: `ray start --head` and `ray start --address` on 127.0.0.1, each
with its own ports, started with `--block` so that stopping them (by pid) stops their processes and nothing else."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker_port(base: int = 16379) -> int:
    """`base`, moved by 200 per pytest-xdist worker (gw0, gw1, …) so that parallel test processes' clusters never
    share a port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + 200 * int(worker[2:] or 0)


class RayCluster:
    def __init__(self, port: int | None = None, cpus_per_node: int = 1):
        port = worker_port() if port is None else port
        self.port, self.cpus = port, cpus_per_node
        self.address = f"127.0.0.1:{port}"
        self.temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length cap
        self.procs: list[subprocess.Popen] = []
        self.ray = str(Path(sys.executable).with_name("ray"))
        # Ray's token authentication, as `study submit` sets it up: one secret, in the environment of every node and
        # driver (this process's environment is inherited by the drivers the tests start)
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

    def _node(self, offset: int) -> list[str]:
        p = self.port + offset
        return [f"--num-cpus={self.cpus}", "--num-gpus=0", "--object-store-memory=200000000", "--block",
                "--disable-usage-stats", "--node-ip-address=127.0.0.1", f"--dashboard-agent-listen-port={p + 1}",
                f"--dashboard-agent-grpc-port={p + 2}", f"--metrics-export-port={p + 3}",
                f"--runtime-env-agent-port={p + 4}", f"--node-manager-port={p + 5}", f"--object-manager-port={p + 6}",
                f"--min-worker-port={p + 10}", f"--max-worker-port={p + 49}"]

    def _start(self, args: list[str], log: str) -> None:
        out = open(self.temp / log, "w")
        self.procs.append(subprocess.Popen([self.ray, "start", *args], stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}))

    def _nodes_alive(self) -> int:
        code = ("import ray; ray.init(address='%s', log_to_driver=False, include_dashboard=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))" % self.address)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        try:
            return int(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def start(self, timeout: float = 90) -> "RayCluster":
        self._start(["--head", f"--port={self.port}", f"--temp-dir={self.temp}", "--include-dashboard=false",
                     f"--dashboard-port={self.port + 7}",
                     *self._node(0)], "head.log")
        time.sleep(3)
        self._start([f"--address={self.address}", *self._node(50)], "worker.log")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.procs):
                break
            if self._nodes_alive() == 2:
                return self
            time.sleep(1)
        logs = "\n".join((self.temp / n).read_text()[-2000:] for n in ("head.log", "worker.log"))
        self.stop()
        raise RuntimeError(f"two-node Ray cluster did not come up:\n{logs}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)
