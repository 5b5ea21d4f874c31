"""Which layers to keep in float: the fewest, by measured sensitivity, until a top-1 target.

:func:`select_float_layers` is the automatic mode of ``export_tflite.py --float_layers_target``:

1. the file with only the given layers (`base`, possibly none) in float is measured; if its top-1
   agreement with the Keras model reaches the target, nothing more is kept in float;
2. every other layer is measured alone in float on top of `base`
   (:func:`mobilenet_tf.export.sensitivity.float_one_agreements`) and ranked: higher agreement
   first, then the smaller mean |probability difference|, then the fewer Mult-Adds (cheaper to
   keep in float);
3. layers are added in that order, one at a time, each step measured, until the agreement reaches
   the target: the first step is the best single layer, so a target that one layer can reach is
   reached with exactly one; beyond one layer the order is greedy (not every combination is
   tried: 30 layers have 435 pairs).

A target not reached within `max_float_layers` (default: every layer) is a
:class:`SelectionError` carrying the best file found (a work failure, exit status 1: the export
writes nothing). Every file comes from :class:`~mobilenet_tf.export.selective.SelectiveQuantizer`;
no quantization here. Writes no files.
"""

import dataclasses
import logging

from mobilenet_tf.errors import WorkError
from mobilenet_tf.export import sensitivity
from mobilenet_tf.export.options import ExportError

