"""What every command does around its work: signals and the exit-status convention.

* :func:`run_command`: one-line errors and the exit-status convention of
  ``mobilenet_tf.errors`` (2 refused, 1 failed, 130/143 interrupted), SIGINT and SIGTERM
  handled alike, a second signal ending the process at once.
* :func:`exit_on_early_signals`: a signal before the work starts ends the process with one line.
* :func:`watch_signals` / :func:`end_process`: train.py's signals seen while a long step runs,
  and the exit at once after an interrupt was saved.

Used by ``train.py``, ``export_tflite.py`` and the ``python -m mobilenet_tf.<tool>``
commands; the library never imports it. Reads no flags; imports nothing heavy at load.
"""

import logging
import os
import signal
import socket
import sys
import threading

from mobilenet_tf import errors
from mobilenet_tf.utils.native import native_output_wanted

__all__ = ["run_command", "install_signal_handlers", "exit_on_early_signals", "watch_signals",
           "end_process", "SIGTERM_GRACE_SECONDS"]


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


def exit_on_early_signals(prog, before=None):
    """Until a command's work installs its own handlers: SIGINT / SIGTERM print one line and
    end the process (nothing has been written yet), instead of a KeyboardInterrupt traceback.
    ``before``: what has not started, for the line (train.py: "training started")."""
    def handler(signum, frame):
        sys.stderr.write(f"{prog}: {errors.Interrupted(signum, before=before)}\n")
        sys.stderr.flush()
        os._exit(128 + signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


# How long a SIGTERM may wait for the step in progress before the process ends without saving
# it: a preemptible VM's or Kubernetes' grace period is 30 s, and the save takes a few.
SIGTERM_GRACE_SECONDS = float(os.environ.get("MOBILENET_TF_SIGTERM_GRACE_S", "20"))
_ending = threading.Event()        # the command's last line is out: exit silently now
_sockets = []                      # the watcher's socket pair


def watch_signals(prog, grace=None):
    """A thread that sees SIGINT / SIGTERM the moment they arrive (``signal.set_wakeup_fd``),
    also while the main thread is inside one long TensorFlow call, where Python runs no signal
    handler until the call returns (a long first step): a second signal ends the process at
    once, and a SIGTERM that has not ended the process after ``grace`` seconds (default
    ``MOBILENET_TF_SIGTERM_GRACE_S`` or 20) ends it with one line, so that a 30 s grace period
    is kept. Returns a function that stops watching."""
    grace = SIGTERM_GRACE_SECONDS if grace is None else grace
    read, write = socket.socketpair()
    write.setblocking(False)
    _sockets[:] = [read, write]    # kept open for the process: a closed fd's number is reused
    previous = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)

    def overdue(signum):
        if not _ending.is_set():
            sys.stderr.write(f"{prog}: interrupted by {signal.Signals(signum).name}; the step in "
                             f"progress did not end within {grace:g} s: exiting without saving "
                             "it (run the same command to resume from the last checkpoint)\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    def watch():
        seen = 0
        while True:
            try:
                data = read.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum not in (signal.SIGINT, signal.SIGTERM):
                    continue
                seen += 1
                if seen == 2:
                    os._exit(128 + signum)
                if signum == signal.SIGTERM:
                    timer = threading.Timer(grace, overdue, (signum,))
                    timer.daemon = True
                    timer.start()

    threading.Thread(target=watch, name="signal-watch", daemon=True).start()

    def stop():
        signal.set_wakeup_fd(previous)
        write.close()
        read.close()
        _sockets.clear()
    return stop


def end_process(status):
    """Ends the process with `status` at once, after flushing stdout, stderr and the logs:
    after an interrupt everything to keep is saved, and Python's and TensorFlow's teardown
    (tf.data threads, garbage collection of the graph, atexit) takes seconds, 30 and more
    under load, which a grace period does not have (issue 27)."""
    _ending.set()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


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
        _ending.set()
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
