"""The trade-off chart of ``python -m mobilenet_tf.tradeoff`` as a PNG: the paper's Figures 4
and 5 redrawn (ImageNet top-1 against Mult-Adds on a log axis, and against parameters), and
top-1 against the latency measured here, float32 and int8 points, one panel per thread count;
every point labelled "α/ρ", each latency budget drawn as a vertical line.

Drawn with matplotlib (its Agg canvas: no display, no pyplot state), an optional extra
(``pip install 'mobilenet-tf[plot]'``): :func:`require` says in one line how to install it.
The PNG carries, as a text chunk (``mobilenet_tf.labels``, JSON), the point labels and legend
entries each panel shows, read from the drawn figure: what a test or a script can check
without reading pixels. This module
returns the PNG's bytes; it writes no file.
"""

import importlib.util
import io
import json

from mobilenet_tf.errors import InputError

__all__ = ["require", "draw", "LABELS_KEY", "INSTALL_HINT"]

LABELS_KEY = "mobilenet_tf.labels"
INSTALL_HINT = "pip install 'mobilenet-tf[plot]'"
_COLORS = {"float32": "tab:blue", "int8": "tab:orange"}
_MARKERS = {"float32": "o", "int8": "^"}
_LEGEND = {"float32": "float32 (top-1 of the float checkpoint)",
           "int8": "int8 (top-1 of the _quant checkpoint)"}


def _log_axis(ax):
    """A log x axis with plain numbers at 1, 2 and 5 of each decade (0.5, 1, 2, 5, 10, ...)."""
    from matplotlib import ticker
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def require():
    """InputError (one line, with the install command) when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(f"drawing the chart needs matplotlib, an optional extra: {INSTALL_HINT} "
                         "(or leave the chart out)")


# Where a point's label goes (offset in points, horizontal alignment), in order of preference:
# the first place where it overlaps no label placed before it.
_PLACES = ((4, 1, "left"), (4, -8, "left"), (-4, 1, "right"), (-4, -8, "right"), (4, 9, "left"),
           (-4, 9, "right"), (4, -16, "left"), (-4, -16, "right"))


def _label_points(ax, points):
    """Each point's label beside it, moved around the point until it lies inside the panel and
    overlaps no other label (dense charts: the α = 1 column of the parameter chart, equal top-1
    figures)."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    for x, y, label in sorted(points, key=lambda p: (-p[1], p[0])):
        for dx, dy, align in _PLACES:
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points",
                               fontsize=6.5, ha=align)
            box = text.get_window_extent(renderer)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in placed):
                break
            text.remove()
        else:                           # nowhere free: the first place
            text = ax.annotate(label, (x, y), xytext=_PLACES[0][:2], textcoords="offset points",
                               fontsize=6.5, ha=_PLACES[0][2])
        placed.append(text.get_window_extent(renderer))


def _cost_panel(ax, rows, attribute, xlabel):
    by_alpha = {}
    points = []
    for row in rows:
        top1 = row.accuracy("float32")
        if top1 is None:
            continue
        x = getattr(row, attribute) / 1e6
        by_alpha.setdefault((row.config.architecture, row.config.alpha), []).append((x, top1))
        points.append((x, top1, row.config.label))
    for (name, alpha), xy in by_alpha.items():
        xy.sort()
        prefix = "" if name == "mobilenet_v1" else f"{name} "
        ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", markersize=4, linewidth=0.8,
                label=f"{prefix}α = {float(alpha)}")
    _log_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.grid(True, which="both", linewidth=0.3)
    if by_alpha:
        ax.legend(fontsize=7, loc="lower right")
    return points


def _latency_panel(ax, table, threads):
    points = []
    for precision in table.precisions:
        key = (precision, threads)
        xy = [(row.latency_ms[key], row.accuracy(precision), row.config.label)
              for row in table.rows if key in row.latency_ms and row.accuracy(precision) is not None]
        if not xy:
            continue
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=18, color=_COLORS.get(precision),
                   marker=_MARKERS.get(precision, "s"), label=_LEGEND.get(precision, precision),
                   zorder=3)
        points += xy
    for budget, style in zip(table.budgets_ms, ("--", ":", "-.", (0, (5, 1, 1, 1))) * 8):
        ax.axvline(budget, color="black", linestyle=style, linewidth=1, label=f"budget {budget:g} ms")
    _log_axis(ax)
    ax.set_xlabel(f"latency here, {threads} thread{'s' if threads > 1 else ''} (ms, log scale; "
                  "median of alternating runs)")
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.grid(True, which="both", linewidth=0.3)
    if points:
        ax.legend(fontsize=7, loc="lower right")
    return points


def draw(table, *, dpi=110):
    """The chart of a :class:`~mobilenet_tf.export.tradeoff_table.TradeoffTable` as PNG bytes,
    and what it shows: ``{panel: {"labels": [point labels], "legend": [entries]}}`` (panels
    ``mult_adds``, ``params``, ``latency_<n>_threads``), also in the PNG as :data:`LABELS_KEY`.

    Rows without a published top-1 have no place on the charts and are left out (they stay in
    the table). Raises InputError (:func:`require`) without matplotlib.
    """
    require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

    panels = [("mult_adds", "Mult-Adds (millions, log scale)"),
              ("params", "parameters (millions, log scale)")]
    panels += [(f"latency_{t}_threads", t) for t in table.threads]
    columns = 2 if len(panels) == 4 else len(panels)
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(6.2 * columns, 5.0 * rows + 0.7), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    labelled = []
    titles = {"mult_adds": "top-1 against Mult-Adds (the paper's Figure 4)",
              "params": "top-1 against parameters (the paper's Figure 5)"}
    for ax, (panel, what) in zip(axes, panels):
        if panel in ("mult_adds", "params"):
            points = _cost_panel(ax, table.rows, panel, what)
        else:
            points = _latency_panel(ax, table, what)
            titles[panel] = (f"top-1 against latency here, {what} thread{'s' if what > 1 else ''}")
        ax.set_title(titles[panel], fontsize=10)
        labelled.append((ax, points))
    heading = "MobileNetV1: ImageNet top-1 (Google's published figures) against cost and latency"
    sub = [line for line in (table.cpu, table.runtime, table.caption) if line]
    fig.suptitle(heading + ("\n" + "\n".join(sub) if sub else ""), fontsize=9)
    fig.canvas.draw()                   # the final layout, kept; then the labels in it
    fig.set_layout_engine("none")
    for ax, points in labelled:
        _label_points(ax, points)
    fig.canvas.draw()
    # What each panel shows, read from the drawn figure: its point labels that lie inside the
    # image, and its legend's entries.
    width, height = fig.canvas.get_width_height()
    shown = {}
    for ax, (panel, _) in zip(axes, panels):
        labels = []
        for text in ax.texts:
            if isinstance(text, Annotation) and text.get_visible():
                box = text.get_window_extent()
                if box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height:
                    labels.append(text.get_text())
        legend = ax.get_legend()
        shown[panel] = {"labels": labels, "legend": [] if legend is None else
                        [t.get_text() for t in legend.get_texts()]}
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi,
                metadata={"Title": heading, LABELS_KEY: json.dumps(shown, ensure_ascii=True)})
    return buffer.getvalue(), shown
