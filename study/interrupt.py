"""SIGTERM as a clean exit: SLURM (`scancel`, a time limit, preemption), `kill` and container stops send SIGTERM, which
would end Python at once; raised as `SystemExit(143)` instead, the driver's `finally` blocks run — the queued MLflow
writes are applied and running trials' runs marked KILLED (`study.running.run._live`), locks released. A second
SIGTERM while that happens is ignored (SLURM's KillWait, 30 s by default, bounds it with SIGKILL). `ray.init` puts
its own handler in place (`sys.exit(15)`, no guard against a second signal): `reclaim_sigterm` puts ours back."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


def _exit(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


_active = threading.Event()  # a `sigterm_exits` block is running


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    _active.set()
    try:
        yield
    finally:
        _active.clear()
        signal.signal(signal.SIGTERM, previous)


def reclaim_sigterm() -> None:
    """Inside a `sigterm_exits` block (main thread), make SIGTERM ours again after a library replaced the handler."""
    if _active.is_set() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit)
