"""Distillation (issue 15): the loss is the formula, the teacher sees the student's crop at
its own size, bad teachers are refused in one line, and train.py trains a student from a
teacher — on images without labels too — with checkpoints, resume and EMA, saving the
student alone.

Oracles: the distillation formula evaluated in numpy float64 (written out here, not taken
from the library); the teacher's logits recomputed in float64 from its weights and
TensorFlow's bilinear resize; a plain (non-distilled) run's checkpoint and model.keras.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

U = 2.0 ** -24          # float32 unit roundoff
CLASSES = ("blue", "green", "red")


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _formula(t, s, y, temperature, weight, label_smoothing):
    """(1 - w) CE(smoothed y, softmax(s)) + w T^2 mean_batch KL(softmax(t/T) || softmax(s/T))."""
    pt, ps = _softmax(t / temperature), _softmax(s / temperature)
    kl = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=-1))
    loss = weight * temperature ** 2 * kl
    if weight < 1:
        ys = y * (1 - label_smoothing) + label_smoothing / y.shape[-1]
        loss += (1 - weight) * np.mean(-np.sum(ys * np.log(_softmax(s)), axis=-1))
    return loss


def _dense_classifier(size, classes, seed, name):
    """A classifier with MobileNetV1's output layer name: flatten -> dense -> softmax."""
    import keras
    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, 3))
    logits = keras.layers.Dense(classes, name="dense_logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="Predictions")(logits),
                        name=name)
    model.get_layer("dense_logits").set_weights(
        [rng.normal(0, 0.1, (size * size * 3, classes)), rng.normal(0, 1, classes)])
    return model


@pytest.fixture(scope="module")
def pair():
    """Teacher 12x12 and student 8x8 over 5 classes, a batch of 6 images in [-1, 1]."""
    rng = np.random.default_rng(7)
    teacher = _dense_classifier(12, 5, 1, "t")
    student = _dense_classifier(8, 5, 2, "s")
    x = rng.uniform(-1, 1, (6, 8, 8, 3)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 6)]
    return teacher, student, x, y


def _teacher_logits64(teacher, x):
    """The teacher's logits of x resized (bilinear) to 12x12, in float64, and the float32
    rounding bound of each (K u sum|x||w| over the K = 432 products of the dense layer)."""
    import tensorflow as tf
    w, b = (v.astype(np.float64) for v in teacher.get_layer("dense_logits").get_weights())
    resized = tf.image.resize(tf.constant(x, tf.float64), (12, 12), method="bilinear").numpy()
    flat = resized.reshape(len(x), -1)
    k = flat.shape[1] + 1
    return flat @ w + b, k * U * (np.abs(flat) @ np.abs(w) + np.abs(b))


def test_teacher_sees_the_student_crop_resized_to_its_size(pair):
    from mobilenet_tf.training import distillation
    teacher, student, x, _ = pair
    distiller = distillation.make_distiller(student, teacher, temperature=3.0, weight=0.5)
    got = distiller.teacher(x, training=False).numpy()
    want, bound = _teacher_logits64(teacher, x)
    assert got.dtype == np.float32
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)
    # The student's predictions in the distiller are its logits, not its probabilities.
    s = distiller(x, training=False).numpy()
    np.testing.assert_allclose(_softmax(s.astype(np.float64)), student(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("temperature, weight, smoothing, with_labels", [
    (3.0, 0.7, 0.1, True),      # mixed with the (smoothed) label loss
    (4.0, 1.0, 0.0, False),     # the teacher only: no labels at all
    (4.0, 1.0, 0.0, True),      # the teacher only: labels given but unused
    (1.0, 0.2, 0.0, True),
])
def test_loss_is_the_distillation_formula_plus_weight_decay(pair, temperature, weight, smoothing,
                                                            with_labels):
    import keras
    from mobilenet_tf.training import distillation
    from mobilenet_tf.training import weight_decay
    teacher, student, x, y = pair
    wd = 1e-2           # large enough that a dropped weight decay is far outside the bound
    decayed, _ = weight_decay.apply_weight_decay(student, wd)
    distiller = distillation.make_distiller(student, teacher, temperature=temperature,
                                            weight=weight)
    distiller.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=smoothing))
    # Fixed student logits (as the training step passes them), spread over several units.
    s = np.random.default_rng(3).normal(0, 2, (6, 5)).astype(np.float32)
    got = float(distiller.compute_loss(x=x, y=y if with_labels else None, y_pred=s))

    t, t_bound = _teacher_logits64(teacher, x)
    want = _formula(t, s.astype(np.float64), y, temperature, weight, smoothing)
    kernel = decayed[0].numpy().astype(np.float64)
    penalty = wd * np.sum(kernel ** 2) / 2
    want += penalty
    # float32 rounding: the teacher's logits (t_bound, times the largest slope of the loss
    # in a logit: w T^2 (2/T) + 2(1-w)); softmax, log and sums over C classes and B images
    # (each result O(1 + max|log p|)); the penalty's sum of n squares.
    c, b_size = s.shape[1], s.shape[0]
    logp = max(np.max(-np.log(_softmax(t / temperature))), np.max(-np.log(_softmax(s / temperature))),
               np.max(-np.log(_softmax(s.astype(np.float64)))))
    slope = weight * temperature ** 2 * 2 / temperature + 2 * (1 - weight)
    tol = (slope * np.max(t_bound) + (c + b_size + 10) * U * (temperature ** 2 + 1) * (1 + logp)
           + kernel.size * U * penalty)
    assert abs(got - want) <= tol, (got, want, tol)
    # The bound is far below what a wrong loss makes: without the T^2, or without the penalty.
    wrong = _formula(t, s.astype(np.float64), y, 1.0, weight, smoothing) + penalty
    assert abs(wrong - want) > 10 * tol or temperature == 1.0
    assert penalty > 10 * tol


