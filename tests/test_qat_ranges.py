"""Issue 26: the learned activation ranges of quantization-aware training start from a
calibration pass (the converter's rule for post-training int8: min and max over the calibration
images), and TensorBoard shows how much of those images each range clips."""

import os

import numpy as np
import pytest

from mobilenet_tf import training
from mobilenet_tf.model import qat, qat_ranges
from mobilenet_tf.training import inputs


def _gray_folder(root, per_class=4, size=64):
    """Two class folders of flat gray images: a training batch unlike any photo."""
    import tensorflow as tf
    for c, name in enumerate(("a", "b")):
        os.makedirs(root / name)
        for i in range(per_class):
            image = np.full((size, size, 3), 100 + 10 * c + i, np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(image))


@pytest.mark.slow
def test_ranges_start_from_the_calibration_images_not_the_first_batch(tmp_path, shared_data):
    """A QAT fine-tune whose only training batch is flat gray images, calibrated on photos
    (--representative_dataset): after its first step each learned range still covers the
    photos (one step of the moving average, decay 0.999, moves it by 0.1% of the gap to the
    batch's range, so at most a sliver of the photos' values falls outside). Without the
    calibration pass the gray batch sets the ranges, which clip a large share of the photos'
    values (the known-wrong start, measured here on the same model)."""
    gray = tmp_path / "gray"
    _gray_folder(gray)
    photos = f"folder:{shared_data / 'hymenoptera' / 'val'}"
    config = training.TrainConfig(
        dataset=f"folder:{gray}", mode="train", model_dir=str(tmp_path / "run"), alpha=0.25,
        image_size=64, batch_size=8, train_steps=1, epochs=1, quantize=True,
        init_weights=str(shared_data / "weights" / "mobilenet_2_5_128_tf.h5"),
        representative_dataset=photos, num_calibration_images=48, learning_rate=1e-7,
        log_every_steps=1, color_distortion=False, validation_fraction=0.0, verbose=0)
    model = training.train(config)["model"]
    calibration = inputs.calibration_batches(config, inputs.load_data(config))
    assert sum(len(b) for b in calibration) == 48
    extremes = _extremes(model, calibration)
    assert set(extremes) == {"AvgPool_1a_quant", "Logits_quant"}
    # One moving-average step (decay 0.999) towards the batch's range moves each end by at most
    # 0.001 of the distance; 0.002 of the calibrated width bounds it (the weights barely move at
    # this learning rate). The logits' values also moved with their input's grid (AvgPool's
    # range moved by that sliver: half a step of it on 256 inputs, ~1% of the logits' width
    # here), so their range is held to 3% of its width.
    for name, (low, high) in qat.activation_ranges(model).items():
        lo, hi = extremes[name]
        slack = (0.002 if name == "AvgPool_1a_quant" else 0.03) * (hi - lo)
        assert low <= lo + slack and high >= hi - slack, (name, low, high, extremes[name])

    from tests.test_qat import _events
    events = _events(os.path.join(config.model_dir, "tensorboard", "train"))
    clipped = qat_ranges.clipped_fractions(model, calibration)
    for name in extremes:
        assert events[f"quantization/{name}/clipped"][-1] == pytest.approx(clipped[name], abs=1e-9)

    # The known-wrong start: the gray batch alone sets the logits' range far inside the photos'
    # (AvgPool's less so: some channels saturate on gray too).
    first = inputs.calibration_batches(
        training.TrainConfig(**{**config.__dict__, "representative_dataset": None}),
        inputs.load_data(training.TrainConfig(**{**config.__dict__, "representative_dataset": None})))
    wrong, _ = qat_ranges.calibrate_ranges(model, first)
    lo, hi = extremes["Logits_quant"]
    assert wrong["Logits_quant"][1] < hi - 0.3 * (hi - lo), (wrong, extremes)
    assert qat_ranges.clipped_fractions(model, calibration)["Logits_quant"] >= 0.1


def _extremes(model, batches):
    """``{name: (min, max)}`` (with 0) of the values each learned range of `model` quantizes on
    `batches`, in inference (a model of its layers up to the quantizer's input)."""
    import keras
    out = {}
    for layer in qat_ranges.learned_quantizers(model):
        probe = keras.Model(model.input, layer.input)
        values = np.concatenate([np.asarray(layer.activate(probe(b, training=False))).ravel()
                                 for b in batches])
        out[layer.name] = (min(float(values.min()), 0.0), max(float(values.max()), 0.0))
    return out


