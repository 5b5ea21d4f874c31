"""The layers of the quantization-aware twin (``qat.quantize_model``): fake quantization that
computes what TFLite's int8 kernels do.

* :class:`QuantizedConv`: a ``Conv2D`` or ``DepthwiseConv2D`` with the following batch norm folded
  into its weights and bias, ``w * gamma / sqrt(var + eps)`` and ``beta - mean * gamma /
  sqrt(var + eps)``: with the batch's statistics while batch norm trains (the moving statistics
  are updated as ``BatchNormalization`` does), with the moving statistics when it does not
  (inference, ``--train_batch_norm`` off when fine-tuning, ``trainable=False``). The folded weights
  are fake-quantized per output channel, symmetric int8 (``[-127, 127]`` times max|w| / 127, as
  TFLite's per-channel convolution weights), with ``keras.quantizers.fake_quant_with_min_max_vars``
  (TensorFlow's ``FakeQuantWithMinMaxVarsPerChannel``, which the TFLite converter turns into int8
  weights). The bias is rounded to the int32 steps TFLite stores it in (input step x weight step
  of the channel) where the input's range is fixed: without that, each layer's output differed
  from the int8 kernel's by one level on ~0.1% of values, and the differences grew through the
  13 blocks. The head (``Logits``, a 1x1 convolution with bias) is quantized the same way,
  without batch norm (its input range is learned: a float bias).
* :class:`ActivationQuantizer`: the activation (ReLU6) and per-tensor asymmetric int8 fake
  quantization of its output: ``[0, 6]`` after ReLU6 and ``[-1, 1]`` for the input image (on the
  file's uint8 grid, :data:`INPUT_RANGE`; fixed, as the converter would calibrate them),
  otherwise (``AvgPool_1a``, ``Logits``) a range learned as an exponential moving average of the
  batches' min and max (decay ``range_decay``, 0.999 as ``tf.contrib.quantize``), starting from
  a calibration pass (``qat_ranges``) or, without one, from the first training batch.
  ``SpatialSqueeze`` keeps its input's range and the softmax's int8 output range is fixed by
  TFLite (1/256), as the converter does.

Both are registered Keras serializables (``mobilenet_tf>QuantizedConv``,
``mobilenet_tf>ActivationQuantizer``), so a ``.keras`` file of a quantization-aware model loads
with ``keras.models.load_model`` once this module is imported. Layers only: no model surgery
(``qat``), no training, no files.
"""

import keras
from keras import ops

from mobilenet_tf.utils import backend

__all__ = ["QuantizedConv", "ActivationQuantizer", "QATError", "INPUT_RANGE", "RELU6_RANGE",
           "DEFAULT_RANGE_DECAY", "BITS"]

# The model's input, images scaled to [-1, 1], on the grid of the exported file's uint8 input
# (zero point 128, step 1/127.5). With (-1, 1) itself TensorFlow's fake-quant op nudges the zero
# point to 127 (-min/scale is 127.49999 in float32) while the file's uint8 input has 128: the
# Keras model then clamped black pixels one step above what the file sees.
INPUT_RANGE = (-128 / 127.5, 127 / 127.5)
RELU6_RANGE = (0.0, 6.0)
DEFAULT_RANGE_DECAY = 0.999    # tf.contrib.quantize's ema_decay
BITS = 8
_PACKAGE = "mobilenet_tf"


class QATError(ValueError):
    """A model or setting that quantization-aware training cannot take (one line)."""


def _channel_bound(kernel, channel_axis):
    axes = [a for a in range(len(kernel.shape)) if a != channel_axis]
    return ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-8)


