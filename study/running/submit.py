"""`study submit`: put a study on a SLURM cluster (rendering and sbatch in study.backends.slurm).

The spec is frozen at submission: its validated form (paths made absolute) is written to
`RESULTS_DIR/slurm/<stamp>-study.yaml` and the jobs run that file, so editing the YAML afterwards changes nothing
in a queued job. A study resubmitted after its jobs ended continues where it stopped (finished trials are skipped); an adaptive
study whose stage 1 is over but whose stage 2 is undecided (its collect job did not run) decides it here and
submits its trials.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from study.backends import slurm
from study.spec import SlurmSpec, StudySpec
from study.errors import StudyError
from study.planning.plan import plan
from study.running.prepare import start_folder


def with_overrides(spec: StudySpec, overrides: dict, source: str = "command line") -> StudySpec:
    """The spec's `slurm:` section updated by command-line flags, validated like the spec itself."""
    given = {k: v for k, v in overrides.items() if v not in (None, [], ())}
    if not given:
        return spec
    merged = {**spec.slurm.model_dump(), **given}
    if "extra" in given:
        merged["extra"] = [*spec.slurm.extra, *given["extra"]]
    try:
        s = SlurmSpec.model_validate(merged)
    except ValidationError as err:
        e = err.errors()[0]
        field = str(e["loc"][0]) if e["loc"] else "slurm"
        flag = "--sbatch" if field == "extra" else "--" + field.replace("_", "-")
        raise StudyError(f"{source}: {flag} (slurm.{field}): {e['msg'].removeprefix('Value error, ')} "
                         f"(got {e.get('input')!r})") from None
    return spec.model_copy(update={"slurm": s})


def submit_study(spec: StudySpec, *, output: Optional[str | Path] = None, dry_run: bool = False) -> tuple[list[slurm.Job], Path]:
    """Render the study's sbatch script(s) and, unless `dry_run`, check every input (preflight: all problems at once,
    before anything is queued), freeze the spec and submit."""
    from rich.console import Console

    if not dry_run:
        from study.planning.preflight import preflight, stop_on

        stop_on(preflight(spec, output), Console())
    p = plan(spec, output, allow_missing_weights=dry_run)
    if spec.slurm.mode == "array" and not dry_run:  # stage 1 over, stage 2 undecided (its collect job did not run)
        from study.running.stages import decide

        p = decide(p, Console()) or p
    out = p.out.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    frozen = out / "slurm" / f"{stamp}-study.yaml"
    if spec.slurm.mode == "ray":
        jobs = [slurm.render_ray(spec, frozen, out)]
    else:
        states = p.states()
        pending = [t.run_key for t in p.trials if states[t.run_key] != "finished"]
        if not pending:
            raise StudyError(f"{out}: all {len(p.trials)} trials are finished; nothing to submit "
                             f"(`study run` or `study report` rewrites the report)")
        keys = out / "slurm" / f"{stamp}-keys.txt"
        jobs = slurm.render_array(spec, frozen, out, keys, len(pending))
    if dry_run:
        return jobs, out
    text = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    start_folder(p, text)
    frozen.parent.mkdir(parents=True, exist_ok=True)
    frozen.write_text(text)
    if spec.slurm.mode == "array":
        keys.write_text("\n".join(pending) + "\n")
    return slurm.submit(jobs, out, stamp), out
