"""TFLite export (export_tflite.py, mobilenet_tf.export, mobilenet_tf.tflite) on real weights.

The α=0.25/128 ImageNet weights (``mobilenet_2_5_128_tf.h5``), the 50 labelled imagenet50
images (evaluation preprocessing: central crop 0.875, bilinear resize) and, for int8,
calibration on the 244 hymenoptera training photos (never on the test images). Each mode is
converted once per module.

The largest single difference of an int8 model is one image whose probability mass moves
between two classes (0.19 to 0.58 depending on the calibration images), so int8 is held to
its top-1 agreement and mean difference, as the issue asks, not to a maximum.

Measured on these 50 images (interpreter vs Keras probabilities), and the bounds asserted:

| mode          | max abs diff | mean abs diff | top-1 agreement | bounds: max / mean / agreement |
|---------------|--------------|---------------|-----------------|--------------------------------|
| none          | 3.1e-6       | 4.8e-9        | 50/50           | 1e-5 / 1e-7 / 50               |
| float16       | 8.5e-3       | 8.6e-6        | 50/50           | 2e-2 / 5e-5 / 49               |
| dynamic_range | 0.11         | 1.4e-4        | 46/50           | 0.25 / 5e-4 / 44               |
| int8          | 0.19         | 2.8e-4        | 43/50           | - / 1e-3 / 40                  |
"""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from mobilenet_tf import export
from mobilenet_tf import tflite

SIZE = 128
NUM_CALIBRATION = 300   # all 244 usable hymenoptera training photos
# mode -> (max abs diff, mean abs diff, fewest top-1 agreements of 50, top-1 accuracy loss in images)
BOUNDS = {
    "none": (1e-5, 1e-7, 50, 0),
    "float16": (2e-2, 5e-5, 49, 0),
    "dynamic_range": (0.25, 5e-4, 44, 2),
    "int8": (None, 1e-3, 40, 2),
}
# mode -> dtype of the stored convolution / fully-connected weights. Dynamic range quantizes a
# weight only from 1024 values up (the converter's threshold): at α=0.25 the depthwise kernels
# (3x3x8 .. 3x3x256) and the first pointwise ones stay float32.
WEIGHT_DTYPES = {"none": "float32", "float16": "float16", "dynamic_range": "int8", "int8": "int8"}
DYNAMIC_RANGE_MIN_ELEMENTS = 1024
NUM_WEIGHT_OPS = 28   # Conv2d_0, 13 depthwise, 13 pointwise, Logits (a 1x1 convolution)


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
    return export.load_images(f"folder:{shared_data / 'hymenoptera'}", SIZE, NUM_CALIBRATION,
                              log=lambda *a: None).images


@pytest.fixture(scope="module")
def keras_probs(model, test_images):
    return np.asarray(model(export.to_unit_range(test_images.images), training=False))


@pytest.fixture(scope="module")
def exports(model, calibration):
    """mode -> .tflite bytes with the default tensor types (uint8 raw RGB in, float32 out)."""
    return {mode: export.convert(model, mode, calibration, num_calibration_images=NUM_CALIBRATION)
            for mode in export.QUANTIZATIONS}


