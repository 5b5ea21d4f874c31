"""MobileNetV1 architecture as data, and the plan that both the builder and the
cost calculator walk.

This module is pure Python (no TensorFlow import). It owns three things:

* the layer-spec records :class:`Conv` and :class:`DepthSepConv` and the
  architecture tables built from them (``MOBILENET_V1_CONV_DEFS`` is the
  paper's Table 1, row for row, exactly TF-slim's ``_CONV_DEFS``);
* :func:`validate_conv_defs`, which rejects a malformed table with one line;
* :func:`plan`, which expands a table for a given width multiplier α, input
  size and output stride into the concrete list of layers (names, channels,
  strides, dilation rates, feature-map sizes). The Keras builder
  (``mobilenet_tf.model.builder``) builds exactly this list and the cost calculator
  (``mobilenet_tf.model.costs``) counts exactly this list, so the two cannot drift.

Naming: α is ``alpha`` here and in Keras, ``depth_multiplier`` in TF-slim.
Keras' ``depth_multiplier`` (kept here under that name) is something else:
the number of depthwise output channels per input channel (default 1).

This module must not build layers, load weights or attach regularizers.
"""

import collections
import collections.abc
import dataclasses
import math
import numbers

__all__ = [
    "Conv", "DepthSepConv", "LayerPlan",
    "MOBILENET_V1_CONV_DEFS", "CONV_MOBILENET_CONV_DEFS", "SHALLOW_MOBILENET_CONV_DEFS",
    "NAMED_CONV_DEFS", "validate_conv_defs", "plan", "scaled_depth",
    "endpoint_names", "MIN_INPUT_SIZE", "VALID_OUTPUT_STRIDES",
]


@dataclasses.dataclass(frozen=True)
class Conv:
    """A full convolution: `kernel` (kh, kw), `stride`, `depth` output channels at α = 1."""
    kernel: tuple
    stride: int
    depth: int


@dataclasses.dataclass(frozen=True)
class DepthSepConv:
    """A depthwise separable convolution: a kernel-sized depthwise convolution with `stride`,
    then a 1x1 pointwise convolution to `depth` channels (at α = 1)."""
    kernel: tuple
    stride: int
    depth: int


# The paper's Table 1 (TF-slim `_CONV_DEFS`): one 3x3/s2 convolution of 32 and
# 13 depthwise separable layers. Row i builds end point(s) `Conv2d_i...`.
MOBILENET_V1_CONV_DEFS = (
    Conv(kernel=(3, 3), stride=2, depth=32),            # Conv2d_0
    DepthSepConv(kernel=(3, 3), stride=1, depth=64),    # Conv2d_1
    DepthSepConv(kernel=(3, 3), stride=2, depth=128),   # Conv2d_2
    DepthSepConv(kernel=(3, 3), stride=1, depth=128),   # Conv2d_3
    DepthSepConv(kernel=(3, 3), stride=2, depth=256),   # Conv2d_4
    DepthSepConv(kernel=(3, 3), stride=1, depth=256),   # Conv2d_5
    DepthSepConv(kernel=(3, 3), stride=2, depth=512),   # Conv2d_6
    DepthSepConv(kernel=(3, 3), stride=1, depth=512),   # Conv2d_7  \
    DepthSepConv(kernel=(3, 3), stride=1, depth=512),   # Conv2d_8   |
    DepthSepConv(kernel=(3, 3), stride=1, depth=512),   # Conv2d_9   | "5x" 14x14x512
    DepthSepConv(kernel=(3, 3), stride=1, depth=512),   # Conv2d_10  |
    DepthSepConv(kernel=(3, 3), stride=1, depth=512),   # Conv2d_11 /
    DepthSepConv(kernel=(3, 3), stride=2, depth=1024),  # Conv2d_12
    DepthSepConv(kernel=(3, 3), stride=1, depth=1024),  # Conv2d_13
)

# Table 4's "Conv MobileNet": every depthwise separable layer replaced by a full
# 3x3 convolution with the same stride and output depth.
CONV_MOBILENET_CONV_DEFS = tuple(
    Conv(kernel=d.kernel, stride=d.stride, depth=d.depth) for d in MOBILENET_V1_CONV_DEFS)

# Table 5's "Shallow MobileNet": the five 14x14x512 separable layers removed.
SHALLOW_MOBILENET_CONV_DEFS = MOBILENET_V1_CONV_DEFS[:7] + MOBILENET_V1_CONV_DEFS[12:]

NAMED_CONV_DEFS = {
    "mobilenet_v1": MOBILENET_V1_CONV_DEFS,
    "conv_mobilenet": CONV_MOBILENET_CONV_DEFS,
    "shallow_mobilenet": SHALLOW_MOBILENET_CONV_DEFS,
}

MIN_INPUT_SIZE = 32
VALID_OUTPUT_STRIDES = (8, 16, 32)

# One concrete layer of the expanded plan.
#   name:        TF-slim end point name (Conv2d_0, Conv2d_1_depthwise, ...)
#   kind:        "conv" (full KxK), "depthwise" or "pointwise"
#   kernel:      (kh, kw)
#   stride:      stride actually used (1 once `output_stride` is reached)
#   rate:        dilation rate (> 1 only after `output_stride` is reached)
#   in_channels, out_channels
#   input_size:  (h, w) of the layer's input, None where unknown
#   output_size: (h, w) of the layer's output, None where unknown
LayerPlan = collections.namedtuple("LayerPlan", [
    "name", "kind", "kernel", "stride", "rate", "in_channels", "out_channels",
    "input_size", "output_size"])


