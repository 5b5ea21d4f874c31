"""A run's checkpoints: what one holds (``tf.train.Checkpoint`` of model and optimizer), where
they are kept, and restoring the newest.

A checkpoint holds weights, batch norm statistics, optimizer slots, EMA shadows and the step
count (and the float16 loss scale). TensorFlow writes a checkpoint's files under temporary
names and then atomically replaces the ``checkpoint`` state file, so a run killed at any
moment (SIGKILL included) finds the last complete checkpoint.
"""

import logging
import os
import shutil

import keras

from mobilenet_tf import errors
from mobilenet_tf.training.errors import TrainingError
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TRAINING_RUN)

__all__ = ["CHECKPOINT_SUBDIR", "make_checkpoint", "checkpoint_manager", "latest_checkpoint",
           "restore_latest"]

logger = logging.getLogger(__name__)

CHECKPOINT_SUBDIR = "checkpoints"


def make_checkpoint(model, optimizer, train_model=None):
    """model + optimizer (+ the float16 loss scale, when compile wrapped the optimizer). With
    distillation `model` is the student and `train_model` the distiller: the teacher is not
    saved."""
    extra = {}
    compiled = (train_model or model).optimizer
    if isinstance(compiled, keras.optimizers.LossScaleOptimizer):
        extra["loss_scale"] = compiled
    return tf.train.Checkpoint(model=model, optimizer=optimizer, **extra)


class _Manager(tf.train.CheckpointManager):
    """A checkpoint that cannot be written (a full disk, a file size limit) is a one-line
    ``TrainingError`` naming the step and the last complete checkpoint; TensorFlow's temporary
    ``ckpt-N_temp`` folder is removed (issue 27)."""

    def save(self, checkpoint_number=None, **kwargs):
        try:
            return super().save(checkpoint_number=checkpoint_number, **kwargs)
        except (tf.errors.OpError, OSError) as e:
            reason = (errors.native_error_text(e) if isinstance(e, tf.errors.OpError)
                      else e.strerror or str(e))
            step = checkpoint_number
            for name in os.listdir(self.directory):
                if name.startswith(f"ckpt-{step}_temp"):
                    shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
            last = self.latest_checkpoint
            raise TrainingError(
                f"the checkpoint at step {step} cannot be written to {self.directory} ({reason}): "
                "training stopped; the last complete checkpoint is "
                f"{last if last else 'none (no checkpoint was written yet)'}") from None


def checkpoint_manager(checkpoint, run_dir, keep):
    """The manager saving `checkpoint` into ``run_dir/checkpoints``, keeping the last `keep`."""
    return _Manager(checkpoint, os.path.join(run_dir, CHECKPOINT_SUBDIR), max_to_keep=keep)


def latest_checkpoint(run_dir):
    """The path of the newest complete checkpoint of ``run_dir/checkpoints``, or None."""
    return tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_SUBDIR))


def restore_latest(checkpoint, manager, run_dir=None):
    """Restores the newest checkpoint of ``run_dir/checkpoints`` (default: the manager's
    directory) into `checkpoint`; returns its path, or None when there is none."""
    path = latest_checkpoint(run_dir) if run_dir else manager.latest_checkpoint
    if not path:
        return None
    checkpoint.restore(path).assert_existing_objects_matched()
    logger.info(f"Restored {path}")
    return path
