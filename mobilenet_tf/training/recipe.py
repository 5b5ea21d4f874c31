"""The model a run trains and how it is compiled: MobileNetV1 for a config (fine-tuning,
freezing, quantization-aware), the optimizer (with EMA), weight decay, loss and metrics.

It does not read data, write files or run training (``loop``); the learning-rate schedule is
``schedule``'s, the weight decay rule ``weight_decay``'s.
"""

import logging

import keras

from mobilenet_tf.model import builder as model_lib
from mobilenet_tf.model import qat
from mobilenet_tf.model.defaults import BATCH_NORM_MOMENTUM
from mobilenet_tf.model.labels import MIN_CLASSES_FOR_TOP5
from mobilenet_tf.training import precision
from mobilenet_tf.training.config import OPTIMIZERS
from mobilenet_tf.training.weight_decay import apply_weight_decay
from mobilenet_tf.utils import backend

__all__ = ["HEAD_LAYERS", "make_optimizer", "build_model", "compile_model", "jit_compile",
           "accuracy_metrics"]

logger = logging.getLogger(__name__)

HEAD_LAYERS = ("Logits",)


def _silent(*_):
    pass


def make_optimizer(config, schedule, excluded_from_decay=()):
    """The Keras optimizer of ``config.optimizer`` with EMA when ``moving_average_decay`` > 0.
    ``adamw`` decays every variable but ``excluded_from_decay`` (decoupled weight decay)."""
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


def build_model(config, num_classes, load_weights=True, replicas=1, *, report=True):
    """MobileNetV1 for `config`, with ImageNet/file weights and freezing when fine-tuning.

    ``batch_norm_momentum`` replaces TF-slim's 0.9997 (right for ImageNet's
    long runs; short runs on small data need e.g. 0.9 for the moving
    statistics that evaluation uses to follow the weights).
    Fine-tuning (``init_weights``): everything but the head is loaded when the
    class counts differ; ``freeze_base`` makes every layer but the head
    non-trainable; otherwise batch norm layers stay in inference mode
    (non-trainable) unless ``train_batch_norm``. With ``quantize`` the model is the
    quantization-aware twin (``mobilenet_tf.model.qat``). ``report``: log what was decided
    (False when rebuilding a run that said it when it trained).
    """
    info = logger.info if report else _silent
    model = precision.build_with_policy(lambda: model_lib.MobileNetV1(
        (config.image_size, config.image_size, 3), alpha=config.alpha, dropout=config.dropout,
        classes=num_classes, conv_defs=config.architecture, classifier_activation="softmax"),
        config.mixed_precision)
    if replicas > 1 and config.sync_batch_norm:
        # Statistics of the global batch: the same training as on one device (see distribute).
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    if config.batch_norm_momentum != BATCH_NORM_MOMENTUM:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.batch_norm_momentum
    if config.init_weights:
        if load_weights:
            from mobilenet_tf.model import weights as weights_lib
            loaded = weights_lib.load_weights(model, config.init_weights,
                                              skip_mismatched_head=True, verbose=False)
            for line in loaded.lines():
                info(line)
        for layer in model.layers:
            if config.freeze_base and layer.name not in HEAD_LAYERS:
                layer.trainable = False
            elif isinstance(layer, keras.layers.BatchNormalization) and not config.train_batch_norm:
                layer.trainable = False
        if config.freeze_base:
            info("Fine-tuning: base frozen (batch norm in inference mode), training the head "
                 "only.")
        elif not config.train_batch_norm:
            info("Fine-tuning: batch norm layers in inference mode with fixed parameters "
                 "(pass train_batch_norm to re-estimate them).")
    if config.quantize:
        model = qat.quantize_model(model, quantize_delay=config.quantize_delay)
        info("Quantization-aware training: batch norm folded into the convolutions, int8 "
             "per-channel weights and int8 activations simulated"
             + (f"; fake quantization starts at step {config.quantize_delay}"
                if config.quantize_delay else "") + ".")
    return model


def compile_model(model, config, schedule, train_model=None, *, report=True):
    """Weight decay, optimizer, loss (with label smoothing) and top-1/top-5 metrics; builds the
    optimizer (slots, EMA) so a checkpoint restores into it. Returns the optimizer.

    ``train_model``: what ``fit`` trains when it is not `model` itself — a
    ``distillation.Distiller`` of `model` (its predictions are logits, so the label loss
    takes logits); it is compiled, `model` gets the weight decay. ``report``: log the
    weight decay decisions."""
    info = logger.info if report else _silent
    decoupled = config.optimizer == "adamw"
    decayed, excluded = apply_weight_decay(model, config.weight_decay,
                                           regularize_depthwise=config.regularize_depthwise,
                                           decoupled=decoupled)
    how = ("decoupled (AdamW)" if decoupled else "added to the loss as wd*sum(w^2)/2")
    info(f"Weight decay {config.weight_decay:g} ({how}) on {len(decayed)} variables: "
         + ", ".join(v.path for v in decayed))
    info(f"No weight decay on {len(excluded)} variables (batch norm, biases"
         + ("" if config.regularize_depthwise else ", depthwise kernels") + ").")
    optimizer = make_optimizer(config, schedule, excluded_from_decay=excluded)
    target = model if train_model is None else train_model
    target.compile(
        optimizer=precision.with_loss_scaling(model, optimizer),   # float16: loss scaling
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing,
                                                  from_logits=train_model is not None),
        metrics=accuracy_metrics(int(model.output_shape[-1])),
        jit_compile=jit_compile(config))
    target.optimizer.build(target.trainable_variables)     # with float16 also the loss scale
    return optimizer


def jit_compile(config):
    """``compile``'s ``jit_compile`` for `config` on this process's Keras backend: the setting
    itself on TensorFlow; elsewhere True, or Keras' "auto" when not asked for (JAX compiles the
    step with XLA either way, its only fast path; PyTorch then runs eagerly)."""
    if backend.is_tensorflow():
        return config.jit_compile
    return config.jit_compile or "auto"


def accuracy_metrics(num_classes):
    """top1, and top5 where it means something (6 classes or more; with fewer every label
    is in the top 5, and a 1.0 would only mislead)."""
    metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
    if num_classes >= MIN_CLASSES_FOR_TOP5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"))
    return metrics
