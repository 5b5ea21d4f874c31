"""Training library: the L2 filter, the learning-rate schedule, optimizers, NaN stop, EMA, learning."""

import json
import math
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import numerics
import oracles
from mobilenet_tf import MobileNetV1
from mobilenet_tf import data as data_lib
from mobilenet_tf import training
from mobilenet_tf.training import callbacks, loop

POINTWISE = [f"Conv2d_{i}_pointwise/kernel" for i in range(1, 14)]
DEPTHWISE = [f"Conv2d_{i}_depthwise/kernel" for i in range(1, 14)]
BATCH_NORM = [f"{name}_BatchNorm/{w}" for name in ["Conv2d_0"] + [
    f"Conv2d_{i}_{k}" for i in range(1, 14) for k in ("depthwise", "pointwise")]
    for w in ("gamma", "beta")]


def _small_model(classes=5):
    return MobileNetV1((32, 32, 3), alpha=0.25, classes=classes)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(size=v.shape).astype("float32"))


@pytest.mark.parametrize("regularize_depthwise, expected", [
    (False, ["Conv2d_0/kernel"] + POINTWISE + ["Logits/kernel"]),
    (True, ["Conv2d_0/kernel"] + POINTWISE + DEPTHWISE + ["Logits/kernel"]),
])
def test_l2_filter_selects_exactly_the_expected_variables(regularize_depthwise, expected):
    model = _small_model()
    decayed, excluded = training.split_weight_decay(model, regularize_depthwise)
    assert sorted(v.path for v in decayed) == sorted(expected)
    expected_excluded = BATCH_NORM + ["Logits/bias"] + ([] if regularize_depthwise else DEPTHWISE)
    assert sorted(v.path for v in excluded) == sorted(expected_excluded)
    assert len(decayed) + len(excluded) == len(model.trainable_variables)


def test_l2_value_is_slim_wd_sum_w2_over_2_and_is_in_the_loss():
    model = _small_model()
    _randomize(model)
    wd = 4e-5
    decayed, _ = training.apply_weight_decay(model, wd)
    by_path = {v.path: v.numpy() for v in model.trainable_variables}
    by_hand = wd * sum(float(np.sum(by_path[p].astype(np.float64) ** 2))
                       for p in ["Conv2d_0/kernel"] + POINTWISE + ["Logits/kernel"]) / 2
    # A float32 sum of N positive terms: within N·u of itself.
    rel = numerics.U32 * sum(v.numpy().size for v in decayed)
    assert float(training.l2_penalty(decayed, wd)) == pytest.approx(by_hand, rel=rel)
    # The regularizers Keras adds to the training loss sum to the same value.
    assert float(tf.add_n(model.losses)) == pytest.approx(by_hand, rel=rel)
    assert len(model.losses) == 15


def test_frozen_base_decays_only_the_logits_kernel():
    model = _small_model()
    for layer in model.layers:
        if layer.name != "Logits":
            layer.trainable = False
    decayed, excluded = training.split_weight_decay(model)
    assert [v.path for v in decayed] == ["Logits/kernel"]
    assert [v.path for v in excluded] == ["Logits/bias"]


def test_unknown_trainable_variable_is_an_error():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.LayerNormalization(name="ln")(inputs))
    with pytest.raises(ValueError, match=r"the weight decay rule has no decision for trainable "
                                         r"variable 'ln/gamma' of a LayerNormalization layer"):
        training.split_weight_decay(model)


def _float32_rel(decays, factor):
    """Relative error of rate · factor**decays (+ a warmup fraction) in float32: pow's error
    grows with |decays · ln factor| (it is exp(y · log x)), then a few ulps per operation."""
    return (abs(decays * math.log(factor)) + 8) * numerics.U32


