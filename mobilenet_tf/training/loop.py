"""The training run: :func:`train` runs one :class:`~mobilenet_tf.training.config.TrainConfig`,
resuming from the newest checkpoint of its ``model_dir``.

A run is a few steps (:func:`_train`): plan it (data, teacher, the number of steps, the
schedule, the run folder's identity), build it (model, optimizer and checkpoint, restored when
there is one), fit it one epoch at a time, and finish it (validation, ``model.keras``,
``summary.json``). The parts are their own modules: ``recipe`` (model, optimizer, weight
decay), ``schedule``, ``inputs`` (data), ``callbacks`` (NaN guard, checkpoints, signals,
throughput), ``tensorboard``, ``checkpoints``, ``run_folder``; ``evaluation`` scores a
finished run.

* Checkpoints in ``model_dir/checkpoints`` every epoch and every ``checkpoint_every_steps``,
  keeping the last ``keep_checkpoints``. A re-run of the same command restores the newest
  and continues at the same step with the same batches (the input is a function of the step).
* At the end: ``model_dir/model.keras`` (EMA averages when ``moving_average_decay`` > 0; a
  plain Keras model, loadable with ``keras.models.load_model``) and ``model_dir/summary.json``,
  both written atomically.
* Distribution and precision (``distribute``, ``precision``): ``distribution_strategy`` picks
  the ``tf.distribute`` strategy (created first thing in :func:`train`); model, optimizer,
  metrics and checkpoint are created in its scope; ``batch_size`` is the global batch (split
  over the replicas; a batch that does not divide is refused before any data is read) and the
  learning rate follows it by the linear rule; with more than one replica batch normalization
  uses the global batch's statistics (``sync_batch_norm``, so the run equals a one-device run
  of the same global batch); each worker reads its own shard of the input; only the chief
  writes into ``model_dir``, the other workers save into temporary directories that are
  removed at the end; a resumed run restores every worker from the chief's checkpoint.
  ``mixed_precision`` computes in low precision with float32 variables, batch-norm
  statistics, softmax and loss (loss scaling for float16); ``model.keras`` is always float32.
* Distillation (``teacher``; ``distillation``): ``fit`` trains a
  ``keras.distillation.Distiller`` of the model from the teacher's logits; the checkpoint,
  ``model.keras``, EMA, schedule and weight decay are those of the student alone, so a
  distilled run resumes, evaluates and exports like any other.

Progress is logged (``logging.getLogger(__name__)`` and the other modules' loggers); this
module reads no flags (``train.py`` maps flags onto TrainConfig).
"""

import dataclasses
import json
import logging
import math
import os
import time
import warnings

import keras

from mobilenet_tf import data as data_lib
from mobilenet_tf.model import finite
from mobilenet_tf.model import qat
from mobilenet_tf.model import qat_ranges
from mobilenet_tf.training import callbacks as callbacks_lib
from mobilenet_tf.training import checkpoints
from mobilenet_tf.training import distillation
from mobilenet_tf.training import distribute
from mobilenet_tf.training import inputs
from mobilenet_tf.training import precision
from mobilenet_tf.training import run_folder
from mobilenet_tf.training.errors import ConfigError, TrainingError, stop_on_bad_data
from mobilenet_tf.training.evaluation import accuracies, evaluate, legacy_overrides
from mobilenet_tf.training.recipe import build_model, compile_model
from mobilenet_tf.training.schedule import initial_learning_rate, learning_rate_schedule
from mobilenet_tf.training.tensorboard import TENSORBOARD_SUBDIR, TensorBoardLogger
from mobilenet_tf.utils import console
from mobilenet_tf.utils import backend

__all__ = ["train"]

logger = logging.getLogger(__name__)

# QAT: the calibration images TensorBoard's clipped fractions are measured on (each log step).
TENSORBOARD_CLIP_IMAGES = 128


