"""Verify a ``.tflite`` export against its Keras model: both run on the same images.

:func:`verify` runs the ``.tflite`` bytes with the LiteRT interpreter
(:class:`mobilenet_tf.export.tflite.TFLiteClassifier`) and the Keras model on the same
images and returns a :class:`Verification`: file size, top-1 agreement, top-1/top-5 of each
when labels exist, max / mean absolute difference of the probabilities, median latency at 1
thread and at all cores. :func:`check_agreement` raises
:class:`~mobilenet_tf.export.options.VerificationError` when the agreement is too low.

This module reads and writes no files and loads no data.
"""

import dataclasses
import os

import numpy as np

from mobilenet_tf.export.converter import to_unit_range
from mobilenet_tf.export.options import ExportError, VerificationError
from mobilenet_tf.model import labels as labels_lib

__all__ = ["VERIFY_BATCH_SIZE", "Verification", "verify", "check_agreement"]

VERIFY_BATCH_SIZE = 32          # Keras runs the verification images in batches of this size


@dataclasses.dataclass
class Verification:
    """How a ``.tflite`` export compares with its Keras model on the same images."""
    quantization: str
    size_bytes: int
    num_images: int
    top1_agreement: float            # fraction of images where both give the same top-1 class
    max_abs_diff: float              # of the probabilities, over all images and classes
    mean_abs_diff: float
    latency_ms_1_thread: float       # median of one invoke()
    latency_ms_all_threads: float
    threads_all: int
    io: str = ""                     # input / output tensors as the app sees them
    keras_top1: float = None         # accuracies when the images have labels of this head
    keras_top5: float = None
    tflite_top1: float = None
    tflite_top5: float = None
    images: str = ""                 # where the images came from

    def _count(self, fraction):
        return f"{round(fraction * self.num_images)}/{self.num_images} ({fraction:.1%})"

    def lines(self):
        """The verification table, one row per line."""
        rows = [("file size", f"{self.size_bytes / 1024:.1f} KiB ({self.size_bytes:,} bytes)"),
                ("tensors", self.io),
                ("top-1 agreement with Keras", self._count(self.top1_agreement))]
        if self.keras_top1 is not None:
            rows += [("top-1 Keras / TFLite",
                      f"{self._count(self.keras_top1)} / {self._count(self.tflite_top1)}")]
        if self.keras_top5 is not None:      # with 5 classes or fewer it would be 100 %
            rows += [("top-5 Keras / TFLite",
                      f"{self._count(self.keras_top5)} / {self._count(self.tflite_top5)}")]
        rows += [("max / mean |prob. difference|", f"{self.max_abs_diff:.3g} / {self.mean_abs_diff:.3g}"),
                 ("median latency, 1 thread", f"{self.latency_ms_1_thread:.2f} ms"),
                 (f"median latency, {self.threads_all} threads", f"{self.latency_ms_all_threads:.2f} ms")]
        width = max(len(k) for k, _ in rows)
        head = (f"Verification of the {self.quantization} export against the Keras model on "
                f"{self.num_images} images{' (' + self.images + ')' if self.images else ''}:")
        return [head] + [f"  {k:<{width}}  {v}" for k, v in rows]


def _topk_hits(probs, labels, k):
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def verify(content, model, images, labels=None, *, quantization="", num_threads=None,
           latency_runs=30, description=""):
    """Runs the ``.tflite`` `content` and the Keras `model` on the same `images`.

    Args:
      images: (N, H, W, 3) uint8 0..255 RGB at the model's size (the TFLite model gets
        them as its input type needs, Keras gets ``x / 127.5 - 1``).
      labels: optional (N,) int labels in the model's output indexing.
      num_threads: "all cores" for the second latency (default ``os.cpu_count()``).
    """
    from mobilenet_tf.export import tflite
    images = np.asarray(images)
    if images.ndim != 4 or not len(images):
        raise ExportError(f"verification needs a non-empty batch of images. Received: "
                          f"shape={images.shape}")
    runner = tflite.TFLiteClassifier(content, num_threads=1)
    lite = runner.predict(images)
    keras_images = to_unit_range(images)
    from mobilenet_tf.model import qat
    if runner.input_kind == "raw_rgb" and qat.is_quantization_aware(model):
        # A quantization-aware model gets the int8 input the file computes with: byte b means
        # (b - zero point) * scale there, while x / 127.5 - 1 falls exactly halfway between two
        # levels, which the fake quantization would round up by half a level.
        scale, zero_point = runner.input_quantization
        keras_images = ((images.astype(np.float32) - zero_point) * np.float32(scale))
    keras_probs = np.concatenate([
        np.asarray(model(keras_images[i:i + VERIFY_BATCH_SIZE], training=False))
        for i in range(0, len(images), VERIFY_BATCH_SIZE)])
    if keras_probs.shape != lite.shape:
        raise ExportError(f"the TFLite model outputs {lite.shape[1:]}, the Keras model "
                          f"{keras_probs.shape[1:]}")
    diff = np.abs(keras_probs.astype(np.float64) - lite.astype(np.float64))
    threads = num_threads or os.cpu_count() or 1
    result = Verification(
        quantization=quantization, size_bytes=len(content), num_images=len(images),
        top1_agreement=float((keras_probs.argmax(1) == lite.argmax(1)).mean()),
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        latency_ms_1_thread=runner.latency_ms(images[0], runs=latency_runs),
        latency_ms_all_threads=tflite.TFLiteClassifier(content, num_threads=threads).latency_ms(
            images[0], runs=latency_runs),
        threads_all=threads, io=runner.describe(), images=description)
    if labels is not None:
        labels = np.asarray(labels)
        result.keras_top1 = _topk_hits(keras_probs, labels, 1)
        result.tflite_top1 = _topk_hits(lite, labels, 1)
        if lite.shape[1] >= labels_lib.MIN_CLASSES_FOR_TOP5:
            result.keras_top5 = _topk_hits(keras_probs, labels, 5)
            result.tflite_top5 = _topk_hits(lite, labels, 5)
    return result


def check_agreement(verification, minimum):
    """VerificationError (one line, carrying `verification`) when the top-1 agreement is below
    `minimum` (a fraction)."""
    if verification.top1_agreement < minimum:
        v = verification
        raise VerificationError(
            f"the {v.quantization} export agrees with the Keras model on the top-1 class of only "
            f"{round(v.top1_agreement * v.num_images)}/{v.num_images} images "
            f"({v.top1_agreement:.1%}), below min_top1_agreement={minimum:g}; verify on images "
            "of the model's own classes (verify_dataset: photos of other subjects give an "
            "ImageNet head no clear top class) or lower min_top1_agreement", verification=v)
