"""`study readers …`: reader studies — `export` blinded cases of a results folder, `analyze` the readers' answers
(`serve`, the web app where readers score the cases, is added to the same sub-app)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from study.cli.app import app, console, user_errors

readers_app = typer.Typer(no_args_is_help=True, help="Reader studies: export blinded cases, serve them to readers, "
                                                     "analyse the answers.")
app.add_typer(readers_app, name="readers")


class Design(str, Enum):
    """The reader study's design."""
    likert = "likert"
    afc = "2afc"


def _names(value: Optional[str]) -> Optional[list[str]]:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _say(line: str) -> None:
    console.print(escape(line), highlight=False, soft_wrap=True)


@readers_app.command("export")
@user_errors
def export_cmd(
    results_dir: Path = typer.Argument(..., metavar="RESULTS_DIR", help="results folder of a study"),
    reader_dir: Optional[Path] = typer.Option(None, "--output", "-o", metavar="READER_DIR",
                                              help="new folder for the reader study (default RESULTS_DIR/readers)"),
    trials: Optional[str] = typer.Option(None, "--trials", metavar="KEYS", help="run keys, comma-separated"),
    configurations: Optional[str] = typer.Option(None, "--configurations", metavar="NAMES",
                                                 help="configurations, comma-separated (each: its median seed)"),
    top: Optional[int] = typer.Option(None, "--top", metavar="K", help="the K configurations with the best mean "
                                      "--metric (each: its median seed)"),
    metric: str = typer.Option("psnr", "--metric", help="metric for --top and for the median seed"),
    cases: int = typer.Option(20, "--cases", help="test slices shown (stratified over patients)"),
    seed: int = typer.Option(0, "--seed", help="seed of the slices, the case order and the readers' orders"),
    design: Design = typer.Option(Design.likert, "--design", help="likert (5-point scores) or 2afc (pairs)"),
    readers: str = typer.Option("reader1,reader2,reader3", "--readers", help="reader names, comma-separated"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace READER_DIR if it is a reader folder "
                                   "without answers"),
):
    """Write blinded cases (images, key, reader tokens) of the chosen trials for a reader study."""
    from study.readers.export import export

    res = export(results_dir, reader_dir or Path(results_dir) / "readers", trials=_names(trials),
                 configurations=_names(configurations), top=top, metric=metric, cases=cases, seed=seed,
                 design=design.value, readers=_names(readers) or [], overwrite=overwrite)
    for t in res["trials"]:
        _say(f"{t['configuration']} · seed {t['seed']} · run key {t['run_key']} ({t['reason']})")
    _say(f"{res['cases']} {res['design']} case(s) on {res['slices']} test slice(s) for readers "
         f"{', '.join(res['readers'])} → {res['reader_dir']}")


@readers_app.command("serve")
@user_errors
def serve_cmd(
    reader_dir: Path = typer.Argument(..., metavar="READER_DIR", help="the reader study's folder"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: loopback only, this "
                                                        "machine; 0.0.0.0 lets other machines connect)"),
):
    """Serve the cases to the readers in a browser, one secret link each.

    Every answer is stored the moment it is given (READER_DIR/answers.sqlite); a reader resumes where they left off.
    Ctrl-C stops it."""
    from study.readers.server import serve

    serve(reader_dir, host=host, port=port)


@readers_app.command("analyze")
@user_errors
def analyze_cmd(
    reader_dir: Path = typer.Argument(..., metavar="READER_DIR", help="the reader study's folder"),
):
    """Analyse the readers' answers: agreement, configurations, which metrics agree with the readers."""
    from analysis.readers import analyze

    res = analyze(reader_dir)
    _say(f"{res['answers']} answer(s) of {len(res['readers'])} reader(s) → {res['analysis_dir']}/reader_study.md")
