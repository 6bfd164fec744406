"""Grid expansion and run keys."""

from __future__ import annotations

from study.spec import parse_spec
from study.planning.grid import NONE, expand

from helpers import tiny_spec

IDS = {"random": "r" * 16, "other": "o" * 16}


def _spec(tmp_path, **factors):
    return parse_spec(tiny_spec(tmp_path, encoders={"other": {"source": "random", "seed": 7}},
                                factors={"feature_level": ["block3_conv2", "block5_conv4"],
                                         "pretraining": ["random", "other"], "lam": [0, 0.01, 0.1], "seed": [0, 1],
                                         **factors}))


def test_one_baseline_per_seed_and_full_factorial_otherwise(tmp_path):
    trials = expand(_spec(tmp_path), "data", IDS)
    baselines = [t for t in trials if t.lam == 0]
    assert len(baselines) == 2 and {t.seed for t in baselines} == {0, 1}
    assert all(t.feature_level == NONE and t.pretraining == NONE for t in baselines)
    assert len(trials) == 2 + 2 * 2 * 2 * 2  # baselines + levels × pretrainings × non-zero λ × seeds
    assert len({t.run_key for t in trials}) == len(trials)


def test_run_keys_are_stable_and_depend_on_what_matters(tmp_path):
    a = {t.factors()["seed"]: t.run_key for t in expand(_spec(tmp_path), "data", IDS) if t.lam == 0}
    b = {t.factors()["seed"]: t.run_key for t in expand(_spec(tmp_path), "data", IDS) if t.lam == 0}
    assert a == b
    other_data = {t.seed: t.run_key for t in expand(_spec(tmp_path), "data2", IDS) if t.lam == 0}
    assert set(other_data.values()).isdisjoint(a.values())


def test_encoder_weights_id_changes_only_the_trials_that_use_it(tmp_path):
    before = {(t.feature_level, t.pretraining, t.lam, t.seed): t.run_key for t in expand(_spec(tmp_path), "d", IDS)}
    after = {(t.feature_level, t.pretraining, t.lam, t.seed): t.run_key
             for t in expand(_spec(tmp_path), "d", {**IDS, "other": "x" * 16})}
    changed = {k for k in before if before[k] != after[k]}
    assert changed and all(k[1] == "other" for k in changed)


def test_adding_a_lambda_keeps_existing_keys(tmp_path):
    old = {t.run_key for t in expand(_spec(tmp_path), "d", IDS)}
    new = {t.run_key for t in expand(_spec(tmp_path, lam=[0, 0.01, 0.1, 1.0]), "d", IDS)}
    assert old < new and len(new - old) == 2 * 2 * 2


def test_threads_and_device_do_not_change_run_keys(tmp_path):
    base = {t.run_key for t in expand(_spec(tmp_path), "d", IDS)}
    spec = parse_spec({**tiny_spec(tmp_path, encoders={"other": {"source": "random", "seed": 7}},
                                   factors={"feature_level": ["block3_conv2", "block5_conv4"],
                                            "pretraining": ["random", "other"], "lam": [0, 0.01, 0.1], "seed": [0, 1]},
                                   training={"threads": 2, "device": "cpu"})})
    assert {t.run_key for t in expand(spec, "d", IDS)} == base
