"""Argument parsing every ``python -m mobilenet_tf.<tool>`` command shares: one-line refusals
(exit status 2) and argument types."""

import argparse
import os
import re

from mobilenet_tf import errors

__all__ = ["ArgumentParser", "positive_int", "positive_float", "flagfile_problem"]


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


_FLAGFILE = re.compile(r"^--?flagfile=(.*)$")


def flagfile_problem(argv):
    """Why the absl flag files that `argv` names cannot be read as they are (one line), or None:
    a file that is not UTF-8 text, or a cycle (a file that includes itself, a -> b -> a), which
    absl only warns about before running with the defaults (issue 27). Nested ``--flagfile=``
    lines are followed as absl follows them (paths as written); a file that cannot be opened is
    left to absl's own message."""
    def walk(path, stack):
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join([*stack[stack.index(real):], real])
            return f"flag file cycle: {chain} (a flag file must not include itself)"
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            return (f"flag file {path} is not UTF-8 text (byte {data[e.start]:#04x} at offset "
                    f"{e.start}); save it as UTF-8")
        for line in text.splitlines():
            match = _FLAGFILE.match(line.strip())
            if match:
                problem = walk(match.group(1), [*stack, real])
                if problem:
                    return problem
        return None

    args = list(argv[1:])
    for i, arg in enumerate(args):
        match = _FLAGFILE.match(arg)
        path = match.group(1) if match else (
            args[i + 1] if arg in ("--flagfile", "-flagfile") and i + 1 < len(args) else None)
        if path:
            problem = walk(path, [])
            if problem:
                return problem
    return None
