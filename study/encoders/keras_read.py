"""Reading a Keras VGG-19 weights file (HDF5): its 16 convolutions as Keras arrays (`read_keras_vgg19`).

Pure: h5py + numpy + torch (no Ray, no MLflow). Two on-disk layouts are read:

- **keras2** (Keras 1/2 `save_weights(".h5")`, Keras's own `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, and
  the `model_weights` group of a full-model `.h5`): root attribute `layer_names` (possibly chunked as
  `layer_names0`, `layer_names1`, … when large); one group per layer with attribute `weight_names`; datasets at
  `<layer>/<weight name>`. Weight names are `block1_conv1/kernel:0` (Keras 2), `block1_conv1/kernel` (Keras 3's
  legacy .h5) or `block1_conv1_W_1:0` / `block1_conv1_b_1:0` (Keras's released ImageNet files). Convolutions are
  matched by name (`blockB_convC`, in the weight name or else the layer group name); kernel vs bias by the weight's
  last name part, else by rank (4-D kernel, 1-D bias). A file whose layers carry no `blockB_convC` name (a hand-built
  VGG-19 with default names) is matched in layer order instead.
- **keras3** (Keras ≥ 2.13 `save_weights(".weights.h5")`, and `model.weights.h5` inside a `.keras` archive), as
  written by keras/src/saving/saving_lib.py (`_save_state`, `_save_container_state`, `H5IOStore`): every layer's
  variables are at `<path>/vars/<i>` (`0` = kernel, `1` = bias for Conv2D, `Conv2D.save_own_variables`); a
  Sequential/Functional model stores its `model.layers` under `layers/` (Keras 2.13: `_layer_checkpoint_dependencies/`)
  named by *class*, not by layer name: `conv2d`, `conv2d_1`, …, `max_pooling2d`, `dense`, … numbered in layer
  order; a nested model adds its own level (`layers/functional/layers/conv2d_3/vars/0`). Layer names are not
  stored, so the 16 convolutions are matched in order (the n-th `conv2d` of one container is the n-th VGG-19 conv).

Kernels are H×W×in×out (Keras) → out×in×H×W (torch). Keras ImageNet weights expect BGR input (Caffe conversion):
with `bgr=True` the first convolution's input channels are reversed so that the converted encoder takes RGB.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from study.encoders.layers import layer_end
from study.errors import StudyError

# VGG-19 convolutions in order, with (in, out) channels
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_NAMES: tuple[str, ...] = tuple(f"block{b}_conv{c}" for b, n, _ in _BLOCKS for c in range(1, n + 1))


def _channels() -> dict[str, tuple[int, int]]:
    out, prev = {}, 3
    for b, n, ch in _BLOCKS:
        for c in range(1, n + 1):
            out[f"block{b}_conv{c}"] = (prev, ch)
            prev = ch
    return out


CONV_CHANNELS: dict[str, tuple[int, int]] = _channels()
_BLOCK_NAME = re.compile(r"block[1-5]_conv[1-4]")
_K3_CONV = re.compile(r"conv2d(?:_(\d+))?")


def conv_index(name: str) -> int:
    """Index of the convolution `blockB_convC` in torchvision's `vgg19().features` (its post-ReLU end − 2)."""
    return layer_end(name) - 2


def _attr_list(group, name: str) -> list[str] | None:
    """A Keras string-list attribute, also when Keras split it into `name0`, `name1`, … (HDF5's 64 KiB limit)."""
    if name in group.attrs:
        values = list(np.asarray(group.attrs[name]).reshape(-1))
    elif f"{name}0" in group.attrs:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(np.asarray(group.attrs[f"{name}{i}"]).reshape(-1))
            i += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _array(src: str, where: str, ds) -> np.ndarray:
    try:
        return np.asarray(ds[()], dtype=np.float32)
    except Exception as err:  # noqa: BLE001 - an unreadable dataset is a bad file
        raise StudyError(f"{src}: cannot read {where} as float32 ({type(err).__name__})") from None


def _kind(weight_name: str, value: np.ndarray) -> str | None:
    last = weight_name.rsplit("/", 1)[-1].split(":", 1)[0]
    if last in ("kernel", "bias"):
        return last
    return {4: "kernel", 1: "bias"}.get(value.ndim)


def _read_keras2(src: str, root) -> tuple[dict, list, list]:
    """(by name {conv: {kernel, bias}}, in layer order [(label, {kernel, bias})], ignored layer names)."""
    by_name: dict[str, dict[str, np.ndarray]] = {}
    ordered: list[tuple[str, dict[str, np.ndarray]]] = []
    ignored: list[str] = []
    for layer in _attr_list(root, "layer_names") or []:
        if layer not in root:
            raise StudyError(f"{src}: layer {layer!r} is listed in layer_names but has no group")
        group = root[layer]
        names = _attr_list(group, "weight_names") or []
        if not names:
            continue
        used = False
        layer_vars: dict[str, dict[str, np.ndarray]] = {}
        for w in names:
            if w not in group:
                raise StudyError(f"{src}: weight {layer}/{w} is listed in weight_names but missing")
            value = _array(src, f"{layer}/{w}", group[w])
            kind = _kind(w, value)
            hits = [part for part in w.split("/")[:-1] if _BLOCK_NAME.fullmatch(part)]
            conv = hits[-1] if hits else (layer if _BLOCK_NAME.fullmatch(layer) else None)
            if kind is None:
                continue
            key = conv or "/".join(w.split("/")[:-1]) or layer
            layer_vars.setdefault(key, {})
            if kind in layer_vars[key]:
                raise StudyError(f"{src}: two {kind}s for {key} in layer {layer!r}")
            layer_vars[key][kind] = value
        for key, vs in layer_vars.items():
            if _BLOCK_NAME.fullmatch(key):
                if key in by_name:
                    raise StudyError(f"{src}: {key} appears twice (two VGG models in one file?)")
                by_name[key] = vs
                used = True
            if "kernel" in vs and vs["kernel"].ndim == 4:
                ordered.append((f"{layer}:{key}", vs))
        if not used:
            ignored.append(layer)
    return by_name, ordered, ignored


