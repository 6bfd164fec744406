"""The plan of a study: its trials (grid + run keys), the trial table a dry run prints, and each trial's spec (the
pure-function input of `study.trial`). Reads nothing but the spec, the weights files' hashes and an adaptive study's
stage record; writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from study.data.cache import data_id as make_data_id, tiled_steps
from study.planning.grid import Trial, expand, keyed
from study.planning.stages import staged, with_all_seeds
from study.encoders.cache import encoder_key
from study.errors import StudyError
from study.spec import StudySpec
from study.store.results import STATES, trial_dir, trial_state
from study.trial.spec import TrialSpec


@dataclass
class Plan:
    spec: StudySpec
    out: Path
    trials: list[Trial]
    data_id: str
    encoder_keys: dict[str, str]
    stage: dict[str, int] = field(default_factory=dict)  # adaptive studies: run key → stage (1, 2)

    def states(self) -> dict[str, str]:
        if not (self.out / "trials").is_dir():  # nothing started: no need to look for 10⁵ trial folders
            return {t.run_key: "pending" for t in self.trials}
        return {t.run_key: trial_state(trial_dir(self.out, t.run_key)) for t in self.trials}

    def rows(self) -> list[dict]:
        """One row per trial for grid.json and the tables: run key, configuration and factors (the run keys a Ψ
        trial takes its λ from stay in its config, not in the tables)."""
        return [{"run_key": t.run_key, "configuration": t.configuration, "psi_target": None,
                 **{k: v for k, v in t.factors().items() if k != "lam_from"},
                 **({"stage": self.stage[t.run_key]} if self.stage else {})} for t in self.trials]


def plan(spec: StudySpec, output: Optional[str | Path] = None, *, allow_missing_weights: bool = False) -> Plan:
    """The study's trials. `allow_missing_weights` (a dry run): missing inputs — weights files, a Ψ pilot folder —
    do not stop it; their trials get provisional run keys (`study.planning.preflight` lists what is missing)."""
    out = spec.output_dir(output)
    did = make_data_id(spec.data)
    keys = {name: encoder_key(spec.encoder(name), did, allow_missing=allow_missing_weights)
            for name in used_encoders(spec)}
    trials = expand(with_all_seeds(spec) if spec.adaptive else spec, did, keys)
    stage = {}
    if spec.adaptive:  # stage 1, and the seeds a recorded stage-2 decision added (study.planning.stages)
        trials, stage = staged(spec, trials, out)
    if spec.training.psi_calibration == "converged":
        trials = _with_converged_lams(spec, trials, did, keys, allow_missing_weights)
    return Plan(spec, out, trials, did, keys, stage)


def used_encoders(spec: StudySpec) -> list[str]:
    """The `pretraining` levels whose encoders the trials load: none where no trial has a perceptual term."""
    f = spec.factors
    needs_encoder = (any(v > 0 for v in f.lam) or bool(f.psi_target)) and (
        not f.loss or any(spec.loss(name).perceptual for name in f.loss))
    return sorted(set(f.pretraining)) if needs_encoder else []


def _with_converged_lams(spec: StudySpec, trials: list[Trial], data_id: str, keys: dict,
                         allow_missing: bool = False) -> list[Trial]:
    """Ψ-target trials calibrated as paper 1 did, from the last-epoch magnitudes of finished fixed-λ trials of the
    same feature level and pretraining: a pilot folder's (λ known now, and keyed) or, with `psi_pilot: self`, this
    study's own (keyed by their run keys; λ read when they have finished, see `converged_lam`). `allow_missing`
    (a dry run): a pilot folder that is missing, or lacks a pair, leaves those Ψ trials without their λ."""
    if spec.training.psi_pilot == "self":
        return [keyed(spec, replace(t, pilot_keys=_pilot_keys(trials, t)), data_id, keys)
                if t.psi_target is not None else t for t in trials]
    pilot = Path(spec.training.psi_pilot)
    try:
        lams = pilot_lams(pilot, sorted(set(spec.factors.psi_target)))
    except StudyError:
        if allow_missing:
            return trials
        raise
    out = []
    for t in trials:
        if t.psi_target is not None:
            lam = lams.get((t.feature_level, t.pretraining, t.psi_target))
            if lam is None and allow_missing:
                out.append(t)
                continue
            if lam is None:
                raise StudyError(f"training.psi_pilot {pilot}: no finished fixed-λ trial of {t.feature_level} · "
                                 f"{t.pretraining} to calibrate Ψ={t.psi_target:g} from")
            t = keyed(spec, replace(t, lam_converged=float(lam)), data_id, keys)
        out.append(t)
    return out


def _pilot_keys(trials: list[Trial], t: Trial) -> tuple:
    keys = tuple(sorted(o.run_key for o in trials if o.psi_target is None and (o.lam or 0) > 0 and o.loss == t.loss
                        and (o.feature_level, o.pretraining) == (t.feature_level, t.pretraining)))
    if not keys:
        raise StudyError(f"training.psi_pilot: self needs fixed-λ trials (λ > 0) of {t.feature_level} · "
                         f"{t.pretraining} in factors.lam to calibrate Ψ={t.psi_target:g} from")
    return keys


def pilot_lams(pilot: Path, targets: list[float]) -> dict:
    """λ per (feature level, pretraining, Ψ target) from the last-epoch magnitudes of the finished fixed-λ trials in
    the pilot results folder `pilot` (paper 1's converged calibration); a pair without such a trial is absent. A
    folder without a readable trials.parquet is a one-line StudyError naming training.psi_pilot."""
    return _converged_table(_read_trials(Path(pilot)), targets)


def _read_trials(pilot: Path):
    import pandas as pd

    try:
        return pd.read_parquet(pilot / "trials.parquet")
    except (OSError, ValueError) as err:
        raise StudyError(f"training.psi_pilot {pilot}: no readable trials.parquet ({type(err).__name__})") from None


def _converged_table(trials, targets: list[float]) -> dict:
    from analysis.psi_calibration import converged_lams

    table = converged_lams(trials, targets)
    return {(r.feature_level, r.pretraining, r.psi_target): r.lam_converged for r in table.itertuples()}


def converged_lam(p: "Plan", t: Trial) -> Optional[float]:
    """λ of a `psi_pilot: self` trial from its pilot trials' records; None until they have finished."""
    import pandas as pd

    from study.store.results import read_record

    by_key = {o.run_key: o for o in p.trials}
    rows = []
    for key in t.pilot_keys:
        rec = read_record(trial_dir(p.out, key)) or {}
        if rec.get("status") == "finished":
            o = by_key[key]
            rows.append({"status": "finished", "feature_level": o.feature_level, "pretraining": o.pretraining,
                         "lam": o.lam, "psi_target": None, "pixel_loss": rec.get("pixel_loss"),
                         "perceptual_loss": rec.get("perceptual_loss")})
    if not rows:
        return None
    return _converged_table(pd.DataFrame(rows), [t.psi_target]).get((t.feature_level, t.pretraining, t.psi_target))


TABLE_ROWS = 60  # a dry run of a larger grid prints its trials by factor (`--all`: every row)
FACTOR_LEVELS = 24  # levels of one factor listed by name in that summary (the first and the last ones beyond)


def print_table(p: Plan, console: Console, *, all_rows: bool = False) -> dict[str, str]:
    """The dry run's view of the plan: every trial (grids up to TABLE_ROWS, or `all_rows`) or the trials by factor,
    then the count by state and, for tiled patches, the steps per epoch. Returns the states (run key → state)."""
    states = p.states()
    if len(p.trials) <= TABLE_ROWS or all_rows:
        _print_rows(p, console, states)
    else:
        _print_by_factor(p, console)
    counts = {s: list(states.values()).count(s) for s in STATES}
    console.print(f"{len(p.trials)} trials ({len(set(t.configuration for t in p.trials))} configurations × "
                  f"{len(p.spec.factors.seed)} seeds): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    tr = p.spec.training
    if tr.patches == "tiled":  # steps per epoch come from the data, not from training.steps_per_epoch
        steps, where = steps_per_epoch(p)
        text = where if steps is None else f"{steps} steps per epoch ({where})"
        console.print(f"tiled patches: {escape(text)}, {tr.epochs} epochs")
    return states


def steps_per_epoch(p: Plan) -> tuple[Optional[int], str]:
    """Optimiser steps per epoch and where the number comes from: training.steps_per_epoch for random patches; for
    tiled ones the prepared data, the spec (phantoms) or the data under data.root (None where unknown)."""
    tr = p.spec.training
    if tr.patches != "tiled":
        return tr.steps_per_epoch, "training.steps_per_epoch"
    try:
        return tiled_steps(p.spec.data, tr.patch_size, tr.batch_size, p.out / "data" / f"data-{p.data_id}")
    except StudyError as err:  # data under data.root that cannot be read: the preflight says what is wrong
        return None, f"unknown: {err}"


def _print_rows(p: Plan, console: Console, states: dict[str, str]) -> None:
    table = Table(title=f"study '{escape(p.spec.name)}' → {escape(str(p.out))}")
    # the configuration label names every factor (loss, feature level, pretraining, λ/Ψ); it wraps, never cut
    for col in ("#", "configuration", "seed", "run_key", "state"):
        table.add_column(col, no_wrap=col in ("#", "run_key"), overflow="fold")
    for i, t in enumerate(p.trials):
        table.add_row(str(i), escape(t.configuration), str(t.seed), t.run_key, states[t.run_key])
    console.print(table)


def _print_by_factor(p: Plan, console: Console) -> None:
    """Trials per level of each factor (pixel-only baselines count as `none`), instead of a row per trial."""
    console.print(f"study '{escape(p.spec.name)}' → {escape(str(p.out))}: {len(p.trials):,} trials, more than "
                  f"{TABLE_ROWS}: by factor (`--all` lists every trial)", highlight=False, soft_wrap=True)
    for name, counts in factor_counts(p).items():
        items = [f"{escape(level)} {n:,}" for level, n in counts.items()]
        if len(items) > FACTOR_LEVELS:  # e.g. a λ grid of 10⁴ values: its first and last levels
            items = [*items[:FACTOR_LEVELS - 4], f"… {len(items) - FACTOR_LEVELS + 1:,} more levels …", *items[-3:]]
        console.print(f"  {name}: " + " · ".join(items), highlight=False, soft_wrap=True)


def factor_counts(p: Plan) -> dict[str, dict[str, int]]:
    """factor → level → number of trials, levels in the spec's order; `none` (baselines) and `—` (a factor that
    does not apply to a trial, e.g. psi_target of a fixed-λ trial, or λ of a Ψ-target trial) last."""
    f = p.spec.factors
    names = ["loss"] * bool(f.loss) + ["feature_level", "pretraining", "lam"] + ["psi_target"] * bool(f.psi_target)
    out = {}
    for name in [*names, "seed"]:
        order = {_level(v): i for i, v in enumerate(getattr(f, name))}
        counts: dict[str, int] = {}
        for t in p.trials:
            level = _level(getattr(t, name))
            counts[level] = counts.get(level, 0) + 1
        out[name] = dict(sorted(counts.items(), key=lambda kv: (kv[0] not in order, order.get(kv[0], 0), kv[0])))
    return out


def _level(value) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_specs(p: Plan, data, encoders: dict) -> list[TrialSpec]:
    return [trial_spec(p, t, data, encoders) for t in p.trials]


def trial_spec(p: Plan, t: Trial, data, encoders: dict) -> TrialSpec:
    """The pure-function input of one trial: everything `run_trial` needs, paths absolute (Ray workers)."""
    s = p.spec
    enc_path, enc_sha = encoders.get(t.pretraining, (None, None))
    return TrialSpec(
            run_key=t.run_key, study=s.name, configuration=t.configuration, feature_level=t.feature_level,
            pretraining=t.pretraining, lam=t.lam, psi_target=t.psi_target, seed=t.seed, model=s.model,
            training=s.training, data_path=str(data.path.resolve()), data_id=p.data_id,
            data_sha256=data.sha256, window=s.window, hu_range=(s.data.hu_min, s.data.hu_max),
            out_dir=str(trial_dir(p.out, t.run_key).resolve()),
            encoder_path=str(Path(enc_path).resolve()) if enc_path else None,
            encoder_id=p.encoder_keys.get(t.pretraining), encoder_sha256=enc_sha,
            encoder_input=_input_mode(s, t.pretraining) if not t.is_baseline else "none",
            example_images=s.tracking.example_images, gpu_fraction=s.resources.gpu, loss=t.loss,
            lam_converged=converged_lam(p, t) if t.pilot_keys else t.lam_converged,
            loss_spec=s.loss(t.loss) if t.loss is not None else None, metrics=list(s.metrics))


def _input_mode(spec: StudySpec, pretraining: str) -> str:
    from study.encoders.vgg import resolve_input_mode

    enc = spec.encoder(pretraining)
    return resolve_input_mode(enc.input, enc.source)
