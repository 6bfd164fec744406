"""`search:` needs optuna, an extra (`study[search]`): without it a spec with `search:` fails in one line, before
Ray starts or anything is written."""

from __future__ import annotations

import sys

import pytest

from study.errors import StudyError

from helpers import tiny_spec

MESSAGE = "search: needs optuna: pip install 'study[search]'"


def test_require_optuna_names_the_extra_when_optuna_is_missing(monkeypatch):
    from study.running.refine import require_optuna

    require_optuna()  # installed here (the test extra has it)
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now raises ImportError
    with pytest.raises(StudyError) as err:
        require_optuna()
    assert str(err.value) == MESSAGE and "\n" not in str(err.value)


def test_refine_fails_first_without_optuna(tmp_path, monkeypatch):
    from study.planning.plan import plan
    from study.running.refine import refine
    from study.spec import parse_spec

    raw = tiny_spec(tmp_path, backend="ray", search={"over": "psi_target", "low": 0.3, "high": 0.9, "budget": 2})
    p = plan(parse_spec(raw, check_paths=False))
    monkeypatch.setitem(sys.modules, "optuna", None)
    started = []
    monkeypatch.setattr("study.backends.ray.ensure_ray", lambda *a, **k: started.append(1) or False)
    with pytest.raises(StudyError, match=r"^search: needs optuna"):
        refine(p, None, None)
    assert not started and not (tmp_path / "tiny" / "search.db").exists()
