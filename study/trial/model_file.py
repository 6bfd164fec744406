"""A finished trial's model, `trials/<run_key>/model.pt`: the selected weights alone (no optimiser state), with what
is needed to apply them to a scan — the model spec, the HU range the network's [0, 1] input and output map to, and
the trial's identity (run key, configuration, seed, selected epoch).

It replaces the resume checkpoint once the trial's record is written (`training.keep_checkpoint: true` keeps both).
Keys: `MODEL_KEYS`. Tensors are on the CPU, so the file loads anywhere (`weights_only=True`).
"""

from __future__ import annotations

from pathlib import Path

from study.store.results import atomic_torch_save

MODEL_FILE = "model.pt"
MODEL_KEYS = ("format", "model", "model_spec", "hu_range", "run_key", "configuration", "seed", "epoch", "study")
FORMAT = "study.model/1"


def save_model(out_dir: Path, spec, best: dict) -> Path:
    """Write `out_dir/model.pt` from the trial's `TrialSpec` and its selected weights (`best`: {"epoch", "model"})."""
    path = Path(out_dir) / MODEL_FILE
    weights = {k: v.detach().to("cpu").contiguous() for k, v in best["model"].items()}
    atomic_torch_save({"format": FORMAT, "model": weights, "model_spec": spec.model.model_dump(mode="json"),
                       "hu_range": [float(v) for v in spec.hu_range], "run_key": spec.run_key,
                       "configuration": spec.configuration, "seed": int(spec.seed), "epoch": int(best["epoch"]),
                       "study": spec.study}, path)
    return path


def load_model(path: Path, device="cpu"):
    """(network in eval mode, the file's metadata) from a `model.pt`; a file that is not one is a one-line
    StudyError naming it."""
    import torch

    from study.errors import StudyError
    from study.models import build_model
    from study.spec import ModelSpec

    try:
        meta = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise StudyError(f"{path}: cannot be read as a model file ({type(err).__name__}: {err})") from None
    missing = [k for k in MODEL_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise StudyError(f"{path}: not a study model file (missing {', '.join(missing)})")
    model = build_model(ModelSpec.model_validate(meta["model_spec"]))
    model.load_state_dict(meta.pop("model"))
    return model.to(device).eval(), meta