def train(config, *, strategy=None, is_chief=None, stop=None):
    """Runs `config` (mode train or train_and_eval); returns the summary dict.

    Resumes from the newest checkpoint in ``model_dir`` when there is one; a run
    that has already reached its last step changes nothing and returns its
    recorded summary. ``model_dir`` is created only once training starts: a run
    refused before (missing data, bad weights, a folder of another run) leaves
    nothing behind. ``strategy``: a ``tf.distribute.Strategy`` (default: the one
    ``config.distribution_strategy`` names, created here); ``is_chief``:
    whether this process writes ``model_dir`` (default: from the strategy's
    cluster, see ``distribute.is_chief``); ``stop``: a ``training.stop.StopRequest``
    (signals), served after the step in progress. Mode ``eval`` evaluates the run in
    ``model_dir`` instead (``evaluation.evaluate``; prefer calling it directly).

    Raises:
      ValueError / errors.InputError: bad config, data missing, unusable weights,
        a ``model_dir`` that is a file or belongs to a run with other settings, a
        bad strategy / cluster / batch combination — all before any work.
      TrainingError: non-finite loss (naming the step and the last good checkpoint).
      errors.Interrupted: a stop request was served (a checkpoint at that step saved).
    """
    config.check()
    if config.mode == "eval":
        return evaluate(config.model_dir, strategy=strategy, verbose=config.verbose,
                        **legacy_overrides(config))
    if not config.model_dir:
        raise ConfigError("`model_dir` is required for training. Received: model_dir=None")
    run_folder.check_writable(config.model_dir)
    _check_memory(config)
    strategy = strategy or distribute.create_strategy(config.distribution_strategy, tpu=config.tpu)
    chief = distribute.is_chief(strategy) if is_chief is None else is_chief
    distribute.per_replica_batch_size(config.batch_size, distribute.num_replicas(strategy))
    with distribute.write_dir(config.model_dir, chief, distribute.task_of(strategy)[1]) as write_dir:
        return _train(config, strategy, chief, write_dir, stop)


def _check_memory(config):
    """A run that cannot fit in this machine's memory is refused before any work (issue 27:
    --image_size=10000 was killed by the kernel at 24 GB): ``model.memory``'s lower bound of
    a training step's activations against the memory available. On GPUs the activations
    live in the accelerator's memory, which this does not estimate."""
    tf = backend.tensorflow(backend.TRAINING_RUN)
    from mobilenet_tf.model import architecture
    from mobilenet_tf.model import memory
    if tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"):
        return
    problem = memory.memory_problem(
        config.alpha, config.image_size, config.batch_size, training=True, classes=2,
        conv_defs=architecture.NAMED_CONV_DEFS[config.architecture])
    if problem:
        raise ConfigError(problem)


@dataclasses.dataclass
class _Plan:
    """What a run will do, known before any model is built."""
    data: object                  # data.ImageDataset
    teacher: object               # distillation.Teacher or None
    steps_per_epoch: int
    total_steps: int
    schedule: object              # schedule.StaircaseDecayWithWarmup
    identity: dict                # run_folder.run_identity
    replicas: int
    with_eval: bool


@dataclasses.dataclass
class _Parts:
    """The built run: the model, what fit() trains, the optimizer and the checkpoint."""
    model: object
    runner: object                # the model, or the distiller training it
    optimizer: object
    checkpoint: object
    manager: object
    restored: str                 # the checkpoint restored, or None
    start_step: int
    segments: list                # the epochs left: (epoch, steps, steps already done)
    calibration: list = None      # QAT: the calibration images (batches), for TensorBoard


def _train(config, strategy, is_chief, write_dir, stop):
    """The run of :func:`train`; a non-chief worker writes into ``write_dir`` (removed afterwards).
    The chief holds the run folder's lock (``run_folder.RunLock``) from the start when the
    folder exists, else from when it creates it: a second run on the folder is refused."""
    with run_folder.RunLock(config.model_dir) as lock:
        if is_chief and os.path.isdir(config.model_dir):
            lock.acquire()
        return _locked_train(config, strategy, is_chief, write_dir, stop, lock)


def _locked_train(config, strategy, is_chief, write_dir, stop, lock):
    plan = _plan(config, strategy, is_chief)
    parts = _build(config, plan, strategy, write_dir)
    summary_path = os.path.join(config.model_dir, run_folder.SUMMARY_FILE)
    if not parts.segments and os.path.isfile(summary_path):
        # A finished run: change nothing, report what it recorded.
        logger.info(f"Already trained: step {parts.start_step} >= {plan.total_steps}; "
                    f"{config.model_dir} is left unchanged.")
        if parts.optimizer.use_ema:
            parts.optimizer.finalize_variable_values(parts.model.trainable_variables)
        return dict(run_folder.read_json(summary_path), model=parts.model)
    if parts.restored:
        logger.info(f"Resuming at step {parts.start_step} of {plan.total_steps}.")

    # Everything is in place: the run folder appears now, and from here a stop request is
    # served by a checkpoint (before: nothing to save, the caller stops at once).
    if is_chief:
        lock.acquire()
    if stop is not None:
        stop.active = True
    if is_chief:
        run_folder.write_config(write_dir, plan.identity, config)
        # The folder manifest / shard counts, reused by a resumed run when the data is unchanged.
        data_lib.save_manifest(plan.data, os.path.join(write_dir, data_lib.MANIFEST_DIR))
    t0 = time.perf_counter()
    try:
        step_cb, history = _fit(config, plan, parts, strategy, is_chief, write_dir, stop)
    finally:
        if stop is not None:
            stop.active = False
    train_seconds = time.perf_counter() - t0
    return _finish(config, plan, parts, step_cb, history, train_seconds, is_chief, write_dir)