def _read_keras3(src: str, h5) -> tuple[list, list]:
    """(the convolutions of the container holding most of them, in order [(path, {kernel, bias})], other paths)."""
    import h5py

    containers: dict[str, list[tuple[int, str]]] = {}
    others: list[str] = []

    def visit(name: str, obj) -> None:
        if not (isinstance(obj, h5py.Group) and name.rsplit("/", 1)[-1] == "vars"):
            return
        owner = name[: -len("/vars")] if "/" in name else ""
        prefix, _, last = owner.rpartition("/")
        m = _K3_CONV.fullmatch(last)
        if m:
            containers.setdefault(prefix, []).append((int(m.group(1) or 0), owner))
        elif len(obj):
            others.append(owner or "/")

    h5.visititems(visit)
    if not containers:
        return [], others
    ranked = sorted(containers.items(), key=lambda kv: -len(kv[1]))
    if len(ranked) > 1 and len(ranked[0][1]) == len(ranked[1][1]):
        raise StudyError(f"{src}: convolutions under both {ranked[0][0]!r} and {ranked[1][0]!r}: which is VGG-19?")
    prefix, convs = ranked[0]
    others.extend(o for p, cs in ranked[1:] for _, o in cs)
    out = []
    for _, owner in sorted(convs):
        g = h5[f"{owner}/vars"]
        vs = {}
        for key, kind in (("0", "kernel"), ("1", "bias")):
            if key in g:
                vs[kind] = _array(src, f"{owner}/vars/{key}", g[key])
        out.append((owner, vs))
    return out, others


def _open_h5(path: Path):
    """h5py.File of a .h5 / .weights.h5 file, or of the `model.weights.h5` inside a Keras 3 `.keras` archive."""
    import h5py

    if h5py.is_hdf5(str(path)):
        try:
            return h5py.File(path, "r")
        except OSError as err:
            raise StudyError(f"{path}: unreadable HDF5 file ({' '.join(str(err).split())[:160]})") from None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if "model.weights.h5" in zf.namelist():
                return h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
        raise StudyError(f"{path}: a zip archive without model.weights.h5, not Keras VGG-19 weights")
    raise StudyError(f"{path}: not an HDF5 file (expected Keras VGG-19 weights: .h5 or .weights.h5)")


def read_keras_vgg19(path: Path) -> dict:
    """The VGG-19 convolutions of a Keras weights file, as Keras arrays (kernel H×W×in×out, bias out).

    Returns {"layout": "keras2"|"keras3", "matched_by": "name"|"order", "convs": {blockB_convC: {"kernel", "bias"}},
    "ignored": [layers or variable paths not used]}. Shapes are checked against VGG-19; layers absent from the file are
    simply absent from "convs" (see `convert_keras_weights` for what happens to them).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: file not found")
    src = str(path)
    with _open_h5(path) as h5:
        root = h5
        if _attr_list(h5, "layer_names") is None and "model_weights" in h5:
            root = h5["model_weights"]  # a Keras 1/2 full-model .h5
        if _attr_list(root, "layer_names") is not None:
            layout = "keras2"
            by_name, ordered, ignored = _read_keras2(src, root)
            if by_name:
                convs, matched_by = by_name, "name"
            else:
                convs, extra = _in_order(ordered)
                used = {label.split(":", 1)[0] for label, _ in ordered[: len(convs)]}
                ignored, matched_by = extra + [x for x in ignored if x not in used], "order"
        else:
            ordered, ignored = _read_keras3(src, h5)
            if not ordered and not ignored:
                raise StudyError(f"{src}: HDF5 but not Keras weights: no 'layer_names' attribute (Keras 2) and no "
                                 f"'…/vars' groups (Keras 3)")
            layout, matched_by = "keras3", "order"
            convs, extra = _in_order(ordered)
            ignored = extra + ignored
    if not convs:
        raise StudyError(f"{src}: not VGG-19 weights: no convolution block1_conv1 … block5_conv4 found ({layout} "
                         f"layout)")
    for name, vs in convs.items():
        _check(src, name, vs)
    return {"layout": layout, "matched_by": matched_by, "convs": convs, "ignored": ignored}


def _in_order(ordered: list) -> tuple[dict, list]:
    """Map the first convolutions found, in order, onto VGG-19's (only trailing layers can be missing this way);
    also the labels of those left over."""
    convs = {name: vs for name, (_, vs) in zip(CONV_NAMES, ordered)}
    return convs, [label for label, _ in ordered[len(convs):]]


def _check(src: str, name: str, vs: dict) -> None:
    cin, cout = CONV_CHANNELS[name]
    want = {"kernel": (3, 3, cin, cout), "bias": (cout,)}
    for kind, shape in want.items():
        if kind not in vs:
            raise StudyError(f"{src}: {name} has no {kind}: not VGG-19 weights")
        if tuple(vs[kind].shape) != shape:
            raise StudyError(f"{src}: {name} {kind} has shape {tuple(vs[kind].shape)}, VGG-19 expects {shape}: not "
                             f"VGG-19 weights")


# ---------------------------------------------------------------------------------------------------- converting


