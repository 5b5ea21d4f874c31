"""The quantization report as a PNG: one bar group per layer, three panels sharing the layers.

1. error: the layer's output error relative to the float tensor's spread (RMSE/σ, %), in the
   int8 file (accumulated) and with the layer quantized alone;
2. top-1 agreement with the Keras model when the layer alone is left in float, against the int8
   file's (a line);
3. cost: the layer's share of the Mult-Adds and of the int8 file's latency.

Drawn with matplotlib's Agg canvas (no display, no pyplot state), an optional dependency
shared with the trade-off chart (``pip install 'mobilenet-tf[plot]'``);
:func:`matplotlib_problem` says so in one line when it is missing. :func:`png_bytes` returns
the image; the command writes it (``mobilenet_tf.utils.fileio``).
"""

import importlib.util
import io
import math

__all__ = ["INSTALL_HINT", "matplotlib_problem", "png_bytes"]

INSTALL_HINT = "pip install 'mobilenet-tf[plot]'"   # the extra the trade-off chart uses too


def matplotlib_problem():
    """Why no PNG can be drawn (one line), or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"drawing the PNG needs matplotlib, which is not installed: {INSTALL_HINT}"
    return None


def _values(rows, get):
    out = []
    for row in rows:
        value = get(row)
        out.append(0.0 if value is None or (isinstance(value, float) and math.isnan(value))
                   else value)
    return out


def png_bytes(report):
    """The PNG image of a :class:`mobilenet_tf.export.report.QuantReport`."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    rows = report.rows
    x = np.arange(len(rows))
    width = 0.4
    figure = Figure(figsize=(max(10, 0.42 * len(rows)), 10), layout="constrained")
    FigureCanvasAgg(figure)
    error, top1, cost = figure.subplots(3, 1, sharex=True)
    figure.suptitle(f"Where int8 loses: {report.model}\n{report.num_images} images "
                    f"({report.images}); int8 file: {report.int8_file}", fontsize=9)
    error.bar(x - width / 2, _values(rows, lambda r: 100 * r.accumulated.relative_rmse), width,
              label="in the int8 file (accumulated)", color="tab:red")
    error.bar(x + width / 2, _values(rows, lambda r: 100 * r.isolated.relative_rmse), width,
              label="quantized alone (float input)", color="tab:orange")
    error.set_ylabel("output RMSE / σ (%)")
    error.legend(fontsize=8, loc="upper left")
    error.grid(axis="y", alpha=0.3)
    top1.bar(x, _values(rows, lambda r: 100 * r.float_agreement), 2 * width, color="tab:green",
             label="this layer alone left in float")
    top1.axhline(100 * report.full_agreement, color="black", linewidth=1,
                 label=f"int8 file ({100 * report.full_agreement:.1f}%)")
    low = min([100 * report.full_agreement] + _values(rows, lambda r: 100 * r.float_agreement))
    top1.set_ylim(max(0.0, low - 5), 100.5)
    top1.set_ylabel("top-1 agreement with Keras (%)")
    top1.legend(fontsize=8, loc="upper right")
    top1.grid(axis="y", alpha=0.3)
    cost.bar(x - width / 2, _values(rows, lambda r: None if r.mult_adds_share is None
                                    else 100 * r.mult_adds_share), width, label="Mult-Adds",
             color="tab:blue")
    cost.bar(x + width / 2, _values(rows, lambda r: None if r.latency_share is None
                                    else 100 * r.latency_share), width,
             label="int8 latency (1 thread)", color="tab:purple")
    cost.set_ylabel("share of the model (%)")
    cost.legend(fontsize=8, loc="upper right")
    cost.grid(axis="y", alpha=0.3)
    cost.set_xticks(x)
    cost.set_xticklabels([r.layer + ("" if r.dtype == "int8" else " (float)") for r in rows],
                         rotation=70, ha="right", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
