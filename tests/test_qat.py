"""Quantization-aware training (mobilenet_tf.model.qat, train.py --quantize): the folded convolution is
batch norm of the convolution; one fake-quantized Conv2D and one DepthwiseConv2D compute what
TFLite's int8 kernels compute (the LiteRT interpreter is the oracle); a QAT run trains with a
quantization delay, resumes, logs its learned ranges, evaluates, saves a model.keras that plain
``keras.models.load_model`` reads, and exports a full-int8 file without calibration data.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mobilenet_tf import export
from mobilenet_tf import training
from mobilenet_tf.model import qat

EPS32 = float(np.finfo(np.float32).eps)


def _conv_and_norm(depthwise, channels_in=6, channels_out=5, seed=0):
    """A float conv (3x3, stride 2) and a batch norm with random, spread statistics."""
    rng = np.random.default_rng(seed)
    x = keras.Input((9, 9, channels_in))
    if depthwise:
        conv = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)
        channels_out = channels_in
    else:
        conv = keras.layers.Conv2D(channels_out, 3, strides=2, padding="same", use_bias=False)
    norm = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.9)
    float_model = keras.Model(x, keras.layers.ReLU(6.0)(norm(conv(x))))
    conv.kernel.assign(rng.normal(0, 0.5, conv.kernel.shape))
    norm.gamma.assign(rng.uniform(0.2, 3.0, channels_out))      # per-channel scales spread 15x
    norm.beta.assign(rng.normal(0, 0.5, channels_out))
    norm.moving_mean.assign(rng.normal(0, 0.5, channels_out))
    norm.moving_variance.assign(rng.uniform(0.3, 4.0, channels_out))
    return float_model, conv, norm


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_folded_convolution_is_batch_norm_of_the_convolution(depthwise):
    """Inference: conv(x, w * g / sqrt(v + eps)) + (b - m * g / sqrt(v + eps)) == BN(conv(x))
    with the moving statistics; training: the same with the batch's statistics, and the moving
    statistics updated as BatchNormalization updates them."""
    float_model, conv, norm = _conv_and_norm(depthwise)
    twin = qat.quantize_model(float_model)
    folded = twin.get_layer(conv.name)
    assert isinstance(folded, qat.QuantizedConv) and folded.batch_norm
    x = np.random.default_rng(1).normal(0, 1, (4, 9, 9, 6)).astype(np.float32)
    conv_out = keras.ops.convert_to_numpy(conv(x))
    # Reduction length of one output: 3*3*6 products (depthwise: 3*3); a bound in float32
    # rounding of the sums and of the folding, times the largest magnitude involved.
    length = 9 * (1 if depthwise else 6)
    for training_mode in (False, True):
        before = keras.ops.convert_to_numpy(folded.moving_mean).copy()
        kernel, bias = folded.folded(x, training=training_mode)
        ours = keras.ops.convert_to_numpy(folded._conv(x, kernel) + bias)
        reference = keras.ops.convert_to_numpy(norm(conv_out, training=training_mode))
        bound = 8 * length * EPS32 * (np.abs(reference).max() + np.abs(conv_out).max() * 3.0)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=bound)
        # The known-wrong variant (moving statistics while training, or the reverse) is far off.
        wrong = qat.QuantizedConv.folded(folded, x, training=not training_mode)
        wrong_out = keras.ops.convert_to_numpy(folded._conv(x, wrong[0]) + wrong[1])
        assert np.abs(wrong_out - reference).max() > 100 * bound
        if training_mode:   # the moving mean moved as BatchNormalization's (momentum 0.9)
            expected = before * 0.9 + conv_out.mean(axis=(0, 1, 2)) * 0.1
            np.testing.assert_allclose(keras.ops.convert_to_numpy(folded.moving_mean), expected,
                                       rtol=0, atol=1e-5)


def _one_layer_model(depthwise):
    """input [-1, 1] -> folded conv -> ReLU6 [0, 6]: one int8 kernel in TFLite."""
    float_model, conv, _ = _conv_and_norm(depthwise, seed=3)
    return qat.quantize_model(float_model), conv.name


def _tflite_layer_output(model, x):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    content = converter.convert()
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    outputs = []
    for image in x:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    int8_weights = [d for d in details.values() if d["dtype"] == np.int8
                    and len(d["quantization_parameters"]["scales"]) > 1]
    return np.stack(outputs), ops, int8_weights


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv2d", "depthwise"])
def test_fake_quantized_layer_equals_the_tflite_int8_kernel(depthwise):
    """Keras QAT output == LiteRT's int8 CONV_2D / DEPTHWISE_CONV_2D output (per-channel int8
    weights, int8 activations in [0, 6]) within one quantization step (6/255): the two round
    at different points (float vs fixed-point requantization), never by more than a level."""
    model, name = _one_layer_model(depthwise)
    x = np.random.default_rng(4).uniform(-1, 1, (6, 9, 9, 6)).astype(np.float32)
    ours = np.asarray(model(x, training=False))
    lite, ops, int8_weights = _tflite_layer_output(model, x)
    assert ("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D") in ops
    assert int8_weights, "the weights are not int8 per channel in the .tflite file"
    step = 6.0 / 255
    error = np.abs(ours - lite)
    assert error.max() <= step * (1 + 1e-4), f"max error {error.max() / step:.2f} levels"
    # A known-wrong simulation (per-tensor weights, what TFLite does not do) breaks the bound.
    layer = model.get_layer(name)
    kernel, bias = layer.folded()
    bound = keras.ops.max(keras.ops.abs(kernel))
    per_tensor = keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound,
                                                               narrow_range=True)
    pre = layer._conv(keras.ops.convert_to_numpy(model.layers[1](x)),
                      per_tensor) + bias
    wrong = keras.ops.convert_to_numpy(model.layers[-1](pre))
    assert np.abs(wrong - lite).max() > step * (1 + 1e-4)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv2d", "depthwise"])
def test_outputs_land_on_the_int8_kernels_levels(depthwise):
    """Over ~200k outputs (a tenth of the inputs black, -1.0) the Keras layer and LiteRT's int8
    kernel give the same level almost everywhere: the bias is rounded to the int32 steps TFLite
    stores it in. The known-wrong variant, a float bias, lands a level
    off on ~|bias rounding| / level of the outputs (50 and 109 here when written); ours is held
    to a tenth of it. (Stray levels grow through the 13 blocks: bench/qat_fidelity.py.)"""
    model, name = _one_layer_model(depthwise)
    x = np.random.default_rng(5).uniform(-1, 1, (1500, 9, 9, 6)).astype(np.float32)
    x[np.random.default_rng(6).random(x.shape) < 0.1] = -1.0           # black pixels
    ours = np.asarray(model(x, training=False))
    lite, _, _ = _tflite_layer_output(model, x)
    layer = model.get_layer(name)
    kernel, bias = layer.folded()
    pre = layer._conv(keras.ops.convert_to_numpy(model.layers[1](x)),
                      layer.quantized_kernel(kernel)) + bias
    wrong = keras.ops.convert_to_numpy(model.layers[-1](pre))
    half_level = 3.0 / 255
    off, wrong_off = (int((np.abs(v - lite) > half_level).sum()) for v in (ours, wrong))
    assert wrong_off >= 20, f"the test has no power: float bias off on {wrong_off} outputs"
    assert off * 10 <= wrong_off, f"{off} outputs a level off (float bias: {wrong_off})"


def _uint8_file_vs_keras(model, images):
    """Levels where the full-int8 file (uint8 in and out, as export.convert writes it) and the
    Keras model fed what the file's uint8 input means differ."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    (into,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    (scale, zero_point), (out_scale, out_zero_point) = into["quantization"], out["quantization"]
    assert zero_point == 128, "the uint8 input's zero point (images in [-1, 1])"
    ours = np.asarray(model((images.astype(np.float32) - zero_point) * np.float32(scale),
                            training=False))
    lite = []
    for image in images:
        interpreter.set_tensor(into["index"], image[np.newaxis])
        interpreter.invoke()
        lite.append(interpreter.get_tensor(out["index"])[0].astype(np.float32) - out_zero_point)
    return int((np.abs(ours - np.stack(lite) * out_scale) > out_scale / 2).sum())


