"""The trade-off table of ``python -m mobilenet_tf.tradeoff``: one row per configuration (α,
image size, architecture) with its cost as ``mobilenet_tf.model.costs`` counts it, Google's
published accuracy (``mobilenet_tf.model.published``), and what was measured here (file sizes,
latency per precision and thread count); the budget's choice; the table as Markdown, CSV and
JSON.

Pure Python: no TensorFlow import, nothing measured and no file written here
(``tradeoff_files`` makes the files, ``latency`` times them, ``tradeoff`` writes the outputs).
"""

import csv
import dataclasses
import io
import json

from mobilenet_tf.errors import InputError
from mobilenet_tf.model import architecture
from mobilenet_tf.model import costs as costs_lib
from mobilenet_tf.model import published as published_lib

__all__ = ["Configuration", "Row", "Choice", "TradeoffTable", "grid", "rows_for", "choose",
           "PRECISIONS", "DEFAULT_ALPHAS", "DEFAULT_IMAGE_SIZES", "DEFAULT_ARCHITECTURES"]

PRECISIONS = ("float32", "int8")
DEFAULT_ALPHAS = published_lib.SLIM_ALPHAS            # the paper's 16 = Google's released 16
DEFAULT_IMAGE_SIZES = published_lib.SLIM_IMAGE_SIZES
DEFAULT_ARCHITECTURES = ("mobilenet_v1",)
_SHORT = {"mobilenet_v1": "", "conv_mobilenet": "conv ", "shallow_mobilenet": "shallow "}
FORMAT = 1      # of the JSON file


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One point of the grid: `architecture` (a name of ``NAMED_CONV_DEFS``), width multiplier
    `alpha` and square input `image_size` (ρ = image_size / 224)."""
    architecture: str
    alpha: float
    image_size: int

    @property
    def rho(self):
        return self.image_size / 224

    @property
    def alpha_text(self):
        return str(float(self.alpha))          # 1.0, 0.75, 0.5: TF-slim's spelling

    @property
    def label(self):
        """``"α/ρ"`` as TF-slim names its checkpoints (``0.5/160``); the Table 4/5 variants
        with their short name first (``conv 1.0/224``)."""
        return f"{_SHORT.get(self.architecture, self.architecture + ' ')}{self.alpha_text}/{self.image_size}"

    @property
    def name(self):
        """``mobilenet_v1_0.5_160``: TF-slim's checkpoint name, the stem of the files."""
        return f"{self.architecture}_{self.alpha_text}_{self.image_size}"


def _number_list(name, values, kind):
    values = list(values)
    if not values:
        raise InputError(f"`{name}` must name at least one value. Received: {name}=[]")
    out = []
    for value in values:
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise InputError(f"`{name}` must be a list of numbers. Received: {name}={value!r}") from None
        if kind is int and number != float(value):
            raise InputError(f"`{name}` must be whole numbers. Received: {name}={value!r}")
        if number not in out:
            out.append(number)
    return out


def grid(alphas=DEFAULT_ALPHAS, image_sizes=DEFAULT_IMAGE_SIZES,
         architectures=DEFAULT_ARCHITECTURES):
    """The configurations ``architectures × alphas × image_sizes``, in that order (duplicates
    dropped). InputError (one line, naming the value and what is allowed) for an architecture
    that is not a name of ``NAMED_CONV_DEFS`` or an α or size the builder refuses."""
    alphas = _number_list("alpha", alphas, float)
    sizes = _number_list("image_size", image_sizes, int)
    architectures = list(dict.fromkeys(architectures))
    if not architectures:
        raise InputError("`architecture` must name at least one architecture. Received: "
                         "architecture=[]")
    for name in architectures:
        if name not in architecture.NAMED_CONV_DEFS:
            raise InputError(f"`architecture` must be one of "
                             f"{', '.join(architecture.NAMED_CONV_DEFS)}. Received: "
                             f"architecture={name!r}")
    for alpha in alphas:     # the builder's and the cost calculator's own checks and messages
        _checked(costs_lib.count, alpha=alpha)
    for size in sizes:
        _checked(costs_lib.count, alpha=alphas[0], image_size=size)
    return [Configuration(name, alpha, size)
            for name in architectures for alpha in alphas for size in sizes]


