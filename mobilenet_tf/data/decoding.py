"""Decoding a dataset's encoded examples in the ``tf.data`` pipelines, leaving out (and naming
once) each one whose bytes cannot be read or decoded, so that training goes on.

An encoded example's image is bytes (tensorflow-datasets), a record ``{"path"}`` (a folder's
file, read here) or ``{"encoded", "name", "bbox"}`` (a TFRecord example). The files skipped are
kept in the dataset's :class:`~mobilenet_tf.data.readers.base.PipelineState`
(:func:`skipped_during_training`). Nothing here shuffles, batches or preprocesses.
"""

import os
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["decode_image", "decode_skipping", "with_boxes", "skipped_during_training"]

_AUTOTUNE = tf.data.AUTOTUNE
# Examples tried for decoding at once, each in its own one-element dataset (so at most this many
# decodes run in parallel): one per core, at least 8 to cover waits on storage. (A fixed 8 would
# leave the cores of a large GPU machine idle; cycle_length=AUTOTUNE gave 1 here.)
_DECODE_CYCLE = max(8, os.cpu_count() or 1)
_NO_BOXES = ((0, 4), tf.float32)


def decode_image(image):
    """Encoded bytes -> uint8 (h, w, 3): JPEG, PNG, BMP, or a GIF's first frame."""
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _unpack(image):
    """``(encoded bytes, name, boxes)`` of an encoded source's image element (see the module
    docstring)."""
    if isinstance(image, dict):
        if "path" in image:
            return tf.io.read_file(image["path"]), image["path"], tf.zeros(*_NO_BOXES)
        return image["encoded"], image["name"], image["bbox"]
    return image, tf.constant(""), tf.zeros(*_NO_BOXES)


def skipped_during_training(dataset):
    """Names of the files the pipelines skipped because they could not be read or decoded."""
    return list(dataset.pipeline.undecodable)


def decode_skipping(dataset, ds, validation=False):
    """``(image, label)`` of encoded examples -> ``(uint8 image, label, boxes)``, leaving out
    (and reporting once, by name, through ``dataset.pipeline``) each example whose bytes
    cannot be read or decoded; the order is kept. Each example is tried in a one-element
    dataset whose error is dropped (``ignore_errors``), followed by a marker that is taken
    only when the attempt gave nothing. ``validation``: those left out are also counted apart
    (``PipelineState.validated``)."""
    report = (dataset.pipeline.report_undecodable_in_validation if validation
              else dataset.pipeline.report_undecodable)

    def attempt(image, label):
        one = tf.data.Dataset.from_tensors((image, label))

        def decoded(image, label):
            data, name, boxes = _unpack(image)
            return decode_image(data), label, boxes, True, name

        def failed(image, label):
            _, name, boxes = _unpack(image) if not (isinstance(image, dict) and "path" in image) \
                else (None, image["path"], tf.zeros(*_NO_BOXES))
            return tf.zeros([0, 0, 3], tf.uint8), label, boxes, False, name

        return one.map(decoded).ignore_errors().concatenate(one.map(failed)).take(1)

    ds = ds.interleave(attempt, cycle_length=_DECODE_CYCLE, block_length=1,
                       num_parallel_calls=_AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda x, y, b, ok, name: tf.cond(
        ok, lambda: tf.constant(True), lambda: tf.py_function(report, [name], tf.bool)))
    return ds.map(lambda x, y, b, ok, name: (x, y, b))


def with_boxes(ds):
    """``(uint8 image, label)`` -> ``(uint8 image, label, no boxes)``."""
    return ds.map(lambda x, y: (x, y, tf.zeros(*_NO_BOXES)))
