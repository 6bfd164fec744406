"""`study run`, `study report`, `study status`: running a study and reading where it stands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from study.cli.app import Backend, State, app, console, user_errors
from study.errors import StudyError


@app.command()
@user_errors
def run(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: results/<name>)"),
    backend: Optional[Backend] = typer.Option(None, help="where trials run (default: the spec's, ray)"),
    resume: bool = typer.Option(False, "--resume", help="continue a started study in the results folder"),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, help="trials at once"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the inputs, print the trials (by factor for a large "
                                 "grid), their count and an estimate of trial-hours and disk; run nothing"),
    all_rows: bool = typer.Option(False, "--all", help="with --dry-run: list every trial, also of a large grid"),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="run no trial: collect the trial folders into tables, MLflow and the report"),
    wait: bool = typer.Option(False, "--wait", help="if another driver is running this study, wait for it to end"),
    submit_next_stage: bool = typer.Option(False, "--submit-next-stage", help="with --report-only (the SLURM collect "
                                           "job of an adaptive study): once stage 1 is over, decide stage 2 and "
                                           "`study submit` its trials"),
):
    """Run every trial not yet finished, then write the report."""
    from study.interrupt import sigterm_exits
    from study.running.run import run_study
    from study.spec import load_spec

    spec = load_spec(study, check_paths=False)  # missing paths: run_study's preflight lists all of them at once
    with sigterm_exits():  # a job's SIGTERM still flushes MLflow and marks running trials KILLED
        p = run_study(spec, output=output, backend=backend.value if backend else None, max_concurrent=max_concurrent,
                      resume=resume, dry_run=dry_run, console=console, spec_text=study.read_text(),
                      run_trials=not report_only, wait=wait, all_rows=all_rows)
    if submit_next_stage and report_only and spec.adaptive:
        _submit_stage_two(spec, p)
    if not dry_run and any(s == "failed" for s in p.states().values()):
        raise typer.Exit(1)  # the report is written; a rerun retries the failed trials


def _submit_stage_two(spec, p) -> None:
    """Submit the stage-2 trials the collect job has just decided (none pending: nothing to submit)."""
    from study.planning.plan import plan
    from study.running.submit import submit_study

    p2 = plan(spec, p.out)
    states = p2.states()
    if any(states[k] != "finished" for k, stage in p2.stage.items() if stage == 2):
        jobs, _ = submit_study(spec, output=p.out)
        console.print("adaptive: stage 2 submitted: " + ", ".join(f"{j.name} {j.job_id}" for j in jobs))


@app.command()
@user_errors
def report(
    results_dir: Path = typer.Argument(..., help="results folder of `study run`"),
    metric: Optional[List[str]] = typer.Option(None, "--metric", help="metric(s) to report (default: all)"),
    power: bool = typer.Option(False, "--power", help="add test images needed for 80% power per comparison"),
    power_effect: Optional[float] = typer.Option(None, "--power-effect",
                                                 help="effect to detect, in metric units (default: the observed one)"),
    example_slice: Optional[List[str]] = typer.Option(
        None, "--example-slice", help="test image id to show in the side-by-side example figure (repeat for more): "
        "recomputed from each configuration's saved model, kept in RESULTS_DIR/examples/"),
):
    """(Re)write RESULTS_DIR/report/, from the trial folders as they are now (the tables are rebuilt first)."""
    from analysis.report import update_report
    from study.store.results import refresh_tables

    if not Path(results_dir).is_dir():
        raise StudyError(f"{results_dir}: no such results folder")
    refresh_tables(results_dir)
    if example_slice:
        from study.apply.examples import named_examples

        n = named_examples(results_dir, example_slice)
        console.print(f"example slices {', '.join(example_slice)}: recomputed with {n} configurations' models")
    out = update_report(results_dir, metric or None, power=power or power_effect is not None, power_effect=power_effect)
    console.print(f"report: {out / 'report.md'}")


@app.command()
@user_errors
def status(
    results_dir: Path = typer.Argument(..., help="results folder of `study run`"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    state: Optional[State] = typer.Option(None, "--state", help="list only the trials in this state (the counts, "
                                                                "trial time and ETA stay the study's)"),
):
    """Finished / running / failed / pending per trial, failed trials with their errors, trial-hours, ETA."""
    from rich.table import Table

    from study.running.status import eta_text, summarize, used_text

    info = summarize(results_dir)
    if state is not None:
        info["trials"] = [r for r in info["trials"] if r["state"] == state.value]
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    rows, counts = info["trials"], info["counts"]
    table = Table(title=str(results_dir))
    for col in ("run_key", "configuration", "seed", "state", "wall_s", "attempts", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        state = r["state"] + (f" on {r['host']} for {r['running_s']:.0f} s" if r["state"] == "running" else "")
        table.add_row(r["run_key"], r["configuration"], str(r["seed"]), state,
                      f"{r['wall_s']:.0f}" if r["wall_s"] else "", str(r["attempts"] or ""), (r["error"] or "")[:200])
    console.print(table)
    for r in rows:
        if r["state"] == "failed":
            console.print(f"[red]failed[/red] {r['run_key']} ({r['configuration']} · seed {r['seed']}): {r['error']}",
                          highlight=False)
    console.print(", ".join(f"{v} {k}" for k, v in counts.items())
                  + f"; {used_text(info['trial_hours'])}; {eta_text(info['eta_s'])}")


