"""Claims across metrics (where metrics name different recommendations) and the still-improving marks."""

from __future__ import annotations

import pandas as pd

from analysis.claim import Claim

def disagreements(claims: list[Claim]) -> list[Claim]:
    """Where one metric's recommended level of a factor is confirmed better than another metric's recommendation."""
    out = []
    firm = [c for c in claims if c["kind"] == "better" and c.get("factor")]
    for c in firm:
        for d in firm:
            if c["metric"] < d["metric"] and c["factor"] == d["factor"] and c["subject"] == d["reference"] \
                    and d["subject"] == c["reference"]:
                out.append(c.replace(kind="depends", on="metric", context=f"{c['metric']} vs {d['metric']}",
                                     other={k: d[k] for k in ("metric", "subject", "estimate", "ci_low", "ci_high",
                                                              "p_adj")}))
    return out


def best_disagreements(claims: list[Claim], vs_best: list[pd.DataFrame]) -> list[Claim]:
    """Where metrics name different best configurations: under metric m, its best against the other metric's best
    (from m's configurations-against-the-best family, tested over all pairs of configurations, so it holds whichever
    two are the metrics' best); `depends` when m separates them, else `undecided`."""
    best = {c["metric"]: c for c in claims if c.get("would_be", c["kind"]) == "best"}
    tables = {t["metric"].iloc[0]: t for t in vs_best if len(t)}
    out = []
    for m, c in best.items():
        for other, d in best.items():
            if other == m or d["subject"] == c["subject"] or m not in tables:
                continue
            row = tables[m][tables[m]["b"] == d["subject"]]
            if row.empty:
                continue
            r = row.iloc[0]
            kind = "depends" if r["verdict"] == "better" else "undecided"
            out.append(Claim.of({**{k: c[k] for k in ("metric", "test", "family", "n_images", "n_patients",
                                                      "min_effect", "population")},
                        "kind": kind, "subject": c["subject"], "reference": d["subject"], "on": "metric",
                        "context": f"best under {m} vs best under {other}", "estimate": float(r["estimate"]),
                        "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]), "p_adj": float(r["p_adj"]),
                        "n_networks": int(r["n_networks"]), "other_metric": other,
                        "configurations": [c["subject"], d["subject"]]}))
    return out


def mark_improving(claims: list[Claim], improving: dict[str, float]) -> list[Claim]:
    """The claims, each listing the configurations it involves that were still improving at the last epoch."""
    out = []
    for c in claims:
        involved = set(c.get("configurations") or []) | {c.get("subject"), c.get("reference")}
        hit = sorted(x for x in improving if x in involved)
        out.append(c.replace(still_improving=hit) if hit else c)
    return out
