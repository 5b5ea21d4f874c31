"""Evaluation of a trained run: the newest checkpoint of a run folder, restored as the run
built it (:func:`restore_run`) and scored on validation data (:func:`evaluate`).

The model's settings always come from the run's ``train_config.json``; only where the
validation data is and how it is read (``config.EVAL_OVERRIDES``) may be given.
"""

import dataclasses
import json
import logging
import os
import warnings

import numpy as np

from mobilenet_tf import data as data_lib
from mobilenet_tf.training import distribute
from mobilenet_tf.training import checkpoints
from mobilenet_tf.training import inputs
from mobilenet_tf.training.config import EVAL_OVERRIDES, TrainConfig, check_value
from mobilenet_tf.training.errors import RunFolderError, stop_on_bad_data
from mobilenet_tf.training.recipe import build_model, compile_model
from mobilenet_tf.training.run_folder import EVAL_FILE, atomic_write_text, saved_config
from mobilenet_tf.training.schedule import learning_rate_schedule
from mobilenet_tf.utils import console
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TRAINING_RUN)

__all__ = ["evaluate", "restore_run", "accuracies", "top1_agreement"]

logger = logging.getLogger(__name__)


def restore_run(model_dir, *, strategy=None):
    """Rebuilds the model and optimizer of the run in ``model_dir`` and restores its newest checkpoint.

    This is what a resumed ``train`` does: weights, batch norm statistics,
    optimizer slots, EMA shadows and the step count come back. Returns
    ``(model, optimizer, checkpoint_path, config)``; the model holds the raw
    (not averaged) weights.
    """
    config, identity = saved_config(model_dir)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        # The same trainable layers as the run; init_weights is not loaded (the checkpoint has
        # all), and what the run said when it trained (weight decay, fine-tuning) is not said again.
        model = build_model(config, identity["num_classes"], load_weights=False, report=False)
        optimizer = compile_model(model, config, learning_rate_schedule(config, 1), report=False)
        distribute.patch_keras_for_multi_worker(model, strategy)
        checkpoint = checkpoints.make_checkpoint(model, optimizer)
        manager = checkpoints.checkpoint_manager(checkpoint, model_dir, config.keep_checkpoints)
    path = checkpoints.restore_latest(checkpoint, manager)
    if not path:
        raise RunFolderError(f"{model_dir}/{checkpoints.CHECKPOINT_SUBDIR} has no checkpoint")
    return model, optimizer, path, config


def accuracies(result):
    """``top-1 0.8125, top-5 0.9375`` (top-5 only when measured)."""
    return ", ".join(f"top-{k[-1]} {result[k]:.4f}" for k in ("top1", "top5") if k in result)


def legacy_overrides(config):
    """The overrides a 0.1 caller meant by a whole ``TrainConfig``: its EVAL_OVERRIDES fields
    that are set and differ from the defaults (a value equal to the default cannot be told
    from one not given: pass overrides by keyword to say exactly what you mean)."""
    return {k: getattr(config, k) for k in EVAL_OVERRIDES
            if getattr(config, k) is not None and getattr(config, k) != getattr(TrainConfig, k)}


