"""MLflow writes off the backend's callbacks: a writer thread applies the driver's `Tracker` calls in order.

A Ray Tune callback that writes to MLflow itself holds up every later result (an sqlite or HTTP round trip per point);
here the callback only puts the call on a bounded queue (a full queue makes the callback wait: the driver slows down,
nothing is dropped). The thread drains what has arrived and sends each trial's queued epochs as one `log_batch`.
`close()` flushes everything before it returns; the driver calls it however the run ends (finished, an exception,
SIGTERM or Ctrl-C, see `study.running.run`). A write that fails is reported (and counted) and the thread goes on: the
results folder is the record, and finishing a trial's run backfills any epoch missing from its history.json.
"""

from __future__ import annotations

import queue
import threading

_BATCH = 500  # calls taken from the queue at once


class TrackingWriter:
    """The `Tracker` calls the live view makes (`trial_run`, `log_epoch`, `finish`, `tag_run`, `kill`), applied on
    one thread. `warn(text)` reports a failed write."""

    def __init__(self, tracker, warn=print, maxsize: int = 10_000):
        self.tracker, self.warn = tracker, warn
        self.failed, self.first_error = 0, None
        self._q: queue.Queue = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    def trial_run(self, run_key: str, name: str = "", params: dict | None = None, start: bool = False) -> None:
        self._q.put(("trial_run", run_key, (name, params, start)))

    def log_epoch(self, run_key: str, epoch: int, metrics: dict) -> None:
        self._q.put(("epoch", run_key, (int(epoch), dict(metrics))))

    def finish(self, run_key: str, record: dict, folder) -> None:
        self._q.put(("finish", run_key, (record, folder)))

    def tag_run(self, run_key: str, tag: str, value: str) -> None:
        self._q.put(("tag_run", run_key, (tag, value)))

    def kill(self, run_keys) -> None:
        self._q.put(("kill", None, (list(run_keys),)))

    def pending(self) -> int:
        """Calls queued and not yet applied (approximate while the thread runs)."""
        return self._q.qsize()

    def close(self) -> None:
        """Apply everything queued, then stop the thread (returns once MLflow has it all)."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()

    def _loop(self) -> None:
        while True:
            items = [self._q.get()]
            while len(items) < _BATCH:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            if self._apply(items):
                return

    def _apply(self, items: list) -> bool:
        """Apply `items` in order, each trial's consecutive epochs as one batch; True at the end marker."""
        epochs: dict[str, list] = {}
        for item in items:
            if item is None:
                self._flush(epochs)
                return True
            kind, key, args = item
            if kind == "epoch":
                epochs.setdefault(key, []).append(args)
                continue
            self._flush(epochs)
            if kind == "kill":
                self._call(self.tracker.kill, *args)
            else:
                self._call(getattr(self.tracker, kind), key, *args)
        self._flush(epochs)
        return False

    def _flush(self, epochs: dict) -> None:
        for key, points in epochs.items():
            self._call(self.tracker.log_epochs, key, points)
        epochs.clear()

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - a tracking failure must not stop the study
            self.failed += 1
            self.first_error = self.first_error or f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            if self.failed <= 3 or self.failed % 100 == 0:
                self.warn(f"warning: MLflow write failed ({fn.__name__}, {self.failed} so far): "
                          f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
