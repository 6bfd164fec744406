"""VGG-19 layer names (Keras and torchvision) and where they sit in torchvision's `vgg19().features`.

Torch-free so that the spec can be validated without importing torch.
Keras `blockB_convC` is the post-ReLU output of that convolution (Keras fuses the activation).
"""

# convolutions per block of VGG-19
_BLOCK_CONVS = (2, 2, 4, 4, 4)


def _build() -> dict[str, int]:
    """name -> number of `features` modules to keep (slice end, exclusive)."""
    ends: dict[str, int] = {}
    idx = 0
    for b, n in enumerate(_BLOCK_CONVS, start=1):
        for c in range(1, n + 1):
            conv_idx, relu_idx = idx, idx + 1
            ends[f"conv{b}_{c}"] = conv_idx + 1  # pre-ReLU
            ends[f"relu{b}_{c}"] = relu_idx + 1  # post-ReLU
            ends[f"block{b}_conv{c}"] = relu_idx + 1  # Keras: post-ReLU
            idx += 2
        ends[f"pool{b}"] = idx + 1
        ends[f"block{b}_pool"] = idx + 1
        idx += 1
    return ends


LAYER_END: dict[str, int] = _build()


def layer_end(name: str) -> int:
    """Slice end in `vgg19().features` for a layer name; KeyError for an unknown name."""
    return LAYER_END[name]
