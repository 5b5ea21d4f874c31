"""Weights sources: what a ``weights`` argument names, and reading each file format.

* :func:`check_weights` / :func:`identify_source`: ``None``, ``"imagenet"`` or a path ->
  a :class:`WeightsSource` (its format), before any layer is built; downloads nothing.
* :func:`imagenet_file_name` / :func:`imagenet_weights_path`: Google's Keras applications
  files ``mobilenet_{1_0|7_5|5_0|2_5}_{224|192|160|128}_tf[_no_top].h5``, fetched with
  ``keras.utils.get_file`` from the URL ``keras.applications.MobileNet`` uses and cached like
  Keras does (``~/.keras/models`` or ``$KERAS_HOME/models``; keras.applications passes no file
  hash for these files, so none is checked here either).
* :func:`read_source`: the weights a source holds, keyed by the model's
  ``(layer, weight)`` names (``weight_names``), each read when used; :func:`source_classes`:
  the class count of its head.

Any error while reading a damaged file is one :class:`WeightsError` naming the file. This
module assigns nothing (``weights.load_weights`` does).
"""

import collections
import contextlib
import dataclasses
import os
import re
import zipfile

import numpy as np

from mobilenet_tf.errors import WeightsError
from mobilenet_tf.model.weight_names import (EMA_SUFFIX, HEAD_LAYER, SLIM_LOGITS_SCOPE, WEIGHT_NAMES,
                                             classify_checkpoint_variable, key_from_slim_name,
                                             keras_applications_layer, model_variables)
from mobilenet_tf.utils import backend

__all__ = ["BASE_WEIGHT_PATH", "IMAGENET_ALPHAS", "IMAGENET_SIZES", "CHECKPOINT_WEIGHTS",
           "WeightsSource", "check_weights", "identify_source", "imagenet_file_name",
           "imagenet_weights_path", "imagenet_size", "unknown_size_note", "read_source",
           "source_classes"]

# The location keras.applications.MobileNet downloads from (keras/src/applications/mobilenet.py).
BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
IMAGENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
IMAGENET_SIZES = (128, 160, 192, 224)
_ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
# keras.applications.MobileNet loads the 224 file into a model whose input size is unknown.
UNKNOWN_SIZE_IMAGENET_SIZE = 224
# None: Keras' cache (`~/.keras`, or `$KERAS_HOME` when set before Keras is imported).
CACHE_DIR = None

CHECKPOINT_WEIGHTS = ("auto", "average", "raw")


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """A resolved weights argument. `kind` is one of "imagenet", "keras2_h5",
    "keras_weights_h5", "keras_model", "slim_checkpoint"; `path` is the file or
    checkpoint prefix (for "imagenet": the file name to fetch)."""
    kind: str
    path: str


def _no_imagenet_file(alpha, received):
    pairs = ", ".join(f"{a:g}/{s}" for a in IMAGENET_ALPHAS for s in IMAGENET_SIZES)
    return WeightsError(f"weights='imagenet' exist only for alpha/image size {pairs} (square "
                        f"inputs). Received: alpha={alpha:g}, {received}")


def imagenet_size(alpha, input_shape):
    """Image size of the 'imagenet' file for a model input of `input_shape` (height, width,
    ...): its own size when square, or 224 when height or width is unknown (None), the file
    keras.applications.MobileNet loads then. WeightsError for a known non-square size."""
    rows, cols = input_shape[0], input_shape[1]
    if rows is None or cols is None:
        return UNKNOWN_SIZE_IMAGENET_SIZE
    if rows != cols:
        raise _no_imagenet_file(alpha, f"input_shape={tuple(input_shape)}")
    return rows


def unknown_size_note(file_name):
    return (f"weights='imagenet' for an input of unknown size: {file_name} (trained at "
            f"{UNKNOWN_SIZE_IMAGENET_SIZE}x{UNKNOWN_SIZE_IMAGENET_SIZE}), as keras.applications.")


def imagenet_file_name(alpha, image_size, include_top=True):
    """``mobilenet_7_5_192_tf.h5`` etc.; raises WeightsError for a pair Google did not publish."""
    if alpha not in _ALPHA_TEXT or image_size not in IMAGENET_SIZES:
        raise _no_imagenet_file(alpha, f"image_size={image_size}")
    return f"mobilenet_{_ALPHA_TEXT[alpha]}_{image_size}_tf{'' if include_top else '_no_top'}.h5"


