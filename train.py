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
      --teacher=runs/big --distillation_weight=0.5                      # distillation (README)
  python train.py --flagfile=... --quantize --init_weights=runs/float   # quantization-aware (README)

Re-running a command continues from the newest checkpoint in --model_dir (a
finished run is left unchanged). Ctrl-C (SIGINT) or SIGTERM saves a checkpoint
at the current step and exits 130 / 143; a second one exits at once.

Exit status (README "Exit status"): 0 done; 2 input refused before any work (a bad
flag, missing data, unusable weights, a --model_dir that cannot hold the run),
one line on stderr naming the value; 1 a failure during training (a non-finite
loss); 130 / 143 interrupted. Flags are checked before TensorFlow is imported.
Everything else is in ``mobilenet_tf.training.loop`` (see its docstring for the
recipe's details), ``mobilenet_tf.training.distribute`` and ``mobilenet_tf.training.precision``.
"""

import os
import re
import signal
import sys

from absl import app
from absl import flags
from absl import logging

from mobilenet_tf.training import distribute
from mobilenet_tf import errors
from mobilenet_tf.utils import fileio
from mobilenet_tf.training import precision
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.training.stop import StopRequest
from mobilenet_tf.utils import console
from mobilenet_tf.utils import native
from mobilenet_tf.data import options as data_options
from mobilenet_tf.training import options as train_options

FLAGS = flags.FLAGS

# --- data -----------------------------------------------------------------------------------------
flags.DEFINE_string("dataset", "imagenet2012",
                    "A tensorflow-datasets name (imagenet2012, tf_flowers, stanford_dogs, ...; "
                    "imagenet2012 needs ILSVRC2012_img_{train,val}.tar in <data_dir>/downloads/manual); "
                    "'folder:PATH' (class sub-folders, or train/ and val/ of class sub-folders; "
                    "checked by header into a manifest kept in the run folder); "
                    "'tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]' or 'tfrecord:DIR' (TF-slim / Model "
                    "Garden ImageNet shards train-* and validation-*; python -m "
                    "mobilenet_tf.write_tfrecords makes them from a folder) or 'synthetic'.")
flags.register_validator("dataset", lambda v: _check(data_options.parse_dataset_spec, v))
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory (default: tfds' own).")
flags.DEFINE_float("validation_fraction", 0.1,
                   "Fraction of the training data held out when the dataset has no validation "
                   "split (tfds: no 'validation' or 'test'; folder: no val/).",
                   lower_bound=0.0)
flags.register_validator("validation_fraction", lambda v: v < 1, message="must be in [0, 1)")
flags.DEFINE_list("folder_formats", ",".join(data_options.DEFAULT_FOLDER_FORMATS),
                  f"Image formats read from folder datasets, a subset of "
                  f"{','.join(data_options.FOLDER_FORMATS)}. GIF is off by default: in photo "
                  "folders GIFs are usually placeholders or animations.")
flags.register_validator(
    "folder_formats",
    lambda v: bool(v) and all(f in data_options.FOLDER_FORMATS for f in v),
    message=f"must be a comma-separated subset of {','.join(data_options.FOLDER_FORMATS)}")
flags.DEFINE_boolean("background_class", False,
                     "tfrecord datasets: a head with TF-slim's background class 0 and the stored "
                     "labels 1..K as they are (1001 classes for ImageNet, as TF-slim's checkpoints); "
                     "default: K classes, label - 1 (1000 for ImageNet, as Keras' weights).")
flags.DEFINE_integer("synthetic_examples", 1024, "Examples of --dataset=synthetic.", lower_bound=1)
flags.DEFINE_integer("synthetic_classes", 1000, "Classes of --dataset=synthetic.", lower_bound=2)
flags.DEFINE_integer("shuffle_buffer", 10000, "Shuffle buffer (examples).", lower_bound=1)
flags.DEFINE_string("cache", None, "Cache decoded images: 'memory' or a file path prefix.")
flags.DEFINE_boolean("download", True, "Let tensorflow-datasets download a missing dataset.")
flags.DEFINE_float("min_crop_area", 0.05,
                   "Smallest area fraction of Inception training crops (TF-slim 0.05; the paper "
                   "limits small crops for small models, e.g. 0.25).", lower_bound=0.0,
                   upper_bound=1.0)
flags.register_validator("min_crop_area", lambda v: v > 0, message="must be in (0, 1]")
flags.DEFINE_boolean("color_distortion", True, "Brightness/saturation distortion in training.")

# --- model ----------------------------------------------------------------------------------------
flags.DEFINE_float("alpha", 1.0, "Width multiplier α (the paper: 1.0, 0.75, 0.5, 0.25).")
flags.register_validator("alpha", lambda v: v > 0, message="must be > 0")
flags.DEFINE_integer("image_size", 224, "Input resolution (the paper: 224, 192, 160, 128).",
                     lower_bound=32)
flags.DEFINE_enum("architecture", "mobilenet_v1", list(train_options.ARCHITECTURES),
                  "Table 1 MobileNet, Table 4 Conv MobileNet (full convolutions) or Table 5 "
                  "Shallow MobileNet.")
flags.DEFINE_float("batch_norm_momentum", 0.9997,
                   "Batch norm moving-average momentum (TF-slim's 0.9997 suits long ImageNet runs; "
                   "short runs on small data want about 0.9).", lower_bound=0.0, upper_bound=1.0)
flags.register_validator("batch_norm_momentum", lambda v: v > 0, message="must be in (0, 1]")
flags.DEFINE_float("dropout", 1e-3, "Dropout rate before the classifier.", lower_bound=0.0)
flags.register_validator("dropout", lambda v: v < 1, message="must be in [0, 1)")

# --- optimisation ---------------------------------------------------------------------------------
flags.DEFINE_enum("mode", "train_and_eval", list(train_options.MODES),
                  "train; eval (top-1/top-5 of the newest checkpoint in --model_dir); "
                  "train_and_eval (validation after each epoch and at the end).")
flags.DEFINE_string("model_dir", None,
                    "Checkpoints, TensorBoard logs, model.keras and summary.json; created when "
                    "training starts. Default: runs/<dataset>_mobilenet_v1_<alpha>_<image_size>.")
flags.register_validator("model_dir", lambda v: v is None or _check(_folder_ok, v))
flags.DEFINE_integer("batch_size", 256, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("epochs", 100, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("train_steps", None, "Training steps (overrides --epochs).", lower_bound=1)
flags.DEFINE_enum("optimizer", "rmsprop", list(train_options.OPTIMIZERS),
                  "rmsprop (the paper), momentum, sgd or adamw.")
flags.DEFINE_float("learning_rate", None,
                   "The learning rate used (before decay and warmup). Not given: "
                   "--base_learning_rate * batch_size / --base_batch_size (linear scaling).")
flags.register_validator("learning_rate", lambda v: v is None or v > 0, message="must be > 0")
flags.DEFINE_float("base_learning_rate", 0.016,
                   "Used only without --learning_rate: the rate for a batch of --base_batch_size "
                   "images, scaled linearly to --batch_size (the paper flag files' convention).")
flags.register_validator("base_learning_rate", lambda v: v > 0, message="must be > 0")
flags.DEFINE_integer("base_batch_size", 256, "Batch size --base_learning_rate is given for.",
                     lower_bound=1)
flags.DEFINE_float("lr_decay_factor", 0.94, "Staircase decay factor.", lower_bound=0.0,
                   upper_bound=1.0)
flags.register_validator("lr_decay_factor", lambda v: v > 0, message="must be in (0, 1]")
flags.DEFINE_float("lr_decay_epochs", 2.0, "Epochs between learning-rate decays.")
flags.register_validator("lr_decay_epochs", lambda v: v > 0, message="must be > 0")
flags.DEFINE_float("warmup_epochs", 0.0, "Linear learning-rate warmup (epochs).", lower_bound=0.0)
flags.DEFINE_float("rmsprop_decay", 0.9, "RMSprop decay (rho).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("momentum", 0.9, "Momentum of rmsprop and momentum.", lower_bound=0.0)
flags.register_validator("momentum", lambda v: v < 1, message="must be in [0, 1)")
flags.DEFINE_float("epsilon", 1.0, "RMSprop epsilon (TF-slim and Inception v3: 1.0).")
flags.register_validator("epsilon", lambda v: v > 0, message="must be > 0")
flags.DEFINE_float("weight_decay", 4e-5, "L2 weight decay, TF-slim semantics wd*sum(w^2)/2.",
                   lower_bound=0.0)
flags.DEFINE_boolean("regularize_depthwise", False, "Also decay depthwise kernels.")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing.", lower_bound=0.0)
flags.register_validator("label_smoothing", lambda v: v < 1, message="must be in [0, 1)")
flags.DEFINE_float("moving_average_decay", 0.0,
                   "Exponential moving average of the weights (e.g. 0.9999); 0: off. Evaluation "
                   "and model.keras use the averages.", lower_bound=0.0)
flags.register_validator("moving_average_decay", lambda v: v < 1, message="must be in [0, 1)")
flags.DEFINE_boolean("jit_compile", False, "XLA-compile the training step.")
flags.DEFINE_integer("seed", 0, "Seed of the shuffling and the held-out split.")

# --- fine-tuning ----------------------------------------------------------------------------------
flags.DEFINE_string("init_weights", None,
                    "'imagenet' or the path of a weights file / TF-slim checkpoint to fine-tune "
                    "from (the head is left out when the class counts differ).")
flags.DEFINE_boolean("freeze_base", False, "Train the classifier head only.")
flags.DEFINE_boolean("train_batch_norm", False,
                     "When fine-tuning without --freeze_base, train batch norm (re-estimate its "
                     "statistics) instead of keeping it in inference mode.")
flags.register_multi_flags_validator(
    ["freeze_base", "init_weights"], lambda f: not f["freeze_base"] or bool(f["init_weights"]),
    message="--freeze_base needs --init_weights (a frozen random base learns nothing)")

# --- distillation (the paper's section 4.5) ---------------------------------------------------------
flags.DEFINE_string("teacher", None,
                    "Train by distillation from this teacher: a train.py run folder, a .keras "
                    "file, or weights ('imagenet', .h5, TF-slim checkpoint; then "
                    "--teacher_alpha and --teacher_image_size). It must predict the student's "
                    "classes; it runs frozen in inference mode on each training crop, resized to "
                    "its input size, and is not saved with the student.")
flags.DEFINE_float("teacher_alpha", None, "α of a teacher given as weights.")
flags.register_validator("teacher_alpha", lambda v: v is None or v > 0, message="must be > 0")
flags.DEFINE_integer("teacher_image_size", None, "Input size of a teacher given as weights.",
                     lower_bound=32)
flags.DEFINE_float("distillation_temperature", 3.0,
                   "Softmax temperature T of the teacher's and student's outputs (the KL term "
                   "is multiplied by T^2; Keras' LogitsDistillation default 3).")
flags.register_validator("distillation_temperature", lambda v: v > 0, message="must be > 0")
flags.DEFINE_float("distillation_weight", 0.5,
                   "Weight w of the teacher's term: loss = w * distillation + (1 - w) * label "
                   "loss. 1.0: the teacher only (labels unused, so a folder of images without "
                   "class sub-folders trains).")
flags.register_validator("distillation_weight", lambda v: 0 < v <= 1, message="must be in (0, 1]")
for _name in ("teacher_alpha", "teacher_image_size"):
    flags.register_multi_flags_validator(
        [_name, "teacher"], lambda f, n=_name: f[n] is None or bool(f["teacher"]),
        message=f"--{_name} needs --teacher (the teacher's weights)")

# --- quantization-aware training (TF-slim's --quantize) ---------------------------------------------
flags.DEFINE_boolean("quantize", False,
                     "Quantization-aware training: batch norm folded into the convolutions, int8 "
                     "per-channel weights and int8 activations simulated with fake quantization "
                     "(mobilenet_tf.model.qat), so export_tflite.py writes a full-int8 .tflite from the "
                     "learned ranges, without calibration. From scratch, or fine-tune from "
                     "--init_weights (imagenet, a file, or a float run's folder). float32 only.")
flags.DEFINE_integer("quantize_delay", 0,
                     "Steps of float training before fake quantization starts (TF-slim's "
                     "--quantize_delay; activation ranges are learned from the first step).",
                     lower_bound=0)
flags.register_multi_flags_validator(
    ["quantize_delay", "quantize"], lambda f: not f["quantize_delay"] or f["quantize"],
    message="--quantize_delay needs --quantize")

# --- distribution and precision -------------------------------------------------------------------
flags.DEFINE_enum("distribution_strategy", "default", list(distribute.STRATEGIES),
                  "tf.distribute strategy: default (no distribution), one_device, mirrored (all "
                  "local GPUs), multi_worker_mirrored (the machines of TF_CONFIG), tpu (--tpu). "
                  "parameter_server is not offered: Keras 3's fit does not support it.")
flags.DEFINE_string("tpu", None, "TPU name or gRPC address for --distribution_strategy=tpu "
                                 "('local' on a TPU VM).")
flags.DEFINE_enum("mixed_precision", "none", list(precision.MIXED_PRECISION),
                  "Compute in bfloat16 or float16 (loss scaling) with float32 variables, batch "
                  "norm statistics, softmax and loss; model.keras stays float32.")
flags.DEFINE_boolean("sync_batch_norm", True,
                     "With several replicas, batch norm uses the global batch's statistics (the "
                     "same training as one device); --nosync_batch_norm: each replica's own.")


def _check_distribution(values):
    try:
        distribute.check_options(values["distribution_strategy"], tpu=values["tpu"],
                                 tf_config=os.environ.get("TF_CONFIG"),
                                 mixed_precision=values["mixed_precision"])
    except distribute.DistributionError as e:
        raise flags.ValidationError(str(e)) from None
    return True


flags.register_multi_flags_validator(["distribution_strategy", "tpu", "mixed_precision"],
                                     _check_distribution)
flags.register_multi_flags_validator(
    ["quantize", "mixed_precision"], lambda f: not f["quantize"] or f["mixed_precision"] == "none",
    message="--quantize simulates int8 arithmetic in float32: use --mixed_precision=none")

# --- saving and watching --------------------------------------------------------------------------
flags.DEFINE_integer("checkpoint_every_steps", 0,
                     "Also checkpoint every N steps (0: only at each epoch end).", lower_bound=0)
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.", lower_bound=1)
flags.DEFINE_integer("log_every_steps", 100, "TensorBoard step scalars every N steps (0: off).",
                     lower_bound=0)
flags.DEFINE_integer("verbose", None, "Keras verbosity: 0 silent, 1 progress bar, 2 a line per "
                     "epoch. Default: 1 on a terminal, 2 when the output is redirected.",
                     lower_bound=0, upper_bound=2)


def _folder_ok(path):
    problem = fileio.folder_problem(path)
    if problem:
        raise ValueError(problem)


def _check(check, value):
    """A validator that reports the library's own one-line message."""
    try:
        check(value)
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return True


def _parse_flags(argv):
    """absl parsing, but a bad flag is one line and exit status 2 (absl: 2 lines, status 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        message = " ".join(str(e).split())
        sys.stderr.write(f"train.py: error: {message}\n")
        sys.exit(2)


def _config():
    from mobilenet_tf.training import loop as training
    name = FLAGS.dataset.replace("folder:", "folder_").replace("/", "_").strip("_")
    if FLAGS.dataset.startswith("tfrecord:"):
        name = re.sub(r"[^\w.\-]+", "_", FLAGS.dataset.replace("tfrecord:", "tfrecord_")).strip("_")
    model_dir = FLAGS.model_dir or "runs/{}_mobilenet_v1_{:g}_{}".format(
        name, FLAGS.alpha, FLAGS.image_size)
    names = [f.name for f in training.dataclasses.fields(training.TrainConfig)]
    values = {name: FLAGS[name].value for name in names if name in FLAGS}
    values["model_dir"] = model_dir
    values["folder_formats"] = tuple(FLAGS.folder_formats)
    values["verbose"] = console.progress_verbosity(FLAGS.verbose)
    config = training.TrainConfig(**values)
    if FLAGS.mode == "eval":
        # Only what was given explicitly overrides the run's saved settings.
        for name in ("dataset", "data_dir", "batch_size", "validation_fraction", "cache"):
            if not FLAGS[name].present:
                setattr(config, name, None)
        config.folder_formats = tuple(FLAGS.folder_formats) if FLAGS["folder_formats"].present \
            else None
    return config


def _run(stop):
    native.import_tensorflow()
    logging.set_verbosity(logging.ERROR)   # tfds and TF chatter; errors still show
    console.log_to()                       # the library's lines (data found, files skipped)
    from mobilenet_tf.training import loop as training
    config = _config()
    if config.mode == "eval":
        training.evaluate(config)
    else:
        training.train(config, stop=stop)
    return 0


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"train.py: error: unexpected arguments {argv[1:]} (flags start with --)\n")
        return errors.EXIT_REFUSED
    stop = StopRequest()

    def on_signal(signum):
        if not stop.active:               # nothing trained yet: nothing to save
            raise errors.Interrupted(signum)
        stop.request(signum)
        sys.stderr.write(f"train.py: stopping after this step ({signal.Signals(signum).name}; "
                         "again to quit at once)\n")
    return runtime.run_command("train.py", lambda: _run(stop), on_signal)


if __name__ == "__main__":
    runtime.exit_on_early_signals("train.py")
    app.run(main, flags_parser=_parse_flags)
