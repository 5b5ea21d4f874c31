"""The Keras builder against its oracles: keras.applications.MobileNet, TF-slim's
mobilenet_v1_test.py end point tables, and the cost calculator."""

import re

import keras
import numpy as np
import pytest

import mobilenet_tf
import numerics
from mobilenet_tf.model import architecture
from mobilenet_tf.model import costs

ALPHAS = (1.0, 0.75, 0.5, 0.25)
SIZES = (224, 192, 160, 128)

# TF-slim mobilenet_v1_test.py, testBuildAndCheckAllEndPointsUptoConv2d_13 (batch 5, 224x224).
ENDPOINT_SHAPES_224 = {
    "Conv2d_0": (112, 112, 32),
    "Conv2d_1_depthwise": (112, 112, 32), "Conv2d_1_pointwise": (112, 112, 64),
    "Conv2d_2_depthwise": (56, 56, 64), "Conv2d_2_pointwise": (56, 56, 128),
    "Conv2d_3_depthwise": (56, 56, 128), "Conv2d_3_pointwise": (56, 56, 128),
    "Conv2d_4_depthwise": (28, 28, 128), "Conv2d_4_pointwise": (28, 28, 256),
    "Conv2d_5_depthwise": (28, 28, 256), "Conv2d_5_pointwise": (28, 28, 256),
    "Conv2d_6_depthwise": (14, 14, 256), "Conv2d_6_pointwise": (14, 14, 512),
    "Conv2d_7_depthwise": (14, 14, 512), "Conv2d_7_pointwise": (14, 14, 512),
    "Conv2d_8_depthwise": (14, 14, 512), "Conv2d_8_pointwise": (14, 14, 512),
    "Conv2d_9_depthwise": (14, 14, 512), "Conv2d_9_pointwise": (14, 14, 512),
    "Conv2d_10_depthwise": (14, 14, 512), "Conv2d_10_pointwise": (14, 14, 512),
    "Conv2d_11_depthwise": (14, 14, 512), "Conv2d_11_pointwise": (14, 14, 512),
    "Conv2d_12_depthwise": (7, 7, 512), "Conv2d_12_pointwise": (7, 7, 1024),
    "Conv2d_13_depthwise": (7, 7, 1024), "Conv2d_13_pointwise": (7, 7, 1024),
}
# testOutputStride16BuildAndCheckAllEndPointsUptoConv2d_13: Conv2d_12 onwards stays at 14x14.
ENDPOINT_SHAPES_OS16 = dict(ENDPOINT_SHAPES_224, **{
    "Conv2d_12_depthwise": (14, 14, 512), "Conv2d_12_pointwise": (14, 14, 1024),
    "Conv2d_13_depthwise": (14, 14, 1024), "Conv2d_13_pointwise": (14, 14, 1024)})
# testOutputStride8BuildAndCheckAllEndPointsUptoConv2d_13: Conv2d_6 onwards stays at 28x28.
ENDPOINT_SHAPES_OS8 = dict(ENDPOINT_SHAPES_224, **{
    name: (28, 28, shape[2]) for name, shape in ENDPOINT_SHAPES_224.items()
    if int(name.split("_")[1]) >= 6})

# Slim's testModelHasExpectedNumberOfParameters: 3,217,920 with slim.batch_norm's default
# scale=False (β, moving mean, moving variance: 3 per channel); Keras' batch norm also has γ.
SLIM_BASE_PARAMS_NO_GAMMA = 3_217_920
BASE_BATCHNORM_CHANNELS = 10_944


@pytest.fixture(scope="module")
def base_224():
    return mobilenet_tf.MobileNetV1(input_shape=(224, 224, 3), include_top=False)


def _endpoint_shapes(model, names):
    features = mobilenet_tf.feature_extractor(model, endpoints=names)
    return {name: tuple(tensor.shape[1:]) for name, tensor in features.output.items()}


def test_endpoint_names_and_shapes_at_224(base_224):
    assert architecture.endpoint_names() == list(ENDPOINT_SHAPES_224)
    assert _endpoint_shapes(base_224, list(ENDPOINT_SHAPES_224)) == ENDPOINT_SHAPES_224


