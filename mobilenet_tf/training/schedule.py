"""The learning-rate schedule: TF-slim's staircase exponential decay with optional linear warmup,
from a rate given as such or scaled by the batch size.

``learning_rate`` is the rate used; without it the rate follows the linear scaling rule
(Goyal et al. 2017; timm's ``--lr-base``/``--lr-base-size``): ``base_learning_rate *
batch_size / base_batch_size``, by default 0.016 per 256 images, the paper configurations'
convention. The decay is ``exponential_decay(..., staircase=True)``: 0.94 every 2 epochs by
default.

Written with ``keras.ops``: the same schedule on every Keras backend (on TensorFlow the same
ops as ``tf.train.exponential_decay``'s).
"""

import keras
from keras import ops

__all__ = ["scaled_learning_rate", "initial_learning_rate", "StaircaseDecayWithWarmup",
           "learning_rate_schedule"]


def scaled_learning_rate(base_learning_rate, batch_size, base_batch_size=256):
    """The linear scaling rule: ``base_learning_rate`` is the rate for ``base_batch_size``."""
    return base_learning_rate * batch_size / base_batch_size


def initial_learning_rate(config):
    """``(rate, rule)``: the rate training starts from (before decay and warmup) and, in
    words, which rule produced it — ``learning_rate`` as given, or the base rate scaled
    by the batch size."""
    if config.learning_rate is not None:
        return config.learning_rate, f"{config.learning_rate:g} (learning_rate, as given)"
    rate = scaled_learning_rate(config.base_learning_rate, config.batch_size,
                                config.base_batch_size)
    return rate, (f"{rate:g} (= base_learning_rate {config.base_learning_rate:g} x batch "
                  f"{config.batch_size} / {config.base_batch_size}: linear scaling; set "
                  "learning_rate to give the rate itself)")


@keras.saving.register_keras_serializable(package="mobilenet_tf")
class StaircaseDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``rate * decay_factor ** floor(step / decay_steps) * min(1, (step + 1) / warmup_steps)``.

    The staircase is TF-slim's ``tf.train.exponential_decay(staircase=True)``;
    with ``warmup_steps`` = 0 the last factor is 1. ``step`` is the number of
    steps already taken (the optimizer's ``iterations``).
    """

    def __init__(self, rate, decay_steps, decay_factor, warmup_steps=0):
        self.rate = float(rate)
        self.decay_steps = int(decay_steps)
        self.decay_factor = float(decay_factor)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.rate * ops.power(self.decay_factor, ops.floor(step / float(self.decay_steps)))
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return lr

    def get_config(self):
        return {"rate": self.rate, "decay_steps": self.decay_steps,
                "decay_factor": self.decay_factor, "warmup_steps": self.warmup_steps}


def learning_rate_schedule(config, steps_per_epoch):
    """The schedule of `config` for an epoch of ``steps_per_epoch`` steps."""
    rate, _ = initial_learning_rate(config)
    return StaircaseDecayWithWarmup(
        rate, decay_steps=max(1, int(round(config.lr_decay_epochs * steps_per_epoch))),
        decay_factor=config.lr_decay_factor,
        warmup_steps=int(round(config.warmup_epochs * steps_per_epoch)))
