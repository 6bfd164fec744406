"""Keras VGG-19 weights → torchvision format (`study convert-weights`, study.encoders.keras).

Weight files are written here with h5py in the Keras 2 and Keras 3 layouts from small random arrays; the converted
encoder's features are compared with a VGG-19 forward pass computed directly on the Keras arrays in NHWC (numpy, float64),
written independently of the converter.
"""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from study.cli import app
from study.encoders import feature_extractor, load_state_dict
from study.encoders.keras import convert_keras_weights
from study.errors import StudyError

BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
NAMES = [f"block{b}_conv{c}" for b, (n, _) in enumerate(BLOCKS, 1) for c in range(1, n + 1)]
TOP = {"fc1": ((8, 6), (6,)), "fc2": ((6, 6), (6,)), "predictions": ((6, 3), (3,))}  # shapes are not checked: ignored
SIZE = 32


# ---------------------------------------------------------------------------------------------- Keras-side arrays


def keras_arrays(seed: int = 7) -> dict:
    """{blockB_convC: (kernel H×W×in×out, bias)}: He-scaled so that activations survive 16 layers."""
    rng = np.random.default_rng(seed)
    out, cin = {}, 3
    for b, (n, cout) in enumerate(BLOCKS, 1):
        for c in range(1, n + 1):
            k = rng.normal(0.0, np.sqrt(2.0 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32)
            out[f"block{b}_conv{c}"] = (k, rng.normal(0.0, 0.05, cout).astype(np.float32))
            cin = cout
    return out


def keras_forward(arrays: dict, x_nhwc: np.ndarray, layer: str) -> np.ndarray:
    """VGG-19 as Keras runs it (NHWC, 'same' padding, conv+ReLU, 2×2 max-pool after each block), up to `layer`."""
    x = x_nhwc.astype(np.float64)
    for b, (n, _) in enumerate(BLOCKS, 1):
        for c in range(1, n + 1):
            kernel, bias = arrays[f"block{b}_conv{c}"]
            xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            patches = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
            x = np.maximum(np.tensordot(patches, kernel.astype(np.float64), axes=([3, 4, 5], [2, 0, 1])) + bias, 0.0)
            if f"block{b}_conv{c}" == layer:
                return x
        nb, h, w, ch = x.shape
        x = x.reshape(nb, h // 2, 2, w // 2, 2, ch).max(axis=(2, 4))
    raise KeyError(layer)


def write_keras2(path, arrays: dict, *, style: str = "tf2", top: bool = False, drop=()) -> None:
    """A Keras 2 `save_weights` .h5 (style "tf2": `block1_conv1/kernel:0`; "released": Keras's own ImageNet file,
    `block1_conv1_W_1:0`; "nested": the VGG-19 as one layer of a Sequential; "unnamed": default names conv2d_N)."""
    layers = ["input_1"]
    for b, (n, _) in enumerate(BLOCKS, 1):
        layers += [f"block{b}_conv{c}" for c in range(1, n + 1)] + [f"block{b}_pool"]
    if top:
        layers += ["flatten"] + list(TOP)
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.13.1"
        if style == "nested":
            f.attrs["layer_names"] = [b"vgg19", b"dense"]
            g = f.create_group("vgg19")
            names = []
            for name in NAMES:
                if name in drop:
                    continue
                for kind, value in zip(("kernel", "bias"), arrays[name]):
                    names.append(f"vgg19/{name}/{kind}:0")
                    g.create_dataset(names[-1], data=value)
            g.attrs["weight_names"] = [s.encode() for s in names]
            d = f.create_group("dense")
            d.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
            d.create_dataset("dense/kernel:0", data=np.zeros((512, 3), np.float32))
            d.create_dataset("dense/bias:0", data=np.zeros(3, np.float32))
            return
        renamed = {}
        if style == "unnamed":
            renamed = {n: (f"conv2d_{i}" if i else "conv2d") for i, n in enumerate(NAMES)}
        layers = [renamed.get(x, x) for x in layers]
        f.attrs["layer_names"] = [x.encode() for x in layers if x not in drop]
        for layer in layers:
            if layer in drop:
                continue
            g = f.create_group(layer)
            original = next((k for k, v in renamed.items() if v == layer), layer)
            if original in arrays:
                values = arrays[original]
            elif layer in TOP:
                values = tuple(np.ones(s, np.float32) for s in TOP[layer])
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            if style == "released":
                names = [f"{layer}_W_1:0", f"{layer}_b_1:0"]
            else:
                names = [f"{layer}/kernel:0", f"{layer}/bias:0"]
            g.attrs["weight_names"] = [s.encode() for s in names]
            for name, value in zip(names, values):
                g.create_dataset(name, data=value)


def write_keras3(target, arrays: dict, *, top: bool = False, nested: bool = False, empty_groups: bool = False,
                 drop=()) -> None:
    """A Keras 3 `.weights.h5` (keras/src/saving/saving_lib.py): `layers/<snake class name>[_i]/vars/<i>`."""
    with h5py.File(target, "w") as f:
        base = "layers/functional/layers" if nested else "layers"
        if empty_groups:  # older Keras 3 (and 2.13) create a vars group for every layer, empty if it has no variables
            f.create_group("vars")
            f.create_group(f"{base}/input_layer/vars")
            for i in range(5):
                f.create_group(f"{base}/max_pooling2d{'_%d' % i if i else ''}/vars")
        for i, name in enumerate(NAMES):
            if name in drop:
                continue
            g = f.create_group(f"{base}/{'conv2d_%d' % i if i else 'conv2d'}/vars")
            g.create_dataset("0", data=arrays[name][0])
            g.create_dataset("1", data=arrays[name][1])
        if top:
            for j, shapes in enumerate(TOP.values()):
                g = f.create_group(f"{base}/{'dense_%d' % j if j else 'dense'}/vars")
                for k, s in enumerate(shapes):
                    g.create_dataset(str(k), data=np.ones(s, np.float32))
        if nested:
            g = f.create_group("layers/dense/vars")
            g.create_dataset("0", data=np.ones((512, 3), np.float32))
            g.create_dataset("1", data=np.zeros(3, np.float32))
        f.create_group("optimizer/vars").create_dataset("0", data=np.zeros(1, np.float32))


@pytest.fixture(scope="module")
def arrays():
    return keras_arrays()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    return torch.rand(2, 1, SIZE, SIZE), torch.rand(2, 3, SIZE, SIZE)


def assert_features(path, arrays, x: torch.Tensor, *, channels_reversed: bool = False,
                    layers=("block3_conv2", "block5_conv4")) -> None:
    """Features of the converted file at `layers` equal the Keras forward pass, to 1e-5 relative."""
    x3 = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
    nhwc = x3.permute(0, 2, 3, 1).numpy()
    if channels_reversed:
        nhwc = nhwc[..., ::-1]
    for layer in layers:
        enc = feature_extractor(layer, str(path), input_mode="unit")
        with torch.no_grad():
            got = enc(x).permute(0, 2, 3, 1).double().numpy()
        ref = keras_forward(arrays, nhwc, layer)
        assert got.shape == ref.shape
        assert (ref > 0).mean() > 0.05, "degenerate reference (all ReLUs off)"
        rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert rel < 1e-5, (layer, rel)


def one_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


# ---------------------------------------------------------------------------------------------- tests


def test_keras2_file_through_the_cli(tmp_path, arrays, images):
    src, out = tmp_path / "vgg19_custom.h5", tmp_path / "vgg19.pth"
    write_keras2(src, arrays, top=True)
    res = CliRunner().invoke(app, ["convert-weights", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "16 VGG-19 convolutions" in res.output and "keras2" in res.output
    assert_features(out, arrays, images[0])
    _, meta = load_state_dict(str(out))
    assert meta["keras_file"] == "vgg19_custom.h5" and meta["keras_layout"] == "keras2"
    assert meta["layers_converted"] == NAMES and meta["layers_initialised"] == [] and meta["bgr_to_rgb"] is True
    import hashlib

    assert meta["keras_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["weights_id"][:16] in res.output
    assert set(meta["ignored"]) == set(TOP)


@pytest.mark.parametrize("style", ["released", "nested", "unnamed"])
def test_keras2_variants(tmp_path, arrays, images, style):
    src, out = tmp_path / "w.h5", tmp_path / "w.pth"
    write_keras2(src, arrays, style=style)
    meta = convert_keras_weights(src, out, bgr=False)
    assert meta["matched_by"] == ("order" if style == "unnamed" else "name")
    assert_features(out, arrays, images[0], layers=("block5_conv4",))


@pytest.mark.parametrize("variant", ["plain", "nested_top_empty", "keras_archive"])
def test_keras3_file(tmp_path, arrays, images, variant):
    out = tmp_path / "w.pth"
    if variant == "keras_archive":
        buf = io.BytesIO()
        write_keras3(buf, arrays, top=True)
        src = tmp_path / "model.keras"
        with zipfile.ZipFile(src, "w") as zf:
            zf.writestr("config.json", "{}")
            zf.writestr("model.weights.h5", buf.getvalue())
    else:
        src = tmp_path / "vgg19.weights.h5"
        write_keras3(src, arrays, top=variant != "plain", nested=variant != "plain", empty_groups=variant != "plain")
    meta = convert_keras_weights(src, out)
    assert meta["keras_layout"] == "keras3" and meta["layers_converted"] == NAMES
    assert all(not x.startswith(("layers/conv2d", "layers/functional/layers/conv2d")) for x in meta["ignored"])
    assert_features(out, arrays, images[0], channels_reversed=True)


def test_bgr_swap(tmp_path, arrays, images):
    """Keras ImageNet weights expect BGR: converted with --bgr, RGB input equals Keras on the reversed channels."""
    colour = images[1]
    src = tmp_path / "w.h5"
    write_keras2(src, arrays)
    res = CliRunner().invoke(app, ["convert-weights", str(src), "-o", str(tmp_path / "bgr.pth")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["convert-weights", str(src), "-o", str(tmp_path / "rgb.pth"), "--no-bgr"])
    assert res.exit_code == 0 and "BGR→RGB off" in res.output, res.output
    layers = ("block1_conv1", "block3_conv2")
    assert_features(tmp_path / "bgr.pth", arrays, colour, channels_reversed=True, layers=layers)
    assert_features(tmp_path / "rgb.pth", arrays, colour, channels_reversed=False, layers=layers)
    bgr, meta_bgr = load_state_dict(str(tmp_path / "bgr.pth"))
    rgb, meta_rgb = load_state_dict(str(tmp_path / "rgb.pth"))
    assert meta_bgr["bgr_to_rgb"] is True and meta_rgb["bgr_to_rgb"] is False
    torch.testing.assert_close(bgr["0.weight"], rgb["0.weight"].flip(1))
    assert not torch.equal(bgr["0.weight"], rgb["0.weight"]) and torch.equal(bgr["2.weight"], rgb["2.weight"])
    assert meta_bgr["weights_id"] != meta_rgb["weights_id"]


def test_not_hdf5_and_not_vgg19_are_one_line_errors(tmp_path, arrays):
    runner = CliRunner()
    text = tmp_path / "notes.h5"
    text.write_text("not weights\n")
    res = runner.invoke(app, ["convert-weights", str(text), "-o", str(tmp_path / "x.pth")])
    assert res.exit_code == 2 and str(text) in one_line(res) and "HDF5" in res.output
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    res = runner.invoke(app, ["convert-weights", str(other), "-o", str(tmp_path / "x.pth")])
    assert res.exit_code == 2 and str(other) in one_line(res) and "not Keras weights" in res.output
    res = runner.invoke(app, ["convert-weights", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "x.pth")])
    assert res.exit_code == 2 and "missing.h5" in one_line(res)
    bad = dict(arrays)
    bad["block2_conv1"] = (np.zeros((5, 5, 64, 128), np.float32), arrays["block2_conv1"][1])
    write_keras2(tmp_path / "bad.h5", bad)
    with pytest.raises(StudyError, match=r"bad\.h5: block2_conv1 kernel has shape \(5, 5, 64, 128\)"):
        convert_keras_weights(tmp_path / "bad.h5", tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()


def test_missing_layer_is_an_error_unless_partial_is_allowed(tmp_path, arrays, images):
    src, out = tmp_path / "partial.h5", tmp_path / "partial.pth"
    write_keras2(src, arrays, drop=("block5_conv4",))
    res = CliRunner().invoke(app, ["convert-weights", str(src), "-o", str(out)])
    line = one_line(res)
    assert res.exit_code == 2 and str(src) in line and "block5_conv4" in line and "--allow-partial" in line
    assert not out.exists()
    res = CliRunner().invoke(app, ["convert-weights", str(src), "-o", str(out), "--allow-partial", "--seed", "3"])
    assert res.exit_code == 0 and "freshly initialised: block5_conv4" in res.output, res.output
    sd, meta = load_state_dict(str(out))
    assert meta["layers_initialised"] == ["block5_conv4"] and len(meta["layers_converted"]) == 15
    assert meta["init"] == {"kernel": "glorot_uniform", "bias": "zeros", "seed": 3}
    assert_features(out, arrays, images[0], layers=("block3_conv2", "block5_conv3"))
    w = sd["34.weight"]
    limit = np.sqrt(6.0 / (9 * 512 + 9 * 512))
    assert float(w.abs().max()) <= limit and float(w.std()) > limit / 3 and not sd["34.bias"].any()
    # Keras 3 stores layers by position: a partial file can lack trailing layers only, matched in order
    write_keras3(tmp_path / "partial.weights.h5", arrays, drop=("block5_conv3", "block5_conv4"))
    with pytest.raises(StudyError, match="block5_conv3, block5_conv4"):
        convert_keras_weights(tmp_path / "partial.weights.h5", tmp_path / "p3.pth")
    meta = convert_keras_weights(tmp_path / "partial.weights.h5", tmp_path / "p3.pth", allow_partial=True)
    assert meta["layers_initialised"] == ["block5_conv3", "block5_conv4"]


def test_help_explains_checkpoints_and_partial():
    res = CliRunner().invoke(app, ["convert-weights", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for needle in ("VGG19(weights=None, include_top=False)", "expect_partial()", 'save_weights("vgg19.h5")',
                   "--allow-partial", "--no-bgr"):
        assert needle in text, needle