def test_the_files_uint8_input_is_the_keras_models_input_grid(monkeypatch):
    """The input quantizer's grid is the file's uint8 input (zero point 128, step 1/127.5), black
    pixels (0) included. Known-wrong: the range (-1, 1) itself, whose fake quantization nudges
    the zero point to 127 and clamps 0 one level up (22 of 15000 outputs off when written)."""
    float_model, _, _ = _conv_and_norm(True, channels_in=3, seed=3)
    images = np.random.default_rng(0).integers(0, 256, (200, 9, 9, 3)).astype(np.uint8)
    off = _uint8_file_vs_keras(qat.quantize_model(float_model), images)
    monkeypatch.setattr(qat, "INPUT_RANGE", (-1.0, 1.0))
    wrong_off = _uint8_file_vs_keras(qat.quantize_model(float_model), images)
    assert wrong_off >= 10, f"the test has no power: (-1, 1) off on {wrong_off} outputs"
    assert off * 10 <= wrong_off, f"{off} outputs a level off (range (-1, 1): {wrong_off})"


def test_refusals_are_one_line(tmp_path):
    """Settings QAT cannot take, refused before any work with one line naming them."""
    with pytest.raises(training.ConfigError, match=r"`mixed_precision` must be 'none'.*bfloat16"):
        training.TrainConfig(dataset="synthetic", quantize=True, mixed_precision="bfloat16").check()
    with pytest.raises(training.ConfigError, match="quantize_delay.*needs `quantize`"):
        training.TrainConfig(dataset="synthetic", quantize_delay=3).check()
    with pytest.raises(training.ConfigError, match="quantize_delay"):
        training.TrainConfig(dataset="synthetic", quantize=True, quantize_delay=-1).check()
    from mobilenet_tf import MobileNetV1
    twin = qat.quantize_model(MobileNetV1((32, 32, 3), alpha=0.25, classes=3))
    with pytest.raises(qat.QATError, match="quantization-aware already"):
        qat.quantize_model(twin)
    with pytest.raises(export.ExportError, match="quantization=int8.*Received: quantization="):
        export.convert(twin, "dynamic_range")


