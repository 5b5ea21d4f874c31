"""How much each layer's int8 costs, measured against the float Keras model on real images.

Four measurements, each by our layer names (:mod:`mobilenet_tf.export.layer_map`):

* :func:`accumulated_errors`: the error of every layer's output in an int8 file (all layers
  before it quantized too) against the same tensor of the Keras model;
* :func:`isolated_errors`: the error of a layer's output when it alone is quantized (its float
  input fed in: every other layer in float, :meth:`SelectiveQuantizer.only`);
* :func:`float_one_agreements`: the top-1 agreement with the Keras model when a layer alone is
  left in float (everything else int8);
* :func:`agreement`: the top-1 agreement of a whole file.

An error is a :class:`TensorError`: signal-to-noise ratio in dB, RMSE relative to the float
tensor's standard deviation, and RMSE in units of the tensor's int8 quantization step. Tensors are
read with every intermediate tensor kept (LiteRT's reference kernels; top-1 agreement runs the
files as apps do, with XNNPACK). Reads and writes no files.
"""

import dataclasses
import math

import numpy as np

from mobilenet_tf.export import layer_map
from mobilenet_tf.export.converter import to_unit_range

__all__ = ["TensorError", "keras_probabilities", "agreement", "accumulated_errors",
           "isolated_errors", "float_one_agreements", "BATCH_SIZE"]

BATCH_SIZE = 16      # images the Keras model runs at once (its intermediate tensors are kept)


@dataclasses.dataclass(frozen=True)
class TensorError:
    """A tensor's error against the float model's tensor over a set of images."""
    snr_db: float            # 10 log10(Σ float² / Σ error²); inf when equal
    relative_rmse: float     # RMSE / standard deviation of the float tensor
    rmse_steps: float        # RMSE / the int8 tensor's quantization step (None: not quantized)

    def to_dict(self):
        return {k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
                for k, v in dataclasses.asdict(self).items()}


class _ErrorSum:
    """Running sums over images, so that no image's tensors are kept."""

    def __init__(self, step):
        self.step = step
        self.count = 0
        self.total = self.squares = self.errors = 0.0

    def add(self, reference, value):
        reference = np.asarray(reference, np.float64).ravel()
        error = np.asarray(value, np.float64).ravel() - reference
        self.count += reference.size
        self.total += float(reference.sum())
        self.squares += float(np.dot(reference, reference))
        self.errors += float(np.dot(error, error))

    def result(self):
        mse = self.errors / max(self.count, 1)
        variance = max(self.squares / max(self.count, 1) - (self.total / max(self.count, 1)) ** 2,
                       0.0)
        rmse = math.sqrt(mse)
        snr = math.inf if self.errors == 0 else (
            10 * math.log10(self.squares / self.errors) if self.squares > 0 else -math.inf)
        return TensorError(snr_db=snr,
                           relative_rmse=rmse / math.sqrt(variance) if variance > 0 else math.inf,
                           rmse_steps=rmse / self.step if self.step else None)


def _keras_batches(model, images, output_layers):
    """``(first index, {output layer: batch}, probabilities)`` per batch of the Keras model."""
    import keras
    names = list(dict.fromkeys(output_layers))
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output])
    for start in range(0, len(images), BATCH_SIZE):
        outputs = probe(to_unit_range(images[start:start + BATCH_SIZE]), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        yield start, {n: np.asarray(o) for n, o in zip(names, outputs[:-1])}, np.asarray(outputs[-1])


def keras_probabilities(model, images):
    """The Keras model's probabilities for uint8 `images` (N, H, W, 3)."""
    return np.concatenate([probs for _, _, probs in _keras_batches(model, images, [])])


def agreement(content, images, keras_probs):
    """``(top-1 agreement, mean |probability difference|)`` of the ``.tflite`` bytes `content`
    with the Keras probabilities `keras_probs` on `images`."""
    from mobilenet_tf.export import tflite
    lite = tflite.TFLiteClassifier(content, num_threads=1).predict(images)
    return (float((lite.argmax(1) == keras_probs.argmax(1)).mean()),
            float(np.abs(lite.astype(np.float64) - keras_probs).mean()))


def _tensor_errors(jobs, model, images):
    """``{key: TensorError}`` for jobs ``(key, .tflite bytes, MappedOp)``: the op's output tensor
    in that file against the Keras tensor it holds, over `images`."""
    from mobilenet_tf.export import tflite
    runners = {}
    sums = {}
    for key, content, op in jobs:
        runners.setdefault(id(content), tflite.TFLiteClassifier(content, keep_tensors=True))
        sums[key] = _ErrorSum(op.scale)
    wanted = {}
    for key, content, op in jobs:
        wanted.setdefault(id(content), set()).add(op.tensor_index)
    for start, reference, _ in _keras_batches(model, images, [op.output_layer for *_, op in jobs]):
        for i in range(len(next(iter(reference.values())))):
            image = images[start + i]
            values = {cid: runners[cid].run_with_tensors(image, wanted[cid])[1] for cid in runners}
            for key, content, op in jobs:
                sums[key].add(reference[op.output_layer][i], values[id(content)][op.tensor_index])
    return {key: total.result() for key, total in sums.items()}


def accumulated_errors(content, model, images):
    """``{layer: TensorError}``: every quantized layer's output in the ``.tflite`` bytes
    `content` against the Keras `model`'s on `images` (uint8 (N, H, W, 3))."""
    mapped = [op for op in layer_map.map_layers(content, model) if op.computes]
    return _tensor_errors([(op.layer, content, op) for op in mapped], model, images)


def isolated_errors(quantizer, images, layers=None):
    """``{layer: TensorError}``: each layer's output when it alone is quantized (a
    :class:`~mobilenet_tf.export.selective.SelectiveQuantizer`'s file with every other layer in
    float) against the Keras model's, on `images`."""
    jobs = []
    for layer in layers or quantizer.layers:
        content = quantizer.only(layer)
        op = {m.layer: m for m in layer_map.map_layers(content, quantizer.model)}[layer]
        jobs.append((layer, content, op))
    return _tensor_errors(jobs, quantizer.model, images)


def float_one_agreements(quantizer, images, keras_probs, base=(), layers=None):
    """``{layer: (top-1 agreement, mean |probability difference|)}`` of the int8 file with that
    layer (and the layers in `base`) left in float, for every layer not in `base`."""
    return {layer: agreement(quantizer.quantize(tuple(base) + (layer,)), images, keras_probs)
            for layer in (layers or quantizer.layers) if layer not in base}
