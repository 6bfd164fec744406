"""`study run`: prepare data and encoders once, run what is not finished, write tables, MLflow runs and the report.

Running a study twice does nothing the second time; adding a λ value runs only the new trials. One driver per
results folder (`study.store.locks.driver_lock`).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator, Optional

from rich.console import Console

from study.errors import StudyError
from study.planning.plan import Plan, plan, print_table, trial_spec, trial_specs
from study.planning.stages import STAGES_FILE
from study.progress import progress_bar
from study.running.live import Live
from study.running.prepare import prepare, start_folder
from study.running.stages import decide, stage_pending
from study.spec import StudySpec
from study.store.results import read_record, trial_dir, write_json, write_tables
from study.trial.train import TrialSpec


def run_study(spec: StudySpec, *, output=None, backend: Optional[str] = None, max_concurrent: Optional[int] = None,
              resume: bool = False, dry_run: bool = False, console: Optional[Console] = None,
              spec_text: Optional[str] = None, write_report: bool = True, run_trials: bool = True,
              wait: bool = False, all_rows: bool = False) -> Plan:
    """Run what is not finished, then tables, MLflow and report. `run_trials=False` only collects (the last job
    of a SLURM array): tables, MLflow runs (one writer) and the report from the trial folders.

    One driver per results folder: a second one exits naming the holder (host, pid), or with `wait` waits for it."""
    from study.planning.preflight import end_dry_run, metric_notes, preflight, stop_on
    from study.store.locks import driver_lock

    console = console or Console()
    problems = preflight(spec, output)  # every missing input at once, before anything is written
    for note in metric_notes(spec):
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    if not dry_run:
        stop_on(problems, console)
    p = plan(spec, output, allow_missing_weights=dry_run)
    if dry_run:
        states = print_table(p, console, all_rows=all_rows)  # every trial, or by factor for a large grid
        end_dry_run(p, console, problems, states)  # the estimate, then the problems (exit code 2)
        return p
    if spec.search and (backend or spec.backend) != "ray":
        raise StudyError("search: the Optuna refinement runs through Ray Tune; use backend: ray")
    if spec.search and run_trials:  # the refinement needs the `search` extra: say so before the grid runs
        from study.running.refine import require_optuna

        require_optuna()
    if resume and not (p.out / "grid.json").is_file():
        raise StudyError(f"--resume: {p.out} holds no started study (no grid.json); run without --resume first")
    with driver_lock(p.out, wait=wait, on_wait=lambda who: console.print(f"waiting for the driver {who} …")):
        return _run_locked(p, backend, max_concurrent, console, spec_text, write_report, run_trials)


def _run_locked(p: Plan, backend, max_concurrent, console: Console, spec_text, write_report: bool,
                run_trials: bool) -> Plan:
    from study.backends import Options, get_backend

    spec = p.spec
    start_folder(p, spec_text)
    states = p.states()
    todo_keys = {k for k, s in states.items() if s != "finished"} if run_trials else set()
    if (run_trials and not todo_keys and not spec.search and (p.out / "report" / "report.md").is_file()
            and _tracking_settled(p) and not stage_pending(p)):
        console.print(f"[green]all {len(p.trials)} trials already finished[/green] — nothing to run ({p.out})")
        return p

    clock = {"started": time.time()}
    data, encoders = prepare(p, console) if (todo_keys or (spec.search and run_trials)) else (None, None)
    clock["prepared"] = time.time()
    tracker = study_tracker(p)
    specs = trial_specs(p, data, encoders) if todo_keys else []
    todo = [s for s in specs if s.run_key in todo_keys]
    opts = Options(cpu=spec.resources.cpu, gpu=spec.resources.gpu, max_concurrent=max_concurrent or spec.max_concurrent,
                   storage=str(p.out / "ray"), retries=spec.resources.retries)
    runner = get_backend(backend or spec.backend)
    clock["trials_started"] = time.time()
    if todo or not spec.adaptive:
        with _live(p, todo, tracker, console) as live:
            _run_phases(p, todo, runner, opts, live, data, encoders)
    if spec.adaptive and run_trials:
        p = _stage_two(p, runner, opts, tracker, console, spec_text, (data, encoders))
    elif spec.adaptive:  # collecting (SLURM): stage 2 decided and recorded here, its trials submitted by the CLI
        p = _decided(p, console, spec_text)
    clock["trials_ended"] = time.time()

    if spec.search and run_trials:
        from study.running.refine import refine

        with _live(p, [], tracker, console, label="refinement") as live:
            table = refine(p, data, encoders, live)
        console.print(f"refinement: {len(table)} Optuna trials in {p.out / 'search.parquet'}")
    if tracker:
        _close_runs(p, tracker)
    trials_df, _ = write_tables(p.out, p.rows())
    if write_report:
        from analysis.report import update_report
        from study.apply.examples import refresh

        refresh(p.out, console)  # example slices named with `study report --example-slice`, for trials added since

        clock["report_started"] = time.time()
        report_dir = update_report(p.out)
        clock["report_ended"] = time.time()
        console.print(f"report: {report_dir / 'report.md'}")
        if tracker:
            tracker.log_report(report_dir)
    if tracker:
        tracker.close(bool((trials_df["status"] == "finished").all()))
    n_failed = int((trials_df["status"] == "failed").sum())
    clock["ended"] = time.time()
    write_json(p.out / "timings.json", {"n_trials_run": len(todo), "slots": opts.max_concurrent, **clock})
    console.print(f"{int((trials_df['status'] == 'finished').sum())}/{len(trials_df)} trials finished, {n_failed} failed → {p.out}")
    return p


def _decided(p: Plan, console: Console, spec_text) -> Plan:
    """The plan with stage 2 once stage 1 is over (decided and recorded now if it was not; grid.json rewritten)."""
    p2 = decide(p, console)
    if p2 is None:
        return p
    start_folder(p2, spec_text)  # grid.json with the stage-2 trials
    return p2


def _stage_two(p: Plan, runner, opts, tracker, console: Console, spec_text, prepared) -> Plan:
    """An adaptive study once stage 1 is over: stage 2 decided and recorded (study.running.stages), its grid
    written, its trials run; the plan of both stages (as it was when stage 2 had been decided already)."""
    p2 = _decided(p, console, spec_text)
    if p2 is p:
        return p
    states = p2.states()
    keys = {k for k, st in p2.stage.items() if st == 2 and states[k] != "finished"}
    if not keys:
        return p2
    data, encoders = prepared if prepared[0] is not None else prepare(p2, console)
    todo = [trial_spec(p2, t, data, encoders) for t in p2.trials if t.run_key in keys]
    with _live(p2, todo, tracker, console, label="stage 2") as live:
        _run_phases(p2, todo, runner, opts, live, data, encoders)
    return p2


@contextmanager
def _live(p: Plan, todo: list[TrialSpec], tracker, console: Console, label: str = "trials") -> Iterator[Live]:
    """A progress bar and the `Live` view fed by the backend's events, MLflow written on a writer thread; however the
    run ends, the heartbeat stops and every queued MLflow write is applied (interrupted: running trials KILLED)."""
    from study.tracking.writer import TrackingWriter

    writer = TrackingWriter(tracker, warn=lambda text: console.print(text, markup=False)) if tracker else None
    with progress_bar(console) as prog:
        live = Live(p, todo, writer, prog, console, label=label, params=_params)
        try:
            yield live
        except (KeyboardInterrupt, SystemExit):
            console.print("interrupted: writing MLflow's queued updates, running trials marked KILLED", markup=False)
            live.close(interrupted=True)
            raise
        except BaseException:
            live.close()
            raise
        live.close()


def _close_runs(p: Plan, tracker) -> None:
    """MLflow runs of trials whose record exists but whose run was not closed (e.g. the driver was killed); an
    adaptive study's runs tagged with their stage, its stage record an artifact of the parent run."""
    for t in p.trials:
        rec = read_record(trial_dir(p.out, t.run_key))
        if rec is not None:
            tracker.trial_run(t.run_key, f"{t.configuration} · seed {t.seed}")
            tracker.finish(t.run_key, rec, trial_dir(p.out, t.run_key))
            if p.stage:
                tracker.tag_run(t.run_key, "stage", str(p.stage[t.run_key]))
    tracker.log_file(p.out / STAGES_FILE)


