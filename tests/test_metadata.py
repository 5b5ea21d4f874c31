"""TFLite model metadata (mobilenet_tf.export.metadata) for MediaPipe Tasks' ImageClassifier.

Oracles: Google's own quantized MobileNet (``../shared/data/tflite``), whose metadata Google's
tooling wrote, and its labels file; the generated module of ``metadata_schema.fbs`` in the
mediapipe wheel (an independent decoder); and MediaPipe's ImageClassifier itself (PyPI
``mediapipe``, the C++ task graph Android runs), on an ants/bees model fine-tuned the quick
start's way and exported by ``export_tflite.py``. The ImageNet exports of every input / output
variant are checked in tests/test_export.py.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import oracles
from conftest import REPO_ROOT
from mobilenet_tf import export
from mobilenet_tf.export import metadata
from mobilenet_tf.export import tflite

SIZE = 96          # the fine-tuned model: α=0.25 at 96x96 from the 128x128 ImageNet weights
CLASSES = ["ants", "bees"]


@pytest.fixture(scope="module")
def google_file(shared_data):
    return shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture(scope="module")
def google_labels(shared_data):
    return (shared_data / "tflite" / "imagenet_labels.txt").read_text().splitlines()


# --- reading: Google's file ---------------------------------------------------------------------

def test_reads_googles_metadata(google_file, google_labels):
    """Google's tooling wrote this file's metadata; its labels file ships beside it."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    content = google_file.read_bytes()
    meta = metadata.read_metadata(content)
    assert meta.labels == google_labels and len(google_labels) == 1001
    assert meta.packed_files == ("imagenet_labels.txt",)
    reference = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(
        metadata._metadata_buffer(content), 0))
    (subgraph,) = reference.subgraphMetadata
    (image,), (scores,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert (meta.name, meta.description, meta.min_parser_version) == (
        reference.name.decode(), reference.description.decode(),
        reference.minParserVersion.decode())
    (unit,) = image.processUnits
    assert (meta.input.name, meta.input.content, meta.input.color_space) == (
        image.name.decode(), "image", "RGB")
    assert (meta.input.mean, meta.input.std) == (tuple(unit.options.mean), tuple(unit.options.std))
    assert (meta.input.min, meta.input.max) == (tuple(image.stats.min), tuple(image.stats.max))
    assert (meta.output.content, meta.output.label_file) == (
        "feature", scores.associatedFiles[0].name.decode())
    assert (meta.output.min, meta.output.max) == (tuple(scores.stats.min), tuple(scores.stats.max))


def test_our_metadata_is_googles_for_the_same_model(google_file, google_labels, shared_data,
                                                    tmp_path):
    """Google's quantized file (uint8 in, uint8 out) re-populated here: the tensor metadata
    Google wrote and this module's agree field by field (names and descriptions aside), and
    MediaPipe gives the same scores and names with either."""
    content = google_file.read_bytes()
    ours = metadata.populate(content, google_labels, name="n", description="d", version="1",
                             license="l")
    theirs, mine = metadata.read_metadata(content), metadata.read_metadata(ours)
    for tensor in ("input", "output"):
        a, b = getattr(theirs, tensor), getattr(mine, tensor)
        for field in ("content", "color_space", "mean", "std", "min", "max"):
            assert getattr(a, field) == getattr(b, field), (tensor, field)
    assert mine.labels == google_labels and mine.min_parser_version == theirs.min_parser_version
    images = export.load_images(f"folder:{shared_data / 'imagenet50'}", 128, 50).images
    (tmp_path / "google.tflite").write_bytes(content)
    (tmp_path / "ours.tflite").write_bytes(ours)
    google_scores, google_top, google_names = oracles.mediapipe_classify(
        tmp_path / "google.tflite", images)
    scores, top, names = oracles.mediapipe_classify(tmp_path / "ours.tflite", images)
    np.testing.assert_array_equal(scores, google_scores)
    np.testing.assert_array_equal(top, google_top)
    assert names == google_names == dict(enumerate(google_labels))


def test_a_googles_file_stays_an_imagenet_classifier(google_file):
    """Its WordNet lemma labels are ImageNet's: predict decodes WordNet ids as before."""
    from mobilenet_tf.inference import classifier as inference
    from mobilenet_tf.model import labels
    classifier = inference.load_classifier(str(google_file))
    assert classifier.imagenet and classifier.names == labels.label_names(1001)


# --- writing --------------------------------------------------------------------------------------

def test_populate_is_deterministic_and_replaces_what_was_there(google_file, google_labels):
    content = google_file.read_bytes()
    once = metadata.populate(content, google_labels, name="n", description="d", version="1",
                             license="l")
    assert metadata.populate(content, google_labels, name="n", description="d", version="1",
                             license="l") == once
    again = metadata.populate(once, google_labels, name="n", description="d", version="1",
                              license="l")
    assert again == once                 # one TFLITE_METADATA, one packed labels file
    assert metadata.read_metadata(once).packed_files == ("labels.txt",)


@pytest.mark.parametrize("labels,message", [
    (["a", "b"], r"^2 labels for a model of 1001 outputs$"),
    (["x"] * 1000 + ["two\nlines"], r"^label 1000 \('two\\nlines'\) must be non-empty text on one "
                                    r"line: the labels are packed one per line$"),
    (["x"] * 1000 + [" "], r"^label 1000 \(' '\) must be non-empty text on one line"),
])
def test_populate_refuses_labels_that_do_not_fit(labels, message, google_file):
    with pytest.raises(metadata.MetadataError, match=message):
        metadata.populate(google_file.read_bytes(), labels, name="n", description="d",
                          version="1", license="l")


def test_mediapipe_problem_table():
    """What MediaPipe takes (verified against MediaPipe itself in tests/test_export.py)."""
    from types import SimpleNamespace

    def runner(input_dtype, output_dtype, kind="raw_rgb", quantization=(0.0, 0)):
        return SimpleNamespace(input_dtype=input_dtype, output_dtype=output_dtype, input_kind=kind,
                               input_quantization=quantization)
    assert metadata.mediapipe_problem(runner("uint8", "float32")) is None
    assert metadata.mediapipe_problem(runner("uint8", "uint8", quantization=(2 / 255, 127))) is None
    assert metadata.mediapipe_problem(runner("float32", "uint8", "float")) is None
    assert re.fullmatch(r"will not load .*: its input tensor is int8 .*",
                        metadata.mediapipe_problem(runner("int8", "float32", "quantized")))
    assert re.fullmatch(r"will not load .*: its output tensor is int8 .*",
                        metadata.mediapipe_problem(runner("uint8", "int8")))
    assert re.fullmatch(r"loads in MediaPipe Tasks' ImageClassifier but gets wrong inputs: .* "
                        r"\(scale 0\.01, zero point 30\)",
                        metadata.mediapipe_problem(runner("uint8", "float32", "quantized",
                                                          (0.01, 30))))


# --- damaged files --------------------------------------------------------------------------------

def test_predict_refuses_a_file_whose_packed_labels_are_cut_off(google_file, shared_data, tmp_path,
                                                                capsys):
    """The flatbuffer is whole (LiteRT loads it) but the zip after it is cut short: one line,
    exit status 2, as for every damaged model file."""
    from mobilenet_tf import predict
    path = tmp_path / "cut.tflite"
    path.write_bytes(google_file.read_bytes()[:-30])
    tflite.TFLiteClassifier(path)
    status = predict.main([f"--model={path}", str(shared_data / "imagenet50" / "n01514668_cock.JPEG")])
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        f"python -m mobilenet_tf.predict: error: --model: {path}: its metadata names the labels "
        "file imagenet_labels.txt, which is not packed in it (BadZipFile; the file is damaged or "
        "cut short)"]


