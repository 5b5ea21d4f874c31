"""Where int8 loses: the per-layer quantization report of a model and its int8 file.

:func:`quantization_report` takes what ``export_tflite.py`` takes (a ``.keras`` file or
``train.py`` run, a :class:`~mobilenet_tf.export.pipeline.FromWeights`, a Keras model) and an
int8 file (made here as ``export_tflite.py --quantization=int8`` makes it, or an existing one),
and measures, for every quantized layer by our layer names, on the verification images:

* the accumulated error of its output in the int8 file against the float Keras model
  (:func:`mobilenet_tf.export.sensitivity.accumulated_errors`);
* the isolated error of the layer quantized alone, its float input fed in
  (:func:`~mobilenet_tf.export.sensitivity.isolated_errors`);
* the top-1 agreement with the Keras model when the layer alone is left in float
  (:func:`~mobilenet_tf.export.sensitivity.float_one_agreements`);
* its share of the Mult-Adds (:mod:`mobilenet_tf.model.costs`) and of the int8 file's latency
  (:mod:`mobilenet_tf.export.layer_latency`).

A :class:`QuantReport` prints as a table (:meth:`QuantReport.lines`), becomes JSON
(:meth:`QuantReport.to_dict`) and a PNG (:mod:`mobilenet_tf.export.report_plot`). The command is
``python -m mobilenet_tf.quant_report``. This module writes no files and prints nothing.
"""

import dataclasses
import logging
import math
import os

from mobilenet_tf.export import (images as images_lib, layer_latency, layer_map, pipeline,
                                 selective, sensitivity)
from mobilenet_tf.export.options import ExportError, ExportOptions, calibration_problem

