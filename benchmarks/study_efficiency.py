"""Benchmark 2: how much of the machine a study keeps busy. Runs a study (default: the embedded smoke grid) in a
fresh results folder with the Ray backend, then reports

- efficiency = Σ trial wall time / (wall time of the trials phase × concurrent slots),
- per-trial overhead = (trials-phase wall × slots − Σ trial wall) / trials: idle slot-seconds per trial
  (Ray/Tune scheduling, worker start, result handling, MLflow logging in the driver),
- Ray startup: `ray.init` + `ray.shutdown` of a local Ray, timed on its own,
- the phases of `study run` (data and encoders, trials, report) from RESULTS_DIR/timings.json.
Run: python benchmarks/study_efficiency.py [experiments/smoke.yaml]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_md import command, table, write_section


def ray_startup(repeats: int = 3) -> list[float]:
    code = ("import time, ray; t = time.time(); ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False); "
            "ray.shutdown(); print(time.time() - t)")
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()[-1])
            for _ in range(repeats)]


def main() -> None:
    spec = Path(sys.argv[1] if len(sys.argv) > 1 else "experiments/smoke.yaml")
    out = Path(tempfile.mkdtemp(prefix="bench-study-")) / "out"
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "study", "run", str(spec), "--output", str(out)],
                          capture_output=True, text=True)
    total = time.time() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr[-3000:])
    clock = json.loads((out / "timings.json").read_text())
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*/result.json")]
    walls = [r["wall_s"] for r in records]
    slots = clock["slots"] or (os.cpu_count() or 1)
    phase = clock["trials_ended"] - clock["trials_started"]
    eff = sum(walls) / (phase * slots)
    overhead = (phase * slots - sum(walls)) / len(walls)
    starts = ray_startup()
    rows = [{"quantity": "trials", "value": len(walls)},
            {"quantity": "concurrent slots", "value": slots},
            {"quantity": "Σ trial wall (s)", "value": sum(walls)},
            {"quantity": "median trial wall (s)", "value": statistics.median(walls)},
            {"quantity": "trials phase wall (s)", "value": phase},
            {"quantity": "**efficiency** Σ trial / (phase × slots)", "value": eff},
            {"quantity": "**per-trial overhead** (idle slot-s per trial)", "value": overhead},
            {"quantity": "Ray startup, init + shutdown (s, median of 3)", "value": statistics.median(starts)},
            {"quantity": "data + encoders (s)", "value": clock["prepared"] - clock["started"]},
            {"quantity": "report (s)", "value": clock.get("report_ended", 0) - clock.get("report_started", 0)},
            {"quantity": "`study run` total, incl. imports (s)", "value": total}]
    body = (f"`study run {spec}` in a fresh folder (Ray backend, MLflow on sqlite, as the demo runs).\n\n{table(rows)}\n\n"
            f"**Efficiency {eff:.3f}** (target ≥ 0.9), **per-trial overhead {overhead:.2f} s** (target ≤ 2 s).")
    write_section("2. Study efficiency on the smoke grid", command(), body)


if __name__ == "__main__":
    main()
