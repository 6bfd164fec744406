"""A trial's audit trail: `trials/<run_key>/events.log`, one JSON line per start, retry, repair and end."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def log_event(out: Path, event: str, **fields) -> None:
    """Append one line to the trial's `events.log` (JSON lines): the audit trail of starts, retries and ends, each
    with its host, pid and (on Ray) node id."""
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    if os.environ.get("STUDY_NODE"):
        where["node"] = os.environ["STUDY_NODE"]
    line = json.dumps({"t": round(time.time(), 3), "event": event, **where, **fields})
    with open(out / "events.log", "a") as f:
        f.write(line + "\n")


def read_events(out: Path) -> list[dict]:
    p = Path(out) / "events.log"
    if not p.is_file():
        return []
    events = []
    for line in p.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            continue
    return events
