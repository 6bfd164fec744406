"""`study run`: prepare data and encoders once, expand the grid, run what is not finished, write tables and report.

Running a study twice does nothing the second time; adding a λ value runs only the new trials.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from study.spec import StudySpec
from study.data.cache import data_id as make_data_id
from study.encoders.cache import encoder_key
from study.errors import StudyError
from study.driver.grid import Trial, expand
from study.store.results import ensure_study_id, read_record, trial_dir, trial_state, write_json, write_tables
from study.trial.train import TrialSpec


@dataclass
class Plan:
    spec: StudySpec
    out: Path
    trials: list[Trial]
    data_id: str
    encoder_keys: dict[str, str]

    def states(self) -> dict[str, str]:
        if not (self.out / "trials").is_dir():  # nothing started: no need to look for 10⁵ trial folders
            return {t.run_key: "pending" for t in self.trials}
        return {t.run_key: trial_state(trial_dir(self.out, t.run_key)) for t in self.trials}

    def rows(self) -> list[dict]:
        return [{"run_key": t.run_key, "configuration": t.configuration, "psi_target": None, **t.factors()}
                for t in self.trials]


def plan(spec: StudySpec, output: Optional[str | Path] = None, *, allow_missing_weights: bool = False) -> Plan:
    out = spec.output_dir(output)
    did = make_data_id(spec.data)
    f = spec.factors
    needs_encoder = (any(v > 0 for v in f.lam) or bool(f.psi_target)) and (
        not f.loss or any(spec.loss(name).perceptual for name in f.loss))
    used = sorted(set(spec.factors.pretraining)) if needs_encoder else []
    keys = {name: encoder_key(spec.encoder(name), did, allow_missing=allow_missing_weights) for name in used}
    return Plan(spec, out, expand(spec, did, keys), did, keys)


TABLE_ROWS = 60  # a dry run of a huge grid prints its head and tail, not 10⁵ rows


def print_table(p: Plan, console: Console) -> None:
    states = p.states()
    table = Table(title=f"study '{escape(p.spec.name)}' → {escape(str(p.out))}")
    # the configuration label names every factor (loss, feature level, pretraining, λ/Ψ); it wraps, never cut
    for col in ("#", "configuration", "seed", "run_key", "state"):
        table.add_column(col, no_wrap=col in ("#", "run_key"), overflow="fold")
    n = len(p.trials)
    shown = range(n) if n <= TABLE_ROWS else [*range(TABLE_ROWS - 10), None, *range(n - 10, n)]
    for i in shown:
        if i is None:
            table.add_row("…", f"{n - TABLE_ROWS:,} more trials", "", "", "")
            continue
        t = p.trials[i]
        table.add_row(str(i), escape(t.configuration), str(t.seed), t.run_key, states[t.run_key])
    console.print(table)
    counts = {s: list(states.values()).count(s) for s in ("finished", "running", "failed", "pending")}
    console.print(f"{len(p.trials)} trials ({len(set(t.configuration for t in p.trials))} configurations × "
                  f"{len(p.spec.factors.seed)} seeds): " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _trial_specs(p: Plan, data, encoders: dict) -> list[TrialSpec]:
    return [trial_spec(p, t, data, encoders) for t in p.trials]


def trial_spec(p: Plan, t: Trial, data, encoders: dict) -> TrialSpec:
    """The pure-function input of one trial: everything `run_trial` needs, paths absolute (Ray workers)."""
    s = p.spec
    enc_path, enc_sha = encoders.get(t.pretraining, (None, None))
    return TrialSpec(
            run_key=t.run_key, study=s.name, configuration=t.configuration, feature_level=t.feature_level,
            pretraining=t.pretraining, lam=t.lam, psi_target=t.psi_target, seed=t.seed, model=s.model.model_dump(),
            training=s.training.model_dump(), data_path=str(data.path.resolve()), data_id=p.data_id,
            data_sha256=data.sha256, window=s.window.model_dump(), hu_range=(s.data.hu_min, s.data.hu_max),
            out_dir=str(trial_dir(p.out, t.run_key).resolve()),
            encoder_path=str(Path(enc_path).resolve()) if enc_path else None,
            encoder_id=p.encoder_keys.get(t.pretraining), encoder_sha256=enc_sha,
            encoder_input=_input_mode(s, t.pretraining) if not t.is_baseline else "none",
            example_images=s.tracking.example_images, gpu_fraction=s.resources.gpu, loss=t.loss,
            loss_spec=s.loss(t.loss).model_dump() if t.loss is not None else None, metrics=list(s.metrics))


def _input_mode(spec: StudySpec, pretraining: str) -> str:
    from study.encoders.vgg import resolve_input_mode

    enc = spec.encoder(pretraining)
    return resolve_input_mode(enc.input, enc.source)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


def prepare(p: Plan, console: Console):
    """Data and encoder weights, each made once per study (cached in the results folder)."""
    from study.data.cache import prepare as prepare_data
    from study.encoders.cache import materialise

    from study.store.locks import file_lock

    # one preparer at a time per results folder (SLURM array tasks start together); the others then find the cache
    with file_lock(p.out / ".prepare.lock"), _progress(console) as prog:
        task = prog.add_task(f"data: {p.spec.data.source} pairs", total=None)
        data = prepare_data(p.spec.data, p.out / "data", progress=lambda d, n: prog.update(task, completed=d, total=n))
        _complete(prog, task)
        encoders = {}
        for name, key in p.encoder_keys.items():
            enc = p.spec.encoder(name)
            task = prog.add_task(f"encoder {name} ({enc.source})", total=None)
            images = None
            if enc.source in ("rotnet", "supervised") and enc.dataset == "study-ct":
                images = _study_ct_images(data, p.spec.data)
            encoders[name] = materialise(name, enc, key, p.out / "encoders", images,
                                         progress=lambda d, n, t=task: prog.update(t, completed=d, total=n))
            _complete(prog, task)
    return data, encoders


def _study_ct_images(data, spec_data) -> list:
    """The study's full-dose training slices (≤ 256, evenly spaced) and the real test slices, in [0, 1]."""
    import numpy as np

    from study.data.ct import hu_to_unit

    fd = data.load("train")[1]
    keep = np.unique(np.linspace(0, len(fd) - 1, min(len(fd), 256)).astype(int))
    images = [np.clip(hu_to_unit(np.asarray(fd[i]), spec_data.hu_min, spec_data.hu_max), 0, 1) for i in keep]
    if (data.path / "real_fd.npy").is_file():
        images += [np.clip(hu_to_unit(np.asarray(x), spec_data.hu_min, spec_data.hu_max), 0, 1)
                   for x in data.load("real")[1]]
    return images


