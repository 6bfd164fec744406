"""The frozen VGG-19 encoders: layer names (`layers`, torch-free), the extractor and weight files (`vgg`), the
study's cache of materialised weights (`cache`) and self-supervised / supervised pretraining (`pretrain`).

`feature_extractor` (the contract name) and the other `vgg` names load on first use, so the spec can validate layer
names (`study.encoders.layers`) without importing torch.
"""

from importlib import import_module

_LAZY = {name: "vgg" for name in ("feature_extractor", "FeatureExtractor", "load_state_dict", "vgg19_features",
                                   "weights_id", "save_weights", "imagenet_file", "INPUT_MODES")}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"study.encoders.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'study.encoders' has no attribute {name!r}")