def test_refusals_are_one_line(tmp_path, pair):
    from mobilenet_tf.training import distillation
    from mobilenet_tf.errors import InputError
    teacher, student, _, _ = pair
    fake = tmp_path / "m.tflite"
    fake.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    cases = [
        (lambda: distillation.load_teacher(str(fake)), ".tflite file"),
        (lambda: distillation.load_teacher("imagenet", alpha=0.75), "teacher_image_size"),
        (lambda: distillation.make_distiller(student, teacher, weight=0.0), "(0, 1]"),
        (lambda: distillation.make_distiller(student, teacher, weight=1.5), "(0, 1]"),
        (lambda: distillation.make_distiller(student, teacher, temperature=0), "> 0"),
        (lambda: distillation.check_teacher_classes(
            distillation.Teacher(teacher, (12, 12), None, "t"), 4, None, "data"),
         "predicts 5 classes, data has 4"),
        (lambda: distillation.check_teacher_classes(
            distillation.Teacher(teacher, (12, 12), list("abcde"), "t"), 5, list("abdce"), "d"),
         "output 2 is 'c' for the teacher, 'd' in the data"),
    ]
    for call, words in cases:
        with pytest.raises(InputError) as e:
            call()
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    # Same classes (names given on one side only, or equal) pass.
    distillation.check_teacher_classes(distillation.Teacher(teacher, (12, 12), None, "t"), 5,
                                       list("abcde"), "d")
    distillation.check_teacher_classes(distillation.Teacher(teacher, (12, 12), list("abcde"), "t"),
                                       5, list("abcde"), "d")


# --- train.py / training.train with a teacher ------------------------------------------------------