def _run_phases(p: Plan, todo: list[TrialSpec], backend, opts, live: "Live", data, encoders) -> None:
    """Run the trials; Ψ-target trials calibrated from this study's own fixed-λ trials (`psi_pilot: self`) in a
    second phase, once those have finished (a pilot that failed fails its Ψ trials, with the reason)."""
    from study.trial.execute import record_failure

    later_keys = {t.run_key for t in p.trials if t.pilot_keys}
    backend.run([s for s in todo if s.run_key not in later_keys], live.events(), opts)
    pending = {s.run_key for s in todo} & later_keys
    later = [trial_spec(p, t, data, encoders) for t in p.trials if t.run_key in pending]
    ready = [s for s in later if s.lam_converged is not None]
    for s in later:
        if s.lam_converged is None:
            reason = (f"psi_pilot: self: no finished fixed-λ trial of {s.feature_level} · {s.pretraining} "
                      f"to calibrate Ψ={s.psi_target:g} from")
            live.on_done(s.run_key, record_failure(s, reason) or {"status": "failed", "error": reason})
    if ready:
        live.by_key.update({s.run_key: s for s in ready})  # their MLflow params name the λ found
        backend.run(ready, live.events(), opts)


def _params(spec: TrialSpec) -> dict:
    from study.store.provenance import git_commit, package_versions

    d = spec.to_dict()
    for k in ("out_dir", "data_path"):
        d.pop(k)
    return {**d, "git_commit": git_commit(), "versions": package_versions()}


