"""Training and evaluation of MobileNetV1: the library behind ``train.py``.

One :class:`TrainConfig` describes a run; :func:`train` runs it and
:func:`evaluate` measures a trained run. Parts that tests check on their own:

* :func:`learning_rate_schedule` / :class:`StaircaseDecayWithWarmup`: staircase
  exponential decay (TF-slim's ``exponential_decay(..., staircase=True)``: 0.94
  every 2 epochs by default), optional linear warmup. ``learning_rate`` is the
  rate used; without it the rate follows the linear scaling rule (Goyal et al.
  2017; timm's ``--lr-base``/``--lr-base-size``): ``base_learning_rate *
  batch_size / base_batch_size``, by default 0.016 per 256 images, the paper
  configurations' convention. :func:`initial_learning_rate` says which rule gave it.
* :func:`weight_decay_rule` / :func:`split_weight_decay`: the per-variable L2
  filter. Full and pointwise convolution kernels and the logits kernel are
  decayed; depthwise kernels only with ``regularize_depthwise`` (the paper:
  "very little or no weight decay on the depthwise filters"); batch-norm
  parameters and biases never. Any other trainable variable is an error, so
  every trainable variable is decided one way or the other.
* :func:`l2_penalty`: TF-slim's ``l2_regularizer(wd)`` = wd * sum(w**2) / 2.
  With rmsprop / momentum / sgd the penalty is **added to the loss** (as TF-slim
  did, so RMSprop normalises its gradient like any other, which is the
  training the released checkpoints had); with ``adamw`` it is applied as
  **decoupled decay** (``w -= lr * wd * w`` on the same variables, the
  gradient of the same penalty but outside Adam's normalisation, which is
  what AdamW means).
* Checkpoints (``tf.train.Checkpoint`` of model and optimizer: weights, batch
  norm statistics, optimizer slots, EMA shadows and the step count) in
  ``model_dir/checkpoints`` every epoch and every ``checkpoint_every_steps``,
  keeping the last ``keep_checkpoints``. TensorFlow writes a checkpoint's files
  under temporary names and then atomically replaces the ``checkpoint`` state
  file, so a run killed at any moment (SIGKILL included) finds the last
  complete checkpoint. A re-run of the same command restores it and continues
  at the same step with the same batches (the input pipeline is a function of
  the step).
* At the end: ``model_dir/model.keras`` (EMA averages when
  ``moving_average_decay`` > 0; a plain Keras model, loadable with
  ``keras.models.load_model``) and ``model_dir/summary.json``, both written
  atomically.

Distribution and precision (``mobilenet_tf.training.distribute``, ``mobilenet_tf.training.precision``):
``distribution_strategy`` picks the ``tf.distribute`` strategy (created first
thing in :func:`train`); model, optimizer, metrics and checkpoint are created
in its scope; ``batch_size`` is the global batch (split over the replicas; a
batch that does not divide is refused before any data is read) and the
learning rate follows it by the linear rule above; with more than one replica
batch normalization uses the global batch's statistics (``sync_batch_norm``,
so the run equals a one-device run of the same global batch); each worker
reads its own shard of the input; only the chief writes into ``model_dir``,
the other workers save into temporary directories that are removed at the
end; a resumed run restores every worker from the chief's checkpoint.
``mixed_precision`` (``none`` | ``bfloat16`` | ``float16``) computes in low
precision with float32 variables, batch-norm statistics, softmax and loss
(loss scaling for float16); ``model.keras`` is always float32.

Distillation (``teacher``; ``mobilenet_tf.training.distillation``): ``fit`` trains a
``keras.distillation.Distiller`` of the model from the teacher's logits; the
checkpoint, ``model.keras``, EMA, schedule and weight decay are those of the
student alone, so a distilled run resumes, evaluates and exports like any other.

This module reads no flags; ``train.py`` maps flags onto :class:`TrainConfig`.
"""

import contextlib
import dataclasses
import json
import math
import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from mobilenet_tf import data as datasets
from mobilenet_tf.training import distillation
from mobilenet_tf.training import distribute
from mobilenet_tf import errors
from mobilenet_tf.utils import fileio
from mobilenet_tf.model import builder as model_lib
from mobilenet_tf.training import precision
from mobilenet_tf.data import preprocessing
from mobilenet_tf.model import qat
from mobilenet_tf.errors import InputError
from mobilenet_tf.model.labels import MIN_CLASSES_FOR_TOP5
from mobilenet_tf.training.options import ARCHITECTURES, MODES, OPTIMIZERS

__all__ = ["TrainConfig", "TrainingError", "OPTIMIZERS", "MODES", "ARCHITECTURES",
           "StaircaseDecayWithWarmup", "scaled_learning_rate", "learning_rate_schedule",
           "weight_decay_rule", "split_weight_decay", "l2_penalty", "apply_weight_decay",
           "make_optimizer", "build_model", "compile_model", "train", "evaluate", "restore_run",
           "saved_config", "atomic_write_text", "write_scalar", "CHECKPOINT_SUBDIR",
           "TENSORBOARD_SUBDIR"]

