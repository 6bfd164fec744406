"""Reading a study spec: YAML (safely, see yaml_io) → validated `StudySpec`; every mistake one line naming the
file, the field and the value (quoted to at most MAX_QUOTE characters)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from study.errors import StudyError
from study.spec.study import StudySpec
from study.spec.yaml_io import read_yaml


MAX_QUOTE = 200  # characters of a bad value an error message quotes


def _short(value) -> str:
    """repr of a bad value, cut to MAX_QUOTE characters (a huge value must not become a huge message)."""
    if isinstance(value, (list, tuple)) and len(value) > 50:
        value = type(value)(value[:50])
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + f"… ({len(text)} characters)"


MAX_ERRORS = 5  # problems of one spec listed in its one-line error


def _vocabulary() -> list[str]:
    """Every field name of the spec's models (for "did you mean")."""
    from pydantic import BaseModel

    names, todo, seen = set(), [StudySpec], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
                for inner in (arg, *getattr(arg, "__args__", ())):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        todo.append(inner)
    return sorted(names)


def _one(e: dict) -> str:
    loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after")) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    value = e.get("input")
    shown = "" if isinstance(value, dict) else f" (got {_short(value)})"
    if e.get("type") == "extra_forbidden":
        from difflib import get_close_matches

        close = get_close_matches(str(e["loc"][-1]), _vocabulary(), n=1, cutoff=0.75)
        shown += f" (did you mean {close[0]!r}?)" if close else ""
    return f"field '{loc}': {msg}{shown}"


def _describe(err: ValidationError) -> str:
    """Every problem of a spec (up to MAX_ERRORS) on one line, each naming its field and value."""
    errors = err.errors()
    parts = [_one(e) for e in errors[:MAX_ERRORS]]
    more = f"; and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
    return "; ".join(parts) + more


def parse_spec(raw: dict, source: str = "<spec>", *, check_paths: bool = True) -> StudySpec:
    """Validate a spec; relative paths are resolved against the spec's folder and, with `check_paths`, must exist
    (a dry run on a machine without the data or weights passes `check_paths=False`)."""
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: a study spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as err:
        raise StudyError(f"{source}: {_describe(err)}") from None
    base = Path(source).parent if source != "<spec>" else Path(".")

    def resolve(value: str, field: str, want_dir: bool) -> str:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else base / p
        if check_paths and not (p.is_dir() if want_dir else p.is_file()):
            kind = "folder" if want_dir else "file"
            raise StudyError(f"{source}: field '{field}': {kind} not found (got {value!r})")
        return str(p.resolve())

    encoders = {}
    for name, enc in spec.encoders.items():
        if enc.source == "file":
            enc = enc.model_copy(update={"path": resolve(enc.path, f"encoders.{name}.path", False)})
        if enc.source in ("rotnet", "supervised") and enc.dataset not in ("study-ct", "natural"):
            enc = enc.model_copy(update={"dataset": resolve(enc.dataset, f"encoders.{name}.dataset", True)})
        encoders[name] = enc
    data_update = {key: resolve(getattr(spec.data, key), f"data.{key}", key == "root")
                   for key in ("root", "manifest") if getattr(spec.data, key)}
    update = {"encoders": encoders, "data": spec.data.model_copy(update=data_update)}
    if spec.training.psi_pilot and spec.training.psi_pilot != "self":
        pilot = resolve(spec.training.psi_pilot, "training.psi_pilot", True)
        update["training"] = spec.training.model_copy(update={"psi_pilot": pilot})
    return spec.model_copy(update=update)


def load_spec(path: str | Path, *, check_paths: bool = True) -> StudySpec:
    """Read and validate a study YAML; raises StudyError with one line naming file, field and value."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: study spec not found")
    return parse_spec(read_yaml(path), str(path), check_paths=check_paths)
