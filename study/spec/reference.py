"""The spec reference, generated from the pydantic models of `study.spec` (the only place defaults live), so that it
cannot drift from them:

- `docs/spec-reference.md`: every section and field of a study spec with its type, default, allowed values,
  constraints and description, nested models as sub-sections;
- `docs/study.schema.json`: the JSON Schema of `StudySpec`, for editors that check YAML (yaml-language-server: put
  `# yaml-language-server: $schema=../docs/study.schema.json` on the first line of a spec in experiments/).

    python -m study.spec.reference docs/      (re)writes both; tests/spec/test_reference.py checks they are current
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

import annotated_types as at
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from study.spec.metric_names import METRIC_UNITS, METRICS, MIN_EFFECT, MetricName
from study.spec.parts import BUILTIN_LOSSES, BUILTIN_PRETRAININGS, WINDOWS
from study.spec.study import StudySpec

MARKDOWN = "spec-reference.md"
SCHEMA = "study.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "python -m study.spec.reference docs/"
_NONE = type(None)


def sections(model: type[BaseModel] = StudySpec, path: str = "") -> list[tuple[str, type[BaseModel]]]:
    """(path, model) of every model of the spec, depth first in field order: '' for the top level, then `data`,
    …, `encoders.<name>`, `losses.<name>`, `losses.<name>.critic` …"""
    out = [(path, model)]
    for name, info in model.model_fields.items():
        for inner, keyed in _models(info.annotation):
            sub = f"{path}.{name}" if path else name
            out += sections(inner, f"{sub}.<name>" if keyed else sub)
    return out


def _models(tp, keyed: bool = False) -> Iterator[tuple[type[BaseModel], bool]]:
    """The models an annotation holds (Optional, Union, dict values), each with whether it sits under a named key."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp, keyed
    elif origin is dict:
        yield from _models(args[1], True)
    elif origin in (Union, types.UnionType, list, Annotated):
        for arg in args[:1] if origin is Annotated else args:
            yield from _models(arg, keyed)


def _type(tp) -> str:
    """An annotation as the reference shows it: `int`, `list[str]`, `dict[str, EncoderSpec]`, `float | null`;
    a Literal shows its values' type (the values themselves are under 'allowed')."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type(args[0])
    if origin is Literal:
        return " | ".join(dict.fromkeys(type(v).__name__ for v in args))
    if origin is list:
        return f"list[{_type(args[0])}]"
    if origin is dict:
        return f"dict[{_type(args[0])}, {_type(args[1])}]"
    if args and origin in (Union, types.UnionType):
        return " | ".join(_type(a) for a in args)
    if tp is _NONE:
        return "null"
    return getattr(tp, "__name__", str(tp))


def _bounds(metadata) -> list[str]:
    """ge/gt/le/lt and length constraints as text: `≥ 1`, `< 0.5`, `at least 1 item`."""
    out = []
    for m in metadata:
        for cls, attr, text in ((at.Ge, "ge", "≥"), (at.Gt, "gt", ">"), (at.Le, "le", "≤"), (at.Lt, "lt", "<")):
            if isinstance(m, cls):
                out.append(f"{text} {_value(getattr(m, attr))}")
        if isinstance(m, at.MinLen):
            out.append(f"at least {m.min_length} item{'s' * (m.min_length != 1)}")
        if isinstance(m, at.MaxLen):
            out.append(f"at most {m.max_length} items")
    return out


def _allowed(tp, role: str = "") -> list[str]:
    """Allowed values (Literals) and constraints inside an annotation: `one of …`, `items ≥ 0`, `keys: one of …`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    prefix = f"{role}: " if role else ""
    if origin is Literal:
        return [prefix + "one of " + ", ".join(f"`{_value(v)}`" for v in args)]
    if origin is Annotated:
        bounds = _bounds([m for a in args[1:] for m in getattr(a, "metadata", [a])])
        return _allowed(args[0], role) + ([prefix + ", ".join(bounds)] if bounds else [])
    if origin is list:
        return _allowed(args[0], "items")
    if origin is dict:
        return _allowed(args[0], "keys") + _allowed(args[1], "values")
    return [x for a in args for x in _allowed(a, role)]