def _plan(config, strategy, is_chief):
    """The data (and teacher), checked for this run; the steps and the schedule (logged)."""
    replicas = distribute.num_replicas(strategy)
    data = inputs.load_data(config)
    with_eval = config.mode == "train_and_eval"
    teacher = _load_teacher(config, data, strategy) if config.teacher else None
    if with_eval and data.validation_source is None and not data.labelled:
        raise data_lib.DatasetError(f"{config.dataset}: the training images have no labels and "
                                    "there is no val/ folder of class sub-folders; validation "
                                    "needs labels (add one, or use mode 'train')")
    if with_eval and data.validation_source is None:
        how = ("give validation shards: validation-* beside train-* in the folder, or "
               "tfrecord:TRAIN_GLOB,VALIDATION_GLOB" if config.dataset.startswith("tfrecord:")
               else "a validation fraction")       # issue 27: shards have no fraction
        raise data_lib.DatasetError(f"{config.dataset} has no validation data for mode "
                                    f"'train_and_eval' (use mode 'train' or {how})")
    if config.batch_size > data.num_train:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the {data.num_train} "
                          f"training examples of {config.dataset}: every step would repeat "
                          f"examples. Use a batch_size of at most {data.num_train} (the global "
                          "batch, over all replicas)")
    identity = run_folder.run_identity(config, data.num_classes, data.class_names)
    run_folder.check_same_run(config.model_dir, identity)

    spe = data_lib.steps_per_epoch(data.num_train, config.batch_size)
    total_steps = config.train_steps or config.epochs * spe
    schedule = learning_rate_schedule(config, spe)
    logger.info(f"{data.description}: {spe} steps per epoch of {config.batch_size} images, "
                f"{total_steps} steps ({total_steps / spe:.3g} epochs); learning rate "
                f"{initial_learning_rate(config)[1]} x {config.lr_decay_factor:g} every "
                f"{schedule.decay_steps} steps" + (f", warmup {schedule.warmup_steps} steps"
                                                   if schedule.warmup_steps else ""))
    if replicas > 1 or config.distribution_strategy != "default" or config.mixed_precision != "none":
        logger.info(f"Strategy {type(strategy).__name__} ({config.distribution_strategy}): "
                    f"{replicas} replica(s) of {config.batch_size // replicas} images"
                    + ("" if is_chief else "; not the chief: writing into a temporary directory")
                    + f"; precision {precision.policy_name(config.mixed_precision)}"
                    + (", batch norm over the global batch"
                       if replicas > 1 and config.sync_batch_norm else ""))
    return _Plan(data, teacher, spe, total_steps, schedule, identity, replicas, with_eval)


