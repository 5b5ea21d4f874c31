"""The per-layer quantization report and selective quantization (issue 24).

* The mapping from a .tflite file's operators back to our layer names, on every layer of
  α=0.25/128 (its calibrated, full int8, float32 and mixed files) and of 1.0/224 (one conversion).
* The selection rule on a model made quantization-hostile at one known layer: channel 0 of
  Conv2d_3_depthwise is dead (its batch norm shifts it below ReLU6's 0) and Conv2d_3_pointwise
  weighs that channel 200 times its largest weight. The float model does not see the outlier
  (it multiplies zeros), but per-channel int8 weights of Conv2d_3_pointwise get a step 200 times
  too large and round the real weights to about nothing: the full int8 file agrees with the Keras
  model on no image, and keeping exactly that layer in float gives the agreement back.
* The one-line refusals: a name that is no layer, a pattern that matches none, a target that is
  not reached (nothing written), layers kept in float without int8, a PNG without matplotlib.
* MediaPipe Tasks' ImageClassifier reading a mixed int8 / float file.
"""

import json
import os
import re

import numpy as np
import pytest

import oracles
from mobilenet_tf.export import options as export_options

H5 = "weights/mobilenet_2_5_128_tf.h5"
HOSTILE = "Conv2d_3_pointwise"
# Our layer names of MobileNetV1's quantized layers, in order (TF-slim's end points).
LAYERS = (["Conv2d_0"] + [f"Conv2d_{i}_{part}" for i in range(1, 14)
                          for part in ("depthwise", "pointwise")]
          + ["AvgPool_1a", "Logits", "Predictions"])


def _google_025(shared_data):
    from mobilenet_tf import MobileNetV1
    return MobileNetV1((128, 128, 3), alpha=0.25, weights=str(shared_data / H5))


def _make_hostile(model, layer=HOSTILE, outlier=200.0):
    """`layer` quantization-hostile, the float model's outputs unchanged but for one dead channel
    (see the module docstring)."""
    depthwise = layer.replace("pointwise", "depthwise")
    norm = model.get_layer(f"{depthwise}_BatchNorm")
    gamma, beta, mean, variance = [w.numpy() for w in norm.weights]
    beta[0] = -1000.0                       # channel 0 below ReLU6's 0 for every image
    norm.set_weights([gamma, beta, mean, variance])
    conv = model.get_layer(layer)
    kernel = conv.kernel.numpy()
    kernel[0, 0, 0, :] = outlier * np.abs(kernel).max()
    conv.kernel.assign(kernel)
    return model


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module", autouse=True)
def _each_conversion_once():
    """The TFLite converter is what costs here (a SavedModel written and converted, seconds each):
    a call of ``converter.calibrate`` or ``converter.convert`` repeated with the same model object
    and equal arguments (the fixture's hostile model calibrated again by ``export_model`` and
    ``quantization_report`` on the same 32 photos, its float32 file made again) returns the
    bytes the first call made. Nothing else is patched; every quantization still runs."""
    from mobilenet_tf.export import converter
    made = []

    def once(function):
        def cached(model, *args, **kwargs):
            for other, other_args, other_kwargs, content in made:
                if other is model and _same(other_args, args) and _same(
                        sorted(other_kwargs.items()), sorted(kwargs.items())):
                    return content
            content = function(model, *args, **kwargs)
            made.append((model, args, kwargs, content))
            return content
        return cached

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(converter, "calibrate", once(converter.calibrate))
        patch.setattr(converter, "convert", once(converter.convert))
        yield


@pytest.fixture(scope="module")
def images_128(shared_data):
    from mobilenet_tf import export
    calibration = export.load_images(f"folder:{shared_data / 'hymenoptera'}", 128, 32)
    checked = export.load_images(f"folder:{shared_data / 'imagenet50'}", 128, 50,
                                 split="validation")
    return calibration.images, checked.images


@pytest.fixture(scope="module")
def hostile(shared_data, images_128):
    """(the hostile model, its SelectiveQuantizer, the verification images, Keras probabilities)."""
    from mobilenet_tf.export import selective, sensitivity
    model = _make_hostile(_google_025(shared_data))
    calibration, checked = images_128
    quantizer = selective.SelectiveQuantizer(model, calibration, num_calibration_images=32)
    return model, quantizer, checked, sensitivity.keras_probabilities(model, checked)


# --- the layer mapping ----------------------------------------------------------------------------

def _names(mapped):
    return [op.layer for op in mapped]


