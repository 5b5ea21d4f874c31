"""What names a dataset, which image files a folder dataset reads, how an image is prepared for
prediction: pure Python.

``train.py`` and ``export_tflite.py`` check a dataset spec with :func:`parse_dataset_spec`
before TensorFlow is imported; the data readers use the same definitions.
"""

import os
import re

from mobilenet_tf.errors import InputError

__all__ = ["FOLDER_FORMATS", "DEFAULT_FOLDER_FORMATS", "PREPROCESSINGS", "DEFAULT_MIN_CROP_AREA",
           "parse_dataset_spec"]

FOLDER_FORMATS = ("jpeg", "png", "bmp", "gif")
DEFAULT_FOLDER_FORMATS = ("jpeg", "png", "bmp")
# How prediction and evaluation prepare one image (preprocessing.prepare_image): resize only,
# or TF-slim's evaluation crop then resize.
PREPROCESSINGS = ("resize", "central_crop")
# The smallest area fraction of an Inception training crop (TF-slim's 0.05;
# preprocessing.preprocess_for_train, the training configuration's min_crop_area).
DEFAULT_MIN_CROP_AREA = 0.05
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?(:[0-9.*]+)?$")


def parse_dataset_spec(spec):
    """``'synthetic'`` -> ('synthetic', None); ``'folder:P'`` -> ('folder', P); a tfds name -> ('tfds', name);
    ``'tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]'`` or ``'tfrecord:DIR'`` -> ('tfrecord', (train, validation
    or None)).

    Checks the form only, not whether the data exists. Raises InputError (a ValueError, one line).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("dataset must be a tfds name (tf_flowers, imagenet2012, ...), 'folder:PATH', "
                         f"'tfrecord:GLOB' or 'synthetic'. Received: dataset={spec!r}")
    if spec == "synthetic":
        return "synthetic", None
    if spec.startswith("folder:"):
        path = spec[len("folder:"):]
        if not path.strip():
            raise InputError("dataset 'folder:PATH' needs the path of a folder of class sub-folders. "
                             f"Received: dataset={spec!r}")
        return "folder", os.path.expanduser(path)
    if spec.startswith("tfrecord:"):
        parts = spec[len("tfrecord:"):].split(",")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise InputError("dataset 'tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]' (or 'tfrecord:DIR' holding "
                             "train-* and validation-* shards) needs one or two non-empty paths or "
                             f"globs. Received: dataset={spec!r}")
        train, validation = [os.path.expanduser(p) for p in parts] + [None] * (2 - len(parts))
        return "tfrecord", (train, validation)
    if not _TFDS_NAME.match(spec):
        raise InputError("dataset must be a tfds name (lower case, e.g. tf_flowers or "
                         "imagenet2012:5.1.0), 'folder:PATH', 'tfrecord:GLOB' or 'synthetic'. Received: "
                         f"dataset={spec!r}")
    return "tfds", spec
