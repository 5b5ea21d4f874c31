"""TFLite export (mobilenet_tf.export: converter, verification, classifier_metadata, tflite) on real weights.

The α=0.25/128 ImageNet weights (``mobilenet_2_5_128_tf.h5``), the 50 labelled imagenet50
images (evaluation preprocessing: central crop 0.875, bilinear resize) and, for int8,
calibration on the 244 hymenoptera training photos (never on the test images). Each export is
converted once per module.

What each mode is held to, and where the bound comes from (see tests/numerics.py):

| mode          | oracle                                              | bound                                       |
|---------------|-----------------------------------------------------|---------------------------------------------|
| none          | the Keras model evaluated in float64                | √K_max × Keras' own float32 error, measured |
|               |                                                     | side by side (another summation order)      |
| float16       | float64 network with batch norm folded into the     | the same; the unrounded model (the wrong    |
|               | convolutions and those weights rounded to float16   | variant) is ~100× farther                   |
| dynamic_range | top-1 on the labels vs the float model              | the published float→int8 drop + 3 σ of the  |
| int8          |                                                     | paired difference (McNemar, this run)       |

int8 is also checked exactly where it can be: the calibrated range of every layer equals the
Keras activations' range on the calibration images, and the LiteRT runner's quantized inputs
and dequantized outputs equal the interpreter's own QUANTIZE / DEQUANTIZE.

The TFLite metadata (mobilenet_tf.export.metadata) of every input / output variant is read by MediaPipe's
own ImageClassifier (PyPI ``mediapipe``): its scores equal the LiteRT interpreter's on the input
tensor the metadata describes (exactly for integer arithmetic, to float32 rounding otherwise), with
ImageNet's name for every index; and decoded with the mediapipe wheel's generated schema module.
"""

import math
import os
import re

import numpy as np
import pytest

import numerics
import oracles
from mobilenet_tf import export
from mobilenet_tf.export import tflite
from mobilenet_tf.model import labels as labels_lib

SIZE = 128
NUM_CALIBRATION = 300   # all 244 usable hymenoptera training photos
# mode -> dtype of the stored convolution / fully-connected weights. Dynamic range quantizes a
# weight only from 1024 values up (the converter's threshold): at α=0.25 the depthwise kernels
# (3x3x8 .. 3x3x256) and the first pointwise ones stay float32.
WEIGHT_DTYPES = {"none": "float32", "float16": "float16", "dynamic_range": "int8", "int8": "int8"}
DYNAMIC_RANGE_MIN_ELEMENTS = 1024
NUM_WEIGHT_OPS = 28   # Conv2d_0, 13 depthwise, 13 pointwise, Logits (a 1x1 convolution)
# TF-slim's published ImageNet top-1 of mobilenet_v1_0.25_128, float vs trained quantized
# (research/slim/nets/mobilenet_v1.md): what 8-bit inference costs this network.
PUBLISHED_TOP1 = {"float": 0.415, "quant": 0.399}


@pytest.fixture(scope="module")
def weights_file(shared_data):
    return shared_data / "weights" / "mobilenet_2_5_128_tf.h5"


@pytest.fixture(scope="module")
def model(weights_file):
    import mobilenet_tf
    return mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(SIZE, SIZE, 3), weights=str(weights_file))


@pytest.fixture(scope="module")
def test_images(shared_data):
    loaded = export.load_images(f"folder:{shared_data / 'imagenet50'}", SIZE, 50)
    assert loaded.images.shape == (50, SIZE, SIZE, 3) and loaded.images.dtype == np.uint8
    return loaded


@pytest.fixture(scope="module")
def calibration(shared_data):
    return export.load_images(f"folder:{shared_data / 'hymenoptera'}", SIZE, NUM_CALIBRATION).images


def _keras(model, images):
    """The Keras probabilities as export.verify computes them (same batches, same rounding)."""
    return np.concatenate([
        np.asarray(model(export.to_unit_range(images[i:i + export.VERIFY_BATCH_SIZE]),
                         training=False))
        for i in range(0, len(images), export.VERIFY_BATCH_SIZE)]).astype(np.float64)


@pytest.fixture(scope="module")
def keras_probs(model, test_images):
    return _keras(model, test_images.images)


@pytest.fixture(scope="module")
def exact_probs(model, test_images):
    """The same model and images in float64: the reference float32 rounding is measured against."""
    twin = numerics.float64_copy(model)
    return np.asarray(twin(export.to_unit_range(test_images.images).astype(np.float64),
                           training=False))


