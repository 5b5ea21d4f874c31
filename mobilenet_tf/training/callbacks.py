"""What runs after each training step: the non-finite loss guard, checkpoints, stop requests
(signals) and throughput (:class:`StepCallback`), and the progress bar over all epochs
(:class:`Progbar`). TensorBoard logging is ``tensorboard``'s."""

import math
import time

import keras

from mobilenet_tf import errors
from mobilenet_tf.training.errors import TrainingError

__all__ = ["StepCallback", "Progbar"]


class StepCallback(keras.callbacks.Callback):
    """Non-finite loss guard, checkpoints, stop requests, and images/s (progress bar, epoch
    logs, summary).

    The loss is checked before anything is saved, so a non-finite step never
    reaches a checkpoint. Throughput counts the time of training steps (input
    included, validation not), leaving out the run's first step, which traces
    and compiles the step function (later ``fit`` calls reuse it). A stop
    request is served after the step in progress: a checkpoint at that step,
    then ``errors.Interrupted``. The checkpoint of an epoch's last step is saved
    before its validation starts, while the model holds the raw weights (Keras
    swaps the moving averages in for validation).
    """

    def __init__(self, manager, checkpoint_every_steps, batch_size, optimizer, *, stop=None,
                 total_steps=None):
        super().__init__()
        self.manager = manager
        self.every = checkpoint_every_steps
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.stop = stop
        self.total_steps = total_steps
        self.last_saved = None
        self.seconds = 0.0
        self.steps = 0
        self._first = True

    def _step(self):
        return int(self.optimizer.iterations.numpy())

    def save(self, step):
        if step != self.last_saved:
            self.manager.save(checkpoint_number=step)
            self.last_saved = step

    def _serve_stop_request(self, save=True):
        if self.stop is None or self.stop.signum is None:
            return
        step = self._step()
        if save:
            self.save(step)
        raise errors.Interrupted(self.stop.signum, step, self.total_steps,
                                 self.manager.latest_checkpoint)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_seconds, self._epoch_steps = 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        dt = time.perf_counter() - self._t
        logs = logs if logs is not None else {}
        step = self._step()
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            last = self.manager.latest_checkpoint
            raise TrainingError(
                f"loss is {float(loss)} at step {step}: training stopped; the last good checkpoint "
                f"is {last if last else 'none (no checkpoint was written yet)'}")
        if self._first:
            self._first = False
        else:
            self._epoch_seconds += dt
            self._epoch_steps += 1
            self.seconds += dt
            self.steps += 1
        if self._epoch_seconds > 0:
            logs["images_per_second"] = self._epoch_steps * self.batch_size / self._epoch_seconds
        if self.every and step % self.every == 0:
            self.save(step)
        self._serve_stop_request()

    def on_test_begin(self, logs=None):
        self.save(self._step())      # validation inside fit(): raw weights, before any swap

    def on_test_batch_end(self, batch, logs=None):
        self._serve_stop_request(save=False)      # saved in on_test_begin

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._epoch_seconds > 0:
            logs["images_per_second"] = self._epoch_steps * self.batch_size / self._epoch_seconds
        self.save(self._step())
        self._serve_stop_request()

    @property
    def images_per_second(self):
        """Images per second of the timed steps; None when no step could be timed (a run of
        one step has only the traced one)."""
        return self.steps * self.batch_size / self.seconds if self.seconds > 0 else None


class Progbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, showing "Epoch e/total" although each fit() call runs one epoch."""

    def __init__(self, total_epochs):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(dict(params, epochs=self.total_epochs))
