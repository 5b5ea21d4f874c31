"""Quantization-aware training (QAT): MobileNetV1's twin that computes what TFLite's int8 kernels do.

TF-slim trained Google's ``mobilenet_v1_*_quant`` models with ``--quantize`` (``tf.contrib.quantize``
rewrote the graph with fake quantization and folded batch norm). Keras 3 has no such rewrite
(tensorflow-model-optimization needs Keras 2); :func:`quantize_model` builds the equivalent Keras 3
model from a float MobileNetV1, of three registered layers and Keras' own:

* :class:`~mobilenet_tf.model.qat_layers.QuantizedConv`: a convolution with its batch norm
  folded in, int8 per-channel weights (``qat_layers`` says exactly how);
* :class:`~mobilenet_tf.model.qat_layers.ActivationQuantizer`: ReLU6 and int8 activations,
  fixed or learned ranges;
* ``ZeroPadding2D``, ``Dropout``, ``Reshape``, ``GlobalAveragePooling2D`` and the softmax are the
  float model's own layers.

The layer names are the float model's, so the end points (``Conv2d_1_depthwise``, ...,
``Conv2d_1_depthwise_Relu6``, ``Logits``) stay; the batch norm layers are gone (folded). A
``.keras`` file of this model loads with ``keras.models.load_model`` once this module is imported
(``import mobilenet_tf.model.qat`` registers the layers of ``qat_layers``; ``mobilenet_tf``'s own
loaders import it; plain ``import mobilenet_tf`` does not, as it keeps TensorFlow out of
``python -m mobilenet_tf.costs``).
``quantize_delay`` steps (TF-slim's ``--quantize_delay``) train in
float before quantization starts (ranges are learned from the first step on); in inference the
model is always quantized. The converter reads the learned ranges:
:func:`mobilenet_tf.export.converter.convert` writes a full-int8 ``.tflite`` file of this model
without a representative dataset.

This module builds layers; it does not train, load weights from files or read flags.
"""

import keras
from keras import ops

from mobilenet_tf.model.qat_layers import (BITS, DEFAULT_RANGE_DECAY, INPUT_RANGE, RELU6_RANGE,
                                           ActivationQuantizer, QATError, QuantizedConv)

__all__ = ["QuantizeDelay", "quantize_model", "is_quantization_aware", "quantizers",
           "activation_ranges", "set_quantize_active"]


def is_quantization_aware(model):
    """Whether `model` is a quantization-aware twin (has fake-quantizing layers)."""
    return bool(quantizers(model))


