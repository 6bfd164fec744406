"""`study simulate`, `study pretrain`, `study calibrate`: data, encoder weights and λ for a target Ψ."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from study.cli.app import InputMode, PretrainMethod, app, console, user_errors
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
    method: PretrainMethod = typer.Option(PretrainMethod.rotnet, "--method",
                                          help="rotnet (self-supervised) or supervised (class folders)"),
    steps: int = typer.Option(200, "--steps", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    lr: float = typer.Option(1e-4, "--lr"),
    patch: int = typer.Option(64, "--patch", min=16),
    seed: int = typer.Option(0, "--seed"),
    input_mode: InputMode = typer.Option(InputMode.x255, "--input", help="encoder input mapping"),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri",
                                               help="MLflow store (default: sqlite:///<output folder>/mlflow.db)"),
    no_tracking: bool = typer.Option(False, "--no-tracking"),
):
    """Pretrain a VGG-19 encoder (e.g. the "medical" one) and write a weights file with its id and provenance."""
    import os

    from study.progress import progress_bar

    from study.encoders.vgg import save_weights
    from study.encoders.pretrain import folder_images, natural_images
    from study.encoders.pretrain import pretrain as run_pretrain

    method, input_mode = method.value, input_mode.value
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
        from study.tracking.pretrain import log_pretraining

        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output.resolve().parent / 'mlflow.db'}"
        log_pretraining(uri, "pretrain", {"method": method, "dataset": str(dataset), "steps": steps,
                                          "batch_size": batch_size, "lr": lr, "patch": patch, "seed": seed,
                                          "input_mode": input_mode}, history, meta, output)
    console.print(f"{output}: weights id {wid[:16]}… · loss {meta['loss_first']:.3f} → {meta['loss_last']:.3f} · "
                  f"accuracy {meta['accuracy_last']:.2f} (chance {meta['chance_accuracy']:.2f}) · {meta['seconds']:.0f} s")


@app.command()
@user_errors
def calibrate(
    study: Path = typer.Argument(..., help="study spec (YAML): λ measured on the initial network; or a finished "
                                           "results folder: λ from its fixed-λ trials' converged magnitudes"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results folder (default: the spec's)"),
    psi: Optional[List[float]] = typer.Option(None, "--psi", help="Ψ target(s) (default: the study's, or "
                                                                  "0.5/0.9/0.95/0.99)"),
):
    """Print the λ each (feature level, pretraining) needs for each Ψ target."""
    from rich.table import Table

    if study.is_dir():
        return _calibrate_converged(study, psi)

    from study.planning.calibrate import calibration_table
    from study.spec import load_spec
    from study.planning.plan import plan
    from study.running.prepare import prepare

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


DEFAULT_TARGETS = (0.5, 0.9, 0.95, 0.99)


def _calibrate_converged(results_dir: Path, targets: Optional[List[float]]) -> None:
    """`study calibrate RESULTS_DIR`: λ = Ψ/(1 − Ψ) · L_MSE / L_P from the last-epoch magnitudes of the folder's
    finished fixed-λ trials (paper 1's calibration), per (feature level, pretraining)."""
    import pandas as pd
    import yaml
    from rich.table import Table

    from analysis.psi_calibration import converged_lams

    path = results_dir / "trials.parquet"
    try:
        trials = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - missing or damaged: the same user error
        raise StudyError(f"{path}: not a readable results table ({type(err).__name__}); is {results_dir} a results "
                         f"folder of `study run`?") from None
    if not targets and (results_dir / "study.yaml").is_file():
        targets = (yaml.safe_load((results_dir / "study.yaml").read_text()) or {}).get("factors", {}).get("psi_target")
    table = converged_lams(trials, list(targets or DEFAULT_TARGETS))
    if table.empty:
        raise StudyError(f"{results_dir}: no finished fixed-λ trial with a perceptual term: nothing to calibrate from")
    table.to_csv(results_dir / "calibration_converged.csv", index=False)
    view = Table(title=f"λ for a target Ψ — {results_dir.name} (converged magnitudes of finished fixed-λ trials)")
    for col in ("feature_level", "pretraining", "psi_target", "lam", "pixel_loss", "perceptual_loss", "from λ", "trials"):
        view.add_column(col)
    for r in table.to_dict("records"):
        view.add_row(r["feature_level"], r["pretraining"], f"{r['psi_target']:g}", f"{r['lam_converged']:.3g}",
                     f"{r['pixel_loss']:.3g}", f"{r['perceptual_loss']:.3g}", r["from_lam"], str(r["n_trials"]))
    console.print(view)
    console.print(f"written: {results_dir / 'calibration_converged.csv'}")


@app.command("convert-weights")
@user_errors
def convert_weights(
    source: Path = typer.Argument(..., help="Keras VGG-19 weights: a Keras 2 .h5 (save_weights, or Keras's own "
                                            "vgg19_weights_tf_dim_ordering_tf_kernels[_notop].h5), a Keras 3 "
                                            ".weights.h5, or a .keras archive; with or without the top (fc layers "
                                            "are ignored)"),
    output: Path = typer.Option(..., "--output", "-o", help="torchvision-format weights file to write (.pth)"),
    bgr: bool = typer.Option(True, "--bgr/--no-bgr", help="the Keras weights expect BGR input (Keras ImageNet "
                                                          "weights do: Caffe conversion): reverse the first "
                                                          "convolution's input channels so that the result takes "
                                                          "RGB like torchvision's. --no-bgr for weights trained on "
                                                          "RGB (or on gray repeated to 3 channels)"),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="convert a file that lacks some VGG-19 convolutions. In TF, "
                                            "load_weights(ckpt).expect_partial() silences the warnings about "
                                            "checkpoint values the model does not use (optimizer state, a "
                                            "classifier head: always ignored here too), and model layers that "
                                            "the checkpoint lacks silently keep their fresh initialisation. Here "
                                            "such a missing layer is an error naming it unless --allow-partial: "
                                            "then it gets what a new Keras VGG-19 holds (Glorot-uniform kernel "
                                            "under --seed, zero bias) and is listed in the file's meta"),
    seed: int = typer.Option(0, "--seed", help="seed of the initialisation of missing layers (--allow-partial)"),
):
    """Convert Keras VGG-19 weights (e.g. paper 1's) into a weights file the study's encoders load.

    The 16 convolutions block1_conv1 … block5_conv4 become torchvision vgg19().features (H×W×in×out → out×in×H×W).
    The output records the source file, its sha256, the layout (keras2/keras3), the layers, the BGR choice, the id.
    In a study spec: an encoder with `source: file` and `path: <output>`.
    Keras ImageNet weights take 0–255 input minus the Caffe mean pixel: the nearest encoder input is x255 (the
    default for a file), which does not subtract the mean.

    From a TensorFlow checkpoint (vgg19.ckpt.index + vgg19.ckpt.data-*), first write an .h5 in TensorFlow:
    model = tf.keras.applications.VGG19(weights=None, include_top=False)
    model.load_weights("vgg19.ckpt").expect_partial()
    model.save_weights("vgg19.h5")   (Keras 3: "vgg19.weights.h5"; both are read here)
    """
    from study.encoders.keras import convert_keras_weights

    meta = convert_keras_weights(source, output, bgr=bgr, allow_partial=allow_partial, seed=seed)
    note = f" · freshly initialised: {', '.join(meta['layers_initialised'])}" if meta["layers_initialised"] else ""
    console.print(f"{output}: {len(meta['layers_converted'])} VGG-19 convolutions from {meta['keras_layout']} file "
                  f"{source.name} (BGR→RGB {'on' if bgr else 'off'}){note} · weights id {meta['weights_id'][:16]}…",
                  highlight=False, soft_wrap=True)