@pytest.fixture(scope="module")
def float32_error(keras_probs, exact_probs):
    """Keras' own float32 rounding on these images: max |p32 - p64|."""
    error = float(np.abs(keras_probs - exact_probs).max())
    assert error > 0          # float32 cannot hold these probabilities exactly
    return error


@pytest.fixture(scope="module")
def order_factor(model):
    """How much farther from exact another float32 summation order may land: errors of sums of
    length K grow between ~log K·u (blocked) and ~√K·u (sequential), so √K_max."""
    return math.sqrt(max(numerics.reduction_lengths(model)))


@pytest.fixture(scope="module")
def exports(model, calibration):
    """mode -> .tflite bytes with the default tensor types (uint8 raw RGB in, float32 out)."""
    return {mode: export.convert(model, mode, calibration, num_calibration_images=NUM_CALIBRATION)
            for mode in export.QUANTIZATIONS}


@pytest.fixture(scope="module")
def int8_io(model, calibration, exports):
    """(input_type, output_type) -> int8 export calibrated as the default one, without the raw
    RGB input (input_type=None: the default export)."""
    cache = {(None, None): exports["int8"]}

    def get(input_type, output_type):
        if (input_type, output_type) not in cache:
            cache[input_type, output_type] = export.convert(
                model, "int8", calibration, input_type=input_type, output_type=output_type,
                raw_rgb_input=False, num_calibration_images=NUM_CALIBRATION)
        return cache[input_type, output_type]
    return get


def _top1_hits(probs, labels):
    return probs.argmax(axis=1) == labels


def _check_record(record, content, probs, keras_probs, labels, quantization):
    """export.verify's record reports the figures computed here from the same outputs."""
    diff = np.abs(probs.astype(np.float64) - keras_probs)
    n = len(labels)
    assert record.quantization == quantization and record.num_images == n
    assert round(record.top1_agreement * n) == int((probs.argmax(1) == keras_probs.argmax(1)).sum())
    # Same inputs, same interpreter, Keras in the same batches: the same numbers exactly.
    assert (record.max_abs_diff, record.mean_abs_diff) == (diff.max(), diff.mean())
    assert round(record.keras_top1 * n) == int(_top1_hits(keras_probs, labels).sum())
    assert round(record.tflite_top1 * n) == int(_top1_hits(probs, labels).sum())
    top5 = np.argsort(-probs, axis=1)[:, :5]
    assert round(record.tflite_top5 * n) == int((top5 == labels[:, None]).any(axis=1).sum())
    assert record.size_bytes == len(content) and record.threads_all == os.cpu_count()
    table = "\n".join(record.lines())
    for row in ("file size", "top-1 agreement", "top-1 Keras / TFLite", "top-5 Keras / TFLite",
                "max / mean", "median latency, 1 thread"):
        assert row in table


# --- float exports against an exact reference -------------------------------------------------------

@pytest.mark.slow
def test_float32_export_differs_from_keras_by_float32_rounding_only(
        exports, model, keras_probs, exact_probs, float32_error, order_factor, test_images):
    probs = tflite.TFLiteClassifier(exports["none"]).predict(test_images.images)
    bound = order_factor * float32_error
    error = float(np.abs(probs - exact_probs).max())
    print(f"float32 export: max |p - p_float64| {error:.3g}; Keras {float32_error:.3g}; "
          f"bound {bound:.3g}")
    assert error <= bound
    # Rounding cannot move a top-1 class whose lead over the second exceeds twice the bound.
    lead = np.diff(np.sort(exact_probs, axis=1)[:, -2:], axis=1)[:, 0]
    sure = lead > 2 * bound
    assert sure.sum() > len(sure) // 2          # most images can tell
    assert (probs.argmax(1) == exact_probs.argmax(1))[sure].all()
    # The bound tells a subtly wrong export apart: input scaled by 1/128 - 1 (Google's quantized
    # models' convention) instead of 1/127.5 - 1, 0.4% of the range, lands 100x outside it.
    wrong = np.asarray(model(test_images.images.astype(np.float32) / 128 - 1, training=False))
    assert np.abs(wrong - exact_probs).max() > 10 * bound
    record = export.verify(exports["none"], model, test_images.images, test_images.labels,
                           quantization="none", latency_runs=3)
    _check_record(record, exports["none"], probs, keras_probs, test_images.labels, "none")


