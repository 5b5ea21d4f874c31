"""Argument parsing every ``python -m mobilenet_tf.<tool>`` command shares: one-line refusals
(exit status 2) and argument types."""

import argparse

from mobilenet_tf import errors

__all__ = ["ArgumentParser", "positive_int", "positive_float"]


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
