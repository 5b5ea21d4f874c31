"""The Keras MobileNetV1 builder: one loop over the architecture table.

``MobileNetV1`` builds exactly the layers that ``architecture.plan`` lists, with
TF-slim's end point names, so that ``model.summary()`` reads like the paper's
Table 1 and a checkpoint import is a name lookup. Only built-in Keras layers
are used, so a saved ``.keras`` file loads with plain ``keras.models.load_model``.

This module builds layers. It does not attach regularizers (training decides
weight decay per variable, see the training code) and does not parse flags.
"""

import keras

from mobilenet_tf.model import architecture
from mobilenet_tf.model import validation
# TF-slim's training-time constants (mobilenet_v1_arg_scope) live in model/defaults.py.
from mobilenet_tf.model.defaults import (BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM,  # noqa: F401
                                         DEFAULT_WEIGHT_DECAY, INIT_STDDEV)

__all__ = ["MobileNetV1", "feature_extractor", "endpoint_layer_name",
           "BATCH_NORM_MOMENTUM", "BATCH_NORM_EPSILON", "INIT_STDDEV"]


_ACTIVATION_LAYER_SUFFIX = {"relu6": "Relu6", "relu": "Relu"}


def _check_weights(weights, checkpoint_weights, **model_settings):
    """Weights are validated here so a bad value fails before any layer is built.

    Returns None or the resolved ``mobilenet_tf.model.weight_sources.WeightsSource`` (nothing
    is downloaded or read yet beyond the file's format)."""
    from mobilenet_tf.model import weight_sources
    if checkpoint_weights not in weight_sources.CHECKPOINT_WEIGHTS:
        raise ValueError(f"`checkpoint_weights` must be one of {weight_sources.CHECKPOINT_WEIGHTS}. "
                         f"Received: checkpoint_weights={checkpoint_weights!r}")
    return weight_sources.check_weights(weights, **model_settings)


def _check_pretrained_activation(classifier_activation):
    """keras.applications' ``imagenet_utils.validate_activation``: a pretrained head was
    trained for a softmax, so only softmax or None (logits, Keras' "linear") fit it."""
    if keras.activations.get(classifier_activation) not in (keras.activations.get("softmax"),
                                                            keras.activations.get(None)):
        raise ValueError("`classifier_activation` must be 'softmax' or None with pretrained "
                         "`weights` and include_top=True. "
                         f"Received: classifier_activation={classifier_activation!r}")