def imagenet_weights_path(alpha, image_size, include_top=True, *, cache_dir=None):
    """Local path of Google's Keras applications file, downloading it into the Keras cache
    (``keras.utils.get_file``, ``cache_subdir="models"``) if it is not there yet."""
    import keras
    file_name = imagenet_file_name(alpha, image_size, include_top)
    origin = BASE_WEIGHT_PATH + file_name
    try:
        return keras.utils.get_file(file_name, origin, cache_subdir="models",
                                    cache_dir=cache_dir if cache_dir is not None else CACHE_DIR)
    except Exception as e:  # urllib/HTTP/OS errors arrive as several exception types
        reason = " ".join(str(e).split()) or type(e).__name__
        raise WeightsError(f"weights='imagenet': cannot download {origin} ({reason}); download "
                           f"it by hand into the Keras cache ~/.keras/models/ or pass its path as "
                           f"`weights`") from None


@contextlib.contextmanager
def _reading(path):
    """Any error while reading `path` (h5py's OSError, TensorFlow's data-loss errors, a short
    read's IndexError, ...) becomes one WeightsError naming the file."""
    try:
        yield
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - readers of damaged files raise many types
        reason = " ".join(str(getattr(e, "message", e)).split())[:200]
        raise WeightsError(f"weights: {path} is damaged or truncated and cannot be read "
                           f"({type(e).__name__}: {reason})") from None


def _guarded(path, read, *args):
    """A loader calling ``read(*args)`` whose failures name `path` (see :func:`_reading`)."""
    def load():
        with _reading(path):
            return read(*args)
    return load


