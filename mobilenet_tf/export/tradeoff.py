"""Choosing α and ρ: the paper's trade-off (its Tables 6 and 7, Figures 4 and 5) with the
latency of this machine beside it, in one call, :func:`run_tradeoff`.

For each configuration of a grid (default: the paper's 16, α ∈ {1.0, 0.75, 0.5, 0.25} ×
{224, 192, 160, 128}) it gives the Mult-Adds and parameters (``mobilenet_tf.model.costs``),
Google's published ImageNet accuracy (``mobilenet_tf.model.published``), and, measured here, the
size and LiteRT latency of a float32 and an int8 ``.tflite`` file (``tradeoff_files`` makes them
with the exporter, ``latency`` times them side by side at 1 thread and at all cores). It writes
``tradeoff.csv``, ``tradeoff.json`` and ``tradeoff.png`` (``tradeoff_chart``) into the folder
that keeps the files, and for each latency budget names the most accurate configuration within it.

Every setting is checked before any work (InputError, one line); every file is written
atomically. ``python -m mobilenet_tf.tradeoff`` is the command over this module.
"""

import dataclasses
import datetime
import logging
import math
import os
import time

from mobilenet_tf.errors import InputError
from mobilenet_tf.export import tradeoff_table
from mobilenet_tf.model import published as published_lib
from mobilenet_tf.utils import cpu as cpu_lib
from mobilenet_tf.utils import fileio

__all__ = ["run_tradeoff", "TradeoffResult", "check_settings", "OUTPUTS", "PHONE_DOCS"]

logger = logging.getLogger(__name__)

OUTPUTS = {"csv": "tradeoff.csv", "json": "tradeoff.json", "png": "tradeoff.png"}
PHONE_DOCS = "docs/tradeoff.md#on-a-phone"


@dataclasses.dataclass
class TradeoffResult:
    """The table, the folder, the outputs written (``{"csv"|"json"|"png": path}``), the
    ``.tflite`` files (``{(configuration, precision): FileEntry}``) and the labels each chart
    panel shows."""
    table: tradeoff_table.TradeoffTable
    folder: str
    outputs: dict
    files: dict
    chart_labels: dict = None


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    return value


def check_settings(output_dir, *, alphas, image_sizes, architectures, precisions, threads, latency,
                   budgets_ms, chart, calibration, num_calibration_images, rounds, runs):
    """The configurations of the grid, after checking every setting (`budgets_ms`: a list);
    InputError (one line naming the value and what is allowed) for the first that is not
    allowed."""
    configurations = tradeoff_table.grid(alphas, image_sizes, architectures)
    precisions = list(dict.fromkeys(precisions))
    if not precisions or any(p not in tradeoff_table.PRECISIONS for p in precisions):
        raise InputError(f"`precision` must be one or more of "
                         f"{', '.join(tradeoff_table.PRECISIONS)}. Received: precision={precisions}")
    for value in threads:
        _positive_int("threads", value)
    for name, value in (("num_calibration_images", num_calibration_images), ("rounds", rounds),
                        ("runs", runs)):
        _positive_int(name, value)
    for budget_ms in budgets_ms:
        if (isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float))
                or not math.isfinite(budget_ms) or budget_ms <= 0):
            raise InputError(f"`budget_ms` (the latency budget in milliseconds) must be a number "
                             f"> 0. Received: budget_ms={budget_ms!r}")
        if not latency:
            raise InputError("`budget_ms` needs the latency measured; it cannot be used without it. "
                             f"Received: budget_ms={budget_ms!r}, latency=False")
    if latency and "int8" in precisions:
        from mobilenet_tf.data.options import parse_dataset_spec
        kind, value = parse_dataset_spec(calibration)
        if kind == "folder" and not os.path.isdir(value):
            raise InputError(f"`calibration` folder {value} does not exist. Received: "
                             f"calibration={calibration!r}")
    problem = fileio.folder_problem(output_dir)
    if problem:
        raise InputError(f"{problem}. Received: output_dir={os.fspath(output_dir)!r}")
    if chart:
        from mobilenet_tf.export import tradeoff_chart
        tradeoff_chart.require()
    return configurations


def _notes(latency, calibration, num_calibration_images, rounds, runs):
    notes = ["Mult-Adds and parameters: counted as the paper counts them "
             "(mobilenet_tf.model.costs); top-1 / top-5: Google's released float checkpoints, "
             "int8 top-1 / top-5: their 8-bit _quant twins (trained with quantization), both from "
             f"{published_lib.SLIM_SOURCE}; paper top-1: {published_lib.PAPER_SOURCE}. The "
             "accuracies are published figures, not measured here."]
    if latency:
        images = ("synthetic random images" if calibration == "synthetic"
                  else f"images of {calibration}")
        notes.append(f"Latency: LiteRT (XNNPACK) on this CPU, median of {rounds} rounds of {runs} "
                     "invokes, the files taking turns. The files have random weights (latency "
                     f"does not depend on the weights' values); int8 is calibrated on "
                     f"{num_calibration_images} {images}; uint8 RGB in, float32 probabilities "
                     "out. The int8 points are ranked by the _quant checkpoints' top-1: a "
                     "post-training int8 export of the float weights may score lower.")
    return notes


def _caption(latency, calibration, num_calibration_images):
    text = "top-1: Google's published figures (not measured here)"
    if latency:
        images = "synthetic random" if calibration == "synthetic" else calibration
        text += (f"; latency: files with random weights, int8 calibrated on "
                 f"{num_calibration_images} {images} images")
    return text


