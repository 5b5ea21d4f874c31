"""The export as one library call (mobilenet_tf.export.export_model) and its settings
(mobilenet_tf.export.options.ExportOptions, which export_tflite.py's flags are made from).

Small models, synthetic data: what is checked is the sequence (nothing written before the
verification passed, what the result and the log say), the rules stated once for the library
and the script, and that the script's flags are the options' fields.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from mobilenet_tf.export import options as export_options

OLD_RUNS = REPO_ROOT / "tests" / "data" / "runs_0_1_0"


# --- the rules, without TensorFlow ----------------------------------------------------------------

@pytest.mark.parametrize("args,problem", [
    (("int8", None, False), r"quantization=int8 needs calibration images"),
    (("int8", "synthetic", False), r"representative_dataset=synthetic calibrates on random noise; "
                                   r"pass allow_synthetic_calibration=True"),
    (("int8", "synthetic", True), None),
    (("int8", "folder:photos", False), None),
    # Synthetic data that calibrates nothing is no reason to refuse: it only verifies a float
    # export, or a quantization-aware one (0.1 refused both, also for a run trained on it).
    (("none", "synthetic", False), None),
    (("int8", "synthetic", False, True), None),
    (("int8", None, False, True), None),
])
def test_calibration_rule(args, problem):
    found = export_options.calibration_problem(*args)
    assert found is None if problem is None else re.search(problem, found)


@pytest.mark.parametrize("settings,message", [
    (dict(quantization="int4"), r"`quantization` must be one of none, float16, dynamic_range, int8"),
    (dict(quantization="none", input_type="int8", raw_rgb_input=False),
     r"input_type=int8 is for quantization=int8"),
    (dict(input_type="float32"), r"raw_rgb_input .* needs input_type=uint8"),
    (dict(num_calibration_images=0), r"`num_calibration_images` must be an int >= 1"),
    (dict(latency_runs=True), r"`latency_runs` must be an int >= 1"),
    (dict(min_top1_agreement=1.5), r"`min_top1_agreement` must be a fraction in \[0, 1\]"),
    (dict(verify_dataset="folder:"), r"verify_dataset: dataset 'folder:PATH' needs the path"),
    (dict(saved_model_dir="/etc/passwd"), r"/etc/passwd is a file, not a folder\. "
                                          r"Received: saved_model_dir='/etc/passwd'"),
])
def test_options_are_checked(settings, message):
    with pytest.raises(export_options.ExportError, match=message):
        export_options.ExportOptions(**settings).check()
    export_options.ExportOptions().check()


_FLAGS_PROBE = """
import json, sys
import export_tflite
from absl import flags
out = {name: {"default": flag.default, "choices": getattr(flag.parser, "enum_values", None)}
       for name, flag in export_tflite.FLAGS._flags().items()}
try:
    export_tflite._parse_flags(sys.argv[1:])
except SystemExit as e:
    out["exit"] = e.code