def _colour_images(directory, per_class, seed, labelled=True):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        folder = directory / name if labelled else directory
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 110, (40, 40, 3))
            image[..., 2 - label] += 140
            tf.io.write_file(str(folder / f"{name}{i}.png"), tf.io.encode_png(image.astype(np.uint8)))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A labelled folder (train/ + val/), the same photos without labels (train/ flat +
    the labelled val/), and a teacher run (α=0.25 at 48x48) trained on the labelled one."""
    from mobilenet_tf import training
    root = tmp_path_factory.mktemp("distill")
    _colour_images(root / "labelled" / "train", 12, seed=0)
    _colour_images(root / "labelled" / "val", 4, seed=1)
    _colour_images(root / "unlabelled" / "train", 12, seed=0, labelled=False)
    _colour_images(root / "unlabelled" / "val", 4, seed=1)
    config = training.TrainConfig(dataset=f"folder:{root / 'labelled'}", alpha=0.25, image_size=48,
                                  batch_size=12, epochs=3, learning_rate=0.01,
                                  batch_norm_momentum=0.9, model_dir=str(root / "teacher"),
                                  verbose=0, mode="train")
    training.train(config)
    return root


def _student(root, name, **kw):
    from mobilenet_tf import training
    values = dict(dataset=f"folder:{root / 'unlabelled'}", alpha=0.25, image_size=32,
                  batch_size=12, epochs=1, learning_rate=0.01, batch_norm_momentum=0.9,
                  model_dir=str(root / name), verbose=0, teacher=str(root / "teacher"),
                  distillation_weight=1.0, moving_average_decay=0.9)
    values.update(kw)
    return training.TrainConfig(**values)


def _checkpoint_keys(model_dir):
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return {name for name, _ in tf.train.list_variables(path)}


@pytest.mark.slow
def test_student_trains_from_the_teacher_on_images_without_labels(folders, library_log):
    import keras
    from mobilenet_tf import training
    root = folders
    summary = training.train(_student(root, "s1", train_steps=2))
    text = "\n".join(library_log)
    assert "36 training images without labels, 12 validation images in 3 classes" in text
    assert "the teacher only (labels unused)" in text
    assert "the teacher sees each 32x32 crop resized to 48x48" in text
    assert summary["class_names"] == list(CLASSES) and summary["final_step"] == 2
    assert summary["history"]["distillation_loss"][-1] > 0
    assert "top1" not in summary["history"] and "val_top1" in summary["history"]

    # Resume: the same command with more steps goes on from step 2's checkpoint.
    del library_log[:]
    summary = training.train(_student(root, "s1", train_steps=4))
    assert "Resuming at step 2 of 4." in library_log, library_log
    assert summary["start_step"] == 2 and summary["final_step"] == 4

    # The student alone is saved: the checkpoint holds what a plain run's holds.
    plain = _student(root, "plain", dataset=f"folder:{root / 'labelled'}", teacher=None,
                     distillation_weight=0.5, train_steps=2)
    training.train(plain)
    assert _checkpoint_keys(root / "s1") == _checkpoint_keys(root / "plain")
    loaded = keras.models.load_model(root / "s1" / "model.keras", compile=False)
    reference = keras.models.load_model(root / "plain" / "model.keras", compile=False)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in reference.layers]
    assert loaded.input_shape == (None, 32, 32, 3) and loaded.output_shape == (None, 3)

    # --mode=eval of the distilled run scores the student on val/ (plain cross-entropy).
    result = training.evaluate(str(root / "s1"), verbose=0)
    assert result["step"] == 4 and result["num_validation"] == 12


@pytest.mark.slow
def test_a_quantization_aware_student_learns_from_the_float_teacher(folders, library_log):
    """--quantize with --teacher (how bench/qat.py fine-tunes Google's weights): the student is
    the QAT twin, trained by the distiller in training mode (its learned activation ranges are
    set), and the saved model.keras is the QAT model."""
    import keras
    from mobilenet_tf.model import qat
    from mobilenet_tf import training
    root = folders
    summary = training.train(_student(root, "quant", quantize=True, train_steps=2))
    assert any(line.startswith("Quantization-aware training") for line in library_log), library_log
    assert summary["final_step"] == 2 and summary["history"]["distillation_loss"][-1] > 0
    loaded = keras.models.load_model(root / "quant" / "model.keras", compile=False)
    assert qat.is_quantization_aware(loaded)
    low, high = qat.activation_ranges(loaded)["AvgPool_1a_quant"]
    assert low == 0.0 and high > 0.0, (low, high)


@pytest.mark.slow
def test_labels_are_required_unless_the_teacher_alone_trains(folders):
    from mobilenet_tf import data as data_lib
    from mobilenet_tf import training
    from mobilenet_tf.training.distillation import TeacherError
    root = folders
    with pytest.raises(data_lib.DatasetError, match="distillation_weight must be 1"):
        training.train(_student(root, "r1", distillation_weight=0.5))
    with pytest.raises(data_lib.DatasetError, match="has images but no class sub-folders"):
        training.train(_student(root, "r2", teacher=None))
    # A teacher of other classes: the run trained on 3 colours, this data has 2.
    two = root / "two"
    for name in ("blue", "red"):
        for part in ("train", "val"):
            (two / part / name).mkdir(parents=True)
            src = root / "labelled" / part / name
            for f in sorted(os.listdir(src)):
                os.link(src / f, two / part / name / f)
    with pytest.raises(TeacherError, match="predicts 3 classes"):
        training.train(_student(root, "r3", dataset=f"folder:{two}", distillation_weight=0.5))
    for name in ("r1", "r2", "r3"):
        assert not (root / name).exists()        # refused before the run folder appears


@pytest.mark.slow
def test_train_py_flags(folders):
    root = folders
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    run = lambda *a: subprocess.run([sys.executable, "train.py", *a], cwd=REPO_ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    bad = run(f"--dataset=folder:{root / 'labelled'}", "--teacher_alpha=0.5")
    assert bad.returncode == 2 and "--teacher_alpha needs --teacher" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    bad = run(f"--dataset=folder:{root / 'labelled'}", f"--teacher={root / 'teacher'}",
              "--distillation_weight=0")
    assert bad.returncode == 2 and "distillation_weight" in bad.stderr
    model_dir = root / "cli"
    ok = run(f"--dataset=folder:{root / 'labelled'}", f"--teacher={root / 'teacher'}",
             "--distillation_weight=0.6", "--distillation_temperature=2", "--alpha=0.25",
             "--image_size=32", "--batch_size=12", "--train_steps=2", "--learning_rate=0.01",
             f"--model_dir={model_dir}", "--verbose=2")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "temperature 2, loss 0.6 x teacher + 0.4 x labels" in ok.stdout
    config = json.loads((model_dir / "train_config.json").read_text())["config"]
    assert config["distillation_weight"] == 0.6 and config["distillation_temperature"] == 2.0
    assert config["teacher"] == str(root / "teacher")


_MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
sys.path.insert(0, sys.argv[1])
from test_distillation import _dense_classifier
from mobilenet_tf.training import distillation
from mobilenet_tf.training import weight_decay
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
y = np.eye(5, dtype="float32")[rng.integers(0, 5, 8)]
out = {}
for name, devices in (("one", ["/cpu:0"]), ("mirrored", ["/cpu:0", "/cpu:1"])):
    with tf.distribute.MirroredStrategy(devices).scope():
        student = _dense_classifier(8, 5, 2, "s")
        weight_decay.apply_weight_decay(student, 1e-2)
        d = distillation.make_distiller(student, _dense_classifier(12, 5, 1, "t"),
                                        temperature=3.0, weight=0.7)
        d.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    h = d.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    out[name] = {k: float(v[-1]) for k, v in h.history.items()}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_logged_losses_are_the_global_batch_under_two_replicas():
    """Under MirroredStrategy Keras scales each replica's loss by 1/2; the Distiller's
    student/distillation/total logs must still be the batch's (as on one device)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", _MIRRORED, str(REPO_ROOT / "tests")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = out["one"], out["mirrored"]
    for key in ("loss", "student_loss", "distillation_loss", "total_loss"):
        # Same weights, same 8 examples: equal up to float32 sums over 432 products and 8
        # examples; a 1/2 scale is a gap of half the value.
        assert abs(one[key] - two[key]) <= 1e-4 * max(1.0, abs(one[key])), (key, one, two)
    assert abs(one["total_loss"] - (0.7 * one["distillation_loss"] + 0.3 * one["student_loss"])) < 1e-5


def test_evaluating_a_run_on_unlabelled_images_names_the_cause(monkeypatch, tmp_path):
    """issue 27, group 14: --mode=eval on images without labels said "has None classes". A run
    with a teacher is scored by its agreement with it (issue 26, tests/test_qat.py); one without
    a teacher is refused with a line that says the images have no labels. The restored run and
    its data are stand-ins: only the check between them is under test."""
    import types
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.training import evaluation
    from mobilenet_tf.training.config import TrainConfig
    run = TrainConfig(dataset=f"folder:{tmp_path}", model_dir=str(tmp_path))
    model = types.SimpleNamespace(output_shape=(None, 3))
    optimizer = types.SimpleNamespace(use_ema=False)
    monkeypatch.setattr(evaluation, "restore_run",
                        lambda *a, **k: (model, optimizer, "ckpt-1", run))
    monkeypatch.setattr(evaluation.inputs, "load_data", lambda config: types.SimpleNamespace(
        num_classes=None, labelled=False, validation_source=None))
    with pytest.raises(data_lib.DatasetError, match=(
            rf"^folder:{tmp_path} has no labels and no val/ folder, and the run in {tmp_path} "
            r"has no teacher to compare with: give a labelled dataset to evaluate on$")):
        evaluation.evaluate(str(tmp_path))


def test_loss_and_val_loss_are_total_loss_plus_the_weight_decay(pair):
    """issue 27, group 15: a run logged val_loss 1.453 beside val_total_loss 1.230. The gap is
    the weight decay: Keras' ``total_loss`` is w x distillation + (1 - w) x labels alone, and
    ``loss`` / ``val_loss`` add the student's L2 penalty (docs/distillation.md). With the
    weights held (SGD at rate 0) the penalty is the same in training and validation."""
    import keras
    import tensorflow as tf
    from mobilenet_tf.training import distillation
    from mobilenet_tf.training import weight_decay
    teacher, _, x, y = pair
    student = _dense_classifier(8, 5, 2, "s_decayed")
    wd = 1e-2
    decayed, _ = weight_decay.apply_weight_decay(student, wd)
    distiller = distillation.make_distiller(student, teacher, temperature=3.0, weight=0.5)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    history = distiller.fit(data, validation_data=data, epochs=1, verbose=0).history
    logs = {k: v[-1] for k, v in history.items()}
    kernel = decayed[0].numpy().astype(np.float64)
    penalty = wd * np.sum(kernel ** 2) / 2
    # float32: the penalty's sum of n squares, the losses' sums over 5 classes and 6 images.
    tol = (kernel.size + 20) * U * (1 + logs["loss"])
    for prefix in ("", "val_"):
        assert abs(logs[f"{prefix}loss"] - logs[f"{prefix}total_loss"] - penalty) <= tol, logs
        assert abs(logs[f"{prefix}total_loss"] - 0.5 * logs[f"{prefix}distillation_loss"]
                   - 0.5 * logs[f"{prefix}student_loss"]) <= tol, logs
    assert penalty > 100 * tol