def _complete(prog: Progress, task) -> None:
    total = prog.tasks[task].total or 1
    prog.update(task, total=total, completed=total)


def start_folder(p: Plan, spec_text: Optional[str] = None) -> None:
    """The results folder of a started study: its spec and grid (what `study status` and `--resume` read)."""
    p.out.mkdir(parents=True, exist_ok=True)
    ensure_study_id(p.out, p.spec.name)
    (p.out / "study.yaml").write_text(spec_text or yaml.safe_dump(p.spec.model_dump(mode="json"), sort_keys=False))
    write_json(p.out / "grid.json", p.rows())


def run_study(spec: StudySpec, *, output=None, backend: Optional[str] = None, max_concurrent: Optional[int] = None,
              resume: bool = False, dry_run: bool = False, console: Optional[Console] = None,
              spec_text: Optional[str] = None, write_report: bool = True, run_trials: bool = True,
              wait: bool = False) -> Plan:
    """Run what is not finished, then tables, MLflow and report. `run_trials=False` only collects (the last job
    of a SLURM array): tables, MLflow runs (one writer) and the report from the trial folders.

    One driver per results folder: a second one exits naming the holder (host, pid), or with `wait` waits for it."""
    from study.store.locks import driver_lock

    console = console or Console()
    p = plan(spec, output, allow_missing_weights=dry_run)
    if dry_run:
        print_table(p, console)
        return p
    if spec.search and (backend or spec.backend) != "ray":
        raise StudyError("search: the Optuna refinement runs through Ray Tune; use backend: ray")
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
            and _tracking_settled(p)):
        console.print(f"[green]all {len(p.trials)} trials already finished[/green] — nothing to run ({p.out})")
        return p

    clock = {"started": time.time()}
    data, encoders = prepare(p, console) if (todo_keys or (spec.search and run_trials)) else (None, None)
    clock["prepared"] = time.time()
    tracker = _tracker(p)
    specs = _trial_specs(p, data, encoders) if todo_keys else []
    todo = [s for s in specs if s.run_key in todo_keys]
    opts = Options(cpu=spec.resources.cpu, gpu=spec.resources.gpu, max_concurrent=max_concurrent or spec.max_concurrent,
                   storage=str(p.out / "ray"), retries=spec.resources.retries)
    with _progress(console) as prog:
        live = _Live(p, todo, tracker, prog, console)
        clock["trials_started"] = time.time()
        get_backend(backend or spec.backend).run(todo, live.events(), opts)
        clock["trials_ended"] = time.time()

    if spec.search and run_trials:
        from study.driver.refine import refine

        table = refine(p, data, encoders)
        console.print(f"refinement: {len(table)} Optuna trials in {p.out / 'search.parquet'}")
    names = {t.run_key: f"{t.configuration} · seed {t.seed}" for t in p.trials}
    if tracker:  # trials whose record exists but whose run was not closed (e.g. the driver was killed)
        for t in p.trials:
            rec = read_record(trial_dir(p.out, t.run_key))
            if rec is not None:
                tracker.trial_run(t.run_key, names[t.run_key])
                tracker.finish(t.run_key, rec, trial_dir(p.out, t.run_key))
    trials_df, _ = write_tables(p.out, p.rows())
    if write_report:
        from analysis.report import write_report

        clock["report_started"] = time.time()
        report_dir = write_report(p.out)
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


