"""train.py end to end (subprocesses): flag errors, a synthetic run, tfds mock data, resume after SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import oracles
from conftest import REPO_ROOT

TRAIN = str(REPO_ROOT / "train.py")


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, timeout=300, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=_env())


@pytest.mark.parametrize("args, pattern", [
    (["--alpha=0"], r"flag --alpha=0\.0: must be > 0"),
    (["--alpha=-0.5"], r"flag --alpha=-0\.5: must be > 0"),
    (["--image_size=16"], r"flag --image_size=16: 16 is not integer >= 32"),
    (["--batch_size=0"], r"flag --batch_size=0: 0 is not a positive integer"),
    (["--optimizer=adam"], r"flag --optimizer=adam: value should be one of "
                           r"<rmsprop\|momentum\|sgd\|adamw>"),
    (["--mode=predict"], r"flag --mode=predict: value should be one of <train\|eval\|train_and_eval>"),
    (["--dataset=folder:"], r"flag --dataset=folder:: dataset 'folder:PATH' needs the path"),
    (["--dataset=Not A Name"], r"flag --dataset=Not A Name: dataset must be a tfds name .*"
                               r"Received: dataset='Not A Name'"),
    (["--folder_formats=jpeg,tiff"], r"flag --folder_formats=\['jpeg', 'tiff'\]: must be a "
                                     r"non-empty subset of jpeg, png, bmp, gif"),
    (["--min_crop_area=0"], r"flag --min_crop_area=0\.0: must be in \(0, 1\]"),
    (["--label_smoothing=1"], r"flag --label_smoothing=1\.0: must be in \[0, 1\)"),
    (["--learning_rate=0"], r"flag --learning_rate=0\.0: must be > 0"),
    (["--freeze_base"], r"--freeze_base needs --init_weights"),
    (["--no_such_flag=1"], r"Unknown command line flag 'no_such_flag'"),
    (["--flagfile=missing.flags"], r"Unable to open flagfile: .*'missing\.flags'"),
    (["positional"], r"unexpected arguments \['positional'\]"),
])
def test_flag_errors_are_one_line_with_exit_status_2(args, pattern):
    result = _run(args, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(r"train\.py: error: .*" + pattern + ".*", lines[0]), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_every_flag_file_parses(repo_root):
    """Each flags/ file names a paper table row (or says there is none) and parses without error."""
    files = sorted((repo_root / "flags").glob("*.flags"))
    expected = {f"mobilenet_v1_{a}_{s}.flags" for a in ("1.0", "0.75", "0.5", "0.25")
                for s in (224, 192, 160, 128)}
    expected |= {"conv_mobilenet_224.flags", "shallow_mobilenet_224.flags", "quickstart.flags",
                 "smoke.flags"}
    assert expected <= {f.name for f in files}
    published = {"mobilenet_v1_1.0_224": "70.6", "mobilenet_v1_0.75_224": "68.4",
                 "mobilenet_v1_0.5_224": "63.7", "mobilenet_v1_0.25_224": "50.6",
                 "mobilenet_v1_1.0_192": "69.1", "mobilenet_v1_1.0_160": "67.2",
                 "mobilenet_v1_1.0_128": "64.4", "conv_mobilenet_224": "71.7",
                 "shallow_mobilenet_224": "65.3"}
    for f in files:
        text = f.read_text()
        assert text.startswith("#"), f
        header = text.split("\n--", 1)[0]
        if f.stem in published:
            assert re.search(r"Table [4-7]", header) and f"top-1 {published[f.stem]}%" in header, f
        elif f.stem.startswith("mobilenet_v1_"):
            assert "Paper: no row" in header and "top-1" in header, f
        else:
            assert "No paper row" in header, f
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["train.py"]
        sys.path.insert(0, {str(repo_root)!r})
        import train
        for path in {[str(f) for f in files]!r}:
            train.FLAGS.unparse_flags()
            train.FLAGS(["train.py", "--flagfile=" + path])
            train.FLAGS.validate_all_flags()
            print(path, train.FLAGS.alpha, train.FLAGS.image_size)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(), timeout=60, cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert "mobilenet_v1_0.75_192.flags 0.75 192" in result.stdout
    assert "conv_mobilenet_224.flags 1.0 224" in result.stdout


# Every training setting given on the command line with a value unlike its default and unlike
# every other flag's, so a flag that feeds the wrong field (or none) shows.
FLAG_VALUES = {
    "alpha": 0.5, "image_size": 96, "architecture": "shallow_mobilenet", "dropout": 0.21,
    "batch_norm_momentum": 0.93, "batch_size": 48, "epochs": 7, "train_steps": 11,
    "optimizer": "momentum", "learning_rate": 0.031, "base_learning_rate": 0.0052,
    "base_batch_size": 96,
    "lr_decay_factor": 0.81, "lr_decay_epochs": 3.5, "warmup_epochs": 0.7, "rmsprop_decay": 0.84,
    "momentum": 0.61, "epsilon": 0.37, "weight_decay": 2.3e-5, "regularize_depthwise": True,
    "label_smoothing": 0.13, "moving_average_decay": 0.77, "min_crop_area": 0.29,
    "color_distortion": False, "validation_fraction": 0.17, "folder_formats": ("jpeg", "gif"),
    "background_class": True,
    "synthetic_examples": 333, "synthetic_classes": 13, "shuffle_buffer": 4321, "seed": 5,
    "checkpoint_every_steps": 9, "keep_checkpoints": 4, "log_every_steps": 6, "verbose": 2,
    "jit_compile": True, "mixed_precision": "bfloat16", "sync_batch_norm": False,
    "init_weights": "imagenet", "freeze_base": True, "train_batch_norm": True, "download": False,
    "cache": "memory", "data_dir": "/tmp/tfds", "dataset": "synthetic", "mode": "train",
    "model_dir": "/tmp/run", "teacher": "/tmp/big.keras", "teacher_alpha": 0.75,
    "teacher_image_size": 192, "distillation_temperature": 2.5, "distillation_weight": 0.35,
}
# Quantization-aware training is float32 only (--mixed_precision=bfloat16 is refused with it).
QAT_FLAG_VALUES = {**FLAG_VALUES, "mixed_precision": "none", "quantize": True, "quantize_delay": 17,
                   # issue 26: the calibrated start of the learned ranges
                   "representative_dataset": "folder:/tmp/calibration",
                   "num_calibration_images": 77}


@pytest.mark.parametrize("flag_values", [FLAG_VALUES, QAT_FLAG_VALUES], ids=["float", "quantize"])
def test_every_flag_reaches_the_training_config(repo_root, flag_values):
    """train.py maps flags onto TrainConfig by name: each given value arrives in its field."""
    import dataclasses
    from mobilenet_tf.training.config import TrainConfig
    args = []
    for name, value in flag_values.items():
        if isinstance(value, bool):
            args.append(f"--{'' if value else 'no'}{name}")
        elif isinstance(value, tuple):
            args.append(f"--{name}={','.join(value)}")
        else:
            args.append(f"--{name}={value}")
    code = textwrap.dedent(f"""
        import json, sys
        sys.argv = ["train.py"]
        sys.path.insert(0, {str(repo_root)!r})
        import train
        train.FLAGS({["train.py", *args]!r})
        print(json.dumps(train._config().to_json()))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(), timeout=60, cwd=repo_root)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in flag_values.items()}
    assert {k: config[k] for k in expected} == expected
    # Only the distribution flags (tested in test_distribute) are left at their defaults here.
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields - set(FLAG_VALUES) - set(QAT_FLAG_VALUES) == {"distribution_strategy", "tpu"}


