"""What every command does around its work: quiet TensorFlow start-up, signals, exit status.

* :func:`import_tensorflow`: TensorFlow's C++ runtime prints start-up lines on stderr
  (``WARNING: All log messages before absl::InitializeLog() is called``, ``cudart_stub ...
  Could not find cuda drivers``, ``failed call to cuInit``, ``cpu_feature_guard``).
  ``TF_CPP_MIN_LOG_LEVEL=3`` (set unless the user set it) silences the last two; the first
  two are printed while TensorFlow is imported, before that setting is read, so commands
  import TensorFlow with the process's stderr (file descriptor 2) pointed at
  ``/dev/null``, then restore it. :func:`quiet_native_stderr` does the same
  around other chatty native calls (the TFLite converter's ``fully_quantize: 0, ...``).
  ``MOBILENET_TF_VERBOSE=1`` (or a ``TF_CPP_MIN_LOG_LEVEL`` below 3 set by the user) keeps
  them all.
* :func:`run_command`: one-line errors and the exit-status convention of
  ``mobilenet_tf.errors`` (2 refused, 1 failed, 130/143 interrupted), SIGINT and SIGTERM
  handled alike, a second signal ending the process at once.
* :func:`progress_verbosity`: Keras progress bars only on a terminal; redirected to a file,
  one plain line per epoch.

Used by ``train.py``, ``export_tflite.py`` and the ``python -m mobilenet_tf.<tool>``
commands. Reads no flags; imports nothing heavy at load.
"""

import argparse
import contextlib
import os
import signal
import sys

from mobilenet_tf import errors

__all__ = ["VERBOSE_ENV", "native_output_wanted", "quiet_native_stderr", "import_tensorflow",
           "progress_verbosity", "run_command", "install_signal_handlers", "StopRequest",
           "ArgumentParser", "exit_on_early_signals"]

VERBOSE_ENV = "MOBILENET_TF_VERBOSE"
_USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a refused argument is one line (``prog: error: ...``, no usage block)
    and exit status 2, as every command here."""

    def error(self, message):
        self.exit(errors.EXIT_REFUSED, f"{self.prog}: error: {' '.join(str(message).split())}\n")


def positive_int(text):
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def positive_float(text):
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


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
    """Imports TensorFlow and initialises its devices quietly (see the module docstring)."""
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


def progress_verbosity(requested=None, stream=None):
    """Keras' ``verbose``: `requested` when given, else 1 (a live progress bar) on a terminal
    and 2 (one plain line per epoch, no carriage returns or colours) when redirected."""
    if requested is not None:
        return requested
    stream = sys.stdout if stream is None else stream
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2


def install_signal_handlers(on_signal):
    """SIGINT and SIGTERM call ``on_signal(signum)`` once; a second one ends the process at
    once with status 128 + signum (what was saved before stays intact). Returns a function
    restoring the previous handlers."""
    previous = {}
    received = []

    def handler(signum, frame):
        if received:
            os._exit(128 + signum)
        received.append(signum)
        on_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)

    def restore():
        for signum, old in previous.items():
            signal.signal(signum, old)
    return restore


class StopRequest:
    """How a command asks a running ``training.train`` to stop (SIGINT / SIGTERM).

    The signal handler calls :meth:`request` while ``active`` (training has started);
    ``train`` then saves a checkpoint at the step in progress and raises
    ``errors.Interrupted``. Before training starts there is nothing to save: the handler
    raises ``Interrupted`` itself.
    """

    def __init__(self):
        self.signum = None
        self.active = False

    def request(self, signum):
        self.signum = signum


def exit_on_early_signals(prog):
    """Until a command's work installs its own handlers: SIGINT / SIGTERM print one line and
    end the process (nothing has been written yet), instead of a KeyboardInterrupt traceback."""
    def handler(signum, frame):
        sys.stderr.write(f"{prog}: {errors.Interrupted(signum)}\n")
        sys.stderr.flush()
        os._exit(128 + signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _raise_interrupted(signum):
    raise errors.Interrupted(signum)


def _interrupt_behind(error):
    """The ``errors.Interrupted`` that `error` was raised while handling, if any: code that
    catches everything (``except:``, ``except BaseException``) and raises its own error
    still chains the interrupt as ``__cause__`` or ``__context__``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, errors.Interrupted):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def run_command(prog, work, on_signal=_raise_interrupted):
    """Runs ``work()`` (which returns an exit status) under the exit-status convention.

    Errors print one line, ``<prog>: error: <message>``, on stderr. ``on_signal`` is
    what the first SIGINT / SIGTERM does (default: stop the work by raising
    ``errors.Interrupted``, which unwinds through cleanup code); an ``Interrupted`` prints
    ``<prog>: <message>`` and exits 130 / 143.
    """
    restore = install_signal_handlers(on_signal)
    try:
        try:
            return work()
        except Exception as e:
            interrupt = _interrupt_behind(e)
            if interrupt is None:
                raise
            raise interrupt from None
    except errors.Interrupted as e:
        sys.stderr.write(f"{prog}: {errors.one_line(e)}\n")
        return e.exit_status
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted by SIGINT\n")
        return 128 + signal.SIGINT
    except (errors.InputError, errors.WorkError) as e:
        sys.stderr.write(f"{prog}: error: {errors.one_line(e)}\n")
        return errors.exit_status(e)
    except (OSError, RuntimeError, ValueError) as e:
        # A failure of the work that the library did not name (a full disk, an error inside
        # TensorFlow): one line with its type; MOBILENET_TF_VERBOSE=1 shows the traceback.
        if native_output_wanted():
            raise
        name = "" if isinstance(e, RuntimeError) and type(e).__module__.startswith(
            "mobilenet_tf") else f"{type(e).__name__}: "
        sys.stderr.write(f"{prog}: error: {name}{errors.one_line(e)}\n")
        return errors.exit_status(e)
    finally:
        restore()
