"""Choosing α and ρ: the paper's trade-off between accuracy and cost (Tables 6 and 7, Figures 4
and 5), with the latency of this machine's LiteRT beside it.

    python -m mobilenet_tf.tradeoff                       # the paper's 16: α × {224, 192, 160, 128}
    python -m mobilenet_tf.tradeoff --budget_ms=2         # ... and the most accurate within 2 ms
    python -m mobilenet_tf.tradeoff --budget_ms=1,2,5     # ... within each of three budgets
    python -m mobilenet_tf.tradeoff --no-latency          # costs and published accuracy only
    python -m mobilenet_tf.tradeoff --architecture=mobilenet_v1,conv_mobilenet,shallow_mobilenet \\
        --alpha=1.0 --image_size=224                      # the paper's Tables 4 and 5

Prints, per configuration: Mult-Adds and parameters (as ``python -m mobilenet_tf.costs`` counts
them), Google's published ImageNet top-1 / top-5, and the size and latency (1 thread and all
cores) of a float32 and an int8 ``.tflite`` file made here with random weights; writes
``tradeoff.csv``, ``tradeoff.json`` and ``tradeoff.png`` beside the files in ``--output_dir``. A
second run over the same folder reuses the files that are unchanged. docs/tradeoff.md has more.

Exit status: 0 done; 2 refused before any work (one line); 1 failed during it; 130 / 143
interrupted (the files made so far stay). A thin command over
``mobilenet_tf.export.tradeoff.run_tradeoff``.
"""

import argparse
import sys

from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.utils import console

__all__ = ["main"]

PROG = "python -m mobilenet_tf.tradeoff"


def _list(text):
    """argparse type: a comma-separated list (the library checks each value)."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {text!r}")
    return values


def _numbers(kind, flag):
    def parse(text):
        values = _list(text)
        try:
            return [kind(v) for v in values]
        except ValueError:
            noun = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of {noun}. Received: {flag}={text!r}") from None
    return parse


def _budgets(text):
    try:
        return [float(v) for v in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers of milliseconds > 0, comma-separated. "
                                         f"Received: --budget_ms={text!r}") from None


def main(argv=None):
    from mobilenet_tf.export import tradeoff_table as table
    from mobilenet_tf.model import architecture
    parser = cli_args.ArgumentParser(
        prog=PROG, description="The paper's accuracy / cost trade-off over a grid of α and "
                               "image sizes, with the LiteRT latency of float32 and int8 files "
                               "measured here, as a table, CSV, JSON and a chart.")
    parser.add_argument("--output_dir", default="tradeoff",
                        help="folder for the .tflite files, manifest.json, tradeoff.csv, .json and "
                             ".png (default ./tradeoff); unchanged files of an earlier run are reused")
    parser.add_argument("--alpha", type=_numbers(float, "--alpha"),
                        default=list(table.DEFAULT_ALPHAS),
                        help="width multipliers α, comma-separated (default 1.0,0.75,0.5,0.25)")
    parser.add_argument("--image_size", type=_numbers(int, "--image_size"),
                        default=list(table.DEFAULT_IMAGE_SIZES),
                        help="input sizes (ρ = size / 224), comma-separated "
                             "(default 224,192,160,128)")
    parser.add_argument("--architecture", type=_list, default=list(table.DEFAULT_ARCHITECTURES),
                        help="architectures, comma-separated, of "
                             f"{', '.join(architecture.NAMED_CONV_DEFS)} (the paper's Table 4 and "
                             "5 variants; default mobilenet_v1)")
    parser.add_argument("--precision", type=_list, default=list(table.PRECISIONS),
                        help="file precisions, comma-separated, of float32, int8 (default both)")
    parser.add_argument("--threads", type=_numbers(int, "--threads"), default=None,
                        help="interpreter thread counts timed, comma-separated (default: 1 and "
                             "all cores)")
    parser.add_argument("--budget_ms", type=_budgets, default=None,
                        help="latency budget in ms (or several, comma-separated): names the most "
                             "accurate configuration within it, per precision and thread count, "
                             "and the next one up")
    parser.add_argument("--latency", default=True, action=argparse.BooleanOptionalAction,
                        help="make and time the .tflite files (default); --no-latency: costs and "
                             "published accuracy only, without TensorFlow")
    parser.add_argument("--chart", default=True, action=argparse.BooleanOptionalAction,
                        help="draw tradeoff.png (default; needs matplotlib: "
                             "pip install 'mobilenet-tf[plot]')")
    parser.add_argument("--calibration", default="synthetic",
                        help="dataset whose first images calibrate int8: synthetic (random images, "
                             "the default: latency does not depend on them), folder:PATH, a tfds name")
    parser.add_argument("--num_calibration_images", type=cli_args.positive_int, default=8,
                        help="int8 calibration images (default 8)")
    parser.add_argument("--data_dir", default=None, help="tensorflow-datasets data folder")
    parser.add_argument("--rounds", type=cli_args.positive_int, default=7,
                        help="timing: rounds in which every file takes a turn (default 7)")
    parser.add_argument("--runs", type=cli_args.positive_int, default=10,
                        help="timing: invokes per file and round (default 10)")
    args = parser.parse_args(argv)
    return runtime.run_command(PROG, lambda: _run(args))


def _run(args):
    console.log_to()
    from mobilenet_tf.export import tradeoff
    result = tradeoff.run_tradeoff(
        args.output_dir, alphas=args.alpha, image_sizes=args.image_size,
        architectures=args.architecture, precisions=args.precision, threads=args.threads,
        latency=args.latency, budget_ms=args.budget_ms, chart=args.chart,
        calibration=args.calibration, num_calibration_images=args.num_calibration_images,
        data_dir=args.data_dir, rounds=args.rounds, runs=args.runs)
    print()
    print(result.table.text())
    print()
    print("Wrote " + ", ".join(result.outputs.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