def test_every_layer_of_025_128_is_found_once_in_each_file(hostile):
    """Calibrated, full int8, float32 and a mixed file: the same layers, once each, in order, and
    the Keras tensor each operator holds is the layer's last part (its ReLU6, or itself)."""
    from mobilenet_tf.export import converter, layer_map
    model, quantizer, _, _ = hostile
    mixed = quantizer.quantize(("Conv2d_0", HOSTILE, "Logits", "Predictions"))
    files = {"calibrated": quantizer.calibrated, "int8": quantizer.quantize(),
             "float32": converter.convert(model, "none", raw_rgb_input=True), "mixed": mixed}
    for name, content in files.items():
        mapped = layer_map.map_layers(content, model)
        assert _names(mapped) == LAYERS[:-1] + ["SpatialSqueeze", "Predictions"], name
        assert layer_map.quantized_layers(mapped) == LAYERS, name
        outputs = {op.layer: op.output_layer for op in mapped}
        assert outputs["Conv2d_1_depthwise"] == "Conv2d_1_depthwise_Relu6"
        assert outputs["Logits"] == "Logits" and outputs["Predictions"] == "Predictions"
    assert layer_map.expected_layers(model) == LAYERS == quantizer.layers
    kept = {op.layer for op in layer_map.map_layers(mixed, model) if op.dtype == "float32"}
    assert kept == {"Conv2d_0", HOSTILE, "Logits", "Predictions"}


@pytest.mark.slow
def test_every_layer_of_1_0_224_is_found_once():
    """The full-size model: one conversion (the calibrated file), and its int8 quantization."""
    from mobilenet_tf import MobileNetV1
    from mobilenet_tf.export import converter, layer_map
    model = MobileNetV1((224, 224, 3), alpha=1.0, weights=None)
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    calibrated = converter.calibrate(model, images)
    for content in (calibrated, converter.quantize_calibrated(calibrated)):
        mapped = layer_map.map_layers(content, model)
        assert _names(mapped) == LAYERS[:-1] + ["SpatialSqueeze", "Predictions"]
        assert len(set(_names(mapped))) == len(mapped)
    assert layer_map.expected_layers(model) == LAYERS


def test_no_layer_in_float_is_the_full_int8_export(hostile, images_128):
    """Calibrate once + quantize with nothing left in float predicts exactly as convert(int8)
    on the same calibration images (the selective files and the plain export are one quantizer)."""
    from mobilenet_tf.export import converter, tflite
    model, quantizer, checked, _ = hostile
    plain = converter.convert(model, "int8", images_128[0])
    assert np.array_equal(tflite.TFLiteClassifier(plain).predict(checked),
                          tflite.TFLiteClassifier(quantizer.quantize()).predict(checked))


def test_mult_adds_by_layer_are_the_cost_calculators(hostile):
    from mobilenet_tf.export import layer_map
    from mobilenet_tf.model import costs
    counted = {row.name: row.mult_adds for row in costs.count(alpha=0.25, image_size=128).layers}
    assert layer_map.mult_adds_by_layer(hostile[0]) == counted


def test_an_operator_that_maps_to_no_layer_is_refused(hostile):
    """A Keras model whose layers the file does not hold (another model's names)."""
    from mobilenet_tf import MobileNetV1
    from mobilenet_tf.export import layer_map
    _, quantizer, _, _ = hostile
    other = MobileNetV1((128, 128, 3), alpha=0.25, weights=None, include_top=False, pooling="avg")
    with pytest.raises(layer_map.LayerMapError, match=r"maps to no layer of|computes layers"):
        layer_map.map_layers(quantizer.quantize(), other)


# --- the selection rule ---------------------------------------------------------------------------

def test_the_hostile_layer_is_what_the_automatic_choice_keeps_in_float(hostile):
    """Full int8 of the hostile model agrees on no image; the rule keeps exactly the hostile
    layer in float and reaches the target; every other layer alone in float does not."""
    from mobilenet_tf.export import selection
    model, quantizer, checked, keras_probs = hostile
    result = selection.select_float_layers(quantizer, checked, keras_probs, 0.7)
    assert result.float_layers == (HOSTILE,)
    assert result.agreement >= 0.7 and result.steps[0][1] <= 0.1
    assert result.ranking[0] == HOSTILE
    assert max(v for name, (v, _) in result.sensitivity.items() if name != HOSTILE) < 0.7
    assert any(HOSTILE in line for line in result.lines())


