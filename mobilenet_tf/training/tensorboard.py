"""TensorBoard logs of a run: scalars at the optimizer's step, written without the
``tensorboard`` package (needed only to view them)."""

import os

import keras
import numpy as np

from mobilenet_tf.model import qat
from mobilenet_tf.model import qat_ranges
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TRAINING_RUN)

__all__ = ["TENSORBOARD_SUBDIR", "write_scalar", "TensorBoardLogger"]

TENSORBOARD_SUBDIR = "tensorboard"
# With distillation also Keras' Distiller's student_loss (labels) and distillation_loss (teacher).
_TRAIN_SCALARS = ("loss", "top1", "top5", "images_per_second", "student_loss",
                  "distillation_loss")


def _scalar_metadata():
    metadata = tf.compat.v1.SummaryMetadata()      # tensorflow.core.framework.summary_pb2's
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


def write_scalar(name, value, step):
    """A TensorBoard scalar through the current default writer.

    ``tf.summary.write`` with the scalars plugin's metadata is what
    ``tf.summary.scalar`` writes, without needing the ``tensorboard`` package
    (only needed to view the logs).
    """
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_scalar_metadata())


class TensorBoardLogger(keras.callbacks.Callback):
    """TensorBoard scalars at the optimizer's step (so a resumed run continues the curves).

    ``train/``: every ``log_every_steps`` steps loss, top1, top5, learning_rate and
    images_per_second (``step/...``), and each epoch's means (``epoch/...``);
    ``validation/``: each epoch's validation loss, top1, top5. With ``qat_model`` also the
    learned activation ranges of a quantization-aware model (``quantization/<name>/min``,
    ``.../max``) and, with ``qat_images`` (batches of the calibration images), the fraction of
    those images' values each range clips now (``quantization/<name>/clipped``; 0 at the
    calibrated start).
    """

    def __init__(self, log_dir, log_every_steps, optimizer, qat_model=None, qat_images=None):
        super().__init__()
        self.qat_model = qat_model
        self.qat_images = qat_images
        self.train_writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self.val_writer = tf.summary.create_file_writer(os.path.join(log_dir, "validation"))
        self.every = log_every_steps
        self.optimizer = optimizer

    def _lr(self):
        return float(np.asarray(self.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        if not self.every or step % self.every or not logs:
            return
        with self.train_writer.as_default():
            for key in _TRAIN_SCALARS:
                if key in logs:
                    write_scalar(f"step/{key}", logs[key], step)
            write_scalar("step/learning_rate", self._lr(), step)
            self._ranges(step)

    def _ranges(self, step):
        if self.qat_model is None:
            return
        for name, (low, high) in qat.activation_ranges(self.qat_model).items():
            write_scalar(f"quantization/{name}/min", low, step)
            write_scalar(f"quantization/{name}/max", high, step)
        if self.qat_images:
            for name, fraction in qat_ranges.clipped_fractions(self.qat_model,
                                                               self.qat_images).items():
                write_scalar(f"quantization/{name}/clipped", fraction, step)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        logs = logs or {}
        with self.train_writer.as_default():
            for key in _TRAIN_SCALARS:
                if key in logs:
                    write_scalar(f"epoch/{key}", logs[key], step)
            write_scalar("epoch/learning_rate", self._lr(), step)
            self._ranges(step)
        with self.val_writer.as_default():
            for key in ("loss", "top1", "top5", "student_loss", "distillation_loss"):
                if f"val_{key}" in logs:
                    write_scalar(f"epoch/{key}", logs[f"val_{key}"], step)
        self.train_writer.flush()
        self.val_writer.flush()

    def close(self):
        self.train_writer.close()
        self.val_writer.close()