def _checked(function, **kwargs):
    try:
        return function(**kwargs)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(" ".join(str(e).split())) from None


@dataclasses.dataclass
class Row:
    """One configuration: its cost (exact integers, as ``costs.count``), its published accuracy,
    and what was measured: ``file_bytes[precision]``, ``latency_ms[(precision, threads)]``."""
    config: Configuration
    mult_adds: int
    params: int
    published: published_lib.Published
    file_bytes: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)       # precision -> file name
    latency_ms: dict = dataclasses.field(default_factory=dict)

    def accuracy(self, precision):
        return self.published.accuracy(precision)


def rows_for(configurations):
    """A :class:`Row` per configuration with its costs and published accuracy (nothing measured)."""
    rows = []
    for config in configurations:
        counted = costs_lib.count(alpha=config.alpha, image_size=config.image_size,
                                  conv_defs=config.architecture)
        rows.append(Row(config, counted.mult_adds, counted.params,
                        published_lib.published(config.architecture, config.alpha,
                                                config.image_size)))
    return rows


@dataclasses.dataclass(frozen=True)
class Choice:
    """What a latency budget buys at one precision and thread count: the most accurate row
    within it (`pick`, None when none fits) and the cheapest row more accurate than that
    (`next_up`, None when none is): what a larger budget would buy, at its latency."""
    precision: str
    threads: int
    budget_ms: float
    pick: Row = None
    next_up: Row = None
    unranked: tuple = ()       # labels of rows measured but without a published accuracy

    def describe(self):
        """One line: ``float32, 1 thread, within 5 ms: 0.75/192 (top-1 67.2%, 4.12 ms); next
        up: 1.0/192 (top-1 70.0%, 6.02 ms)``."""
        def row_text(row):
            return (f"{row.config.label} (top-1 {row.accuracy(self.precision):.1f}%, "
                    f"{row.latency_ms[(self.precision, self.threads)]:.2f} ms)")
        head = (f"{self.precision}, {self.threads} thread{'s' if self.threads > 1 else ''}, "
                f"within {self.budget_ms:g} ms: ")
        if self.pick is None:
            text = head + "nothing fits"
            if self.next_up is not None:
                text += f"; the fastest: {row_text(self.next_up)}"
        else:
            text = head + row_text(self.pick) + "; next up: " + (
                row_text(self.next_up) if self.next_up is not None else "none (the most accurate)")
        if self.unranked:
            text += f" ({len(self.unranked)} without a published top-1 not ranked)"
        return text


def choose(rows, budget_ms, precision, threads):
    """The :class:`Choice` of `budget_ms` among `rows` timed at (`precision`, `threads`):
    ranked by :meth:`Published.accuracy` (ties: the faster), rows without one left out."""
    key = (precision, threads)
    timed = [row for row in rows if key in row.latency_ms]
    ranked = [row for row in timed if row.accuracy(precision) is not None]
    unranked = tuple(row.config.label for row in timed if row.accuracy(precision) is None)
    within = [row for row in ranked if row.latency_ms[key] <= budget_ms]
    pick = max(within, key=lambda r: (r.accuracy(precision), -r.latency_ms[key]), default=None)
    better = [row for row in ranked
              if pick is None or row.accuracy(precision) > pick.accuracy(precision)]
    next_up = min(better, key=lambda r: (r.latency_ms[key], -r.accuracy(precision)), default=None)
    return Choice(precision, threads, budget_ms, pick, next_up, unranked)


def _threads_text(threads):
    return f"{threads} thread{'s' if threads > 1 else ''}"


def _num(value, digits=1):
    return "" if value is None else f"{value:.{digits}f}"