def test_an_unreachable_target_raises_with_the_best_found(hostile):
    from mobilenet_tf.export import selection
    _, quantizer, checked, keras_probs = hostile
    with pytest.raises(selection.SelectionError, match=r"float_layers_target=1 is not reached "
                       r"with at most 1 layer\(s\) in float: the best found keeps 1 "
                       rf"\({HOSTILE}\) and agrees on \d+/50") as raised:
        selection.select_float_layers(quantizer, checked, keras_probs, 1.0, max_float_layers=1)
    assert raised.value.selection.float_layers == (HOSTILE,)


@pytest.mark.parametrize("entries,expected", [
    (["Conv2d_0"], ("Conv2d_0",)),
    (["Conv2d_1[0-3]_pointwise", "Logits"], ("Conv2d_10_pointwise", "Conv2d_11_pointwise",
                                             "Conv2d_12_pointwise", "Conv2d_13_pointwise",
                                             "Logits")),
    ([".*_depthwise"], tuple(n for n in LAYERS if n.endswith("_depthwise"))),
])
def test_names_and_patterns_resolve_to_layers_in_model_order(entries, expected):
    from mobilenet_tf.export import selective
    assert selective.resolve_float_layers(entries, LAYERS) == expected


@pytest.mark.parametrize("entries,message", [
    (["Conv2d_99"], r"float_layers: 'Conv2d_99' is not a quantized layer of this model; its "
                    r"layers are Conv2d_0, .*, Predictions\. Received: float_layers=Conv2d_99"),
    (["conv2d_0"], r"'conv2d_0' is not a quantized layer"),
    (["Conv2d_99_.*"], r"float_layers: the pattern 'Conv2d_99_\.\*' matches no layer of this "
                       r"model \(it must match whole names such as Conv2d_0\)"),
    (["Conv2d_1"], r"'Conv2d_1' is not a quantized layer"),     # no prefix matching
    (["Conv2d_(1"], r"'Conv2d_\(1' is not a regular expression"),
])
def test_unknown_names_and_patterns_are_one_line_refusals(entries, message):
    from mobilenet_tf.export import selective
    with pytest.raises(export_options.ExportError, match=message) as raised:
        selective.resolve_float_layers(entries, LAYERS)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("settings,message", [
    (dict(float_layers="Conv2d_0"), r"`float_layers` must be a sequence of layer names"),
    (dict(float_layers_target=0.0), r"`float_layers_target` must be a fraction in \(0, 1\]"),
    (dict(float_layers_target=0.9, max_float_layers=0), r"`max_float_layers` must be an int >= 1"),
    (dict(max_float_layers=2), r"max_float_layers bounds the automatic choice: give "
                               r"float_layers_target too"),
    (dict(float_layers_target=0.9, verify=False), r"cannot be used with verify=False"),
])
def test_float_layer_options_are_checked(settings, message):
    with pytest.raises(export_options.ExportError, match=message):
        export_options.ExportOptions(**settings).check()


def test_float_layers_need_a_post_training_int8_export():
    problem = export_options.float_layers_problem
    assert re.search(r"float_layers keeps layers of an int8 export in float: it needs "
                     r"quantization=int8\. Received: quantization=float16",
                     problem("float16", ("Conv2d_0",), None))
    assert re.search(r"float_layers_target: a quantization-aware model",
                     problem("int8", (), 0.9, True))
    assert problem("int8", ("Conv2d_0",), 0.9) is None and problem("none", (), None) is None


# --- export_model and MediaPipe -------------------------------------------------------------------

def _options(shared_data, **settings):
    settings = dict(dict(num_verification_images=50, latency_runs=5), **settings)
    return export_options.ExportOptions(
        quantization="int8", representative_dataset=f"folder:{shared_data / 'hymenoptera'}",
        num_calibration_images=32, verify_dataset=f"folder:{shared_data / 'imagenet50'}",
        **settings)


