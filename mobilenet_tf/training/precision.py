"""Mixed-precision training: Keras dtype policies for ``--mixed_precision``.

``none`` trains in float32. ``bfloat16`` and ``float16`` use Keras' mixed
policies (``mixed_bfloat16``, ``mixed_float16``): convolutions and
activations compute in the low precision while

* every variable (weights, batch-norm moving statistics, optimizer slots)
  stays float32 (the mixed policies' variable dtype);
* batch normalization computes its statistics in float32 (Keras upcasts
  low-precision inputs inside ``BatchNormalization``);
* the softmax (``Predictions``) runs in float32 (:func:`build_with_policy`
  gives that layer a float32 policy, Keras' mixed-precision guide), and the
  loss is computed in float32;
* with ``float16`` the optimizer is wrapped in Keras' dynamic
  ``LossScaleOptimizer`` (:func:`with_loss_scaling`), so small gradients do
  not underflow; bfloat16 has float32's exponent range and needs no loss
  scaling. A step whose scaled gradients overflow is skipped (and the scale
  halved) as Keras does, but still counted as a step, so the step count,
  the learning-rate schedule and checkpoints follow the batches seen.

The saved model is float32 (:func:`float32_copy`), so ``model.keras`` and
its TFLite export do not depend on how it was trained.
This module reads no flags, and imports Keras only when a function needs it
(``train.py`` checks ``--mixed_precision`` before TensorFlow starts).
"""

import contextlib

from mobilenet_tf.errors import InputError

__all__ = ["MIXED_PRECISION", "POLICY_NAMES", "policy_name", "policy_scope", "build_with_policy",
           "with_loss_scaling", "float32_copy", "FLOAT32_LAYERS"]

MIXED_PRECISION = ("none", "bfloat16", "float16")
POLICY_NAMES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
FLOAT32_LAYERS = ("Predictions",)        # softmax in float32 (Keras' mixed-precision practice)


def policy_name(mixed_precision):
    """The Keras dtype policy name of a ``--mixed_precision`` value. ValueError (one line) if unknown."""
    if mixed_precision not in POLICY_NAMES:
        raise InputError(f"`mixed_precision` must be one of {', '.join(MIXED_PRECISION)}. "
                         f"Received: mixed_precision={mixed_precision!r}")
    return POLICY_NAMES[mixed_precision]


@contextlib.contextmanager
def policy_scope(mixed_precision):
    """Sets Keras' global dtype policy for ``mixed_precision`` inside the block, then restores it."""
    import keras
    name = policy_name(mixed_precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)


def build_with_policy(build_fn, mixed_precision):
    """``build_fn()`` under the policy of ``mixed_precision``, with float32 :data:`FLOAT32_LAYERS`.

    The model (a Keras functional model) keeps the policy it was built with:
    ``compile`` then adds loss scaling for ``float16``.
    """
    with policy_scope(mixed_precision):
        model = build_fn()
    if mixed_precision != "none":
        for layer in model.layers:
            if layer.name in FLOAT32_LAYERS:
                layer.dtype_policy = "float32"
    return model


_LOSS_SCALE_CLASS = []


def _loss_scale_optimizer_class():
    if not _LOSS_SCALE_CLASS:
        import keras

        class StepCountingLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
            """Keras' dynamic loss scaling; a skipped (overflowing) step still counts as a step."""

            def _stateful_handle_non_finite_grads(self):
                super()._stateful_handle_non_finite_grads()
                self.inner_optimizer.iterations.assign_add(1)

        _LOSS_SCALE_CLASS.append(StepCountingLossScaleOptimizer)
    return _LOSS_SCALE_CLASS[0]


def with_loss_scaling(model, optimizer):
    """``optimizer`` wrapped for dynamic loss scaling if ``model`` computes in float16, else itself.

    Pass the result to ``model.compile``; Keras does not wrap it again.
    """
    if model.dtype_policy.name != "mixed_float16":
        return optimizer
    return _loss_scale_optimizer_class()(optimizer)


def float32_copy(model):
    """A float32, all-trainable, uncompiled copy of functional ``model`` with the same weights.

    Used for the saved ``model.keras``: the same network whatever
    ``mixed_precision``, freezing or batch-norm synchronisation trained it.
    Call it outside any ``strategy.scope()``; under a multi-worker strategy
    every worker must call it (reading distributed variables can be a
    collective operation).
    """
    import keras
    config = model.get_config()
    for layer in config["layers"]:
        layer_config = layer["config"]
        if layer["class_name"] != "InputLayer" and "dtype" in layer_config:
            layer_config["dtype"] = "float32"
        if "synchronized" in layer_config:
            layer_config["synchronized"] = False     # a training-time setting of distributed runs
        layer_config["trainable"] = True
    with policy_scope("none"):
        clean = keras.Model.from_config(config)      # uncompiled (clone_model keeps compile)
    clean.set_weights(model.get_weights())
    return clean
