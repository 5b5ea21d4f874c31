"""Weight decay: which trainable variables are decayed (one rule per variable), and TF-slim's L2.

* :func:`weight_decay_rule` / :func:`split_weight_decay`: the per-variable L2 filter. Full and
  pointwise convolution kernels and the logits kernel are decayed; depthwise kernels only with
  ``regularize_depthwise`` (the paper: "very little or no weight decay on the depthwise
  filters"); batch-norm parameters and biases never. Any other trainable variable is an
  error, so every trainable variable is decided one way or the other.
* :func:`l2_penalty`: TF-slim's ``l2_regularizer(wd)`` = wd * sum(w**2) / 2.
  With rmsprop / momentum / sgd the penalty is **added to the loss** (as TF-slim did, so
  RMSprop normalises its gradient like any other, which is the training the released
  checkpoints had); with ``adamw`` it is applied as **decoupled decay** (``w -= lr * wd * w``
  on the same variables, the gradient of the same penalty but outside Adam's normalisation,
  which is what AdamW means; see ``recipe.make_optimizer``).

Written with ``keras.ops``, so the same on every Keras backend.
"""

import keras
from keras import ops

from mobilenet_tf.model import qat

__all__ = ["weight_decay_rule", "split_weight_decay", "l2_penalty", "apply_weight_decay"]


def _variable_name(variable):
    return getattr(variable, "name", "").split("/")[-1].split(":")[0]


def weight_decay_rule(layer, variable, regularize_depthwise=False):
    """True if `variable` (a trainable weight of `layer`) gets weight decay, False if not.

    Raises ValueError for a variable the rule does not know, so a new kind of
    layer cannot silently go undecayed.
    """
    name = _variable_name(variable)
    if isinstance(layer, keras.layers.BatchNormalization) and name in ("gamma", "beta"):
        return False
    if isinstance(layer, qat.QuantizedConv):       # a convolution with its batch norm folded in
        if name == "kernel":
            return bool(regularize_depthwise) or not layer.depthwise
        if name in ("bias", "gamma", "beta"):
            return False
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if name == "kernel":
            return bool(regularize_depthwise)
        if name == "bias":
            return False
    elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        if name == "kernel":
            return True
        if name == "bias":
            return False
    raise ValueError(f"the weight decay rule has no decision for trainable variable "
                     f"{getattr(variable, 'path', name)!r} of a {type(layer).__name__} layer")


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def split_weight_decay(model, regularize_depthwise=False):
    """``(decayed, excluded)``: the model's trainable variables, each in exactly one list.

    Raises ValueError if any trainable variable is decided by no layer (or twice).
    """
    decayed, excluded, seen = [], [], set()
    for layer in _leaf_layers(model):
        for variable in layer.trainable_weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            (decayed if weight_decay_rule(layer, variable, regularize_depthwise)
             else excluded).append(variable)
    trainable = {id(v): v for v in model.trainable_variables}
    missing = [v.path for i, v in trainable.items() if i not in seen]
    if missing or len(decayed) + len(excluded) != len(trainable):
        raise ValueError(f"weight decay: trainable variables not decided by any layer: {missing}")
    return decayed, excluded


def l2_penalty(variables, weight_decay):
    """TF-slim's ``l2_regularizer(weight_decay)`` summed over `variables`: wd * sum(w**2) / 2."""
    total = ops.convert_to_tensor(0.0, "float32")
    for v in variables:
        total += ops.sum(ops.square(ops.cast(ops.convert_to_tensor(v), "float32")))
    return weight_decay * total / 2.0


class _HalfL2(keras.regularizers.Regularizer):
    """wd * sum(w**2) / 2 for one variable (slim semantics; Keras' L2(l) is l * sum(w**2))."""

    def __init__(self, weight_decay):
        self.weight_decay = float(weight_decay)

    def __call__(self, x):
        return self.weight_decay * ops.sum(ops.square(x)) / 2.0

    def get_config(self):
        return {"weight_decay": self.weight_decay}


def apply_weight_decay(model, weight_decay, *, regularize_depthwise=False, decoupled=False):
    """Attaches the L2 filter; returns ``(decayed, excluded)`` variable lists.

    ``decoupled=False``: each decayed variable gets a regularizer, so Keras adds
    wd * sum(w**2) / 2 to the training loss. ``decoupled=True``: nothing is
    attached (the optimizer decays the ``decayed`` list, see ``recipe.make_optimizer``).
    """
    decayed, excluded = split_weight_decay(model, regularize_depthwise)
    for v in excluded:
        v.regularizer = None
    for v in decayed:
        v.regularizer = None if decoupled or weight_decay == 0 else _HalfL2(weight_decay)
    return decayed, excluded