def identify_source(path):
    """Format of a weights file or checkpoint at `path`; raises WeightsError if none fits."""
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.keras")):
        return WeightsSource("keras_model", os.path.join(path, "model.keras"))  # a train.py run
    if os.path.isdir(path):
        tf = backend.tensorflow(backend.SLIM_CHECKPOINTS)
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise WeightsError(f"weights: {path} is a directory without a TF checkpoint in it")
        return WeightsSource("slim_checkpoint", prefix)
    if path.endswith(".index") and os.path.isfile(path):
        backend.require_tensorflow(backend.SLIM_CHECKPOINTS)
        return WeightsSource("slim_checkpoint", path[:-len(".index")])
    if os.path.isfile(path + ".index"):
        backend.require_tensorflow(backend.SLIM_CHECKPOINTS)
        return WeightsSource("slim_checkpoint", path)
    if not os.path.exists(path):
        raise WeightsError("`weights` must be None, 'imagenet', a .h5/.keras/.weights.h5 file or "
                           "a TF checkpoint prefix; there is no such file or checkpoint prefix. "
                           f"Received: weights={path!r}")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        import h5py
        with _reading(path), h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or "model_weights" in f:
                return WeightsSource("keras2_h5", path)
            if "layers" in f or "vars" in f:
                return WeightsSource("keras_weights_h5", path)
        raise WeightsError(f"weights: {path} is an HDF5 file but not a Keras weights file")
    if magic[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise WeightsError(f"weights: {path} is damaged or truncated: it starts like a .keras zip "
                           "archive but its table of contents is missing")
    if magic[:4] == b"PK\x03\x04":
        with _reading(path), zipfile.ZipFile(path) as z:
            if "config.json" in z.namelist() and "model.weights.h5" in z.namelist():
                return WeightsSource("keras_model", path)
    raise WeightsError(f"weights: {path} is not a Keras .h5/.keras/.weights.h5 file or a TF "
                       f"checkpoint (a checkpoint is given by its prefix, e.g. model.ckpt)")


def check_weights(weights, *, alpha=1.0, input_shape=(224, 224, 3), include_top=True,
                  classes=1000, depth_multiplier=1, conv_defs=None):
    """Validates MobileNetV1's `weights` argument before any layer is built.

    Returns None (random initialization) or a :class:`WeightsSource`. Downloads nothing.
    """
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        from mobilenet_tf.model import architecture
        if conv_defs is not None and tuple(conv_defs) != architecture.MOBILENET_V1_CONV_DEFS:
            raise WeightsError("weights='imagenet' exist for the standard MobileNetV1 table only. "
                               "Received: conv_defs=<custom table>")
        if depth_multiplier != 1:
            raise WeightsError("weights='imagenet' need depth_multiplier=1. "
                               f"Received: depth_multiplier={depth_multiplier!r}")
        file_name = imagenet_file_name(alpha, imagenet_size(alpha, input_shape), include_top)
        if include_top and classes != 1000:
            raise WeightsError(
                "weights='imagenet' with include_top=True need classes=1000; for another class "
                "count use include_top=False, or mobilenet_tf.model.weights.load_weights(model, "
                f"'imagenet', skip_mismatched_head=True). Received: classes={classes!r}")
        return WeightsSource("imagenet", file_name)
    if isinstance(weights, (str, os.PathLike)):
        return identify_source(weights)
    raise WeightsError("`weights` must be None, 'imagenet' or the path of a weights file or "
                       f"checkpoint. Received: weights={weights!r}")


class _Tensors:
    """Weights read from one source: ``entries[key] = (source name, loader)``."""

    def __init__(self, description, kind):
        self.description = description
        self.kind = kind
        self.entries = {}
        self.unmapped = []
        self.ignored = collections.OrderedDict()
        self.checkpoint_weights = None


def _read_slim_checkpoint(prefix, checkpoint_weights):
    tf = backend.tensorflow(backend.SLIM_CHECKPOINTS)
    with _reading(prefix):
        reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    names = set(shapes)
    kinds = {name: classify_checkpoint_variable(name, names) for name in names}
    model_names = sorted(n for n, k in kinds.items() if k == "model")
    has_average = all(n + EMA_SUFFIX in names for n in model_names)
    if checkpoint_weights == "auto":
        checkpoint_weights = "average" if has_average and model_names else "raw"
    elif checkpoint_weights == "average" and not has_average:
        missing = next(n for n in model_names if n + EMA_SUFFIX not in names)
        raise WeightsError(f"checkpoint_weights='average' but {prefix} has no {missing}"
                           f"{EMA_SUFFIX}; use checkpoint_weights='raw'")
    out = _Tensors(prefix, "slim_checkpoint")
    out.checkpoint_weights = checkpoint_weights
    for name in model_names:
        stored = name + EMA_SUFFIX if checkpoint_weights == "average" else name
        key = key_from_slim_name(name)
        if key is None:
            out.unmapped.append(name)
        else:
            out.entries[key] = (stored, _guarded(prefix, reader.get_tensor, stored))
    counts = collections.Counter(kinds.values())
    if checkpoint_weights == "average":
        out.ignored["raw values (averages used)"] = counts["model"]
    elif counts["average"]:
        out.ignored["moving averages (raw values used)"] = counts["average"]
    for kind, text in (("slot", "optimizer slots"), ("global_step", "global_step"),
                       ("other_average", "loss averages")):
        if counts[kind]:
            out.ignored[text] = counts[kind]
    return out


def _read_keras2_h5(path, model_keys):
    import h5py
    out = _Tensors(path, "keras2_h5")
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        stored = {}
        for layer_name in group.attrs.get("layer_names", []):
            layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
            for weight_name in group[layer_name].attrs.get("weight_names", []):
                weight_name = (weight_name.decode() if isinstance(weight_name, bytes)
                               else str(weight_name))
                short = weight_name.split("/")[-1].split(":")[0]
                short = "kernel" if short == "depthwise_kernel" else short
                stored[(layer_name, short)] = (weight_name,
                                               np.asarray(group[layer_name][weight_name]))
    own_names = any(layer == "Conv2d_0" for layer, _ in stored)
    used = set()
    for layer in {layer for layer, _ in model_keys} | {HEAD_LAYER}:
        source_layer = layer if own_names else keras_applications_layer(layer)
        for weight in WEIGHT_NAMES:
            if (source_layer, weight) in stored:
                name, value = stored[(source_layer, weight)]
                used.add((source_layer, weight))
                out.entries[(layer, weight)] = (name, lambda value=value: value)
    out.unmapped = sorted(stored[k][0] for k in stored if k not in used)
    return out


def _keras_store_paths(backbone):
    """Where Keras 3 (`saving_lib`) stores each layer of `backbone` in a .weights.h5 file:
    ``layers/<snake_case class name>[_<n>]``, numbered in layer order."""
    from keras.src.utils import naming
    counts = collections.Counter()
    paths = {}
    for layer in backbone.layers:
        base = naming.to_snake_case(layer.__class__.__name__)
        paths[layer.name] = f"layers/{base}" + (f"_{counts[base]}" if counts[base] else "")
        counts[base] += 1
    return paths


def _keras_h5_head(f):
    """Store path of the classifier in a Keras 3 .weights.h5: the one Conv2D with a bias."""
    layers = f["layers"] if "layers" in f else {}
    heads = [f"layers/{name}" for name in layers
             if re.fullmatch(r"conv2d(_\d+)?", name) and "vars" in layers[name]
             and "1" in layers[name]["vars"]]
    return heads[0] if len(heads) == 1 else None


def _read_keras_weights_h5(path, backbone):
    import h5py
    out = _Tensors(path, "keras_weights_h5")
    paths = _keras_store_paths(backbone)
    used = set()
    with h5py.File(path, "r") as f:
        if HEAD_LAYER not in paths and _keras_h5_head(f):
            paths[HEAD_LAYER] = _keras_h5_head(f)
        for layer_name, store in paths.items():
            if store not in f or "vars" not in f[store]:
                continue
            order = (["kernel", "bias"] if layer_name == HEAD_LAYER
                     else [v.name for v in backbone.get_layer(layer_name).weights])
            for i, weight in enumerate(order):
                dataset = f"{store}/vars/{i}"
                if dataset in f:
                    used.add(dataset)
                    value = np.asarray(f[dataset])
                    out.entries[(layer_name, weight)] = (dataset, lambda value=value: value)
        all_datasets = []
        f.visititems(lambda name, obj: all_datasets.append(name)
                     if isinstance(obj, h5py.Dataset) else None)
    out.unmapped = sorted(d for d in all_datasets if d not in used)
    if not used:
        raise WeightsError(f"weights: {path} holds no MobileNetV1 layers at the top level (weights "
                           f"saved from a wrapping model): save that model as .keras instead")
    return out


def _read_keras_model(path):
    import keras
    from mobilenet_tf.model import qat  # noqa: F401  (registers the quantization-aware layers)
    try:
        source_model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises several types for a broken file
        reason = " ".join(str(e).split())[:200]
        raise WeightsError(f"weights: cannot load Keras model {path} ({reason})") from None
    out = _Tensors(path, "keras_model")
    for key, variable in model_variables(source_model).items():
        out.entries[key] = (variable.path, lambda v=variable: np.asarray(v.numpy()))
    return out


def read_source(source, backbone, checkpoint_weights):
    if source.kind == "slim_checkpoint":
        return _read_slim_checkpoint(source.path, checkpoint_weights)
    if source.kind == "keras2_h5":
        with _reading(source.path):
            return _read_keras2_h5(source.path, model_variables(backbone))
    if source.kind == "keras_weights_h5":
        with _reading(source.path):
            return _read_keras_weights_h5(source.path, backbone)
    return _read_keras_model(source.path)


def source_classes(weights):
    """Class count of the head in a weights source (path or WeightsSource), or None if it has
    no head. Used by the commands to default ``classes`` to what the file holds."""
    source = weights if isinstance(weights, WeightsSource) else identify_source(weights)
    with _reading(source.path):
        return _source_classes(source)


def _source_classes(source):
    if source.kind == "slim_checkpoint":
        tf = backend.tensorflow(backend.SLIM_CHECKPOINTS)
        shapes = tf.train.load_checkpoint(source.path).get_variable_to_shape_map()
        shape = shapes.get(f"{SLIM_LOGITS_SCOPE}/biases")
        return None if shape is None else int(shape[0])
    if source.kind == "keras2_h5":
        import h5py
        with h5py.File(source.path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            for layer in ("conv_preds", HEAD_LAYER):
                if layer in group and group[layer].attrs.get("weight_names") is not None:
                    for name in group[layer].attrs["weight_names"]:
                        name = name.decode() if isinstance(name, bytes) else str(name)
                        if name.split("/")[-1].startswith("bias"):
                            return int(group[layer][name].shape[0])
        return None
    if source.kind == "keras_model":
        import json
        with zipfile.ZipFile(source.path) as z:
            config = json.loads(z.read("config.json"))
        found = []

        def walk(node):
            if isinstance(node, dict):
                inner = node.get("config")
                if (node.get("class_name") == "Conv2D" and isinstance(inner, dict)
                        and inner.get("name") == HEAD_LAYER):
                    found.append(int(inner["filters"]))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        walk(config)
        return found[0] if found else None
    if source.kind == "keras_weights_h5":
        import h5py
        with h5py.File(source.path, "r") as f:
            head = _keras_h5_head(f)
            return int(f[f"{head}/vars/1"].shape[0]) if head else None
    return None
