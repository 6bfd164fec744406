"""SLURM: render the sbatch scripts of `study submit` and hand them to `sbatch`.

Two modes (templates in the repository's `slurm/`, shipped as `study.sbatch`):
- `ray`: one allocation of N nodes; a Ray cluster on all of them; the driver `study run` on the first node.
- `array`: one job-array task per pending trial (by run key) plus a dependent job that collects the results,
  logs them to MLflow and writes the report — for clusters that forbid multi-node Ray.

Safety: every user value reaches the script through `render`: names, times and sbatch options are validated by
`study.spec.SlurmSpec` (no quote, `$`, `;`, space or newline can pass), and paths are single-quoted with
`shlex.quote`, so a hostile study name or path cannot run a command. Log and working-folder paths go to `sbatch`
as arguments, never through a shell.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from study.spec import SlurmSpec, StudySpec
from study.errors import StudyError



def _templates() -> Path:
    """The sbatch templates: `study.sbatch` in an installed wheel, the repository's `slurm/` in a source checkout."""
    from importlib.resources import files

    try:
        found = Path(str(files("study.sbatch")))
        if (found / "ray.sbatch").is_file():
            return found
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "slurm"


TEMPLATES = _templates()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Job:
    """One sbatch submission: the script, the sbatch arguments besides it, and (after submit) its job id."""

    name: str
    script: str
    args: list[str]
    job_id: str | None = None

    def command(self, script_path: Path) -> list[str]:
        return ["sbatch", "--parsable", *self.args, str(script_path)]


def quote_path(value: str | Path, what: str) -> str:
    """A path for the script body, single-quoted; control characters (a newline would end a #SBATCH line or a
    command) are refused with one line naming the value."""
    text = str(value)
    if _CONTROL.search(text):
        raise StudyError(f"{what}: path {text!r} contains a newline or control character")
    return shlex.quote(text)


def _sbatch_lines(s: SlurmSpec, job_name: str, *, mode: str, n_tasks: int = 0, gpus_per_task: int = 0,
                  cpus_per_task: int = 1) -> list[str]:
    opts = [f"--job-name={job_name}", f"--time={s.time}"]
    opts += [f"--{k}={v}" for k, v in (("partition", s.partition), ("account", s.account), ("qos", s.qos),
                                       ("constraint", s.constraint), ("mem", s.mem)) if v]
    if mode == "ray":
        opts += [f"--nodes={s.nodes}", "--ntasks-per-node=1"]
        if s.cpus_per_node:
            opts.append(f"--cpus-per-task={s.cpus_per_node}")
        if s.gpus_per_node:
            opts.append(f"--gpus-per-node={s.gpus_per_node}")
        if s.exclusive:
            opts.append("--exclusive")
    elif mode == "array":
        throttle = f"%{s.throttle}" if s.throttle else ""
        opts += [f"--array=0-{n_tasks - 1}{throttle}", "--ntasks=1", f"--cpus-per-task={cpus_per_task}"]
        if gpus_per_task:
            opts.append(f"--gpus-per-task={gpus_per_task}")
    else:  # finalize
        opts += ["--ntasks=1", "--cpus-per-task=1"]
    if mode != "finalize" and s.requeue:
        opts += ["--requeue", f"--signal=B:USR1@{s.signal_seconds}"]
    opts += ["--open-mode=append", *s.extra]
    return [f"#SBATCH {o}" for o in opts]


def _fill(template: str, values: dict[str, str]) -> str:
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    assert not left, f"unfilled placeholders {left} in {template}"
    return text


def _common(spec: StudySpec, spec_path: Path, out: Path, sbatch: list[str]) -> dict[str, str]:
    s = spec.slurm
    return {"SBATCH": "\n".join(sbatch), "STUDY": spec.name,
            "SETUP": "\n".join(s.setup) if s.setup else "# (no setup lines)",
            "PYTHON": quote_path(s.python or sys.executable, "slurm.python"),
            "SPEC": quote_path(Path(spec_path).resolve(), "study spec"),
            "OUT": quote_path(Path(out).resolve(), "results folder"),
            "TRAP": "trap requeue USR1" if s.requeue else "# (requeue disabled)"}


def job_name(spec: StudySpec) -> str:
    return f"study-{spec.name}"[:64]


def render_ray(spec: StudySpec, spec_path: Path, out: Path) -> Job:
    s = spec.slurm
    launcher = s.launcher if s.launcher != "auto" else ("symmetric-run" if s.exclusive else "ray-start")
    values = _common(spec, spec_path, out, _sbatch_lines(s, job_name(spec), mode="ray"))
    values["LAUNCHER"] = launcher
    values["CPUS_OVERRIDE"] = f"cpus={s.cpus_per_node}" if s.cpus_per_node else "# (CPUs per node: SLURM's)"
    return Job("ray", _fill("ray.sbatch", values), _log_args(out, "ray-%j.out"))


def render_array(spec: StudySpec, spec_path: Path, out: Path, keys_file: Path, n_tasks: int) -> list[Job]:
    s = spec.slurm
    gpus = math.ceil(spec.resources.gpu) if spec.resources.gpu else 0
    cpus = max(1, math.ceil(spec.resources.cpu))
    array = _sbatch_lines(s, job_name(spec), mode="array", n_tasks=n_tasks, gpus_per_task=gpus, cpus_per_task=cpus)
    values = _common(spec, spec_path, out, array)
    values["KEYS"] = quote_path(Path(keys_file).resolve(), "run-key list")
    fin = _common(spec, spec_path, out, _sbatch_lines(s, job_name(spec) + "-report", mode="finalize"))
    fin["NEXT"] = "--submit-next-stage" if spec.adaptive else ""  # an adaptive study's stage 2 is queued from here
    return [Job("array", _fill("array.sbatch", values), _log_args(out, "array-%A_%a.out")),
            Job("finalize", _fill("finalize.sbatch", fin), _log_args(out, "report-%j.out"))]


def _log_args(out: Path, pattern: str) -> list[str]:
    logs = (Path(out) / "slurm").resolve()
    return [f"--chdir={Path(out).resolve()}", f"--output={logs / pattern}"]


def check_script(text: str) -> None:
    """`bash -n` on a rendered script (a syntax error would only show on the cluster, hours later)."""
    proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StudyError(f"rendered sbatch script does not parse: {proc.stderr.strip().splitlines()[0]}")


def submit(jobs: list[Job], out: Path, stamp: str) -> list[Job]:
    """Write each script to RESULTS_DIR/slurm/ and submit it (the finalize job after the array it waits for)."""
    for job in jobs:
        check_script(job.script)
    if shutil.which("sbatch") is None:
        raise StudyError("sbatch not found: run `study submit` on a SLURM login node (or use --dry-run)")
    folder = Path(out) / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    for job in jobs:
        path = folder / f"{stamp}-{job.name}.sbatch"
        path.write_text(job.script)
        if previous is not None:
            job.args = [f"--dependency=afterany:{previous.job_id}", "--kill-on-invalid-dep=yes", *job.args]
        proc = subprocess.run(job.command(path), capture_output=True, text=True)
        if proc.returncode != 0:
            raise StudyError(f"sbatch refused {path.name}: {(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
        job.job_id = proc.stdout.strip().split(";")[0]
        previous = job
    return jobs
