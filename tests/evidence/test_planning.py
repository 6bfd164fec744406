"""`study plan` (issue #29, first part): variance components read back from a pilot with known components, and a
seeded plan whose recommendation is the cheapest simulated design at the power target (the design one seed fewer
is below it), printed as the `--json` contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.planning import components_of, design_of
from analysis.simulate import Components, Design, study_tables
from helpers import tiny_spec, write_spec
from study.cli import app

PLANTED = Components(net_sd=0.4, config_patient_sd=0.0, residual_sd=0.5)
GRID = Design(levels=("block1_conv2",), pretrainings=("imagenet", "random"), lams=(0.1,), seeds=3, patients=1,
              slices=12)


def _pilot(root):
    trials, images = study_tables(GRID, PLANTED, None, seed=7, metrics=("psnr",))
    root.mkdir()
    trials.attrs.clear()  # the truth stays out of the pilot's table
    trials.to_parquet(root / "trials.parquet")
    images.to_parquet(root / "per_image.parquet")
    (root / "study.yaml").write_text("name: pilot\n")
    return root, trials, images


def test_a_pilots_components_are_read_back(tmp_path):
    from analysis.factors import design_networks

    trials, images = study_tables(Design(seeds=8, patients=1, slices=30), PLANTED, None, seed=1, metrics=("psnr",))
    comp = components_of(design_networks(images, "psnr")[0].variance, "psnr")
    assert comp.net_sd == pytest.approx(0.4, abs=0.08) and comp.residual_sd == pytest.approx(0.5, abs=0.02)
    assert comp.config_patient_sd == 0.0 and comp.config_image_sd < 0.1  # one patient: images are the error
    d = design_of(trials, images)
    assert (d.levels, d.pretrainings, d.lams, d.patients, d.slices) == (
        ("block3_conv2", "block5_conv4"), ("imagenet", "medical"), (0.001, 0.01, 0.1), 1, 30)


def test_plan_json_recommends_the_cheapest_design_at_the_power_target(tmp_path):
    pilot, _, _ = _pilot(tmp_path / "pilot")
    spec = tiny_spec(tmp_path, factors={"feature_level": ["block1_conv2"], "pretraining": ["imagenet", "random"],
                                        "lam": [0, 0.1], "seed": [0]}, analysis={"min_effect": {"psnr": 1.0}})
    path = write_spec(tmp_path, spec)
    args = ["plan", str(path), "--pilot", str(pilot), "--json", "--reps", "12", "--max-seeds", "8"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    rec, designs = out["recommended"], {d["seeds"]: d for d in out["designs"]}
    assert rec is not None and set(rec) >= {"seeds", "power", "false_claim", "trial_hours", "trials"}
    assert rec["min_power"] >= 0.8 and set(rec["power"]) == {"pretraining", "best"}
    fewer = designs.get(rec["seeds"] - 1)
    assert rec["seeds"] == 3 or fewer["min_power"] < 0.8  # 3 = analysis.min_seeds, the fewest a claim may rest on
    assert rec["trials"] == 3 * rec["seeds"]  # the study's 3 configurations (the baseline too) per seed
    assert rec["trial_hours"] == pytest.approx(rec["trials"] * 10.0 / 3600)  # the pilot's median wall_s


def test_a_design_is_simulated_the_same_way_twice(tmp_path):
    from analysis.claims import Settings
    from analysis.planning import Pilot, candidate

    pilot = Pilot(GRID, {"psnr": PLANTED}, 10.0 / 3600, None)
    s = Settings(min_effect={"psnr": 1.0})
    assert candidate(pilot, "psnr", 3, s, 4, 0) == candidate(pilot, "psnr", 3, s, 4, 0)  # seeded


def test_plan_without_a_pilot_says_what_it_needs(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    res = CliRunner().invoke(app, ["plan", str(path)])
    assert res.exit_code == 2 and "--pilot" in res.output and "analysis.prior" in res.output


def test_plan_from_stated_components_more_noise_needs_more_seeds(tmp_path):
    """analysis.prior instead of a pilot (cost from the dry run's estimate): a noisier network SD needs more seeds."""
    seeds = []
    for sd in (0.15, 0.3):
        spec = tiny_spec(tmp_path, name=f"prior{int(sd * 10)}", factors={
            "feature_level": ["block1_conv2"], "pretraining": ["random"], "lam": [0, 0.01, 0.1], "seed": [0]},
            analysis={"min_effect": {"psnr": 0.5},
                      "prior": {"psnr": {"network_sd": sd, "residual_sd": 0.5, "slices": 10}}})
        res = CliRunner().invoke(app, ["plan", str(write_spec(tmp_path, spec, f"s{sd}.yaml")), "--json",
                                       "--reps", "10", "--max-seeds", "16"])
        assert res.exit_code == 0, res.output
        rec = json.loads(res.output)["recommended"]
        assert rec is not None and set(rec["power"]) == {"lam", "best"} and rec["trial_hours"] > 0
        seeds.append(rec["seeds"])
    assert seeds[0] < seeds[1]
