"""The class names of a classifier's outputs: ImageNet's, a trained run's, an export's.

* :func:`label_names`: the names of a head of N outputs, in output order.
* :func:`labels_path` / :func:`read_labels`: the ``<model>_labels.txt`` that
  ``export_tflite.py`` writes beside a ``.tflite`` file (one name per line).
* :func:`run_class_names`: the class names a ``train.py`` run recorded in its
  ``summary.json`` (folder and tfds datasets record them).
* :func:`is_imagenet_labels`: whether a head's names are ImageNet's.

Pure Python; no TensorFlow.
"""

import json
import os

from mobilenet_tf.model import imagenet
from mobilenet_tf.errors import InputError

__all__ = ["MODEL_FILE", "SUMMARY_FILE", "MIN_CLASSES_FOR_TOP5", "label_names", "labels_path", "read_labels",
           "run_class_names", "is_imagenet_head", "is_imagenet_labels"]

MODEL_FILE = "model.keras"      # what train.py saves in its --model_dir
SUMMARY_FILE = "summary.json"   # train.py's run summary (holds "class_names")
MIN_CLASSES_FOR_TOP5 = 6        # with 5 or fewer classes every label is in the top 5


def is_imagenet_head(num_classes):
    """True for ImageNet's 1000-class head and TF-slim's 1001 (background first)."""
    return num_classes in (imagenet.NUM_CLASSES, imagenet.NUM_CLASSES + 1)


def is_imagenet_labels(names, num_classes):
    """True when a head of `num_classes` outputs is ImageNet's: 1000 / 1001 outputs with no
    names, or with ImageNet's in head order, Keras' (:func:`label_names`, what this project's
    exports carry) or the WordNet lemmas of Google's label files (``"tench, Tinca tinca"``)."""
    if not is_imagenet_head(num_classes):
        return False
    if names is None:
        return True
    names = list(names)
    background = [imagenet.BACKGROUND] if num_classes == imagenet.NUM_CLASSES + 1 else []
    return names in (label_names(num_classes), background + list(imagenet.class_names()))


def label_names(num_classes, class_names=None):
    """The labels of a head of `num_classes` outputs, in output order: `class_names` when
    given (a trained model's classes), else ImageNet's for 1000 / 1001 outputs (the names
    ``decode_predictions`` gives, ``background`` first for 1001), else ``class_0``, ..."""
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if len(class_names) != num_classes:
            raise InputError(f"{len(class_names)} class names for a head of {num_classes} "
                             "outputs")
        return class_names
    if is_imagenet_head(num_classes):
        names = list(imagenet.keras_class_names())
        return ([imagenet.BACKGROUND] if num_classes == imagenet.NUM_CLASSES + 1 else []) + names
    return [f"class_{i}" for i in range(num_classes)]


def labels_path(model_path):
    """Where the labels of an exported model live: ``m.tflite`` -> ``m_labels.txt`` beside it."""
    return os.path.splitext(os.fspath(model_path))[0] + "_labels.txt"


def read_labels(model_path):
    """The labels written beside `model_path` by export_tflite.py, or None if there are none."""
    path = labels_path(model_path)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def run_class_names(model_dir):
    """The ``class_names`` a train.py run recorded in ``model_dir/summary.json``, or None
    (no summary, an unreadable one, or a dataset without names)."""
    path = os.path.join(os.fspath(model_dir), SUMMARY_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None
