"""mobilenet-tf: the TensorFlow/Keras reference implementation of MobileNetV1.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861, 2017.

The package is laid out by concern (``docs/development.md`` has the map): ``model`` (the
architecture table, the builder, costs, weights, QAT), ``data`` (dataset readers and
pipelines), ``training`` (the recipe and the run), ``export`` (TFLite), ``inference``
(prediction and evaluation), with the ``python -m mobilenet_tf.<tool>`` commands at the top.

``mobilenet_tf.model.costs`` and ``mobilenet_tf.model.architecture`` are pure Python; the
builder (and so TensorFlow/Keras) is imported on first use of ``MobileNetV1``
or ``feature_extractor``, so ``python -m mobilenet_tf.costs`` stays light. The import paths
of 0.1 (``mobilenet_tf.weights``, ``mobilenet_tf.datasets``, ...) still work
(``mobilenet_tf._api``).
"""

from mobilenet_tf import _api
from mobilenet_tf.model import architecture
from mobilenet_tf.model.architecture import (CONV_MOBILENET_CONV_DEFS, MOBILENET_V1_CONV_DEFS,
                                             SHALLOW_MOBILENET_CONV_DEFS, Conv, DepthSepConv,
                                             endpoint_names)

__version__ = "0.1.0"

# name -> (module, attribute); attribute None means the module itself. Modules run with
# `python -m` (costs, predict, ...) must be lazy here, or runpy warns about a double import.
_LAZY = {
    "costs": ("mobilenet_tf.costs", None),
    "MobileNetV1": ("mobilenet_tf.model.builder", "MobileNetV1"),
    "feature_extractor": ("mobilenet_tf.model.builder", "feature_extractor"),
    "preprocess_input": ("mobilenet_tf.model.imagenet", "preprocess_input"),
    "decode_predictions": ("mobilenet_tf.model.imagenet", "decode_predictions"),
    "load_weights": ("mobilenet_tf.model.weights", "load_weights"),
    "TrainConfig": ("mobilenet_tf.training.config", "TrainConfig"),
    "train": ("mobilenet_tf.training.loop", "train"),
    "create_strategy": ("mobilenet_tf.training.distribute", "create_strategy"),
    "TFLiteClassifier": ("mobilenet_tf.export.tflite", "TFLiteClassifier"),
}

__all__ = ["MobileNetV1", "feature_extractor", "preprocess_input", "decode_predictions",
           "load_weights", "TrainConfig", "train", "TFLiteClassifier", "costs", "architecture",
           "Conv", "DepthSepConv",
           "MOBILENET_V1_CONV_DEFS", "CONV_MOBILENET_CONV_DEFS", "SHALLOW_MOBILENET_CONV_DEFS",
           "endpoint_names", "create_strategy", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    if name in _api.MOVED:          # an old module path: mobilenet_tf.weights, ...
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mobilenet_tf' has no attribute {name!r}")


_api.install()


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