def _folded_float16_twin(model):
    """A float64 copy of `model` computing what a float16-weight export stores: batch norm
    folded into the convolutions (kernel·γ/√(var+ε), β - mean·γ/√(var+ε), in float32) and
    every kernel and bias rounded to float16. Batch norm layers become the identity."""
    import keras
    twin = numerics.float64_copy(model)

    def half(x):
        return np.asarray(x, np.float32).astype(np.float16).astype(np.float64)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        conv = model.get_layer(layer.name[:-len("_BatchNorm")])
        gamma, beta, mean, variance = (np.asarray(w, np.float32) for w in layer.get_weights())
        scale = gamma / np.sqrt(variance + np.float32(layer.epsilon))
        kernel = np.asarray(conv.get_weights()[0], np.float32)
        kernel = kernel * (scale[:, None] if isinstance(conv, keras.layers.DepthwiseConv2D)
                           else scale)
        twin.get_layer(conv.name).set_weights([half(kernel)])
        twin.get_layer(layer.name).set_weights([
            np.ones_like(gamma, np.float64), half(beta - mean * scale),
            np.zeros_like(mean, np.float64), np.full(variance.shape, 1 - layer.epsilon)])
    twin.get_layer("Logits").set_weights([half(w) for w in model.get_layer("Logits").get_weights()])
    return twin


@pytest.mark.slow
def test_float16_export_is_the_float_model_with_float16_weights(
        exports, model, exact_probs, float32_error, order_factor, test_images):
    probs = tflite.TFLiteClassifier(exports["float16"]).predict(test_images.images)
    twin = _folded_float16_twin(model)
    expected = np.asarray(twin(export.to_unit_range(test_images.images).astype(np.float64),
                               training=False))
    bound = order_factor * float32_error
    error = float(np.abs(probs - expected).max())
    unrounded = float(np.abs(exact_probs - expected).max())      # the wrong variant: no float16
    print(f"float16 export: max |p - float16-weights twin| {error:.3g}, bound {bound:.3g}; "
          f"the float32 model is {unrounded:.3g} from the twin")
    assert error <= bound < unrounded


# --- quantized exports: accuracy against the float model ----------------------------------------------

def _allowed_drop(keras_hits, lite_hits):
    """Images of top-1 a quantized model may lose against the float one on this sample: the
    published float -> 8-bit drop, plus 3 standard deviations of the paired difference (under
    no difference, discordant images split evenly: var = their count; McNemar)."""
    discordant = int((keras_hits != lite_hits).sum())
    published = (PUBLISHED_TOP1["float"] - PUBLISHED_TOP1["quant"]) * len(keras_hits)
    return published + 3 * math.sqrt(discordant)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dynamic_range", "int8"])
def test_quantized_export_keeps_the_float_accuracy(mode, exports, model, keras_probs, test_images):
    probs = tflite.TFLiteClassifier(exports[mode]).predict(test_images.images)
    labels = test_images.labels
    keras_hits, lite_hits = _top1_hits(keras_probs, labels), _top1_hits(probs, labels)
    allowed = _allowed_drop(keras_hits, lite_hits)
    print(f"{mode}: top-1 {lite_hits.sum()}/50 vs Keras {keras_hits.sum()}/50 (allowed drop "
          f"{allowed:.1f}); top-1 agreement {(probs.argmax(1) == keras_probs.argmax(1)).sum()}/50")
    assert keras_hits.sum() - lite_hits.sum() <= allowed
    record = export.verify(exports[mode], model, test_images.images, labels, quantization=mode,
                           latency_runs=3)
    _check_record(record, exports[mode], probs, keras_probs, labels, mode)


@pytest.mark.slow
def test_accuracy_bound_rejects_a_miscalibrated_int8_export(model, keras_probs, test_images):
    """The known-wrong variant: int8 calibrated on black images (every range collapsed)."""
    black = np.zeros((8, SIZE, SIZE, 3), np.uint8)
    content = export.convert(model, "int8", black, num_calibration_images=8)
    probs = tflite.TFLiteClassifier(content).predict(test_images.images)
    keras_hits = _top1_hits(keras_probs, test_images.labels)
    lite_hits = _top1_hits(probs, test_images.labels)
    assert keras_hits.sum() - lite_hits.sum() > _allowed_drop(keras_hits, lite_hits)