def _explicit_padding(kernel, rate):
    """slim's `_fixed_padding`: pad so a VALID conv acts like symmetric SAME."""
    pads = []
    for k in kernel:
        effective = k + (k - 1) * (rate - 1)
        total = effective - 1
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _same_padding(layer):
    """TF 'SAME' padding of a strided layer as explicit (before, after) pads per axis."""
    pads = []
    for size, k in zip(layer.input_size, layer.kernel):
        effective = k + (k - 1) * (layer.rate - 1)
        out = -(-size // layer.stride)
        total = max((out - 1) * layer.stride + effective - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _conv_block(x, layer, padding, activation, initializer):
    """One end point: conv (full, depthwise or pointwise) -> BatchNorm -> activation."""
    name = layer.name
    conv_padding = "same"
    if padding == "symmetric" and layer.kind != "pointwise":
        x = keras.layers.ZeroPadding2D(_explicit_padding(layer.kernel, layer.rate),
                                       name=f"{name}_pad")(x)
        conv_padding = "valid"
    elif layer.stride > 1 and None not in layer.input_size:
        # TF 'SAME' for a strided layer, spelled out: the same pads, so the same numbers.
        x = keras.layers.ZeroPadding2D(_same_padding(layer), name=f"{name}_pad")(x)
        conv_padding = "valid"
    # Otherwise 'same' itself: TF SAME at whatever size arrives, pads computed at run time
    # (an input of unknown size, or a stride-1 layer, whose SAME pads do not depend on size).
    if layer.kind == "depthwise":
        x = keras.layers.DepthwiseConv2D(
            layer.kernel, strides=layer.stride, dilation_rate=layer.rate, padding=conv_padding,
            depth_multiplier=layer.out_channels // layer.in_channels, use_bias=False,
            depthwise_initializer=initializer, name=name)(x)
    else:
        x = keras.layers.Conv2D(
            layer.out_channels, layer.kernel, strides=layer.stride, dilation_rate=layer.rate,
            padding=conv_padding, use_bias=False, kernel_initializer=initializer, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
                                        name=f"{name}_BatchNorm")(x)
    suffix = _ACTIVATION_LAYER_SUFFIX[activation]
    if activation == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=f"{name}_{suffix}")(x)
    return keras.layers.ReLU(name=f"{name}_{suffix}")(x)


def endpoint_layer_name(model, endpoint):
    """Name of the layer whose output is TF-slim end point `endpoint` in `model`."""
    for suffix in _ACTIVATION_LAYER_SUFFIX.values():
        candidate = f"{endpoint}_{suffix}"
        if any(layer.name == candidate for layer in model.layers):
            return candidate
    if endpoint == "Logits" and any(layer.name == "SpatialSqueeze" for layer in model.layers):
        # TF-slim: end_points['Logits'] = tf.squeeze(net, [1, 2], name='SpatialSqueeze').
        return "SpatialSqueeze"
    if endpoint in ("Logits", "Predictions", "AvgPool_1a", "global_pool"):
        if any(layer.name == endpoint for layer in model.layers):
            return endpoint
    available = [n for n in _model_endpoints(model)]
    raise ValueError(f"`endpoints` must name end points of this model ({available[0]} ... "
                     f"{available[-1]}). Received: endpoint={endpoint!r}")


def _model_endpoints(model):
    names = []
    suffixes = tuple(f"_{s}" for s in _ACTIVATION_LAYER_SUFFIX.values())
    for layer in model.layers:
        if layer.name.startswith("Conv2d_") and layer.name.endswith(suffixes):
            names.append(layer.name.rsplit("_", 1)[0])
        elif layer.name in ("Logits", "Predictions"):
            names.append(layer.name)
    return names


def MobileNetV1(input_shape=None,
                alpha=1.0,
                depth_multiplier=1,
                dropout=1e-3,
                include_top=True,
                weights=None,
                input_tensor=None,
                pooling=None,
                classes=1000,
                classifier_activation="softmax",
                name=None,
                *,
                min_depth=8,
                conv_defs=None,
                output_stride=None,
                padding="same",
                activation="relu6",
                checkpoint_weights="auto"):
    """Instantiates MobileNetV1 (Howard et al. 2017, arXiv:1704.04861).

    The keyword signature is a superset of ``keras.applications.MobileNet``,
    plus TF-slim's ``mobilenet_v1`` options. Layers are named after TF-slim's
    end points: ``Conv2d_0``, ``Conv2d_1_depthwise``, ``Conv2d_1_pointwise``,
    ..., ``Conv2d_13_pointwise``, then ``AvgPool_1a``, ``Dropout_1b``,
    ``Logits`` (a 1x1 convolution with bias), ``Predictions``; each
    convolution is followed by ``<name>_BatchNorm`` and ``<name>_Relu6``.

    Args:
      input_shape: ``(height, width, channels)``, channels last; height and
        width ``None`` or >= 32 (any size, rectangular allowed; the head pools
        globally). Default: the shape of ``input_tensor``, else
        ``(224, 224, 3)`` with ``include_top`` and ``(None, None, 3)`` (any
        size) without, as ``keras.applications.MobileNet``.
      alpha: width multiplier α (> 0), Keras' name for TF-slim's
        ``depth_multiplier``: every layer has ``max(int(c * alpha), min_depth)``
        channels. 1.0, 0.75, 0.5, 0.25 are the paper's settings.
      depth_multiplier: depthwise channel multiplier (Keras' meaning, *not*
        the resolution multiplier and not TF-slim's depth_multiplier):
        depthwise layers output ``depth_multiplier`` channels per input channel.
      dropout: dropout rate before the classifier (slim's keep prob 0.999).
      include_top: add the classifier head.
      weights: ``None`` (random initialization, TF-slim's truncated normal);
        ``"imagenet"`` (Google's Keras applications file for this α and input
        size, downloaded into the Keras cache; published for α 0.25, 0.5,
        0.75, 1.0 x size 128, 160, 192, 224, square; an input of unknown size
        gets the 224 file, as in ``keras.applications``; with ``include_top``
        needs ``classes=1000``); or the path of a Keras 2 ``.h5`` file (with
        or without top), a TF-slim checkpoint prefix (``model.ckpt``; a
        1001-class head loads into ``classes=1000`` without its background
        row), or this project's ``.keras`` / ``.weights.h5`` file. With
        ``include_top=False`` everything but the head is loaded. See
        ``mobilenet_tf.model.weights``; to load into a built model, or to skip a
        head of another class count, use ``mobilenet_tf.model.weights.load_weights``.
      input_tensor: optional Keras tensor (output of ``keras.Input``) to use
        as the image input.
      pooling: with ``include_top=False``: ``None`` (4D feature map), ``"avg"``
        or ``"max"`` global pooling.
      classes: number of classes; 1001 for TF-slim's background class.
      classifier_activation: activation of the top layer (``"softmax"``,
        ``None`` for logits, or any Keras activation). With pretrained
        ``weights`` and ``include_top``, only ``"softmax"`` or ``None`` (as
        ``keras.applications``: the weights were trained for a softmax).
      name: model name; default ``mobilenet_v1_<alpha>_<rows>``.
      min_depth: minimum channels of any layer at small α (TF-slim).
      conv_defs: the architecture table (see ``mobilenet_tf.model.architecture``),
        or ``"mobilenet_v1"`` (default, Table 1), ``"conv_mobilenet"``
        (Table 4), ``"shallow_mobilenet"`` (Table 5).
      output_stride: ``None``, 8, 16 or 32. Once the network's stride reaches
        it, later layers use stride 1 and dilated depthwise convolutions.
      padding: ``"same"`` (TF 'SAME', as Google's released checkpoints) or
        ``"symmetric"`` (TF-slim's ``use_explicit_padding``). With a known
        input size, "same" strided layers get TF 'SAME''s pads as an explicit
        ``<name>_pad`` layer and a VALID convolution: the same numbers, and
        about 10% faster bfloat16 training on CPU (oneDNN) than a strided SAME
        convolution; with an unknown size they use 'SAME' itself.
      activation: ``"relu6"`` (the original implementation and its
        checkpoints) or ``"relu"`` (the paper's text).
      checkpoint_weights: for a TF-slim checkpoint in ``weights``:
        ``"average"`` (its ExponentialMovingAverage shadows, what TF-slim's
        evaluation and the published accuracy use), ``"raw"`` (the trained
        variables themselves) or ``"auto"`` (default: the averages when the
        checkpoint has them). Loading a checkpoint prints which were used.

    Returns:
      A ``keras.Model``.

    Raises:
      ValueError: for any invalid argument, before any layer is built; the
        message names the argument and ends with ``Received: name=value``.
        An unusable ``weights`` (no published file for this α/size, a path
        that does not exist or is not a weights file) is also refused before
        building; a weights file that does not fit the model (a missing
        variable, another shape) raises ``mobilenet_tf.model.weights.WeightsError``
        (a ValueError) naming the variable and both shapes.
    """
    alpha = validation.check_alpha(alpha)
    depth_multiplier = validation.check_depth_multiplier(depth_multiplier)
    dropout = validation.check_dropout(dropout)
    if not isinstance(include_top, bool):
        raise ValueError(f"`include_top` must be True or False. Received: include_top={include_top!r}")
    pooling = validation.check_pooling(pooling)
    classes = validation.check_classes(classes)
    min_depth = validation.check_min_depth(min_depth)
    conv_defs = validation.check_conv_defs(conv_defs)
    output_stride = validation.check_output_stride(output_stride)
    padding = validation.check_padding(padding)
    activation = validation.check_activation(activation)
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("MobileNetV1 supports image_data_format 'channels_last' only (TensorFlow "
                         "has no channels-first depthwise convolution on CPU). Received: "
                         f"image_data_format={keras.config.image_data_format()!r}")
    try:
        keras.activations.get(classifier_activation)
    except (ValueError, TypeError):
        raise ValueError("`classifier_activation` must be None, a Keras activation name or a "
                         f"callable. Received: classifier_activation={classifier_activation!r}") from None
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"`name` must be a non-empty string without '/'. Received: name={name!r}")

    if input_tensor is not None:
        try:
            tensor_shape = tuple(input_tensor.shape)
        except AttributeError:
            raise ValueError("`input_tensor` must be a Keras or TensorFlow tensor. "
                             f"Received: input_tensor={input_tensor!r}") from None
        if len(tensor_shape) != 4:
            raise ValueError("`input_tensor` must have shape (batch, height, width, channels). "
                             f"Received: input_tensor.shape={tensor_shape}")
        if input_shape is None:
            input_shape = tensor_shape[1:]
    if input_shape is None:
        # keras.applications' imagenet_utils.obtain_input_shape: a fixed default size is
        # needed for the head only; without it, any size.
        input_shape = (224, 224, 3) if include_top else (None, None, 3)
    input_shape = validation.check_input_shape(input_shape)
    weights_source = _check_weights(weights, checkpoint_weights, alpha=alpha,
                                    input_shape=input_shape, include_top=include_top,
                                    classes=classes, depth_multiplier=depth_multiplier,
                                    conv_defs=conv_defs)
    if weights is not None and include_top:
        _check_pretrained_activation(classifier_activation)

    if input_tensor is None:
        img_input = keras.Input(shape=input_shape, name="input")
        inputs = img_input
    elif keras.backend.is_keras_tensor(input_tensor):
        img_input = input_tensor
        inputs = keras.utils.get_source_inputs(input_tensor)
    else:
        img_input = keras.Input(tensor=input_tensor, shape=input_shape, name="input")
        inputs = img_input

    layers = architecture.plan(conv_defs, alpha=alpha, depth_multiplier=depth_multiplier,
                               min_depth=min_depth, output_stride=output_stride,
                               input_size=input_shape[:2], in_channels=input_shape[2])
    initializer = keras.initializers.TruncatedNormal(stddev=INIT_STDDEV)
    x = img_input
    for layer in layers:
        x = _conv_block(x, layer, padding, activation, initializer)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="AvgPool_1a")(x)
        x = keras.layers.Dropout(dropout, name="Dropout_1b")(x)
        x = keras.layers.Conv2D(classes, (1, 1), use_bias=True, kernel_initializer=initializer,
                                name="Logits")(x)
        x = keras.layers.Reshape((classes,), name="SpatialSqueeze")(x)
        x = keras.layers.Activation(classifier_activation, name="Predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="global_pool")(x)

    if name is None:
        rows = input_shape[0] if input_shape[0] is not None else "any"
        name = f"mobilenet_v1_{alpha:g}_{rows}"
    model = keras.Model(inputs, x, name=name)
    if weights_source is not None:
        from mobilenet_tf.model import weights as weights_lib
        report = weights_lib.load_weights(model, weights_source,
                                          checkpoint_weights=checkpoint_weights, verbose=False)
        if report.checkpoint_weights or report.unused or report.notes:  # which weights; leftovers
            print("\n".join(report.lines()))
    return model


def feature_extractor(model=None, endpoints=("Conv2d_11_pointwise", "Conv2d_13_pointwise"),
                      **builder_kwargs):
    """A ``keras.Model`` whose outputs are intermediate TF-slim end points.

    Args:
      model: a model built by :func:`MobileNetV1`; if None, one is built with
        ``builder_kwargs`` (``include_top`` defaults to False).
      endpoints: end point names, e.g. ``("Conv2d_11_pointwise",
        "Conv2d_13_pointwise")`` for an SSD-style detection head. Each names
        the output after batch norm and activation, as in TF-slim. With the
        head, ``"Logits"`` is TF-slim's: the pre-softmax logits squeezed to
        ``(batch, classes)``; ``"AvgPool_1a"`` is ``(batch, 1, 1, channels)``.
      **builder_kwargs: forwarded to :func:`MobileNetV1` when ``model`` is None.

    Returns:
      A ``keras.Model`` sharing the layers (and weights) of ``model``, with a
      dict of outputs ``{endpoint: tensor}`` in the order given.

    Raises:
      ValueError: if an end point is not in the model.
    """
    if isinstance(endpoints, str):
        endpoints = (endpoints,)
    endpoints = tuple(endpoints)
    if not endpoints:
        raise ValueError("`endpoints` must name at least one end point. Received: endpoints=()")
    if model is None:
        builder_kwargs.setdefault("include_top", False)
        model = MobileNetV1(**builder_kwargs)
    elif builder_kwargs:
        raise ValueError(f"Pass either `model` or builder arguments, not both. Received: "
                         f"{sorted(builder_kwargs)}")
    outputs = {e: model.get_layer(endpoint_layer_name(model, e)).output for e in endpoints}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
