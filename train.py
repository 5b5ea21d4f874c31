"""Trains or evaluates a MobileNetV1 (Howard et al. 2017) from flags.

  python train.py --alpha=0.5                                   # the paper's recipe on imagenet2012
  python train.py --flagfile=flags/mobilenet_v1_0.75_192.flags  # one paper configuration
  python train.py --dataset=folder:/data/photos --alpha=0.25 --image_size=128 \\
      --init_weights=imagenet --freeze_base --epochs=5
  python train.py --mode=eval --model_dir=runs/m050             # top-1 / top-5 of the last checkpoint
  python train.py --flagfile=... --distribution_strategy=mirrored       # all local GPUs
  TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 0}}' \\
      python train.py --flagfile=... --distribution_strategy=multi_worker_mirrored
  python train.py --flagfile=... --mixed_precision=bfloat16             # or float16 (loss scaling)
  python train.py --dataset=folder:/data/photos --alpha=0.25 --image_size=128 \\
      --teacher=runs/big --distillation_weight=0.5                      # docs/distillation.md
  python train.py --flagfile=... --quantize --init_weights=runs/float   # docs/qat.md

Re-running a command continues from the newest checkpoint in --model_dir (a
finished run is left unchanged). Ctrl-C (SIGINT) or SIGTERM saves a checkpoint
at the current step and exits 130 / 143; a second one exits at once.

Exit status (docs/errors.md): 0 done; 2 input refused before any work (a bad
flag, missing data, unusable weights, a --model_dir that cannot hold the run),
one line on stderr naming the value; 1 a failure during training (a non-finite
loss); 130 / 143 interrupted. Flags are checked before TensorFlow is imported.

Each flag is made from its ``TrainConfig`` field (``mobilenet_tf.training.config``: name,
default, help, range or choices), and its validators are the config's own checks.
Everything else is in ``mobilenet_tf.training`` (``loop`` runs the recipe, see its
docstring), ``mobilenet_tf.training.distribute`` and ``mobilenet_tf.training.precision``.
"""

import dataclasses
import functools
import re
import signal
import sys

from absl import app
from absl import flags
from absl import logging

from mobilenet_tf import errors
from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.training import config as train_config
from mobilenet_tf.training import settings
from mobilenet_tf.training.stop import StopRequest
from mobilenet_tf.utils import console
from mobilenet_tf.utils import fileio
from mobilenet_tf.utils import native

FLAGS = flags.FLAGS


def _validator(find):
    """An absl validator refusing what ``find(value)`` finds wrong: its words, or the one-line
    ``ValueError`` it raises (the library's message, unchanged)."""
    def validate(value):
        try:
            problem = find(value)
        except ValueError as e:
            raise flags.ValidationError(str(e)) from None
        if problem:
            raise flags.ValidationError(problem)
        return True
    return validate


def _define_flag(field):
    """One absl flag from a TrainConfig field: its name, default, help, type (enum for choices,
    list for a tuple) and bounds (the closed hull of its range: ``settings.Range.closure``),
    validated by the config's check of the setting."""
    meta = settings.setting_of(field)
    name, default, kind = field.name, field.default, field.type
    if meta.choices is not None and kind is str:
        flags.DEFINE_enum(name, default, list(meta.choices), meta.help)
    elif kind is tuple:
        flags.DEFINE_list(name, ",".join(default), meta.help)
    elif kind is bool:
        flags.DEFINE_boolean(name, default, meta.help)
    elif kind in (int, float):
        lower, upper = meta.range.closure() if meta.range else (None, None)
        bounds = {k: kind(v) for k, v in (("lower_bound", lower), ("upper_bound", upper))
                  if v is not None}
        (flags.DEFINE_integer if kind is int else flags.DEFINE_float)(name, default, meta.help,
                                                                      **bounds)
    elif kind is str:
        flags.DEFINE_string(name, default, meta.help)
    else:
        raise TypeError(f"TrainConfig.{name}: no absl flag for a {kind.__name__} setting")
    if settings.allowed(field) is not None or meta.check is not None:
        # The config's check of the setting: its range, choices, or the dataset spec.
        flags.register_validator(name, _validator(functools.partial(train_config.value_problem,
                                                                    name)))


for _field in dataclasses.fields(train_config.TrainConfig):
    if settings.setting_of(_field).flag:
        _define_flag(_field)
for _rule in train_config.RULES:        # the rules between settings, naming the flags
    flags.register_multi_flags_validator(
        list(_rule.names), _validator(lambda values, rule=_rule: rule.problem(
            values, lambda name: f"--{name}")))


