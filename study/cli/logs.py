"""Third-party log lines a study's output does without, unless `study --verbose`: MLflow's and alembic's INFO lines
when a store is opened, Ray's token-authentication notice at every local start, and Ray Tune's "operation took … s,
may be a performance bottleneck" (the driver's callbacks hand MLflow writes to a thread, see
`study.tracking.writer`). Warnings and errors of these libraries still show."""

from __future__ import annotations

import logging
import os

QUIET = {"mlflow": logging.WARNING, "alembic": logging.WARNING,
         "ray._private.authentication": logging.ERROR, "ray.tune.utils.util": logging.ERROR}


def quiet_libraries(verbose: bool = False) -> None:
    """Raise the level of the noisy loggers in `QUIET` (verbose: leave every logger as it is)."""
    if verbose:
        return
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow sets its level when imported (lazily, later)
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