def _litert_version():
    from importlib import metadata
    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        return "unknown"


def _measure(rows, files, precisions, threads, rounds, runs):
    from mobilenet_tf.export import latency as latency_lib
    from mobilenet_tf.export import tflite
    for count in threads:
        start = time.perf_counter()
        runners = {(i, p): tflite.TFLiteClassifier(files[(row.config, p)].path, num_threads=count)
                   for i, row in enumerate(rows) for p in precisions}
        logger.info("Timing %d files at %d thread%s: %d rounds of %d invokes each", len(runners),
                    count, "s" if count > 1 else "", rounds, runs)
        medians = latency_lib.interleaved_latency(runners, rounds=rounds, runs=runs)
        for (i, p), value in medians.items():
            rows[i].latency_ms[(p, count)] = value
        logger.info("... %.0f s", time.perf_counter() - start)


def run_tradeoff(output_dir, *, alphas=tradeoff_table.DEFAULT_ALPHAS,
                 image_sizes=tradeoff_table.DEFAULT_IMAGE_SIZES,
                 architectures=tradeoff_table.DEFAULT_ARCHITECTURES,
                 precisions=tradeoff_table.PRECISIONS, threads=None, latency=True, budget_ms=None,
                 chart=True, calibration="synthetic", num_calibration_images=8, data_dir=None,
                 rounds=7, runs=10):
    """The trade-off table of the grid ``architectures × alphas × image_sizes``, its files and
    outputs in `output_dir` (created if needed). Returns a :class:`TradeoffResult`.

    Args:
      output_dir: where the ``.tflite`` files, their ``manifest.json`` and ``tradeoff.csv``,
        ``.json`` and ``.png`` go; files of an earlier run over it are reused when unchanged.
      alphas, image_sizes, architectures: the grid (architectures: names of
        ``mobilenet_tf.model.architecture.NAMED_CONV_DEFS``, e.g. the paper's Table 4/5
        variants ``conv_mobilenet`` and ``shallow_mobilenet``).
      precisions: of the files, some of ``("float32", "int8")``.
      threads: the interpreter thread counts timed (default: 1 and all cores).
      latency: make and time the files; without, only costs and published accuracy (no
        TensorFlow import).
      budget_ms: a latency budget in ms, or a list of them: for each, the most accurate
        configuration within it, per precision and thread count, and the next one up.
      chart: draw ``tradeoff.png`` (needs matplotlib, the ``plot`` extra).
      calibration, num_calibration_images, data_dir: the dataset spec (``synthetic``,
        ``folder:PATH``, a tfds name) whose first images calibrate int8.
      rounds, runs: the timing: `rounds` turns of `runs` invokes per file.

    Raises:
      InputError: a setting that is not allowed, before any work (one line).
      ExportError: the calibration data could not be read.
    """
    if threads is None:
        threads = list(dict.fromkeys((1, cpu_lib.available_cores())))
    threads = list(dict.fromkeys(threads))
    precisions = list(dict.fromkeys(precisions))
    budgets = [] if budget_ms is None else (
        list(dict.fromkeys(budget_ms)) if isinstance(budget_ms, (list, tuple)) else [budget_ms])
    configurations = check_settings(
        output_dir, alphas=alphas, image_sizes=image_sizes, architectures=architectures,
        precisions=precisions, threads=threads, latency=latency, budgets_ms=budgets, chart=chart,
        calibration=calibration, num_calibration_images=num_calibration_images, rounds=rounds,
        runs=runs)
    folder = os.fspath(output_dir)
    os.makedirs(folder, exist_ok=True)
    rows = tradeoff_table.rows_for(configurations)
    table = tradeoff_table.TradeoffTable(
        rows, precisions=tuple(precisions), threads=tuple(threads) if latency else (),
        notes=_notes(latency, calibration, num_calibration_images, rounds, runs),
        budgets_ms=tuple(budgets), date=datetime.date.today().isoformat(),
        caption=_caption(latency, calibration, num_calibration_images))
    files = {}
    if latency:
        from mobilenet_tf.utils import native
        native.import_tensorflow()          # its C++ start-up lines kept off the terminal
        from mobilenet_tf.export import tradeoff_files
        files = tradeoff_files.ensure_files(configurations, precisions, folder,
                                            calibration=calibration,
                                            num_calibration_images=num_calibration_images,
                                            data_dir=data_dir)
        for row in rows:
            for p in precisions:
                entry = files[(row.config, p)]
                row.files[p] = os.path.basename(entry.path)
                row.file_bytes[p] = entry.size_bytes
        table.cpu = cpu_lib.describe()
        table.runtime = f"LiteRT (ai-edge-litert) {_litert_version()}, XNNPACK"
        _measure(rows, files, precisions, threads, rounds, runs)
        reused = sum(entry.reused for entry in files.values())
        table.notes.append(f"Files: {len(files)} .tflite files in {folder} ({len(files) - reused} "
                           f"made, {reused} reused); to time them on a phone: {PHONE_DOCS}.")
    outputs = {"csv": os.path.join(folder, OUTPUTS["csv"]),
               "json": os.path.join(folder, OUTPUTS["json"])}
    fileio.write_text(outputs["csv"], table.csv_text())
    fileio.write_text(outputs["json"], table.json_text())
    labels = None
    if chart:
        from mobilenet_tf.export import tradeoff_chart
        png, labels = tradeoff_chart.draw(table)
        outputs["png"] = os.path.join(folder, OUTPUTS["png"])
        fileio.write_bytes(outputs["png"], png)
    return TradeoffResult(table, folder, outputs, files, labels)
