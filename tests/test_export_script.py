"""export_tflite.py as a user runs it: one-line errors and exit codes, the default agreement
threshold refusing a broken export, and the export of a train.py run."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import numerics
import oracles
from mobilenet_tf import export
from mobilenet_tf.export import tflite

NUM_WEIGHT_OPS = 28   # Conv2d_0, 13 depthwise, 13 pointwise, Logits (a 1x1 convolution)


@pytest.fixture(scope="module")
def weights_file(shared_data):
    return shared_data / "weights" / "mobilenet_2_5_128_tf.h5"


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
    "missing_model": (2, r"export_tflite\.py: error: no such model file or train\.py run folder: .*nope\.keras$"),
    "non_model_file": (2, r"export_tflite\.py: error: .*notes\.keras is not a Keras \.keras model file"),
    "missing_weights": (2, r"export_tflite\.py: error: .*weights.*no such file or checkpoint prefix.*nope\.h5"),
    "int8_without_calibration": (2, r"export_tflite\.py: error: .*--quantization=int8 needs calibration images"),
    "unknown_quantization": (2, r"export_tflite\.py: error: .*quantization=int4.*should be one of "
                                r"<none\|float16\|dynamic_range\|int8>"),
    "output_in_missing_dir": (2, r"export_tflite\.py: error: .*folder .*no_such_dir does not exist"),
    "synthetic_without_flag": (2, r"export_tflite\.py: error: .*pass --allow_synthetic_calibration"),
    "raw_input_as_float": (2, r"export_tflite\.py: error: .*--raw_rgb_input .* needs --input_type=uint8"),
}


@pytest.mark.slow
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


@pytest.mark.slow
def test_default_agreement_threshold_refuses_a_broken_export(repo_root, weights_file, shared_data,
                                                             tmp_path):
    """int8 calibrated on black photos keeps almost no top-1 class; export_tflite.py's default
    threshold (no --min_top1_agreement) refuses it and writes nothing."""
    import tensorflow as tf
    black = tmp_path / "black"
    for label in ("a", "b"):
        (black / label).mkdir(parents=True)
        for i in range(4):
            tf.io.write_file(str(black / label / f"{i}.png"),
                             tf.io.encode_png(np.zeros((160, 160, 3), np.uint8)))
    out = tmp_path / "out"
    out.mkdir()
    result = _run(repo_root, [
        "export_tflite.py", "--weights", str(weights_file), "--alpha=0.25", "--image_size=128",
        "--quantization=int8", f"--representative_dataset=folder:{black}",
        f"--verify_dataset=folder:{shared_data / 'imagenet50'}", "--output", str(out / "m.tflite"),
        "--saved_model_dir", str(out / "sm")])
    assert result.returncode == 1, result.stderr
    assert "Verification of the int8 export" in result.stdout
    errors = _error_lines(result.stderr)
    default = export.DEFAULT_MIN_TOP1_AGREEMENT["int8"]
    # issue 27, group 17: the line says how to verify on suitable images.
    pattern = (r"agrees with the Keras model on the top-1 class of only \d+/50 images .* below "
               rf"min_top1_agreement={default:g}; verify on images of the model's own classes "
               r"\(verify_dataset: photos of other subjects give an ImageNet head no clear top "
               r"class\) or lower min_top1_agreement$")
    assert len(errors) == 1 and re.search(pattern, errors[0]), result.stderr
    assert sorted(os.listdir(out)) == []


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
    assert oracles.stored_weight_dtypes(runner.content) == ["int8"] * NUM_WEIGHT_OPS
    keras_model = keras.models.load_model(model_dir / "model.keras", compile=False)
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    expected = np.asarray(keras_model(export.to_unit_range(images), training=False))
    # The softmax ran in int8: probabilities are codes of its fixed output scale 1/256, one code
    # rounding each, so a row sums to 1 within half a code per class.
    codes = runner.predict(images) * 256
    np.testing.assert_array_equal(codes, np.round(codes))
    assert np.abs(codes.sum(axis=1) / 256 - 1).max() <= 10 * 0.5 / 256
    import tensorflow as tf
    served = tf.saved_model.load(str(out / "sm")).signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    logits = np.asarray(keras.Model(keras_model.input, keras_model.get_layer("SpatialSqueeze").output)(
        export.to_unit_range(images), training=False))
    bound = 2 * numerics.float32_bound(keras_model, np.abs(logits).max())
    assert np.abs(served - expected).max() <= bound
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