CHECKPOINT_SUBDIR = "checkpoints"
TENSORBOARD_SUBDIR = "tensorboard"
CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.keras"
HEAD_LAYERS = ("Logits",)
# Settings a resumed or evaluated run must share with the run that wrote model_dir.
_RUN_IDENTITY = ("dataset", "alpha", "image_size", "architecture", "optimizer", "batch_size",
                 "moving_average_decay", "num_classes", "teacher", "quantize")


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss). One-line message (exit status 1)."""


@contextlib.contextmanager
def _stop_on_bad_data(where):
    """A data error the input pipeline raises on purpose (``datasets.pipeline_error``: a TFRecord
    label out of range) becomes a one-line TrainingError ending with ``where()``."""
    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        problem = datasets.pipeline_error(e)
        if problem is None:
            raise
        raise TrainingError(f"{problem}; {where()}") from None


class RunFolderError(TrainingError, InputError):
    """A ``model_dir`` that cannot hold this run: a file, under a file, not writable, or the
    folder of a run with other settings. Raised before any work (exit status 2)."""


class ConfigError(InputError):
    """A TrainConfig field out of range. One line naming the field and value (exit status 2)."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs. Defaults: the paper's recipe on ImageNet."""
    dataset: str = "imagenet2012"
    data_dir: str = None
    model_dir: str = None
    mode: str = "train_and_eval"
    # model
    alpha: float = 1.0
    image_size: int = 224
    architecture: str = "mobilenet_v1"
    dropout: float = 1e-3
    batch_norm_momentum: float = model_lib.BATCH_NORM_MOMENTUM
    # schedule
    batch_size: int = 256
    epochs: int = 100
    train_steps: int = None
    # optimizer
    optimizer: str = "rmsprop"
    learning_rate: float = None          # the rate used; None: base rate scaled by the batch
    base_learning_rate: float = 0.016    # ... the rate for a batch of base_batch_size
    base_batch_size: int = 256
    lr_decay_factor: float = 0.94
    lr_decay_epochs: float = 2.0
    warmup_epochs: float = 0.0
    rmsprop_decay: float = 0.9
    momentum: float = 0.9
    epsilon: float = 1.0
    weight_decay: float = model_lib.DEFAULT_WEIGHT_DECAY
    regularize_depthwise: bool = False
    label_smoothing: float = 0.0
    moving_average_decay: float = 0.0
    # fine-tuning
    init_weights: str = None
    freeze_base: bool = False
    train_batch_norm: bool = False
    # distillation (mobilenet_tf.training.distillation)
    teacher: str = None                  # run folder, .keras, or weights (then its alpha and size)
    teacher_alpha: float = None
    teacher_image_size: int = None
    distillation_temperature: float = distillation.DEFAULT_TEMPERATURE
    distillation_weight: float = distillation.DEFAULT_WEIGHT   # 1: teacher only, labels unused
    # quantization-aware training (mobilenet_tf.model.qat; TF-slim's --quantize, --quantize_delay)
    quantize: bool = False
    quantize_delay: int = 0
    # input
    min_crop_area: float = preprocessing.DEFAULT_MIN_CROP_AREA
    color_distortion: bool = True
    validation_fraction: float = 0.1
    folder_formats: tuple = datasets.DEFAULT_FOLDER_FORMATS
    background_class: bool = False       # tfrecord: TF-slim's class 0 in the head (1001 for ImageNet)
    synthetic_examples: int = 1024
    synthetic_classes: int = 1000
    shuffle_buffer: int = 10000
    cache: str = None
    download: bool = True
    seed: int = 0
    # saving and watching
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    log_every_steps: int = 100
    verbose: int = 1
    jit_compile: bool = False
    # distribution and precision
    distribution_strategy: str = "default"
    tpu: str = None
    mixed_precision: str = "none"
    sync_batch_norm: bool = True

    def check(self):
        """Raises ValueError (one line naming the field and value) for a bad setting."""
        def fail(name, allowed):
            raise ConfigError(f"`{name}` must be {allowed}. Received: {name}={getattr(self, name)!r}")
        datasets.parse_dataset_spec(self.dataset)
        if self.mode not in MODES:
            fail("mode", f"one of {MODES}")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {OPTIMIZERS}")
        if self.architecture not in ARCHITECTURES:
            fail("architecture", f"one of {ARCHITECTURES}")
        if not self.alpha > 0:
            fail("alpha", "> 0")
        if not isinstance(self.image_size, int) or self.image_size < 32:
            fail("image_size", "an int >= 32")
        for name in ("batch_size", "base_batch_size", "keep_checkpoints", "epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                fail(name, "an int >= 1")
        if self.train_steps is not None and (not isinstance(self.train_steps, int)
                                             or self.train_steps < 1):
            fail("train_steps", "None or an int >= 1")
        for name in ("checkpoint_every_steps", "log_every_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                fail(name, "an int >= 0 (0: off)")
        if self.learning_rate is not None and not self.learning_rate > 0:
            fail("learning_rate", "None (scale base_learning_rate by the batch) or > 0")
        for name in ("base_learning_rate", "lr_decay_epochs", "epsilon"):
            if not getattr(self, name) > 0:
                fail(name, "> 0")
        for name in ("lr_decay_factor", "rmsprop_decay", "min_crop_area", "batch_norm_momentum"):
            if not 0 < getattr(self, name) <= 1:
                fail(name, "in (0, 1]")
        for name in ("momentum", "label_smoothing", "moving_average_decay", "dropout",
                     "validation_fraction"):
            if not 0 <= getattr(self, name) < 1:
                fail(name, "in [0, 1)")
        for name in ("weight_decay", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                fail(name, ">= 0")
        if self.mode != "train" and self.validation_fraction == 0 and self.dataset == "synthetic":
            fail("validation_fraction", f"> 0 for mode={self.mode!r} on synthetic data")
        precision.policy_name(self.mixed_precision)
        distribute.check_options(self.distribution_strategy, tpu=self.tpu,
                                 tf_config=os.environ.get("TF_CONFIG"),
                                 mixed_precision=self.mixed_precision)
        if not self.distillation_temperature > 0:
            fail("distillation_temperature", "> 0")
        if not 0 < self.distillation_weight <= 1:
            fail("distillation_weight", "in (0, 1] (1: the teacher only, labels unused)")
        if not self.teacher:
            for name in ("teacher_alpha", "teacher_image_size"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"`{name}` needs `teacher` (the teacher's weights). "
                                      f"Received: {name}={getattr(self, name)!r}, teacher=None")
        if self.teacher_alpha is not None and not self.teacher_alpha > 0:
            fail("teacher_alpha", "None or > 0")
        if self.teacher_image_size is not None and (not isinstance(self.teacher_image_size, int)
                                                    or self.teacher_image_size < 32):
            fail("teacher_image_size", "None or an int >= 32")
        if not isinstance(self.quantize_delay, int) or self.quantize_delay < 0:
            fail("quantize_delay", "an int >= 0 (steps of float training before fake quantization)")
        if self.quantize_delay and not self.quantize:
            raise ConfigError("`quantize_delay` needs `quantize` (quantization-aware training). "
                              f"Received: quantize_delay={self.quantize_delay!r}, quantize=False")
        if self.quantize and self.mixed_precision != "none":
            raise ConfigError("`quantize` simulates int8 arithmetic in float32 (TensorFlow's "
                              "fake-quantization ops take float32 only): use mixed_precision "
                              f"'none'. Received: mixed_precision={self.mixed_precision!r}, "
                              "quantize=True")
        if self.freeze_base and not self.init_weights:
            raise ConfigError("`freeze_base` needs `init_weights` (a frozen random base learns "
                              "nothing). Received: freeze_base=True, init_weights=None")
        return self

    def to_json(self):
        d = dataclasses.asdict(self)
        d["folder_formats"] = list(self.folder_formats)
        return d


# --- learning rate --------------------------------------------------------------------------------

def scaled_learning_rate(base_learning_rate, batch_size, base_batch_size=256):
    """The linear scaling rule: ``base_learning_rate`` is the rate for ``base_batch_size``."""
    return base_learning_rate * batch_size / base_batch_size


def initial_learning_rate(config):
    """``(rate, rule)``: the rate training starts from (before decay and warmup) and, in
    words, which rule produced it — ``learning_rate`` as given, or the base rate scaled
    by the batch size."""
    if config.learning_rate is not None:
        return config.learning_rate, f"{config.learning_rate:g} (learning_rate, as given)"
    rate = scaled_learning_rate(config.base_learning_rate, config.batch_size,
                                config.base_batch_size)
    return rate, (f"{rate:g} (= base_learning_rate {config.base_learning_rate:g} x batch "
                  f"{config.batch_size} / {config.base_batch_size}: linear scaling; set "
                  "learning_rate to give the rate itself)")


@keras.saving.register_keras_serializable(package="mobilenet_tf")
class StaircaseDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``rate * decay_factor ** floor(step / decay_steps) * min(1, (step + 1) / warmup_steps)``.

    The staircase is TF-slim's ``tf.train.exponential_decay(staircase=True)``;
    with ``warmup_steps`` = 0 the last factor is 1. ``step`` is the number of
    steps already taken (the optimizer's ``iterations``).
    """

    def __init__(self, rate, decay_steps, decay_factor, warmup_steps=0):
        self.rate = float(rate)
        self.decay_steps = int(decay_steps)
        self.decay_factor = float(decay_factor)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = self.rate * tf.pow(self.decay_factor, tf.floor(step / float(self.decay_steps)))
        if self.warmup_steps > 0:
            lr = lr * tf.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return lr

    def get_config(self):
        return {"rate": self.rate, "decay_steps": self.decay_steps,
                "decay_factor": self.decay_factor, "warmup_steps": self.warmup_steps}


def learning_rate_schedule(config, steps_per_epoch):
    """The schedule of `config` for an epoch of ``steps_per_epoch`` steps."""
    rate, _ = initial_learning_rate(config)
    return StaircaseDecayWithWarmup(
        rate, decay_steps=max(1, int(round(config.lr_decay_epochs * steps_per_epoch))),
        decay_factor=config.lr_decay_factor,
        warmup_steps=int(round(config.warmup_epochs * steps_per_epoch)))


# --- weight decay ---------------------------------------------------------------------------------

def _variable_name(variable):
    return getattr(variable, "name", "").split("/")[-1].split(":")[0]


def weight_decay_rule(layer, variable, regularize_depthwise=False):
    """True if `variable` (a trainable weight of `layer`) gets weight decay, False if not.

    Raises ValueError for a variable the rule does not know, so a new kind of
    layer cannot silently go undecayed.
    """
    name = _variable_name(variable)
    if isinstance(layer, keras.layers.BatchNormalization) and name in ("gamma", "beta"):
        return False
    if isinstance(layer, qat.QuantizedConv):       # a convolution with its batch norm folded in
        if name == "kernel":
            return bool(regularize_depthwise) or not layer.depthwise
        if name in ("bias", "gamma", "beta"):
            return False
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if name == "kernel":
            return bool(regularize_depthwise)
        if name == "bias":
            return False
    elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        if name == "kernel":
            return True
        if name == "bias":
            return False
    raise ValueError(f"the weight decay rule has no decision for trainable variable "
                     f"{getattr(variable, 'path', name)!r} of a {type(layer).__name__} layer")


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def split_weight_decay(model, regularize_depthwise=False):
    """``(decayed, excluded)``: the model's trainable variables, each in exactly one list.

    Raises ValueError if any trainable variable is decided by no layer (or twice).
    """
    decayed, excluded, seen = [], [], set()
    for layer in _leaf_layers(model):
        for variable in layer.trainable_weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            (decayed if weight_decay_rule(layer, variable, regularize_depthwise)
             else excluded).append(variable)
    trainable = {id(v): v for v in model.trainable_variables}
    missing = [v.path for i, v in trainable.items() if i not in seen]
    if missing or len(decayed) + len(excluded) != len(trainable):
        raise ValueError(f"weight decay: trainable variables not decided by any layer: {missing}")
    return decayed, excluded


def l2_penalty(variables, weight_decay):
    """TF-slim's ``l2_regularizer(weight_decay)`` summed over `variables`: wd * sum(w**2) / 2."""
    total = tf.constant(0.0)
    for v in variables:
        total += tf.reduce_sum(tf.square(tf.cast(tf.convert_to_tensor(v), tf.float32)))
    return weight_decay * total / 2.0


class _HalfL2(keras.regularizers.Regularizer):
    """wd * sum(w**2) / 2 for one variable (slim semantics; Keras' L2(l) is l * sum(w**2))."""

    def __init__(self, weight_decay):
        self.weight_decay = float(weight_decay)

    def __call__(self, x):
        return self.weight_decay * tf.reduce_sum(tf.square(x)) / 2.0

    def get_config(self):
        return {"weight_decay": self.weight_decay}


def apply_weight_decay(model, weight_decay, *, regularize_depthwise=False, decoupled=False):
    """Attaches the L2 filter; returns ``(decayed, excluded)`` variable lists.

    ``decoupled=False``: each decayed variable gets a regularizer, so Keras adds
    wd * sum(w**2) / 2 to the training loss. ``decoupled=True``: nothing is
    attached (the optimizer decays the ``decayed`` list, see make_optimizer).
    """
    decayed, excluded = split_weight_decay(model, regularize_depthwise)
    for v in excluded:
        v.regularizer = None
    for v in decayed:
        v.regularizer = None if decoupled or weight_decay == 0 else _HalfL2(weight_decay)
    return decayed, excluded


# --- optimizer and model --------------------------------------------------------------------------

def make_optimizer(config, schedule, excluded_from_decay=()):
    """The Keras optimizer of ``config.optimizer`` with EMA when ``moving_average_decay`` > 0."""
    ema = dict(use_ema=config.moving_average_decay > 0,
               ema_momentum=config.moving_average_decay or 0.99)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(schedule, rho=config.rmsprop_decay, momentum=config.momentum,
                                        epsilon=config.epsilon, **ema)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(schedule, momentum=config.momentum, **ema)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.0, **ema)
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
        optimizer.exclude_from_weight_decay(var_list=list(excluded_from_decay))
        return optimizer
    raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={config.optimizer!r}")


def build_model(config, num_classes, log=print, load_weights=True, replicas=1):
    """MobileNetV1 for `config`, with ImageNet/file weights and freezing when fine-tuning.

    ``batch_norm_momentum`` replaces TF-slim's 0.9997 (right for ImageNet's
    long runs; short runs on small data need e.g. 0.9 for the moving
    statistics that evaluation uses to follow the weights).
    Fine-tuning (``init_weights``): everything but the head is loaded when the
    class counts differ; ``freeze_base`` makes every layer but the head
    non-trainable; otherwise batch norm layers stay in inference mode
    (non-trainable) unless ``train_batch_norm``.
    """
    model = precision.build_with_policy(lambda: model_lib.MobileNetV1(
        (config.image_size, config.image_size, 3), alpha=config.alpha, dropout=config.dropout,
        classes=num_classes, conv_defs=config.architecture, classifier_activation="softmax"),
        config.mixed_precision)
    if replicas > 1 and config.sync_batch_norm:
        # Statistics of the global batch: the same training as on one device (see distribute).
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    if config.batch_norm_momentum != model_lib.BATCH_NORM_MOMENTUM:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.batch_norm_momentum
    if config.init_weights:
        if load_weights:
            from mobilenet_tf.model import weights as weights_lib
            report = weights_lib.load_weights(model, config.init_weights,
                                              skip_mismatched_head=True, verbose=False)
            for line in report.lines():
                log(line)
        for layer in model.layers:
            if config.freeze_base and layer.name not in HEAD_LAYERS:
                layer.trainable = False
            elif isinstance(layer, keras.layers.BatchNormalization) and not config.train_batch_norm:
                layer.trainable = False
        if config.freeze_base:
            log("Fine-tuning: base frozen (batch norm in inference mode), training the head only.")
        elif not config.train_batch_norm:
            log("Fine-tuning: batch norm layers in inference mode with fixed parameters "
                "(pass train_batch_norm to re-estimate them).")
    if config.quantize:
        model = qat.quantize_model(model, quantize_delay=config.quantize_delay)
        log("Quantization-aware training: batch norm folded into the convolutions, int8 "
            "per-channel weights and int8 activations simulated"
            + (f"; fake quantization starts at step {config.quantize_delay}"
               if config.quantize_delay else "") + ".")
    return model


def compile_model(model, config, schedule, log, train_model=None):
    """Weight decay, optimizer, loss (with label smoothing) and top-1/top-5 metrics; builds the
    optimizer (slots, EMA) so a checkpoint restores into it. Returns the optimizer.

    ``train_model``: what ``fit`` trains when it is not `model` itself — a
    ``distillation.Distiller`` of `model` (its predictions are logits, so the label loss
    takes logits); it is compiled, `model` gets the weight decay."""
    decoupled = config.optimizer == "adamw"
    decayed, excluded = apply_weight_decay(model, config.weight_decay,
                                           regularize_depthwise=config.regularize_depthwise,
                                           decoupled=decoupled)
    how = ("decoupled (AdamW)" if decoupled else "added to the loss as wd*sum(w^2)/2")
    log(f"Weight decay {config.weight_decay:g} ({how}) on {len(decayed)} variables: "
        + ", ".join(v.path for v in decayed))
    log(f"No weight decay on {len(excluded)} variables (batch norm, biases"
        + ("" if config.regularize_depthwise else ", depthwise kernels") + ").")
    optimizer = make_optimizer(config, schedule, excluded_from_decay=excluded)
    target = model if train_model is None else train_model
    target.compile(
        optimizer=precision.with_loss_scaling(model, optimizer),   # float16: loss scaling
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing,
                                                  from_logits=train_model is not None),
        metrics=accuracy_metrics(int(model.output_shape[-1])),
        jit_compile=config.jit_compile)
    target.optimizer.build(target.trainable_variables)     # with float16 also the loss scale
    return optimizer


def accuracy_metrics(num_classes):
    """top1, and top5 where it means something (6 classes or more; with fewer every label
    is in the top 5, and a 1.0 would only mislead)."""
    metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
    if num_classes >= MIN_CLASSES_FOR_TOP5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"))
    return metrics


# --- files ----------------------------------------------------------------------------------------

def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (``mobilenet_tf.utils.fileio``), creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fileio.write_text(path, text)


def _save_model_atomically(model, path):
    """A plain (uncompiled, all layers trainable, float32) copy of `model` saved as `path`."""
    clean = precision.float32_copy(model)
    fileio.save_model(clean, path)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{path} cannot be read: {errors.one_line(e)}") from None


def _check_same_run(model_dir, identity):
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    saved = _read_json(path).get("identity", {})
    for key, value in identity.items():
        if key in saved and saved[key] != value:
            raise RunFolderError(
                f"model_dir {model_dir} holds a run with {key}={saved[key]!r}, this run has "
                f"{key}={value!r}: use another --model_dir or the same settings")


# --- callbacks ------------------------------------------------------------------------------------

def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


def write_scalar(name, value, step):
    """A TensorBoard scalar through the current default writer.

    ``tf.summary.write`` with the scalars plugin's metadata is what
    ``tf.summary.scalar`` writes, without needing the ``tensorboard`` package
    (only needed to view the logs).
    """
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_scalar_metadata())


# With distillation also Keras' Distiller's student_loss (labels) and distillation_loss (teacher).
_TRAIN_SCALARS = ("loss", "top1", "top5", "images_per_second", "student_loss",
                  "distillation_loss")


class _TensorBoardLogger(keras.callbacks.Callback):
    """TensorBoard scalars at the optimizer's step (so a resumed run continues the curves).

    ``train/``: every ``log_every_steps`` steps loss, top1, top5, learning_rate and
    images_per_second (``step/...``), and each epoch's means (``epoch/...``);
    ``validation/``: each epoch's validation loss, top1, top5.
    """

    def __init__(self, log_dir, log_every_steps, optimizer, qat_model=None):
        super().__init__()
        self.qat_model = qat_model
        self.train_writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self.val_writer = tf.summary.create_file_writer(os.path.join(log_dir, "validation"))
        self.every = log_every_steps
        self.optimizer = optimizer

    def _lr(self):
        return float(np.asarray(self.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        if not self.every or step % self.every or not logs:
            return
        with self.train_writer.as_default():
            for key in _TRAIN_SCALARS:
                if key in logs:
                    write_scalar(f"step/{key}", logs[key], step)
            write_scalar("step/learning_rate", self._lr(), step)
            self._ranges(step)

    def _ranges(self, step):
        """The learned activation ranges of a quantization-aware model (``quantization/``)."""
        if self.qat_model is None:
            return
        for name, (low, high) in qat.activation_ranges(self.qat_model).items():
            write_scalar(f"quantization/{name}/min", low, step)
            write_scalar(f"quantization/{name}/max", high, step)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        logs = logs or {}
        with self.train_writer.as_default():
            for key in _TRAIN_SCALARS:
                if key in logs:
                    write_scalar(f"epoch/{key}", logs[key], step)
            write_scalar("epoch/learning_rate", self._lr(), step)
            self._ranges(step)
        with self.val_writer.as_default():
            for key in ("loss", "top1", "top5", "student_loss", "distillation_loss"):
                if f"val_{key}" in logs:
                    write_scalar(f"epoch/{key}", logs[f"val_{key}"], step)
        self.train_writer.flush()
        self.val_writer.flush()

    def close(self):
        self.train_writer.close()
        self.val_writer.close()


class _StepCallback(keras.callbacks.Callback):
    """Non-finite loss guard, checkpoints, stop requests, and images/s (progress bar, epoch
    logs, summary).

    The loss is checked before anything is saved, so a non-finite step never
    reaches a checkpoint. Throughput counts the time of training steps (input
    included, validation not), leaving out the run's first step, which traces
    and compiles the step function (later ``fit`` calls reuse it). A stop
    request is served after the step in progress: a checkpoint at that step,
    then ``errors.Interrupted``. The checkpoint of an epoch's last step is saved
    before its validation starts, while the model holds the raw weights (Keras
    swaps the moving averages in for validation).
    """

    def __init__(self, manager, checkpoint_every_steps, batch_size, optimizer, *, stop=None,
                 total_steps=None):
        super().__init__()
        self.manager = manager
        self.every = checkpoint_every_steps
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.stop = stop
        self.total_steps = total_steps
        self.last_saved = None
        self.seconds = 0.0
        self.steps = 0
        self._first = True

    def _step(self):
        return int(self.optimizer.iterations.numpy())

    def save(self, step):
        if step != self.last_saved:
            self.manager.save(checkpoint_number=step)
            self.last_saved = step

    def _serve_stop_request(self, save=True):
        if self.stop is None or self.stop.signum is None:
            return
        step = self._step()
        if save:
            self.save(step)
        raise errors.Interrupted(self.stop.signum, step, self.total_steps,
                                 self.manager.latest_checkpoint)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_seconds, self._epoch_steps = 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        dt = time.perf_counter() - self._t
        logs = logs if logs is not None else {}
        step = self._step()
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            last = self.manager.latest_checkpoint
            raise TrainingError(
                f"loss is {float(loss)} at step {step}: training stopped; the last good checkpoint "
                f"is {last if last else 'none (no checkpoint was written yet)'}")
        if self._first:
            self._first = False
        else:
            self._epoch_seconds += dt
            self._epoch_steps += 1
            self.seconds += dt
            self.steps += 1
        if self._epoch_seconds > 0:
            logs["images_per_second"] = self._epoch_steps * self.batch_size / self._epoch_seconds
        if self.every and step % self.every == 0:
            self.save(step)
        self._serve_stop_request()

    def on_test_begin(self, logs=None):
        self.save(self._step())      # validation inside fit(): raw weights, before any swap

    def on_test_batch_end(self, batch, logs=None):
        self._serve_stop_request(save=False)      # saved in on_test_begin

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._epoch_seconds > 0:
            logs["images_per_second"] = self._epoch_steps * self.batch_size / self._epoch_seconds
        self.save(self._step())
        self._serve_stop_request()

    @property
    def images_per_second(self):
        """Images per second of the timed steps; None when no step could be timed (a run of
        one step has only the traced one)."""
        return self.steps * self.batch_size / self.seconds if self.seconds > 0 else None


# --- the run --------------------------------------------------------------------------------------

def _load_data(config, log):
    return datasets.load_dataset(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        validation_fraction=config.validation_fraction, formats=config.folder_formats,
        synthetic_examples=config.synthetic_examples, synthetic_classes=config.synthetic_classes,
        download=config.download, seed=config.seed,
        allow_unlabelled=bool(getattr(config, "teacher", None)),
        manifest_dir=os.path.join(config.model_dir, datasets.MANIFEST_DIR) if config.model_dir
        else None, background_class=bool(getattr(config, "background_class", False)))


def _load_teacher(config, data, strategy, log):
    """The run's teacher (in the strategy's scope), checked against the data; the classes of
    images without labels are the teacher's. Refusals are one line, before any work."""
    if not data.labelled and config.distillation_weight < 1:
        raise datasets.DatasetError(
            f"{config.dataset}: the training images have no labels, so only the teacher can "
            f"train on them: distillation_weight must be 1. Received: distillation_weight="
            f"{config.distillation_weight:g}")
    with strategy.scope():
        teacher = distillation.load_teacher(config.teacher, alpha=config.teacher_alpha,
                                            image_size=config.teacher_image_size)
    if data.num_classes is None:
        data.num_classes, data.class_names = teacher.num_classes, teacher.class_names
    distillation.check_teacher_classes(teacher, data.num_classes, data.class_names, config.dataset)
    size = "x".join(str(s) for s in teacher.image_size)
    mix = ("the teacher only (labels unused)" if config.distillation_weight == 1 else
           f"{config.distillation_weight:g} x teacher + {1 - config.distillation_weight:g} x labels")
    log(f"Distillation from {teacher.source} ({size}, {teacher.num_classes} classes, inference "
        f"mode, frozen; not saved with the student): temperature "
        f"{config.distillation_temperature:g}, loss {mix}"
        + ("" if teacher.image_size == (config.image_size, config.image_size)
           else f"; the teacher sees each {config.image_size}x{config.image_size} crop resized "
                f"to {size}"))
    return teacher


def _segments(start_step, total_steps, steps_per_epoch):
    """The epochs left from `start_step`: ``(epoch, steps to run, steps already done)`` each."""
    out = []
    step = start_step
    while step < total_steps:
        epoch, done = divmod(step, steps_per_epoch)
        steps = min(steps_per_epoch - done, total_steps - step)
        out.append((epoch, steps, done))
        step += steps
    return out


class _Progbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, showing "Epoch e/total" although each fit() call runs one epoch."""

    def __init__(self, total_epochs):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(dict(params, epochs=self.total_epochs))


def _checkpoint(model, optimizer, train_model=None):
    """model + optimizer (+ the float16 loss scale, when compile wrapped the optimizer). With
    distillation `model` is the student: the teacher is not saved."""
    extra = {}
    compiled = (train_model or model).optimizer
    if isinstance(compiled, keras.optimizers.LossScaleOptimizer):
        extra["loss_scale"] = compiled
    return tf.train.Checkpoint(model=model, optimizer=optimizer, **extra)


def _restore(checkpoint, manager, log, directory=None):
    """Restores the newest checkpoint of ``directory`` (default: the manager's)."""
    path = tf.train.latest_checkpoint(directory) if directory else manager.latest_checkpoint
    if not path:
        return None
    checkpoint.restore(path).assert_existing_objects_matched()
    log(f"Restored {path}")
    return path


def train(config, *, strategy=None, is_chief=None, log=print, stop=None):
    """Runs `config` (mode train or train_and_eval); returns the summary dict.

    Resumes from the newest checkpoint in ``model_dir`` when there is one; a run
    that has already reached its last step changes nothing and returns its
    recorded summary. ``model_dir`` is created only once training starts: a run
    refused before (missing data, bad weights, a folder of another run) leaves
    nothing behind. ``strategy``: a ``tf.distribute.Strategy`` (default: the one
    ``config.distribution_strategy`` names, created here); ``is_chief``:
    whether this process writes ``model_dir`` (default: from the strategy's
    cluster, see ``distribute.is_chief``); ``stop``: a ``runtime.StopRequest``
    (signals), served after the step in progress.

    Raises:
      ValueError / errors.InputError: bad config, data missing, unusable weights,
        a ``model_dir`` that is a file or belongs to a run with other settings, a
        bad strategy / cluster / batch combination — all before any work.
      TrainingError: non-finite loss (naming the step and the last good checkpoint).
      errors.Interrupted: a stop request was served (a checkpoint at that step saved).
    """
    config.check()
    if config.mode == "eval":
        return evaluate(config, strategy=strategy, log=log)
    if not config.model_dir:
        raise ConfigError("`model_dir` is required for training. Received: model_dir=None")
    problem = fileio.folder_problem(config.model_dir)
    if problem:
        raise RunFolderError(f"model_dir {problem}")
    strategy = strategy or distribute.create_strategy(config.distribution_strategy, tpu=config.tpu)
    chief = distribute.is_chief(strategy) if is_chief is None else is_chief
    distribute.per_replica_batch_size(config.batch_size, distribute.num_replicas(strategy))
    with distribute.write_dir(config.model_dir, chief, distribute.task_of(strategy)[1]) as write_dir:
        return _train(config, strategy, chief, write_dir, log, stop)


def _train(config, strategy, is_chief, write_dir, log, stop):
    """The run of :func:`train`; a non-chief worker writes into ``write_dir`` (removed afterwards)."""
    replicas = distribute.num_replicas(strategy)
    data = _load_data(config, log)
    with_eval = config.mode == "train_and_eval"
    teacher = _load_teacher(config, data, strategy, log) if config.teacher else None
    if with_eval and data.validation_source is None and not data.labelled:
        raise datasets.DatasetError(f"{config.dataset}: the training images have no labels and "
                                    "there is no val/ folder of class sub-folders; validation "
                                    "needs labels (add one, or use mode 'train')")
    if with_eval and data.validation_source is None:
        raise datasets.DatasetError(f"{config.dataset} has no validation data for mode "
                                    "'train_and_eval' (use mode 'train' or a validation fraction)")
    if config.batch_size > data.num_train:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the {data.num_train} "
                          f"training examples of {config.dataset}: every step would repeat "
                          f"examples. Use a batch_size of at most {data.num_train} (the global "
                          "batch, over all replicas)")
    identity = {k: getattr(config, k) for k in _RUN_IDENTITY if hasattr(config, k)}
    identity["num_classes"] = data.num_classes
    identity["alpha"] = float(config.alpha)
    _check_same_run(config.model_dir, identity)

    spe = datasets.steps_per_epoch(data.num_train, config.batch_size)
    total_steps = config.train_steps or config.epochs * spe
    schedule = learning_rate_schedule(config, spe)
    log(f"{data.description}: {spe} steps per epoch of {config.batch_size} images, "
        f"{total_steps} steps ({total_steps / spe:.3g} epochs); learning rate "
        f"{initial_learning_rate(config)[1]} x {config.lr_decay_factor:g} every "
        f"{schedule.decay_steps} steps" + (f", warmup {schedule.warmup_steps} steps"
                                           if schedule.warmup_steps else ""))

    if replicas > 1 or config.distribution_strategy != "default" or config.mixed_precision != "none":
        log(f"Strategy {type(strategy).__name__} ({config.distribution_strategy}): {replicas} "
            f"replica(s) of {config.batch_size // replicas} images"
            + ("" if is_chief else "; not the chief: writing into a temporary directory")
            + f"; precision {precision.policy_name(config.mixed_precision)}"
            + (", batch norm over the global batch" if replicas > 1 and config.sync_batch_norm
               else ""))
    # Every worker restores the chief's newest checkpoint and saves where it may write.
    restore_dir = os.path.join(config.model_dir, CHECKPOINT_SUBDIR)
    with strategy.scope():
        checkpoint_dir = os.path.join(write_dir, CHECKPOINT_SUBDIR)
        has_checkpoint = tf.train.latest_checkpoint(restore_dir) is not None
        if has_checkpoint and config.init_weights:
            log("A checkpoint exists: resuming from it; init_weights is not loaded again.")
        model = build_model(config, data.num_classes, log=log, load_weights=not has_checkpoint,
                            replicas=replicas)
        train_model = None
        if teacher is not None:
            train_model = distillation.make_distiller(model, teacher,
                                                      temperature=config.distillation_temperature,
                                                      weight=config.distillation_weight)
        optimizer = compile_model(model, config, schedule, log, train_model)
        runner = train_model or model        # what fit() trains
        distribute.patch_keras_for_multi_worker(runner, strategy)
        checkpoint = _checkpoint(model, optimizer, train_model)
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir,
                                             max_to_keep=config.keep_checkpoints)
    restored = _restore(checkpoint, manager, log, restore_dir)
    start_step = int(optimizer.iterations.numpy())
    segments = _segments(start_step, total_steps, spe)
    summary_path = os.path.join(config.model_dir, SUMMARY_FILE)
    if not segments and os.path.isfile(summary_path):
        # A finished run: change nothing, report what it recorded.
        log(f"Already trained: step {start_step} >= {total_steps}; {config.model_dir} is left "
            "unchanged.")
        if optimizer.use_ema:
            optimizer.finalize_variable_values(model.trainable_variables)
        summary = _read_json(summary_path)
        summary["model"] = model
        return summary
    if restored:
        log(f"Resuming at step {start_step} of {total_steps}.")

    # Everything is in place: the run folder appears now, and from here a stop request is
    # served by a checkpoint (before: nothing to save, the caller stops at once).
    if stop is not None:
        stop.active = True
    if is_chief:
        os.makedirs(write_dir, exist_ok=True)
        atomic_write_text(os.path.join(write_dir, CONFIG_FILE),
                          json.dumps({"identity": identity, "config": config.to_json()}, indent=1))
        # The folder manifest / shard counts, reused by a resumed run when the data is unchanged.
        datasets.save_manifest(data, os.path.join(write_dir, datasets.MANIFEST_DIR))
    step_cb = _StepCallback(manager, config.checkpoint_every_steps, config.batch_size, optimizer,
                            stop=stop, total_steps=total_steps)
    callbacks = [step_cb]
    if config.quantize and config.quantize_delay:
        callbacks.append(qat.QuantizeDelay(model, config.quantize_delay, optimizer))
    if config.moving_average_decay > 0:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    tb_logger = None
    if is_chief:
        tb_logger = _TensorBoardLogger(os.path.join(write_dir, TENSORBOARD_SUBDIR),
                                       config.log_every_steps, optimizer,
                                       qat_model=model if config.quantize else None)
        callbacks.append(tb_logger)
    val_ds = None
    if with_eval:
        val_ds = datasets.eval_input(data, batch_size=config.batch_size, image_size=config.image_size,
                                     cache=config.cache)
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    # Validation leaves out files it cannot decode, so its length is unknown to Keras, which
    # then warns at its end; the training input always has exactly the steps fit() runs.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = {}
    t0 = time.perf_counter()
    if config.verbose:
        callbacks.append(_Progbar(-(-total_steps // spe)))
    try:
        # One fit() per epoch: each epoch's input is built with that epoch's shuffle seed, so a
        # resumed run gets the same batches (tf.data takes Python-int seeds only, see datasets).
        for i, (epoch, steps, done) in enumerate(segments):
            def input_fn(batch_size, num_shards, shard_index, epoch=epoch, done=done):
                return datasets.train_input(
                    data, batch_size=batch_size, image_size=config.image_size, epoch=epoch,
                    skip_steps=done, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
                    min_crop_area=config.min_crop_area, color_distortion=config.color_distortion,
                    cache=config.cache, global_batch_size=config.batch_size,
                    num_shards=num_shards, shard_index=shard_index)
            train_ds = distribute.distribute_input(strategy, input_fn, config.batch_size)
            with _stop_on_bad_data(lambda: (
                    "training stopped; the last good checkpoint is "
                    f"{manager.latest_checkpoint or 'none (no checkpoint was written yet)'}")):
                h = runner.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1,
                               steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                               verbose=config.verbose)
            for key, values in h.history.items():
                history.setdefault(key, []).extend(values)
            if i + 1 < len(segments) and optimizer.use_ema:
                # fit() ends by copying the EMA averages into the model; go on from the raw
                # weights, which the epoch-end checkpoint holds.
                checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    except TrainingError as e:
        log(str(e))
        raise
    finally:
        if stop is not None:
            stop.active = False
        if tb_logger is not None:
            tb_logger.close()
    train_seconds = time.perf_counter() - t0
    undecodable = datasets.skipped_during_training(data)
    if undecodable:
        log(f"{config.dataset}: {len(undecodable)} file(s) could not be decoded and were skipped "
            "(named above)")
    if not segments:
        log(f"Already trained: step {start_step} >= {total_steps}; writing the run's missing "
            "summary.")
        if not manager.latest_checkpoint:
            step_cb.save(start_step)
        if optimizer.use_ema:
            optimizer.finalize_variable_values(model.trainable_variables)
    final_step = int(optimizer.iterations.numpy())

    result = {}
    if with_eval:
        if segments:   # the last epoch's validation ran on the final (EMA) weights
            metrics = {k: history[f"val_{k}"][-1] for k in ("top1", "top5", "loss")
                       if f"val_{k}" in history}
        else:
            with _stop_on_bad_data(lambda: "validation stopped"):
                metrics = runner.evaluate(val_ds, verbose=0, return_dict=True)
        result = {k: float(v) for k, v in metrics.items() if k in ("top1", "top5", "loss")}
        log(f"Validation at step {final_step}: {_accuracies(result)} ({data.num_validation} "
            "images" + (", EMA weights" if optimizer.use_ema else "") + ")")
    summary = {
        "model_dir": config.model_dir, "dataset": data.description,
        "num_classes": data.num_classes,
        # The head's labels in output order (export_tflite.py writes them beside the .tflite).
        "class_names": list(data.class_names) if data.class_names else None,
        "num_train": data.num_train,
        "num_validation": data.num_validation,
        "skipped_files": len(data.skipped) + len(datasets.skipped_during_training(data)),
        "start_step": start_step, "final_step": final_step, "steps_per_epoch": spe,
        "train_seconds": train_seconds, "measured_steps": step_cb.steps,
        "images_per_second": step_cb.images_per_second,
        "ema": bool(optimizer.use_ema), **{f"final_{k}": v for k, v in result.items()},
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "replicas": replicas, "config": config.to_json(),
    }
    # Every worker saves (reading distributed variables can be a collective); only the chief's stays.
    _save_model_atomically(model, os.path.join(write_dir, MODEL_FILE))
    if is_chief:
        atomic_write_text(os.path.join(write_dir, SUMMARY_FILE), json.dumps(summary, indent=1))
        speed = summary["images_per_second"]
        log(f"Wrote {os.path.join(write_dir, MODEL_FILE)} and {SUMMARY_FILE}; "
            + (f"{speed:.1f} images/s" if speed is not None
               else "images/s not measured (only the first, traced step ran)"))
    summary["model"] = model
    return summary


def saved_config(model_dir):
    """``(TrainConfig, identity dict)`` of the run that wrote ``model_dir``."""
    if not model_dir or not os.path.isdir(model_dir):
        raise datasets.DatasetError(f"model_dir {model_dir!r} does not exist: train first or pass "
                                    "the --model_dir of a run")
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise datasets.DatasetError(f"{model_dir} has no {CONFIG_FILE}: not a training run's folder")
    saved = _read_json(path)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved["config"].items() if k in fields})
    config.folder_formats = tuple(config.folder_formats)
    config.model_dir = model_dir
    return config, saved["identity"]


def restore_run(model_dir, *, strategy=None, log=print):
    """Rebuilds the model and optimizer of the run in ``model_dir`` and restores its newest checkpoint.

    This is what a resumed ``train`` does: weights, batch norm statistics,
    optimizer slots, EMA shadows and the step count come back. Returns
    ``(model, optimizer, checkpoint_path, config)``; the model holds the raw
    (not averaged) weights.
    """
    config, identity = saved_config(model_dir)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        # The same trainable layers as the run; init_weights is not loaded (the checkpoint has all).
        model = build_model(config, identity["num_classes"], log=lambda *_: None,
                            load_weights=False)
        optimizer = compile_model(model, config, learning_rate_schedule(config, 1), lambda *_: None)
        distribute.patch_keras_for_multi_worker(model, strategy)
        checkpoint = _checkpoint(model, optimizer)
        manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, CHECKPOINT_SUBDIR),
                                             max_to_keep=config.keep_checkpoints)
    path = _restore(checkpoint, manager, log)
    if not path:
        raise datasets.DatasetError(f"{model_dir}/{CHECKPOINT_SUBDIR} has no checkpoint")
    return model, optimizer, path, config


