"""Which operator of a ``.tflite`` file computes which layer of its Keras model, by our names.

The TFLite converter fuses a convolution, its batch norm, its ReLU6 and its padding into one
operator and names that operator's output tensor after all of them, ``;``-joined TensorFlow
name scopes such as ``mobilenet_v1_0.25_128_1/Conv2d_1_depthwise_Relu6_1/Relu6;...;
mobilenet_v1_0.25_128_1/Conv2d_1_depthwise_1/depthwise``. :func:`map_layers` reads those scopes
back onto the Keras model's layer names (a scope is a layer's name, or its name with the
``_<n>`` TensorFlow appends when a scope is entered again), one operator per layer:

* the layer an operator reports under is the one whose name starts every layer name in its
  tensor's name (``Conv2d_0`` for ``Conv2d_0``, ``Conv2d_0_pad``, ``Conv2d_0_BatchNorm`` and
  ``Conv2d_0_Relu6``: the builder's ``<layer>_<part>`` names), and the Keras tensor it holds is
  the output of the last of them in the model (``Conv2d_0_Relu6``);
* an operator whose tensor names no layer (the softmax's is the signature's output,
  ``StatefulPartitionedCall:0``) is the next Keras layer after the one its input holds;
* QUANTIZE and DEQUANTIZE (the int8 file's input and output, and the seams around layers kept
  in float) and the float files' input scaling (``Cast``, ``truediv``, ``sub``) are no layer.

A layer met twice, or an operator that computes and maps to no layer, is a :class:`LayerMapError`
(one line). Operators that only move data (RESHAPE, SQUEEZE, PAD) are mapped but are no
"quantized layer" of the report (:func:`quantized_layers`). Reads bytes; writes nothing.
"""

import dataclasses
import re

import numpy as np

from mobilenet_tf.export.options import ExportError

__all__ = ["LayerMapError", "MappedOp", "map_layers", "quantized_layers", "expected_layers",
           "mult_adds_by_layer", "DATA_MOVEMENT_OPS"]

# Operators that only copy or reshape values: exact in int8, no quantization error of their own.
DATA_MOVEMENT_OPS = ("RESHAPE", "SQUEEZE", "PAD", "TRANSPOSE", "EXPAND_DIMS")
_SEAMS = ("QUANTIZE", "DEQUANTIZE")
_SCOPE_REPEAT = re.compile(r"^(.*)_\d+$")


class LayerMapError(ExportError):
    """The operators of a ``.tflite`` file do not map one to one onto the Keras model's layers."""


@dataclasses.dataclass(frozen=True)
class MappedOp:
    """One operator of a ``.tflite`` file and the Keras layer it computes."""
    layer: str             # our layer name: Conv2d_0, Conv2d_1_depthwise, ..., Logits, Predictions
    output_layer: str      # the Keras layer whose output its output tensor holds (Conv2d_0_Relu6)
    op_index: int
    op_name: str           # CONV_2D, DEPTHWISE_CONV_2D, MEAN, SOFTMAX, ...
    tensor_index: int      # its output tensor
    tensor_name: str
    dtype: str             # the output tensor's type: int8 (quantized) or float32 (kept in float)
    scale: float           # the output's quantization step (0.0 when not quantized)
    zero_point: int

    @property
    def quantized(self):
        return self.scale > 0

    @property
    def computes(self):
        return self.op_name not in DATA_MOVEMENT_OPS


def _layers_in_scope(name, order):
    """The Keras layer names that the ``;``-joined scopes of tensor `name` mention."""
    found = set()
    for part in name.split(";"):
        for component in part.split("/"):
            if component in order:
                found.add(component)
                continue
            repeat = _SCOPE_REPEAT.match(component)
            if repeat and repeat.group(1) in order:
                found.add(repeat.group(1))
    return found


def _owner(names):
    """The layer that every name in `names` starts with (``X`` for ``X``, ``X_pad``,
    ``X_BatchNorm``, ``X_Relu6``), or None."""
    for candidate in sorted(names, key=len):
        if all(n == candidate or n.startswith(candidate + "_") for n in names):
            return candidate
    return None


def _next_layer(model, name):
    """The one Keras layer that consumes layer `name`'s output, or None."""
    nodes = getattr(model.get_layer(name), "_outbound_nodes", [])
    consumers = {node.operation.name for node in nodes}
    return consumers.pop() if len(consumers) == 1 else None


def _details(content):
    """``(ops, {tensor index: details}, graph input tensor indices)`` of the file's operators."""
    from mobilenet_tf.export import tflite
    interpreter = tflite._interpreter(content, delegates=False)   # the file's own operators
    return (interpreter._get_ops_details(), {d["index"]: d for d in interpreter.get_tensor_details()},
            {int(d["index"]) for d in interpreter.get_input_details()})


