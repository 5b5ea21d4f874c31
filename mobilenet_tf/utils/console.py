"""How output reaches the terminal: Keras progress bars, and the library's log lines.

* Library modules report progress with Python's :mod:`logging`, each through
  ``logging.getLogger(__name__)`` (so every logger is below :data:`LOGGER`, ``"mobilenet_tf"``),
  at INFO for the lines a user of a command reads (what was found, what is done), WARNING
  for what they should act on. The library configures no handler.
* :func:`log_to`: what a command calls once: the library's INFO lines go to a stream (stdout)
  as plain lines, without logger names or timestamps, and not through absl's root handler
  (``absl.app`` installs one that would print them again with its prefix on stderr).
* :func:`progress_verbosity`: Keras progress bars only on a terminal; redirected to a file,
  one plain line per epoch.
"""

import logging
import sys

__all__ = ["LOGGER", "log_to", "progress_verbosity"]

LOGGER = "mobilenet_tf"


class _Handler(logging.StreamHandler):
    """A stream handler that looks the stream up when it writes (so a test's or a command's
    redirected ``sys.stdout`` is the one written to)."""

    def __init__(self, stream_name):
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, value):        # StreamHandler.__init__ sets it; the name decides
        pass


def log_to(stream_name="stdout", level=logging.INFO):
    """Sends the library's log lines at `level` and above to ``sys.<stream_name>`` as plain
    lines (idempotent: a second call replaces the first handler)."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, _Handler):
            logger.removeHandler(handler)
    handler = _Handler(stream_name)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def progress_verbosity(requested=None, stream=None):
    """Keras' ``verbose``: `requested` when given, else 1 (a live progress bar) on a terminal
    and 2 (one plain line per epoch, no carriage returns or colours) when redirected."""
    if requested is not None:
        return requested
    stream = sys.stdout if stream is None else stream
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2
