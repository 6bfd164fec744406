"""`study denoise`: apply a finished trial's network to a scan (a DICOM series or file, or `.npy` slices)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from study.cli.app import app, console, user_errors


class Device(str, Enum):
    """Where `study denoise` runs the network."""
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
@user_errors
def denoise(
    results_dir: Path = typer.Argument(..., metavar="RESULTS_DIR", help="results folder of a study (with trials/<run_key>/)"),
    source: Path = typer.Argument(..., metavar="INPUT", help="a folder holding one DICOM series, a DICOM file, a "
                                                            "folder of .npy slices or a .npy (HU)"),
    output: Path = typer.Option(..., "--output", "-o", help="new folder for the denoised series (or .npy files)"),
    run_key: Optional[str] = typer.Option(None, "--run-key", help="the trial's run key (or a unique prefix)"),
    configuration: Optional[str] = typer.Option(None, "--configuration", help="the trial's configuration (with --seed)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="the trial's seed (with --configuration)"),
    best: Optional[str] = typer.Option(None, "--best", metavar="METRIC", help="the configuration with the best mean "
                                       "METRIC over its seeds (e.g. psnr, ssim, rmse_hu), and its best seed"),
    device: Device = typer.Option(Device.auto, "--device", help="where the network runs"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace OUTPUT if it already holds files"),
):
    """Denoise a scan with the network of a finished trial; the result is a new DICOM series (or .npy files)."""
    from study.apply.denoise import denoise as run_denoise
    from study.progress import progress_bar

    def say(line: str) -> None:
        console.print(escape(line), highlight=False, soft_wrap=True)

    prog, task = progress_bar(console), []

    def progress(done: int, total: int) -> None:
        if not task:  # the bar starts with the network's first slices, after the choice is printed
            prog.start()
            task.append(prog.add_task("denoising", total=total))
        prog.update(task[0], completed=done)

    try:
        res = run_denoise(results_dir, source, output, run_key=run_key, configuration=configuration, seed=seed,
                          best=best, device=device.value, overwrite=overwrite, say=say, progress=progress)
    finally:
        if task:
            prog.stop()
    c = res.choice
    say(f"{res.slices} slice(s) denoised with {c.configuration} · seed {c.seed} (run key {c.run_key}, epoch "
        f"{res.meta['epoch']}) → {res.output}")
