"""Pretrained weights: every source, one name mapping, one loader.

Sources that load into a model built by ``mobilenet_tf.MobileNetV1``:

* ``"imagenet"``: Google's Keras applications files
  ``mobilenet_{1_0|7_5|5_0|2_5}_{224|192|160|128}_tf[_no_top].h5``, fetched with
  ``keras.utils.get_file`` from the URL ``keras.applications.MobileNet`` uses and
  cached like Keras does (``~/.keras/models`` or ``$KERAS_HOME/models``).
  keras.applications passes no file hash for these files, so none is checked
  here either.
* a Keras 2 ``.h5`` weights file, with or without top (``keras.applications``
  layer names ``conv1``, ``conv_dw_1``, ... or this project's layer names);
* a TF-slim checkpoint prefix (Google's ``mobilenet_v1_*.ckpt`` releases), read
  with ``tf.train.load_checkpoint``; a ``.index`` file or a directory holding a
  checkpoint also works;
* this project's own ``.keras`` model files and ``.weights.h5`` files, and a ``train.py`` run
  folder (its ``model.keras``: e.g. a float run to fine-tune with quantization-aware training).

How a TF-slim checkpoint's variables are read (Google's 1.0/224 release has 443):

* 137 *model variables* (27 convolution kernels, 27 x 4 batch-norm gamma, beta,
  moving_mean, moving_variance, and the logits' weights and biases);
* 137 ``<model variable>/ExponentialMovingAverage`` shadows of them;
* 166 optimizer slots (``/RMSProp``, ``/RMSProp_1`` of the 83 trained variables),
  ``global_step``, and 2 averages of losses (``total_loss/ExponentialMovingAverage``,
  ``softmax_cross_entropy_loss/value/ExponentialMovingAverage``), all ignored.

``checkpoint_weights="average"`` loads the shadows (what TF-slim's evaluation
restores and what the published accuracy was measured with), ``"raw"`` the
model variables; ``"auto"`` (default) takes the shadows when the checkpoint has
them for every model variable. The loader prints which it used. TF-slim heads
have 1001 classes (0 = background): loading one into ``classes=1000`` drops the
background row, ``classes=1001`` keeps it.

Names: a model variable is keyed ``(keras layer name, weight name)``, e.g.
``("Conv2d_1_depthwise", "kernel")``; ``slim_name`` and
``_KERAS_APPLICATIONS`` translate that key to each file format's naming.

Every problem is a ``WeightsError`` (a ``ValueError``) with one line naming the
variable and both shapes; source variables that are not used are reported.
Loading checks everything first and assigns nothing unless all of it fits.

This module does not build models (``MobileNetV1`` calls :func:`check_weights`
before building and :func:`load_weights` after).
"""

import collections
import contextlib
import dataclasses
import os
import re
import zipfile

import numpy as np

from mobilenet_tf.errors import WeightsError