@pytest.mark.slow
def test_keras_reference_accuracy(model, weights_file, keras_probs, test_images):
    """The float model's top-1 here is keras.applications.MobileNet's with the same file."""
    import keras
    reference = keras.applications.MobileNet(alpha=0.25, input_shape=(SIZE, SIZE, 3),
                                             weights=str(weights_file))
    expected = np.asarray(reference(export.to_unit_range(test_images.images), training=False))
    assert (keras_probs.argmax(1) == expected.argmax(1)).all()


# --- structure of every export ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("mode", export.QUANTIZATIONS)
def test_signature_shapes_and_weight_types(mode, exports, model):
    import keras
    runner = tflite.TFLiteClassifier(exports[mode])
    assert runner.signatures == {"serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}
    assert runner.image_size == (SIZE, SIZE) and runner.num_classes == 1000
    assert (runner.input_dtype, runner.output_dtype, runner.input_kind) == ("uint8", "float32", "raw_rgb")
    weights = oracles.stored_weight_dtypes(exports[mode], with_sizes=True)
    kernels = [layer.kernel for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    # Every kernel is stored once, whole, in its mode's type: the size the mode promises.
    assert sorted(size for _, size in weights) == sorted(int(np.prod(k.shape)) for k in kernels)
    assert len(weights) == NUM_WEIGHT_OPS
    for dtype, size in weights:
        small = mode == "dynamic_range" and size < DYNAMIC_RANGE_MIN_ELEMENTS
        assert dtype == ("float32" if small else WEIGHT_DTYPES[mode]), (mode, dtype, size)


# --- int8 really is integer -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("input_type,output_type", [
    (None, None),            # the default: uint8 camera bytes in, float32 out
    ("int8", "int8"),
    ("float32", "uint8"),
])
def test_int8_is_integer(input_type, output_type, int8_io):
    content = int8_io(input_type, output_type)
    interpreter, ops, tensors = oracles.tflite_ops_and_tensors(content)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert np.dtype(inp["dtype"]).name == (input_type or "uint8")
    assert np.dtype(out["dtype"]).name == (output_type or "float32")
    weight_ops = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(weight_ops) == NUM_WEIGHT_OPS
    for op in weight_ops:
        weight, bias = tensors[int(op["inputs"][1])], tensors[int(op["inputs"][2])]
        activation_in, activation_out = tensors[int(op["inputs"][0])], tensors[int(op["outputs"][0])]
        assert np.dtype(weight["dtype"]).name == "int8", weight["name"]
        assert np.dtype(bias["dtype"]).name == "int32", bias["name"]
        assert np.dtype(activation_in["dtype"]).name == "int8"
        assert np.dtype(activation_out["dtype"]).name == "int8"
        scales = weight["quantization_parameters"]["scales"]
        assert len(scales) == weight["shape"][0 if op["op_name"] == "CONV_2D" else 3] > 1, \
            "weights must be quantized per output channel"
    # Float only at the edges: at most a QUANTIZE in and a DEQUANTIZE out.
    float_ops = [op["op_name"] for op in ops
                 if any(np.dtype(tensors[int(i)]["dtype"]).name == "float32"
                        for i in list(op["inputs"]) + list(op["outputs"]) if int(i) >= 0)]
    assert set(float_ops) <= {"QUANTIZE", "DEQUANTIZE"} and len(float_ops) <= 2, float_ops


def _activation_ranges(content):
    """[(min, max)] of the int8 output of every convolution, in graph order, as calibrated."""
    _, ops, tensors = oracles.tflite_ops_and_tensors(content)
    ranges = []
    for op in ops:
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            scale, zero_point = tensors[int(op["outputs"][0])]["quantization"]
            ranges.append((scale * (-128 - zero_point), scale * (127 - zero_point)))
    return ranges


@pytest.mark.slow
def test_int8_calibration_is_the_range_of_the_calibration_images(model, calibration, int8_io):
    """The converter quantizes each activation over the [min, max] it saw while running the
    calibration images: for every fused conv + batch norm + ReLU6 that is [0, max] of the Keras
    activation on the same [-1, 1] images. Oracle: Keras on the images, scaled here by hand."""
    import keras
    ranges = _activation_ranges(int8_io("float32", "float32"))
    names = [layer.name for layer in model.layers if layer.name.endswith("_Relu6")]
    assert len(ranges) == len(names) + 1                    # + the Logits convolution
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    images = calibration[:NUM_CALIBRATION].astype(np.float32) / 127.5 - 1
    maxima = np.zeros(len(names))
    for i in range(0, len(images), 50):
        outs = probe(images[i:i + 50], training=False)
        maxima = np.maximum(maxima, [float(np.max(o)) for o in outs])
    for name, (low, high), expected in zip(names, ranges, maxima):
        # The converter snaps the range so that 0 is a code: max moves by under one step
        # (max/255); the activations differ from Keras' by float32 rounding only.
        assert abs(low) <= high / 255, name
        assert abs(high - expected) <= expected / 255, (name, high, expected)


