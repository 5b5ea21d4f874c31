"""The Keras backend this process runs on, and the one check of what needs TensorFlow's.

The model and what runs it work on every Keras backend (``KERAS_BACKEND`` = ``tensorflow``,
``jax`` or ``torch``): the builder, its weights files (Keras ``.h5``, ``.weights.h5``,
``.keras``), ``costs``, ``feature_extractor``, ``preprocess_input`` / ``decode_predictions``,
the quantization-aware twin, and the training recipe's model and step
(``training.build_model`` + ``training.compile_model``, trained with ``model.fit`` on
in-memory arrays). They use Keras and ``keras.ops`` only and import no TensorFlow.

What is built on TensorFlow itself needs the TensorFlow backend: ``tf.data`` input (every
dataset reader and pipeline, image decoding, TF-slim preprocessing), TF-slim checkpoints,
TFLite export, ``tf.distribute``, and what uses them (``train``, ``evaluate``, the commands).
Every TensorFlow import of the package goes through :func:`tensorflow`, which refuses on
another backend with one line naming what needed it (:class:`~mobilenet_tf.errors.BackendError`,
exit status 2), before TensorFlow is imported. ``tests/test_layout.py`` checks that no other
module imports TensorFlow. ``docs/backends.md`` has the list for users.
"""

from mobilenet_tf.errors import BackendError

__all__ = ["TENSORFLOW", "TF_DATA", "SLIM_CHECKPOINTS", "TFLITE", "DISTRIBUTE", "TRAINING_RUN",
           "COMMANDS", "name", "is_tensorflow", "require_tensorflow", "tensorflow"]

TENSORFLOW = "tensorflow"
# What needs TensorFlow, as the refusal names it (docs/backends.md has the same list).
TF_DATA = "tf.data input (dataset readers and pipelines, image decoding, TF-slim preprocessing)"
SLIM_CHECKPOINTS = "Reading a TF-slim checkpoint"
TFLITE = "TFLite export"
DISTRIBUTE = "tf.distribute"
TRAINING_RUN = ("A training run (train, evaluate, train.py: tf.data input, TensorFlow checkpoints, "
                "TensorBoard files)")
COMMANDS = "This command"


def name():
    """The Keras backend of this process: ``"tensorflow"``, ``"jax"``, ``"torch"``, ...
    (``keras.backend.backend()``; Keras reads ``KERAS_BACKEND`` once, when it is imported)."""
    import keras
    return keras.backend.backend()


def is_tensorflow():
    return name() == TENSORFLOW


def require_tensorflow(what, backend=None):
    """Raises BackendError (one line) unless Keras runs on TensorFlow: `what` needs it.

    `backend`: the Keras backend when it is known without importing Keras (the commands read
    ``KERAS_BACKEND`` before TensorFlow starts); default :func:`name`."""
    backend = name() if backend is None else backend
    if backend != TENSORFLOW:
        raise BackendError(
            f"{what} needs Keras' TensorFlow backend; this process runs Keras on {backend!r} "
            f"(KERAS_BACKEND={backend}). Run it with KERAS_BACKEND=tensorflow; docs/backends.md "
            "lists what runs on every backend")


def tensorflow(what, module=None):
    """The ``tensorflow`` module, for `what` (a TensorFlow-only part of the package, named in
    the refusal); BackendError on another Keras backend, before TensorFlow is imported.
    `module`: a TensorFlow submodule to return instead (e.g. ``"tensorflow.lite.python.convert"``)."""
    require_tensorflow(what)
    import tensorflow as tf
    if module is None:
        return tf
    import importlib
    return importlib.import_module(module)
