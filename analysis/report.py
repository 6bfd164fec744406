"""`study report RESULTS_DIR`: analyse the folder (analysis.analyse) and (re)write RESULTS_DIR/report/ from the
Evidence (analysis.render), built in a temporary folder and swapped in at the end."""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis.compute import analyse
from analysis.render import write_report


def update_report(results_dir: str | Path, metrics: list[str] | None = None, power: bool = False,
                  power_effect: float | None = None) -> Path:
    """(Re)write `RESULTS_DIR/report/`: report.md, report.html, guidelines.md, stats/*.csv, figures/*.png.

    The folder is analysed first (a bad metric or spec fails before anything is touched); the report is built in a
    temporary folder and swapped in at the end, so a failure leaves the previous report intact.
    """
    from study.store.locks import file_lock
    from study.store.results import replaced_folder

    results_dir = Path(results_dir)
    evidence = analyse(results_dir, metrics, power, power_effect)
    final = results_dir / "report"
    with file_lock(results_dir / ".report.lock"):  # one writer; what a killed writer left behind is removed
        for stale in results_dir.glob(".report-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with replaced_folder(final) as out:
            write_report(evidence, out)
    return final
