"""The plan of a study: its trials (grid + run keys), the trial table a dry run prints, and each trial's spec (the
pure-function input of `study.trial`). Reads nothing but the spec and the weights files' hashes; writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from study.data.cache import data_id as make_data_id, tiled_steps
from study.driver.grid import Trial, expand
from study.encoders.cache import encoder_key
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

    def states(self) -> dict[str, str]:
        if not (self.out / "trials").is_dir():  # nothing started: no need to look for 10⁵ trial folders
            return {t.run_key: "pending" for t in self.trials}
        return {t.run_key: trial_state(trial_dir(self.out, t.run_key)) for t in self.trials}

    def rows(self) -> list[dict]:
        return [{"run_key": t.run_key, "configuration": t.configuration, "psi_target": None, **t.factors()}
                for t in self.trials]


def plan(spec: StudySpec, output: Optional[str | Path] = None, *, allow_missing_weights: bool = False) -> Plan:
    out = spec.output_dir(output)
    did = make_data_id(spec.data)
    f = spec.factors
    needs_encoder = (any(v > 0 for v in f.lam) or bool(f.psi_target)) and (
        not f.loss or any(spec.loss(name).perceptual for name in f.loss))
    used = sorted(set(spec.factors.pretraining)) if needs_encoder else []
    keys = {name: encoder_key(spec.encoder(name), did, allow_missing=allow_missing_weights) for name in used}
    return Plan(spec, out, expand(spec, did, keys), did, keys)


TABLE_ROWS = 60  # a dry run of a huge grid prints its head and tail, not 10⁵ rows


def print_table(p: Plan, console: Console) -> None:
    states = p.states()
    table = Table(title=f"study '{escape(p.spec.name)}' → {escape(str(p.out))}")
    # the configuration label names every factor (loss, feature level, pretraining, λ/Ψ); it wraps, never cut
    for col in ("#", "configuration", "seed", "run_key", "state"):
        table.add_column(col, no_wrap=col in ("#", "run_key"), overflow="fold")
    n = len(p.trials)
    shown = range(n) if n <= TABLE_ROWS else [*range(TABLE_ROWS - 10), None, *range(n - 10, n)]
    for i in shown:
        if i is None:
            table.add_row("…", f"{n - TABLE_ROWS:,} more trials", "", "", "")
            continue
        t = p.trials[i]
        table.add_row(str(i), escape(t.configuration), str(t.seed), t.run_key, states[t.run_key])
    console.print(table)
    counts = {s: list(states.values()).count(s) for s in STATES}
    console.print(f"{len(p.trials)} trials ({len(set(t.configuration for t in p.trials))} configurations × "
                  f"{len(p.spec.factors.seed)} seeds): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    tr = p.spec.training
    if tr.patches == "tiled":  # steps per epoch come from the data, not from training.steps_per_epoch
        steps, where = tiled_steps(p.spec.data, tr.patch_size, tr.batch_size, p.out / "data" / f"data-{p.data_id}")
        text = where if steps is None else f"{steps} steps per epoch ({where})"
        console.print(f"tiled patches: {escape(text)}, {tr.epochs} epochs")


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
            loss_spec=s.loss(t.loss) if t.loss is not None else None, metrics=list(s.metrics))


def _input_mode(spec: StudySpec, pretraining: str) -> str:
    from study.encoders.vgg import resolve_input_mode

    enc = spec.encoder(pretraining)
    return resolve_input_mode(enc.input, enc.source)