def _ops_and_tensors(content):
    """The model's own operators (no XNNPACK delegate folding them into DELEGATE nodes)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_content=content, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    return interpreter, interpreter._get_ops_details(), tensors


def _stored_weight_dtypes(content, with_sizes=False):
    """dtype of each conv / FC weight as stored (behind a DEQUANTIZE for float16)."""
    _, ops, tensors = _ops_and_tensors(content)
    producer = {int(out): op for op in ops for out in op["outputs"]}
    dtypes = []
    for op in ops:
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            index = int(op["inputs"][1])
            if index in producer and producer[index]["op_name"] == "DEQUANTIZE":
                index = int(producer[index]["inputs"][0])
            name = np.dtype(tensors[index]["dtype"]).name
            dtypes.append((name, int(np.prod(tensors[index]["shape"]))) if with_sizes else name)
    return dtypes


# --- every mode against Keras on the real images ----------------------------------------------------

@pytest.mark.parametrize("mode", list(BOUNDS))
def test_interpreter_matches_keras(mode, exports, model, keras_probs, test_images):
    max_bound, mean_bound, min_agree, max_top1_loss = BOUNDS[mode]
    runner = tflite.TFLiteClassifier(exports[mode])
    probs = runner.predict(test_images.images)
    assert probs.shape == keras_probs.shape == (50, 1000)
    diff = np.abs(probs.astype(np.float64) - keras_probs)
    agree = int((probs.argmax(1) == keras_probs.argmax(1)).sum())
    assert max_bound is None or diff.max() <= max_bound, f"{mode}: max abs diff {diff.max():.3g}"
    assert diff.mean() <= mean_bound, f"{mode}: mean abs diff {diff.mean():.3g}"
    assert agree >= min_agree, f"{mode}: top-1 agreement {agree}/50"
    keras_top1 = int((keras_probs.argmax(1) == test_images.labels).sum())
    lite_top1 = int((probs.argmax(1) == test_images.labels).sum())
    assert keras_top1 - lite_top1 <= max_top1_loss
    # The verification record reports the same figures.
    record = export.verify(exports[mode], model, test_images.images, test_images.labels,
                           quantization=mode, latency_runs=3)
    assert round(record.top1_agreement * 50) == agree
    assert record.max_abs_diff == pytest.approx(diff.max(), rel=1e-5, abs=1e-9)
    assert record.keras_top1 * 50 == pytest.approx(keras_top1)
    assert record.tflite_top1 * 50 == pytest.approx(lite_top1)
    assert record.size_bytes == len(exports[mode])
    assert record.latency_ms_1_thread > 0 and record.latency_ms_all_threads > 0
    table = "\n".join(record.lines())
    for row in ("file size", "top-1 agreement", "top-1 Keras / TFLite", "top-5 Keras / TFLite",
                "max / mean", "median latency, 1 thread"):
        assert row in table


def test_keras_reference_accuracy(keras_probs, test_images):
    # 22/50 with resize-only preprocessing (shared/data/README.md); the central crop gives 25/50.
    assert int((keras_probs.argmax(1) == test_images.labels).sum()) == 25


@pytest.mark.parametrize("mode", export.QUANTIZATIONS)
def test_signature_shapes_and_weight_types(mode, exports):
    runner = tflite.TFLiteClassifier(exports[mode])
    assert runner.signatures == {"serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}
    assert runner.image_size == (SIZE, SIZE) and runner.num_classes == 1000
    assert (runner.input_dtype, runner.output_dtype, runner.input_kind) == ("uint8", "float32", "raw_rgb")
    weights = _stored_weight_dtypes(exports[mode], with_sizes=True)
    assert len(weights) == NUM_WEIGHT_OPS
    for dtype, size in weights:
        small = mode == "dynamic_range" and size < DYNAMIC_RANGE_MIN_ELEMENTS
        assert dtype == ("float32" if small else WEIGHT_DTYPES[mode]), (mode, dtype, size)
    if mode == "dynamic_range":   # the big ones, 97% of the weights, are int8
        assert sum(size for dtype, size in weights if dtype == "int8") > 0.95 * sum(
            size for _, size in weights)


def test_sizes_shrink_as_expected(exports):
    size = {mode: len(content) for mode, content in exports.items()}
    assert 0.45 < size["float16"] / size["none"] < 0.55
    assert size["dynamic_range"] / size["none"] < 0.32
    assert size["int8"] / size["none"] < 0.35


# --- int8 really is integer -------------------------------------------------------------------------

@pytest.mark.parametrize("input_type,output_type,raw", [
    (None, None, True),            # the default: uint8 camera bytes in, float32 out
    ("int8", "int8", False),
    ("float32", "uint8", False),
])
def test_int8_is_integer(input_type, output_type, raw, exports, model, calibration, keras_probs,
                         test_images):
    if raw:
        content = exports["int8"]
    else:
        content = export.convert(model, "int8", calibration, input_type=input_type,
                                 output_type=output_type, raw_rgb_input=False,
                                 num_calibration_images=NUM_CALIBRATION)
    interpreter, ops, tensors = _ops_and_tensors(content)
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
    probs = tflite.TFLiteClassifier(content).predict(test_images.images)
    assert int((probs.argmax(1) == keras_probs.argmax(1)).sum()) >= BOUNDS["int8"][2]


def test_raw_rgb_int8_input_takes_camera_bytes(exports):
    runner = tflite.TFLiteClassifier(exports["int8"])
    scale, zero_point = runner.input_quantization
    assert scale == pytest.approx(2 / 255, rel=1e-6) and zero_point in (127, 128)
    assert runner.input_kind == "raw_rgb"


def test_google_quantized_model_runs(shared_data, keras_probs, test_images):
    runner = tflite.TFLiteClassifier(shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite")
    assert (runner.input_dtype, runner.input_kind, runner.num_classes) == ("uint8", "raw_rgb", 1001)
    probs = runner.predict(test_images.images)[:, 1:]      # drop TF-slim's background class
    # Same trained network as the .h5 weights (which were made from it): mostly the same top-1.
    assert int((probs.argmax(1) == keras_probs.argmax(1)).sum()) >= 40


def test_saved_model_serves(model, test_images, keras_probs, tmp_path):
    import tensorflow as tf
    export.serving_archive(model, raw_rgb_input=True, batch_size=None).write_out(
        str(tmp_path / "sm"), verbose=False)
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    out = serve(images=tf.constant(test_images.images[:7]))["probabilities"].numpy()
    assert np.abs(out - keras_probs[:7]).max() <= 1e-5


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
    assert export.label_names(1000)[:2] == ["tench", "goldfish"]
    assert export.label_names(1001)[:2] == ["background", "tench"]
    assert export.label_names(3) == ["class_0", "class_1", "class_2"]
    assert export.label_names(2, ["ants", "bees"]) == ["ants", "bees"]


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


def test_predict_tflite_same_top1_as_keras(exports, weights_file, shared_data, tmp_path, capsys):
    files = sorted(str(p) for p in (shared_data / "imagenet50").glob("*.JPEG"))
    assert len(files) == 50
    keras_ids = _predicted_ids(capsys, ["--weights", str(weights_file), "--alpha=0.25",
                                        "--image_size=128", "--top=1", *files])
    assert len(keras_ids) == 50
    for mode, min_agree in (("none", 50), ("int8", BOUNDS["int8"][2])):
        path = tmp_path / f"{mode}.tflite"
        path.write_bytes(exports[mode])
        ids = _predicted_ids(capsys, [f"--model={path}", "--top=1", *files])
        agree = sum(a == b for a, b in zip(ids, keras_ids))
        assert len(ids) == 50 and agree >= min_agree, f"{mode}: {agree}/50"


# --- the script ---------------------------------------------------------------------------------------

def _run(repo_root, args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _error_lines(stderr):
    """The script's error lines; it must be the last line of stderr (TF's C++ start-up
    notices may come before it)."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("export_tflite.py: error:")]
    assert not errors or lines[-1] == errors[-1], stderr
    return errors


