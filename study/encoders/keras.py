"""Keras VGG-19 weights (HDF5) → this study's torchvision-format weights file (`study convert-weights`): the file is
read by `study.encoders.keras_read` (both layouts are described there); kernels H×W×in×out (Keras) become
out×in×H×W (torch). Keras ImageNet weights expect BGR input (Caffe conversion): with `bgr=True` the first
convolution's input channels are reversed so that the converted encoder takes RGB. Pure: h5py + numpy + torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from study.encoders.keras_read import CONV_CHANNELS, CONV_NAMES, conv_index, read_keras_vgg19
from study.errors import StudyError
from study.store.provenance import file_sha256


# ---------------------------------------------------------------------------------------------------- reading


def keras_init(name: str, seed: int) -> dict:
    """What a Keras Conv2D starts from (Glorot-uniform kernel, zero bias), in Keras layout, seeded per layer."""
    cin, cout = CONV_CHANNELS[name]
    rng = np.random.default_rng([seed, CONV_NAMES.index(name)])
    limit = float(np.sqrt(6.0 / (9 * cin + 9 * cout)))
    return {"kernel": rng.uniform(-limit, limit, (3, 3, cin, cout)).astype(np.float32),
            "bias": np.zeros(cout, np.float32)}


def to_state_dict(convs: dict, *, bgr: bool) -> dict:
    """Keras arrays of all 16 convolutions → features-only torchvision state dict (`N.weight`, `N.bias`)."""
    import torch

    sd = {}
    for name in CONV_NAMES:
        kernel = np.transpose(convs[name]["kernel"], (3, 2, 0, 1))  # HWIO → OIHW
        if bgr and name == "block1_conv1":
            kernel = kernel[:, ::-1]  # the weights of input channel B,G,R → R,G,B
        i = conv_index(name)
        sd[f"{i}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))
        sd[f"{i}.bias"] = torch.from_numpy(np.ascontiguousarray(convs[name]["bias"], dtype=np.float32))
    return sd


def convert_keras_weights(source: Path, output: Path, *, bgr: bool = True, allow_partial: bool = False,
                          seed: int = 0) -> dict:
    """Convert a Keras VGG-19 weights file and write it with `study.encoders.vgg.save_weights`; returns its meta
    (with "weights_id").

    A VGG-19 convolution absent from the file is an error naming it, unless `allow_partial`: then it keeps what a
    freshly built Keras VGG-19 would hold (Glorot-uniform kernel under `seed`, zero bias), as after TF's
    `load_weights(...).expect_partial()`, and is listed in meta["layers_initialised"].
    """
    from study.encoders.vgg import save_weights

    source, output = Path(source), Path(output)
    found = read_keras_vgg19(source)
    convs = dict(found["convs"])
    missing = [n for n in CONV_NAMES if n not in convs]
    if missing and not allow_partial:
        raise StudyError(f"{source}: VGG-19 layer(s) missing: {', '.join(missing)} (a partial file; "
                         f"--allow-partial keeps them freshly initialised)")
    for name in missing:
        convs[name] = keras_init(name, seed)
    meta = {
        "source": "keras",
        "keras_file": source.name,
        "keras_sha256": file_sha256(source),
        "keras_layout": found["layout"],
        "matched_by": found["matched_by"],
        "layers_converted": [n for n in CONV_NAMES if n in found["convs"]],
        "layers_initialised": missing,
        "bgr_to_rgb": bool(bgr),
        "ignored": found["ignored"][:50],
    }
    if missing:
        meta["init"] = {"kernel": "glorot_uniform", "bias": "zeros", "seed": seed}
    meta["weights_id"] = save_weights(to_state_dict(convs, bgr=bgr), meta, output)
    return meta
