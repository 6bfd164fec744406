"""The one progress bar every long step shows (data, encoders, trials, pretraining, simulation): description, bar,
done/total, elapsed, ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


def complete(prog: Progress, task) -> None:
    """Mark a task whose total was unknown as done (its bar full)."""
    total = prog.tasks[task].total or 1
    prog.update(task, total=total, completed=total)
