"""`study simulate`, `study pretrain`, `study calibrate`: data, encoder weights and λ for a target Ψ."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from study.cli.app import app, console, user_errors
from study.errors import StudyError


@app.command()
@user_errors
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
    from study.data.simulate_folder import simulate_folder
    from study.progress import progress_bar

    with progress_bar(console) as prog:
        task = prog.add_task(f"simulating dose {dose:g}", total=None)
        m = simulate_folder(source, output, dose_fraction=dose, photons=photons, electronic_noise=electronic_noise,
                            seed=seed, n_angles=angles, workers=workers, progress=lambda d, n: prog.update(task, completed=d, total=n))
    console.print(f"{m['slices']} slice pairs → {output}")


@app.command()
@user_errors
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

    from study.progress import progress_bar

    from study.encoders.vgg import INPUT_MODES, save_weights
    from study.encoders.pretrain import folder_images, natural_images
    from study.encoders.pretrain import pretrain as run_pretrain

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
    with progress_bar(console) as prog:
        task = prog.add_task(f"pretraining ({method}, {len(images)} images)", total=steps)
        sd, meta = run_pretrain(images, method=method, labels=labels if method == "supervised" else None,
                                n_classes=max(2, len(classes)), steps=steps, batch_size=batch_size, lr=lr, patch=patch,
                                seed=seed, input_mode=input_mode, progress=lambda d, n: prog.update(task, completed=d),
                                on_step=lambda step, loss, acc: history.append((step, loss, acc)))
    meta.update({"source": method, "dataset": str(dataset), "dataset_sha256": digest, "n_images": len(images),
                 "class_names": classes})
    wid = save_weights(sd, meta, output)
    meta["weights_id"] = wid
    if not no_tracking:
        from study.driver.tracking import log_pretraining

        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output.resolve().parent / 'mlflow.db'}"
        log_pretraining(uri, "pretrain", {"method": method, "dataset": str(dataset), "steps": steps,
                                          "batch_size": batch_size, "lr": lr, "patch": patch, "seed": seed,
                                          "input_mode": input_mode}, history, meta, output)
    console.print(f"{output}: weights id {wid[:16]}… · loss {meta['loss_first']:.3f} → {meta['loss_last']:.3f} · "
                  f"accuracy {meta['accuracy_last']:.2f} (chance {meta['chance_accuracy']:.2f}) · {meta['seconds']:.0f} s")


@app.command()
@user_errors
def calibrate(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: the spec's)"),
):
    """Print the λ each (feature level, pretraining) needs for each Ψ target (the spec's, or 0.5/0.9/0.95/0.99)."""
    from rich.table import Table

    from study.driver.calibrate import calibration_table
    from study.spec import load_spec
    from study.driver.plan import plan
    from study.driver.prepare import prepare

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


