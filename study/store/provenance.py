"""What a run records about where it came from: git commit, package versions, and the sha256 of input files."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("study", "torch", "torchvision", "torchmetrics", "numpy", "scikit-image", "pydicom", "ray", "mlflow", "pandas",
            "scipy")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the checkout `study` runs from (or of the working directory); "unknown" outside git."""
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        try:
            out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    return "unknown"


def versions(names) -> dict[str, str]:
    """Installed version of each distribution in `names` ("absent" where it is not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """The versions a trial records (PACKAGES)."""
    return versions(PACKAGES)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (weights files are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
