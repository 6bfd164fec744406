"""Checks of the report's LaTeX tables: a parse (pylatexenc: matched environments, as many cells per tabular row as
the column spec has columns, balanced `$`) that runs everywhere, and a pdflatex compile where TeX is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from pylatexenc.latexwalker import LatexEnvironmentNode, LatexMacroNode, LatexSpecialsNode, LatexWalker

PDFLATEX = shutil.which("pdflatex")

def columns(spec: str) -> int:
    """Columns of a tabular spec: l, c, r, and p/m/b{width}; @{…} and | add none."""
    spec = re.sub(r"@\{[^}]*\}", "", spec)
    return len(re.findall(r"[lcr]|[pmb]\{[^}]*\}", re.sub(r"[|\s]", "", spec)))


def tabular_rows(env: LatexEnvironmentNode) -> list[int]:
    """Cells per row (& + 1) of a tabular, rows being what lies between `\\\\`, rules-only stretches skipped."""
    rows, amps, content = [], 0, False
    for n in env.nodelist:
        if isinstance(n, LatexMacroNode) and n.macroname == "\\":
            rows.append(amps + 1)
            amps, content = 0, False
        elif isinstance(n, LatexSpecialsNode) and n.specials_chars == "&":
            amps, content = amps + 1, True
        elif not (isinstance(n, LatexMacroNode) and n.macroname in ("toprule", "midrule", "bottomrule",
                                                                    "addlinespace")):
            content = content or bool(n.latex_verbatim().strip())
    assert not content and not amps, "text after the last row"
    return rows


def environments(nodes):
    for n in nodes or []:
        if isinstance(n, LatexEnvironmentNode):
            yield n
        yield from environments(getattr(n, "nodelist", None))


def parses(text: str) -> int:
    """pylatexenc raises on an unmatched \\begin/\\end; every tabular row has as many cells as columns."""
    assert text.isascii()
    nodes, _, _ = LatexWalker(text, tolerant_parsing=False).get_latex_nodes()
    tabulars = [e for e in environments(nodes) if e.environmentname == "tabular"]
    assert tabulars
    for tabular in tabulars:
        spec = tabular.nodeargd.argnlist[-1].latex_verbatim()[1:-1]
        assert set(tabular_rows(tabular)) == {columns(spec)}, spec
    for line in text.splitlines():
        assert len(re.findall(r"(?<!\\)\$", line)) % 2 == 0, line
    return len(tabulars)


def compiles(folder: Path, name: str) -> None:
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name], cwd=folder,
                       capture_output=True, text=True, timeout=120)
    log = (folder / name).with_suffix(".log").read_text(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert "Undefined control sequence" not in log and "Missing $" not in log


def check_table(path: Path, scratch: Path) -> None:
    """`path` parses and, where pdflatex exists, compiles alone inside a minimal document written in `scratch`."""
    from analysis.latex import standalone

    text = path.read_text()
    parses(text)
    if PDFLATEX:
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / path.name).write_text(standalone(text))
        compiles(scratch, path.name)
