"""Executors of trials behind one interface: `run(specs, events, options)`.

- `local`: sequential, in-process (tests, debugging, a single GPU box).
- `ray`: Ray Tune over a local or existing Ray cluster (default).
Every backend runs `study.trial.execute.execute(spec)` for each trial and reports through `Events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from study.errors import StudyError


@dataclass
class Events:
    """Callbacks the driver gets from a backend (all in the driver process)."""

    on_start: Callable[[str], None] = lambda key: None
    on_epoch: Callable[[str, int, dict], None] = lambda key, epoch, metrics: None
    on_done: Callable[[str, dict], None] = lambda key, record: None


@dataclass
class Options:
    cpu: float = 1.0
    gpu: float = 0.0
    max_concurrent: Optional[int] = None
    storage: str = "."
    retries: int = 0


def get_backend(name: str):
    if name == "local":
        from study.backends import local

        return local
    if name == "ray":
        from study.backends import ray as ray_backend

        return ray_backend
    raise StudyError(f"unknown backend {name!r}; use 'ray' or 'local'")
