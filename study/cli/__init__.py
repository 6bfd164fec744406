"""`study` command line (typer + rich): the app (`app.py`) and one module per command group, each registering its
commands on import (in this order, the order of `study --help`)."""

from study.cli import run  # noqa: F401  run, report, status
from study.cli import tools  # noqa: F401  simulate, pretrain, calibrate
from study.cli import cluster  # noqa: F401  submit, run-trial, mlflow-server
from study.cli import denoise  # noqa: F401  denoise
from study.cli import readers  # noqa: F401  readers export, serve, analyze
from study.cli import plan  # noqa: F401  plan
from study.cli.app import app, main

__all__ = ["app", "main"]