@pytest.mark.slow
def test_raw_rgb_int8_input_takes_camera_bytes(exports):
    runner = tflite.TFLiteClassifier(exports["int8"])
    scale, zero_point = runner.input_quantization
    # 0..255 onto [-1, 1]: scale 2/255 up to float32 rounding of the converter's division.
    assert abs(scale - 2 / 255) <= 2 * numerics.U32 * (2 / 255) and zero_point in (127, 128)
    assert runner.input_kind == "raw_rgb"


@pytest.mark.slow
@pytest.mark.parametrize("input_type,output_type", [("int8", "int8"), ("uint8", "uint8"),
                                                    ("float32", "uint8")])
def test_runner_quantizes_like_the_interpreter(input_type, output_type, int8_io):
    """Inputs on the quantization grid, x = (q - zero point)·scale, through the float-in
    float-out export (its own QUANTIZE and DEQUANTIZE operators) and through `input_type` /
    `output_type` (the runner quantizes and dequantizes with the tensors' scale and zero
    point) give the same integer outputs: the same probabilities, exactly."""
    reference = tflite.TFLiteClassifier(int8_io("float32", "float32"))
    runner = tflite.TFLiteClassifier(int8_io(input_type, output_type))
    interpreter, ops, tensors = oracles.tflite_ops_and_tensors(reference.content)
    quantize = next(op for op in ops if op["op_name"] == "QUANTIZE")
    scale, zero_point = tensors[int(quantize["outputs"][0])]["quantization"]
    if input_type != "float32":
        in_scale, in_zero_point = runner.input_quantization
        assert in_scale == scale and in_zero_point - zero_point == (128 if input_type == "uint8"
                                                                    else 0)
    rng = np.random.default_rng(0)
    codes = rng.integers(-128, 128, (6, SIZE, SIZE, 3))
    grid = ((codes - zero_point) * scale).astype(np.float32)
    if runner.input_kind == "raw_rgb":      # uint8 with zero point 127/128: camera bytes
        inputs = (codes + 128).astype(np.uint8)
    else:
        inputs = grid
    expected, got = reference.predict(grid), runner.predict(inputs)
    np.testing.assert_array_equal(got, expected)
    if output_type != "float32":
        out_scale, out_zero_point = runner.output_quantization
        assert out_scale == pytest.approx(1 / 256, rel=numerics.U32)   # int8 softmax: [0, 1)
        codes_out = got / out_scale + out_zero_point
        np.testing.assert_array_equal(codes_out, np.round(codes_out))


def test_google_quantized_model_runs(shared_data, keras_probs, test_images):
    runner = tflite.TFLiteClassifier(shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite")
    assert (runner.input_dtype, runner.input_kind, runner.num_classes) == ("uint8", "raw_rgb", 1001)
    probs = runner.predict(test_images.images)[:, 1:]      # drop TF-slim's background class
    # Same trained network as the .h5 weights (which were made from it), in 8 bits.
    keras_hits = _top1_hits(keras_probs, test_images.labels)
    lite_hits = _top1_hits(probs, test_images.labels)
    assert keras_hits.sum() - lite_hits.sum() <= _allowed_drop(keras_hits, lite_hits)


@pytest.mark.slow
def test_saved_model_serves(model, test_images, keras_probs, tmp_path):
    import tensorflow as tf
    export.serving_archive(model, raw_rgb_input=True, batch_size=None).write_out(
        str(tmp_path / "sm"), verbose=False)
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    out = serve(images=tf.constant(test_images.images[:7]))["probabilities"].numpy()
    # The same float32 graph on another batch size: rounding only (softmax: 2 × the logits').
    logits = np.log(keras_probs[:7])
    scale = np.abs(logits - logits.mean(axis=1, keepdims=True)).max()
    assert np.abs(out - keras_probs[:7]).max() <= 2 * numerics.float32_bound(model, scale)


@pytest.mark.slow
def test_latency_is_the_median_of_the_timed_invokes(exports, monkeypatch):
    """latency_ms: warm-up invokes untimed, then the median of `runs` timed ones (fake clock)."""
    runner = tflite.TFLiteClassifier(exports["none"])
    # Each timed run reads the clock before and after its invoke: runs of 5, 9 and 4 ms
    # (mean 6, median 5).
    ticks = iter([0.100, 0.105, 0.200, 0.209, 0.300, 0.304])
    invokes = []
    monkeypatch.setattr(tflite.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(runner._interpreter, "invoke", lambda: invokes.append(1))
    assert runner.latency_ms(runs=3, warmup=2) == pytest.approx(5.0, rel=1e-9)
    assert len(invokes) == 5


# --- library errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(quantization="int8"), r"int8 needs representative_images"),
    (dict(quantization="int4"), r"`quantization` must be one of none, float16, dynamic_range, int8\. "
                                r"Received: quantization='int4'"),
    (dict(quantization="none", input_type="float32"), r"raw_rgb_input .* needs input_type=uint8"),
    (dict(quantization="float16", output_type="int8", raw_rgb_input=False),
     r"output_type=int8 is for quantization=int8"),
    (dict(quantization="int8", input_type="int16"), r"`input_type` must be one of uint8, int8, float32"),
    (dict(quantization="int8", representative_images=np.zeros((2, 64, 64, 3), np.uint8)),
     r"representative images must be 128x128x3 .* Received: shape=\(64, 64, 3\)"),
])
def test_convert_errors(model, kwargs, message):
    with pytest.raises(export.ExportError, match=message):
        export.convert(model, **kwargs)


