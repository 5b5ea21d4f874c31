"""The settings of a training run: :class:`TrainConfig`, each field with its default, help
text and range or choices, the rules between fields, and the one check of all of them.

Defaults are the paper's recipe on ImageNet (TF-slim's constants come from
``mobilenet_tf.model.defaults``). ``train.py`` makes one absl flag from each field (same name,
default, help and bounds) and its flag validators call :func:`check_value` and :data:`RULES`,
so a bad flag is refused before TensorFlow is imported with the message the library gives.
The help texts name the flags (``--base_batch_size``) because that is where users read them.

Pure Python: importing this module imports no TensorFlow. It reads no flags.
"""

import dataclasses
import os

from mobilenet_tf.data import options as data_options
from mobilenet_tf.model import architecture
from mobilenet_tf.model import defaults as model_defaults
from mobilenet_tf.training import distribute
from mobilenet_tf.training import precision
from mobilenet_tf.training.errors import ConfigError
from mobilenet_tf.training.settings import Rule, outside, setting
from mobilenet_tf.utils import fileio

__all__ = ["TrainConfig", "ConfigError", "OPTIMIZERS", "MODES", "ARCHITECTURES", "RULES",
           "EVAL_OVERRIDES", "DEFAULT_DISTILLATION_TEMPERATURE", "DEFAULT_DISTILLATION_WEIGHT",
           "value_problem", "check_value", "field"]

