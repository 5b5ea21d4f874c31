"""Argument checks shared by the builder and the cost calculator (pure Python).

Every check raises ``ValueError`` with one line that names the argument, says
what is allowed and ends with ``Received: name=value`` (the Keras convention),
before anything is built.
"""

import numbers

from mobilenet_tf.model import architecture

PADDINGS = ("same", "symmetric")
ACTIVATIONS = ("relu6", "relu")
POOLINGS = (None, "avg", "max")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_alpha(alpha):
    if not architecture.is_number(alpha) or alpha <= 0:
        raise ValueError("`alpha` (the width multiplier α) must be a number > 0. "
                         f"Received: alpha={alpha!r}")
    return float(alpha)


def check_depth_multiplier(depth_multiplier):
    if not _is_int(depth_multiplier) or depth_multiplier < 1:
        raise ValueError("`depth_multiplier` (depthwise output channels per input channel) must be "
                         f"an int >= 1. Received: depth_multiplier={depth_multiplier!r}")
    return int(depth_multiplier)


def check_min_depth(min_depth):
    if not _is_int(min_depth) or min_depth < 1:
        raise ValueError(f"`min_depth` must be an int >= 1. Received: min_depth={min_depth!r}")
    return int(min_depth)


def check_output_stride(output_stride):
    if output_stride is not None and (not _is_int(output_stride)
                                      or output_stride not in architecture.VALID_OUTPUT_STRIDES):
        raise ValueError("`output_stride` must be None, 8, 16 or 32. "
                         f"Received: output_stride={output_stride!r}")
    return output_stride


def check_padding(padding):
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {PADDINGS} ('same' is TF 'SAME' padding, as "
                         "Google's checkpoints; 'symmetric' is TF-slim's use_explicit_padding). "
                         f"Received: padding={padding!r}")
    return padding


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {ACTIVATIONS}. "
                         f"Received: activation={activation!r}")
    return activation


def check_pooling(pooling):
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of None, 'avg', 'max'. Received: pooling={pooling!r}")
    return pooling


def check_classes(classes):
    if not _is_int(classes) or classes < 1:
        raise ValueError(f"`classes` must be an int >= 1 (1001 for TF-slim's background class). "
                         f"Received: classes={classes!r}")
    return int(classes)


def check_dropout(dropout):
    if not architecture.is_number(dropout) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a rate in [0, 1). Received: dropout={dropout!r}")
    return float(dropout)


def check_image_size(image_size, name="image_size", allow_none=False,
                     min_size=architecture.MIN_INPUT_SIZE):
    """Returns (h, w). Accepts an int, or a pair of ints (or None with allow_none)."""
    if _is_int(image_size):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        size = tuple(None if s is None else s for s in image_size)
    else:
        raise ValueError(f"`{name}` must be an int >= {min_size} or a pair "
                         f"(height, width) of such ints. Received: {name}={image_size!r}")
    for s in size:
        if s is None and allow_none:
            continue
        if not _is_int(s) or s < min_size:
            raise ValueError(f"`{name}` must be at least {min_size}x{min_size} (height and width "
                             f"each >= {min_size}). Received: {name}={image_size!r}")
    return tuple(None if s is None else int(s) for s in size)


def check_input_shape(input_shape):
    """Validates a channels-last (height, width, channels) shape; returns it as a tuple."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError("`input_shape` must be a (height, width, channels) tuple with height and "
                         f"width None or >= {architecture.MIN_INPUT_SIZE} (channels last). "
                         f"Received: input_shape={input_shape!r}")
    h, w, c = input_shape
    for s in (h, w):
        if s is not None and (not _is_int(s) or s < architecture.MIN_INPUT_SIZE):
            raise ValueError(f"`input_shape` height and width must be None or >= "
                             f"{architecture.MIN_INPUT_SIZE}. Received: input_shape={input_shape!r}")
    if not _is_int(c) or c < 1:
        raise ValueError("`input_shape` channels (last entry) must be an int >= 1. "
                         f"Received: input_shape={input_shape!r}")
    return (h if h is None else int(h), w if w is None else int(w), int(c))


def check_conv_defs(conv_defs):
    if conv_defs is None:
        return architecture.MOBILENET_V1_CONV_DEFS
    if isinstance(conv_defs, str):
        if conv_defs not in architecture.NAMED_CONV_DEFS:
            raise ValueError(f"`conv_defs` must be a table of Conv/DepthSepConv rows or one of "
                             f"{sorted(architecture.NAMED_CONV_DEFS)}. Received: conv_defs={conv_defs!r}")
        return architecture.NAMED_CONV_DEFS[conv_defs]
    return architecture.validate_conv_defs(conv_defs)
