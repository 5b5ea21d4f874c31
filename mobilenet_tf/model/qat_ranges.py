"""The learned activation ranges of a quantization-aware model: a calibrated start, and how much
of a set of images each range clips.

:func:`calibrate_ranges` sets every learned range (``AvgPool_1a_quant``, ``Logits_quant`` in
MobileNetV1) from a pass over calibration images, by the rule the TFLite converter uses for the
ranges of post-training int8: the smallest and the largest value seen over all calibration
batches (``tflite::optimize::calibration::MinMax::Update``, no averaging), widened to include
0. Each range is calibrated on what the int8 file computes up to it: the weights, the fixed
ranges and the learned ranges before it quantized (one pass per learned range).
Training then moves the ranges as before (a moving average of the batches' min and max); without
a calibration the first training batch sets them (``qat_layers.ActivationQuantizer``).

:func:`clipped_fractions` is the share of values outside each learned range (the values the
int8 file clamps) on given images, for TensorBoard.

This module reads no files and trains nothing; the images come from the caller.
"""

import keras
import numpy as np

from mobilenet_tf.model.qat import quantizers
from mobilenet_tf.model.qat_layers import ActivationQuantizer, QATError

__all__ = ["learned_quantizers", "calibrate_ranges", "clipped_fractions"]


def learned_quantizers(model):
    """The :class:`ActivationQuantizer` layers of `model` whose range is learned, in order."""
    return [layer for layer in quantizers(model)
            if isinstance(layer, ActivationQuantizer) and layer.fixed_range is None]


def _values(model, layer, batches):
    """For each batch, the values `layer` quantizes (its activation of its input), the model
    in inference."""
    probe = keras.Model(model.input, layer.input)
    for batch in batches:
        yield keras.ops.convert_to_numpy(layer.activate(probe(batch, training=False)))


def calibrate_ranges(model, batches):
    """Sets every learned range of the quantization-aware `model` to the min and max (widened
    to include 0) of its values over `batches` (float [-1, 1] image batches, e.g. as many
    images as post-training int8 calibrates on). Returns ``({name: (min, max)}, images)``. The
    ranges then count as seen: training continues their moving average from them. A range whose
    values are all 0 is left unset (None in the result: a zero-width range has no int8 scale).

    One pass per learned range, in order, each with the ranges before it set: a range covers
    the values the int8 file computes there on these images (the converter calibrates the
    float model in one pass; here the weights and earlier ranges are quantized as in the file).

    Raises:
      QATError: `model` has no learned ranges, or `batches` holds no image.
    """
    layers = learned_quantizers(model)
    if not layers:
        raise QATError(f"model {model.name} has no learned activation ranges to calibrate")
    batches = list(batches)
    count = sum(len(batch) for batch in batches)
    if not count:
        raise QATError("calibrate_ranges: no calibration images")
    out = {}
    for layer in layers:
        low, high = np.inf, -np.inf
        for v in _values(model, layer, batches):
            finite = v[np.isfinite(v)]           # the converter's calibrator skips NaN
            if finite.size:
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        low, high = min(low, 0.0), max(high, 0.0)
        if not high > low:
            # Every value 0 (or none finite): no range to set (a zero-width range has no
            # int8 scale); the first training batch sets it, as without calibration.
            out[layer.name] = None
            continue
        layer.range_min.assign(low)
        layer.range_max.assign(high)
        layer.range_seen.assign(1.0)
        out[layer.name] = (low, high)
    return out, count


def clipped_fractions(model, batches):
    """``{name: fraction}``: the share of the values each learned range of `model` leaves
    outside ``[min, max]`` (clamped by the int8 file) on `batches`, the model in inference."""
    batches = list(batches)
    out = {}
    for layer in learned_quantizers(model):
        low, high = (float(keras.ops.convert_to_numpy(r)) for r in layer.range())
        outside = total = 0
        for v in _values(model, layer, batches):
            outside += int(((v < low) | (v > high)).sum())
            total += v.size
        out[layer.name] = outside / total if total else 0.0
    return out