def _events(directory):
    import tensorflow as tf
    tags = set()
    for name in os.listdir(directory):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.mark.slow
def test_smoke_run_writes_checkpoints_model_summary_and_tensorboard(tmp_path):
    model_dir = tmp_path / "smoke"
    result = _run(["--flagfile=flags/smoke.flags", f"--model_dir={model_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Weight decay 4e-05 (added to the loss as wd*sum(w^2)/2) on 15 variables: " \
           "Conv2d_0/kernel, Conv2d_1_pointwise/kernel" in out
    assert "Validation at step 10: top-1" in out
    checkpoints = sorted(p.name for p in (model_dir / "checkpoints").glob("ckpt-*.index"))
    assert checkpoints == ["ckpt-10.index", "ckpt-5.index", "ckpt-7.index"]
    summary = json.loads((model_dir / "summary.json").read_text())
    assert (summary["start_step"], summary["final_step"], summary["num_classes"]) == (0, 10, 10)
    assert summary["config"]["dataset"] == "synthetic"
    # 58 training images in batches of 8: epochs of 7 steps; every step but the first (traced)
    # is timed, and the timed steps took part of the training time.
    assert (summary["steps_per_epoch"], summary["measured_steps"]) == (7, 9)
    assert summary["images_per_second"] >= 9 * 8 / summary["train_seconds"]
    assert {"step/loss", "step/top1", "step/top5", "step/learning_rate",
            "step/images_per_second", "epoch/loss", "epoch/images_per_second",
            "epoch/learning_rate"} <= _events(model_dir / "tensorboard" / "train")
    assert {"epoch/top1", "epoch/top5", "epoch/loss"} <= _events(model_dir / "tensorboard" /
                                                                 "validation")
    import keras
    model = keras.models.load_model(model_dir / "model.keras")
    assert model.output_shape == (None, 10)
    assert not [p for p in os.listdir(model_dir) if p.startswith(".tmp")]
    # The validation figures are model.keras scored on the 6 held-out images, recomputed here.
    from mobilenet_tf import data as data_lib
    data = data_lib.load_dataset("synthetic", image_size=64, synthetic_examples=64,
                                 synthetic_classes=10)
    (images, labels), = data_lib.eval_input(data, batch_size=6, image_size=64).as_numpy_iterator()
    top1, top5, loss, bound = oracles.validation_scores(model, images, labels, 4e-5)
    assert (round(summary["final_top1"] * 6), round(summary["final_top5"] * 6)) == (top1, top5)
    assert abs(summary["final_loss"] - loss) <= bound
    assert f"Validation at step 10: top-1 {top1 / 6:.4f}, top-5 {top5 / 6:.4f} (6 images)" in out

    # --mode=eval reads the run's settings from model_dir and scores the same checkpoint.
    result = _run(["--mode=eval", f"--model_dir={model_dir}", "--verbose=0"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"Evaluation of .*ckpt-10 \(step 10\) on 6 images: top-1 {top1 / 6:.4f}, "
                     rf"top-5 {top5 / 6:.4f}$", result.stdout, re.M), result.stdout
    evaluated = json.loads((model_dir / "eval.json").read_text())
    assert (round(evaluated["top1"] * 6), round(evaluated["top5"] * 6)) == (top1, top5)
    assert abs(evaluated["loss"] - loss) <= bound


@pytest.mark.slow
def test_tfds_mock_data_run(tmp_path):
    """tf_flowers through train.py under tfds.testing.mock_data (no download, no real data)."""
    data_dir, model_dir = tmp_path / "tfds", tmp_path / "run"
    script = tmp_path / "mock_train.py"
    script.write_text(textwrap.dedent(f"""
        import os, runpy, sys
        import tensorflow_datasets as tfds
        data_dir = {str(data_dir)!r}
        # Mocked tfds needs the dataset's metadata (split sizes): write a 'train'-only split.
        builder = tfds.builder("tf_flowers", data_dir=data_dir)
        template = tfds.core.ShardedFileTemplate(
            data_dir=builder.data_dir, template="{{DATASET}}-{{SPLIT}}.{{FILEFORMAT}}-{{SHARD_X_OF_Y}}",
            dataset_name="tf_flowers", split="train", filetype_suffix="tfrecord")
        builder.info.set_splits(tfds.core.SplitDict([tfds.core.SplitInfo(
            name="train", shard_lengths=[40], num_bytes=0, filename_template=template)]))
        os.makedirs(builder.data_dir, exist_ok=True)
        builder.info.write_to_directory(builder.data_dir)
        with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_FILES,
                                    data_dir=data_dir):
            sys.argv = [{TRAIN!r}] + sys.argv[1:]
            runpy.run_path({TRAIN!r}, run_name="__main__")
    """))
    result = subprocess.run(
        [sys.executable, str(script), "--dataset=tf_flowers", f"--data_dir={data_dir}",
         "--alpha=0.25", "--image_size=32", "--batch_size=4", "--train_steps=4",
         "--checkpoint_every_steps=2", f"--model_dir={model_dir}", "--verbose=0"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tfds tf_flowers: 5 classes, train[:36] (36) for training, train[36:] (4) for " \
           "validation" in result.stdout
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["final_step"] == 4 and summary["num_classes"] == 5
    assert (model_dir / "model.keras").is_file()
    assert sorted(p.name for p in (model_dir / "checkpoints").glob("*.index")) == \
        ["ckpt-2.index", "ckpt-4.index"]


def _latest_step(checkpoint_dir):
    state = checkpoint_dir / "checkpoint"
    if not state.exists():
        return None
    match = re.search(r'^model_checkpoint_path: ".*ckpt-(\d+)"', state.read_text(), re.M)
    return int(match.group(1)) if match else None


@pytest.mark.slow
def test_resume_after_sigkill_continues_at_the_saved_step_with_the_saved_state(tmp_path):
    import tensorflow as tf
    from mobilenet_tf import training
    model_dir = tmp_path / "run"
    args = ["--dataset=synthetic", "--synthetic_examples=400", "--synthetic_classes=5",
            "--alpha=0.25", "--image_size=32", "--batch_size=4", "--train_steps=40",
            "--checkpoint_every_steps=7", "--moving_average_decay=0.9", "--mode=train",
            f"--model_dir={model_dir}", "--verbose=0"]
    process = subprocess.Popen([sys.executable, TRAIN, *args], cwd=REPO_ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            step = _latest_step(model_dir / "checkpoints")
            if step is not None and step >= 14:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode == -signal.SIGKILL
    saved = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert 14 <= saved_step < 40 and saved_step % 7 == 0   # mid-epoch: 100 steps per epoch
    assert not (model_dir / "model.keras").exists()

    # What train.py restores (training.restore_run) equals the checkpoint, variable for variable:
    # weights, batch norm statistics, RMSprop slots, EMA shadows and the step.
    model, optimizer, path, _ = training.restore_run(str(model_dir))
    assert path == saved and int(optimizer.iterations.numpy()) == saved_step
    rewritten = tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(tmp_path / "again"))

    def variables(path):
        return [n for n, _ in tf.train.list_variables(path)
                if n.endswith("VARIABLE_VALUE") and not n.startswith("save_counter")]
    names = variables(saved)
    assert names == variables(rewritten)
    a, b = tf.train.load_checkpoint(saved), tf.train.load_checkpoint(rewritten)
    slots = 0
    for name in names:
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
        slots += name.startswith("optimizer/")
    averages = optimizer._model_variables_moving_average
    assert slots >= 3 * len(model.trainable_variables)   # velocity, momentum and EMA per variable
    assert any(not np.array_equal(avg.numpy(), v.numpy())
               for avg, v in zip(averages, model.trainable_variables))

    # The same command again continues from the saved step, not from 0.
    result = _run(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Restored {saved}" in result.stdout
    assert f"Resuming at step {saved_step} of 40." in result.stdout
    summary = json.loads((model_dir / "summary.json").read_text())
    assert (summary["start_step"], summary["final_step"]) == (saved_step, 40)


# --- one statement of each setting: train.py's flags are made from TrainConfig's fields --------

# TrainConfig fields that are deliberately not flags of train.py (none today).
NOT_FLAGS = set()


def _train_module(repo_root):
    sys.path.insert(0, str(repo_root))
    import train
    return train


def _train_flags(train):
    return {name: flag for name, flag in train.FLAGS._flags().items()
            if name == flag.name and train.FLAGS.find_module_defining_flag(name) == train.__name__}


def test_every_flag_is_its_training_config_field(repo_root):
    """Each train.py flag has the name, default, type (enum with the same choices, list for
    a tuple), help and bounds its TrainConfig field states, and every field (but NOT_FLAGS)
    has a flag."""
    import dataclasses
    from absl import flags
    from mobilenet_tf.training import settings
    from mobilenet_tf.training.config import TrainConfig
    train = _train_module(repo_root)
    made = _train_flags(train)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(made) == set(fields) - NOT_FLAGS
    parsers = {bool: flags.BooleanParser, int: flags.IntegerParser, float: flags.FloatParser,
               tuple: flags.ListParser}
    for name, flag in made.items():
        field, meta = fields[name], settings.setting_of(fields[name])
        default = list(field.default) if field.type is tuple else field.default
        help = meta.help
        if meta.choices is not None and field.type is str:
            help = f"<{'|'.join(meta.choices)}>: {help}"      # absl names an enum's choices
            assert type(flag.parser) is flags.EnumParser, name
            assert flag.parser.enum_values == list(meta.choices), name
        else:
            assert type(flag.parser) is parsers.get(field.type, flags.ArgumentParser), name
        assert (flag.default, flag.help) == (default, help), name
        lower, upper = meta.range.closure() if meta.range else (None, None)
        assert (getattr(flag.parser, "lower_bound", None),
                getattr(flag.parser, "upper_bound", None)) == (lower, upper), name


def _refused_by_flags(train, args):
    from absl import flags
    train.FLAGS.unparse_flags()
    try:
        train.FLAGS(["train.py", *args])
        return False
    except flags.Error:
        return True
    finally:
        train.FLAGS.unparse_flags()


def _refused_by_config(**values):
    from mobilenet_tf.training.config import TrainConfig
    try:
        TrainConfig(**values).check()
        return False
    except ValueError:
        return True


def test_flags_and_the_config_refuse_the_same_values(repo_root):
    """At each end of each range (just inside, on it, just outside) and for a value that is not
    a choice, a flag and its field refuse alike: one range, checked in one place."""
    import dataclasses
    from mobilenet_tf.training import settings
    from mobilenet_tf.training.config import TrainConfig
    train = _train_module(repo_root)
    checked = 0
    for field in dataclasses.fields(TrainConfig):
        meta = settings.setting_of(field)
        probes = []
        if meta.range is not None:
            step = 1 if field.type is int else 1e-3
            for end in (meta.range.low, meta.range.high):
                if end is not None:
                    probes += [field.type(end - step), field.type(end), field.type(end + step)]
        elif meta.choices is not None:
            probes = [meta.choices[-1], "nope"]
        for value in probes:
            flag = ",".join([value]) if field.type is tuple else value
            by_flag = _refused_by_flags(train, [f"--{field.name}={flag}"])
            by_config = _refused_by_config(**{field.name: (value,) if field.type is tuple
                                              else value})
            assert by_flag == by_config, (field.name, value, by_flag, by_config)
            checked += by_flag
    assert checked >= 25         # the probes do reach outside the ranges


# One violation of each rule between settings (config.RULES), as flags.
RULE_VIOLATIONS = [
    ["--mode=train_and_eval", "--dataset=synthetic", "--validation_fraction=0"],
    ["--distribution_strategy=tpu"],
    ["--teacher_alpha=0.5"],
    ["--teacher_image_size=64"],
    ["--quantize_delay=5"],
    ["--representative_dataset=folder:photos"],       # issue 26: it calibrates QAT only
    ["--quantize", "--mixed_precision=bfloat16"],
    ["--freeze_base"],
]


def test_each_rule_between_settings_is_one_check_for_flags_and_config(repo_root):
    from mobilenet_tf.training import config
    train = _train_module(repo_root)
    assert len(RULE_VIOLATIONS) == len(config.RULES)
    for args, rule in zip(RULE_VIOLATIONS, config.RULES):
        values = {}
        for arg in args:
            name, _, value = arg[2:].partition("=")
            field = config.field(name)
            values[name] = True if not value else field.type(value)
        assert set(values) <= set(rule.names), (args, rule.names)
        try:
            found = rule.problem({**_defaults(), **values}, str)
        except ValueError:            # a rule may raise its own InputError (the distribution's)
            found = True
        assert found, args
        assert _refused_by_flags(train, args), args
        assert _refused_by_config(**values), args


def _defaults():
    import dataclasses
    from mobilenet_tf.training.config import TrainConfig
    return dataclasses.asdict(TrainConfig())


def test_the_settings_and_the_flags_need_no_tensorflow(repo_root):
    """train.py's flags and TrainConfig's checks are pure Python: a bad flag is refused before
    TensorFlow is imported."""
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["train.py"]
        sys.path.insert(0, {str(repo_root)!r})
        import train
        from mobilenet_tf.training.config import TrainConfig
        TrainConfig(dataset="synthetic").check()
        train.FLAGS(["train.py", "--alpha=0.5"])
        train._config().check()
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(), timeout=60, cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


# --- --mode=eval: what is given on the command line replaces the run's settings --------------

def _legacy_run(tmp_path, name="float"):
    import shutil
    target = tmp_path / name
    shutil.copytree(REPO_ROOT / "tests" / "data" / "runs_0_1_0" / name, target)
    return target


@pytest.mark.slow
def test_eval_uses_each_data_flag_given_even_when_it_equals_the_default(tmp_path):
    """The 0.1.0 float run trained with --validation_fraction=0.25 (6 of 24 synthetic images
    held out). --mode=eval --validation_fraction=0.1 must evaluate on 0.1's hold-out although
    0.1 is the flag's default; without the flag, on the run's own 6."""
    from mobilenet_tf import data as data_lib
    run = _legacy_run(tmp_path)
    expected = data_lib.load_dataset("synthetic", synthetic_examples=24, synthetic_classes=3,
                                     validation_fraction=0.1, image_size=32).num_validation
    assert expected != 6
    for args, count in (([], 6), (["--validation_fraction=0.1"], expected)):
        result = _run(["--mode=eval", f"--model_dir={run}", "--verbose=0", *args])
        assert result.returncode == 0, result.stderr[-3000:]
        evaluated = json.loads((run / "eval.json").read_text())
        assert (evaluated["step"], evaluated["num_validation"]) == (3, count), args
        assert f"(step 3) on {count} images: top-1" in result.stdout


@pytest.mark.slow
def test_evaluate_takes_exactly_the_overrides_given(tmp_path, library_log):
    """The library: evaluate(model_dir, **overrides) uses each override given (the default's
    value too), refuses a setting that is not about the data, and a 0.1 TrainConfig still
    works with a DeprecationWarning."""
    from mobilenet_tf import training
    run = _legacy_run(tmp_path)
    assert training.evaluate(str(run), verbose=0)["num_validation"] == 6
    assert training.evaluate(str(run), verbose=0, validation_fraction=0.1,
                             batch_size=256)["num_validation"] != 6
    assert any(line.startswith(f"Evaluation of {run}") for line in library_log), library_log
    with pytest.raises(TypeError, match=r"evaluate\(\) takes only dataset, .*Received: alpha"):
        training.evaluate(str(run), alpha=0.5)
    with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1\. Received: "
                                         r"batch_size=0"):
        training.evaluate(str(run), batch_size=0)
    with pytest.warns(DeprecationWarning, match=r"evaluate\(TrainConfig\) is deprecated"):
        result = training.evaluate(training.TrainConfig(mode="eval", model_dir=str(run),
                                                        verbose=0))
    assert result["num_validation"] == 6