def map_layers(content, model):
    """``[MappedOp, ...]`` in execution order: every operator of the ``.tflite`` bytes `content`
    that computes a layer of the Keras `model`, under that layer's name. LayerMapError (one
    line) when an operator maps to no layer or a layer to two operators."""
    ops, tensors, graph_inputs = _details(content)
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    producer = {int(out): op for op in ops for out in op["outputs"]}
    mapped, by_layer, holds = [], {}, {}       # holds: tensor index -> Keras output layer
    before_layers = set()                      # tensors computed from the input alone (scaling)

    def source(index):
        """The tensor `index` stands for, through the seams (QUANTIZE / DEQUANTIZE)."""
        while index in producer and producer[index]["op_name"] in _SEAMS:
            index = int(producer[index]["inputs"][0])
        return index

    for op in ops:
        out = int(op["outputs"][0])
        tensor = tensors[out]
        data_inputs = [int(i) for i in op["inputs"] if int(i) in producer or int(i) in graph_inputs]
        if op["op_name"] in _SEAMS:
            continue
        named = _layers_in_scope(tensor["name"], order)
        if named:
            layer = _owner(named)
            if layer is None:
                raise LayerMapError(f"operator {op['index']} ({op['op_name']}) computes layers "
                                    f"{', '.join(sorted(named))} at once: no one layer to report "
                                    "it under")
            output_layer = max(named, key=order.get)
        else:
            sources = [source(i) for i in data_inputs]
            held = [holds[s] for s in sources if s in holds]
            if not held and all(s in graph_inputs or s in before_layers for s in sources):
                before_layers.add(out)             # the float files' input scaling
                continue
            following = _next_layer(model, held[0]) if len(held) == 1 else None
            if following is None:
                raise LayerMapError(f"operator {op['index']} ({op['op_name']}, output "
                                    f"{tensor['name']!r}) maps to no layer of {model.name}")
            layer = output_layer = following
        if layer in by_layer:
            raise LayerMapError(f"layer {layer} is computed by two operators ({by_layer[layer]} "
                                f"and {op['index']})")
        by_layer[layer] = op["index"]
        holds[out] = output_layer
        scale, zero_point = tensor["quantization"]
        mapped.append(MappedOp(layer=layer, output_layer=output_layer, op_index=op["index"],
                               op_name=op["op_name"], tensor_index=out, tensor_name=tensor["name"],
                               dtype=tensor["dtype"].__name__, scale=float(scale),
                               zero_point=int(zero_point)))
    return mapped


def quantized_layers(mapped):
    """The names of the layers in `mapped` that compute (not RESHAPE & co.), in order."""
    return [m.layer for m in mapped if m.computes]


# Keras layers that the converter folds away or turns into data movement only.
_NO_LAYER_TYPES = ("InputLayer", "Dropout", "Reshape", "Flatten", "ZeroPadding2D")


def expected_layers(model):
    """The names :func:`quantized_layers` gives for `model`'s int8 file, from the Keras model
    alone (before any conversion): its layers less those that only move data or vanish
    (input, dropout, reshape, padding) and less the parts named ``<layer>_<part>``
    (``Conv2d_0_BatchNorm``, ``Conv2d_0_Relu6``), which the converter fuses into their layer."""
    names = [layer.name for layer in model.layers if type(layer).__name__ not in _NO_LAYER_TYPES]
    return [n for n in names if not any(n.startswith(o + "_") for o in names if o != n)]


def mult_adds_by_layer(model):
    """``{layer: Mult-Adds}`` as the paper counts them (:func:`mobilenet_tf.model.costs.count`),
    for a MobileNetV1 whose layers match a configuration of the cost calculator (α read from
    ``Conv2d_13_pointwise``, checked against every convolution's weight count); None otherwise."""
    from mobilenet_tf.model import costs
    try:
        last = model.get_layer("Conv2d_13_pointwise")
        depthwise = model.get_layer("Conv2d_1_depthwise")
        counted = costs.count(alpha=last.filters / 1024, image_size=tuple(model.input_shape[1:3]),
                              depth_multiplier=depthwise.depth_multiplier,
                              classes=int(model.output_shape[-1]))
    except (ValueError, AttributeError, TypeError):
        return None
    rows = {row.name: row for row in counted.layers}
    for layer in model.layers:
        if layer.name in rows and rows[layer.name].params:
            kernel = getattr(layer, "kernel", None)
            if kernel is None:
                kernel = getattr(layer, "depthwise_kernel", None)
            if kernel is None or int(np.prod(kernel.shape)) != rows[layer.name].params:
                return None
    return {name: row.mult_adds for name, row in rows.items()}
