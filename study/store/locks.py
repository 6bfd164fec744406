"""Advisory file locks (POSIX `flock`): released by the kernel when the holder dies, so a killed driver, worker or
SLURM task never leaves a stale lock behind. Used so that one trial folder or data cache has one writer at a time
across processes, Ray workers and SLURM array tasks (on NFS this needs a server with lock support, as NFSv4 has)."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _open(path: Path) -> int:
    """A descriptor of the lock file `path`, created (with its folder) if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing), waiting for the current holder to finish."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Like `file_lock` but never waits: yields True holding the lock, or False if a live process holds it."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True while some live process holds the lock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextmanager
def driver_lock(results_dir: Path, wait: bool = False, on_wait=None) -> Iterator[None]:
    """One driver (`study run`) per results folder: the lock `.driver.lock` holds the holder's host, pid and start
    time. Without `wait`, a second driver gets a StudyError naming the holder; with `wait` it blocks until the holder
    ends (`on_wait(holder)` is called once first). Released by the kernel if the holder dies."""
    import json
    import socket
    import time

    from study.errors import StudyError

    path = Path(results_dir) / ".driver.lock"
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(path)
            if not wait:
                raise StudyError(f"{results_dir}: another driver is running this study ({who}); wait for it with "
                                 f"--wait, or let it finish") from None
            if on_wait:
                on_wait(who)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holder(path: Path) -> str:
    import json
    import time

    try:
        info = json.loads(Path(path).read_text())
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["since"]))
        return f"host {info['host']}, pid {info['pid']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
