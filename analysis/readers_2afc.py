"""The analysis of a 2AFC reader study (the answers' criterion is "choice": 0 = image a, 1 = image b).

- agreement: Krippendorff's α nominal on the choices (readers × cases);
- configurations: per configuration pair, how often each was chosen, its share and the exact binomial p against 1/2;
- metrics: per metric, the share of the choices that fall on the image the metric prefers (sign-flipped where lower
  is better; cases where the metric ties are left out), reported as 2·share − 1 (> 0 = agrees, 1 = always), with a
  seeded bootstrap 95% CI over cases (1,000 resamples).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.readers import layout
from analysis import readers_stats as st


def _choices(answers: pd.DataFrame, key: dict) -> pd.DataFrame:
    df = answers[(answers["criterion"] == layout.CHOICE) & answers["case_id"].isin(list(key))].copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[df["value"].isin([0, 1])]
    side = np.where(df["value"] == 0, "a", "b")
    other = np.where(df["value"] == 0, "b", "a")
    df["chosen"] = [key[c][s]["configuration"] for c, s in zip(df["case_id"], side)]
    df["other"] = [key[c][s]["configuration"] for c, s in zip(df["case_id"], other)]
    return df


def _pairs(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    pair = df.apply(lambda r: tuple(sorted((r["chosen"], r["other"]))), axis=1)
    for (c1, c2), g in df.groupby(pair):
        k, n = int((g["chosen"] == c1).sum()), len(g)
        rows.append({"configuration_1": c1, "configuration_2": c2, "choices": n, "chose_1": k, "chose_2": n - k,
                     "share_1": k / n, "binomial_p": st.binomial(k, n)})
    return pd.DataFrame(rows, columns=["configuration_1", "configuration_2", "choices", "chose_1", "chose_2",
                                       "share_1", "binomial_p"])


def _metrics(df: pd.DataFrame, key: dict, design: dict) -> pd.DataFrame:
    from study.spec.metric_names import HIGHER_IS_BETTER as QUALITY_METRICS
    from study.readers.layout import per_image_metrics

    per_image, names = per_image_metrics(design)
    idx = per_image.set_index(["run_key", "image_id"]) if names else None
    rows, rng = [], np.random.default_rng(int(design.get("seed", 0)))
    for m in names:
        sign = 1.0 if QUALITY_METRICS[m] else -1.0
        pref = {}
        for c, v in key.items():
            a, b = (idx[m].get((v[s]["run_key"], v["image_id"]), np.nan) for s in ("a", "b"))
            pref[c] = np.sign(sign * (float(b) - float(a)))  # +1: the metric prefers b
        agree = df.assign(p=df["case_id"].map(pref)).query("p != 0 and p == p")
        hit = ((agree["value"] * 2 - 1) == agree["p"]).groupby(agree["case_id"]).agg(["sum", "count"])
        rows.append(_share_row(m, hit, rng))
    return pd.DataFrame(rows, columns=["metric", "criterion", "level", "statistic", "value", "ci_low", "ci_high", "n"])


def _share_row(metric: str, hit: pd.DataFrame, rng) -> dict:
    row = {"metric": metric, "criterion": layout.CHOICE, "level": "choice", "statistic": "2·share−1", "n": len(hit)}
    if hit.empty:
        return row | {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    s, n = hit["sum"].to_numpy(float), hit["count"].to_numpy(float)
    idx = rng.integers(0, len(hit), size=(st.BOOT, len(hit)))
    boots = 2 * s[idx].sum(1) / n[idx].sum(1) - 1
    return row | {"value": 2 * s.sum() / n.sum() - 1, "ci_low": float(np.percentile(boots, 2.5)),
                  "ci_high": float(np.percentile(boots, 97.5))}


def compute(answers: pd.DataFrame, key: dict, design: dict) -> dict:
    """{"agreement", "configurations", "metrics"} of the 2AFC answers."""
    df = _choices(answers, key)
    mat = df.pivot_table(index="reader", columns="case_id", values="value", aggfunc="mean")
    agreement = pd.DataFrame([{"criterion": layout.CHOICE, "cases": df["case_id"].nunique(),
                               "readers": df["reader"].nunique(),
                               "alpha_nominal": st.alpha(mat.to_numpy(), "nominal")}])
    return {"agreement": agreement, "configurations": _pairs(df), "metrics": _metrics(df, key, design)}
