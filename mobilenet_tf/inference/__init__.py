"""Running a trained classifier (Keras or ``.tflite``): prediction and evaluation, the library
behind ``python -m mobilenet_tf.predict`` and ``python -m mobilenet_tf.evaluate``."""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    name: "classifier" for name in (
        "Classifier", "load_classifier", "classify_files", "folder_batches", "tfds_batches",
        "evaluate_batches", "top_k", "TFDS_PREFIX")
}, old="inference")