__all__ = ["Selection", "SelectionError", "select_float_layers", "FileFigures", "compare_files",
           "comparison_lines"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Selection:
    """What the automatic mode kept in float and what it measured on the way."""
    float_layers: tuple            # the layers kept in float, in model order
    agreement: float               # top-1 agreement of that file with the Keras model
    target: float
    num_images: int
    steps: list = dataclasses.field(default_factory=list)   # [(layers, agreement, added)] tried
    sensitivity: dict = dataclasses.field(default_factory=dict)  # {layer: (agreement, mean diff)}
    ranking: list = dataclasses.field(default_factory=list)      # layers, most helpful first

    @property
    def reached(self):
        return self.agreement >= self.target

    def count(self, fraction=None):
        fraction = self.agreement if fraction is None else fraction
        return f"{round(fraction * self.num_images)}/{self.num_images} ({fraction:.1%})"

    def lines(self):
        """What was tried and kept, one line each."""
        base, first, _ = self.steps[0]
        lines = [f"Layers kept in float for float_layers_target={self.target:g} "
                 f"({self.num_images} images):",
                 f"  {', '.join(base) or 'none'} in float: {self.count(first)}"]
        if self.ranking:
            best = ", ".join(f"{name} {self.count(self.sensitivity[name][0])}"
                             for name in self.ranking[:5])
            lines.append(f"  one more layer in float, best first: {best}, ...")
        for layers, value, added in self.steps[1:]:
            lines.append(f"  + {added}: {len(layers)} in float, "
                         f"{self.count(value)}")
        verdict = "reached" if self.reached else "NOT reached; the best found"
        lines.append(f"  {verdict}: {len(self.float_layers)} layer(s) in float "
                     f"({', '.join(self.float_layers) or 'none'}), {self.count()}")
        return lines


class SelectionError(WorkError, ExportError):
    """The target agreement was not reached; ``selection`` holds the best file found."""

    def __init__(self, message, selection):
        super().__init__(message)
        self.selection = selection


def _ordered(quantizer, layers):
    return tuple(name for name in quantizer.layers if name in set(layers))


def select_float_layers(quantizer, images, keras_probs, target, *, base=(), max_float_layers=None,
                        mult_adds=None):
    """The fewest layers (beyond `base`) to keep in float so that the file agrees with the Keras
    probabilities `keras_probs` on at least `target` (a fraction) of `images`.

    Args:
      quantizer: a :class:`~mobilenet_tf.export.selective.SelectiveQuantizer`.
      base: layers kept in float in any case (``float_layers``).
      max_float_layers: the most layers kept in float in all, `base` included (None: all).
      mult_adds: ``{layer: Mult-Adds}``, the last tie-break (None: none).

    Returns a :class:`Selection`; raises :class:`SelectionError` when the target is not reached.
    """
    base = _ordered(quantizer, base)
    limit = len(quantizer.layers) if max_float_layers is None else max_float_layers
    selection = Selection(float_layers=base, agreement=0.0, target=target,
                          num_images=len(images))
    first, _ = sensitivity.agreement(quantizer.quantize(base), images, keras_probs)
    selection.steps.append((base, first, None))
    selection.agreement = first
    logger.info("Agreement with %s in float: %s", ", ".join(base) or "no layer",
                selection.count(first))
    if first >= target:
        return selection
    logger.info("Measuring each of %d layers alone in float", len(quantizer.layers) - len(base))
    selection.sensitivity = sensitivity.float_one_agreements(quantizer, images, keras_probs, base)
    costs = mult_adds or {}
    selection.ranking = sorted(selection.sensitivity, key=lambda name: (
        -selection.sensitivity[name][0], selection.sensitivity[name][1], costs.get(name, 0)))
    kept = list(base)
    best = (first, base)
    for layer in selection.ranking:
        if len(kept) >= limit:
            break
        kept.append(layer)
        layers = _ordered(quantizer, kept)
        value = (selection.sensitivity[layer][0] if len(kept) == len(base) + 1 else
                 sensitivity.agreement(quantizer.quantize(layers), images, keras_probs)[0])
        selection.steps.append((layers, value, layer))
        logger.debug("Agreement with %d layer(s) in float (+%s): %s", len(layers), layer,
                     selection.count(value))
        if value > best[0]:
            best = (value, layers)
        if value >= target:
            selection.float_layers, selection.agreement = layers, value
            return selection
    selection.agreement, selection.float_layers = best
    raise SelectionError(
        f"float_layers_target={target:g} is not reached with at most {limit} layer(s) in float: "
        f"the best found keeps {len(best[1])} ({', '.join(best[1]) or 'none'}) and agrees on "
        f"{selection.count()}", selection)


@dataclasses.dataclass(frozen=True)
class FileFigures:
    """One ``.tflite`` file measured beside the others on the same images."""
    name: str                      # "float32", "full int8", "selective int8"
    float_layers: int              # layers in float (every one for float32)
    agreement: float               # top-1 agreement with the Keras model
    size_bytes: int
    latency_ms: float              # median of one invoke(), 1 thread (interleaved_latency)


def compare_files(files, images, keras_probs, *, latency_runs=30, rounds=5):
    """``[FileFigures, ...]`` for ``files``, ``{name: (.tflite bytes, layers in float)}``, on the
    same `images`; their latencies measured side by side at one thread
    (:func:`mobilenet_tf.export.latency.interleaved_latency`: `rounds` rounds of
    ``latency_runs / rounds`` invokes each, the files taking turns)."""
    from mobilenet_tf.export import latency, tflite
    runners = {name: tflite.TFLiteClassifier(content, num_threads=1)
               for name, (content, _) in files.items()}
    times = latency.interleaved_latency(runners, rounds=rounds,
                                        runs=max(1, latency_runs // rounds),
                                        image_for=lambda runner: images[0])
    figures = []
    for name, (content, float_layers) in files.items():
        value, _ = sensitivity.agreement(content, images, keras_probs)
        figures.append(FileFigures(name, float_layers, value, len(content), times[name]))
    return figures


def comparison_lines(figures, num_images):
    """The comparison as a table, one row per line."""
    rows = [("file", "layers in float", "top-1 agreement", "size (no metadata)",
             "latency, 1 thread")]
    for f in figures:
        rows.append((f.name, str(f.float_layers),
                     f"{round(f.agreement * num_images)}/{num_images} ({f.agreement:.1%})",
                     f"{f.size_bytes / 1024:.1f} KiB", f"{f.latency_ms:.2f} ms"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [f"Against full int8 and float32 on the same {num_images} images:"] + [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