def evaluate(model_dir, *, strategy=None, verbose=None, **overrides):
    """Top-1 / top-5 of the newest checkpoint in ``model_dir`` on the validation data.

    The model settings (α, size, architecture, class count, EMA) are those of the run
    (``train_config.json``), and so is its data unless `overrides` give other values of
    ``dataset``, ``data_dir``, ``batch_size``, ``validation_fraction``, ``cache`` or
    ``folder_formats`` (``config.EVAL_OVERRIDES``): each one given is used, whatever its
    value. EMA averages are evaluated when the run used them. Writes ``model_dir/eval.json``;
    returns what it holds. ``verbose``: Keras' (default: ``console.progress_verbosity``).

    A ``TrainConfig`` in place of ``model_dir`` (mobilenet-tf 0.1) still works, with a
    DeprecationWarning: see :func:`legacy_overrides` for what it overrides.
    """
    if isinstance(model_dir, TrainConfig):
        warnings.warn("evaluate(TrainConfig) is deprecated: call evaluate(model_dir, "
                      "**overrides) with the settings to replace", DeprecationWarning,
                      stacklevel=2)
        config = model_dir
        model_dir, verbose = config.model_dir, config.verbose if verbose is None else verbose
        overrides = {**legacy_overrides(config), **overrides}
    unknown = sorted(set(overrides) - set(EVAL_OVERRIDES))
    if unknown:
        raise TypeError(f"evaluate() takes only {', '.join(EVAL_OVERRIDES)} as overrides. "
                        f"Received: {', '.join(unknown)}")
    for name, value in overrides.items():
        check_value(name, value)
    model, optimizer, path, run = restore_run(model_dir, strategy=strategy)
    run = dataclasses.replace(run, **overrides)
    run.folder_formats = tuple(run.folder_formats)
    data = inputs.load_data(run)
    classes = model.output_shape[-1]
    if not data.labelled and data.validation_source is None:
        # Images without labels (a distillation run's): how often the model agrees with its teacher.
        if optimizer.use_ema:
            optimizer.finalize_variable_values(model.trainable_variables)
        return _teacher_agreement(model_dir, model, optimizer, path, run, data)
    if data.num_classes != classes:
        raise data_lib.DatasetError(f"{run.dataset} has {data.num_classes} classes but the model "
                                    f"in {model_dir} has {classes}")
    if optimizer.use_ema:
        optimizer.finalize_variable_values(model.trainable_variables)
    with stop_on_bad_data(lambda: "evaluation stopped"), warnings.catch_warnings():
        # Validation leaves out files it cannot decode, so Keras does not know its length and
        # warns at its end.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        metrics = model.evaluate(inputs.eval_input(run, data),
                                 verbose=console.progress_verbosity(verbose), return_dict=True)
    step = int(optimizer.iterations.numpy())
    scores = {k: float(v) for k, v in metrics.items() if k in ("top1", "top5", "loss")}
    result = {"step": step, **scores, "num_validation": data.pipeline.validated(data.num_validation),
              "ema": bool(optimizer.use_ema)}
    logger.info(f"Evaluation of {path} (step {step}) on {result['num_validation']} images: "
                f"{accuracies(result)}" + (" (EMA weights)" if optimizer.use_ema else ""))
    atomic_write_text(os.path.join(model_dir, EVAL_FILE), json.dumps(result, indent=1))
    return result


def top1_agreement(model, reference, batches):
    """``(agreeing, count)``: the images of `batches` (float [-1, 1] image batches) on which
    `model` and `reference` (both image -> scores) give the same top-1 class."""
    agreeing = count = 0
    for images in batches:
        ours = np.argmax(np.asarray(model(images, training=False)), axis=1)
        theirs = np.argmax(np.asarray(reference(images, training=False)), axis=1)
        agreeing += int((ours == theirs).sum())
        count += len(ours)
    return agreeing, count


def _teacher_agreement(model_dir, model, optimizer, path, run, data):
    """The evaluation of a run on images without labels: top-1 agreement with its teacher on
    the run's images (evaluation preprocessing), which needs no labels."""
    from mobilenet_tf.training import distillation
    if not run.teacher:
        raise data_lib.DatasetError(f"{run.dataset} has no labels and no val/ folder, and the "
                                    f"run in {model_dir} has no teacher to compare with: give "
                                    "a labelled dataset to evaluate on")
    teacher = distillation.load_teacher(run.teacher, alpha=run.teacher_alpha,
                                        image_size=run.teacher_image_size)
    classes = int(model.output_shape[-1])
    if teacher.num_classes != classes:
        raise data_lib.DatasetError(f"teacher {teacher.source} predicts {teacher.num_classes} "
                                    f"classes, the model in {model_dir} {classes}")
    view = distillation.logits_model(teacher.model, tuple(model.input_shape[1:3]))
    batches = data_lib.eval_input(data, batch_size=run.batch_size, image_size=run.image_size,
                                  cache=run.cache, source=data.train_source, labels=False)
    with stop_on_bad_data(lambda: "evaluation stopped"):
        agreeing, count = top1_agreement(model, view, batches)
    step = int(optimizer.iterations.numpy())
    result = {"step": step, "teacher_top1_agreement": agreeing / max(count, 1),
              "num_images": count, "labels": False, "teacher": teacher.source,
              "ema": bool(optimizer.use_ema)}
    logger.info(f"Evaluation of {path} (step {step}) on {count} training images without labels: "
                f"top-1 agreement with the teacher {teacher.source} {agreeing}/{count} "
                f"({result['teacher_top1_agreement']:.4f})"
                + (" (EMA weights)" if optimizer.use_ema else ""))
    atomic_write_text(os.path.join(model_dir, EVAL_FILE), json.dumps(result, indent=1))
    return result
