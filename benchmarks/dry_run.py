"""Benchmark 5: `study run --dry-run` of huge grids (issue #21: a 50,000-value λ list took 93 s drawing a
150,000-row table). Wall time of the whole command (Python start, spec validation, grid expansion and run keys,
the printed head and tail), median of 3 runs per grid.
Run: python benchmarks/dry_run.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import tiny_spec  # noqa: E402
from results_md import command, table, write_section  # noqa: E402

GRIDS = [(1_000, 1), (10_000, 3), (50_000, 3)]  # (λ values, seeds)


def dry_run(n_lam: int, n_seeds: int, root: Path) -> float:
    raw = tiny_spec(root, name=f"dry{n_lam}", factors={"lam": [round(i * 1e-5, 5) for i in range(n_lam)],
                                                        "seed": list(range(n_seeds))})
    path = root / f"dry{n_lam}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "study", "run", str(path), "--dry-run"], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_lam, n_seeds in GRIDS:
            s = dry_run(n_lam, n_seeds, Path(tmp))
            rows.append({"λ values": n_lam, "seeds": n_seeds, "trials": n_lam * n_seeds, "dry run (s)": round(s, 2)})
    big = rows[-1]
    write_section("5. Dry run of a huge grid", command(),
                  table(rows) + f"\n\n**{big['trials']:,} trials: {big['dry run (s)']} s** (issue #21 measured 93 s "
                  "for this grid when every row was drawn; now the head and tail are printed).")


if __name__ == "__main__":
    main()
