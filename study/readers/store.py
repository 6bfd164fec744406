"""The answers database of a reader folder (answers.sqlite), written by `study readers serve` only.

One table, answers(reader, case_id, criterion, value, answered_at), primary key (reader, case_id, criterion). The
database is in WAL mode with synchronous=FULL and every answer is committed the moment it is recorded, so an answer
the server acknowledged survives a killed process. Each call opens its own short-lived connection under a lock: the
server runs in one process (uvicorn), sync handlers run in a thread pool, and this keeps it simple and safe.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    criterion TEXT NOT NULL,
    value INTEGER NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (reader, case_id, criterion)
)"""


class AnswerStore:
    """answers.sqlite of one reader folder: `record` an answer (committed at once), `answers_of` one reader."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._lock, closing(self._connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)
            con.commit()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level="DEFERRED")
        con.execute("PRAGMA synchronous=FULL")
        return con

    def record(self, reader: str, case_id: str, criterion: str, value: int) -> None:
        """(Re)write one answer and commit it before returning."""
        self.record_many(reader, case_id, {criterion: value})

    def record_many(self, reader: str, case_id: str, answers: dict[str, int]) -> None:
        """(Re)write the answers {criterion: value} of one case in one transaction, committed before returning."""
        now = time.time()
        rows = [(reader, case_id, str(c), int(v), now) for c, v in answers.items()]
        with self._lock, closing(self._connect()) as con:
            con.executemany("INSERT OR REPLACE INTO answers (reader, case_id, criterion, value, answered_at) "
                            "VALUES (?, ?, ?, ?, ?)", rows)
            con.commit()

    def answers_of(self, reader: str) -> dict[str, dict[str, int]]:
        """{case_id: {criterion: value}} of one reader (no one else's)."""
        with self._lock, closing(self._connect()) as con:
            rows = con.execute("SELECT case_id, criterion, value FROM answers WHERE reader = ?", (reader,)).fetchall()
        out: dict[str, dict[str, int]] = {}
        for case_id, criterion, value in rows:
            out.setdefault(case_id, {})[criterion] = int(value)
        return out