def test_agreement_check_refuses():
    record = export.Verification("int8", 1, 50, 0.8, 0.1, 0.01, 1.0, 1.0, 2)
    export.check_agreement(record, 0.8)
    with pytest.raises(export.ExportError, match=r"top-1 class of only 40/50 images \(80\.0%\), "
                                                 r"below min_top1_agreement=0\.85"):
        export.check_agreement(record, 0.85)


def test_label_names():
    assert labels_lib.label_names(1000)[:2] == ["tench", "goldfish"]
    assert labels_lib.label_names(1001)[:2] == ["background", "tench"]
    assert labels_lib.label_names(3) == ["class_0", "class_1", "class_2"]
    assert labels_lib.label_names(2, ["ants", "bees"]) == ["ants", "bees"]


def test_tflite_runner_rejects_non_tflite(tmp_path):
    (tmp_path / "x.tflite").write_text("not a model")
    with pytest.raises(tflite.TFLiteError, match=r"x\.tflite is not a TFLite model"):
        tflite.TFLiteClassifier(tmp_path / "x.tflite")
    with pytest.raises(tflite.TFLiteError, match=r"no such TFLite file"):
        tflite.TFLiteClassifier(tmp_path / "missing.tflite")


# --- predict on a .tflite file ----------------------------------------------------------------------

def _predicted_ids(capsys, argv):
    from mobilenet_tf import predict
    assert predict.main(argv) == 0
    text = capsys.readouterr().out
    return re.findall(r"^  1\. .*\((n\d{8})\)$", text, flags=re.M)


@pytest.mark.slow
def test_predict_tflite_prints_the_models_top1(exports, model, weights_file, shared_data,
                                               float32_error, order_factor, tmp_path, capsys):
    """predict --model=X.tflite prints the class the .tflite file scores highest on predict's
    preprocessing (resize, no crop); for the float32 export that is the Keras model's class
    wherever float32 rounding cannot swap the first two."""
    from mobilenet_tf.model import imagenet
    from mobilenet_tf.data import preprocessing
    from mobilenet_tf.data import images
    files = sorted(str(p) for p in (shared_data / "imagenet50").glob("*.JPEG"))
    assert len(files) == 50
    prepared = np.stack([np.asarray(preprocessing.prepare_image(images.load_image(f), SIZE))
                         for f in files])
    wnids = np.asarray(imagenet.wordnet_ids())
    keras_ids = _predicted_ids(capsys, ["--weights", str(weights_file), "--alpha=0.25",
                                        "--image_size=128", "--top=1", *files])
    keras_probs = np.asarray(model(prepared, training=False))
    assert keras_ids == wnids[keras_probs.argmax(1)].tolist()
    printed = {}
    for mode in ("none", "int8"):
        path = tmp_path / f"{mode}.tflite"
        path.write_bytes(exports[mode])
        printed[mode] = _predicted_ids(capsys, [f"--model={path}", "--top=1", *files])
        scored = tflite.TFLiteClassifier(path).predict(prepared)
        assert printed[mode] == wnids[scored.argmax(1)].tolist(), mode
    lead = np.diff(np.sort(keras_probs, axis=1)[:, -2:], axis=1)[:, 0]
    sure = lead > 2 * order_factor * float32_error
    assert sure.sum() > len(sure) // 2
    assert (np.asarray(printed["none"]) == np.asarray(keras_ids))[sure].all()


