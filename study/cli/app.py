"""The typer app, its consoles and the error handling every command shares: a user error ends in one line naming
the culprit (never read as console markup) and exit code 2."""

from __future__ import annotations

import functools
import sys
from enum import Enum
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from study.errors import StudyError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Ablation studies of perceptual-loss design for low-dose CT denoising.")
console = Console()
err_console = Console(stderr=True)


class Backend(str, Enum):
    """Where `study run` runs trials."""
    ray = "ray"
    local = "local"


class State(str, Enum):
    """A trial's state (study.store.results.STATES)."""
    finished = "finished"
    running = "running"
    failed = "failed"
    pending = "pending"


class SubmitMode(str, Enum):
    """How `study submit` uses SLURM."""
    ray = "ray"
    array = "array"


class PretrainMethod(str, Enum):
    rotnet = "rotnet"
    supervised = "supervised"


class InputMode(str, Enum):
    """How a VGG encoder sees a gray image in [0, 1]."""
    x255 = "x255"
    unit = "unit"
    imagenet = "imagenet"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"study {version('study')}")
        except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
            console.print("study (not installed)")
        raise typer.Exit()


@app.callback()
def _main_options(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                        help="print the version and exit"),
                  verbose: bool = typer.Option(False, "--verbose", help="keep the INFO lines and notices of MLflow "
                                               "and Ray (hidden by default; their warnings always show)")) -> None:
    """Ablation studies of perceptual-loss design for low-dose CT denoising."""
    from study.cli.logs import quiet_libraries

    quiet_libraries(verbose)


def user_errors(fn):
    """Decorate a command: StudyError → one red line on stderr and exit 2; Ctrl-C → a hint and exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudyError as err:
            err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            err_console.print("interrupted: finished trials are kept; run again (or with --resume) to continue")
            raise typer.Exit(130)

    return wrapper


def main() -> None:
    """Entry point of the `study` script and of `python -m study` (every command registered, see study.cli)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `python -m study` (this module holds the app without its commands)")