def scaled_depth(depth, alpha, min_depth):
    """Channels of a layer at width multiplier α: TF-slim's ``depth(d) = max(int(d * α), min_depth)``
    (truncation, not MobileNetV2's round-to-a-multiple-of-8)."""
    return max(int(depth * alpha), min_depth)


def _describe(value):
    return repr(value)


def validate_conv_defs(conv_defs):
    """Checks an architecture table; raises ValueError naming the bad row.

    A table is a non-empty sequence of ``Conv`` / ``DepthSepConv`` records (or
    plain ``(type_name, kernel, stride, depth)`` tuples with type_name "Conv"
    or "DepthSepConv"). Returns it as a tuple of records.
    """
    if isinstance(conv_defs, (str, bytes)) or not isinstance(conv_defs, collections.abc.Sequence):
        raise ValueError(
            "`conv_defs` must be a non-empty sequence of Conv/DepthSepConv rows. "
            f"Received: conv_defs={_describe(conv_defs)}")
    if len(conv_defs) == 0:
        raise ValueError("`conv_defs` must be a non-empty sequence of Conv/DepthSepConv rows. "
                         "Received: conv_defs=()")
    rows = []
    for i, row in enumerate(conv_defs):
        if not isinstance(row, (Conv, DepthSepConv)):
            if (isinstance(row, (tuple, list)) and len(row) == 4
                    and row[0] in ("Conv", "DepthSepConv")):
                cls = Conv if row[0] == "Conv" else DepthSepConv
                row = cls(*row[1:])
            else:
                raise ValueError(
                    f"`conv_defs` row {i} must be a Conv(kernel, stride, depth) or "
                    f"DepthSepConv(kernel, stride, depth) record. Received: conv_defs[{i}]={row!r}")
        kernel = row.kernel
        if isinstance(kernel, numbers.Integral) and not isinstance(kernel, bool):
            kernel = (int(kernel), int(kernel))
        if (not isinstance(kernel, (tuple, list)) or len(kernel) != 2
                or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1
                           for k in kernel)):
            raise ValueError(
                f"`conv_defs` row {i} kernel must be a positive int or a pair of positive ints. "
                f"Received: conv_defs[{i}].kernel={row.kernel!r}")
        if not isinstance(row.stride, numbers.Integral) or isinstance(row.stride, bool) or row.stride < 1:
            raise ValueError(f"`conv_defs` row {i} stride must be a positive int. "
                             f"Received: conv_defs[{i}].stride={row.stride!r}")
        if not isinstance(row.depth, numbers.Integral) or isinstance(row.depth, bool) or row.depth < 1:
            raise ValueError(f"`conv_defs` row {i} depth must be a positive int. "
                             f"Received: conv_defs[{i}].depth={row.depth!r}")
        rows.append(type(row)(kernel=tuple(int(k) for k in kernel), stride=int(row.stride),
                              depth=int(row.depth)))
    return tuple(rows)


def endpoint_names(conv_defs=MOBILENET_V1_CONV_DEFS):
    """TF-slim end point names of the base network, in order (no head)."""
    names = []
    for i, row in enumerate(validate_conv_defs(conv_defs)):
        if isinstance(row, Conv):
            names.append(f"Conv2d_{i}")
        else:
            names += [f"Conv2d_{i}_depthwise", f"Conv2d_{i}_pointwise"]
    return names


def _out_size(size, stride):
    # TF 'SAME' and slim's explicit symmetric padding (pad_total = k_eff - 1)
    # both give ceil(size / stride).
    return None if size is None else -(-size // stride)


def plan(conv_defs=MOBILENET_V1_CONV_DEFS, alpha=1.0, depth_multiplier=1, min_depth=8,
         output_stride=None, input_size=(224, 224), in_channels=3):
    """Expands an architecture table into concrete layers (see ``LayerPlan``).

    Follows TF-slim's ``mobilenet_v1_base``: once the product of strides
    reaches ``output_stride``, later layers use stride 1 and their depthwise
    (or full) convolutions are dilated by the stride they would have had.
    TF-slim applies this to depthwise layers only and keeps a full ``Conv``
    row's own stride; here full convolutions are treated the same way, which
    only matters for custom tables (e.g. Conv MobileNet with ``output_stride``).
    Arguments are assumed validated (``mobilenet_tf.model.builder`` and
    ``mobilenet_tf.model.costs`` validate them).
    """
    conv_defs = validate_conv_defs(conv_defs)
    h, w = input_size
    channels = in_channels
    current_stride = 1
    rate = 1
    layers = []
    for i, row in enumerate(conv_defs):
        if output_stride is not None and current_stride == output_stride:
            layer_stride, layer_rate = 1, rate
            rate *= row.stride
        else:
            layer_stride, layer_rate = row.stride, 1
            current_stride *= row.stride
        out_h, out_w = _out_size(h, layer_stride), _out_size(w, layer_stride)
        depth = scaled_depth(row.depth, alpha, min_depth)
        if isinstance(row, Conv):
            layers.append(LayerPlan(f"Conv2d_{i}", "conv", row.kernel, layer_stride, layer_rate,
                                    channels, depth, (h, w), (out_h, out_w)))
        else:
            dw_channels = channels * depth_multiplier
            layers.append(LayerPlan(f"Conv2d_{i}_depthwise", "depthwise", row.kernel, layer_stride,
                                    layer_rate, channels, dw_channels, (h, w), (out_h, out_w)))
            layers.append(LayerPlan(f"Conv2d_{i}_pointwise", "pointwise", (1, 1), 1, 1,
                                    dw_channels, depth, (out_h, out_w), (out_h, out_w)))
        channels = depth
        h, w = out_h, out_w
    return layers


def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