@pytest.mark.parametrize("output_stride,expected", [(16, ENDPOINT_SHAPES_OS16), (8, ENDPOINT_SHAPES_OS8),
                                                    (32, ENDPOINT_SHAPES_224)])
def test_output_stride_shapes(output_stride, expected):
    model = mobilenet_tf.MobileNetV1(input_shape=(224, 224, 3), include_top=False,
                                     output_stride=output_stride)
    assert _endpoint_shapes(model, list(expected)) == expected
    rates = {layer.name: layer.dilation_rate for layer in model.layers
             if isinstance(layer, keras.layers.DepthwiseConv2D)}
    if output_stride == 8:
        assert rates["Conv2d_5_depthwise"] == (1, 1)
        assert rates["Conv2d_6_depthwise"] == (1, 1)   # would have had stride 2
        assert rates["Conv2d_7_depthwise"] == (2, 2)
        assert rates["Conv2d_13_depthwise"] == (4, 4)
    assert model.count_params() == base_params_with_bn(1.0, 224)


def base_params_with_bn(alpha, size):
    return costs.count(alpha=alpha, image_size=size, include_top=False).params_with_batchnorm


def test_base_parameter_count_matches_slim(base_224):
    assert base_224.count_params() == SLIM_BASE_PARAMS_NO_GAMMA + BASE_BATCHNORM_CHANNELS
    assert base_224.count_params() == 3_185_088 + 4 * BASE_BATCHNORM_CHANNELS


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("size", SIZES)
def test_parameter_count_equals_keras_applications(alpha, size):
    ours = mobilenet_tf.MobileNetV1(alpha=alpha, input_shape=(size, size, 3))
    reference = keras.applications.MobileNet(weights=None, alpha=alpha,
                                             input_shape=(size, size, 3))
    assert ours.count_params() == reference.count_params()
    assert ours.count_params() == costs.count(alpha=alpha, image_size=size).params_with_batchnorm
    slim_head = mobilenet_tf.MobileNetV1(alpha=alpha, input_shape=(size, size, 3), classes=1001)
    assert slim_head.count_params() == costs.count(
        alpha=alpha, image_size=size, classes=1001).params_with_batchnorm
    assert slim_head.output_shape == (None, 1001)


def test_same_padding_equals_keras_applications_numerically():
    """With the same weights, our 'same' model computes what keras.applications computes."""
    ours = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), dropout=0.0)
    reference = keras.applications.MobileNet(weights=None, alpha=0.25, input_shape=(128, 128, 3),
                                             dropout=0.0)
    ref_layers = [layer for layer in reference.layers if layer.weights]
    our_layers = [layer for layer in ours.layers if layer.weights]
    assert len(ref_layers) == len(our_layers)
    rng = np.random.default_rng(0)
    for ref, our in zip(ref_layers, our_layers):
        values = [rng.normal(0, 0.1, w.shape).astype("float32") for w in ref.get_weights()]
        if isinstance(ref, keras.layers.BatchNormalization):
            values[3] = np.abs(values[3]) + 0.5    # positive variances
        ref.set_weights(values)
        our.set_weights(values)
    images = rng.uniform(-1, 1, (4, 128, 128, 3)).astype("float32")
    # The same operations on the same shapes in the same order: the same floats, bit for bit.
    np.testing.assert_array_equal(ours.predict(images, verbose=0),
                                  reference.predict(images, verbose=0))