# --- the metadata MediaPipe Tasks reads, checked with MediaPipe's own ImageClassifier -------------

# Every input / output variant MediaPipe takes (uint8 or float32 images in, float32 or uint8 scores
# out): variant -> (quantization, input_type, output_type, raw_rgb_input). float16 and dynamic
# range have the I/O of `none`: the same metadata on other weights and kernels.
MEDIAPIPE_VARIANTS = {
    "none": ("none", None, None, True),                      # uint8 bytes, scaled inside
    "float16": ("float16", None, None, True),
    "dynamic_range": ("dynamic_range", None, None, True),
    "int8": ("int8", None, None, True),                      # uint8 quantized so bytes = values
    "none_float32_input": ("none", "float32", None, False),  # float32: MediaPipe normalizes
    "int8_float32_in_uint8_out": ("int8", "float32", "uint8", False),
    "int8_uint8_in_uint8_out": ("int8", "uint8", "uint8", False),
}
# Integer arithmetic is exact in any order: two runtimes give the same codes. Float arithmetic
# differs by rounding only (another summation order: tests/numerics.py).
INTEGER_VARIANTS = {"int8", "int8_float32_in_uint8_out", "int8_uint8_in_uint8_out"}


@pytest.fixture(scope="module")
def variant_export(model, exports, int8_io):
    """variant -> the export's .tflite bytes, without and with metadata (ImageNet labels)."""
    cache = {}

    def get(variant):
        if variant not in cache:
            quantization, input_type, output_type, raw = MEDIAPIPE_VARIANTS[variant]
            if raw and input_type is None and output_type is None:
                content = exports[quantization]
            elif quantization == "int8":
                content = int8_io(input_type, output_type)
            else:
                content = export.convert(model, quantization, input_type=input_type,
                                         output_type=output_type, raw_rgb_input=raw)
            cache[variant] = content, export.with_metadata(content, model, None,
                                                           quantization=quantization)
        return cache[variant]
    return get


