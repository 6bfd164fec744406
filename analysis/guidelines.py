"""`guidelines.md` rendered from the claims of `guidelines.json` (analysis.claims): a short, ranked list.

Order: which factors matter (per metric), the recommended level of each factor that matters and the levels tied with
it, interactions that change a recommendation, Ψ versus λ, the top group of configurations, where metrics disagree.
At most MAX_BULLETS bullets; every claim stays in guidelines.json and the tables in stats/. After them: what more
(seeds, trial-hours) would decide the open claims (analysis.decide).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from analysis.claim import Claim
from analysis.decide import open_paragraph
from analysis.style import factor_name
from analysis.load import unit_suffix
from analysis.pvalues import p_clause

MAX_BULLETS = 15
OWN_FAMILIES = "each metric's own, as above"
PRIMARY = 3  # metrics given their own bullets (the first ones of the report); the others are in guidelines.json


def _num(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:+.3g}"


def evidence(c: dict, with_test: bool = True) -> str:
    """'Δpsnr +0.82 dB [95% CI +0.31, +1.33], p_Holm = 0.003; test; family; n = …' for one claim."""
    name, u = ("ΔR²", "") if c.get("unit") else (f"Δ{c['metric']}", unit_suffix(c["metric"]))
    eff = f"{name} {_num(c['estimate'])}{u} [95% CI {_num(c['ci_low'])}, {_num(c['ci_high'])}]"
    p = "" if c["p_adj"] is None or not math.isfinite(c["p_adj"]) else ", " + p_clause(c["p_adj"], "p_adj")
    return f"{eff}{p}; {_provenance(c)}" if with_test else f"{eff}{p}"


def _provenance(c: dict, family: str | None = None) -> str:
    """'test; family: …; n = … networks, … images, … patient(s); holds for …' of a claim (the end of every bullet)."""
    scope = f"; {POPULATION_WORDS[c['population']]}" if c.get("population") in POPULATION_WORDS else ""
    return (f"{c['test']}; family: {family or c['family']}; n = {c['n_networks']} networks, {c['n_images']} images, "
            f"{c['n_patients']} patient(s){scope}")


POPULATION_WORDS = {"patients": "generalises over patients", "these_test_patients": "holds for these test patients"}


def population_sentence(claims: list[dict], min_patients: int | None = None, patients_known: bool = True) -> str | None:
    """Who the claims are about, in one sentence (guidelines.md, the report's first screen, the LaTeX captions)."""
    fixed = [c for c in claims if c.get("population") == "these_test_patients"]
    if fixed and not patients_known:
        return ("Every claim holds for these test images only (the results carry no patient information): the "
                "claims are tested with these images as the error and do not generalise over patients.")
    if not fixed:
        wide = [c for c in claims if c.get("population") == "patients"]
        return (f"All claims generalise over patients: {wide[0]['n_patients']} test patients, each contrast tested "
                f"against its own between-patient variation.") if wide else None
    which = "" if len(fixed) == len([c for c in claims if c.get("population")]) else \
        " of " + ", ".join(dict.fromkeys(c["metric"] for c in fixed))
    fewer = f", fewer than {min_patients}" if min_patients else ""
    return (f"Every claim{which} holds for these test patients only ({fixed[0]['n_patients']} patient(s){fewer}): "
            f"no valid test across patients exists, so the claims are tested with the images of these patients as "
            f"the error and do not generalise over patients.")


def _mark(c: dict) -> str:
    hit = c.get("still_improving")
    if not hit:
        return ""
    if len(hit) <= 2:
        return f" ⚠ still improving at the last epoch: {', '.join(hit)}"
    return _many_improving(hit)


def _many_improving(hit: list[str]) -> str:
    return f" ⚠ {len(hit)} of the configurations involved were still improving at the last epoch"


def _names(names: list[str], total: list[str], what: str) -> str:
    """A list of configurations, or 'all but …' when that is shorter."""
    if len(names) <= 6:
        return ", ".join(names)
    rest = [x for x in total if x not in names]
    return f"{len(names)} of {len(total)} {what}" + (f" (all but {', '.join(rest)})" if rest and len(rest) <= 6 else "")


def _level(s: str) -> str:
    return s.split("=", 1)[1] if s and "=" in s else str(s)


def importance_bullet(metric: str, cs: list[dict]) -> str | None:
    terms = sorted([c for c in cs if c["kind"] == "factor_importance"], key=lambda c: -c["share"])
    if not terms:
        return None
    matter = [c for c in terms if c["matters"]]
    shown = matter or terms[:1]
    parts = [f"{c['subject']} ({c['share']:.0%} of the between-network variance; largest level difference "
             f"{evidence(c, with_test=False)})" for c in shown]
    head = f"**{metric} — what matters:** " if matter else f"**{metric} — no factor term is both significant and ≥ " \
        f"{c_min(terms[0])}:** largest is "
    return head + "; ".join(parts) + f". ({_provenance(terms[0])}.)"


def c_min(c: dict) -> str:
    return f"{c['min_effect']:g}{unit_suffix(c['metric'])}"


def _beaten(beats: list[dict], word: str) -> str:
    """'better than X (evidence)' per beaten level, or one summary line with the weakest of them when there are many."""
    if len(beats) <= 3:
        return "; ".join(f"{word} {_level(c['reference'])} ({evidence(c, False)}){_mark(c)}" for c in beats)
    weakest = min(beats, key=lambda c: abs(c["estimate"]))
    hit = sorted({x for c in beats for x in c.get("still_improving") or []})
    mark = _many_improving(hit) if hit else ""
    return (f"{word} {', '.join(_level(c['reference']) for c in beats)} (the smallest of these differences: "
            f"{_level(weakest['reference'])}, {evidence(weakest, False)}; all in guidelines.json){mark}")


def recommendation_bullet(factor: str, cs: list[dict], min_seeds: int = 3) -> str | None:
    """The recommended level of a factor over the metrics, with the levels tied with it."""
    levels = [c for c in cs if c.get("factor") == factor and c["kind"] != "depends" and c.get("on") is None
              and c["subject"].startswith(f"{factor}=") and c["kind"] != "factor_importance"]
    firm = [c for c in levels if c["kind"] in ("better", "worse") or c.get("would_be") in ("better", "worse")]
    if not firm:
        return None
    parts = []
    for metric in dict.fromkeys(c["metric"] for c in levels):
        mine = [c for c in levels if c["metric"] == metric]
        beats = [c for c in mine if c["kind"] in ("better", "worse") or c.get("would_be") in ("better", "worse")]
        tied = [_level(c["reference"]) for c in mine if c not in beats]
        word = f"needs ≥ {min_seeds} seeds to claim" if any(c["kind"] == "insufficient_replication" for c in beats) else "better than"
        text = _beaten(beats, word) or "no level beaten"
        tie = f"; tied with it: {', '.join(tied)}" if tied else ""
        parts.append(f"{metric}: use {_level(mine[0]['subject'])} — {text}{tie}")
    c0 = firm[0]
    return (f"**{factor_name(factor)}:** " + " · ".join(parts) +
            f". ({_provenance(c0)}.)")


def depends_bullet(factor: str, cs: list[dict], min_seeds: int = 3) -> str | None:
    dep = [c for c in cs if c.get("factor") == factor and c.get("on") not in (None, "metric")
           and (c["kind"] == "depends" or c.get("would_be") == "depends")]
    if not dep:
        return None
    parts = [f"{c['metric']}, with {factor_name(c['on'])} = {_level(c['context'])}: {_level(c['subject'])} "
             f"beats {_level(c['reference'])} ({evidence(c, False)}){_mark(c)}" for c in dep[:4]]
    more = f" (+{len(dep) - 4} more in guidelines.json)" if len(dep) > 4 else ""
    pending = f" — needs ≥ {min_seeds} seeds to claim" if any(c["kind"] == "insufficient_replication" for c in dep) else ""
    overall = ", ".join(f"{m}: {_level(r)}" for m, r in dict.fromkeys((c["metric"], c["reference"]) for c in dep))
    return (f"**{factor_name(factor)} depends on {', '.join(sorted({factor_name(c['on']) for c in dep}))}"
            f"{pending}** (recommended over all levels: {overall}): " + "; ".join(parts) + more +
            f". ({_provenance(dep[0])}.)")


def psi_bullet(cs: list[dict]) -> str | None:
    psi = [c for c in cs if c["subject"] == "Ψ"]
    if not psi:
        return None
    word = {"better": "Ψ explains it better", "worse": "log λ explains it better", "equivalent": "both explain it "
            "equally", "undecided": "undecided"}
    parts = [f"{c['metric']}: {word[c.get('would_be', c['kind'])]} (R² {c['r2_psi']:.2f} vs {c['r2_lam']:.2f}; "
             f"{evidence(c, False)})" for c in psi]
    c0 = psi[0]
    return (f"**Ψ versus λ** (paper 1's claim; within feature level × pretraining, {c0['n_cells']} cells): "
            + "; ".join(parts) + f". ({_provenance(c0)}.)")


def top_bullet(c: dict, min_seeds: int = 3) -> str:
    tied = c.get("tied") or []
    others = c.get("others") or tied
    group = (f"tied with it (not distinguishable from the best): {_names(tied, others, 'other configurations')}"
             if tied else "no configuration ties with it")
    pending = f" (needs ≥ {min_seeds} seeds to claim)" if c["kind"] == "insufficient_replication" else ""
    return (f"**{c['metric']} — best configuration{pending}:** {c['subject']} (mean {c['mean']:.4g}{unit_suffix(c['metric'])}); "
            f"{group}. Against {c['reference']}: {evidence(c)}{_mark(c)}.")


def disagreement_bullet(cs: list[dict]) -> str | None:
    """Factor recommendations that metrics confirm in opposite directions, and differing best configurations (each
    metric's best against the other's, under that metric)."""
    dis = [c for c in cs if c.get("on") == "metric" and c.get("factor")]
    parts = [f"{factor_name(c['factor'])}: {c['metric']} prefers {_level(c['subject'])} "
             f"({evidence(c, False)}), {c['other']['metric']} prefers {_level(c['other']['subject'])} "
             f"(Δ{c['other']['metric']} {_num(c['other']['estimate'])} [95% CI {_num(c['other']['ci_low'])}, "
             f"{_num(c['other']['ci_high'])}])" for c in dis]
    best = [c for c in cs if c.get("on") == "metric" and c.get("other_metric")]
    split = [c for c in best if c.get("would_be", c["kind"]) == "depends"]
    parts += [f"under {c['metric']} its best {c['subject']} beats {c['other_metric']}'s best {c['reference']} "
              f"({evidence(c, False)})" for c in split]
    if best and not split:
        names = "; ".join(dict.fromkeys(f"{c['metric']}: {c['subject']}" for c in best))
        widest = max(best, key=lambda c: abs(c["estimate"]) / (c["min_effect"] or 1))
        parts.append(f"the best configuration differs by metric ({names}), but under each metric the others' bests "
                     f"are tied with its own (largest: {widest['metric']}, {evidence(widest, False)})")
    if not parts:
        return None
    c0 = (dis or best)[0]
    return ("**Where the metrics disagree:** " + "; ".join(parts) +
            f". ({_provenance(c0, family=OWN_FAMILIES)} per contrast.)")


def bullets(claims: list[dict], min_seeds: int = 3) -> list[str]:
    """The guidelines' bullets; `min_seeds`: the study's `analysis.min_seeds` (what a withheld claim needs)."""
    metrics = list(dict.fromkeys(c["metric"] for c in claims))[:PRIMARY]
    cs = [c for c in claims if c["metric"] in metrics]
    factors = list(dict.fromkeys(c["factor"] for c in cs if c.get("factor")))
    out = [importance_bullet(m, [c for c in cs if c["metric"] == m]) for m in metrics]
    out += [recommendation_bullet(f, cs, min_seeds) for f in factors]
    out += [depends_bullet(f, cs, min_seeds) for f in factors]
    out += [psi_bullet(cs)]
    out += [top_bullet(c, min_seeds) for c in cs if c.get("would_be", c["kind"]) == "best"]
    out += [disagreement_bullet(claims)]
    return [b for b in out if b]


def scope(claims: list[dict], context: dict) -> list[str]:
    """The paragraph before the list: unit, test set, replication, patients, convergence, thresholds, families."""
    lines = [f"Unit of every claim: the trained network (configuration × seed; {context['n_networks']} networks, "
             f"typically {context['seeds']} seed(s) per configuration); test images ({context['n_images']})"
             + (f" and patients ({context['n_patients']})" if context.get("patients_known", True) else "")
             + f" are random effects. A difference is called better/worse only when it is "
             f"significant within its family (α = {context['alpha']}) **and** at least the smallest effect that "
             f"matters ({context['thresholds']}); practically equivalent when the two one-sided tests put it inside ± "
             f"that effect; otherwise undecided. The best configuration, a factor's recommended level and the best "
             f"level within a context are chosen after looking, so their families are tested over every pair the "
             f"choice could have made (single-step max-t); factor terms are Holm-corrected. Families are per metric, "
             f"as each bullet names them; metrics are not corrected against each other."]
    who = population_sentence(claims, context.get("min_patients"), context.get("patients_known", True))
    if who:
        lines.append(f"**Population:** {who}")
    rep = [c for c in claims if c["kind"] == "insufficient_replication" and c["subject"] == "seeds per configuration"]
    if rep:
        need = ", ".join(f"{c['metric']}: {c['seeds_needed']:g}" for c in rep)
        sds = ", ".join(f"{c['metric']}: {c['estimate']:.3g}{unit_suffix(c['metric'])}" for c in rep)
        lines.append(f"**Replication is insufficient for claims about configurations:** {rep[0]['seeds']} seed(s) per "
                     f"configuration, fewer than {context['min_seeds']}; the estimates below are reported, not claimed. "
                     f"Seeds per configuration needed to detect the smallest effect with 80% power, from the "
                     f"between-network SD measured here ({sds}): {need}.")
    if context.get("improving"):
        top = sorted(context["improving"].items(), key=lambda kv: -kv[1])
        names = ", ".join(f"{k} ({v:.0%} of seeds)" for k, v in top[:10])
        names += f" and {len(top) - 10} more (`stats/convergence.csv`)" if len(top) > 10 else ""
        lines.append(f"**Still improving at the last epoch** (validation gain ≥ the smallest effect, best epoch last): "
                     f"{names}. A fixed epoch budget favours fast learners: for claims marked ⚠ the budget, not the "
                     f"design, may explain the result.")
    return lines


def as_markdown(claims: list[dict], context: dict) -> str:
    items = bullets(claims, context.get("min_seeds", 3))
    shown = items[:MAX_BULLETS]
    cut = ["", f"{len(items) - MAX_BULLETS} more bullet(s) left out to keep the list short; every claim is in "
           f"`guidelines.json`."] if len(items) > MAX_BULLETS else []
    more = open_paragraph(claims)
    return "\n".join(["# Guidelines", "", *[f"{p}\n" for p in scope(claims, context)],
                      *[f"- {b}" for b in shown], *cut, *(["", more] if more else []), "",
                      f"{len(claims)} claims in `guidelines.json`; the contrast tables in `stats/network_*.csv`.", ""])


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def _json(c) -> dict:
    """A claim's guidelines.json object: `Claim.to_json()`, or the mapping itself (claims made by hand)."""
    return c.to_json() if isinstance(c, Claim) else dict(c)


def write(claims: list[dict], context: dict, out: Path) -> str:
    """guidelines.json (NaN as null) and guidelines.md under `out`; returns the Markdown."""
    (out / "guidelines.json").write_text(json.dumps([_clean(_json(c)) for c in claims], indent=1, ensure_ascii=False))
    md = as_markdown(claims, context)
    (out / "guidelines.md").write_text(md)
    return md
