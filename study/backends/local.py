"""Sequential, in-process backend: one trial after the other in the driver."""

from __future__ import annotations

from study.backends import Events, Options
from study.trial.execute import execute


def run(specs, events: Events, options: Options) -> None:
    for spec in specs:
        events.on_start(spec.run_key)
        record = execute(spec, on_epoch=lambda epoch, m, key=spec.run_key: events.on_epoch(key, epoch, m),
                         retries=options.retries)
        events.on_done(spec.run_key, record)