# --- a fine-tuned model end to end: train.py, export_tflite.py, MediaPipe -------------------------

def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def fine_tuned(shared_data, tmp_path_factory):
    """The quick start's ants/bees model, small: α=0.25 at 96x96 from the ImageNet weights, base
    frozen, a few steps; exported as the quick start does (int8, calibrated on the run's data)."""
    root = tmp_path_factory.mktemp("fine_tuned")
    run = root / "run"
    trained = _run("train.py", "--flagfile=flags/quickstart.flags",
                   f"--dataset=folder:{shared_data / 'hymenoptera'}",
                   f"--init_weights={shared_data / 'weights' / 'mobilenet_2_5_128_tf.h5'}",
                   f"--image_size={SIZE}", "--batch_size=16", "--train_steps=12",
                   f"--model_dir={run}", "--verbose=0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    # A few steps leave the head unsure: the int8 agreement threshold is not what is tested here.
    exported = _run("export_tflite.py", f"--model={run}", "--quantization=int8",
                    "--num_calibration_images=64", "--num_verification_images=32",
                    "--latency_runs=1", "--min_top1_agreement=0", f"--output={root / 'm.tflite'}")
    assert exported.returncode == 0, exported.stderr[-3000:]
    return root, exported


@pytest.mark.slow
def test_mediapipe_names_the_fine_tuned_models_classes(fine_tuned, shared_data):
    root, exported = fine_tuned
    path = root / "m.tflite"
    assert "MediaPipe" not in exported.stderr                  # a variant MediaPipe runs
    assert (root / "m_labels.txt").read_text() == "ants\nbees\n"   # still beside it
    meta = metadata.read_metadata(path.read_bytes())
    assert meta.labels == CLASSES and meta.version == "1"
    assert meta.license == ("not stated: the exporter does not know the license of these "
                            "weights and data")
    assert "2 classes: ants, bees" in meta.description
    images = export.load_images(f"folder:{shared_data / 'hymenoptera'}", SIZE, 40,
                                split="validation").images
    lite = tflite.TFLiteClassifier(path).predict(images)
    scores, top, names = oracles.mediapipe_classify(path, images)
    # uint8 in, int8 arithmetic: the same bytes give the same codes in any runtime.
    np.testing.assert_array_equal(scores, lite)
    decisive = np.abs(lite[:, 0] - lite[:, 1]) > 0
    print(f"fine-tuned int8: MediaPipe top-1 = LiteRT top-1 on "
          f"{(top == lite.argmax(1)).sum()}/{len(top)} images ({(~decisive).sum()} ties)")
    assert (top == lite.argmax(1))[decisive].all() and decisive.sum() > len(decisive) // 2
    assert names == dict(enumerate(CLASSES))


@pytest.mark.slow
def test_predict_reads_the_names_from_the_metadata(fine_tuned, shared_data, capsys):
    """Without the labels file beside it, and with a stale one: the file's own names win."""
    from mobilenet_tf import predict
    root, _ = fine_tuned
    photo = next((shared_data / "hymenoptera" / "val" / "bees").glob("*.jpg"))
    labels_file = root / "m_labels.txt"
    original = labels_file.read_text()
    try:
        for beside in (None, "wasps\nflies\n"):
            if beside is None:
                labels_file.unlink()
            else:
                labels_file.write_text(beside)
            assert predict.main([f"--model={root / 'm.tflite'}", str(photo)]) == 0
            rows = re.findall(r"^  \d\. +[\d.]+%  (\S+) \(class (\d)\)$", capsys.readouterr().out,
                              re.M)
            assert sorted(rows) == [("ants", "0"), ("bees", "1")]
    finally:
        labels_file.write_text(original)


@pytest.mark.slow
def test_export_says_when_mediapipe_will_not_load_the_file(fine_tuned, tmp_path):
    """An int8-input, int8-output export of the same run: written, with its metadata, and one
    line saying MediaPipe will not load it (MediaPipe's refusal: tests/test_export.py)."""
    root, _ = fine_tuned
    out = tmp_path / "i8.tflite"
    result = _run("export_tflite.py", f"--model={root / 'run'}", "--quantization=int8",
                  "--noraw_rgb_input", "--input_type=int8", "--output_type=int8",
                  "--num_calibration_images=8", "--noverify", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "MediaPipe" in line]
    assert lines == [
        f"WARNING: {out} will not load in MediaPipe Tasks' ImageClassifier: its input tensor is "
        "int8 (MediaPipe takes uint8 or float32 images). For MediaPipe, export with the defaults "
        "--raw_rgb_input and --output_type=float32"], result.stderr
    assert metadata.read_labels(out.read_bytes()) == CLASSES