def _tracking_settled(p: Plan) -> bool:
    """False while MLflow still shows this study's parent run as RUNNING (its driver was killed after the trials)."""
    if not p.spec.tracking.enabled:
        return True
    from study.tracking.runs import parent_status

    return parent_status(_tracking_uri(p), p.spec.tracking.experiment or p.spec.name, p.out) in ("FINISHED", "FAILED")


def _tracking_uri(p: Plan) -> str:
    from study.tracking.conventions import default_uri

    return p.spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(p.out)


def run_one_trial(spec: StudySpec, output, run_key: str, console: Console) -> dict:
    """One trial of the study by run key (a SLURM array task): skipped if finished, else run (resumed)."""
    from study.trial.execute import execute

    p = plan(spec, output)
    trial = next((t for t in p.trials if t.run_key == run_key), None)
    if trial is None:
        raise StudyError(f"run key {run_key!r} is not in the grid of {spec.name!r} (was the spec changed?)")
    rec = read_record(trial_dir(p.out, run_key))
    if rec is not None and rec["status"] == "finished":
        console.print(f"trial {run_key} already finished: skipped")
        return rec
    data, encoders = prepare(p, console)
    ts = trial_spec(p, trial, data, encoders)
    if trial.pilot_keys and ts.lam_converged is None:
        raise StudyError(f"trial {run_key} (Ψ={trial.psi_target:g}, psi_pilot: self) needs its fixed-λ pilot trials "
                         f"finished first ({', '.join(trial.pilot_keys)}); run them, then this one")
    rec = execute(ts, retries=spec.resources.retries)
    console.print(f"trial {run_key} ({trial.configuration} · seed {trial.seed}): {rec['status']}"
                  + (f" — {rec['error']}" if rec.get("error") else ""))
    return rec


def study_tracker(p: Plan):
    """The study's MLflow Tracker (its parent run, params, git commit), or None when tracking is off."""
    if not p.spec.tracking.enabled:
        return None
    from study.store.provenance import git_commit
    from study.tracking.runs import Tracker

    uri = _tracking_uri(p)
    params = {"spec": p.spec.model_dump(mode="json"), "git_commit": git_commit(), "n_trials": len(p.trials)}
    return Tracker(uri, p.spec.tracking.experiment or p.spec.name, p.spec.name, p.out, params)