OPTIMIZERS = ("rmsprop", "momentum", "sgd", "adamw")
MODES = ("train", "eval", "train_and_eval")
ARCHITECTURES = tuple(architecture.NAMED_CONV_DEFS)   # mobilenet_v1, conv_mobilenet, shallow_mobilenet
DEFAULT_DISTILLATION_TEMPERATURE = 3.0   # keras.distillation.LogitsDistillation's default
DEFAULT_DISTILLATION_WEIGHT = 0.5        # 1 - keras.distillation.Distiller's student_loss_weight
# What an evaluation may take from the caller instead of the run's train_config.json: where the
# validation data is and how it is read; the model's settings are always the run's.
EVAL_OVERRIDES = ("dataset", "data_dir", "batch_size", "validation_fraction", "cache",
                  "folder_formats")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs. Defaults: the paper's recipe on ImageNet."""
    dataset: str = setting(
        "imagenet2012",
        "A tensorflow-datasets name (imagenet2012, tf_flowers, stanford_dogs, ...; "
        "imagenet2012 needs ILSVRC2012_img_{train,val}.tar in <data_dir>/downloads/manual); "
        "'folder:PATH' (class sub-folders, or train/ and val/ of class sub-folders; "
        "checked by header into a manifest kept in the run folder); "
        "'tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]' or 'tfrecord:DIR' (TF-slim / Model "
        "Garden ImageNet shards train-* and validation-*; python -m "
        "mobilenet_tf.write_tfrecords makes them from a folder) or 'synthetic'.",
        check=data_options.parse_dataset_spec)
    data_dir: str = setting(None, "tensorflow-datasets data directory (default: tfds' own).")
    model_dir: str = setting(
        None, "Checkpoints, TensorBoard logs, model.keras and summary.json; created when "
        "training starts. Default: runs/<dataset>_mobilenet_v1_<alpha>_<image_size>.")
    mode: str = setting(
        "train_and_eval", "train; eval (top-1/top-5 of the newest checkpoint in --model_dir); "
        "train_and_eval (validation after each epoch and at the end).", choices=MODES)
    # model
    alpha: float = setting(1.0, "Width multiplier α (the paper: 1.0, 0.75, 0.5, 0.25).",
                           range="> 0")
    image_size: int = setting(224, "Input resolution (the paper: 224, 192, 160, 128).",
                              range=">= 32")
    architecture: str = setting(
        "mobilenet_v1", "Table 1 MobileNet, Table 4 Conv MobileNet (full convolutions) or "
        "Table 5 Shallow MobileNet.", choices=ARCHITECTURES)
    dropout: float = setting(1e-3, "Dropout rate before the classifier.", range="[0, 1)")
    batch_norm_momentum: float = setting(
        model_defaults.BATCH_NORM_MOMENTUM,
        "Batch norm moving-average momentum (TF-slim's 0.9997 suits long ImageNet runs; "
        "short runs on small data want about 0.9).", range="(0, 1]")
    # schedule
    batch_size: int = setting(256, "Global batch size.", range=">= 1")
    epochs: int = setting(100, "Training epochs.", range=">= 1")
    train_steps: int = setting(None, "Training steps (overrides --epochs).", range=">= 1")
    # optimizer
    optimizer: str = setting("rmsprop", "rmsprop (the paper), momentum, sgd or adamw.",
                             choices=OPTIMIZERS)
    learning_rate: float = setting(
        None, "The learning rate used (before decay and warmup). Not given: "
        "--base_learning_rate * batch_size / --base_batch_size (linear scaling).", range="> 0")
    base_learning_rate: float = setting(
        0.016, "Used only without --learning_rate: the rate for a batch of --base_batch_size "
        "images, scaled linearly to --batch_size (the paper flag files' convention).",
        range="> 0")
    base_batch_size: int = setting(256, "Batch size --base_learning_rate is given for.",
                                   range=">= 1")
    lr_decay_factor: float = setting(0.94, "Staircase decay factor.", range="(0, 1]")
    lr_decay_epochs: float = setting(2.0, "Epochs between learning-rate decays.", range="> 0")
    # At most 1000 epochs: the paper's runs are a few hundred epochs long; more is a typo.
    warmup_epochs: float = setting(0.0, "Linear learning-rate warmup (epochs).",
                                   range="[0, 1000]")
    rmsprop_decay: float = setting(0.9, "RMSprop decay (rho).", range="(0, 1]")
    momentum: float = setting(0.9, "Momentum of rmsprop and momentum.", range="[0, 1)")
    epsilon: float = setting(1.0, "RMSprop epsilon (TF-slim and Inception v3: 1.0).", range="> 0")
    weight_decay: float = setting(model_defaults.DEFAULT_WEIGHT_DECAY,
                                  "L2 weight decay, TF-slim semantics wd*sum(w^2)/2.", range=">= 0")
    regularize_depthwise: bool = setting(False, "Also decay depthwise kernels.")
    label_smoothing: float = setting(0.0, "Label smoothing.", range="[0, 1)")
    moving_average_decay: float = setting(
        0.0, "Exponential moving average of the weights (e.g. 0.9999); 0: off. Evaluation "
        "and model.keras use the averages.", range="[0, 1)")
    # fine-tuning
    init_weights: str = setting(
        None, "'imagenet' or the path of a weights file / TF-slim checkpoint to fine-tune "
        "from (the head is left out when the class counts differ).")
    freeze_base: bool = setting(False, "Train the classifier head only.")
    train_batch_norm: bool = setting(
        False, "When fine-tuning without --freeze_base, train batch norm (re-estimate its "
        "statistics) instead of keeping it in inference mode.")
    # distillation (mobilenet_tf.training.distillation; the paper's section 4.5)
    teacher: str = setting(
        None, "Train by distillation from this teacher: a train.py run folder, a .keras "
        "file, or weights ('imagenet', .h5, TF-slim checkpoint; then "
        "--teacher_alpha and --teacher_image_size). It must predict the student's "
        "classes; it runs frozen in inference mode on each training crop, resized to "
        "its input size, and is not saved with the student.")
    teacher_alpha: float = setting(None, "α of a teacher given as weights.", range="> 0")
    teacher_image_size: int = setting(None, "Input size of a teacher given as weights.",
                                      range=">= 32")
    # At most 100: Hinton et al. use 1 to 20, and the T^2 factor grows without bound.
    distillation_temperature: float = setting(
        DEFAULT_DISTILLATION_TEMPERATURE,
        "Softmax temperature T of the teacher's and student's outputs (the KL term "
        "is multiplied by T^2; Keras' LogitsDistillation default 3).", range="(0, 100]")
    distillation_weight: float = setting(
        DEFAULT_DISTILLATION_WEIGHT,
        "Weight w of the teacher's term: loss = w * distillation + (1 - w) * label "
        "loss. 1.0: the teacher only (labels unused, so a folder of images without "
        "class sub-folders trains).", range="(0, 1]")
    # quantization-aware training (mobilenet_tf.model.qat; TF-slim's --quantize, --quantize_delay)
    quantize: bool = setting(
        False, "Quantization-aware training: batch norm folded into the convolutions, int8 "
        "per-channel weights and int8 activations simulated with fake quantization "
        "(mobilenet_tf.model.qat), so export_tflite.py writes a full-int8 .tflite from the "
        "learned ranges, without calibration. From scratch, or fine-tune from "
        "--init_weights (imagenet, a file, or a float run's folder). float32 only.")
    quantize_delay: int = setting(
        0, "Steps of float training before fake quantization starts (TF-slim's "
        "--quantize_delay; activation ranges are learned from the first step).", range=">= 0")
    representative_dataset: str = setting(
        None, "--quantize from --init_weights: the images whose activation ranges start the "
        "learned ranges (before the first step, as export_tflite.py --representative_dataset "
        "calibrates post-training int8; a dataset spec as --dataset). Default: the training "
        "images.",
        check=data_options.parse_dataset_spec)
    num_calibration_images: int = setting(
        model_defaults.NUM_CALIBRATION_IMAGES,
        "--quantize: images of the calibration pass that starts the learned ranges "
        "(export_tflite.py's --num_calibration_images default).", range=">= 1")
    # input
    min_crop_area: float = setting(
        data_options.DEFAULT_MIN_CROP_AREA,
        "Smallest area fraction of Inception training crops (TF-slim 0.05; the paper "
        "limits small crops for small models, e.g. 0.25).", range="(0, 1]")
    color_distortion: bool = setting(True, "Brightness/saturation distortion in training.")
    validation_fraction: float = setting(
        0.1, "Fraction of the training data held out when the dataset has no validation "
        "split (tfds: no 'validation' or 'test'; folder: no val/).", range="[0, 1)")
    folder_formats: tuple = setting(
        data_options.DEFAULT_FOLDER_FORMATS,
        f"Image formats read from folder datasets, a subset of "
        f"{','.join(data_options.FOLDER_FORMATS)}. GIF is off by default: in photo "
        "folders GIFs are usually placeholders or animations.",
        choices=data_options.FOLDER_FORMATS)
    background_class: bool = setting(
        False, "tfrecord datasets: a head with TF-slim's background class 0 and the stored "
        "labels 1..K as they are (1001 classes for ImageNet, as TF-slim's checkpoints); "
        "default: K classes, label - 1 (1000 for ImageNet, as Keras' weights).")
    synthetic_examples: int = setting(1024, "Examples of --dataset=synthetic.", range=">= 1")
    synthetic_classes: int = setting(1000, "Classes of --dataset=synthetic.", range=">= 2")
    shuffle_buffer: int = setting(10000, "Shuffle buffer (examples).", range=">= 1")
    cache: str = setting(None, "Cache decoded images: 'memory' or a file path prefix.",
                         check=lambda value: _cache_check(value))
    download: bool = setting(True, "Let tensorflow-datasets download a missing dataset.")
    seed: int = setting(0, "Seed of the shuffling and the held-out split.")
    # saving and watching
    checkpoint_every_steps: int = setting(
        0, "Also checkpoint every N steps (0: only at each epoch end).", range=">= 0")
    keep_checkpoints: int = setting(3, "Checkpoints kept.", range=">= 1")
    log_every_steps: int = setting(100, "TensorBoard step scalars every N steps (0: off).",
                                   range=">= 0")
    verbose: int = setting(
        None, "Keras verbosity: 0 silent, 1 progress bar, 2 a line per epoch. Default: 1 on "
        "a terminal, 2 when the output is redirected.", range="[0, 2]")
    jit_compile: bool = setting(
        False, "XLA-compile the training step (TensorFlow backend; off by default, slower on "
        "CPU). On JAX the step is always XLA-compiled; on PyTorch this means torch.compile.")
    # distribution and precision
    distribution_strategy: str = setting(
        "default", "tf.distribute strategy: default (no distribution), one_device, mirrored "
        "(all local GPUs), multi_worker_mirrored (the machines of TF_CONFIG), tpu (--tpu). "
        "parameter_server is not offered: Keras 3's fit does not support it.",
        choices=distribute.STRATEGIES)
    tpu: str = setting(None, "TPU name or gRPC address for --distribution_strategy=tpu "
                             "('local' on a TPU VM).")
    mixed_precision: str = setting(
        "none", "Compute in bfloat16 or float16 (loss scaling) with float32 variables, batch "
        "norm statistics, softmax and loss; model.keras stays float32.",
        choices=precision.MIXED_PRECISION)
    sync_batch_norm: bool = setting(
        True, "With several replicas, batch norm uses the global batch's statistics (the "
        "same training as one device); --nosync_batch_norm: each replica's own.")

    def check(self):
        """Raises ``ConfigError`` (an ``InputError``: one line naming the field and value)
        for a value out of its range or choices, or a broken rule between fields (the
        dataset spec and the distribution settings raise their own ``InputError``).
        Returns self."""
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            check_value(f.name, values[f.name])
        for rule in RULES:
            found = rule.problem(values, lambda name: f"`{name}`")
            if found:
                received = ", ".join(f"{n}={values[n]!r}" for n in rule.names)
                raise ConfigError(f"{found}. Received: {received}")
        return self

    def to_json(self):
        d = dataclasses.asdict(self)
        d["folder_formats"] = list(self.folder_formats)
        return d

    @classmethod
    def from_json(cls, values):
        """The config saved by :meth:`to_json` (a run's ``train_config.json``); keys that are
        not fields (written by another version) are left out."""
        names = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in values.items() if k in names})
        config.folder_formats = tuple(config.folder_formats)
        return config


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _cache_check(value):
    """A cache file prefix must be writable: refused before the run folder is made (issue 27:
    TensorFlow's lock file failed at the first step)."""
    if value in (None, "memory"):
        return
    problem = fileio.file_problem(value)
    if problem:
        raise ConfigError(f"`cache` {problem}: give 'memory' or a file path prefix in a "
                          f"writable folder. Received: cache={value!r}")