def test_calibration_is_the_min_and_max_over_all_batches(shared_data):
    """calibrate_ranges: the converter's calibrator's rule, the extremes over every batch (not
    the first batch's, not an average of the batches'), widened to include 0; the ranges then
    count as seen, so the moving average continues from them. (Google's weights: a randomly
    initialized MobileNetV1's pooled features are all 0, which would test nothing.)"""
    from mobilenet_tf import MobileNetV1
    weights = str(shared_data / "weights" / "mobilenet_2_5_128_tf.h5")
    twin = qat.quantize_model(MobileNetV1((128, 128, 3), alpha=0.25, weights=weights))
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-0.1, 0.1, (4, 128, 128, 3)).astype("float32"),
               rng.uniform(-1, 1, (4, 128, 128, 3)).astype("float32")]
    ranges, count = qat_ranges.calibrate_ranges(twin, batches)
    assert count == 8
    first = _extremes(twin, batches[:1])
    assert all(ranges[k] != first[k] and ranges[k][1] > ranges[k][0] for k in ranges)
    assert ranges == _extremes(twin, batches)
    assert qat.activation_ranges(twin)["Logits_quant"] == pytest.approx(ranges["Logits_quant"])
    assert all(float(layer.range_seen.numpy()) == 1.0
               for layer in qat_ranges.learned_quantizers(twin))
    assert all(f == 0.0 for f in qat_ranges.clipped_fractions(twin, batches).values())


def _file_vs_keras(twin, images):
    """``(agreeing, agreeing or tied, n)``: top-1 of the full-int8 file of `twin` (uint8 in,
    float out, as export.convert writes it) against the Keras model fed what the file's uint8
    input means; "tied": the file's output ties its top-1 with the Keras model's exactly (its
    softmax has 1/256 steps, and argmax takes the lower index)."""
    from mobilenet_tf import export
    from mobilenet_tf.export import tflite
    runner = tflite.TFLiteClassifier(export.convert(twin, "int8"))
    scale, zero_point = runner.input_quantization
    lite = runner.predict(images)
    ours = np.asarray(twin((images.astype(np.float32) - zero_point) * np.float32(scale),
                           training=False)).argmax(1)
    theirs = lite.argmax(1)
    rows = np.arange(len(images))
    tied = lite[rows, ours] == lite[rows, theirs]
    return int((ours == theirs).sum()), int(((ours == theirs) | tied).sum()), len(images)


@pytest.mark.slow
def test_int8_file_computes_the_keras_qat_models_top1(shared_data):
    """Issue 26, item 3: the full-int8 file of the QAT twin of Google's α=0.25/128 weights
    (ranges calibrated on 64 ants/bees train photos) and its Keras model give the same top-1 on
    the 153 held-out ants/bees photos and the 50 imagenet50 images: 197/203 (97.0%) when
    written, 199/203 counting an exact tie in the file's output (its softmax has 1/256 steps)
    as agreeing. Not 99%: the float simulation and the int8 kernels round a value differently
    about once in 10^4, MobileNetV1 amplifies such a level through its 13 blocks, and top-1 flips
    where the two best classes are within a few logit steps (docs/qat.md). Pinned two images
    below the measured counts (summation order on another CPU can flip a near tie); the
    known-wrong input grid (the range (-1, 1), clamping black pixels a level off) gave 192 and
    196, below both bounds."""
    from mobilenet_tf import MobileNetV1, export
    weights = str(shared_data / "weights" / "mobilenet_2_5_128_tf.h5")
    spec = f"folder:{shared_data / 'hymenoptera'}"
    calibration = export.load_images(spec, (128, 128), 64, split="train")
    images = np.concatenate([
        export.load_images(spec, (128, 128), 1000, split="validation").images,
        export.load_images(f"folder:{shared_data / 'imagenet50'}", (128, 128), 50).images])
    twin = qat.quantize_model(MobileNetV1((128, 128, 3), alpha=0.25, weights=weights))
    qat_ranges.calibrate_ranges(twin, [export.to_unit_range(calibration.images)])
    same, same_or_tied, n = _file_vs_keras(twin, images)
    assert n == 203
    assert same >= 195 and same_or_tied >= 197, (same, same_or_tied, n)
