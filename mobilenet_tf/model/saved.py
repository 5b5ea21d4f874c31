"""A model from files: a ``.keras`` file, a ``train.py`` run folder, or weights; what kind a
file is.

* :func:`load_model`: a ``.keras`` file or run folder -> ``(keras model, class names)``.
* :func:`model_from_weights`: a MobileNetV1 of given α and size with weights (``"imagenet"``,
  a ``.h5`` file, a TF-slim checkpoint), with the head the weights hold.
* :func:`run_dataset`: the dataset spec a run trained on (its ``summary.json``).
* :func:`is_quantization_aware_file`: whether a ``.keras`` file holds a quantization-aware
  model, read from its ``config.json`` without loading it.
* :func:`is_tflite_file`: whether a file starts like a TFLite flatbuffer.
* :func:`settings_it_fixes`: the one rule for settings given beside a saved model (refused).

A run folder (``train.py --model_dir``) holds ``model.keras`` and ``summary.json``; this is
what every reader of such a folder (prediction, export, a distillation teacher) goes through.
"""

import json
import os
import zipfile

from mobilenet_tf.errors import WeightsError
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.model.labels import MODEL_FILE, SUMMARY_FILE

__all__ = ["MODEL_FILE", "SUMMARY_FILE", "ModelFileError", "load_model", "run_dataset",
           "is_quantization_aware_file", "is_tflite_file", "is_keras_model_path",
           "model_from_weights", "MODEL_SETTINGS", "settings_it_fixes"]

_TFLITE_IDENTIFIER = b"TFL3"     # the flatbuffer file identifier, bytes 4..8


# The settings that build a model from weights. A saved model (a train.py run folder, a .keras
# or .tflite file) fixes them itself, so predict, evaluate and export_tflite.py refuse them
# beside --model (issue 27: they were ignored without a word).
MODEL_SETTINGS = ("weights", "alpha", "image_size", "classes", "checkpoint_weights")


def settings_it_fixes(source, given, fixed=MODEL_SETTINGS,
                      why="a saved model fixes its own α, input size, classes and weights"):
    """The one rule for settings given on a command line beside a saved model: any of the
    `fixed` ones among `given` (the names the user gave, whatever their values: the command
    knows which) is refused, rather than one value silently winning. Returns the one-line
    refusal (``--alpha, --image_size cannot be given with SOURCE: WHY; leave them out``), or
    None. `source`: how the saved model was named (``--model=runs/x``)."""
    clash = [name for name in given if name in fixed]
    if not clash:
        return None
    them = "it" if len(clash) == 1 else "them"
    return (f"{', '.join('--' + name for name in clash)} cannot be given with {source}: {why}; "
            f"leave {them} out")


class ModelFileError(WeightsError):
    """A ``.keras`` file or run folder that is missing, damaged or not a Keras model (exit 2)."""


def run_dataset(model_path):
    """``(dataset spec, data_dir)`` a ``train.py`` run trained on, from the ``summary.json``
    of a run folder (or beside its ``model.keras``); ``(None, None)`` for anything else."""
    path = os.fspath(model_path)
    model_dir = path if os.path.isdir(path) else (
        os.path.dirname(os.path.abspath(path)) if os.path.basename(path) == MODEL_FILE else None)
    if model_dir is None:
        return None, None
    try:
        with open(os.path.join(model_dir, SUMMARY_FILE), encoding="utf-8") as f:
            config = json.load(f).get("config") or {}
    except (OSError, ValueError, AttributeError):
        return None, None
    spec = config.get("dataset")
    return (spec, config.get("data_dir")) if isinstance(spec, str) and spec else (None, None)


def is_quantization_aware_file(model_path):
    """Whether the ``.keras`` file (or a run folder's ``model.keras``) holds a model made by
    ``mobilenet_tf.model.qat.quantize_model``, read from the file's ``config.json`` without loading
    it (and without TensorFlow). False for anything unreadable: loading it reports that."""
    path = os.fspath(model_path)
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json").decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return '"mobilenet_tf>QuantizedConv"' in config


def is_tflite_file(path):
    """True when `path` is a file that starts like a TFLite flatbuffer."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == _TFLITE_IDENTIFIER
    except OSError:
        return False


def is_keras_model_path(path):
    """A run folder or a ``.keras`` file (by name)."""
    return os.path.isdir(path) or path.endswith(".keras")


def load_model(path):
    """``(keras model, class names or None)`` from a ``.keras`` file or a ``train.py`` run
    folder (its ``model.keras``). Class names come from the run's ``summary.json`` (beside
    the ``.keras`` file when that is a run's ``model.keras``).

    Raises ModelFileError (one line) for a missing path, a run without ``model.keras``, a
    file that is damaged or not a ``.keras`` model.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        model_dir, path = path, os.path.join(path, MODEL_FILE)
        if not os.path.isfile(path):
            raise ModelFileError(f"run folder {model_dir} has no {MODEL_FILE} (train.py writes "
                                 "it when training ends)")
    elif not os.path.exists(path):
        raise ModelFileError(f"no such model file or train.py run folder: {path}")
    else:
        model_dir = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) else None
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if names is None and is_zip:
        raise ModelFileError(f"{path} is damaged or truncated: it starts like a .keras zip "
                             "archive but its table of contents is missing")
    if names is None or "config.json" not in names:
        raise ModelFileError(f"{path} is not a Keras .keras model file (a zip with config.json; "
                             "for a .h5 weights file or a TF-slim checkpoint use --weights)")
    import keras
    from mobilenet_tf.model import qat  # noqa: F401  (registers the quantization-aware layers)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises several types for a damaged or foreign file
        reason = " ".join(str(e).split())[:300]
        raise ModelFileError(f"{path} is damaged or cannot be loaded by Keras "
                             f"({type(e).__name__}: {reason})") from None
    class_names = None
    if os.path.basename(path) == MODEL_FILE:
        class_names = labels_lib.run_class_names(model_dir)
    return model, class_names


def model_from_weights(weights, *, alpha, image_size, classes=None, checkpoint_weights="auto"):
    """A MobileNetV1 of `alpha` and `image_size` (an int or ``(height, width)``) with `weights`
    (what ``MobileNetV1(weights=...)`` takes). ``classes``: the head's size; default what the
    weights file holds (1000 for ``"imagenet"``, 1001 for TF-slim checkpoints)."""
    from mobilenet_tf.model import builder
    from mobilenet_tf.model import weight_sources
    if classes is None:
        classes = 1000
        if weights not in (None, "imagenet"):
            classes = weight_sources.source_classes(weights) or 1000
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return builder.MobileNetV1(input_shape=(*size, 3), alpha=alpha, weights=weights,
                               classes=classes, checkpoint_weights=checkpoint_weights)