def field(name):
    """The ``dataclasses.Field`` of TrainConfig's setting `name` (its ``Setting`` in
    ``metadata["setting"]``)."""
    return _FIELDS[name]


def value_problem(name, value):
    """``"must be ..."`` when `value` is outside what setting `name` accepts (its range,
    choices or type), else None; the dataset spec raises its own ``InputError``. What
    ``train.py``'s flag validators report."""
    words = outside(_FIELDS[name], value)
    return None if words is None else f"must be {words}"


def check_value(name, value):
    """Raises ``ConfigError`` (`` `name` must be ... Received: name=value``) when `value` is
    outside what setting `name` accepts (:func:`value_problem`)."""
    words = outside(_FIELDS[name], value)
    if words is not None:
        optional = "None or " if _FIELDS[name].default is None else ""
        raise ConfigError(f"`{name}` must be {optional}{words}. Received: {name}={value!r}")


# --- rules between settings -------------------------------------------------------------------
# Each returns what is wrong (naming settings through `name`) or None; TrainConfig.check adds
# "Received: ..." and train.py's multi-flag validators the flag names.

def _validation_data(v, name):
    if v["mode"] != "train" and v["validation_fraction"] == 0 and v["dataset"] == "synthetic":
        return (f"{name('validation_fraction')} must be > 0 for {name('mode')} {v['mode']!r} "
                "on synthetic data")
    return None


