"""Fault injection, bad input (issue #21 item 6, the spec part): each bad spec is one line, exit ≠ 0, fast, and
nothing is written."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from helpers import tiny_spec, write_spec

BOMB = """name: bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def _run(path, *args):
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "study", "run", str(path), "--backend", "local", *args],
                         capture_output=True, text=True, timeout=120)
    return res, time.perf_counter() - t


def _one_line_error(res):
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("where", ["description", "lam"])
def test_a_yaml_alias_bomb_is_refused_in_one_line(tmp_path, where):
    spec = yaml.safe_dump(tiny_spec(tmp_path), sort_keys=False)
    bomb = BOMB.replace("name: bomb\n", "")
    field = "description: *g\n" if where == "description" else ""
    text = bomb + spec.replace("  lam:\n  - 0\n  - 0.1\n", "  lam: *g\n") + field
    path = tmp_path / "study.yaml"
    path.write_text(text)
    res, seconds = _run(path)
    line = _one_line_error(res)
    assert "alias" in line and len(line) < 400 and seconds < 20
    assert not (tmp_path / "tiny").exists()


def test_a_non_utf8_spec_is_one_line(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    res, _ = _run(path)
    assert "not UTF-8" in _one_line_error(res)


@pytest.mark.parametrize("seed", [-1, 2**70])
def test_out_of_range_seeds_are_refused_before_anything_is_written(tmp_path, seed):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"seed": [seed]}))
    res, _ = _run(path)
    line = _one_line_error(res)
    assert "factors.seed" in line and str(seed) in line
    assert not (tmp_path / "tiny").exists()


def test_a_patch_larger_than_the_slices_is_refused(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, training={"patch_size": 96}))
    res, _ = _run(path)
    assert "patch_size 96" in _one_line_error(res) and not (tmp_path / "tiny").exists()


def test_error_text_keeps_brackets_and_quotes_a_bounded_value(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [float("nan")] + [0.1] * 5000}))
    res, _ = _run(path)
    line = _one_line_error(res)
    assert "[nan" in line  # not eaten as console markup
    assert len(line) < 600