def _events(directory):
    import tensorflow as tf
    values = {}
    for root, _, files in os.walk(directory):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    values.setdefault(value.tag, []).append(
                        float(tf.make_ndarray(value.tensor)))
    return values


def test_quantization_aware_run_trains_resumes_and_exports_int8(tmp_path, shared_data, repo_root):
    """train(quantize, quantize_delay=2): float steps then fake quantization; resumes; ranges in
    TensorBoard; --mode=eval equals the run's figure; model.keras loads with plain Keras; the
    export is full int8 from the learned ranges and agrees with the Keras model."""
    import tensorflow as tf
    model_dir = str(tmp_path / "run")
    config = training.TrainConfig(
        dataset=f"folder:{shared_data / 'hymenoptera'}", model_dir=model_dir, alpha=0.25,
        image_size=64, batch_size=16, train_steps=2, epochs=1, quantize=True, quantize_delay=2,
        log_every_steps=1, learning_rate=0.002, min_crop_area=0.5, verbose=0)
    first = training.train(config)
    twin = first["model"]
    assert qat.is_quantization_aware(twin)
    # Two steps, delay 2: fake quantization has not started in training, ranges are learned.
    assert all(float(layer.quantize_active.numpy()) == 0.0 for layer in qat.quantizers(twin))
    ranges = qat.activation_ranges(twin)
    assert set(ranges) == {"AvgPool_1a_quant", "Logits_quant"}
    assert all(high > low for low, high in ranges.values())
    # Depthwise kernels get no weight decay, as in float training; the others do.
    decayed, excluded = training.split_weight_decay(twin)
    assert {v.path for v in decayed} >= {"Conv2d_0/kernel", "Conv2d_1_pointwise/kernel",
                                         "Logits/kernel"}
    assert "Conv2d_1_depthwise/kernel" in {v.path for v in excluded}

    resumed = training.train(training.TrainConfig(**{**config.__dict__, "train_steps": 4}))
    assert resumed["start_step"] == 2 and resumed["final_step"] == 4
    assert all(float(layer.quantize_active.numpy()) == 1.0
               for layer in qat.quantizers(resumed["model"]))
    events = _events(os.path.join(model_dir, "tensorboard", "train"))
    assert len(events["quantization/Logits_quant/max"]) >= 4

    evaluated = training.evaluate(model_dir, verbose=0)
    assert evaluated["top1"] == pytest.approx(resumed["final_top1"], abs=1e-6)

    loaded = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    images = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(images)), np.asarray(resumed["model"](images)))
    # In a fresh process: importing mobilenet_tf.model.qat (which registers the layers) is all it takes.
    np.save(tmp_path / "images.npy", images)
    fresh = subprocess.run(
        [sys.executable, "-c",
         "import sys, keras, numpy as np, mobilenet_tf.model.qat\n"
         "m = keras.models.load_model(sys.argv[1])\n"
         "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))",
         os.path.join(model_dir, "model.keras"), str(tmp_path / "images.npy"),
         str(tmp_path / "fresh.npy")],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True,
        timeout=120)
    assert fresh.returncode == 0, fresh.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "fresh.npy"), np.asarray(loaded(images)))

    content = export.convert(loaded, "int8")          # no representative images
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(   # TFLite's own kernels (no XNNPACK delegate node), to list them
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    float_ops = []
    for op in interpreter._get_ops_details():       # only the I/O conversions touch floats
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        dtypes = {tensors[i] for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0}
        if not dtypes <= {np.int8, np.int32}:
            float_ops.append((op["op_name"], dtypes))
    assert not float_ops
    assert {op["op_name"] for op in interpreter._get_ops_details()} >= {
        "CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"}
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    loaded_images = export.load_images(config.dataset, (64, 64), 48, split="validation")
    result = export.verify(content, loaded, loaded_images.images, loaded_images.labels,
                           quantization="int8", latency_runs=1)
    assert result.top1_agreement >= 0.9, result.top1_agreement

    # export_tflite.py on the run: int8 without calibration flags; another quantization refused.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "export_tflite.py", f"--model={model_dir}", *args], cwd=repo_root,
        env=env, capture_output=True, text=True, timeout=300)
    refused = run("--quantization=float16", f"--output={tmp_path / 'f16.tflite'}")
    assert refused.returncode == 2 and not (tmp_path / "f16.tflite").exists()
    assert refused.stderr.strip().splitlines()[-1].count("trained with --quantize") == 1
    written = run(f"--output={tmp_path / 'qat.tflite'}", "--num_verification_images=16",
                  "--latency_runs=1", "--min_top1_agreement=0.5")
    assert written.returncode == 0, written.stderr
    assert "no calibration" in written.stdout and "as int8" in written.stdout
    from mobilenet_tf.export import tflite
    runner = tflite.TFLiteClassifier(str(tmp_path / "qat.tflite"))
    assert runner.input_dtype == "uint8" and runner.input_kind == "raw_rgb"
    # The .keras file alone (no run folder, so no dataset to calibrate on, nor needed), with
    # the io-type options of an int8 export.
    import shutil
    shutil.copy(os.path.join(model_dir, "model.keras"), tmp_path / "bare.keras")
    bare = subprocess.run(
        [sys.executable, "export_tflite.py", f"--model={tmp_path / 'bare.keras'}",
         "--quantization=int8", "--input_type=int8", "--noraw_rgb_input", "--noverify",
         f"--output={tmp_path / 'bare.tflite'}"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0, bare.stderr
    assert tflite.TFLiteClassifier(str(tmp_path / "bare.tflite")).input_dtype == "int8"
    del tf


_MIRRORED_QAT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from mobilenet_tf.training import distribute
from mobilenet_tf import training
from mobilenet_tf.model import qat

keras.utils.set_random_seed(0)
N, C, BATCH = 32, 5, 32
config = training.TrainConfig(alpha=0.25, image_size=32, dropout=0.0, batch_size=BATCH,
                              learning_rate=1e-5, mode="train", architecture="shallow_mobilenet",
                              quantize=True, moving_average_decay=0.999)
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (N, 32, 32, 3)).astype("float32")
y = np.eye(C, dtype="float32")[rng.integers(0, C, N)]
initial = training.build_model(config, C).get_weights()
out = {}
mirrored = distribute.create_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
for name, strategy in (("one_device", distribute.create_strategy("one_device", devices=["/cpu:0"])),
                       ("mirrored", mirrored)):
    with strategy.scope():
        model = training.build_model(config, C,
                                     replicas=distribute.num_replicas(strategy))
        model.set_weights(initial)
        optimizer = training.compile_model(model, config,
                                           training.learning_rate_schedule(config, 1))
    dataset_fn = lambda batch, shards, index: tf.data.Dataset.from_tensor_slices((x, y)).shard(
        shards, index).batch(batch, drop_remainder=True).repeat()
    model.fit(distribute.distribute_input(strategy, dataset_fn, BATCH), steps_per_epoch=1,
              epochs=1, verbose=0)
    out[name] = {"steps": int(optimizer.iterations.numpy()),
                 "replicas": distribute.num_replicas(strategy),
                 "ranges": {k: list(map(float, v)) for k, v in qat.activation_ranges(model).items()}}

# One learned-range quantizer, a batch of 8 split over the replicas (4 each, different ranges).
values = np.random.default_rng(1).normal(0, 1, (8, 6)).astype("float32")
values[:4] *= 3.0
with mirrored.scope():
    quantizer = qat.ActivationQuantizer(name="q")
    quantizer.build((None, 6))
per_replica = mirrored.experimental_distribute_values_from_function(
    lambda context: tf.constant(values[4 * context.replica_id_in_sync_group:][:4]))
mirrored.run(tf.function(lambda v: quantizer(v, training=True)), args=(per_replica,))
out["layer"] = {"range": [float(quantizer.range_min.numpy()), float(quantizer.range_max.numpy())],
                "global": [float(min(values.min(), 0)), float(max(values.max(), 0))]}
print("RESULT " + json.dumps(out))
"""


def test_mirrored_quantization_aware_step_learns_the_global_batch_range(repo_root):
    """Under tf.distribute (two replicas on two logical CPUs) a learned range is that of the
    global batch: one quantizer fed half a batch on each replica learns the whole batch's min
    and max, exactly (min and max do not round). The wrong variant, each replica's own range
    averaged by the variable's aggregation, is the mean of the halves' ranges.

    And a whole QAT training step (synchronized batch norm, EMA) runs on two replicas, with the
    first learned range (AvgPool) that of one device. Oracle: the one-device run on the same
    batch from the same weights. Two replicas sum in another order (synchronized batch norm's
    variance is E[x^2] - E[x]^2 there), so a value that lies within rounding of a quantization
    boundary can land on the other side: one step of a quantized activation (seen here: the
    AvgPool maximum one ReLU6 step, 6/255, apart). Bound: two steps of each range's own grid,
    width / 255. The known-wrong variant, each replica's own half-batch range averaged by the
    variable's aggregation, moves the AvgPool maximum by 20 steps (11%) here."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", _MIRRORED_QAT], capture_output=True,
                            text=True, timeout=240, cwd=repo_root, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["layer"]["range"] == out["layer"]["global"]
    one, mirrored = out["one_device"], out["mirrored"]
    assert mirrored["replicas"] == 2 and one["steps"] == mirrored["steps"] == 1
    assert set(one["ranges"]) == set(mirrored["ranges"]) == {"AvgPool_1a_quant", "Logits_quant"}
    # The Logits range is not compared: a one-step move of the AvgPool range changes the grid
    # all of the head's inputs are quantized on, and so every logit.
    low, high = one["ranges"]["AvgPool_1a_quant"]
    np.testing.assert_allclose(mirrored["ranges"]["AvgPool_1a_quant"], [low, high], rtol=0,
                               atol=2 * (high - low) / 255)


@pytest.mark.slow
def test_run_on_images_without_labels_exports_and_evaluates(tmp_path, shared_data):
    """Issue 26: a QAT run distilled on a folder of images without labels (no val/) exports and
    evaluates. The export verifies on the images' top-1 agreement with the Keras model (the
    verification pipeline used to one-hot labels that do not exist: "None values not
    supported", exit 1); --mode=eval scores top-1 agreement with the run's teacher."""
    photos = tmp_path / "photos"
    photos.mkdir()
    ants = sorted((shared_data / "hymenoptera" / "train" / "ants").glob("*.jpg"))[:12]
    for i, f in enumerate(ants):
        os.symlink(f, photos / f"{i:02d}.jpg")
    weights = shared_data / "weights" / "mobilenet_2_5_128_tf.h5"
    model_dir = str(tmp_path / "run")
    training.train(training.TrainConfig(
        dataset=f"folder:{photos}", mode="train", model_dir=model_dir, alpha=0.25,
        image_size=32, batch_size=6, train_steps=1, epochs=1, quantize=True,
        teacher=str(weights), teacher_alpha=0.25, teacher_image_size=128,
        distillation_weight=1.0, learning_rate=1e-5, verbose=0))
    result = export.export_model(model_dir, str(tmp_path / "q.tflite"),
                                 export.ExportOptions(latency_runs=1, min_top1_agreement=0.5))
    assert os.path.isfile(tmp_path / "q.tflite")
    v = result.verification
    assert v.num_images == 12 and v.keras_top1 is None and v.top1_agreement >= 0.5
    evaluated = training.evaluate(model_dir, verbose=0)
    assert evaluated["num_images"] == 12 and evaluated["labels"] is False
    assert 0.0 <= evaluated["teacher_top1_agreement"] <= 1.0
    with open(os.path.join(model_dir, "eval.json")) as f:
        assert json.load(f)["teacher_top1_agreement"] == evaluated["teacher_top1_agreement"]
