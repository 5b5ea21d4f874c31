"""The errors every command maps onto one exit-code convention.

======  ===========================================================================
status  meaning
======  ===========================================================================
0       done
1       a failure during the work (non-finite loss, an export that fails its check,
        a disk that fills up)
2       the input was refused before any work: a bad flag or argument, a missing,
        damaged or unusable file or folder, a dataset that is not there, a download
        that cannot happen (:class:`InputError`)
130     interrupted by SIGINT (Ctrl-C), after saving what can be resumed
143     interrupted by SIGTERM (what Kubernetes and preemptible machines send), likewise
======  ===========================================================================

Library functions raise; only the commands (``train.py``, ``export_tflite.py``,
``python -m mobilenet_tf.<tool>``) turn errors into one line and a status
(:func:`exit_status`). Every message is one line naming the value and what is
allowed. Pure Python: importing this module imports nothing else.
"""

import re
import signal

__all__ = ["InputError", "WeightsError", "BackendError", "WorkError", "Interrupted", "exit_status",
           "EXIT_FAILED", "EXIT_REFUSED", "one_line", "native_error_text"]

EXIT_FAILED = 1
EXIT_REFUSED = 2


class InputError(ValueError):
    """The input was refused before any work (exit status 2). One-line message."""


class WeightsError(InputError):
    """A weights or model file that is missing, damaged or truncated, or does not fit the
    model (``.h5``, ``.keras``, ``.weights.h5``, TF-slim checkpoints, ``.tflite``). Re-exported
    as ``mobilenet_tf.model.weights.WeightsError``; the errors of a damaged ``.keras`` or ``.tflite``
    file are also this class, whichever module finds the damage."""


class BackendError(InputError):
    """A part of the package that needs TensorFlow (tf.data input, TF-slim checkpoints, TFLite
    export, tf.distribute, training runs) called on another Keras backend
    (``mobilenet_tf.utils.backend``)."""


class WorkError(Exception):
    """Mixed into errors that happen during the work although their family usually refuses
    input (an export whose verification fails is an ExportError, but exits 1)."""


class Interrupted(BaseException):
    """A command stopped by SIGINT / SIGTERM: after saving a checkpoint at ``step``, or
    before anything was written (``step`` None; ``before``: what had not started, in words).

    A ``BaseException``, like ``KeyboardInterrupt``: raised from a signal handler it can land
    anywhere, also inside library code that catches ``Exception`` to raise an error of its
    own (``inspect`` turns any ``Exception`` into ``TypeError('unsupported callable')``
    while TensorFlow imports; our readers of damaged files turn one into a
    ``WeightsError``). Such handlers must not swallow or rename an interrupt.
    """

    def __init__(self, signum, step=None, total_steps=None, saved=None, *, before=None):
        self.signum = int(signum)
        self.step, self.total_steps, self.saved = step, total_steps, saved
        name = signal.Signals(self.signum).name
        if step is None:
            # `before`: what had not started yet (train.py: "training started"); other commands
            # say only that nothing was written (issue 27: predict said "before training").
            text = (f"interrupted by {name}{f' before {before}' if before else ''}; nothing was "
                    "written")
        else:
            text = (f"interrupted by {name} at step {step} of {total_steps}; checkpoint saved"
                    f"{f' ({saved})' if saved else ''}; run the same command to resume")
        super().__init__(text)

    @property
    def exit_status(self):
        return 128 + self.signum


def exit_status(error):
    """The status a command exits with for `error` (see the module docstring)."""
    if isinstance(error, Interrupted):
        return error.exit_status
    if isinstance(error, WorkError):
        return EXIT_FAILED
    if isinstance(error, InputError):
        return EXIT_REFUSED
    return EXIT_FAILED


def one_line(error):
    """The error's message on one line."""
    return " ".join(str(error).split())


def native_error_text(error):
    """The message of a TensorFlow ``OpError`` (a failed write inside TensorFlow: a full disk, a
    file size limit) without its kernel decorations (``{{function_node ...}}``, ``[Op:SaveV2]``),
    one line; None when `error` is no TensorFlow error. Found by its attributes, so that this
    module imports nothing."""
    if not (type(error).__module__.startswith("tensorflow") and hasattr(error, "error_code")
            and hasattr(error, "message")):
        return None
    text = re.sub(r"\{\{[^{}]*\}\}\s*", "", str(error.message))
    text = re.sub(r"\s*\[\[[^\]]*\]\]|\s*\[Op:[^\]]*\]", "", text)
    return one_line(text)