__all__ = [
    "BASE_WEIGHT_PATH", "IMAGENET_ALPHAS", "IMAGENET_SIZES", "CHECKPOINT_WEIGHTS", "WeightsError",
    "WeightsSource", "LoadReport", "check_weights", "imagenet_file_name", "imagenet_weights_path",
    "identify_source", "source_classes", "load_weights", "model_variables", "slim_name",
    "slim_model_variables", "classify_checkpoint_variable",
]

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
HEAD_LAYER = "Logits"
_SLIM_SCOPE = "MobilenetV1"
_SLIM_LOGITS_SCOPE = "MobilenetV1/Logits/Conv2d_1c_1x1"
_EMA_SUFFIX = "/ExponentialMovingAverage"
# Keras 3 weight names (DepthwiseConv2D's is "kernel" too) -> TF-slim's.
_SLIM_WEIGHT = {"kernel": "weights", "bias": "biases", "gamma": "gamma", "beta": "beta",
                "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
_KERAS_WEIGHT = {v: k for k, v in _SLIM_WEIGHT.items()}
_KERAS_WEIGHT["depthwise_weights"] = "kernel"
_SLIM_NAME_RE = re.compile(
    r"^MobilenetV1/(?:(?P<conv>Conv2d_\d+(?:_depthwise|_pointwise)?)(?P<bn>/BatchNorm)?"
    r"|(?P<logits>Logits/Conv2d_1c_1x1))/(?P<weight>[A-Za-z_]+)$")


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """A resolved weights argument. `kind` is one of "imagenet", "keras2_h5",
    "keras_weights_h5", "keras_model", "slim_checkpoint"; `path` is the file or
    checkpoint prefix (for "imagenet": the file name to fetch)."""
    kind: str
    path: str


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_weights` did."""
    source: str
    kind: str
    loaded: int = 0
    checkpoint_weights: str = None          # "average" / "raw" for checkpoints
    notes: list = dataclasses.field(default_factory=list)     # background row dropped, head skipped
    ignored: dict = dataclasses.field(default_factory=dict)   # category -> count, by design
    unused: list = dataclasses.field(default_factory=list)    # source weights nothing took

    def lines(self):
        out = [f"Loaded {self.loaded} variables from {self.source}"
               + (f" ({_CHECKPOINT_CHOICE_TEXT[self.checkpoint_weights]})"
                  if self.checkpoint_weights else "") + "."]
        if self.ignored:
            out.append("Ignored by design: " + ", ".join(
                f"{count} {what}" for what, count in self.ignored.items()) + ".")
        out.extend(self.notes)
        if self.unused:
            shown = ", ".join(self.unused[:6]) + (", ..." if len(self.unused) > 6 else "")
            out.append(f"Not used: {len(self.unused)} variables of the source ({shown}).")
        return out


_CHECKPOINT_CHOICE_TEXT = {
    "average": "checkpoint_weights='average': the ExponentialMovingAverage shadows",
    "raw": "checkpoint_weights='raw': the raw variables, not their moving averages",
}


# --- the names ---------------------------------------------------------------------------------
def _find_backbone(model):
    """`model` if it holds the MobileNetV1 layers, else its nested model that does."""
    names = {layer.name for layer in model.layers}
    if "Conv2d_0" in names:
        return model
    for layer in model.layers:
        if hasattr(layer, "layers") and any(sub.name == "Conv2d_0" for sub in layer.layers):
            return layer
    raise WeightsError(f"`model` must be a MobileNetV1 built by mobilenet_tf (a layer named "
                       f"'Conv2d_0'). Received: model={model.name!r}")


def model_variables(model):
    """``{(layer name, weight name): variable}`` of a MobileNetV1, in layer order."""
    out = {}
    for layer in _find_backbone(model).layers:
        for variable in layer.weights:
            out[(layer.name, variable.name.split("/")[-1].split(":")[0])] = variable
    return out


def slim_name(layer_name, weight_name):
    """The TF-slim checkpoint name of a model variable.

    ``("Conv2d_1_depthwise", "kernel")`` ->
    ``"MobilenetV1/Conv2d_1_depthwise/depthwise_weights"``;
    ``("Conv2d_0_BatchNorm", "gamma")`` -> ``"MobilenetV1/Conv2d_0/BatchNorm/gamma"``;
    ``("Logits", "bias")`` -> ``"MobilenetV1/Logits/Conv2d_1c_1x1/biases"``.
    """
    if weight_name not in _SLIM_WEIGHT:
        raise WeightsError(f"no TF-slim name for weight {weight_name!r} of layer {layer_name!r}")
    if layer_name == HEAD_LAYER:
        scope = _SLIM_LOGITS_SCOPE
    elif layer_name.endswith("_BatchNorm"):
        scope = f"{_SLIM_SCOPE}/{layer_name[:-len('_BatchNorm')]}/BatchNorm"
    else:
        scope = f"{_SLIM_SCOPE}/{layer_name}"
    slim_weight = _SLIM_WEIGHT[weight_name]
    if weight_name == "kernel" and layer_name.endswith("_depthwise"):
        slim_weight = "depthwise_weights"
    return f"{scope}/{slim_weight}"


def _key_from_slim_name(name):
    match = _SLIM_NAME_RE.match(name)
    if not match or match["weight"] not in _KERAS_WEIGHT:
        return None
    if match["logits"]:
        layer = HEAD_LAYER
    else:
        layer = match["conv"] + ("_BatchNorm" if match["bn"] else "")
    return (layer, _KERAS_WEIGHT[match["weight"]])


def slim_model_variables(model):
    """``{slim name: shape}`` that a TF-slim checkpoint must hold for `model`."""
    return {slim_name(*key): tuple(variable.shape) for key, variable in model_variables(model).items()}


def classify_checkpoint_variable(name, all_names):
    """What a checkpoint variable is: "model", "average" (a model variable's
    ExponentialMovingAverage shadow), "slot" (an optimizer slot of a model
    variable, e.g. RMSProp), "global_step" or "other_average" (a loss average)."""
    if name == "global_step":
        return "global_step"
    base = name.rsplit("/", 1)[0] if "/" in name else None
    if name.endswith(_EMA_SUFFIX):
        return "average" if base in all_names else "other_average"
    if base is not None and base in all_names:
        return "slot"
    return "model"


# --- resolving the `weights` argument (before any layer is built) ------------------------------
def _no_imagenet_file(alpha, received):
    pairs = ", ".join(f"{a:g}/{s}" for a in IMAGENET_ALPHAS for s in IMAGENET_SIZES)
    return WeightsError(f"weights='imagenet' exist only for alpha/image size {pairs} (square "
                        f"inputs). Received: alpha={alpha:g}, {received}")


def _imagenet_size(alpha, input_shape):
    """Image size of the 'imagenet' file for a model input of `input_shape` (height, width,
    ...): its own size when square, or 224 when height or width is unknown (None), the file
    keras.applications.MobileNet loads then. WeightsError for a known non-square size."""
    rows, cols = input_shape[0], input_shape[1]
    if rows is None or cols is None:
        return UNKNOWN_SIZE_IMAGENET_SIZE
    if rows != cols:
        raise _no_imagenet_file(alpha, f"input_shape={tuple(input_shape)}")
    return rows


def _unknown_size_note(file_name):
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
        import tensorflow as tf
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise WeightsError(f"weights: {path} is a directory without a TF checkpoint in it")
        return WeightsSource("slim_checkpoint", prefix)
    if path.endswith(".index") and os.path.isfile(path):
        return WeightsSource("slim_checkpoint", path[:-len(".index")])
    if os.path.isfile(path + ".index"):
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
        file_name = imagenet_file_name(alpha, _imagenet_size(alpha, input_shape), include_top)
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


# --- reading sources ---------------------------------------------------------------------------
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
    import tensorflow as tf
    with _reading(prefix):
        reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    names = set(shapes)
    kinds = {name: classify_checkpoint_variable(name, names) for name in names}
    model_names = sorted(n for n, k in kinds.items() if k == "model")
    has_average = all(n + _EMA_SUFFIX in names for n in model_names)
    if checkpoint_weights == "auto":
        checkpoint_weights = "average" if has_average and model_names else "raw"
    elif checkpoint_weights == "average" and not has_average:
        missing = next(n for n in model_names if n + _EMA_SUFFIX not in names)
        raise WeightsError(f"checkpoint_weights='average' but {prefix} has no {missing}"
                           f"{_EMA_SUFFIX}; use checkpoint_weights='raw'")
    out = _Tensors(prefix, "slim_checkpoint")
    out.checkpoint_weights = checkpoint_weights
    for name in model_names:
        stored = name + _EMA_SUFFIX if checkpoint_weights == "average" else name
        key = _key_from_slim_name(name)
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


# keras.applications' layer names (Google's .h5 files) for this project's layer names.
def _keras_applications_layer(name):
    if name == "Conv2d_0":
        return "conv1"
    if name == "Conv2d_0_BatchNorm":
        return "conv1_bn"
    if name == HEAD_LAYER:
        return "conv_preds"
    match = re.fullmatch(r"Conv2d_(\d+)_(depthwise|pointwise)(_BatchNorm)?", name)
    if match:
        kind = "dw" if match[2] == "depthwise" else "pw"
        return f"conv_{kind}_{match[1]}" + ("_bn" if match[3] else "")
    return None


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
        source_layer = layer if own_names else _keras_applications_layer(layer)
        for weight in _SLIM_WEIGHT:
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


def _read_source(source, backbone, checkpoint_weights):
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
        import tensorflow as tf
        shapes = tf.train.load_checkpoint(source.path).get_variable_to_shape_map()
        shape = shapes.get(f"{_SLIM_LOGITS_SCOPE}/biases")
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


# --- loading -----------------------------------------------------------------------------------
def _shape(array_or_shape):
    return tuple(int(s) for s in getattr(array_or_shape, "shape", array_or_shape))


def load_weights(model, source, *, skip_mismatched_head=False, checkpoint_weights="auto",
                 verbose=True):
    """Loads pretrained weights into an already-built MobileNetV1.

    Args:
      model: a model built by ``mobilenet_tf.MobileNetV1`` (or a model holding one
        as a nested layer, e.g. a fine-tuning wrapper).
      source: ``"imagenet"`` (the file for the model's α and input size), the path
        of a Keras 2 ``.h5`` file, a TF-slim checkpoint prefix, or this project's
        ``.keras`` / ``.weights.h5`` file (see the module docstring).
      skip_mismatched_head: leave the classifier (``Logits``) as it is when the
        source has no head or a head of another class count (fine-tuning to new
        classes). Without it such a head is an error. A 1001-class TF-slim head
        always loads into 1000 classes by dropping the background row.
      checkpoint_weights: for TF-slim checkpoints, ``"average"`` (the
        ExponentialMovingAverage shadows), ``"raw"`` or ``"auto"`` (the shadows
        when present: what the published accuracy was measured with).
      verbose: print what was loaded, what was ignored and what was not used.

    Returns:
      A :class:`LoadReport`.

    Raises:
      WeightsError: (a ValueError, one line) for a source that does not exist or
        is not a weights file, a missing variable, or a shape mismatch (naming the
        variable and both shapes). Nothing is assigned then.
    """
    if checkpoint_weights not in CHECKPOINT_WEIGHTS:
        raise WeightsError(f"`checkpoint_weights` must be one of {CHECKPOINT_WEIGHTS}. "
                           f"Received: checkpoint_weights={checkpoint_weights!r}")
    backbone = _find_backbone(model)
    targets = model_variables(backbone)
    if isinstance(source, WeightsSource):
        resolved = source
    elif isinstance(source, str) and source == "imagenet":
        alpha = _model_alpha(backbone)
        resolved = WeightsSource("imagenet", imagenet_file_name(
            alpha, _imagenet_size(alpha, backbone.input_shape[1:]),
            include_top=(HEAD_LAYER, "kernel") in targets))
    elif isinstance(source, (str, os.PathLike)):
        resolved = identify_source(source)
    else:
        raise WeightsError("`source` must be 'imagenet' or the path of a weights file or "
                           f"checkpoint. Received: source={source!r}")
    notes = []
    if resolved.kind == "imagenet":
        alpha = _model_alpha(backbone)
        path = imagenet_weights_path(alpha, _imagenet_size(alpha, backbone.input_shape[1:]),
                                     include_top=(HEAD_LAYER, "kernel") in targets)
        if None in backbone.input_shape[1:3]:
            notes.append(_unknown_size_note(os.path.basename(path)))
        resolved = WeightsSource("keras2_h5", path)

    tensors = _read_source(resolved, backbone, checkpoint_weights)
    report = LoadReport(source=tensors.description, kind=tensors.kind,
                        checkpoint_weights=tensors.checkpoint_weights,
                        ignored=dict(tensors.ignored), notes=notes)
    assignments = []
    head_keys = [k for k in targets if k[0] == HEAD_LAYER]
    head_source = [k for k in tensors.entries if k[0] == HEAD_LAYER]
    skip_head = False
    if head_keys:
        model_classes = _shape(targets[(HEAD_LAYER, "kernel")])[-1]
        if not head_source:
            if not skip_mismatched_head:
                raise WeightsError(
                    f"weights: {tensors.description} has no classifier head but the model has "
                    f"one ({model_classes} classes): build with include_top=False or pass "
                    f"skip_mismatched_head=True")
            skip_head = True
            report.notes.append("Head not loaded: the source has no classifier head.")
        else:
            name, load = tensors.entries.get((HEAD_LAYER, "bias"),
                                             tensors.entries[head_source[0]])
            source_classes_ = _shape(load())[-1]
            if source_classes_ != model_classes and not (
                    source_classes_ == 1001 and model_classes == 1000):
                if not skip_mismatched_head:
                    raise WeightsError(
                        f"weights: {name} has shape ({source_classes_},) in "
                        f"{tensors.description} but the model's Logits/bias has shape "
                        f"({model_classes},): build with classes={source_classes_} or pass "
                        f"skip_mismatched_head=True")
                skip_head = True
                report.notes.append(f"Head not loaded: the source has {source_classes_} "
                                    f"classes, the model {model_classes}.")
    used = set()
    for key, variable in targets.items():
        if key[0] == HEAD_LAYER and skip_head:
            continue
        if key not in tensors.entries:
            wanted = "/".join(key)
            if tensors.kind == "slim_checkpoint":
                wanted = slim_name(*key)
            elif tensors.kind == "keras2_h5" and _keras_applications_layer(key[0]):
                wanted += f" or {_keras_applications_layer(key[0])}/{key[1]}"
            raise WeightsError(f"weights: {tensors.description} has no variable for the model's "
                               f"{'/'.join(key)} (looked for {wanted}, shape "
                               f"{_shape(variable)})")
        name, load = tensors.entries[key]
        value = np.asarray(load())
        target_shape = _shape(variable)
        if (key[0] == HEAD_LAYER and value.shape[-1:] == (1001,) and target_shape[-1:] == (1000,)
                and value.shape[:-1] == target_shape[:-1]):
            value = value[..., 1:]
            if "Dropped" not in " ".join(report.notes):
                report.notes.append("Dropped the background class (index 0) of the 1001-class "
                                    "head: the model has 1000 classes.")
        if value.shape != target_shape:
            raise WeightsError(f"weights: {name} has shape {value.shape} in {tensors.description} "
                               f"but the model's {'/'.join(key)} has shape {target_shape}")
        assignments.append((variable, value))
        used.add(key)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    report.loaded = len(assignments)
    report.unused = sorted(tensors.entries[k][0] for k in tensors.entries
                           if k not in used and not (skip_head and k[0] == HEAD_LAYER)) \
        + list(tensors.unmapped)
    if skip_head and head_source:
        report.ignored["head variables (head not loaded)"] = len(head_source)
    if head_source and not head_keys:
        report.notes.append("The source's classifier head is not used: the model has no head "
                            "(include_top=False).")
    if verbose:
        for line in report.lines():
            print(line)
    return report


def _model_alpha(backbone):
    """α of a built MobileNetV1, from its first layer's channels (32 at α=1)."""
    channels = _shape(backbone.get_layer("Conv2d_0").kernel)[-1]
    for alpha in IMAGENET_ALPHAS:
        if max(int(32 * alpha), 8) == channels:
            return alpha
    return channels / 32.0
