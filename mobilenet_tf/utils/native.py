"""Quiet TensorFlow start-up: its C++ runtime's chatter kept off the terminal.

TensorFlow's C++ runtime prints start-up lines on stderr (``WARNING: All log messages before
absl::InitializeLog() is called``, ``cudart_stub ... Could not find cuda drivers``, ``failed
call to cuInit``, ``cpu_feature_guard``). ``TF_CPP_MIN_LOG_LEVEL=3`` (set unless the user set
it) silences the last two; the first two are printed while TensorFlow is imported, before that
setting is read, so :func:`import_tensorflow` imports TensorFlow with the process's stderr
(file descriptor 2) pointed at ``/dev/null``, then restores it. :func:`quiet_native_stderr`
does the same around other chatty native calls (the TFLite converter's ``fully_quantize: 0,
...``). ``MOBILENET_TF_VERBOSE=1`` (or a ``TF_CPP_MIN_LOG_LEVEL`` below 3 set by the user)
keeps them all. Imports nothing heavy at load.
"""

import contextlib
import os
import sys

from mobilenet_tf.utils import backend

__all__ = ["VERBOSE_ENV", "native_output_wanted", "quiet_native_stderr", "import_tensorflow"]

VERBOSE_ENV = "MOBILENET_TF_VERBOSE"
_USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def native_output_wanted():
    """True when the user asked to see TensorFlow's C++ output."""
    if os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    return _USER_LOG_LEVEL is not None and _USER_LOG_LEVEL.strip() in ("0", "1", "2")


@contextlib.contextmanager
def quiet_native_stderr():
    """File descriptor 2 goes to /dev/null inside the block (unless native output is wanted).

    Python's own ``sys.stderr`` writes there too while the block runs; errors raised in it
    still propagate as exceptions and are reported after it.
    """
    if native_output_wanted():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow():
    """Imports TensorFlow and initialises its devices quietly (see the module docstring).

    The commands are TensorFlow's: with ``KERAS_BACKEND`` naming another Keras backend this
    refuses in one line (``utils.backend``), before TensorFlow is imported."""
    requested = (sys.modules["keras"].backend.backend() if "keras" in sys.modules
                 else os.environ.get("KERAS_BACKEND"))
    if requested:
        backend.require_tensorflow(backend.COMMANDS, requested)
    if not native_output_wanted():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_native_stderr():
        import tensorflow as tf
        # Loads the device plugins (CUDA probing) without starting the runtime, which
        # multi-worker strategies must configure first. Later notices (cuInit, CPU features)
        # are below TF_CPP_MIN_LOG_LEVEL=3; the ones at import are not, hence the redirect.
        tf.config.list_physical_devices()
        from absl import logging
        logging.set_verbosity(logging.ERROR)     # tfds' and TensorFlow's Python-side notices
    return tf