def test_staircase_schedule_equals_the_formula_at_step_boundaries():
    schedule = training.StaircaseDecayWithWarmup(0.1, decay_steps=10, decay_factor=0.94)
    for step in (0, 1, 9, 10, 11, 19, 20, 29, 30, 99, 100, 1000):
        assert float(schedule(step)) == pytest.approx(
            0.1 * 0.94 ** (step // 10), rel=_float32_rel(step // 10, 0.94)), step


def test_warmup_is_linear_then_the_staircase():
    schedule = training.StaircaseDecayWithWarmup(0.2, decay_steps=10, decay_factor=0.5,
                                                 warmup_steps=4)
    expected = {0: 0.2 * 1 / 4, 1: 0.2 * 2 / 4, 2: 0.2 * 3 / 4, 3: 0.2, 9: 0.2, 10: 0.1, 25: 0.05}
    for step, lr in expected.items():
        assert float(schedule(step)) == pytest.approx(lr, rel=_float32_rel(step // 10, 0.5)), step


def test_batch_size_scaling_rule_and_decay_every_two_epochs():
    config = training.TrainConfig(base_learning_rate=0.016, batch_size=512, lr_decay_epochs=2.0,
                                  warmup_epochs=0.5)
    schedule = training.learning_rate_schedule(config, steps_per_epoch=100)
    assert schedule.rate == 0.016 * 512 / 256
    assert training.initial_learning_rate(config)[1].startswith(
        "0.032 (= base_learning_rate 0.016 x batch 512 / 256: linear scaling")
    assert (schedule.decay_steps, schedule.warmup_steps) == (200, 50)
    assert float(schedule(199)) == pytest.approx(0.032, rel=_float32_rel(0, 0.94))
    assert float(schedule(200)) == pytest.approx(0.032 * 0.94, rel=_float32_rel(1, 0.94))
    assert training.scaled_learning_rate(0.045, 32, 32) == 0.045
    assert training.StaircaseDecayWithWarmup.from_config(schedule.get_config()).get_config() == \
        schedule.get_config()


def test_a_given_learning_rate_is_the_rate_used_whatever_the_batch():
    """--learning_rate=0.001 --batch_size=32 trains at 0.001 (a Keras user's expectation),
    not 0.001 x 32/256; the base rate, also given, is then ignored."""
    for batch_size in (32, 512):
        config = training.TrainConfig(learning_rate=0.001, base_learning_rate=0.5,
                                      batch_size=batch_size, base_batch_size=64)
        schedule = training.learning_rate_schedule(config, steps_per_epoch=10)
        assert schedule.rate == 0.001
        assert training.initial_learning_rate(config) == (0.001, "0.001 (learning_rate, as given)")
    with pytest.raises(ValueError, match=r"learning_rate.*Received: learning_rate=0"):
        training.TrainConfig(learning_rate=0.0).check()


def test_rmsprop_matches_the_paper_and_slim_settings():
    config = training.TrainConfig(moving_average_decay=0.9999)
    opt = training.make_optimizer(config, 0.01)
    assert isinstance(opt, keras.optimizers.RMSprop)
    assert (opt.rho, opt.momentum, opt.epsilon) == (0.9, 0.9, 1.0)
    assert opt.use_ema and opt.ema_momentum == 0.9999
    assert not training.make_optimizer(training.TrainConfig(), 0.01).use_ema
    sgd = training.make_optimizer(training.TrainConfig(optimizer="sgd"), 0.01)
    momentum = training.make_optimizer(training.TrainConfig(optimizer="momentum"), 0.01)
    assert (sgd.momentum, momentum.momentum) == (0.0, 0.9)


GRADIENTS = np.array([[1.0, -2.0, 0.5, 0.0], [0.3, 0.1, -4.0, 1.5], [-1.0, 1.0, 2.0, -0.5]])
START = np.array([0.5, -0.25, 1.0, 2.0])


def _apply(optimizer):
    """The variable (and its moving average) after each of the GRADIENTS steps."""
    variable = keras.Variable(START.astype("float32"))
    optimizer.build([variable])
    values, averages = [], []
    for gradient in GRADIENTS:
        optimizer.apply_gradients([(tf.constant(gradient, tf.float32), variable)])
        values.append(np.asarray(variable, np.float64))
        if optimizer.use_ema:
            averages.append(np.asarray(optimizer._model_variables_moving_average[0], np.float64))
    return values, averages


def _close(got, expected, step):
    # float32 steps: each multiplies, adds, divides and square-roots values of at most this size
    # a few times; errors add over the steps.
    scale = max(np.abs(np.asarray(expected)).max(), 1.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=16 * step * numerics.U32 * scale)


def test_rmsprop_step_is_slims_formula_with_each_setting_in_its_place():
    """TF-slim's RMSProp (ms = ρ·ms + (1-ρ)·g², mom = μ·mom + lr·g/√(ms + ε), w -= mom; ms
    starts at 0 in Keras) and the moving average (a = d·a + (1-d)·w after each step, a = w
    after the first), with every setting different so a swap shows. The learning rate is the
    config's base rate scaled to the batch (0.02 · 64/32)."""
    config = training.TrainConfig(rmsprop_decay=0.8, momentum=0.6, epsilon=0.3,
                                  moving_average_decay=0.7, base_learning_rate=0.02, batch_size=64,
                                  base_batch_size=32)
    values, averages = _apply(training.make_optimizer(
        config, training.learning_rate_schedule(config, steps_per_epoch=1000)))
    lr, w, ms, mom, average = 0.04, START.copy(), 0.0, 0.0, None
    for step, gradient in enumerate(GRADIENTS, 1):
        ms = 0.8 * ms + 0.2 * gradient ** 2
        mom = 0.6 * mom + lr * gradient / np.sqrt(ms + 0.3)
        w = w - mom
        average = w if step == 1 else 0.7 * average + 0.3 * w
        _close(values[step - 1], w, step)
        _close(averages[step - 1], average, step)


@pytest.mark.parametrize("name, momentum", [("momentum", 0.6), ("sgd", 0.0)])
def test_sgd_steps_are_the_heavy_ball_formula(name, momentum):
    """m = μ·m - lr·g, w += m (Keras SGD, TF's MomentumOptimizer up to the sign of m); sgd has
    μ = 0 whatever --momentum says."""
    config = training.TrainConfig(optimizer=name, momentum=0.6, learning_rate=0.05,
                                  batch_size=256)
    values, _ = _apply(training.make_optimizer(config, training.learning_rate_schedule(config, 1000)))
    w, m = START.copy(), 0.0
    for step, gradient in enumerate(GRADIENTS, 1):
        m = momentum * m - 0.05 * gradient
        w = w + m
        _close(values[step - 1], w, step)


def test_adamw_decoupled_decay_only_on_decayed_variables():
    model = _small_model()
    _randomize(model)
    decayed, excluded = training.apply_weight_decay(model, 0.1, decoupled=True)
    assert model.losses == []   # not in the loss: decoupled
    opt = training.make_optimizer(training.TrainConfig(optimizer="adamw", weight_decay=0.1), 0.5,
                                  excluded_from_decay=excluded)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for v in decayed:
        # w - w·wd·lr in float32: two products and a difference, each rounded once.
        np.testing.assert_allclose(v.numpy(), before[v.path] * (1 - 0.5 * 0.1),
                                   rtol=4 * numerics.U32)
    for v in excluded:
        np.testing.assert_array_equal(v.numpy(), before[v.path])


@pytest.mark.parametrize("start, total, expected", [
    (0, 30, [(0, 10, 0), (1, 10, 0), (2, 10, 0)]),
    (13, 40, [(1, 7, 3), (2, 10, 0), (3, 10, 0)]),
    (0, 15, [(0, 10, 0), (1, 5, 0)]),
    (22, 25, [(2, 3, 2)]),
    (30, 30, []),
])
def test_fit_segments_are_the_epochs_left(start, total, expected):
    assert loop._segments(start, total, 10) == expected


@pytest.mark.parametrize("changes, pattern", [
    ({"alpha": 0}, r"`alpha` must be > 0\. Received: alpha=0"),
    ({"image_size": 16}, r"`image_size` must be an int >= 32\. Received: image_size=16"),
    ({"optimizer": "adam"}, r"`optimizer` must be one of .*Received: optimizer='adam'"),
    ({"label_smoothing": 1.0}, r"`label_smoothing` must be in \[0, 1\)\. Received: label_smoothing=1\.0"),
    ({"freeze_base": True}, r"`freeze_base` needs `init_weights`"),
    ({"dataset": "folder:"}, r"Received: dataset='folder:'"),
    ({"image_size": 32.0}, r"^`image_size` must be an int >= 32\. Received: image_size=32\.0$"),
    ({"rmsprop_decay": 0.0}, r"^`rmsprop_decay` must be in \(0, 1\]\. Received: rmsprop_decay=0\.0$"),
    ({"synthetic_classes": 1}, r"^`synthetic_classes` must be an int >= 2\. Received: "
                               r"synthetic_classes=1$"),
    ({"verbose": 3}, r"^`verbose` must be None or an int in \[0, 2\]\. Received: verbose=3$"),
    ({"teacher": "t.h5", "teacher_image_size": 16},
     r"^`teacher_image_size` must be None or an int >= 32\. Received: teacher_image_size=16$"),
    ({"folder_formats": ()}, r"^`folder_formats` must be a non-empty subset of jpeg, png, bmp, "
                             r"gif\. Received: folder_formats=\(\)$"),
    ({"mode": "eval", "dataset": "synthetic", "validation_fraction": 0.0},
     r"^`validation_fraction` must be > 0 for `mode` 'eval' on synthetic data\. Received: "
     r"validation_fraction=0\.0, mode='eval', dataset='synthetic'$"),
])
def test_config_errors(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        training.TrainConfig(**changes).check()


def _synthetic_config(model_dir, **changes):
    """A tiny run; Table 5's shallow MobileNet (the same layers, 9 rows) traces faster."""
    base = dict(dataset="synthetic", synthetic_examples=48, synthetic_classes=4, alpha=0.25,
                image_size=32, batch_size=8, mode="train", model_dir=str(model_dir), verbose=0,
                log_every_steps=1, architecture="shallow_mobilenet")
    base.update(changes)
    return training.TrainConfig(**base)


@pytest.mark.slow
def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    training.train(_synthetic_config(tmp_path, train_steps=3))
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")
    os.remove(tmp_path / "model.keras")
    with pytest.raises(training.TrainingError,
                       match=r"loss is (nan|inf|-inf) at step (\d+): training stopped; "
                             r"the last good checkpoint is .*ckpt-(\d+)$") as info:
        training.train(_synthetic_config(tmp_path, train_steps=20, learning_rate=1e35,
                                         checkpoint_every_steps=1))
    match = re.search(r"at step (\d+):.*ckpt-(\d+)$", str(info.value))
    bad_step, good_step = int(match.group(1)), int(match.group(2))
    assert 3 < bad_step <= 20 and good_step == bad_step - 1
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith(f"ckpt-{good_step}")
    assert not (tmp_path / "model.keras").exists()
    reader = tf.train.load_checkpoint(latest)
    for name, _ in tf.train.list_variables(latest):
        if name.endswith("VARIABLE_VALUE"):
            assert np.all(np.isfinite(reader.get_tensor(name))), name


def _mirror_symmetric_folder(path, classes=3, per_class=12, size=32, seed=0):
    """Images equal to their own mirror image: with min_crop_area=1 (the whole image) and no
    colour distortion, the training input is deterministic, so two runs can be compared."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        (path / f"class_{label}").mkdir(parents=True)
        for i in range(per_class):
            half = rng.integers(0, 256, (size, size // 2, 3))
            half[..., label] = 255
            image = np.concatenate([half, half[:, ::-1]], axis=1).astype(np.uint8)
            tf.io.write_file(str(path / f"class_{label}" / f"{i}.png"), tf.io.encode_png(image))


def _checkpoint_reader(model_dir):
    """``read(step) -> ({variable path: raw value}, {variable path: EMA average})`` for the
    checkpoints of a train.py run (its model and optimizer rebuilt once)."""
    model, optimizer, _, _ = training.restore_run(str(model_dir))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)

    def read(step):
        checkpoint.restore(str(model_dir / "checkpoints" / f"ckpt-{step}")).expect_partial()
        raw = {v.path: np.asarray(v) for v in model.weights}
        averages = {v.path: np.asarray(a) for v, a in
                    zip(model.trainable_variables, optimizer._model_variables_moving_average)
                    } if optimizer.use_ema else {}
        return raw, averages
    return read


@pytest.mark.slow
def test_ema_training_goes_on_from_raw_weights_and_evaluates_the_averages(tmp_path):
    """With moving averages on, (1) every epoch trains on from the raw weights: the raw
    trajectory is the one of the same run without averages, bit for bit on the same inputs;
    (2) validation after each epoch, --mode=eval and model.keras use the averages: their
    figures are the averaged weights of that step's checkpoint scored here (oracles), and the
    raw weights score measurably differently."""
    _mirror_symmetric_folder(tmp_path / "data")
    base = dict(dataset=f"folder:{tmp_path / 'data'}", validation_fraction=0.25, alpha=0.25,
                image_size=32, batch_size=8, train_steps=6, learning_rate=0.5, dropout=0.0,
                min_crop_area=1.0, color_distortion=False, checkpoint_every_steps=1,
                keep_checkpoints=20, verbose=0, log_every_steps=0,
                architecture="shallow_mobilenet")     # Table 5: the same layers, traced faster

    def run(name, decay, mode):
        keras.utils.set_random_seed(0)      # the same initial weights
        return training.train(training.TrainConfig(
            model_dir=str(tmp_path / name), moving_average_decay=decay, mode=mode, **base))

    # (1) Without validation nothing but the averages' bookkeeping differs between the runs
    # (Keras swaps raw and averaged weights by addition around each validation, which rounds):
    # the same arithmetic, so the same raw weights, where going on from the averages after
    # epoch 1 (3 steps) would move step 4 by the whole gap between raw and averaged weights.
    run("ema", 0.9, "train")
    run("plain", 0.0, "train")
    ema, plain_run = _checkpoint_reader(tmp_path / "ema"), _checkpoint_reader(tmp_path / "plain")
    for step in (3, 4, 6):
        raw, averages = ema(step)
        plain, _ = plain_run(step)
        for name, value in raw.items():
            np.testing.assert_array_equal(value, plain[name], err_msg=f"step {step}: {name}")
    assert max(np.abs(raw[name] - averages[name]).max() for name in averages) > 0.01

    # (2) What validation, eval and model.keras scored: the averages of the checkpoint.
    summary = run("ema_eval", 0.9, "train_and_eval")
    assert summary["ema"] and summary["steps_per_epoch"] == 3
    data = data_lib.load_dataset(f"folder:{tmp_path / 'data'}", validation_fraction=0.25)
    (images, labels), = data_lib.eval_input(data, batch_size=9, image_size=32).as_numpy_iterator()
    saved = keras.models.load_model(tmp_path / "ema_eval" / "model.keras")
    scorer = keras.models.clone_model(saved)

    def score(raw, averages):
        for v in scorer.weights:
            v.assign(averages.get(v.path, raw[v.path]))
        return oracles.validation_scores(scorer, images, labels, training.TrainConfig().weight_decay)

    ema_eval = _checkpoint_reader(tmp_path / "ema_eval")
    for epoch, step in enumerate((3, 6)):
        raw, averages = ema_eval(step)
        top1, _, loss, bound = score(raw, averages)
        assert abs(summary["history"]["val_loss"][epoch] - loss) <= bound, (epoch, loss)
    _, _, raw_loss, _ = score(raw, {})
    assert abs(raw_loss - loss) > bound                     # the check tells them apart
    for v in saved.weights:      # each swap may round a value by an ulp of |raw| + |average|
        value = averages.get(v.path, raw[v.path])
        swap_rounding = 4 * numerics.U32 * (np.abs(raw[v.path]).max() + np.abs(value).max())
        np.testing.assert_allclose(np.asarray(v), value, rtol=0, atol=swap_rounding, err_msg=v.path)
    result = training.evaluate(str(tmp_path / "ema_eval"), verbose=0)
    assert result["ema"] and result["step"] == 6
    assert round(result["top1"] * 9) == top1 and abs(result["loss"] - loss) <= bound


@pytest.mark.slow
def test_model_dir_of_another_run_is_refused(tmp_path):
    training.train(_synthetic_config(tmp_path, train_steps=1))
    with pytest.raises(training.TrainingError,
                       match=r"model_dir .* holds a run with alpha=0\.25, this run has alpha=0\.5"):
        training.train(_synthetic_config(tmp_path, train_steps=2, alpha=0.5))


def _colour_folder(path, n_per_class, size=40, seed=0):
    """Class 'red' and class 'blue': noise images with a strong red or blue cast."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(("red", "blue")):
        (path / name).mkdir(parents=True)
        for i in range(n_per_class):
            image = rng.integers(0, 120, (size, size, 3))
            image[..., 0 if label == 0 else 2] += 120
            tf.io.write_file(str(path / name / f"{i}.png"), tf.io.encode_png(image.astype(np.uint8)))


@pytest.mark.slow
def test_from_scratch_training_lowers_the_loss(tmp_path):
    _colour_folder(tmp_path / "data", 48)
    config = training.TrainConfig(
        dataset=f"folder:{tmp_path / 'data'}", validation_fraction=0.25, alpha=0.25, image_size=32,
        batch_size=8, epochs=8, learning_rate=0.005,
        batch_norm_momentum=0.9, cache="memory", model_dir=str(tmp_path / "run"), verbose=0,
        mode="train_and_eval")
    summary = training.train(config)
    loss, val = summary["history"]["loss"], summary["history"]["val_top1"]
    print("from-scratch loss per epoch:", [round(x, 3) for x in loss],
          "val top-1:", [round(x, 3) for x in val])
    # A classifier that has learned nothing scores ln 2 on two balanced classes; on the 24
    # held-out images a coin reaches the required hits (23) with probability under 1e-4 (exact
    # binomial tail), whichever of the 8 epochs is counted: 1e-4 / 8 each.
    assert len(loss) == 8
    assert np.mean(loss[-3:]) < math.log(2)
    assert round(max(val) * 24) >= numerics.beyond_chance(24, 0.5, alpha=1e-4 / 8)


@pytest.mark.slow
def test_fine_tuning_head_on_hymenoptera_is_far_above_chance(
        tmp_path, shared_data, library_log):
    h5 = shared_data / "weights" / "mobilenet_2_5_128_tf.h5"
    config = training.TrainConfig(
        dataset=f"folder:{shared_data / 'hymenoptera'}", alpha=0.25, image_size=128,
        init_weights=str(h5), freeze_base=True, batch_size=32, epochs=8, cache="memory",
        model_dir=str(tmp_path), verbose=0)
    summary = training.train(config)
    print("hymenoptera fine-tuning val top-1 per epoch:",
          [round(x, 3) for x in summary["history"]["val_top1"]],
          f"train {summary['train_seconds']:.1f}s")
    # Chance is naming the larger class (83 bees of 153, 0.54) every time; a classifier that
    # learned nothing gets the required hits with probability under 1e-6 (exact binomial tail).
    assert round(summary["final_top1"] * 153) >= numerics.beyond_chance(153, 83 / 153)
    assert summary["num_train"] == 244 and summary["skipped_files"] == 1
    said = "\n".join(library_log)
    assert "imageNotFound.gif: GIF" in said
    # The frozen base kept the pretrained weights and batch norm statistics.
    model = summary["model"]
    reference = MobileNetV1((128, 128, 3), alpha=0.25, classes=2)
    from mobilenet_tf.model import weights
    weights.load_weights(reference, str(h5), skip_mismatched_head=True, verbose=False)
    for a, b in zip(reference.weights, model.weights):
        if not a.path.startswith("Logits"):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["final_top1"] == summary["final_top1"]       # JSON keeps floats


def test_fine_tuning_keeps_batch_norm_in_inference_mode_unless_asked(shared_data):
    h5 = str(shared_data / "weights" / "mobilenet_2_5_128_tf.h5")

    def trainable(**changes):
        config = training.TrainConfig(alpha=0.25, image_size=128, init_weights=h5, **changes)
        model = training.build_model(config, 3)
        return {layer.name: layer.trainable for layer in model.layers if layer.weights}

    default = trainable()
    assert not any(t for name, t in default.items() if name.endswith("_BatchNorm"))
    assert all(t for name, t in default.items() if not name.endswith("_BatchNorm"))
    assert all(trainable(train_batch_norm=True).values())
    frozen = trainable(freeze_base=True)
    assert [name for name, t in frozen.items() if t] == ["Logits"]
    # From scratch nothing is frozen, whatever train_batch_norm says.
    config = training.TrainConfig(alpha=0.25, image_size=128)
    assert all(layer.trainable for layer in training.build_model(config, 3).layers)


def test_images_per_second_times_every_step_but_the_traced_first(monkeypatch):
    """images/s = images of the timed steps / their seconds, on a fake clock. The run's first
    step (tracing and compiling) is left out, later fit() calls reuse the traced step and are
    timed from their first step, so one-step epochs count; the progress bar and epoch logs show
    the epoch's rate."""
    class Manager:
        latest_checkpoint, saved = None, []

        def save(self, checkpoint_number):
            self.saved.append(checkpoint_number)

    class Optimizer:
        iterations = tf.Variable(0, dtype=tf.int64)

    # Two fit() calls: steps of 10 s (traced, untimed), 0.5, 0.25 s; then 4 s, 1 s.
    durations = [[10.0, 0.5, 0.25], [4.0, 1.0]]
    clock = iter(np.cumsum([0] + [d for epoch in durations for step in epoch for d in (step, 1)]))
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: float(next(clock)))
    callback = callbacks.StepCallback(Manager(), 0, batch_size=8, optimizer=Optimizer())
    for epoch, steps in enumerate(durations):
        callback.on_train_begin()
        callback.on_epoch_begin(epoch)
        for batch, _ in enumerate(steps):
            logs = {"loss": 1.0}
            callback.on_train_batch_begin(batch)
            Optimizer.iterations.assign_add(1)
            callback.on_train_batch_end(batch, logs)
        epoch_logs = {}
        callback.on_epoch_end(epoch, epoch_logs)
        if epoch == 0:
            assert epoch_logs["images_per_second"] == pytest.approx(2 * 8 / 0.75, rel=1e-12)
    assert epoch_logs["images_per_second"] == pytest.approx(2 * 8 / 5.0, rel=1e-12)
    assert callback.steps == 4
    assert callback.images_per_second == pytest.approx(4 * 8 / 5.75, rel=1e-12)
    # A run of one step has nothing but the traced step: not measured, not 0.
    assert callbacks.StepCallback(Manager(), 0, 8, Optimizer()).images_per_second is None
    assert Manager.saved == [3, 5]                       # a checkpoint at each epoch end


def test_dropout_of_the_config_reaches_the_model():
    model = training.build_model(training.TrainConfig(alpha=0.25, image_size=32, dropout=0.37), 3)
    assert model.get_layer("Dropout_1b").rate == 0.37


def test_label_smoothing_and_metrics_are_compiled():
    config = training.TrainConfig(alpha=0.25, image_size=32, label_smoothing=0.1)
    model = training.build_model(config, 7)
    optimizer = training.compile_model(model, config, 0.01)
    assert model.loss.get_config()["label_smoothing"] == 0.1
    assert isinstance(optimizer, keras.optimizers.RMSprop) and optimizer.built
    y = tf.one_hot([1, 2], 7)
    logs = model.evaluate(tf.zeros((2, 32, 32, 3)), y, verbose=0, return_dict=True)
    assert {"loss", "top1", "top5"} <= set(logs)