__all__ = ["LayerRow", "QuantReport", "quantization_report"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LayerRow:
    """One quantized layer of the report."""
    layer: str
    op: str                          # its TFLite operator (CONV_2D, DEPTHWISE_CONV_2D, ...)
    dtype: str                       # its output's type in the int8 file (float32: kept in float)
    step: float                      # its output's quantization step in the int8 file (0: float)
    accumulated: sensitivity.TensorError
    isolated: sensitivity.TensorError
    float_agreement: float           # top-1 agreement with this layer alone in float
    float_mean_diff: float           # mean |probability difference| with it alone in float
    mult_adds: int = None
    mult_adds_share: float = None    # fraction of the model's Mult-Adds
    latency_ms: float = None         # its time in one invoke() of the int8 file, 1 thread
    latency_share: float = None      # fraction of the whole invoke()

    def to_dict(self):
        out = dataclasses.asdict(self)
        out["accumulated"], out["isolated"] = self.accumulated.to_dict(), self.isolated.to_dict()
        return out


@dataclasses.dataclass
class QuantReport:
    """The per-layer report (see the module docstring)."""
    model: str                       # what was measured, in words
    int8_file: str                   # "made here (...)" or the path given
    images: str                      # the verification images
    num_images: int
    calibration: str                 # the images that calibrated this exporter's files
    full_agreement: float            # top-1 agreement of the int8 file with the Keras model
    latency_ms: float                # one invoke() of the int8 file, 1 thread (None: not measured)
    rows: list
    notes: list = dataclasses.field(default_factory=list)

    def count(self, fraction):
        return f"{round(fraction * self.num_images)}/{self.num_images}"

    def lines(self):
        """The report as a table, one row per line."""
        head = [f"Quantization report: {self.model}",
                f"  int8 file: {self.int8_file}",
                f"  images: {self.num_images} ({self.images}); calibration: {self.calibration}",
                f"  top-1 agreement of the int8 file with the Keras model: "
                f"{self.count(self.full_agreement)} ({self.full_agreement:.1%})"
                + (f"; latency {self.latency_ms:.2f} ms (1 thread)" if self.latency_ms else "")]
        header = ("layer", "op", "MAdds", "time", "SNR dB", "RMSE/σ", "RMSE steps",
                  "alone SNR dB", "alone steps", "top-1 with it in float")
        rows = [header]
        for r in self.rows:
            rows.append((r.layer, r.op + ("" if r.dtype == "int8" else f" ({r.dtype})"),
                         _percent(r.mult_adds_share), _percent(r.latency_share),
                         _number(r.accumulated.snr_db, 1), _number(r.accumulated.relative_rmse, 3),
                         _number(r.accumulated.rmse_steps, 2), _number(r.isolated.snr_db, 1),
                         _number(r.isolated.rmse_steps, 2),
                         f"{self.count(r.float_agreement)} "
                         f"({_signed(r.float_agreement - self.full_agreement, self.num_images)})"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        table = ["  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                                  for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        legend = ["  MAdds, time: share of the model's Mult-Adds and of one invoke() of the int8 "
                  "file; SNR, RMSE/σ, RMSE steps: the layer's output in the int8 file against "
                  "the Keras model (accumulated); alone: the layer quantized alone, its float "
                  "input fed in; top-1 with it in float: that layer alone left in float "
                  "(change against the int8 file)."]
        return head + table + legend + [f"  note: {n}" for n in self.notes]

    def to_dict(self):
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "rows"}
        out["layers"] = [r.to_dict() for r in self.rows]
        return _finite(out)


def _finite(value):
    """JSON has no inf / nan: None in their place."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _percent(fraction):
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _number(value, digits):
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _signed(difference, num_images):
    images = round(difference * num_images)
    return f"{images:+d}" if images else "±0"


def _images(options, path, model):
    """(calibration LoadedImages, verification LoadedImages) as ``export_model`` chooses them."""
    from mobilenet_tf.model import saved
    run_spec, run_data_dir = saved.run_dataset(path) if path else (None, None)
    representative = options.representative_dataset or run_spec
    problem = calibration_problem("int8", representative, options.allow_synthetic_calibration)
    if problem:
        raise ExportError(problem)
    data_dir = options.data_dir or run_data_dir
    size = tuple(model.input_shape[1:3])
    calibration = images_lib.load_images(representative, size, options.num_calibration_images,
                                         split="train", data_dir=data_dir)
    checked = images_lib.load_images(options.verify_dataset or representative, size,
                                     options.num_verification_images, split="validation",
                                     data_dir=data_dir)
    return calibration, checked


def _read_int8(path, model):
    """The bytes of the int8 file at `path`, checked against `model` (one-line errors)."""
    from mobilenet_tf.export import tflite
    runner = tflite.TFLiteClassifier(path)
    size = tuple(model.input_shape[1:3])
    if tuple(runner.image_size) != size or runner.num_classes != int(model.output_shape[-1]):
        raise ExportError(f"{path} takes {runner.image_size[0]}x{runner.image_size[1]} images "
                          f"and has {runner.num_classes} outputs; the model "
                          f"{size[0]}x{size[1]} and {int(model.output_shape[-1])}: not its export")
    return runner.content


def quantization_report(source, options=None, *, tflite=None, latency_rounds=10):
    """The :class:`QuantReport` of `source` (what :func:`~mobilenet_tf.export.pipeline.export_model`
    takes) and its int8 file.

    Args:
      options: an :class:`~mobilenet_tf.export.options.ExportOptions`; its calibration
        (``representative_dataset``, ``num_calibration_images``, ``data_dir``), verification
        (``verify_dataset``, ``num_verification_images``) and tensor-type fields are used.
      tflite: the path of an existing int8 file of `source` to report on (default: one made
        here). The columns that re-quantize (a layer alone quantized, a layer alone in float)
        always come from this exporter's calibration.
      latency_rounds: rounds of the per-layer timing (0: no latency column).

    Raises:
      ExportError (one line, before any work) for a bad option, missing calibration images, a
      quantization-aware model, or a file that is not the model's export; LayerMapError when
      its operators do not map onto the model's layers.
    """
    options = ExportOptions() if options is None else options
    options.check()
    model, _, description, path = pipeline.load_source(source)
    from mobilenet_tf.model import qat
    if qat.is_quantization_aware(model):
        raise ExportError(f"{description} is quantization-aware: its int8 comes from learned "
                          "ranges; the report compares an int8 file with the float model it was "
                          "calibrated from")
    given = None if tflite is None else _read_int8(os.fspath(tflite), model)
    calibration, checked = _images(options, path, model)
    logger.info("Calibrating on %d images (%s)", len(calibration.images), calibration.description)
    quantizer = selective.SelectiveQuantizer(
        model, calibration.images, input_type=options.input_type, output_type=options.output_type,
        raw_rgb_input=options.raw_rgb_input, num_calibration_images=options.num_calibration_images)
    content = quantizer.quantize() if given is None else given
    mapped = layer_map.map_layers(content, model)
    quantized = [op for op in mapped if op.computes]
    keras_probs = sensitivity.keras_probabilities(model, checked.images)
    full, _ = sensitivity.agreement(content, checked.images, keras_probs)
    logger.info("Accumulated errors of %d layers on %d images", len(quantized), len(checked.images))
    accumulated = sensitivity.accumulated_errors(content, model, checked.images)
    logger.info("Each layer quantized alone, and each layer alone in float (%d files each)",
                len(quantizer.layers))
    isolated = sensitivity.isolated_errors(quantizer, checked.images)
    in_float = sensitivity.float_one_agreements(quantizer, checked.images, keras_probs)
    times, total = ({}, None)
    if latency_rounds:
        logger.info("Timing the int8 file cut after each layer (%d rounds)", latency_rounds)
        times, total = layer_latency.layer_latency_ms(content, mapped, rounds=latency_rounds)
    mult_adds = layer_map.mult_adds_by_layer(model)
    notes = []
    if mult_adds is None:
        notes.append("Mult-Adds: the model matches no MobileNetV1 configuration of the cost "
                     "calculator")
    if given is not None:
        notes.append("the columns 'alone' and 'top-1 with it in float' re-quantize the model "
                     f"with this exporter's calibration ({calibration.description}), not {tflite}")
    total_mult_adds = sum(mult_adds.values()) if mult_adds else None
    rows = []
    for op in quantized:
        missing = sensitivity.TensorError(math.nan, math.nan, None)
        share = None if not mult_adds or op.layer not in mult_adds else (
            mult_adds[op.layer] / total_mult_adds)
        agreement, diff = in_float.get(op.layer, (math.nan, math.nan))
        rows.append(LayerRow(
            layer=op.layer, op=op.op_name, dtype=op.dtype, step=op.scale,
            accumulated=accumulated.get(op.layer, missing), isolated=isolated.get(op.layer, missing),
            float_agreement=agreement, float_mean_diff=diff,
            mult_adds=None if not mult_adds else mult_adds.get(op.layer),
            mult_adds_share=share, latency_ms=times.get(op.layer),
            latency_share=None if op.layer not in times else times[op.layer] / total))
    return QuantReport(
        model=description,
        int8_file=("made here, full int8 as export_tflite.py --quantization=int8 makes it"
                   if given is None else os.fspath(tflite)),
        images=checked.description, num_images=len(checked.images),
        calibration=f"{len(calibration.images)} images ({calibration.description})",
        full_agreement=full, latency_ms=total, rows=rows, notes=notes)
