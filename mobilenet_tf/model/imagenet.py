"""ImageNet input scaling, class names and prediction decoding (offline).

* :func:`preprocess_input`: pixels 0..255 -> [-1, 1], as the original TF-slim
  (inception preprocessing) and ``keras.applications.mobilenet``.
* :func:`decode_predictions`: top classes of a 1000-class (Keras) or 1001-class
  (TF-slim, index 0 = background) head as ``(wordnet_id, name, probability)``,
  with Keras' names (:func:`keras_class_names`, ``"African_elephant"``).

The 1000 classes ship in ``mobilenet_tf/model/imagenet_classes.tsv`` (WordNet id
and WordNet lemmas, sorted by id: the order of the 1000-class head), made by
``tools/make_imagenet_classes.py`` from tensorflow-datasets and timm.
"""

import functools
import os

import numpy as np

__all__ = ["NUM_CLASSES", "BACKGROUND", "preprocess_input", "to_uint8",
           "wordnet_ids", "class_names", "keras_class_names", "class_index", "label_offset",
           "decode_predictions"]

NUM_CLASSES = 1000
BACKGROUND = "background"
DATA_FORMATS = ("channels_last", "channels_first")

_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.tsv")


def preprocess_input(x, data_format=None):
    """Scales RGB pixels from [0, 255] to [-1, 1] (``x / 127.5 - 1``), float32.

    Accepts a NumPy array (or list, or scalar), returned as a NumPy array, or a tensor of the
    Keras backend (TensorFlow, JAX, PyTorch), returned as one (``keras.ops``).
    ``data_format`` (``None``, ``"channels_last"`` or ``"channels_first"``) is
    ``keras.applications.mobilenet.preprocess_input``'s argument: the scaling is the same
    for every pixel and channel, so the result does not depend on it, but any other value
    is refused as Keras refuses it.
    """
    if data_format is not None and (not isinstance(data_format, str)
                                    or data_format not in DATA_FORMATS):
        raise ValueError("`data_format` must be None, 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return np.asarray(x, dtype=np.float32) / 127.5 - 1.0
    from keras import ops
    return ops.cast(x, "float32") / 127.5 - 1.0


def to_uint8(x):
    """The inverse of :func:`preprocess_input`: [-1, 1] -> RGB ``uint8`` 0..255 (NumPy)."""
    return np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _classes():
    with open(_CLASSES_FILE, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if len(rows) != NUM_CLASSES:
        raise RuntimeError(f"{_CLASSES_FILE} must list {NUM_CLASSES} classes, it lists {len(rows)}")
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def wordnet_ids():
    """The 1000 ImageNet WordNet ids (``n01440764``, ...) in head order (sorted)."""
    return _classes()[0]


def class_names():
    """The 1000 class names, WordNet lemmas as in Google's label files
    (``"tench, Tinca tinca"``), in head order."""
    return _classes()[1]


@functools.lru_cache(maxsize=1)
def keras_class_names():
    """The 1000 names :func:`decode_predictions` gives, in head order: Keras'
    (``keras.applications.imagenet_utils.decode_predictions``, its
    ``imagenet_class_index.json``), i.e. the first WordNet lemma with its spaces
    written as underscores (``"African_elephant"``, ``"tench"``). Two classes
    share a name there, as in WordNet: ``crane`` (bird and machine) and
    ``maillot``."""
    return tuple(name.split(",")[0].replace(" ", "_") for name in class_names())


@functools.lru_cache(maxsize=1)
def _index_of():
    return {wnid: i for i, wnid in enumerate(wordnet_ids())}


def class_index(wnid):
    """0..999 index of a WordNet id in the 1000-class head; ValueError if not ImageNet-1k."""
    try:
        return _index_of()[wnid]
    except KeyError:
        raise ValueError(f"{wnid!r} is not one of the 1000 ImageNet WordNet ids "
                         "(n01440764 ... n15075141)") from None


def label_offset(num_classes):
    """Index of ImageNet class 0 in a head of `num_classes` outputs: 0 for 1000, 1 for
    TF-slim's 1001 (background first). ValueError for any other head."""
    if num_classes == NUM_CLASSES:
        return 0
    if num_classes == NUM_CLASSES + 1:
        return 1
    raise ValueError("ImageNet predictions need a head of 1000 or 1001 (TF-slim, background "
                     f"first) classes. Received: classes={num_classes}")


def decode_predictions(preds, top=5):
    """Top ImageNet classes of each row of `preds` (batch, 1000 or 1001).

    Returns a list (one per row) of ``top`` tuples ``(wordnet_id, name,
    score)``, highest score first; `name` is Keras' name of the class
    (:func:`keras_class_names`: ``"tench"``, ``"African_elephant"``). For a
    1001-class head, index 0 decodes as ``("background", "background", score)``.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError("`decode_predictions` expects a batch of predictions, shape "
                         f"(samples, 1000 or 1001). Received: preds.shape={preds.shape}")
    offset = label_offset(preds.shape[1])
    if not isinstance(top, int) or not 1 <= top <= preds.shape[1]:
        raise ValueError(f"`top` must be an int in [1, {preds.shape[1]}]. Received: top={top!r}")
    ids, names = wordnet_ids(), keras_class_names()
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        decoded = []
        for i in order:
            if i < offset:
                decoded.append((BACKGROUND, BACKGROUND, float(row[i])))
            else:
                decoded.append((ids[i - offset], names[i - offset], float(row[i])))
        results.append(decoded)
    return results
