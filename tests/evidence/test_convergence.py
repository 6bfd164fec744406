"""analysis.convergence: still-improving flags from per-epoch histories."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from analysis.convergence import convergence_lines, improving_configurations, still_improving

MIN_EFFECT = {"psnr": 0.1, "rmse_hu": 1.0}


def _folder(tmp_path, histories: dict[str, tuple[str, int, list[dict]]], extra=()):
    """trials.parquet + trials/<run_key>/history.json; `extra` run_keys get a trials row but no history."""
    rows = []
    for key, (conf, seed, hist) in histories.items():
        (tmp_path / "trials" / key).mkdir(parents=True)
        (tmp_path / "trials" / key / "history.json").write_text(json.dumps(hist))
        rows.append({"run_key": key, "status": "finished", "configuration": conf, "seed": seed})
    rows += [{"run_key": k, "status": s, "configuration": "x", "seed": 0} for k, s in extra]
    pd.DataFrame(rows).to_parquet(tmp_path / "trials.parquet")
    return pd.read_parquet(tmp_path / "trials.parquet")


def _hist(**series):
    n = len(next(iter(series.values())))
    return [{"epoch": i, "train_loss": 1.0, **{f"val_{k}": v[i] for k, v in series.items()}} for i in range(n)]


@pytest.fixture
def folder(tmp_path):
    trials = _folder(tmp_path, {
        "rise0": ("rising", 0, _hist(psnr=[12.8, 15.3, 17.0])),
        "rise1": ("rising", 1, _hist(psnr=[12.0, 14.0, 14.05])),  # below 0.1 dB: not improving
        "flat0": ("plateau", 0, _hist(psnr=[20.0, 21.0, 20.95])),
        "flat1": ("plateau", 1, _hist(psnr=[21.0, 23.0, 22.5])),
        "half0": ("half", 0, _hist(psnr=[10.0, 10.5, 11.0])),
        "half1": ("half", 1, _hist(psnr=[10.0, 12.0, 11.0])),
        "third0": ("third", 0, _hist(psnr=[10.0, 10.5, 11.0])),
        "third1": ("third", 1, _hist(psnr=[10.0, 12.0, 11.0])),
        "third2": ("third", 2, _hist(psnr=[10.0, 12.0, 11.0])),
        "dip": ("dip", 0, _hist(psnr=[18.0, 10.0, 12.0])),  # gains but the best epoch is not the last
        "one": ("single", 0, _hist(psnr=[15.0])),
    }, extra=[("nohist", "finished"), ("failed", "failed")])
    return tmp_path, trials


def test_flags_gains_and_skips(folder):
    d, trials = folder
    t = still_improving(d, trials, MIN_EFFECT).set_index("run_key")
    assert set(t.index) == {"rise0", "rise1", "flat0", "flat1", "half0", "half1", "third0", "third1", "third2",
                            "dip", "one"}  # missing history and unfinished trial skipped
    assert t.loc["rise0", "gain"] == pytest.approx(1.7)
    assert t.loc["rise0", "last"] == pytest.approx(17.0)
    assert t.loc["rise0", "n_epochs"] == 3
    assert bool(t.loc["rise0", "improving"]) and bool(t.loc["rise0", "best_at_last"])
    assert not t.loc["rise1", "improving"] and t.loc["rise1", "best_at_last"]  # gain 0.05 < 0.1
    assert t.loc["flat0", "gain"] == pytest.approx(-0.05) and not t.loc["flat0", "best_at_last"]
    assert t.loc["dip", "gain"] == pytest.approx(2.0) and not t.loc["dip", "improving"]
    assert math.isnan(t.loc["one", "gain"]) and not t.loc["one", "improving"]
    assert (t["metric"] == "psnr").all()


def test_fraction_rule(folder):
    d, trials = folder
    conf = improving_configurations(still_improving(d, trials, MIN_EFFECT))
    assert conf == {"rising": pytest.approx(0.5), "half": pytest.approx(0.5)}  # third: 1/3, plateau: 0


def test_lower_is_better_and_fallback(tmp_path):
    trials = _folder(tmp_path, {
        "down": ("a", 0, _hist(psnr=[20, 21, 22], rmse_hu=[60.0, 50.0, 45.0])),  # RMSE falling: better
        "up": ("b", 0, _hist(psnr=[20, 21, 22], rmse_hu=[60.0, 40.0, 44.0])),  # RMSE rising: worse
        "old": ("c", 0, _hist(psnr=[20.0, 20.5, 21.0])),  # no val_rmse_hu: falls back to val_psnr
    })
    t = still_improving(tmp_path, trials, MIN_EFFECT, metric="rmse_hu").set_index("run_key")
    assert t.loc["down", "gain"] == pytest.approx(5.0) and t.loc["down", "improving"]
    assert t.loc["up", "gain"] == pytest.approx(-4.0) and not t.loc["up", "best_at_last"]
    assert not t.loc["up", "improving"]
    assert t.loc["old", "metric"] == "psnr" and t.loc["old", "gain"] == pytest.approx(0.5)
    assert t.loc["old", "improving"]  # judged against min_effect["psnr"] = 0.1, not rmse_hu's 1.0
    assert t.loc["down", "metric"] == "rmse_hu"


def test_lines_name_marked_configurations(folder):
    d, trials = folder
    table = still_improving(d, trials, MIN_EFFECT)
    text = "\n".join(convergence_lines(table, "psnr", MIN_EFFECT))
    assert "3 of 11 trials" in text and "2 of 6 configurations" in text
    assert "**rising**" in text and "**half**" in text and "**plateau**" not in text and "**third**" not in text
    assert "+0.875 dB" in text  # median of rising's gains 1.7 and 0.05
    assert "budget" in text and "fast" in text
    assert convergence_lines(table.iloc[:0], "psnr", MIN_EFFECT) == []
