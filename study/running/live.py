"""What the driver shows and logs while trials run: the progress bar, plain lines and a heartbeat when stdout is not
a terminal, and the MLflow runs (through a `TrackingWriter`, off the callbacks), all fed by the backend's events."""

from __future__ import annotations

import os
import threading
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from study.planning.plan import Plan
from study.store.results import trial_dir
from study.trial.spec import TrialSpec

HEARTBEAT_S = 300


def _hms(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class Live:
    """The driver's view of running trials: the progress line and the MLflow runs, fed by the backend's events.
    Counts are sets of run keys, so a trial that the backend starts again (a retry) is counted once.

    When stdout is not a terminal (a SLURM job log, nohup, CI) the live bar shows nothing until the end, so each
    trial's start and end is also a plain line with the counts, elapsed time and ETA, and a heartbeat line follows
    every `$STUDY_HEARTBEAT_S` seconds (default 300) while trials run. `close()` stops the heartbeat."""

    def __init__(self, p: Plan, todo: list[TrialSpec], tracker, prog: Progress, console: Console,
                 label: str = "trials", params=lambda spec: {}):
        self.p, self.by_key, self.tracker, self.prog, self.console = p, {s.run_key: s for s in todo}, tracker, prog, console
        self.params = params
        self.names = {t.run_key: f"{t.configuration} · seed {t.seed}" for t in p.trials}
        self.label, self.task = label, prog.add_task(label, total=len(todo))
        self.running, self.done, self.failed = set(), set(), set()
        self.t0, self.plain, self._stop = time.time(), not console.is_terminal, threading.Event()
        if self.plain and todo:
            every = float(os.environ.get("STUDY_HEARTBEAT_S", HEARTBEAT_S))
            threading.Thread(target=self._heartbeat, args=(every,), daemon=True).start()
        self.describe()

    def close(self, interrupted: bool = False) -> None:
        """Stop the heartbeat and write what MLflow has not got yet (`tracker` is a `TrackingWriter`); interrupted:
        the runs of trials still running, and the parent, end KILLED."""
        self._stop.set()
        if self.tracker is None:
            return
        if interrupted:
            self.tracker.kill(sorted(self.running))
        if self.tracker.pending():
            self.console.print(f"MLflow: writing {self.tracker.pending()} queued update(s) …", markup=False)
        self.tracker.close()
        if self.tracker.failed:
            self.console.print(f"warning: {self.tracker.failed} MLflow write(s) failed (first: "
                               f"{self.tracker.first_error}); the trial folders have everything, and the next "
                               "`study run` brings MLflow up to date", markup=False)

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            self.line("heartbeat")

    def line(self, what: str) -> None:
        """One plain progress line (non-terminal output only)."""
        if not self.plain:
            return
        total = len(self.by_key)
        ended = len(self.done | self.failed)
        elapsed = time.time() - self.t0
        eta = ("all ended" if ended >= total else f"ETA {_hms(elapsed / ended * (total - ended))}" if ended
               else "ETA unknown")
        self.console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.label}: {what} — {len(self.done)} done · "
                           f"{len(self.running)} running · {len(self.failed)} failed of {total}; elapsed "
                           f"{_hms(elapsed)}; {eta}", markup=False, highlight=False, soft_wrap=True)

    def events(self):
        from study.backends import Events

        return Events(self.on_start, self.on_epoch, self.on_done)

    def describe(self) -> None:
        self.prog.update(self.task, completed=len(self.done | self.failed),
                         description=f"{self.label}: {len(self.done)} done · {len(self.running)} running · "
                                     f"{len(self.failed)} failed")

    def add(self, spec: TrialSpec, name: str) -> None:
        """A trial known only once it is sampled (the Optuna refinement): its spec (MLflow params) and run name."""
        self.by_key[spec.run_key] = spec
        self.names.setdefault(spec.run_key, name)
        self.prog.update(self.task, total=len(self.by_key))

    def on_start(self, key: str) -> None:
        self.running.add(key)
        self.failed.discard(key)
        if self.tracker:
            self.tracker.trial_run(key, self.names.get(key, key), self.params(self.by_key[key]), start=True)
        self.describe()
        self.line(f"started {key} ({self.names.get(key, key)})")

    def on_epoch(self, key: str, epoch: int, metrics: dict) -> None:
        if self.tracker:
            self.tracker.log_epoch(key, epoch, metrics)

    def on_done(self, key: str, record: dict) -> None:
        self.running.discard(key)
        (self.done if record.get("status") == "finished" else self.failed).add(key)
        if record.get("status") != "finished":
            self.console.print(f"[red]trial {key} failed:[/red] {escape(str(record.get('error')))}")
        if self.tracker:
            self.tracker.trial_run(key, self.names.get(key, key))
            self.tracker.finish(key, record, trial_dir(self.p.out, key))
        self.describe()
        self.line(f"{record.get('status', 'ended')} {key} ({self.names.get(key, key)})")
