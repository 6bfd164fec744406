"""`study` command line (typer + rich). User errors end in one line naming the culprit and exit code 2."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from study.errors import StudyError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Ablation studies of perceptual-loss design for low-dose CT denoising.")
console = Console()
err_console = Console(stderr=True)


def _user_errors(fn):
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


@app.command()
@_user_errors
def run(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: results/<name>)"),
    backend: Optional[str] = typer.Option(None, help="ray | local (default: the spec's, ray)"),
    resume: bool = typer.Option(False, "--resume", help="continue a started study in the results folder"),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, help="trials at once"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the trial table and count; run nothing"),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="run no trial: collect the trial folders into tables, MLflow and the report"),
    wait: bool = typer.Option(False, "--wait", help="if another driver is running this study, wait for it to end"),
):
    """Run every trial not yet finished, then write the report."""
    from study.config import load_spec
    from study.runner import run_study

    spec = load_spec(study, check_paths=not dry_run)
    if backend is not None and backend not in ("ray", "local"):
        raise StudyError(f"--backend: unknown backend {backend!r}; use 'ray' or 'local'")
    p = run_study(spec, output=output, backend=backend, max_concurrent=max_concurrent, resume=resume, dry_run=dry_run,
                  console=console, spec_text=study.read_text(), run_trials=not report_only,
                  wait=wait)
    if not dry_run and any(s == "failed" for s in p.states().values()):
        raise typer.Exit(1)  # the report is written; a rerun retries the failed trials


@app.command()
@_user_errors
def report(
    results_dir: Path = typer.Argument(..., help="results folder of `study run`"),
    metric: Optional[List[str]] = typer.Option(None, "--metric", help="metric(s) to report (default: all)"),
    power: bool = typer.Option(False, "--power", help="add test images needed for 80%% power per comparison"),
    power_effect: Optional[float] = typer.Option(None, "--power-effect",
                                                 help="effect to detect, in metric units (default: the observed one)"),
):
    """(Re)write RESULTS_DIR/report/, from the trial folders as they are now (the tables are rebuilt first)."""
    from analysis.report import write_report
    from study.results import refresh_tables

    if not Path(results_dir).is_dir():
        raise StudyError(f"{results_dir}: no such results folder")
    refresh_tables(results_dir)
    try:
        out = write_report(results_dir, metric or None, power=power or power_effect is not None, power_effect=power_effect)
    except (FileNotFoundError, KeyError) as err:
        raise StudyError(str(err).strip("'\"")) from None
    console.print(f"report: {out / 'report.md'}")


@app.command()
@_user_errors
def status(
    results_dir: Path = typer.Argument(..., help="results folder of `study run`"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Finished / running / failed / pending per trial, failed trials with their errors, trial-hours, ETA."""
    from rich.table import Table

    from study.status import eta_text, summarize, used_text

    info = summarize(results_dir)
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


