"""A real single-node SLURM for the tests: munged + slurmctld + slurmd started directly (no systemd), as root.

`.ci/run` installs Debian's slurm-wlm and munge. The configuration lives in a temporary folder and is found through
`SLURM_CONF`, so nothing under /etc/slurm is touched; the daemons are stopped by pid when the tests end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF = """\
ClusterName=studytest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=600
MaxArraySize=10001
KillWait=5
InactiveLimit=0
SlurmdTimeout=30
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


def available() -> str | None:
    """None if a SLURM can be started here, else why not."""
    for tool in ("sbatch", "slurmctld", "slurmd", "munged"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} not installed (Debian packages slurm-wlm and munge; .ci/run installs them)"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key (install the munge package)"
    return None


def _munge_running() -> bool:
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Slurm:
    def __init__(self, state: Path):
        self.state = Path(state)
        self.conf = self.state / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._munged = None

    def start(self, timeout: float = 60) -> "Slurm":
        host = socket.gethostname()
        for sub in ("ctld", "d"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(host=host, state=self.state, cpus=os.cpu_count(), ctld_port=16817,
                                         d_port=16818))
        if not _munge_running():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], check=True)
            self._munged = True
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([f"/usr/sbin/{daemon}", "-f", str(self.conf)], check=True, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env).stdout
            if out.strip() in ("idle", "mix", "alloc"):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"SLURM node not idle after {timeout} s: {out!r}\n{self.log()}")

    def log(self) -> str:
        return "\n".join((self.state / n).read_text()[-3000:] for n in ("slurmctld.log", "slurmd.log")
                         if (self.state / n).is_file())

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, env=self.env)
        for name in ("slurmd.pid", "slurmctld.pid"):
            pid = _pid(self.state / name)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        time.sleep(0.5)

    def job(self, job_id: str) -> dict:
        """`scontrol show job` as a dict of its first record (jobs stay visible for MinJobAge seconds)."""
        out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
                             env=self.env).stdout
        records = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in out.splitlines() if line]
        return {"records": records, "states": [r.get("JobState") for r in records]}

    def wait(self, job_id: str, timeout: float = 300) -> list[str]:
        """Wait until every task of the job is in a final state; return the states."""
        final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
        deadline = time.time() + timeout
        states: list[str] = []
        while time.time() < deadline:
            states = self.job(job_id)["states"]
            if states and all(s in final for s in states):
                return states
            time.sleep(1)
        raise TimeoutError(f"job {job_id} not done after {timeout} s: {states}\n{self.log()}")