def _value(v: Any) -> str:
    """A default or allowed value as YAML would spell it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else '""'
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, ensure_ascii=False)
    return repr(v)


def _default(info) -> str:
    """A field's default: `required`, `(section)` for a nested model, else its value in backticks."""
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{_value(value)}`"


def _cell(text: str) -> str:
    """Text for a table cell: `|` escaped, and `<…>` outside code spans as entities (else markdown hides it as
    HTML)."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def _doc(model: type[BaseModel]) -> str:
    """The model's own docstring (not inherited), cleaned."""
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _section(path: str, model: type[BaseModel]) -> list[str]:
    """One model: a heading at its depth, its docstring and a table of its fields."""
    depth = 2 + path.count(".") - path.count(".<name>") if path else 2
    title = f"`{path}`" if path else "Top level"
    lines = [f"{'#' * min(depth, 6)} {title} (`{model.__name__}`)", ""]
    if _doc(model):
        lines += [_doc(model), ""]
    lines += ["| field | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        allowed = "; ".join(_allowed(info.annotation) + _bounds(info.metadata))
        lines.append(f"| `{name}` | `{_cell(_type(info.annotation))}` | {_cell(_default(info))} | {_cell(allowed)} | "
                     f"{_cell(info.description or '')} |")
    return lines + [""]


def _names() -> list[str]:
    """The named values a spec may use without defining them (from the same constants the models check against)."""
    windows = ", ".join(f"`{k}` ({c:g}/{w:g} HU)" for k, (c, w) in WINDOWS.items())
    effects = ", ".join(f"`{k}` {v:g}{' ' + METRIC_UNITS[k] if METRIC_UNITS.get(k) else ''}"
                        for k, v in MIN_EFFECT.items())
    return ["## Names", "",
            f"- `metric_window` names (centre/width): {windows}; or a `{{center, width}}` mapping.",
            f"- built-in `factors.pretraining` levels: {', '.join(f'`{p}`' for p in BUILTIN_PRETRAININGS)} "
            "(others are defined under `encoders:`).",
            f"- built-in `factors.loss` levels: {', '.join(f'`{n}`' for n in BUILTIN_LOSSES)} "
            "(others are defined under `losses:`).",
            f"- metrics: {', '.join(f'`{m}`' for m in typing.get_args(MetricName))}; "
            f"always computed: {', '.join(f'`{m}`' for m in METRICS)}.",
            f"- smallest effects worth acting on (`analysis.min_effect` overrides): {effects}.", ""]


def markdown() -> str:
    """docs/spec-reference.md."""
    head = ["# Study spec reference", "",
            f"Generated from the pydantic models in `study/spec/` by `{REGENERATE}`; do not edit by hand "
            "(`tests/spec/test_reference.py` fails when this file and the models disagree). How to write a study: "
            "[spec.md](spec.md).", "",
            "Every field is checked when a spec is loaded; an unknown key is an error. Rules that involve several "
            "fields (e.g. a `pretraining` level must be built in or defined under `encoders:`) are checked too and "
            "reported in one line naming the field.", "",
            f"Editors can check a spec against [{SCHEMA}]({SCHEMA}) (JSON Schema). With yaml-language-server "
            "(VS Code's YAML extension, and others), the first line of a spec in `experiments/`:", "",
            "```yaml", f"# yaml-language-server: $schema=../docs/{SCHEMA}", "```", ""]
    body = [line for path, model in sections() for line in _section(path, model)]
    return "\n".join(head + body + _names()).rstrip("\n") + "\n"


def schema() -> dict:
    """docs/study.schema.json: `StudySpec.model_json_schema()` with a dialect, a title and where it comes from."""
    s = StudySpec.model_json_schema()
    s.pop("title", None)
    return {"$schema": DIALECT, "title": "study spec (experiments/*.yaml)",
            "description": f"A study spec for `study run`. Generated from study/spec by `{REGENERATE}`.", **s}


def write(folder: Path) -> list[Path]:
    """Write both files into `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / MARKDOWN, folder / SCHEMA]
    out[0].write_text(markdown(), encoding="utf-8", newline="\n")
    out[1].write_text(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")
    return out


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print("usage: python -m study.spec.reference [FOLDER]   (default docs/): writes "
              f"{MARKDOWN} and {SCHEMA}", file=sys.stderr)
        return 2
    for path in write(Path(argv[0] if argv else "docs")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
