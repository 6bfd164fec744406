#!/usr/bin/env bash
# Rewrites constraints.txt: the exact versions installed in a venv in which the full test suite passed.
#   tools/refresh_constraints.sh [PYTHON]        runs the README's test command (python -m pytest) first, then freezes
#   tools/refresh_constraints.sh --no-test [PYTHON]   freezes only (when the suite has just passed in that venv)
# PYTHON defaults to .venv/bin/python. The editable `study` itself is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=1
if [ "${1:-}" = "--no-test" ]; then run_tests=0; shift; fi
py="${1:-.venv/bin/python}"
if [ "$run_tests" = 1 ]; then "$py" -m pytest; fi
version="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
tmp="$(mktemp constraints.txt.XXXXXX)"
trap 'rm -f "$tmp"' EXIT
{
  cat <<HEADER
# constraints.txt — the exact versions of every package the test suite passed on (Python $version, Linux x86-64).
# It pins versions, it installs nothing: a package listed here is installed only where something requires it.
#
# Use it for a reproducible install:
#   pip install -c constraints.txt -e ".[test]"
# With CPU-only torch (README.md), constrain that line too, so that the versions agree:
#   pip install -c constraints.txt torch torchvision --index-url https://download.pytorch.org/whl/cpu
# The torch line pins the version only: CPU wheels (torch==X+cpu) satisfy torch==X, and the nvidia-*, cuda-* and
# triton lines apply only where pip installs CUDA wheels. Versions may not exist for other Python versions.
# pyproject.toml states ranges; CI (.ci/run) does not use this file.
#
# Refresh it from a venv in which the full test suite passes:
#   tools/refresh_constraints.sh            (runs python -m pytest in .venv first)
#   tools/refresh_constraints.sh --no-test  (freezes .venv as it is)
HEADER
  "$py" -m pip freeze --exclude-editable | grep -viE '^study([=@ ]|$)'
} > "$tmp"
mv "$tmp" constraints.txt
trap - EXIT
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) lines of pins)"
