"""LPIPS (AlexNet, VGG-16) and DISTS as per-image metrics, offline: the ImageNet backbones are stand-ins (torchvision's
AlexNet / VGG-16 under a fixed seed) staged in a temporary TORCH_HOME under the file names torchvision looks for,
and every reference implementation reads the same files. LPIPS is checked against the `lpips` package (the
authors' code, same v0.1 heads), DISTS against piq's DISTS (its α/β staged from torchmetrics' file)."""

from __future__ import annotations

import copy
import os
import re

import numpy as np
import pytest
import torch

from helpers import stage_backbone
from study.data.ct import window
from study.data.phantoms import phantom_slice
from study.errors import StudyError
from study.metrics import learned

FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg16": "vgg16-397923af.pth"}


@pytest.fixture(scope="module")
def staged_home(tmp_path_factory):
    from torchvision.models import alexnet, vgg16

    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        stage_backbone(checkpoints, alexnet(), FILES["alex"])
        torch.manual_seed(1)
        stage_backbone(checkpoints, vgg16(), FILES["vgg16"])
    return home


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


@pytest.fixture
def home(staged_home, monkeypatch):
    """TORCH_HOME → the staged cache (torch.hub reads it at call time); any download fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(staged_home))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    assert torch.hub.get_dir() == os.path.join(str(staged_home), "hub")
    return staged_home


@pytest.fixture(scope="module")
def phantom():
    """A windowed phantom slice in [0, 1] and noisy copies (σ = 0.02, 0.05, 0.1, 0.2 of the window, clipped)."""
    ref = window(phantom_slice(3, size=128), -160.0, 240.0)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(ref.shape)
    return ref, [np.clip(ref + s * noise, 0.0, 1.0) for s in (0.02, 0.05, 0.1, 0.2)]


def test_backbone_files_are_torchvisions_defaults():
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    assert AlexNet_Weights.DEFAULT is AlexNet_Weights.IMAGENET1K_V1
    assert VGG16_Weights.DEFAULT is VGG16_Weights.IMAGENET1K_V1
    assert learned.backbone_file("lpips_alex").name == FILES["alex"]
    assert learned.backbone_file("lpips_vgg").name == learned.backbone_file("dists").name == FILES["vgg16"]
    assert set(learned.LEARNED_METRICS) == {"lpips_alex", "lpips_vgg", "dists"}
    assert not any(learned.LEARNED_METRICS.values())


@pytest.mark.filterwarnings("ignore::UserWarning")  # lpips builds its backbones with torchvision's `pretrained`
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_the_lpips_package_and_torchmetrics(home, phantom, net):
    lpips = pytest.importorskip("lpips")
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity as tm_lpips

    ref, noisy = phantom
    ours = learned.LearnedMetric(f"lpips_{net}")
    with torch.random.fork_rng(devices=[]):
        theirs = lpips.LPIPS(net=net, verbose=False).eval()
    x = torch.as_tensor(np.stack(noisy), dtype=torch.float32)[:, None].repeat(1, 3, 1, 1)
    y = torch.as_tensor(ref, dtype=torch.float32)[None, None].repeat(len(noisy), 3, 1, 1)
    with torch.no_grad():
        want = theirs(x, y, normalize=True).reshape(-1).double().numpy()
        tm = tm_lpips(x, y, net_type=net, normalize=True, reduction="none").double().numpy()
    got = np.array([ours(p, ref) for p in noisy])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, tm, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.batch(np.stack(noisy), np.stack([ref] * len(noisy))), got, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")  # piq builds VGG-16 with torchvision's deprecated `pretrained`
def test_dists_matches_piq(home, phantom):
    piq = pytest.importorskip("piq")
    from torchmetrics.functional.image.dists import _PATH_WEIGHT_DISTS

    ab = {k: v.double() for k, v in torch.load(_PATH_WEIGHT_DISTS, map_location="cpu", weights_only=True).items()}
    total = ab["alpha"].sum() + ab["beta"].sum()  # torchmetrics divides by it; piq takes its file's α/β as they are
    torch.save({"alpha": ab["alpha"] / total, "beta": ab["beta"] / total},
               home / "hub" / "checkpoints" / "dists_weights.pt")
    ref, noisy = phantom  # 128 px: piq resizes images over 256 px, torchmetrics and study do not
    with torch.random.fork_rng(devices=[]):
        # piq's L2 pooling fixes its kernel's dtype at the first call: one instance per dtype
        theirs, theirs64 = piq.DISTS(reduction="none"), piq.DISTS(reduction="none").double()
    x = torch.as_tensor(np.stack(noisy), dtype=torch.float64)[:, None].repeat(1, 3, 1, 1)
    y = torch.as_tensor(ref, dtype=torch.float64)[None, None].repeat(len(noisy), 3, 1, 1)
    ours = learned.LearnedMetric("dists")
    with torch.no_grad():
        want = theirs(x.float(), y.float()).double().numpy()
        want64 = theirs64(x, y).numpy()
        got64 = copy.deepcopy(ours.net).double()(x, y).numpy()
    got = np.array([ours(p, ref) for p in noisy])
    np.testing.assert_allclose(got64, want64, rtol=1e-9)  # the same formula
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-7)  # float32: 1 − S with S ≈ 1 keeps ~1e-7 absolute


@pytest.mark.parametrize("name", list(learned.LEARNED_METRICS))
def test_zero_for_identical_images_and_growing_with_noise(home, phantom, name):
    ref, noisy = phantom
    metric = learned.LearnedMetric(name)
    assert metric(ref, ref) == pytest.approx(0.0, abs=1e-6)
    values = [metric(p, ref) for p in noisy]
    assert values[0] > 1e-4 and all(b > a for a, b in zip(values, values[1:])), values
    eight_bit = (ref * 255).astype(np.uint8) / 255.0  # how 8-bit metric images are passed
    assert 0.0 <= metric(eight_bit, ref) < values[-1]


def test_network_is_built_once_and_leaves_the_global_rng_alone(home):
    learned._network.cache_clear()
    state = torch.get_rng_state()
    first = learned.LearnedMetric("lpips_alex")
    assert torch.equal(state, torch.get_rng_state())
    assert learned.LearnedMetric("lpips_alex").net is first.net


def test_inputs_are_checked(home, phantom):
    ref, _ = phantom
    metric = learned.LearnedMetric("lpips_alex")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric(ref * 2.0, ref)
    with pytest.raises(ValueError, match="shapes differ"):
        metric(ref[:64], ref)
    with pytest.raises(ValueError, match="unknown learned metric"):
        learned.missing_backbone("lpips_squeeze")


@pytest.mark.parametrize("name, file", [("lpips_alex", FILES["alex"]), ("lpips_vgg", FILES["vgg16"]),
                                        ("dists", FILES["vgg16"])])
def test_missing_backbone_is_one_line_naming_the_file(tmp_path, monkeypatch, name, file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    path = tmp_path / "hub" / "checkpoints" / file
    message = learned.missing_backbone(name)
    assert message is not None and "\n" not in message
    assert message.startswith(f"{name}: ImageNet ") and str(path) in message
    assert f"TORCH_HOME={tmp_path}" in message and "never downloads" in message
    assert f"https://download.pytorch.org/models/{file}" in message
    with pytest.raises(StudyError) as err:
        learned.LearnedMetric(name)
    assert str(err.value) == message
    monkeypatch.delenv("TORCH_HOME")
    assert "TORCH_HOME unset" in (learned.missing_backbone(name) or "TORCH_HOME unset")


def test_unreadable_backbone_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    path = tmp_path / "hub" / "checkpoints" / FILES["alex"]
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    assert learned.missing_backbone("lpips_alex") is None
    with pytest.raises(StudyError, match="not readable as torchvision's ImageNet AlexNet weights") as err:
        learned.LearnedMetric("lpips_alex")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_methods_text_is_a_few_sentences():
    sentences = re.split(r"(?<! al)\. (?=[A-Z])", learned.METHODS_TEXT)
    assert 2 <= len(sentences) <= 4
    assert "three identical channels" in learned.METHODS_TEXT and "[-1, 1]" in learned.METHODS_TEXT