def _load_teacher(config, data, strategy):
    """The run's teacher (in the strategy's scope), checked against the data; the classes of
    images without labels are the teacher's. Refusals are one line, before any work."""
    if not data.labelled and config.distillation_weight < 1:
        raise data_lib.DatasetError(
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
    logger.info(f"Distillation from {teacher.source} ({size}, {teacher.num_classes} classes, "
                f"inference mode, frozen; not saved with the student): temperature "
                f"{config.distillation_temperature:g}, loss {mix}"
                + ("" if teacher.image_size == (config.image_size, config.image_size)
                   else f"; the teacher sees each {config.image_size}x{config.image_size} crop "
                        f"resized to {size}"))
    return teacher


def _build(config, plan, strategy, write_dir):
    """Model, optimizer and checkpoint in the strategy's scope, restored from the newest
    checkpoint of ``model_dir`` (every worker restores the chief's; each saves where it may
    write)."""
    with strategy.scope():
        has_checkpoint = checkpoints.latest_checkpoint(config.model_dir) is not None
        if has_checkpoint and config.init_weights:
            logger.info("A checkpoint exists: resuming from it; init_weights is not loaded again.")
        model = build_model(config, plan.data.num_classes, load_weights=not has_checkpoint,
                            replicas=plan.replicas)
        train_model = None
        if plan.teacher is not None:
            train_model = distillation.make_distiller(model, plan.teacher,
                                                      temperature=config.distillation_temperature,
                                                      weight=config.distillation_weight)
        optimizer = compile_model(model, config, plan.schedule, train_model)
        runner = train_model or model        # what fit() trains
        distribute.patch_keras_for_multi_worker(runner, strategy)
        checkpoint = checkpoints.make_checkpoint(model, optimizer, train_model)
        manager = checkpoints.checkpoint_manager(checkpoint, write_dir, config.keep_checkpoints)
    restored = checkpoints.restore_latest(checkpoint, manager, config.model_dir)
    start_step = int(optimizer.iterations.numpy())
    calibration = _calibrate(config, plan, model, fresh=not restored) if config.quantize else None
    return _Parts(model, runner, optimizer, checkpoint, manager, restored, start_step,
                  _segments(start_step, plan.total_steps, plan.steps_per_epoch), calibration)


def _calibrate(config, plan, model, fresh):
    """QAT: the calibration images (the first ``TENSORBOARD_CLIP_IMAGES`` of them are returned,
    for TensorBoard's clipped fractions); on a fresh run (not a resumed one) that starts from
    trained weights (``init_weights``), every learned range is set from them before the first
    step (``qat_ranges.calibrate_ranges``, the converter's rule for post-training int8). From
    scratch the first batch sets them, as before: a random network's ranges say nothing, and
    its moving batch-norm statistics are not yet those of any data."""
    calibrate = fresh and bool(config.init_weights)
    if not calibrate:     # only TensorBoard's images are needed
        config = dataclasses.replace(config, num_calibration_images=min(
            config.num_calibration_images, TENSORBOARD_CLIP_IMAGES))
    with stop_on_bad_data(lambda: "calibration stopped"):
        batches = inputs.calibration_batches(config, plan.data)
    if calibrate:
        ranges, count = qat_ranges.calibrate_ranges(model, batches)
        source = config.representative_dataset or config.dataset
        logger.info(f"Learned activation ranges calibrated on {count} images of {source} "
                    "(min and max, as the converter calibrates post-training int8): "
                    + ", ".join(f"{name} [{r[0]:.4g}, {r[1]:.4g}]" if r else
                                f"{name} not set (all values 0: the first batch sets it)"
                                for name, r in ranges.items()))
    kept, count = [], 0
    for batch in batches:
        kept.append(batch[:TENSORBOARD_CLIP_IMAGES - count])
        count += len(kept[-1])
        if count >= TENSORBOARD_CLIP_IMAGES:
            break
    return kept


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


def _callbacks(config, plan, parts, is_chief, write_dir, stop):
    """``(step callback, TensorBoard logger or None, all callbacks)`` of fit()."""
    step_cb = callbacks_lib.StepCallback(parts.manager, config.checkpoint_every_steps,
                                         config.batch_size, parts.optimizer, stop=stop,
                                         total_steps=plan.total_steps, model=parts.model)
    callbacks = [step_cb]
    if config.quantize and config.quantize_delay:
        callbacks.append(qat.QuantizeDelay(parts.model, config.quantize_delay, parts.optimizer))
    if config.moving_average_decay > 0:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    tb_logger = None
    if is_chief:
        tb_logger = TensorBoardLogger(os.path.join(write_dir, TENSORBOARD_SUBDIR),
                                      config.log_every_steps, parts.optimizer,
                                      qat_model=parts.model if config.quantize else None,
                                      qat_images=parts.calibration)
        callbacks.append(tb_logger)
    return step_cb, tb_logger, callbacks


def _fit(config, plan, parts, strategy, is_chief, write_dir, stop):
    """fit() once per epoch left; returns ``(step callback, history)``. Each epoch's input is
    built with that epoch's shuffle seed, so a resumed run gets the same batches (tf.data
    takes Python-int seeds only, see data)."""
    step_cb, tb_logger, callbacks = _callbacks(config, plan, parts, is_chief, write_dir, stop)
    verbose = console.progress_verbosity(config.verbose)
    if verbose:
        callbacks.append(callbacks_lib.Progbar(-(-plan.total_steps // plan.steps_per_epoch)))
    val_ds = inputs.eval_input(config, plan.data) if plan.with_eval else None
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    # Validation leaves out files it cannot decode, so its length is unknown to Keras, which
    # then warns at its end; the training input always has exactly the steps fit() runs.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = {}
    try:
        for i, (epoch, steps, done) in enumerate(parts.segments):
            def input_fn(batch_size, num_shards, shard_index, epoch=epoch, done=done):
                return inputs.train_input(config, plan.data, epoch, done, batch_size=batch_size,
                                          num_shards=num_shards, shard_index=shard_index)
            train_ds = distribute.distribute_input(strategy, input_fn, config.batch_size)
            with stop_on_bad_data(lambda: (
                    "training stopped; the last good checkpoint is "
                    f"{parts.manager.latest_checkpoint or 'none (no checkpoint was written yet)'}")):
                h = parts.runner.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1,
                                     steps_per_epoch=steps, validation_data=val_ds,
                                     callbacks=callbacks, verbose=verbose)
            for key, values in h.history.items():
                history.setdefault(key, []).extend(values)
            if i + 1 < len(parts.segments) and parts.optimizer.use_ema:
                # fit() ends by copying the EMA averages into the model; go on from the raw
                # weights, which the epoch-end checkpoint holds.
                parts.checkpoint.restore(
                    parts.manager.latest_checkpoint).assert_existing_objects_matched()
    except TrainingError as e:
        logger.error(str(e))
        raise
    finally:
        if tb_logger is not None:
            tb_logger.close()
    return step_cb, history


def _check_finite(model, validation_loss, step, step_cb):
    """TrainingError (one line; nothing saved as model.keras) when the final model's weights
    (the averages, with EMA) or its validation loss are not finite: outputs that overflow
    float32 give an infinite loss from finite weights. The checkpoints stay for resuming."""
    problem = finite.nonfinite_problem(model)
    if problem is None and validation_loss is not None and not math.isfinite(validation_loss):
        problem = f"the validation loss is {validation_loss} (its outputs overflow)"
    if problem:
        raise TrainingError(f"the model at step {step} is not finite: {problem}; is the learning "
                            f"rate too high? model.keras not written; {step_cb.last_good()}")


def _finish(config, plan, parts, step_cb, history, train_seconds, is_chief, write_dir):
    """Final validation, ``model.keras`` and ``summary.json``; returns the summary (with the
    trained ``model``)."""
    data, optimizer = plan.data, parts.optimizer
    undecodable = data_lib.skipped_during_training(data)
    if undecodable:
        logger.info(f"{config.dataset}: {len(undecodable)} file(s) could not be decoded and were "
                    "skipped (named above)")
    if not parts.segments:
        logger.info(f"Already trained: step {parts.start_step} >= {plan.total_steps}; writing "
                    "the run's missing summary.")
        if not parts.manager.latest_checkpoint:
            step_cb.save(parts.start_step)
        if optimizer.use_ema:
            optimizer.finalize_variable_values(parts.model.trainable_variables)
    final_step = int(optimizer.iterations.numpy())
    result = {}
    if plan.with_eval:
        if parts.segments:   # the last epoch's validation ran on the final (EMA) weights
            metrics = {k: history[f"val_{k}"][-1] for k in ("top1", "top5", "loss")
                       if f"val_{k}" in history}
        else:
            with stop_on_bad_data(lambda: "validation stopped"):
                metrics = parts.runner.evaluate(inputs.eval_input(config, data), verbose=0,
                                                return_dict=True)
        result = {k: float(v) for k, v in metrics.items() if k in ("top1", "top5", "loss")}
        logger.info(f"Validation at step {final_step}: {accuracies(result)} "
                    f"({data.pipeline.validated(data.num_validation)} images"
                    + (", EMA weights" if optimizer.use_ema else "") + ")")
    summary = {
        "model_dir": config.model_dir, "dataset": data.description,
        "num_classes": data.num_classes,
        # The head's labels in output order (export_tflite.py writes them beside the .tflite).
        "class_names": list(data.class_names) if data.class_names else None,
        "num_train": data.num_train,
        "num_validation": data.num_validation,
        "skipped_files": len(data.skipped) + len(undecodable),
        "start_step": parts.start_step, "final_step": final_step,
        "steps_per_epoch": plan.steps_per_epoch,
        "train_seconds": train_seconds, "measured_steps": step_cb.steps,
        "images_per_second": step_cb.images_per_second,
        "ema": bool(optimizer.use_ema), **{f"final_{k}": v for k, v in result.items()},
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "replicas": plan.replicas, "config": config.to_json(),
    }
    _check_finite(parts.model, result.get("loss"), final_step, step_cb)
    # Every worker saves (reading distributed variables can be a collective); only the chief's stays.
    model_path = os.path.join(write_dir, run_folder.MODEL_FILE)
    run_folder.save_model(parts.model, model_path)
    if is_chief:
        run_folder.atomic_write_text(os.path.join(write_dir, run_folder.SUMMARY_FILE),
                                     json.dumps(summary, indent=1))
        speed = summary["images_per_second"]
        logger.info(f"Wrote {model_path} and {run_folder.SUMMARY_FILE}; "
                    + (f"{speed:.1f} images/s" if speed is not None
                       else "images/s not measured (only the first, traced step ran)"))
    summary["model"] = parts.model
    return summary
