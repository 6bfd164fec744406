"""The study spec: defaults, and one-line errors naming file, field and value."""

from __future__ import annotations

import pytest

from study.spec import load_spec, parse_spec
from study.errors import StudyError

from helpers import REPO, tiny_spec, write_spec


def test_smoke_spec_loads_with_its_factors():
    spec = load_spec(REPO / "experiments" / "smoke.yaml")
    assert spec.factors.feature_level == ["block3_conv2", "block5_conv4"]
    assert 0.0 in spec.factors.lam and len(spec.factors.seed) == 3  # the fewest seeds the guidelines accept
    assert spec.analysis.min_seeds == 3 and spec.analysis.effect("psnr") == 0.1
    assert spec.window.center == 40 and spec.window.width == 400
    assert spec.data.n_test >= 24


@pytest.mark.parametrize("patch, field, value", [
    ({"training": {"epochs": 0}}, "training.epochs", "0"),
    ({"factors": {"feature_level": ["block9_conv9"]}}, "factors.feature_level", "block9_conv9"),
    ({"factors": {"lam": [0.1, -1]}}, "factors.lam", "-1"),
    ({"data": {"dose_fraction": 1.5}}, "data.dose_fraction", "1.5"),
    ({"metric_window": "liver"}, "metric_window", "liver"),
    ({"training": {"learning_rate": 0.1}}, "training.learning_rate", "0.1"),
])
def test_bad_value_names_file_field_and_value(tmp_path, patch, field, value):
    path = write_spec(tmp_path, tiny_spec(tmp_path, **patch))
    with pytest.raises(StudyError) as err:
        load_spec(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and field in msg and value in msg


def test_unknown_pretraining_is_named(tmp_path):
    raw = tiny_spec(tmp_path, factors={"pretraining": ["radimagenet"]})
    with pytest.raises(StudyError, match="radimagenet"):
        parse_spec(raw, "x.yaml")


def test_missing_encoder_file_is_named(tmp_path):
    raw = tiny_spec(tmp_path, encoders={"mine": {"source": "file", "path": "nowhere.pth"}},
                    factors={"pretraining": ["mine"]})
    path = write_spec(tmp_path, raw)
    with pytest.raises(StudyError, match=r"encoders\.mine\.path.*nowhere\.pth"):
        load_spec(path)


def test_encoder_path_is_resolved_relative_to_the_spec(tmp_path, vgg_weights_file):
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "enc.pth"
    target.write_bytes(vgg_weights_file.read_bytes())
    raw = tiny_spec(tmp_path, encoders={"mine": {"source": "file", "path": "w/enc.pth"}}, factors={"pretraining": ["mine"]})
    spec = load_spec(write_spec(tmp_path, raw))
    assert spec.encoders["mine"].path == str(target.resolve())


def test_invalid_yaml_reports_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nfactors: [unclosed\n")
    with pytest.raises(StudyError, match=r"broken\.yaml: invalid YAML at line"):
        load_spec(path)


def test_paper_grid_dry_run_plans_without_data_or_weights_and_names_them(tmp_path):
    from typer.testing import CliRunner

    from study.cli import app

    res = CliRunner().invoke(app, ["run", str(REPO / "experiments" / "perceptual_grid.yaml"), "--dry-run"])
    assert res.exit_code == 2 and "preflight: " in res.output, res.output  # the missing inputs are listed
    assert "2165 trials (433 configurations × 5 seeds)" in res.output.replace("\n", " ")
    with pytest.raises(StudyError, match="not found"):  # a real run does need them
        load_spec(REPO / "experiments" / "perceptual_grid.yaml")


def test_analysis_section_is_validated(tmp_path):
    spec = load_spec(write_spec(tmp_path, tiny_spec(tmp_path, analysis={"min_effect": {"psnr": 0.2}})))
    assert spec.analysis.effect("psnr") == 0.2 and spec.analysis.effect("ssim") == 0.002
    with pytest.raises(StudyError, match=r"field 'analysis.min_effect.psnx.*got 'psnx'"):
        load_spec(write_spec(tmp_path, tiny_spec(tmp_path, analysis={"min_effect": {"psnx": 0.2}})))