def _symmetric_per_channel(kernel, channel_axis):
    """Fake-quantizes `kernel` per slice of `channel_axis` to int8 [-127, 127] x max|w| / 127.

    The channel axis is moved last first: on backends other than TensorFlow, Keras 3.15's
    ``fake_quant_with_min_max_vars`` broadcasts per-channel ranges along the last axis whatever
    its ``axis`` (a depthwise kernel, channels on axis 2, came out with the wrong shape on JAX).
    On TensorFlow Keras moves the axis last itself, so the swaps there cancel out."""
    bound = _channel_bound(kernel, channel_axis)
    last = len(kernel.shape) - 1
    quantized = keras.quantizers.fake_quant_with_min_max_vars(
        ops.swapaxes(kernel, channel_axis, last), -bound, bound, num_bits=BITS,
        narrow_range=True, axis=last)
    return ops.swapaxes(quantized, channel_axis, last)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QuantizedConv(keras.layers.Layer):
    """A convolution (full or depthwise) with batch norm folded in and int8 per-channel weights.

    Args:
      filters: output channels of a full convolution (ignored when ``depthwise``).
      kernel_size, strides, padding, dilation_rate: as ``keras.layers.Conv2D``.
      depthwise: a depthwise convolution with ``depth_multiplier`` outputs per input channel.
      use_bias: a bias of its own (the head); a folded batch norm brings its own.
      batch_norm: fold a batch norm (``batch_norm_momentum``, ``batch_norm_epsilon``) into it.
      batch_norm_trainable: batch norm trains (batch statistics, moving statistics updated,
        gamma and beta trained) in training; False: moving statistics always, gamma and beta fixed.
      synchronized: batch statistics over all replicas (as ``BatchNormalization(synchronized=)``).
      quantize_active: start with weight quantization on (False: off until ``QuantizeDelay``
        turns it on; inference always quantizes).
      input_scale: the step of this layer's int8 input when it is fixed (after ReLU6 [0, 6]:
        6/255; the input image: 1/127.5). Then the bias is rounded as TFLite stores it, int32
        in steps of ``input_scale * max|w_c| / 127`` per output channel (a straight-through
        gradient). None (an input range that is learned, e.g. the head's): a float bias; for
        MobileNetV1's head its rounding in the file is a few 1e-4 of an output step.
    """

    def __init__(self, filters=None, kernel_size=(1, 1), strides=(1, 1), padding="valid",
                 dilation_rate=(1, 1), depthwise=False, depth_multiplier=1, use_bias=False,
                 batch_norm=True, batch_norm_momentum=0.99, batch_norm_epsilon=1e-3,
                 batch_norm_trainable=True, synchronized=False, quantize_active=True,
                 kernel_initializer="glorot_uniform", input_scale=None, **kwargs):
        super().__init__(**kwargs)
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.filters = filters
        self.kernel_size = pair(kernel_size)
        self.strides = pair(strides)
        self.padding = padding
        self.dilation_rate = pair(dilation_rate)
        self.depthwise = bool(depthwise)
        self.depth_multiplier = int(depth_multiplier)
        self.use_bias = bool(use_bias)
        self.batch_norm = bool(batch_norm)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.batch_norm_trainable = bool(batch_norm_trainable)
        self.synchronized = bool(synchronized)
        self.initial_quantize_active = bool(quantize_active)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.input_scale = None if input_scale is None else float(input_scale)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if self.depthwise:
            shape = self.kernel_size + (channels, self.depth_multiplier)
            self.out_channels = channels * self.depth_multiplier
        else:
            shape = self.kernel_size + (channels, self.filters)
            self.out_channels = self.filters
        self.kernel = self.add_weight(name="kernel", shape=shape,
                                      initializer=self.kernel_initializer)
        n = (self.out_channels,)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=n, initializer="zeros")
        if self.batch_norm:
            trainable = self.batch_norm_trainable
            self.gamma = self.add_weight(name="gamma", shape=n, initializer="ones",
                                         trainable=trainable)
            self.beta = self.add_weight(name="beta", shape=n, initializer="zeros",
                                        trainable=trainable)
            self.moving_mean = self.add_weight(name="moving_mean", shape=n, initializer="zeros",
                                               trainable=False, aggregation="mean")
            self.moving_variance = self.add_weight(name="moving_variance", shape=n,
                                                   initializer="ones", trainable=False,
                                                   aggregation="mean")
        self.quantize_active = self.add_weight(
            name="quantize_active", shape=(),
            initializer=keras.initializers.Constant(float(self.initial_quantize_active)),
            trainable=False, aggregation="only_first_replica")

    def _conv(self, x, kernel):
        if self.depthwise:
            return ops.depthwise_conv(x, kernel, strides=self.strides, padding=self.padding,
                                      dilation_rate=self.dilation_rate)
        return ops.conv(x, kernel, strides=self.strides, padding=self.padding,
                        dilation_rate=self.dilation_rate)

    def _per_output_channel(self, vector):
        """`vector` (out_channels,) shaped to multiply the kernel along its output channels."""
        if self.depthwise:
            return ops.reshape(vector, (1, 1, -1, self.depth_multiplier))
        return ops.reshape(vector, (1, 1, 1, -1))

    def folded(self, x=None, training=False):
        """``(kernel, bias)`` after folding batch norm (float, before weight quantization).
        With ``training`` and a training batch norm, the statistics of ``conv(x)`` are used
        and the moving statistics updated."""
        kernel = self.kernel
        bias = self.bias if self.use_bias else None
        if not self.batch_norm:
            return kernel, bias
        if training and self.batch_norm_trainable and self.trainable:
            mean, variance = ops.moments(self._conv(x, kernel), axes=[0, 1, 2],
                                         synchronized=self.synchronized)
            m = self.batch_norm_momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * ops.rsqrt(variance + self.batch_norm_epsilon)
        return kernel * self._per_output_channel(scale), self.beta - mean * scale

    def _by_output_channel(self, kernel):
        """`kernel` as ``(kh, kw, in, out_channels)`` (depthwise: ``in`` = 1), and back."""
        if not self.depthwise or self.depth_multiplier == 1:
            axis = 2 if self.depthwise else 3
            return kernel, axis, lambda k: k
        flat = ops.reshape(kernel, self.kernel_size + (1, self.out_channels))
        return flat, 3, lambda k: ops.reshape(k, ops.shape(kernel))

    def quantized_kernel(self, kernel):
        """`kernel` fake-quantized per output channel (symmetric int8)."""
        flat, axis, back = self._by_output_channel(kernel)
        return back(_symmetric_per_channel(flat, axis))

    def quantized_bias(self, kernel, bias):
        """`bias` rounded to TFLite's int32 bias steps, ``input_scale * max|w_c| / 127``
        (`kernel`: the folded float kernel); the gradient passes straight through."""
        flat, axis, _ = self._by_output_channel(kernel)
        step = self.input_scale * _channel_bound(flat, axis) / (2 ** (BITS - 1) - 1)
        rounded = ops.round(bias / step) * step
        return bias + ops.stop_gradient(rounded - bias)

    def call(self, inputs, training=None):
        kernel, bias = self.folded(inputs, training=bool(training))
        quantized = self.quantized_kernel(kernel)
        if bias is not None and self.input_scale is not None:
            quantized_bias = self.quantized_bias(kernel, bias)
        else:
            quantized_bias = bias
        if training:
            on = self.quantize_active > 0.5
            quantized = ops.where(on, quantized, kernel)
            if bias is not None:
                quantized_bias = ops.where(on, quantized_bias, bias)
        y = self._conv(inputs, quantized)
        return y if bias is None else y + quantized_bias

    def compute_output_shape(self, input_shape):
        batch, h, w, _ = input_shape

        def size(n, k, s, d):
            if n is None:
                return None
            effective = k + (k - 1) * (d - 1)
            return -(-n // s) if self.padding == "same" else (n - effective) // s + 1
        return (batch, size(h, self.kernel_size[0], self.strides[0], self.dilation_rate[0]),
                size(w, self.kernel_size[1], self.strides[1], self.dilation_rate[1]),
                self.filters if not self.depthwise else int(input_shape[-1]) * self.depth_multiplier)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, dilation_rate=self.dilation_rate,
                      depthwise=self.depthwise, depth_multiplier=self.depth_multiplier,
                      use_bias=self.use_bias, batch_norm=self.batch_norm,
                      batch_norm_momentum=self.batch_norm_momentum,
                      batch_norm_epsilon=self.batch_norm_epsilon,
                      batch_norm_trainable=self.batch_norm_trainable,
                      synchronized=self.synchronized,
                      quantize_active=self.initial_quantize_active,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      input_scale=self.input_scale)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ActivationQuantizer(keras.layers.Layer):
    """An activation (None, ``"relu6"``, ``"relu"``) and per-tensor int8 fake quantization of it.

    Args:
      fixed_range: ``(min, max)`` of the quantized values; None: learned as an exponential
        moving average (decay ``range_decay``) of the training batches' min and max (each
        widened to include 0), starting from the calibrated range when
        ``qat_ranges.calibrate_ranges`` set one (``train`` does, before the first step), else
        from the first batch's.
      quantize_active: as :class:`QuantizedConv`.
    """

    def __init__(self, activation=None, fixed_range=None, range_decay=DEFAULT_RANGE_DECAY,
                 quantize_active=True, **kwargs):
        super().__init__(**kwargs)
        if activation not in (None, "relu6", "relu"):
            raise QATError(f"`activation` must be None, 'relu6' or 'relu'. Received: "
                           f"activation={activation!r}")
        self.activation = activation
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)
        self.range_decay = float(range_decay)
        self.initial_quantize_active = bool(quantize_active)

    def build(self, input_shape):
        if self.fixed_range is None:
            self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros",
                                             trainable=False, aggregation="mean")
            self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros",
                                             trainable=False, aggregation="mean")
            self.range_seen = self.add_weight(name="range_seen", shape=(), initializer="zeros",
                                              trainable=False, aggregation="only_first_replica")
        self.quantize_active = self.add_weight(
            name="quantize_active", shape=(),
            initializer=keras.initializers.Constant(float(self.initial_quantize_active)),
            trainable=False, aggregation="only_first_replica")

    def range(self):
        """``(min, max)`` the layer quantizes to now (learned ones: the variables)."""
        if self.fixed_range is not None:
            return self.fixed_range
        return self.range_min, self.range_max

    def _update_range(self, x):
        # The global batch's range: under tf.distribute each replica sees a part of it.
        low = ops.minimum(_across_replicas(ops.min(x), ops.min), 0.0)
        high = ops.maximum(_across_replicas(ops.max(x), ops.max), 0.0)
        seen = self.range_seen > 0.5
        d = self.range_decay
        self.range_min.assign(ops.where(seen, self.range_min * d + low * (1.0 - d), low))
        self.range_max.assign(ops.where(seen, self.range_max * d + high * (1.0 - d), high))
        self.range_seen.assign(1.0)
        return self.range_min, self.range_max

    def activate(self, x):
        """The layer's activation of `x` (the values it quantizes)."""
        if self.activation == "relu6":
            return ops.relu6(x)
        if self.activation == "relu":
            return ops.relu(x)
        return x

    def call(self, inputs, training=None):
        x = self.activate(inputs)
        if self.fixed_range is not None:
            low, high = self.fixed_range
        elif training:
            low, high = self._update_range(x)
        else:
            low, high = self.range_min, self.range_max
        quantized = keras.quantizers.fake_quant_with_min_max_vars(
            x, low, high, num_bits=BITS, narrow_range=False)
        if training:
            return ops.where(self.quantize_active > 0.5, quantized, x)
        return quantized

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(activation=self.activation, fixed_range=self.fixed_range,
                      range_decay=self.range_decay, quantize_active=self.initial_quantize_active)
        return config


def _across_replicas(value, reduce):
    """`reduce` (``ops.min`` / ``ops.max``) of a scalar over the replicas of a
    ``tf.distribute`` strategy (its replica context; ``all_reduce`` has no min or max, so the
    values are gathered); `value` itself outside one, with one replica, or on another Keras
    backend (no tf.distribute there)."""
    if not backend.is_tensorflow():
        return value
    tf = backend.tensorflow("tf.distribute")
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return reduce(context.all_gather(ops.reshape(value, (1,)), axis=0))