def _accuracies(result):
    """``top-1 0.8125, top-5 0.9375`` (top-5 only when measured)."""
    return ", ".join(f"top-{k[-1]} {result[k]:.4f}" for k in ("top1", "top5") if k in result)


def evaluate(config, *, strategy=None, log=print):
    """Top-1 / top-5 of the newest checkpoint in ``config.model_dir`` on the validation data.

    The model settings (α, size, architecture, class count, EMA) are those of
    the run (``train_config.json``); ``dataset``, ``data_dir``, ``batch_size``,
    ``validation_fraction``, ``cache`` and ``folder_formats`` of `config`
    replace the run's when set (not None and not the default). EMA averages
    are evaluated when the run used them. Writes ``model_dir/eval.json``.
    """
    model, optimizer, path, run = restore_run(config.model_dir, strategy=strategy, log=log)
    for key in ("dataset", "data_dir", "batch_size", "validation_fraction", "cache",
                "folder_formats"):
        value = getattr(config, key)
        if value is not None and value != getattr(TrainConfig, key, None):
            setattr(run, key, value)
    data = _load_data(run, log)
    classes = model.output_shape[-1]
    if data.num_classes != classes:
        raise datasets.DatasetError(f"{run.dataset} has {data.num_classes} classes but the model in "
                                    f"{config.model_dir} has {classes}")
    if optimizer.use_ema:
        optimizer.finalize_variable_values(model.trainable_variables)
    val_ds = datasets.eval_input(data, batch_size=run.batch_size, image_size=run.image_size,
                                 cache=run.cache)
    with _stop_on_bad_data(lambda: "evaluation stopped"):
        metrics = model.evaluate(val_ds, verbose=config.verbose, return_dict=True)
    step = int(optimizer.iterations.numpy())
    scores = {k: float(v) for k, v in metrics.items() if k in ("top1", "top5", "loss")}
    result = {"step": step, **scores, "num_validation": data.num_validation,
              "ema": bool(optimizer.use_ema)}
    log(f"Evaluation of {path} (step {step}) on {data.num_validation} images: "
        f"{_accuracies(result)}" + (" (EMA weights)" if optimizer.use_ema else ""))
    atomic_write_text(os.path.join(config.model_dir, "eval.json"), json.dumps(result, indent=1))
    return result