# case -> (exit status, the one error line)
SCRIPT_ERRORS = {
    "missing_model": (1, r"export_tflite\.py: error: no such model file or train\.py model dir: .*nope\.keras$"),
    "non_model_file": (1, r"export_tflite\.py: error: .*notes\.keras is not a Keras \.keras model file"),
    "missing_weights": (1, r"export_tflite\.py: error: .*weights.*no such file or checkpoint prefix.*nope\.h5"),
    "int8_without_calibration": (2, r"export_tflite\.py: error: .*--quantization=int8 needs calibration images"),
    "unknown_quantization": (2, r"export_tflite\.py: error: .*quantization=int4.*should be one of "
                                r"<none\|float16\|dynamic_range\|int8>"),
    "output_in_missing_dir": (2, r"export_tflite\.py: error: .*folder .*no_such_dir does not exist"),
    "synthetic_without_flag": (2, r"export_tflite\.py: error: .*pass --allow_synthetic_calibration"),
    "raw_input_as_float": (2, r"export_tflite\.py: error: .*--raw_rgb_input .* needs --input_type=uint8"),
}


@pytest.mark.parametrize("case", list(SCRIPT_ERRORS))
def test_script_errors(case, repo_root, weights_file, tmp_path):
    status, message = SCRIPT_ERRORS[case]
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "notes.keras").write_text("not a model\n")
    model = ["--weights", str(weights_file), "--alpha=0.25", "--image_size=128"]
    args = {
        "missing_model": ["--model", str(tmp_path / "nope.keras")],
        "non_model_file": ["--model", str(tmp_path / "notes.keras")],
        "missing_weights": ["--weights", str(tmp_path / "nope.h5"), "--alpha=0.25", "--image_size=128"],
        "int8_without_calibration": model + ["--quantization=int8"],
        "unknown_quantization": model + ["--quantization=int4"],
        "output_in_missing_dir": model + ["--output", str(tmp_path / "no_such_dir" / "m.tflite")],
        "synthetic_without_flag": model + ["--quantization=int8", "--representative_dataset=synthetic"],
        "raw_input_as_float": model + ["--input_type=float32"],
    }[case]
    if "--output" not in args:
        args += ["--output", str(out / "m.tflite")]
    result = _run(repo_root, ["export_tflite.py", *args])
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and re.search(message, errors[0]), result.stderr
    assert sorted(os.listdir(out)) == []


