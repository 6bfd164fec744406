"""VGG-19 feature extractors: layer cuts, weight sources and ids."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import vgg19

from study.encoders.vgg import (FeatureExtractor, feature_extractor, imagenet_file, load_state_dict, save_weights,
                                vgg19_features, weights_id)
from study.errors import StudyError
from study.encoders.layers import LAYER_END


@pytest.mark.parametrize("layer, end", [("block3_conv2", 14), ("block5_conv4", 36), ("relu3_2", 14),
                                        ("conv3_2", 13), ("block1_conv1", 2)])
def test_layer_cut_matches_torchvision_features(layer, end, vgg_weights_file):
    ref = vgg19()
    ref.load_state_dict(torch.load(vgg_weights_file, weights_only=True))
    ref = ref.features[:end].eval()
    for m in ref.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    enc = feature_extractor(layer, str(vgg_weights_file), input_mode="unit")
    x = torch.rand(2, 1, 40, 40)
    with torch.no_grad():
        expected = ref(x.repeat(1, 3, 1, 1))
        got = enc(x)
    assert LAYER_END[layer] == end
    torch.testing.assert_close(got, expected)
    post_relu = not layer.startswith("conv")
    assert bool((got >= 0).all()) == post_relu


def test_input_modes():
    enc_unit = feature_extractor("block1_conv1", "random", input_mode="unit")
    enc_255 = feature_extractor("block1_conv1", "random", input_mode="x255")
    assert enc_255.input_mode == "x255" and feature_extractor("block1_conv1", "random").input_mode == "x255"
    x = torch.rand(1, 1, 8, 8)
    conv = enc_unit.features[0]
    with torch.no_grad():
        a = enc_unit(x)
        b = enc_255(x)
        # x255 scales the linear part only; bias unchanged
        expected = torch.relu(torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1) * 255, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(b, expected)
    assert not torch.allclose(a, b)


def test_frozen_and_stays_in_eval_mode():
    enc = feature_extractor("block2_conv2", "random")
    enc.train()
    assert not enc.training and not enc.features.training
    assert all(not p.requires_grad for p in enc.parameters())


def test_random_weights_are_seeded_and_ids_are_content_hashes(tmp_path):
    a, _ = load_state_dict("random", seed=1)
    b, _ = load_state_dict("random", seed=1)
    c, _ = load_state_dict("random", seed=2)
    assert weights_id(a) == weights_id(b) != weights_id(c)
    path = tmp_path / "w.pt"
    wid = save_weights(a, {"source": "test"}, path)
    loaded, meta = load_state_dict(str(path))
    assert wid == weights_id(a) == weights_id(loaded) and meta["weights_id"] == wid and meta["source"] == "test"


def test_full_model_state_dict_file_is_accepted(vgg_weights_file):
    sd, meta = load_state_dict(str(vgg_weights_file))
    assert set(sd) == set(vgg19().features.state_dict()) and meta["source"] == "file"


def test_imagenet_missing_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(StudyError) as err:
        feature_extractor("block3_conv2", "imagenet")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "vgg19-dcbb9e9d.pth" in msg


def test_imagenet_loads_from_a_prestaged_torch_home(tmp_path, monkeypatch, vgg_weights_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = imagenet_file()
    target.parent.mkdir(parents=True)
    target.write_bytes(vgg_weights_file.read_bytes())
    enc = feature_extractor("block3_conv2", "imagenet")
    assert isinstance(enc, FeatureExtractor) and enc.input_mode == "imagenet"
    # the staged file's tensors are the ones loaded (not torchvision's download, not random weights)
    staged = {k.removeprefix("features."): v for k, v in torch.load(vgg_weights_file, weights_only=True).items()
              if k.startswith("features.")}
    loaded = enc.features.state_dict()
    assert weights_id(loaded) == weights_id({k: staged[k] for k in loaded})
    torch.manual_seed(0)
    assert weights_id(loaded) != weights_id({k: v for k, v in vgg19_features().state_dict().items() if k in loaded})


def test_bad_weights_files_are_user_errors(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(StudyError, match="junk.pth"):
        feature_extractor("block3_conv2", str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(StudyError, match="not a VGG-19 state_dict"):
        feature_extractor("block3_conv2", str(wrong))
    with pytest.raises(StudyError, match="block9"):
        feature_extractor("block9_conv1", "random")
