"""The files of a run folder (``model_dir``) and the check that a folder belongs to this run.

``train_config.json`` (the run's identity and config, written when training starts),
``summary.json`` and ``model.keras`` (at the end), ``eval.json`` (``--mode=eval``); the
checkpoints (``checkpoints``) and TensorBoard logs (``tensorboard``) have their own modules.
Every file is written atomically. Problems raise :class:`RunFolderError` (exit status 2),
before any work.

One run at a time: a training run holds :class:`RunLock` (``flock`` on ``.lock`` in the
folder, holding its process id) while it may write the folder; a second run on the same
folder is refused. The kernel lets go of the lock when the process ends, however it ends
(SIGKILL included), so a crashed run never leaves the folder locked.
"""

import contextlib
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
           "write_config", "saved_config", "save_model", "LOCK_FILE", "RunLock"]

CONFIG_FILE = "train_config.json"
EVAL_FILE = "eval.json"
LOCK_FILE = ".lock"
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


def run_identity(config, num_classes, class_names=None):
    """The settings that make a run folder this run's (:data:`RUN_IDENTITY`), and the class
    names of its head in output order (a class folder renamed between runs changes them)."""
    identity = {k: getattr(config, k) for k in RUN_IDENTITY if hasattr(config, k)}
    identity["num_classes"] = num_classes
    identity["alpha"] = float(config.alpha)
    identity["class_names"] = list(class_names) if class_names else None
    return identity


def check_same_run(model_dir, identity):
    """RunFolderError when `model_dir` holds a run with other identity settings (runs written
    before a setting was part of the identity are not checked for it)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    saved = read_json(path).get("identity", {})
    old, new = saved.get("class_names"), identity.get("class_names")
    if old and new and old != new and len(old) == len(new):
        i = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        raise RunFolderError(
            f"model_dir {model_dir} holds a run whose class {i} is {old[i]!r}, this run's is "
            f"{new[i]!r} (a class folder renamed?): use another --model_dir or the same classes")
    for key, value in identity.items():
        if key in saved and saved[key] != value and key != "class_names":
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


class RunLock:
    """The lock a training run holds on its folder while it may write it (``.lock``:
    ``flock``, the holder's process id inside). :meth:`acquire` creates the folder when needed
    and raises RunFolderError (one line) while another live process holds it; the lock goes
    with the process (the kernel releases it, also after SIGKILL, and the next run takes over
    the file a killed one left). :meth:`release` removes the file. A context manager."""

    def __init__(self, model_dir):
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._fd = None

    def acquire(self):
        import fcntl
        if self._fd is not None:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise RunFolderError(
                    f"model_dir {os.path.dirname(self.path)} is in use by another training run"
                    + (f" (process {holder})" if holder.isdigit() else "")
                    + ": wait for it to end, or use another --model_dir") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:          # not a file its holder removed while this one waited
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self._fd)          # closing the file lets go of the lock
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