def test_script_refused_export_leaves_nothing(repo_root, weights_file, shared_data, tmp_path):
    result = _run(repo_root, [
        "export_tflite.py", "--weights", str(weights_file), "--alpha=0.25", "--image_size=128",
        "--quantization=int8", f"--representative_dataset=folder:{shared_data / 'hymenoptera'}",
        "--num_calibration_images=50", f"--verify_dataset=folder:{shared_data / 'imagenet50'}",
        "--min_top1_agreement=1.0", "--output", str(tmp_path / "m.tflite"),
        "--saved_model_dir", str(tmp_path / "sm")])
    assert result.returncode == 1, result.stderr
    assert "Verification of the int8 export" in result.stdout
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and re.search(r"agrees with the Keras model on the top-1 class of only "
                                          r"\d+/50 images .* below min_top1_agreement=1$", errors[0])
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.slow
def test_export_of_a_train_py_model(repo_root, tmp_path, capsys):
    import keras
    model_dir = tmp_path / "run"
    trained = _run(repo_root, ["train.py", "--flagfile=flags/smoke.flags", f"--model_dir={model_dir}",
                               "--verbose=0"])
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "out"
    out.mkdir()
    result = _run(repo_root, [
        "export_tflite.py", f"--model={model_dir}", "--quantization=int8",
        "--representative_dataset=synthetic", "--allow_synthetic_calibration",
        "--num_calibration_images=16", "--num_verification_images=16", "--min_top1_agreement=0",
        "--output", str(out / "smoke.tflite"), "--saved_model_dir", str(out / "sm")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING: calibrating on synthetic random images" in result.stderr
    assert "Verification of the int8 export against the Keras model on 16 images" in result.stdout
    assert sorted(os.listdir(out)) == ["sm", "smoke.tflite", "smoke_labels.txt"]
    labels = (out / "smoke_labels.txt").read_text().splitlines()
    assert labels == [f"class_{i}" for i in range(10)]
    runner = tflite.TFLiteClassifier(out / "smoke.tflite")
    assert runner.image_size == (64, 64) and runner.num_classes == 10
    assert _stored_weight_dtypes(runner.content) == ["int8"] * NUM_WEIGHT_OPS
    keras_model = keras.models.load_model(model_dir / "model.keras", compile=False)
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    expected = np.asarray(keras_model(export.to_unit_range(images), training=False))
    assert np.abs(runner.predict(images) - expected).max() <= 0.02
    import tensorflow as tf
    served = tf.saved_model.load(str(out / "sm")).signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    assert np.abs(served - expected).max() <= 1e-5
    assert pathlib.Path(out / "sm" / "saved_model.pb").is_file()

    # predict on the .tflite names the classes from the labels file beside it.
    photo = tmp_path / "photo.png"
    photo.write_bytes(tf.io.encode_png(images[0]).numpy())
    from mobilenet_tf import predict
    assert predict.main([f"--model={out / 'smoke.tflite'}", "--top=3", str(photo)]) == 0
    printed = capsys.readouterr().out.splitlines()
    top = np.argsort(-runner.predict(images[:1])[0])[:3]
    assert printed[1:] == [line for line in printed[1:] if "  class_" in line]
    assert [line.split("(class ")[1].rstrip(")") for line in printed[1:]] == [str(i) for i in top]