def _unit_range_normalization():
    """(mean, std) of the project's [0, 255] -> [-1, 1] scaling, from preprocess_input itself."""
    from mobilenet_tf.model import imagenet
    low, high = float(imagenet.preprocess_input(0.0)), float(imagenet.preprocess_input(255.0))
    std = 255.0 / (high - low)
    return -low * std, std


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(MEDIAPIPE_VARIANTS))
def test_mediapipe_classifies_each_variant_as_litert_does(variant, variant_export, model,
                                                          test_images, tmp_path):
    """MediaPipe's ImageClassifier on the file alone (names and normalization from its metadata)
    gives the LiteRT interpreter's scores on the input tensor the metadata describes, the same
    top-1 class, and ImageNet's name for every index."""
    plain, content = variant_export(variant)
    path = tmp_path / f"{variant}.tflite"
    path.write_bytes(content)
    assert export.mediapipe_problem(content) is None
    runner = tflite.TFLiteClassifier(content)
    images = test_images.images
    if runner.input_dtype == "float32":     # what MediaPipe makes of the image for that input
        tensor = oracles.mediapipe_float_input(images, *_unit_range_normalization())
    else:                                   # uint8: the image's bytes
        tensor = images
    lite = runner.predict(tensor).astype(np.float64)
    scores, top, names = oracles.mediapipe_classify(path, images)
    bound = 0.0 if variant in INTEGER_VARIANTS else numerics.float32_bound(model, 1.0)
    diff = float(np.abs(scores - lite).max())
    # MediaPipe's first category is LiteRT's top-1, up to a tie within the bound; the index
    # itself wherever LiteRT's first two are farther apart than the bound allows to swap.
    ranked = np.sort(lite, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] > 2 * bound
    same = top == lite.argmax(axis=1)
    print(f"{variant}: MediaPipe top-1 = LiteRT top-1 on {same.sum()}/{len(same)} images "
          f"({(~decisive).sum()} ties within {2 * bound:.3g}); max |score - LiteRT| {diff:.3g} "
          f"(bound {bound:.3g}); file {len(plain):,} -> {len(content):,} bytes with metadata")
    assert diff <= bound
    assert same[decisive].all() and decisive.sum() > len(decisive) // 2
    assert (lite[np.arange(len(top)), top] >= ranked[:, -1] - 2 * bound).all()
    assert names == dict(enumerate(labels_lib.label_names(1000)))


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(MEDIAPIPE_VARIANTS))
def test_metadata_fields_as_mediapipes_schema_reads_them(variant, variant_export):
    """The metadata decoded with the generated module of metadata_schema.fbs that ships in the
    mediapipe wheel (not this project's reader), field by field; the labels packed as a zip
    after the model; this project's reader agrees."""
    import io
    import zipfile
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mobilenet_tf.export import metadata
    _, content = variant_export(variant)
    runner = tflite.TFLiteClassifier(content)
    data = metadata._metadata_buffer(content)
    assert data[4:8] == b"M001"
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(data, 0))
    assert meta.name == b"mobilenet_v1_0.25_128" and meta.version == b"1"
    assert b"1000 ImageNet classes" in meta.description and meta.license is None
    assert meta.minParserVersion == b"1.0.0"
    (subgraph,) = meta.subgraphMetadata
    (image,), (scores,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert image.content.contentPropertiesType == fb.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == fb.ColorSpaceType.RGB
    mean, std = _unit_range_normalization()
    if runner.input_dtype == "uint8" and not runner.input_quantization[0]:
        assert image.processUnits is None          # the model scales the bytes itself
    else:                                          # float32, or quantized integers
        (unit,) = image.processUnits
        assert unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions
        assert (list(unit.options.mean), list(unit.options.std)) == ([mean], [std])
    low, high = (0.0, 255.0) if runner.input_dtype == "uint8" else (-1.0, 1.0)
    assert (list(image.stats.min), list(image.stats.max)) == ([low], [high])
    assert scores.content.contentPropertiesType == fb.ContentProperties.FeatureProperties
    (labels_file,) = scores.associatedFiles
    assert labels_file.type == fb.AssociatedFileType.TENSOR_AXIS_LABELS
    assert labels_file.name == b"labels.txt"
    top = 255.0 if runner.output_dtype == "uint8" else 1.0
    assert (list(scores.stats.min), list(scores.stats.max)) == ([0.0], [top])
    packed = zipfile.ZipFile(io.BytesIO(content))
    assert packed.namelist() == ["labels.txt"]
    assert packed.read("labels.txt").decode() == "\n".join(labels_lib.label_names(1000)) + "\n"
    ours = metadata.read_metadata(content)
    assert (ours.name, ours.min_parser_version, ours.labels) == (
        "mobilenet_v1_0.25_128", "1.0.0", labels_lib.label_names(1000))
    assert (ours.input.mean, ours.input.std, ours.input.min, ours.input.max) == (
        None if image.processUnits is None else (mean,), None if image.processUnits is None
        else (std,), (low,), (high,))


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(MEDIAPIPE_VARIANTS))
def test_metadata_leaves_the_network_unchanged(variant, variant_export, test_images):
    plain, content = variant_export(variant)
    before, after = tflite.TFLiteClassifier(plain), tflite.TFLiteClassifier(content)
    assert after.signatures == before.signatures and after.describe() == before.describe()
    np.testing.assert_array_equal(after.predict(test_images.images[:8]),
                                  before.predict(test_images.images[:8]))


@pytest.mark.slow
@pytest.mark.parametrize("input_type,output_type,refusal", [
    ("int8", "int8", (r"its input tensor is int8 \(MediaPipe takes uint8 or float32 images\)",
                      r"Requested one of these types: uint8/float32, got INT8")),
    ("uint8", "int8", (r"its output tensor is int8 \(MediaPipe reads uint8 or float32 scores\)",
                       r"Expected output tensor at index 0 to have type UINT8 or FLOAT32 or BOOL, "
                       r"found INT8")),
])
def test_mediapipe_refuses_int8_io_as_the_export_says(input_type, output_type, refusal, model,
                                                      int8_io, test_images, tmp_path):
    content = export.with_metadata(int8_io(input_type, output_type), model, None,
                                   quantization="int8")
    said, mediapipe_says = refusal
    assert re.fullmatch(r"will not load in MediaPipe Tasks' ImageClassifier: " + said,
                        export.mediapipe_problem(content))
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    with pytest.raises(Exception, match=mediapipe_says):
        oracles.mediapipe_classify(path, test_images.images[:1])