@dataclasses.dataclass
class TradeoffTable:
    """The rows, what was measured (`precisions` × `threads`; empty without latency), the CPU
    line and runtime they were measured with, the notes printed with them, and the latency
    budgets (ms) to choose within."""
    rows: list
    precisions: tuple = ()
    threads: tuple = ()
    cpu: str = None
    runtime: str = None
    notes: list = dataclasses.field(default_factory=list)
    budgets_ms: tuple = ()
    date: str = None
    caption: str = None       # one short line under the chart's title

    @property
    def measured(self):
        return tuple((p, t) for t in self.threads for p in self.precisions)

    def choices(self):
        """A :class:`Choice` per budget, measured precision and thread count."""
        return [choose(self.rows, budget, p, t) for budget in self.budgets_ms
                for p, t in self.measured]

    # --- Markdown ------------------------------------------------------------------------------

    def markdown(self):
        header = ["α/ρ", "Mult-Adds", "parameters", "top-1 / top-5", "int8 top-1 / top-5",
                  "paper top-1"]
        header += [f"{p} file" for p in self.precisions if self.threads]
        header += [f"{p} {_threads_text(t)}" for p, t in self.measured]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            pub = row.published
            cells = [row.config.label, f"{row.mult_adds / 1e6:,.1f} M", f"{row.params / 1e6:.2f} M",
                     "" if pub.top1 is None else f"{pub.top1:.1f} / {pub.top5:.1f}",
                     "" if pub.top1_int8 is None else f"{pub.top1_int8:.1f} / {pub.top5_int8:.1f}",
                     "" if pub.paper_top1 is None else f"{pub.paper_top1:.1f} ({pub.paper_table})"]
            if self.threads:
                cells += [f"{row.file_bytes[p] / 1024:,.0f} KiB" if p in row.file_bytes else ""
                          for p in self.precisions]
            cells += [f"{row.latency_ms[k]:.2f} ms" if k in row.latency_ms else ""
                      for k in self.measured]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def text(self):
        """What the command prints: the CPU line, the table, the notes, the budgets' choices;
        blocks separated by a blank line."""
        blocks = []
        if self.cpu:
            blocks.append(self.cpu + (f"; {self.runtime}" if self.runtime else ""))
        blocks.append(self.markdown())
        if self.notes:
            blocks.append("\n".join(f"* {note}" for note in self.notes))
        choices = self.choices()
        for budget in self.budgets_ms:
            blocks.append("\n".join(
                [f"Budget {budget:g} ms (per precision and thread count):"]
                + [f"  {choice.describe()}" for choice in choices if choice.budget_ms == budget]))
        return "\n\n".join(blocks)

    # --- CSV and JSON --------------------------------------------------------------------------

    def _record(self, row):
        pub = row.published
        record = {"label": row.config.label, "architecture": row.config.architecture,
                  "alpha": row.config.alpha, "image_size": row.config.image_size,
                  "rho": round(row.config.rho, 6), "mult_adds": row.mult_adds,
                  "params": row.params}
        record.update({f: getattr(pub, f) for f in
                       ("top1", "top5", "top1_int8", "top5_int8", "paper_top1", "paper_table")})
        for p in self.precisions if self.threads else ():
            record[f"{p}_file"] = row.files.get(p)
            record[f"{p}_bytes"] = row.file_bytes.get(p)
        for p, t in self.measured:
            value = row.latency_ms.get((p, t))
            record[f"{p}_{t}_threads_ms"] = None if value is None else round(value, 4)
        return record

    def csv_text(self):
        records = [self._record(row) for row in self.rows]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
        return out.getvalue()

    def json_text(self):
        choices = []
        for choice in self.choices():
            entry = {"precision": choice.precision, "threads": choice.threads,
                     "budget_ms": choice.budget_ms, "line": choice.describe()}
            for name in ("pick", "next_up"):
                row = getattr(choice, name)
                entry[name] = None if row is None else {
                    "label": row.config.label, "top1": row.accuracy(choice.precision),
                    "latency_ms": round(row.latency_ms[(choice.precision, choice.threads)], 4)}
            choices.append(entry)
        document = {
            "format": FORMAT, "date": self.date, "cpu": self.cpu, "runtime": self.runtime,
            "sources": {"top1, top5, top1_int8, top5_int8": published_lib.SLIM_SOURCE,
                        "paper_top1": published_lib.PAPER_SOURCE,
                        "mult_adds, params": "mobilenet_tf.model.costs.count (the paper's counting)"},
            "notes": list(self.notes), "precisions": list(self.precisions),
            "threads": list(self.threads), "budgets_ms": list(self.budgets_ms), "choices": choices,
            "rows": [self._record(row) for row in self.rows]}
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