@app.command()
@_user_errors
def simulate(
    source: Path = typer.Argument(..., help="full-dose DICOM folder (a series, or a tree of series)"),
    output: Path = typer.Option(..., "--output", "-o", help="new folder for full.npy, low.npy, meta.json, manifest.json"),
    dose: float = typer.Option(0.25, "--dose", help="dose fraction of the low-dose scan"),
    photons: float = typer.Option(1e5, "--photons", help="incident photons per ray of the full-dose scan (I0)"),
    electronic_noise: float = typer.Option(10.0, "--electronic-noise", help="Gaussian electronic noise std (counts)"),
    seed: int = typer.Option(0, "--seed"),
    angles: Optional[int] = typer.Option(None, "--angles", help="projection angles (default 1.5 × size)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="processes (default: all cores)"),
):
    """Simulate low-dose pairs from full-dose CT (projection-domain Poisson + electronic noise, FBP)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from study.simulate_cli import simulate_folder

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as prog:
        task = prog.add_task(f"simulating dose {dose:g}", total=None)
        m = simulate_folder(source, output, dose_fraction=dose, photons=photons, electronic_noise=electronic_noise,
                            seed=seed, n_angles=angles, workers=workers, progress=lambda d, n: prog.update(task, completed=d, total=n))
    console.print(f"{m['slices']} slice pairs → {output}")


@app.command()
@_user_errors
def pretrain(
    dataset: str = typer.Argument(..., help="a folder of images (<class>/<image> for supervised), 'natural' or a "
                                            "folder of CT DICOM/PNG slices"),
    output: Path = typer.Option(..., "--output", "-o", help="weights file to write (.pt)"),
    method: str = typer.Option("rotnet", "--method", help="rotnet (self-supervised) | supervised (class folders)"),
    steps: int = typer.Option(200, "--steps", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    lr: float = typer.Option(1e-4, "--lr"),
    patch: int = typer.Option(64, "--patch", min=16),
    seed: int = typer.Option(0, "--seed"),
    input_mode: str = typer.Option("x255", "--input", help="encoder input mapping: x255 | unit | imagenet"),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri",
                                               help="MLflow store (default: sqlite:///<output folder>/mlflow.db)"),
    no_tracking: bool = typer.Option(False, "--no-tracking"),
):
    """Pretrain a VGG-19 encoder (e.g. the "medical" one) and write a weights file with its id and provenance."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from study.encoders import INPUT_MODES, save_weights
    from study.pretrain import folder_images, natural_images
    from study.pretrain import pretrain as run_pretrain

    if method not in ("rotnet", "supervised"):
        raise StudyError(f"--method: unknown method {method!r}; use rotnet or supervised")
    if input_mode not in INPUT_MODES:
        raise StudyError(f"--input: unknown mode {input_mode!r}; use one of {', '.join(INPUT_MODES)}")
    if dataset == "natural":
        if method == "supervised":
            raise StudyError("dataset 'natural' has no labels: use --method rotnet")
        images, digest = natural_images()
        labels, classes = None, []
    else:
        images, labels, classes, digest = folder_images(Path(dataset), labelled=method == "supervised")
    history: list = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as prog:
        task = prog.add_task(f"pretraining ({method}, {len(images)} images)", total=steps)
        sd, meta = run_pretrain(images, method=method, labels=labels if method == "supervised" else None,
                                n_classes=max(2, len(classes)), steps=steps, batch_size=batch_size, lr=lr, patch=patch,
                                seed=seed, input_mode=input_mode, progress=lambda d, n: prog.update(task, completed=d),
                                on_step=lambda step, loss, acc: history.append((step, loss, acc)))
    meta.pop("_head", None)
    meta.update({"source": method, "dataset": str(dataset), "dataset_sha256": digest, "n_images": len(images),
                 "class_names": classes})
    wid = save_weights(sd, meta, output)
    meta["weights_id"] = wid
    if not no_tracking:
        from study.tracking import log_pretraining

        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output.resolve().parent / 'mlflow.db'}"
        log_pretraining(uri, "pretrain", {"method": method, "dataset": str(dataset), "steps": steps,
                                          "batch_size": batch_size, "lr": lr, "patch": patch, "seed": seed,
                                          "input_mode": input_mode}, history, meta, output)
    console.print(f"{output}: weights id {wid[:16]}… · loss {meta['loss_first']:.3f} → {meta['loss_last']:.3f} · "
                  f"accuracy {meta['accuracy_last']:.2f} (chance {meta['chance_accuracy']:.2f}) · {meta['seconds']:.0f} s")


@app.command()
@_user_errors
def calibrate(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: the spec's)"),
):
    """Print the λ each (feature level, pretraining) needs for each Ψ target (the spec's, or 0.5/0.9/0.95/0.99)."""
    from rich.table import Table

    from study.calibrate import calibration_table
    from study.config import load_spec
    from study.runner import plan, prepare

    spec = load_spec(study)
    p = plan(spec, output)
    if not p.encoder_keys:
        raise StudyError(f"{study}: no encoder is used (all λ = 0 and no psi_target): nothing to calibrate")
    data, encoders = prepare(p, console)
    table = calibration_table(spec, data, encoders)
    p.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(p.out / "calibration.csv", index=False)
    view = Table(title=f"λ for a target Ψ — {spec.name} (initial network, {spec.training.calibration_steps} warm-up steps)")
    for col in ("feature_level", "pretraining", "psi_target", "lam", "pixel_loss", "perceptual_loss", "psi_at_lam_0.1"):
        view.add_column(col)
    for r in table.to_dict("records"):
        view.add_row(r["feature_level"], r["pretraining"], f"{r['psi_target']:g}", f"{r['lam']:.3g}",
                     f"{r['pixel_loss']:.3g}", f"{r['perceptual_loss']:.3g}", f"{r['psi_at_lam_0.1']:.4f}")
    console.print(view)
    console.print(f"written: {p.out / 'calibration.csv'}")


from study import cli_cluster  # noqa: E402,F401 - registers submit, run-trial, mlflow-server


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except StudyError as err:  # pragma: no cover - commands catch their own
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # `python -m study.cli`: run the imported module's app, which has every command
    from study.cli import main as _main

    _main()
