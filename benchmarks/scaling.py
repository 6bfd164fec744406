"""Benchmark 4: how cost grows — data preparation time against the number of slices (phantoms, simulated in the
projection domain on all cores), and report generation time against the number of trials (synthetic results
folders shaped like the paper-1 grid, up to 16 layers × 3 pretrainings × 8 λ × 5 seeds + 5 baselines = 1,925).
Run: python benchmarks/scaling.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_md import command, table, write_section
from synthetic_results import grid_folder


def data_prep(n_slices: int, root: Path) -> float:
    from study.spec import DataSpec
    from study.data.cache import build_cache

    spec = DataSpec(source="phantom", size=128, n_train=n_slices - 8, n_val=4, n_test=4, real_slices=False)
    t = time.perf_counter()
    build_cache(spec, root / f"data-{n_slices}")
    return time.perf_counter() - t


def report(kw: dict, root: Path) -> tuple[int, int, float]:
    from analysis.report import update_report

    folder = grid_folder(root, **kw)
    import pandas as pd

    trials = pd.read_parquet(folder / "trials.parquet")
    t = time.perf_counter()
    update_report(folder)
    return len(trials), trials["configuration"].nunique(), time.perf_counter() - t


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    prep = []
    for n in (16, 32, 64, 128):
        s = data_prep(n, root)
        prep.append({"slices (128²)": n, "prepare (s)": s, "ms per slice": 1000 * s / n})
    reps = []
    for kw in ({"levels": 2, "pretrainings": 3, "lams": 2, "seeds": 5},
               {"levels": 4, "pretrainings": 3, "lams": 8, "seeds": 5},
               {"levels": 8, "pretrainings": 3, "lams": 8, "seeds": 5},
               {"levels": 16, "pretrainings": 3, "lams": 8, "seeds": 5}):
        n, k, s = report(kw, root)
        reps.append({"trials": n, "configurations": k, "images": 50, "report, 3 metrics (s)": s})
    shutil.rmtree(root, ignore_errors=True)
    body = (f"Data preparation (phantom slices, parallel-beam simulation + FBP, 2 worker processes, cache written as "
            f"memory-mappable .npy):\n\n{table(prep)}\n\nReport generation (`study report` = `analysis.analyse` + `analysis.write_report`: the network-level "
            f"analysis and guidelines — variance components, factor importance, level/depends/vs-best contrasts, Ψ "
            f"versus λ — then Friedman, pairwise Wilcoxon–Holm with bootstrap CIs, post-hoc matrices, factor effects, "
            f"sensitivity checks, figures as 150-dpi PNG plus a PDF twin each, LaTeX tables, provenance, HTML) on "
            f"synthetic folders with 50 test images from 2 patients, a "
            f"per-network SD of 0.3 dB and a configuration × patient SD of 0.2 dB:\n\n{table(reps)}\n\n"
            f"**{reps[-1]['trials']} trials: {reps[-1]['report, 3 metrics (s)']:.1f} s** (target ≤ 60 s), with the "
            f"selection-honest claims (max-t over all 73,920 pairs of the 385 configurations per metric, the "
            f"per-contrast test-set error, the parametric Ψ-λ bootstrap) and the compute/render split (issue 28); "
            f"57.2 s before the split (2026-12-06), 49.2 s before the selection-honest claims (2026-11-28), and 40.3 s "
            f"before the paper outputs (2026-11-27).")
    write_section("4. How cost grows: data preparation and report generation", command(), body)


if __name__ == "__main__":
    main()