@pytest.mark.parametrize("shape", [(97, 101, 3), (128, 128, 3)])
def test_explicit_same_pads_equal_tf_same(shape):
    """Strided layers of a fixed-size model pad explicitly (faster under bfloat16 on oneDNN);
    the pads must be TF 'SAME''s, which a model of unknown size uses natively."""
    fixed = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=shape, include_top=False,
                                     output_stride=16)
    native = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(None, None, 3), include_top=False,
                                      output_stride=16)
    assert "Conv2d_0_pad" in {layer.name for layer in fixed.layers}
    assert "Conv2d_0_pad" not in {layer.name for layer in native.layers}
    _lively_weights(fixed)
    native.set_weights(fixed.get_weights())
    images = _random_images(shape)
    # Same sums in another kernel (explicit pad + VALID vs SAME): float32 rounding of ReLU6
    # outputs (at most 6) through the network's reductions (tests/numerics.py).
    out = fixed.predict(images, verbose=0)
    bound = numerics.float32_bound(fixed, 6.0)
    assert np.abs(out).mean() > 30 * bound      # features of a scale the bound can tell apart
    np.testing.assert_allclose(out, native.predict(images, verbose=0), rtol=0, atol=bound)
    # 97 = 2·48 + 1: SAME pads 1 and 1; 128: 0 before, 1 after (Keras applications' pads).
    expected = {97: (1, 1), 101: (1, 1), 128: (0, 1)}
    assert fixed.get_layer("Conv2d_0_pad").padding == (expected[shape[0]], expected[shape[1]])


def test_layer_names_follow_slim_end_points():
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3))
    conv_names = [layer.name for layer in model.layers
                  if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    assert conv_names == architecture.endpoint_names() + ["Logits"]
    names = {layer.name for layer in model.layers}
    for endpoint in architecture.endpoint_names():
        assert {f"{endpoint}_BatchNorm", f"{endpoint}_Relu6"} <= names
    assert model.name == "mobilenet_v1_0.25_128"
    assert [layer.name for layer in model.layers[-5:]] == [
        "AvgPool_1a", "Dropout_1b", "Logits", "SpatialSqueeze", "Predictions"]


def test_slim_training_constants():
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert (layer.momentum, layer.epsilon) == (0.9997, 1e-3)
            assert layer.center and layer.scale
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            assert not layer.use_bias
            init = layer.depthwise_initializer
            assert isinstance(init, keras.initializers.TruncatedNormal) and init.stddev == 0.09
        elif isinstance(layer, keras.layers.Conv2D):
            assert layer.use_bias == (layer.name == "Logits")
            assert isinstance(layer.kernel_initializer, keras.initializers.TruncatedNormal)
            assert layer.kernel_initializer.stddev == 0.09
    # Keras' TruncatedNormal(0.09) redraws beyond 2 standard deviations: |w| <= 0.18, and the
    # mean of N draws is within 5 standard errors (the truncated normal's sd is 0.88 · 0.09).
    kernel = model.get_layer("Conv2d_13_pointwise").kernel.numpy().astype(np.float64)
    assert abs(kernel.mean()) <= 5 * 0.88 * 0.09 / np.sqrt(kernel.size)
    assert np.abs(kernel).max() <= 2 * 0.09 * (1 + 2 * numerics.U32)


@pytest.mark.parametrize("shape", [(160, 128, 3), (97, 224, 3), (32, 32, 3)])
def test_rectangular_and_small_inputs(shape):
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=shape, include_top=False)
    h, w = -(-shape[0] // 32), -(-shape[1] // 32)
    assert model.output_shape == (None, h, w, 256)
    assert model.count_params() == base_params_with_bn(0.25, shape[:2])
    out = model.predict(np.zeros((1,) + shape, "float32"), verbose=0)
    assert out.shape == (1, h, w, 256)


@pytest.mark.parametrize("size", [(128, 128), (130, 97)])
def test_include_top_false_without_input_shape_takes_any_size(size):
    """As keras.applications.MobileNet (imagenet_utils.obtain_input_shape): without the head
    and without `input_shape` the input is (None, None, 3), and at any size it computes what
    a model built at that size computes with the same weights (TF SAME at every size)."""
    reference = keras.applications.MobileNet(weights=None, alpha=0.25, include_top=False)
    model = mobilenet_tf.MobileNetV1(alpha=0.25, include_top=False)
    assert model.input_shape == reference.input_shape == (None, None, None, 3)
    assert mobilenet_tf.MobileNetV1(alpha=0.25).input_shape == (None, 224, 224, 3)
    _lively_weights(model)
    fixed = mobilenet_tf.MobileNetV1(alpha=0.25, include_top=False, input_shape=size + (3,))
    fixed.set_weights(model.get_weights())
    # The fixed model pads strided layers explicitly, the any-size one uses 'same' itself.
    assert "Conv2d_0_pad" in {layer.name for layer in fixed.layers}
    assert model.get_layer("Conv2d_0").padding == "same"
    images = _random_images(size + (3,))
    out = model.predict(images, verbose=0)
    assert out.shape == (2, -(-size[0] // 32), -(-size[1] // 32), 256)    # TF SAME: ceil(n/32)
    # Same sums in another kernel (explicit pad + VALID vs SAME): each of the two float32
    # evaluations errs by at most u·ΣK·6 on ReLU6 outputs, ΣK the network's reduction lengths
    # (tests/numerics.py), so they differ by at most twice that.
    bound = numerics.float32_bound(fixed, 6.0)
    assert np.abs(out).mean() > 30 * bound      # features of a scale the bound can tell apart
    np.testing.assert_allclose(out, fixed.predict(images, verbose=0), rtol=0, atol=bound)


def test_unknown_size_with_global_pooling():
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(None, None, 3), classes=10)
    assert model.name == "mobilenet_v1_0.25_any"
    for size in [(64, 64), (96, 160)]:
        probs = model.predict(np.zeros((2,) + size + (3,), "float32"), verbose=0)
        assert probs.shape == (2, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0,
                                   atol=numerics.softmax_sum_bound(10))


@pytest.mark.parametrize("pooling,shape", [(None, (None, 4, 4, 256)), ("avg", (None, 256)),
                                           ("max", (None, 256))])
def test_no_top_pooling(pooling, shape):
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False,
                                     pooling=pooling)
    assert model.output_shape == shape


def test_head_options_and_input_tensor():
    logits = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), classes=1001,
                                      classifier_activation=None)
    out = logits.predict(np.ones((1, 64, 64, 3), "float32"), verbose=0)
    assert out.shape == (1, 1001) and not np.allclose(out.sum(), 1.0)
    tensor = keras.Input(shape=(96, 96, 3))
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_tensor=tensor, include_top=False)
    assert model.inputs[0] is tensor and model.output_shape == (None, 3, 3, 256)


