"""The files of a run folder (``model_dir``) and the check that a folder belongs to this run.

``train_config.json`` (the run's identity and config, written when training starts),
``summary.json`` and ``model.keras`` (at the end), ``eval.json`` (``--mode=eval``); the
checkpoints (``checkpoints``) and TensorBoard logs (``tensorboard``) have their own modules.
Every file is written atomically. Problems raise :class:`RunFolderError` (exit status 2),
before any work.
"""

import json
import os

from mobilenet_tf import errors
from mobilenet_tf.model.labels import MODEL_FILE, SUMMARY_FILE
from mobilenet_tf.training import precision
from mobilenet_tf.training.config import TrainConfig
from mobilenet_tf.training.errors import RunFolderError
from mobilenet_tf.utils import fileio

__all__ = ["CONFIG_FILE", "SUMMARY_FILE", "MODEL_FILE", "EVAL_FILE", "RUN_IDENTITY",
           "atomic_write_text", "read_json", "check_writable", "run_identity", "check_same_run",
           "write_config", "saved_config", "save_model"]

CONFIG_FILE = "train_config.json"
EVAL_FILE = "eval.json"
# Settings a resumed or evaluated run must share with the run that wrote model_dir.
RUN_IDENTITY = ("dataset", "alpha", "image_size", "architecture", "optimizer", "batch_size",
                "moving_average_decay", "num_classes", "teacher", "quantize")


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (``mobilenet_tf.utils.fileio``), creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fileio.write_text(path, text)


def read_json(path):
    """The JSON file of a run folder; RunFolderError (one line) when it cannot be read."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{path} cannot be read: {errors.one_line(e)}") from None


def check_writable(model_dir):
    """RunFolderError unless `model_dir` is, or can become, a folder this user can write."""
    problem = fileio.folder_problem(model_dir)
    if problem:
        raise RunFolderError(f"model_dir {problem}")


def run_identity(config, num_classes):
    """The settings that make a run folder this run's (:data:`RUN_IDENTITY`)."""
    identity = {k: getattr(config, k) for k in RUN_IDENTITY if hasattr(config, k)}
    identity["num_classes"] = num_classes
    identity["alpha"] = float(config.alpha)
    return identity


def check_same_run(model_dir, identity):
    """RunFolderError when `model_dir` holds a run with other identity settings."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    saved = read_json(path).get("identity", {})
    for key, value in identity.items():
        if key in saved and saved[key] != value:
            raise RunFolderError(
                f"model_dir {model_dir} holds a run with {key}={saved[key]!r}, this run has "
                f"{key}={value!r}: use another --model_dir or the same settings")


def write_config(write_dir, identity, config):
    """``train_config.json``: what :func:`check_same_run` and :func:`saved_config` read."""
    os.makedirs(write_dir, exist_ok=True)
    atomic_write_text(os.path.join(write_dir, CONFIG_FILE),
                      json.dumps({"identity": identity, "config": config.to_json()}, indent=1))


def saved_config(model_dir):
    """``(TrainConfig, identity dict)`` of the run that wrote ``model_dir``."""
    if not model_dir or not os.path.isdir(model_dir):
        raise RunFolderError(f"model_dir {model_dir!r} does not exist: train first or pass "
                             "the --model_dir of a run")
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise RunFolderError(f"{model_dir} has no {CONFIG_FILE}: not a training run's folder")
    saved = read_json(path)
    config = TrainConfig.from_json(saved["config"])
    config.model_dir = model_dir
    return config, saved["identity"]


def save_model(model, path):
    """A plain (uncompiled, all layers trainable, float32) copy of `model` saved atomically
    as `path`."""
    fileio.save_model(precision.float32_copy(model), path)
