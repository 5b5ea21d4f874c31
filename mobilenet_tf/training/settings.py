"""How a training setting is declared and checked: its default, help, range and choices beside
its :class:`~mobilenet_tf.training.config.TrainConfig` field, and the one check of each.

* :func:`setting`: a dataclass field carrying its help text, :class:`Range`, choices and an
  extra check in ``field.metadata`` (:class:`Setting`).
* :func:`outside`: whether one value of one field is refused (range, choices, type), and
  what the field accepts in words; :class:`Rule`: a rule between fields.

``TrainConfig.check`` and ``train.py``'s flag validators both call these, so a range or a
rule is stated and checked in one place; ``train.py`` makes each absl flag from a field's
:class:`Setting`. Pure Python: no TensorFlow, no flags.
"""

import dataclasses
import math
import numbers
import re

__all__ = ["Range", "Setting", "Rule", "setting", "setting_of", "allowed", "outside"]

_RANGE = re.compile(r"^\s*(?:(?P<op>>=|>|<=|<)\s*(?P<bound>\S+)|(?P<left>[\[(])\s*(?P<low>[^,\s]+)"
                    r"\s*,\s*(?P<high>[^\])\s]+)\s*(?P<right>[\])]))\s*$")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of numbers: ``low``/``high`` (None: unbounded), each end open or closed.

    Written as the paper's interval notation: ``Range.parse("(0, 1]")``, ``"> 0"``,
    ``">= 32"``. No range holds NaN or ±inf (issue 27: ``nan`` passes every comparison's
    negation, and ``inf`` is "> 0"), so an unbounded end still means a finite number.
    """
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, text):
        match = _RANGE.match(text)
        if not match:
            raise ValueError(f"not a range: {text!r} (e.g. '(0, 1]', '> 0', '>= 32')")
        if match["op"]:
            bound = float(match["bound"])
            return cls(low=bound, low_open=match["op"] == ">") if match["op"][0] == ">" else \
                cls(high=bound, high_open=match["op"] == "<")
        return cls(float(match["low"]), float(match["high"]), low_open=match["left"] == "(",
                   high_open=match["right"] == ")")

    def __contains__(self, value):
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def text(self, integer=False):
        """``> 0``, ``in (0, 1]``, ``an int >= 32``, ``an int in [0, 2]``."""
        def num(x):
            return f"{x:g}"
        if self.low is not None and self.high is not None:
            words = (f"in {'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}"
                     f"{')' if self.high_open else ']'}")
        elif self.low is not None:
            words = f"{'>' if self.low_open else '>='} {num(self.low)}"
        elif self.high is not None:
            words = f"{'<' if self.high_open else '<='} {num(self.high)}"
        else:
            words = "any number"
        return f"an int {words}" if integer else words

    def closure(self):
        """``(lower, upper)`` bounds for a parser that knows closed intervals only (absl's):
        the range's closed hull when it is bounded on both sides, else its closed ends. The
        open ends are then refused by the setting's own check (:func:`outside`)."""
        if self.low is not None and self.high is not None:
            return self.low, self.high
        return (None if self.low_open else self.low), (None if self.high_open else self.high)


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a field states besides its default (``field.metadata["setting"]``)."""
    help: str
    range: Range = None
    choices: tuple = None      # a str field: one of them; a tuple field: a non-empty subset
    check: object = None       # value -> raises errors.InputError (one line) when refused
    flag: bool = True          # False: not a train.py flag


def setting(default, help, *, range=None, choices=None, check=None, flag=True):
    """A dataclass field with its default, help text and what it accepts: ``range`` (interval
    notation, see :class:`Range`), ``choices``, or ``check`` (a function refusing a value
    with an ``InputError``)."""
    meta = Setting(" ".join(help.split()), Range.parse(range) if range else None,
                   tuple(choices) if choices is not None else None, check, flag)
    return dataclasses.field(default=default, metadata={"setting": meta})


def setting_of(field):
    """The :class:`Setting` of a dataclass field (None for a plain field)."""
    return field.metadata.get("setting")


def allowed(field):
    """What `field` accepts, in words: ``> 0``, ``an int >= 1``, ``one of a, b``, ...; None
    when any value of its type goes."""
    meta = setting_of(field)
    if meta is None:
        return None
    if meta.choices is not None:
        joined = ", ".join(meta.choices)
        return f"a non-empty subset of {joined}" if field.type is tuple else f"one of {joined}"
    if meta.range is not None:
        return meta.range.text(integer=field.type is int)
    return None


def outside(field, value):
    """:func:`allowed` (in words) when `value` is outside what `field` accepts, else None.
    ``None`` is accepted where it is the field's default (an optional setting). The field's
    own ``check`` raises its ``InputError`` instead."""
    meta = setting_of(field)
    if meta is None or (value is None and field.default is None):
        return None
    if meta.check is not None:
        meta.check(value)
    words = allowed(field)
    if words is None:
        return None
    if meta.choices is not None and field.type is tuple:
        ok = (isinstance(value, (tuple, list)) and len(value) > 0
              and all(v in meta.choices for v in value))
    elif meta.choices is not None:
        ok = value in meta.choices
    elif field.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value in meta.range
    else:
        ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
              and value in meta.range)
    return None if ok else words


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule between settings: ``names`` are the fields it reads; ``find(values, name)``
    returns what is wrong, in words (None: nothing), writing each field as ``name(field)``
    (``TrainConfig.check``: `` `field` ``, ``train.py``: ``--field``), or raises an
    ``errors.InputError`` of its own."""
    names: tuple
    find: object

    def problem(self, values, name):
        return self.find({n: values[n] for n in self.names}, name)