def test_relu_activation_and_symmetric_padding():
    relu = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), activation="relu")
    assert "Conv2d_0_Relu" in {layer.name for layer in relu.layers}
    assert relu.get_layer("Conv2d_0_Relu").max_value is None
    sym = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), padding="symmetric")
    assert sym.get_layer("Conv2d_0_pad").padding == ((1, 1), (1, 1))
    assert sym.get_layer("Conv2d_0").padding == "valid"
    assert sym.count_params() == relu.count_params()
    dilated = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), padding="symmetric",
                                       output_stride=8, include_top=False)
    # A 3x3 kernel dilated by 4 covers 9 pixels: pad 4 on each side.
    assert dilated.get_layer("Conv2d_13_depthwise_pad").padding == ((4, 4), (4, 4))
    assert dilated.output_shape == (None, 8, 8, 256)


@pytest.mark.parametrize("conv_defs", ["conv_mobilenet", "shallow_mobilenet"])
def test_variants_build_as_conv_defs(conv_defs):
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), conv_defs=conv_defs)
    assert model.count_params() == costs.count(alpha=0.25, image_size=64,
                                               conv_defs=conv_defs).params_with_batchnorm
    explicit = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3),
                                        conv_defs=list(architecture.NAMED_CONV_DEFS[conv_defs]))
    assert explicit.count_params() == model.count_params()


def test_depth_multiplier_and_min_depth():
    model = mobilenet_tf.MobileNetV1(alpha=0.1, depth_multiplier=2, min_depth=16,
                                     input_shape=(64, 64, 3), include_top=False)
    assert model.get_layer("Conv2d_0").filters == 16            # max(int(32*0.1), 16)
    assert model.get_layer("Conv2d_1_depthwise").output.shape[-1] == 32
    assert model.count_params() == costs.count(alpha=0.1, depth_multiplier=2, min_depth=16,
                                               image_size=64, include_top=False).params_with_batchnorm


