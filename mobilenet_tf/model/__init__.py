"""The network: the architecture table, the Keras builder, its costs, weights and QAT twin.

Pure data and pure Python where it can be (``architecture``, ``validation``, ``costs``,
``published``, ``labels``); the builder and loaders import Keras on first use of a name that needs it.
"""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    "MobileNetV1": "builder", "feature_extractor": "builder", "endpoint_layer_name": "builder",
    "BATCH_NORM_MOMENTUM": "defaults", "BATCH_NORM_EPSILON": "defaults", "INIT_STDDEV": "defaults",
    "DEFAULT_WEIGHT_DECAY": "defaults", "load_weights": "weights", "load_model": "saved",
    "Published": "published",
}, old="model")