class _Live:
    """The driver's view of running trials: the progress line and the MLflow runs, fed by the backend's events.
    Counts are sets of run keys, so a trial that the backend starts again (a retry) is counted once."""

    def __init__(self, p: Plan, todo: list[TrialSpec], tracker, prog: Progress, console: Console):
        self.p, self.by_key, self.tracker, self.prog, self.console = p, {s.run_key: s for s in todo}, tracker, prog, console
        self.names = {t.run_key: f"{t.configuration} · seed {t.seed}" for t in p.trials}
        self.task = prog.add_task("trials", total=len(todo))
        self.running, self.done, self.failed = set(), set(), set()
        self.describe()

    def events(self):
        from study.backends import Events

        return Events(self.on_start, self.on_epoch, self.on_done)

    def describe(self) -> None:
        self.prog.update(self.task, completed=len(self.done | self.failed),
                         description=f"trials: {len(self.done)} done · {len(self.running)} running · "
                                     f"{len(self.failed)} failed")

    def on_start(self, key: str) -> None:
        self.running.add(key)
        self.failed.discard(key)
        if self.tracker:
            self.tracker.trial_run(key, self.names.get(key, key), _params(self.by_key[key]), start=True)
        self.describe()

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


def _params(spec: TrialSpec) -> dict:
    from dataclasses import asdict

    from study.store.provenance import git_commit, package_versions

    d = asdict(spec)
    for k in ("out_dir", "data_path"):
        d.pop(k)
    return {**d, "git_commit": git_commit(), "versions": package_versions()}


def _tracking_settled(p: Plan) -> bool:
    """False while MLflow still shows this study's parent run as RUNNING (its driver was killed after the trials)."""
    if not p.spec.tracking.enabled:
        return True
    from study.driver.tracking import parent_status

    return parent_status(_tracking_uri(p), p.spec.tracking.experiment or p.spec.name, p.out) in ("FINISHED", "FAILED")


def _tracking_uri(p: Plan) -> str:
    from study.driver.tracking import default_uri

    return p.spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(p.out)


def run_one(spec: StudySpec, output, run_key: str, console: Console) -> dict:
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
    rec = execute(trial_spec(p, trial, data, encoders), retries=spec.resources.retries)
    console.print(f"trial {run_key} ({trial.configuration} · seed {trial.seed}): {rec['status']}"
                  + (f" — {rec['error']}" if rec.get("error") else ""))
    return rec


def _tracker(p: Plan):
    if not p.spec.tracking.enabled:
        return None
    from study.store.provenance import git_commit
    from study.driver.tracking import Tracker

    uri = _tracking_uri(p)
    params = {"spec": p.spec.model_dump(mode="json"), "git_commit": git_commit(), "n_trials": len(p.trials)}
    return Tracker(uri, p.spec.tracking.experiment or p.spec.name, p.spec.name, p.out, params)
