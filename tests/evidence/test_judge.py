"""The judges of synthetic studies (analysis.judge) that the calibration tests, the benchmarks and `study plan`
count false claims with: a claim is judged against the true means of the population it states."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.judge import other_firm
from analysis.planning_fast import Stats, layout
from analysis.planning_judge import any_term
from analysis.simulate import Design, label

CONFIGS = [label("block3_conv2", p, 0.1) for p in ("imagenet", "medical")]


def _truth(these: list[float]) -> dict:
    """Flat over the patients (nothing planted); `these` over these test patients."""
    return {"psnr": pd.DataFrame({"patients": [30.0, 30.0], "these_test_patients": these}, index=CONFIGS)}


def _level(kind: str, population: str) -> dict:
    return {"metric": "psnr", "kind": kind, "subject": "pretraining=imagenet", "reference": "pretraining=medical",
            "factor": "pretraining", "population": population, "p_adj": 0.001}


TERM = {"metric": "psnr", "kind": "factor_importance", "subject": "pretraining", "reference": None, "p_adj": 0.001}


def test_over_a_flat_truth_every_firm_claim_is_false_and_over_these_patients_only_what_their_means_contradict():
    these = _truth([30.2, 30.0])  # these two patients happen to favour imagenet by 0.2 dB
    assert other_firm([{**TERM, "population": "patients"}], these)
    assert other_firm([_level("better", "patients")], these)
    assert not other_firm([{**TERM, "population": "these_test_patients"}], these)  # a term true of these patients
    assert not other_firm([_level("better", "these_test_patients")], these)
    assert other_firm([_level("worse", "these_test_patients")], these)  # against their true gap
    assert other_firm([_level("better", "these_test_patients")], _truth([30.0, 30.2]))
    assert other_firm([{**TERM, "population": "these_test_patients"}], _truth([30.0, 30.0]))  # flat there too
    assert not other_firm([{**TERM, "population": "patients", "p_adj": 0.2}], these)  # not significant: no claim


def test_the_fast_path_counts_a_significant_term_only_where_the_true_means_are_flat():
    lay = layout(Design(levels=("block3_conv2",), pretrainings=("imagenet", "medical"), lams=(0.1,), seeds=4,
                        patients=1, slices=8, baseline=False))
    k, units = len(lay.labels), 8
    means = np.array([[0.0, 5.0], [0.0, 5.0]])  # 5 dB apart: the pretraining term certain
    dev = np.zeros((2, units, k))
    truth = np.array([[0.0, 0.0], [0.0, 0.3]])  # study 0: nothing true; study 1: these patients differ
    st = Stats(means, dev, np.full(2, 0.1), np.full(2, 0.1), truth, "these_test_patients", 1 / units, units - 1.0)
    assert any_term(lay, st, 0.05).tolist() == [True, False]