def _distribution(v, name):
    # Raises distribute.DistributionError (its own one line) for a bad combination.
    distribute.check_options(v["distribution_strategy"], tpu=v["tpu"],
                             tf_config=os.environ.get("TF_CONFIG"),
                             mixed_precision=v["mixed_precision"])
    return None


def _needs(setting_name, needed, why, given=bool):
    """`setting_name`, when ``given(value)``, needs `needed` to be set."""
    def find(v, name):
        if given(v[setting_name]) and not v[needed]:
            return f"{name(setting_name)} needs {name(needed)} ({why})"
        return None
    return Rule((setting_name, needed), find)


def _is_set(value):
    return value is not None


def _quantize_in_float32(v, name):
    if v["quantize"] and v["mixed_precision"] != "none":
        return (f"{name('quantize')} simulates int8 arithmetic in float32 (TensorFlow's "
                f"fake-quantization ops take float32 only): {name('mixed_precision')} must be "
                "'none'")
    return None


RULES = (
    Rule(("validation_fraction", "mode", "dataset"), _validation_data),
    Rule(("distribution_strategy", "tpu", "mixed_precision"), _distribution),
    _needs("teacher_alpha", "teacher", "the teacher's weights", given=_is_set),
    _needs("teacher_image_size", "teacher", "the teacher's weights", given=_is_set),
    _needs("quantize_delay", "quantize", "quantization-aware training"),
    # issue 26: the calibrated start of the learned ranges
    _needs("representative_dataset", "quantize", "it calibrates quantization-aware training",
           given=_is_set),
    Rule(("quantize", "mixed_precision"), _quantize_in_float32),
    _needs("freeze_base", "init_weights", "a frozen random base learns nothing"),
)