def _all_layers(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def quantizers(model):
    """The fake-quantizing layers of `model`, in order."""
    return [layer for layer in _all_layers(model)
            if isinstance(layer, (QuantizedConv, ActivationQuantizer))]


def activation_ranges(model):
    """``{layer name: (min, max)}`` of the learned activation ranges of `model` (floats)."""
    out = {}
    for layer in quantizers(model):
        if isinstance(layer, ActivationQuantizer) and layer.fixed_range is None:
            low, high = layer.range()
            out[layer.name] = (float(ops.convert_to_numpy(low)), float(ops.convert_to_numpy(high)))
    return out


def set_quantize_active(model, active):
    """Turns fake quantization in training on or off in every layer of `model`."""
    for layer in quantizers(model):
        layer.quantize_active.assign(1.0 if active else 0.0)


class QuantizeDelay(keras.callbacks.Callback):
    """TF-slim's ``--quantize_delay``: fake quantization in training starts at optimizer step
    `delay` (before it the network trains in float while the activation ranges are learned)."""

    def __init__(self, qat_model, delay, optimizer):
        super().__init__()
        self.qat_model, self.delay, self.optimizer = qat_model, int(delay), optimizer
        self._active = None

    def on_train_batch_begin(self, batch, logs=None):
        active = int(self.optimizer.iterations.numpy()) >= self.delay
        if active != self._active:
            set_quantize_active(self.qat_model, active)
            self._active = active


# --- the twin -------------------------------------------------------------------------------------

def _clone(layer):
    return layer.__class__.from_config(layer.get_config())


def _relu_kind(layer):
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None and float(layer.max_value) == 6.0 and not layer.negative_slope \
                and not layer.threshold:
            return "relu6"
        if layer.max_value is None and not layer.negative_slope and not layer.threshold:
            return "relu"
    return None


def _step(fixed_range):
    """The step of int8 values quantized to `fixed_range` (None: a learned range)."""
    if fixed_range is None:
        return None
    low, high = fixed_range
    return (high - low) / (2 ** BITS - 1)


def quantize_model(model, *, quantize_delay=0, range_decay=DEFAULT_RANGE_DECAY):
    """The quantization-aware twin of a float MobileNetV1 (`model`), with its weights.

    Every ``Conv2D`` / ``DepthwiseConv2D`` + ``BatchNormalization`` + ReLU6 end point becomes a
    :class:`QuantizedConv` (named as the convolution, batch norm folded, trainable as the
    convolution was, batch norm training as the ``BatchNormalization`` layer was) and an
    :class:`ActivationQuantizer` (named as the activation); the input gets ``input_quant``
    ([-1, 1]); ``AvgPool_1a`` and ``Logits`` get learned output ranges (``<name>_quant``).

    Args:
      model: a MobileNetV1 built by :func:`mobilenet_tf.MobileNetV1` (a chain of layers), float32.
      quantize_delay: > 0: fake quantization off in training until :class:`QuantizeDelay` turns
        it on.
      range_decay: decay of the learned activation ranges' moving averages.

    Raises:
      QATError: a model this cannot quantize (one line naming the layer).
    """
    if not isinstance(quantize_delay, int) or quantize_delay < 0:
        raise QATError(f"`quantize_delay` must be an int >= 0. Received: "
                       f"quantize_delay={quantize_delay!r}")
    if not 0 < range_decay < 1:
        raise QATError(f"`range_decay` must be in (0, 1). Received: range_decay={range_decay!r}")
    if is_quantization_aware(model):
        raise QATError(f"model {model.name} is quantization-aware already")
    for variable in model.weights:
        if variable.dtype != "float32":
            raise QATError("quantization-aware training simulates int8 arithmetic in float32; "
                           f"rebuild the model in float32. Received: {variable.path} of dtype "
                           f"{variable.dtype}")
    active = quantize_delay == 0
    layers = list(model.layers)
    if not layers or not isinstance(layers[0], keras.layers.InputLayer):
        raise QATError(f"model {model.name} must start with its input layer")
    inputs = keras.Input(shape=model.input_shape[1:], name=layers[0].name)
    x = ActivationQuantizer(fixed_range=INPUT_RANGE, quantize_active=active,
                            name=f"{layers[0].name}_quant")(inputs)
    step = _step(INPUT_RANGE)       # of the int8 tensor x, while its range is fixed; else None
    copies = []                     # (new layer, weights in its order)
    i = 1
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last" or \
                    layer.activation not in (keras.activations.linear, None):
                raise QATError(f"layer {layer.name}: only plain channels-last convolutions "
                               "without activation can be quantized here")
            norm = layers[i + 1] if i + 1 < len(layers) else None
            has_norm = isinstance(norm, keras.layers.BatchNormalization)
            if has_norm and (not norm.center or not norm.scale or norm.axis not in (-1, [-1], [3], 3)):
                raise QATError(f"layer {norm.name}: only a batch norm with center and scale over "
                               "the channels can be folded")
            conv = QuantizedConv(
                filters=None if depthwise else layer.filters, kernel_size=layer.kernel_size,
                strides=layer.strides, padding=layer.padding, dilation_rate=layer.dilation_rate,
                depthwise=depthwise,
                depth_multiplier=layer.depth_multiplier if depthwise else 1,
                use_bias=layer.use_bias and not has_norm, batch_norm=has_norm,
                batch_norm_momentum=norm.momentum if has_norm else 0.99,
                batch_norm_epsilon=norm.epsilon if has_norm else 1e-3,
                batch_norm_trainable=bool(norm.trainable) if has_norm else False,
                synchronized=bool(getattr(norm, "synchronized", False)) if has_norm else False,
                quantize_active=active,
                kernel_initializer=(layer.depthwise_initializer if depthwise
                                    else layer.kernel_initializer),
                input_scale=step, name=layer.name, trainable=layer.trainable)
            x = conv(x)
            if has_norm and layer.use_bias:
                raise QATError(f"layer {layer.name}: a bias before batch norm cannot be folded")
            weights = [layer.kernel] + ([layer.bias] if conv.use_bias else [])
            if has_norm:
                weights += [norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance]
                i += 1
            copies.append((conv, weights))
            following = layers[i + 1] if i + 1 < len(layers) else None
            kind = _relu_kind(following)
            if kind is not None:
                fixed = RELU6_RANGE if kind == "relu6" else None
                x = ActivationQuantizer(kind, fixed_range=fixed,
                                        range_decay=range_decay, quantize_active=active,
                                        name=following.name)(x)
                step = _step(fixed)
                i += 1
            else:
                x = ActivationQuantizer(range_decay=range_decay, quantize_active=active,
                                        name=f"{layer.name}_quant")(x)
                step = None
        elif isinstance(layer, (keras.layers.GlobalAveragePooling2D,)):
            x = _clone(layer)(x)
            x = ActivationQuantizer(range_decay=range_decay, quantize_active=active,
                                    name=f"{layer.name}_quant")(x)
            step = None
        elif isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Dropout,
                                keras.layers.Reshape, keras.layers.GlobalMaxPooling2D)):
            x = _clone(layer)(x)
        elif isinstance(layer, keras.layers.Activation) and i == len(layers) - 1:
            x = _clone(layer)(x)
        else:
            raise QATError(f"layer {layer.name} ({type(layer).__name__}) has no quantized "
                           "counterpart here (MobileNetV1's layers only)")
        i += 1
    twin = keras.Model(inputs, x, name=f"{model.name}_qat")
    for layer, weights in copies:
        for target, source in zip(layer.weights, weights):
            target.assign(source)
    return twin
