"""Where each weight of a MobileNetV1 is in every file format: the one name mapping.

A model variable is keyed ``(keras layer name, weight name)``, e.g.
``("Conv2d_1_depthwise", "kernel")``; :func:`slim_name` gives its TF-slim checkpoint name and
:func:`keras_applications_layer` the layer name of Google's Keras 2 ``.h5`` files
(``conv_dw_1``). How a TF-slim checkpoint's variables divide (model variables, their
ExponentialMovingAverage shadows, optimizer slots, ...) is :func:`classify_checkpoint_variable`.

Names only: this module reads no file and assigns nothing.
"""

import re

from mobilenet_tf.errors import WeightsError

__all__ = ["HEAD_LAYER", "SLIM_LOGITS_SCOPE", "EMA_SUFFIX", "WEIGHT_NAMES", "find_backbone",
           "model_variables", "slim_name", "key_from_slim_name", "slim_model_variables",
           "classify_checkpoint_variable", "keras_applications_layer"]

HEAD_LAYER = "Logits"
_SLIM_SCOPE = "MobilenetV1"
SLIM_LOGITS_SCOPE = "MobilenetV1/Logits/Conv2d_1c_1x1"
EMA_SUFFIX = "/ExponentialMovingAverage"
# Keras 3 weight names (DepthwiseConv2D's is "kernel" too) -> TF-slim's.
_SLIM_WEIGHT = {"kernel": "weights", "bias": "biases", "gamma": "gamma", "beta": "beta",
                "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
WEIGHT_NAMES = tuple(_SLIM_WEIGHT)     # every weight name a MobileNetV1 layer has
_KERAS_WEIGHT = {v: k for k, v in _SLIM_WEIGHT.items()}
_KERAS_WEIGHT["depthwise_weights"] = "kernel"
_SLIM_NAME_RE = re.compile(
    r"^MobilenetV1/(?:(?P<conv>Conv2d_\d+(?:_depthwise|_pointwise)?)(?P<bn>/BatchNorm)?"
    r"|(?P<logits>Logits/Conv2d_1c_1x1))/(?P<weight>[A-Za-z_]+)$")


def find_backbone(model):
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
    for layer in find_backbone(model).layers:
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
        scope = SLIM_LOGITS_SCOPE
    elif layer_name.endswith("_BatchNorm"):
        scope = f"{_SLIM_SCOPE}/{layer_name[:-len('_BatchNorm')]}/BatchNorm"
    else:
        scope = f"{_SLIM_SCOPE}/{layer_name}"
    slim_weight = _SLIM_WEIGHT[weight_name]
    if weight_name == "kernel" and layer_name.endswith("_depthwise"):
        slim_weight = "depthwise_weights"
    return f"{scope}/{slim_weight}"


def key_from_slim_name(name):
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
    if name.endswith(EMA_SUFFIX):
        return "average" if base in all_names else "other_average"
    if base is not None and base in all_names:
        return "slot"
    return "model"


# keras.applications' layer names (Google's .h5 files) for this project's layer names.
def keras_applications_layer(name):
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
