"""What every command does around its work: signals and the exit-status convention.

* :func:`run_command`: one-line errors and the exit-status convention of
  ``mobilenet_tf.errors`` (2 refused, 1 failed, 130/143 interrupted), SIGINT and SIGTERM
  handled alike, a second signal ending the process at once.
* :func:`exit_on_early_signals`: a signal before the work starts ends the process with one line.

Used by ``train.py``, ``export_tflite.py`` and the ``python -m mobilenet_tf.<tool>``
commands; the library never imports it. Reads no flags; imports nothing heavy at load.
"""

import os
import signal
import sys

from mobilenet_tf import errors
from mobilenet_tf.utils.native import native_output_wanted

__all__ = ["run_command", "install_signal_handlers", "exit_on_early_signals"]


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
    except Exception as e:
        # A failed write or read inside TensorFlow (a full disk, a file size limit): one line,
        # status 1, like an OSError (issue 27).
        text = errors.native_error_text(e)
        if text is None or native_output_wanted():
            raise
        sys.stderr.write(f"{prog}: error: {text}\n")
        return errors.EXIT_FAILED
    finally:
        restore()
