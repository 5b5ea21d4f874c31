"""int8 with chosen layers kept in float, by our layer names: calibrate once, quantize many times.

:class:`SelectiveQuantizer` calibrates a Keras model once
(:func:`mobilenet_tf.export.converter.calibrate`, the TFLite converter's calibrate-only mode)
and then makes int8 files with any set of layers left in float
(:func:`~mobilenet_tf.export.converter.quantize_calibrated`: the converter's own quantizer with the
``denylisted_nodes`` that TFLite's QuantizationDebugger uses), each in a fraction of a second.
Layers are named as the Keras model names them (``Conv2d_0``, ``Conv2d_1_depthwise``, ...,
``Logits``, ``Predictions``; :mod:`mobilenet_tf.export.layer_map` turns them into the operators'
tensor names). :func:`resolve_float_layers` turns what a user wrote (names, or regular
expressions matched against whole names) into layer names, with one-line refusals.

No quantizer of our own: every number in the files comes from the TFLite converter. This module
returns bytes and writes no files.
"""

import re

from mobilenet_tf.export import converter, layer_map
from mobilenet_tf.export.options import ExportError

__all__ = ["SelectiveQuantizer", "resolve_float_layers", "is_pattern"]

_PATTERN_CHARACTERS = set(".*+?[](){}|^$\\")


def is_pattern(entry):
    """True when `entry` is a regular expression rather than a plain layer name."""
    return any(c in _PATTERN_CHARACTERS for c in entry)


def _listed(names, limit=8):
    names = list(names)
    return ", ".join(names) if len(names) <= limit else (
        f"{', '.join(names[:limit // 2])}, ..., {', '.join(names[-limit // 2:])}")


def resolve_float_layers(entries, layers):
    """The layers of `layers` (names, in model order) that `entries` name: each entry is a layer
    name, or a regular expression matched against whole names (``Conv2d_1[0-3]_.*``,
    ``.*_depthwise``). ExportError (one line) for a name that is no quantized layer, a pattern that
    matches none or does not compile."""
    chosen = set()
    for entry in entries:
        entry = entry.strip()
        if not entry:
            raise ExportError("float_layers: an empty name; give layer names or patterns, "
                              "separated by commas")
        if not is_pattern(entry):
            if entry not in layers:
                raise ExportError(f"float_layers: {entry!r} is not a quantized layer of this "
                                  f"model; its layers are {_listed(layers)}. Received: "
                                  f"float_layers={entry}")
            chosen.add(entry)
            continue
        try:
            pattern = re.compile(entry)
        except re.error as e:
            raise ExportError(f"float_layers: {entry!r} is not a regular expression ({e}). "
                              f"Received: float_layers={entry}") from None
        matched = [name for name in layers if pattern.fullmatch(name)]
        if not matched:
            raise ExportError(f"float_layers: the pattern {entry!r} matches no layer of this "
                              f"model (it must match whole names such as {layers[0]}). "
                              f"Received: float_layers={entry}")
        chosen.update(matched)
    return tuple(name for name in layers if name in chosen)


class SelectiveQuantizer:
    """A Keras model calibrated once; :meth:`quantize` makes its int8 file with any of its
    :attr:`layers` kept in float.

    Args:
      model: a float Keras image classifier (a quantization-aware one is refused).
      representative_images: the calibration images, as :func:`converter.convert` takes them.
      input_type, output_type, raw_rgb_input, num_calibration_images: as for ``convert``.
    """

    def __init__(self, model, representative_images, *, input_type=None, output_type=None,
                 raw_rgb_input=True, num_calibration_images=None):
        kwargs = {} if num_calibration_images is None else {
            "num_calibration_images": num_calibration_images}
        self.model = model
        self.calibrated = converter.calibrate(model, representative_images,
                                              raw_rgb_input=raw_rgb_input, **kwargs)
        self._io = dict(input_type=input_type, output_type=output_type,
                        raw_rgb_input=raw_rgb_input)
        self.mapped = layer_map.map_layers(self.calibrated, model)
        self.layers = layer_map.quantized_layers(self.mapped)
        self._tensors = {m.layer: m.tensor_name for m in self.mapped}
        self._cache = {}

    def quantize(self, float_layers=()):
        """The int8 ``.tflite`` bytes with the layers named in `float_layers` left in float
        (``()``: full int8). ExportError for a name that is none of :attr:`layers`."""
        key = frozenset(float_layers)
        unknown = sorted(key - set(self.layers))
        if unknown:
            raise ExportError(f"float_layers: {unknown[0]!r} is not a quantized layer of this "
                              f"model; its layers are {_listed(self.layers)}")
        if key not in self._cache:
            self._cache[key] = converter.quantize_calibrated(
                self.calibrated, float_nodes=[self._tensors[name] for name in self.layers
                                              if name in key], **self._io)
        return self._cache[key]

    def only(self, layer):
        """The file with `layer` alone quantized (every other layer in float)."""
        return self.quantize([name for name in self.layers if name != layer])
