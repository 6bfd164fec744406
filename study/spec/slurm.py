"""`slurm:` of a study spec: how `study submit` runs it on a SLURM cluster, every value checked against the shape
SLURM accepts."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator

from study.spec.parts import StrictModel

# SLURM values end up in #SBATCH lines and a bash script: each is checked against the shape SLURM accepts, so that
# no quote, `$(...)`, `;` or newline can reach a shell (paths are quoted separately, see study.backends.slurm).
_SLURM_WORD = re.compile(r"^[A-Za-z0-9_.,:+=@%/-]{1,128}$")
_SLURM_CONSTRAINT = re.compile(r"^[A-Za-z0-9_.,&|\[\]*:-]{1,256}$")
_SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_SLURM_MEM = re.compile(r"^\d+[KMGT]?$")
_SLURM_EXTRA = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_.,:+=@%/&|\[\]*-]+)?$")
_SAFE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")


class SlurmSpec(StrictModel):
    """`study submit`: how the study runs on a SLURM cluster."""

    mode: Literal["ray", "array"] = Field("ray", description="ray: one allocation of `nodes` nodes running a Ray "
                                                             "cluster; array: one job-array task per pending trial")
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    time: str = Field("24:00:00", description="time limit per job (ray) or per array task")
    nodes: int = Field(1, ge=1, description="ray mode: nodes in the allocation")
    gpus_per_node: int = Field(0, ge=0, description="ray mode: GPUs per node (array mode: ceil(resources.gpu) per task)")
    cpus_per_node: Optional[int] = Field(None, ge=1, description="ray mode: CPUs per node (default: SLURM's)")
    mem: Optional[str] = Field(None, description="memory per node (ray) or per task (array), e.g. 64G")
    throttle: Optional[int] = Field(None, ge=1, description="array mode: at most this many tasks at once (%)")
    requeue: bool = Field(True, description="requeue on preemption and shortly before the time limit")
    signal_seconds: int = Field(300, ge=10, description="USR1 this long before the time limit → requeue")
    launcher: Literal["auto", "symmetric-run", "ray-start"] = Field(
        "auto", description="ray mode: `ray symmetric-run` (needs exclusive nodes: it runs `ray stop` at the end) or "
                            "head + workers with `ray start --block`; auto = symmetric-run when --exclusive is set")
    exclusive: bool = Field(False, description="ray mode: whole nodes (#SBATCH --exclusive)")
    extra: list[str] = Field(default_factory=list, description="more sbatch options, e.g. --mail-type=END")
    setup: list[str] = Field(default_factory=list, description="shell lines run before `study` on each job "
                                                               "(module load …, source venv/bin/activate)")
    python: Optional[str] = Field(None, description="Python on the nodes (default: the one running `study submit`)")

    @field_validator("partition", "account", "qos")
    @classmethod
    def _word(cls, v):
        if v is not None and not _SLURM_WORD.match(v):
            raise ValueError("not a SLURM name (letters, digits and _.,:+=@%/- only)")
        return v

    @field_validator("constraint")
    @classmethod
    def _constraint(cls, v):
        if v is not None and not _SLURM_CONSTRAINT.match(v):
            raise ValueError("not a SLURM constraint expression (features joined by & | , [ ] *)")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v):
        if not _SLURM_TIME.match(v):
            raise ValueError("not a SLURM time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        return v

    @field_validator("mem")
    @classmethod
    def _mem(cls, v):
        if v is not None and not _SLURM_MEM.match(v):
            raise ValueError("not a SLURM memory size (a number with an optional K, M, G or T)")
        return v

    @field_validator("extra")
    @classmethod
    def _extra(cls, v):
        for opt in v:
            if not _SLURM_EXTRA.match(opt):
                raise ValueError(f"sbatch option {opt!r} must look like --name or --name=value (no spaces, quotes, $ or ;)")
        return v

    @field_validator("setup")
    @classmethod
    def _setup(cls, v):
        for line in v:
            if not _SAFE_LINE.match(line):
                raise ValueError(f"setup line {line!r} has a newline or control character")
        return v

    @field_validator("python")
    @classmethod
    def _python(cls, v):
        if v is not None and not _SAFE_LINE.match(v):
            raise ValueError("has a newline or control character")
        return v