@pytest.mark.parametrize("entry,message", [
    ("Conv2d_99", r"'Conv2d_99' is not a quantized layer of this model; its layers are Conv2d_0"),
    ("Conv2d_99_.*", r"the pattern 'Conv2d_99_\.\*' matches no layer of this model"),
])
def test_export_model_refuses_an_unknown_layer_before_any_work(hostile, shared_data, tmp_path,
                                                               library_log, entry, message):
    from mobilenet_tf.export import pipeline
    with pytest.raises(export_options.ExportError, match=message):
        pipeline.export_model(hostile[0], tmp_path / "m.tflite",
                              _options(shared_data, float_layers=("Conv2d_0", entry)))
    assert not any("Calibrating" in line for line in library_log)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_selective_export_keeps_the_hostile_layer_and_mediapipe_runs_it(hostile, shared_data,
                                                                          images_128, tmp_path):
    """export_model with a target: the written file has exactly the hostile layer in float, the
    comparison rows say what it costs, and MediaPipe's ImageClassifier classifies with it as
    the LiteRT interpreter does (the output is int8 softmax: one step is 1/256)."""
    from mobilenet_tf.export import layer_map, pipeline, tflite
    model = hostile[0]
    path = tmp_path / "mixed.tflite"
    result = pipeline.export_model(model, path, _options(shared_data, float_layers_target=0.7))
    assert result.float_layers == (HOSTILE,) and result.verification.top1_agreement >= 0.7
    assert [row.name for row in result.comparison] == ["float32", "full int8", "this export"]
    assert [row.float_layers for row in result.comparison] == [30, 0, 1]
    assert result.comparison[1].agreement <= 0.1
    content = path.read_bytes()
    assert {op.layer for op in layer_map.map_layers(content, model)
            if op.dtype == "float32"} == {HOSTILE}
    images = images_128[1]
    runner = tflite.TFLiteClassifier(content)
    step = runner.output_quantization[0] or 1 / 256     # float output of an int8 softmax
    lite = runner.predict(images).astype(np.float64)
    scores, top, _ = oracles.mediapipe_classify(path, images)
    ranked = np.sort(lite, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] > 2 * step
    assert np.abs(scores - lite).max() <= step + 1e-6
    assert (top == lite.argmax(axis=1))[decisive].all() and decisive.sum() > len(images) // 2


@pytest.mark.slow
def test_an_unreached_target_writes_nothing_and_is_a_work_failure(hostile, shared_data, tmp_path):
    """The target is checked on the verification images; not reached: nothing is written and
    the commands exit with 1 (a failure during the work, as a failed verification)."""
    from mobilenet_tf import errors
    from mobilenet_tf.export import pipeline, selection
    with pytest.raises(selection.SelectionError, match=r"is not reached") as raised:
        pipeline.export_model(hostile[0], tmp_path / "m.tflite",
                              _options(shared_data, num_verification_images=20,
                                       float_layers_target=1.0, max_float_layers=1))
    assert os.listdir(tmp_path) == []
    assert errors.exit_status(raised.value) == errors.EXIT_FAILED == 1


# --- the report -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_report_points_at_the_hostile_layer(hostile, shared_data, tmp_path):
    """Every quantized layer, once, by name; the hostile layer has the worst isolated error and
    is the one whose float version helps; the JSON round-trips; the PNG is a PNG."""
    from mobilenet_tf.export import report, report_plot
    model = hostile[0]
    options = _options(shared_data, num_verification_images=8)
    result = report.quantization_report(model, options, latency_rounds=2)
    rows = {row.layer: row for row in result.rows}
    assert list(rows) == LAYERS
    assert min(rows, key=lambda n: rows[n].isolated.snr_db) == HOSTILE
    assert max(rows, key=lambda n: rows[n].float_agreement) == HOSTILE
    assert rows[HOSTILE].accumulated.rmse_steps > 10 * rows["Conv2d_3_depthwise"].accumulated.rmse_steps
    assert abs(sum(r.mult_adds_share for r in result.rows) - 1) < 1e-9
    assert all(r.latency_ms is not None for r in result.rows) and result.latency_ms > 0
    lines = result.lines()
    assert any(line.lstrip().startswith(HOSTILE) for line in lines)
    data = json.loads(json.dumps(result.to_dict()))
    assert [layer["layer"] for layer in data["layers"]] == LAYERS
    assert data["layers"][0]["accumulated"]["snr_db"] == pytest.approx(rows["Conv2d_0"].accumulated.snr_db)
    if report_plot.matplotlib_problem() is None:
        assert report_plot.png_bytes(result)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_command_refuses_a_png_without_matplotlib(tmp_path, monkeypatch, capsys):
    import importlib.util
    from mobilenet_tf import quant_report
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    status = quant_report.main(["--weights=imagenet", f"--png={tmp_path / 'r.png'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert re.fullmatch(r"python -m mobilenet_tf\.quant_report: error: drawing the PNG needs "
                        r"matplotlib, which is not installed: pip install "
                        r"'mobilenet-tf\[plot\]'", err[0])
    assert os.listdir(tmp_path) == []
