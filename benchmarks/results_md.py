"""Write one benchmark's section of benchmarks/RESULTS.md (replacing that section, keeping the others)."""

from __future__ import annotations

import platform
import re
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# Benchmark results\n\nEach section is rewritten by the script named in it; numbers are from one run on the "
          "machine it names. Medians unless said otherwise.\n")


def machine() -> str:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def write_section(name: str, command: str, body: str) -> None:
    text = RESULTS.read_text() if RESULTS.is_file() else HEADER
    section = (f"## {name}\n\nCommand: `{command}` ({time.strftime('%Y-%m-%d')}, {machine()})\n\n{body.strip()}\n\n")
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
    print(section)


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def command() -> str:
    """The command line that is running, as one can paste it (arguments quoted)."""
    import shlex

    return "python " + shlex.join([str(Path(sys.argv[0]).relative_to(Path.cwd())) if Path(sys.argv[0]).is_absolute() and
                                 Path.cwd() in Path(sys.argv[0]).parents else sys.argv[0], *sys.argv[1:]])
