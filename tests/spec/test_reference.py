"""The generated spec reference (docs/spec-reference.md) and JSON Schema (docs/study.schema.json) are current with
the models, name every field, and check the shipped experiments while refusing a misspelt key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from study.spec import StudySpec, parse_spec
from study.spec.reference import MARKDOWN, REGENERATE, SCHEMA, sections

from helpers import REPO, tiny_spec

DOCS = REPO / "docs"
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Both files written by the command line into a fresh folder."""
    out = tmp_path_factory.mktemp("reference")
    res = subprocess.run([sys.executable, "-m", "study.spec.reference", str(out)], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.mark.parametrize("name", [MARKDOWN, SCHEMA])
def test_the_files_in_docs_are_what_the_models_generate(generated, name):
    assert (DOCS / name).is_file(), f"docs/{name} is missing: regenerate it with `{REGENERATE}`"
    assert (DOCS / name).read_bytes() == (generated / name).read_bytes(), (
        f"docs/{name} is out of date with study/spec: regenerate it with `{REGENERATE}`")


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    ends = [i for i in (text.find("\n#", start + len(heading)),) if i > 0]
    return text[start:ends[0] if ends else len(text)]


def test_every_field_of_every_model_is_in_its_section(generated):
    text = (generated / MARKDOWN).read_text(encoding="utf-8")
    found = sections()
    assert {m.__name__ for _, m in found} >= {"StudySpec", "DataSpec", "ModelSpec", "TrainingSpec", "EncoderSpec",
                                              "Factors", "Window", "LossSpec", "CriticSpec", "Resources", "Tracking",
                                              "SearchSpec", "SlurmSpec", "AnalysisSpec"}
    for path, model in found:
        heading = f"{'`' + path + '`' if path else 'Top level'} (`{model.__name__}`)"
        line = next((x for x in text.splitlines() if x.startswith("#") and x.endswith(heading)), None)
        assert line, f"no section for {heading}"
        body = _section(text, line)
        for name, info in model.model_fields.items():
            assert f"| `{name}` |" in body, f"{path or 'top level'}.{name} is missing from its section"
            if info.description:
                assert info.description.split()[0] in body, f"{path}.{name}: its description is missing"


def _validator(schema: dict):
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(schema)


def test_the_schema_accepts_the_shipped_experiments_and_refuses_a_misspelt_key():
    schema = json.loads((DOCS / SCHEMA).read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["title"]
    # every model is strict (extra="forbid"), so every object of the schema refuses unknown keys
    objects = [schema, *schema["$defs"].values()]
    assert all(o.get("additionalProperties") is False for o in objects)
    assert EXPERIMENTS, "no experiments/*.yaml"
    for path in EXPERIMENTS:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert set(raw) <= set(schema["properties"]), path.name
    validator = _validator(schema)
    for path in EXPERIMENTS:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
        assert not errors, f"{path.name}: {errors[:3]}"
    for bad in ({"name": "x", "trainng": {"epochs": 3}}, {"name": "x", "training": {"epoch": 3}},
                {"name": "x", "analysis": {"min_effect": {"psnrr": 0.2}}}, {"name": "x", "backend": "slurm"}):
        assert list(validator.iter_errors(bad)), bad


def test_what_the_schema_accepts_the_spec_loads(tmp_path):
    raw = tiny_spec(tmp_path, search={"over": "psi_target", "low": 0.3, "high": 0.9, "budget": 2},
                    metric_window={"center": 50, "width": 350})
    assert not list(_validator(StudySpec.model_json_schema()).iter_errors(raw))
    parse_spec(raw, check_paths=False)
