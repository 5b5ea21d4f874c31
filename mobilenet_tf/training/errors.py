"""The errors a training run raises, and how a data error met during training becomes one.

``ConfigError`` and ``RunFolderError`` refuse input before any work (exit status 2);
``TrainingError`` is a failure during the work (exit status 1), see ``mobilenet_tf.errors``.
Pure Python at import (TensorFlow only inside :func:`stop_on_bad_data`).
"""

import contextlib

from mobilenet_tf.errors import InputError
from mobilenet_tf.utils import backend

__all__ = ["TrainingError", "ConfigError", "RunFolderError", "stop_on_bad_data"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a bad label met in the data). One-line
    message (exit status 1)."""


class ConfigError(InputError):
    """A TrainConfig field out of range, or a broken rule between fields. One line naming the
    field and value (exit status 2)."""


class RunFolderError(TrainingError, InputError):
    """A ``model_dir`` that cannot hold this run or is not a run's folder: a file, under a file,
    not writable, missing, unreadable, or the folder of a run with other settings. Raised
    before any work (exit status 2)."""


@contextlib.contextmanager
def stop_on_bad_data(where):
    """A data error the input pipeline raises on purpose (``data.pipeline_error``: a TFRecord
    label out of range) becomes a one-line TrainingError ending with ``where()``."""
    tf = backend.tensorflow(backend.TRAINING_RUN)
    from mobilenet_tf import data as data_lib
    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        problem = data_lib.pipeline_error(e)
        if problem is None:
            raise
        raise TrainingError(f"{problem}; {where()}") from None