# The check train() makes of model_dir (run_folder.check_writable), before TensorFlow.
flags.register_validator("model_dir", _validator(lambda v: v and fileio.folder_problem(v)))


def _parse_flags(argv):
    """absl parsing, but a bad flag is one line and exit status 2 (absl: 2 lines, status 1);
    a flag file that is not UTF-8 or includes itself is refused first (issue 27)."""
    problem = cli_args.flagfile_problem(argv)
    if problem:
        sys.stderr.write(f"train.py: error: {problem}\n")
        sys.exit(2)
    try:
        return FLAGS(argv)
    except flags.Error as e:
        message = " ".join(str(e).split())
        sys.stderr.write(f"train.py: error: {message}\n")
        sys.exit(2)


def _config():
    """The TrainConfig of the flags (``model_dir`` named after the run when not given)."""
    name = FLAGS.dataset.replace("folder:", "folder_").replace("/", "_").strip("_")
    if FLAGS.dataset.startswith("tfrecord:"):
        name = re.sub(r"[^\w.\-]+", "_", FLAGS.dataset.replace("tfrecord:", "tfrecord_")).strip("_")
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(train_config.TrainConfig)
              if f.name in FLAGS}
    values["model_dir"] = FLAGS.model_dir or "runs/{}_mobilenet_v1_{:g}_{}".format(
        name, FLAGS.alpha, FLAGS.image_size)
    values["folder_formats"] = tuple(FLAGS.folder_formats)
    return train_config.TrainConfig(**values)


def _eval_overrides():
    """What --mode=eval takes from the command line instead of the run's saved settings:
    exactly the flags given (whatever their value, the default's included)."""
    return {name: tuple(FLAGS[name].value) if name == "folder_formats" else FLAGS[name].value
            for name in train_config.EVAL_OVERRIDES if FLAGS[name].present}


# What --mode=eval takes besides the data overrides; every other setting is the run's own.
_EVAL_FLAGS = train_config.EVAL_OVERRIDES + ("mode", "model_dir", "verbose")


def _check_eval_flags():
    """--mode=eval refuses the settings the run fixes, when given (the saved-model rule of
    predict, evaluate and export_tflite.py: ``saved.settings_it_fixes``)."""
    from mobilenet_tf.model import saved
    given = [f.name for f in dataclasses.fields(train_config.TrainConfig)
             if f.name in FLAGS and FLAGS[f.name].present]
    fixed = [name for name in given if name not in _EVAL_FLAGS]
    problem = saved.settings_it_fixes(
        f"--mode=eval --model_dir={FLAGS.model_dir}", given, fixed,
        why="the run fixes every setting but where its validation data is and how it is read ("
            + ", ".join("--" + name for name in train_config.EVAL_OVERRIDES) + ")")
    if problem:
        raise errors.InputError(problem)


def _run(stop):
    if FLAGS.mode == "eval":
        _check_eval_flags()
    native.import_tensorflow()
    logging.set_verbosity(logging.ERROR)   # tfds and TF chatter; errors still show
    config = _config()
    if config.mode == "eval":
        from mobilenet_tf.training import evaluation
        evaluation.evaluate(config.model_dir, verbose=config.verbose, **_eval_overrides())
    else:
        from mobilenet_tf.training import loop
        loop.train(config, stop=stop)
    return 0


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"train.py: error: unexpected arguments {argv[1:]} (flags start with --)\n")
        return errors.EXIT_REFUSED
    console.log_to()                      # the library's progress lines, on stdout
    stop = StopRequest()

    def on_signal(signum):
        if not stop.active:               # nothing trained yet: nothing to save
            raise errors.Interrupted(signum, before="training started")
        stop.request(signum)
        sys.stderr.write(f"train.py: stopping after this step ({signal.Signals(signum).name}; "
                         "again to quit at once)\n")
    return runtime.run_command("train.py", lambda: _run(stop), on_signal)


def _main_as_a_script(argv):
    """main, then after an interrupt the process ends at once (``runtime.end_process``: the
    checkpoint is saved, and TensorFlow's teardown took 9 s to over 30 s); the signals are
    watched while a step runs (``runtime.watch_signals``)."""
    runtime.watch_signals("train.py")
    status = main(argv)
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        runtime.end_process(status)
    return status


if __name__ == "__main__":
    runtime.exit_on_early_signals("train.py", before="training started")
    app.run(_main_as_a_script, flags_parser=_parse_flags)