@pytest.mark.parametrize("rate", [0.0, 0.37])
def test_dropout_reaches_the_layer_before_the_classifier(rate):
    """The builder's `dropout` is the rate of Dropout_1b, which feeds Logits; in training mode
    it zeroes that share of the pooled features (2048 of them: 5 standard deviations of the
    binomial share lie within ±5.3%) and scales the kept ones by 1/(1 - rate)."""
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), dropout=rate)
    layer = model.get_layer("Dropout_1b")
    assert layer.rate == rate
    assert model.get_layer("Logits").input is layer.output
    features = np.ones((8, 1, 1, 256), np.float32)
    out = np.asarray(layer(features, training=True))
    dropped = float((out == 0).mean())
    assert abs(dropped - rate) <= 5 * numerics.binomial_sd(out.size, rate) / out.size
    np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=numerics.U32 * 4)


def _random_images(shape, n=2):
    return np.random.default_rng(1).uniform(-1, 1, (n,) + shape).astype("float32")


def _lively_weights(model, seed=0):
    """Sets He-scaled kernels (N(0, 2/fan_in)), random batch-norm offsets and head biases, so
    that activations keep their scale through the 27 layers: with the builder's initializer
    (stddev 0.09, a variance gain of fan_in·0.09²/2 < 1 per layer) the feature maps of a fresh
    α=0.25 model shrink to about 1e-14, and any comparison of them passes."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = layer.get_weights()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            shape = values[0].shape
            fan_in = int(np.prod(shape[:2] if isinstance(layer, keras.layers.DepthwiseConv2D)
                                 else shape[:-1]))
            values[0] = rng.normal(0, np.sqrt(2 / fan_in), shape).astype("float32")
            values[1:] = [rng.normal(0, 0.1, v.shape).astype("float32") for v in values[1:]]
        elif isinstance(layer, keras.layers.BatchNormalization):
            values[1] = rng.normal(0, 0.1, values[1].shape).astype("float32")    # beta
        layer.set_weights(values)


def test_get_config_from_config_round_trip():
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), classes=7)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    images = _random_images((64, 64, 3))
    np.testing.assert_array_equal(clone.predict(images, verbose=0), model.predict(images, verbose=0))
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), classes=5,
                                     padding="symmetric", output_stride=16)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = _random_images((64, 64, 3))
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


def test_feature_extractor_builds_and_shares_weights():
    features = mobilenet_tf.feature_extractor(alpha=0.25, input_shape=(128, 128, 3))
    assert {k: tuple(v.shape) for k, v in features.output.items()} == {
        "Conv2d_11_pointwise": (None, 8, 8, 128), "Conv2d_13_pointwise": (None, 4, 4, 256)}
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3))
    head = mobilenet_tf.feature_extractor(model, endpoints=["Conv2d_13_pointwise", "Logits"])
    outputs = head.predict(_random_images((64, 64, 3)), verbose=0)
    assert outputs["Logits"].shape == (2, 1000)
    assert head.get_layer("Conv2d_0") is model.get_layer("Conv2d_0")


def test_logits_end_point_is_slims_squeezed_logits():
    """TF-slim's mobilenet_v1: end_points['Logits'] = tf.squeeze(net, [1, 2]), the
    pre-softmax logits as (batch, classes); AvgPool_1a stays 4-D (batch, 1, 1, channels)."""
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), classes=10)
    _lively_weights(model)
    features = mobilenet_tf.feature_extractor(model, endpoints=("AvgPool_1a", "Logits"))
    assert {k: tuple(v.shape) for k, v in features.output.items()} == {
        "AvgPool_1a": (None, 1, 1, 256), "Logits": (None, 10)}
    logits_model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), classes=10,
                                            classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    images = _random_images((64, 64, 3))
    outputs = features.predict(images, verbose=0)
    logits = logits_model.predict(images, verbose=0)
    assert outputs["Logits"].shape == (2, 10)
    # The same layers on the same input, evaluated twice in float32: they agree to
    # 2·u·ΣK·(logit scale), ΣK the network's reduction lengths (tests/numerics.py).
    bound = numerics.float32_bound(model, np.abs(logits).max())
    assert np.abs(logits).mean() > 30 * bound   # logits of a scale the bound can tell apart
    np.testing.assert_allclose(outputs["Logits"], logits, rtol=0, atol=bound)
    # Independently: the Logits 1x1 convolution of the pooled features, redone in float64.
    # Float32 computes that dot product of 256 terms plus the bias with an error of at most
    # γ_257·Σ|terms| per logit, γ_n = n·u/(1 - n·u) <= 1.01·n·u (Higham §3.1).
    pooled = outputs["AvgPool_1a"].reshape(2, 256).astype(np.float64)
    kernel = model.get_layer("Logits").kernel.numpy().reshape(256, 10).astype(np.float64)
    bias = model.get_layer("Logits").bias.numpy().astype(np.float64)
    terms = np.abs(pooled) @ np.abs(kernel) + np.abs(bias)
    assert np.all(np.abs(outputs["Logits"] - (pooled @ kernel + bias))
                  <= 1.01 * (256 + 1) * numerics.U32 * terms)
    # And the model's probabilities are the softmax of these logits (|Δp| <= 2 p max|Δz|).
    probs = model.predict(images, verbose=0)
    z = outputs["Logits"].astype(np.float64)
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=0,
                               atol=2 * bound + numerics.softmax_sum_bound(10))


# --- errors: one line, the argument, the value, what is allowed; nothing built -----------------
@pytest.mark.parametrize("kwargs,pattern", [
    (dict(alpha=0), r"^`alpha` \(the width multiplier α\) must be a number > 0\. Received: alpha=0$"),
    (dict(alpha=-0.5), r"Received: alpha=-0\.5$"),
    (dict(alpha="1"), r"Received: alpha='1'$"),
    (dict(padding="valid"), r"^`padding` must be one of \('same', 'symmetric'\).*Received: padding='valid'$"),
    (dict(activation="swish"), r"^`activation` must be one of \('relu6', 'relu'\)\. Received: activation='swish'$"),
    (dict(include_top=False, pooling="min"), r"^`pooling` must be one of None, 'avg', 'max'\. Received: pooling='min'$"),
    (dict(output_stride=4), r"^`output_stride` must be None, 8, 16 or 32\. Received: output_stride=4$"),
    (dict(input_shape=(31, 224, 3)), r"^`input_shape` height and width must be None or >= 32\. Received: input_shape=\(31, 224, 3\)$"),
    (dict(input_shape=(224, 224)), r"^`input_shape` must be a \(height, width, channels\).*Received: input_shape=\(224, 224\)$"),
    (dict(classes=0), r"^`classes` must be an int >= 1 .*Received: classes=0$"),
    (dict(classes=2.5), r"Received: classes=2\.5$"),
    (dict(dropout=1.0), r"^`dropout` must be a rate in \[0, 1\)\. Received: dropout=1\.0$"),
    (dict(depth_multiplier=0), r"Received: depth_multiplier=0$"),
    (dict(min_depth=-1), r"^`min_depth` must be an int >= 1\. Received: min_depth=-1$"),
    (dict(conv_defs=[architecture.Conv((3, 3), 0, 32)]), r"^`conv_defs` row 0 stride must be a positive int\. Received: conv_defs\[0\]\.stride=0$"),
    (dict(conv_defs=[architecture.DepthSepConv((3, 3, 3), 1, 32)]), r"^`conv_defs` row 0 kernel must be .*Received: conv_defs\[0\]\.kernel=\(3, 3, 3\)$"),
    (dict(conv_defs=[architecture.Conv(3, 2, 32), ("Pool", (3, 3), 1, 32)]), r"^`conv_defs` row 1 must be a Conv.*Received: conv_defs\[1\]=\('Pool', \(3, 3\), 1, 32\)$"),
    (dict(conv_defs=[architecture.Conv(3, 2, -8)]), r"^`conv_defs` row 0 depth must be a positive int\. Received: conv_defs\[0\]\.depth=-8$"),
    (dict(conv_defs=[]), r"^`conv_defs` must be a non-empty sequence"),
    (dict(weights="imagenet_typo"), r"`weights` .*Received: weights='imagenet_typo'"),
    (dict(classifier_activation="nope"), r"^`classifier_activation` must be .*Received: classifier_activation='nope'$"),
    (dict(weights="imagenet", alpha=0.25, input_shape=(128, 128, 3), classifier_activation="sigmoid"),
     r"^`classifier_activation` must be 'softmax' or None with pretrained `weights` and "
     r"include_top=True\. Received: classifier_activation='sigmoid'$"),
    (dict(name="a/b"), r"^`name` must be a non-empty string without '/'\. Received: name='a/b'$"),
])
def test_bad_arguments_raise_one_line_before_building(kwargs, pattern, monkeypatch):
    def no_layers(*args, **kw):
        raise AssertionError("a layer was built before the argument was rejected")
    # Any layer (the input layer first of all) built before validation fails fails the test.
    monkeypatch.setattr(keras.layers.Layer, "__new__", no_layers)
    with pytest.raises(ValueError, match=pattern) as info:
        mobilenet_tf.MobileNetV1(**kwargs)
    assert "\n" not in str(info.value)


# keras.applications' imagenet_utils.validate_activation is the oracle: with pretrained weights
# and the head, only activations that resolve to softmax or to None's (linear) are allowed.
ACTIVATIONS = ["softmax", None, "linear", keras.activations.softmax, "relu", "sigmoid",
               keras.activations.gelu, "log_softmax"]


def _keras_refuses(activation):
    from keras.src.applications import imagenet_utils   # validate_activation is not exported
    try:
        imagenet_utils.validate_activation(activation, "imagenet")
    except ValueError:
        return True
    return False


def test_pretrained_head_takes_softmax_or_none_only_as_keras(tmp_path, monkeypatch):
    trained = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), classes=3)
    path = str(tmp_path / "trained.weights.h5")
    trained.save_weights(path)
    refused = [a for a in ACTIVATIONS if _keras_refuses(a)]
    assert refused == ["relu", "sigmoid", keras.activations.gelu, "log_softmax"]
    pretrained = [dict(weights="imagenet", input_shape=(128, 128, 3)),
                  dict(weights=path, input_shape=(32, 32, 3), classes=3)]
    for activation in refused:
        for kwargs in pretrained:
            with monkeypatch.context() as m:   # refused before any layer is built
                m.setattr(keras.layers.Layer, "__new__", _no_layers)
                with pytest.raises(ValueError) as info:
                    mobilenet_tf.MobileNetV1(alpha=0.25, classifier_activation=activation, **kwargs)
            assert str(info.value) == (
                "`classifier_activation` must be 'softmax' or None with pretrained `weights` "
                f"and include_top=True. Received: classifier_activation={activation!r}")
    for activation in ACTIVATIONS:
        if activation not in refused:   # built, and the file's weights loaded
            model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), classes=3,
                                             weights=path, classifier_activation=activation)
            np.testing.assert_array_equal(model.get_layer("Logits").kernel,
                                          trained.get_layer("Logits").kernel)
    # Without pretrained weights, or without the head (Keras ignores classifier_activation
    # then), any Keras activation.
    assert mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), classes=3,
                                    classifier_activation="sigmoid").output_shape == (None, 3)
    assert mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), include_top=False,
                                    weights=path, classifier_activation="sigmoid").output_shape \
        == (None, 1, 1, 256)


def _no_layers(*args, **kw):
    raise AssertionError("a layer was built before the argument was rejected")


def test_conv_defs_tuple_rows_are_accepted():
    model = mobilenet_tf.MobileNetV1(alpha=1.0, input_shape=(32, 32, 3), include_top=False,
                                     conv_defs=[("Conv", 3, 2, 8), ("DepthSepConv", (3, 3), 2, 16)])
    assert model.output_shape == (None, 8, 8, 16)


def test_feature_extractor_unknown_endpoint():
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(64, 64, 3), include_top=False)
    with pytest.raises(ValueError, match=re.escape("Received: endpoint='Conv2d_14_pointwise'")):
        mobilenet_tf.feature_extractor(model, endpoints=["Conv2d_14_pointwise"])