print(json.dumps({"flags": out, "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_the_scripts_flags_are_the_options_fields_and_refuse_without_tensorflow(tmp_path):
    """Every ExportOptions field is a flag of export_tflite.py with the field's default (the
    quantization flag's "none" is what None means for a float model), choices are the library's
    tuples, and a refused combination exits 2 before TensorFlow is imported."""
    result = subprocess.run(
        [sys.executable, "-c", _FLAGS_PROBE, "export_tflite.py", "--weights=imagenet",
         "--quantization=int8", f"--output={tmp_path / 'm.tflite'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert (probe["tensorflow"], probe["flags"]["exit"]) == (False, 2)
    assert "--quantization=int8 needs calibration images: --representative_dataset=folder:PATH" \
        in result.stderr
    flags = probe["flags"]
    defaults = export_options.ExportOptions()
    for field in export_options.ExportOptions.__dataclass_fields__:
        expected = "none" if field == "quantization" else getattr(defaults, field)
        expected = list(expected) if isinstance(expected, tuple) else expected   # DEFINE_list
        assert flags[field]["default"] == expected, field
    assert flags["quantization"]["choices"] == list(export_options.QUANTIZATIONS)
    assert flags["input_type"]["choices"] == flags["output_type"]["choices"] == list(
        export_options.IO_TYPES)


# --- export_model ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    import mobilenet_tf
    return mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), classes=3, weights=None)


def test_export_model_writes_everything_after_verifying_and_says_what_it_did(
        small_model, tmp_path, library_log):
    from mobilenet_tf import export
    from mobilenet_tf.export import metadata
    output = tmp_path / "m.tflite"
    options = export.ExportOptions(num_verification_images=4, latency_runs=1,
                                   saved_model_dir=str(tmp_path / "sm"))
    result = export.export_model(small_model, output, options, class_names=["ants", "bees", "wasps"])
    assert (result.quantization, result.quantization_aware) == ("none", False)
    assert result.calibration is None
    assert result.files == [str(output), str(tmp_path / "m_labels.txt"), str(tmp_path / "sm")]
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "m_labels.txt", "sm"]
    assert output.read_bytes() == result.content and result.size_bytes == len(result.content)
    assert (tmp_path / "m_labels.txt").read_text() == "ants\nbees\nwasps\n"
    assert metadata.read_labels(result.content) == result.labels == ["ants", "bees", "wasps"]
    record = result.verification
    assert (record.num_images, record.top1_agreement, record.quantization) == (4, 1.0, "none")
    assert result.min_top1_agreement == export.DEFAULT_MIN_TOP1_AGREEMENT["none"]
    warning = ("no verify_dataset or representative_dataset: verifying on synthetic random images "
               "(probability differences only)")
    assert result.warnings == [warning] and result.mediapipe_problem is None
    assert f"Exporting {small_model.name} (32x32, 3 classes) as none" in library_log
    assert warning in library_log
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(export.TFLiteClassifier(output).predict(images),
                               small_model(export.to_unit_range(images), training=False),
                               atol=1e-5)


def test_a_failed_verification_writes_nothing(small_model, tmp_path, monkeypatch):
    """The threshold is checked before any file is written: the old file stays, no labels file,
    no SavedModel, no temporaries; the error carries the verification the script prints."""
    from mobilenet_tf import export
    from mobilenet_tf.export import verification
    real_verify = verification.verify

    def half_agreeing(*args, **kwargs):
        record = real_verify(*args, **kwargs)
        record.top1_agreement = 0.5
        return record
    monkeypatch.setattr(verification, "verify", half_agreeing)
    (tmp_path / "m.tflite").write_bytes(b"the previous export")
    options = export.ExportOptions(num_verification_images=4, latency_runs=1,
                                   saved_model_dir=str(tmp_path / "sm"))
    with pytest.raises(export.VerificationError, match=r"only 2/4 images \(50\.0%\), below "
                                                       r"min_top1_agreement=0\.98") as caught:
        export.export_model(small_model, tmp_path / "m.tflite", options)
    assert caught.value.verification.top1_agreement == 0.5
    assert caught.value.verification.lines()[0].startswith("Verification of the none export")
    assert os.listdir(tmp_path) == ["m.tflite"]
    assert (tmp_path / "m.tflite").read_bytes() == b"the previous export"


def test_export_model_refuses_before_loading_anything(tmp_path):
    from mobilenet_tf import export
    with pytest.raises(export.ExportError, match=r"output must be a \.tflite file name"):
        export.export_model(tmp_path / "nope.keras", tmp_path / "m.lite")
    with pytest.raises(export.ExportError, match=r"`num_verification_images` must be an int"):
        export.export_model(tmp_path / "nope.keras", tmp_path / "m.tflite",
                            export.ExportOptions(num_verification_images=0))
    assert os.listdir(tmp_path) == []


def test_a_0_1_0_quantization_aware_run_exports_as_int8_from_its_learned_ranges(tmp_path):
    """The run folder as 0.1.0 wrote it, trained on synthetic data: int8 without calibration
    (0.1.0's export_tflite.py refused it for its synthetic dataset), any other quantization
    refused."""
    from mobilenet_tf import export
    options = export.ExportOptions(num_verification_images=8, latency_runs=1)
    result = export.export_model(OLD_RUNS / "qat", tmp_path / "q.tflite", options)
    assert (result.quantization, result.quantization_aware) == ("int8", True)
    assert result.calibration is None
    assert result.warnings == [] and result.verification.top1_agreement >= 0.8
    runner = export.TFLiteClassifier(tmp_path / "q.tflite")
    assert (runner.input_dtype, runner.input_kind, runner.num_classes) == ("uint8", "raw_rgb", 3)
    with pytest.raises(export.ExportError, match=r"trained with --quantize .* exports as "
                                                 r"quantization=int8 .* Received: "
                                                 r"quantization='float16'"):
        export.export_model(OLD_RUNS / "qat", tmp_path / "f.tflite",
                            export.ExportOptions(quantization="float16"))
    assert sorted(os.listdir(tmp_path)) == ["q.tflite", "q_labels.txt"]
