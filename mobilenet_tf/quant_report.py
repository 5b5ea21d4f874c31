"""Where int8 loses: a per-layer quantization report, in the model's own layer names.

    python -m mobilenet_tf.quant_report --weights=../shared/data/weights/mobilenet_2_5_128_tf.h5 \\
        --alpha=0.25 --image_size=128 --representative_dataset=folder:../shared/data/hymenoptera \\
        --verify_dataset=folder:../shared/data/imagenet50 --json=report.json --png=report.png
    python -m mobilenet_tf.quant_report --model=runs/m050 --tflite=m050_int8.tflite

The model is chosen as ``export_tflite.py`` chooses it (``--model``: a ``.keras`` file or a
``train.py`` run; ``--weights`` with ``--alpha``, ``--image_size``, ``--classes``); the int8 file
is made as ``export_tflite.py --quantization=int8`` makes it, or ``--tflite`` names one. For
every quantized layer (``Conv2d_0`` ... ``Predictions``), on the verification images: the error
of its output in the int8 file, the error of it quantized alone, the top-1 agreement with the
Keras model when it alone is left in float, and its share of the Mult-Adds and of the latency.
Prints the table; ``--json`` and ``--png`` also write it (the PNG needs matplotlib:
``pip install 'mobilenet-tf[plot]'``). A thin command over
``mobilenet_tf.export.report.quantization_report``; docs/quantization-report.md.

Exit status: 0 done; 2 refused before any work (one line); 1 failed during the work.
"""

import json
import sys

from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.utils import native

__all__ = ["main"]

PROG = "python -m mobilenet_tf.quant_report"


def _parser():
    from mobilenet_tf.export.options import ExportOptions
    defaults = ExportOptions()
    parser = cli_args.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="a .keras file or a train.py run folder (instead of --weights)")
    parser.add_argument("--weights", default=None,
                        help="what MobileNetV1(weights=...) takes: 'imagenet', a Keras .h5 / "
                             ".keras / .weights.h5 file or a TF-slim checkpoint prefix")
    parser.add_argument("--alpha", type=cli_args.positive_float, default=1.0,
                        help="width multiplier α of the --weights model (default 1.0)")
    parser.add_argument("--image_size", type=cli_args.positive_int, default=224,
                        help="input size of the --weights model (default 224)")
    parser.add_argument("--classes", type=cli_args.positive_int, default=None,
                        help="classes of the --weights model's head (default: the weights')")
    parser.add_argument("--tflite", default=None,
                        help="an int8 .tflite export of the model to report on (default: made "
                             "here as export_tflite.py --quantization=int8 makes it)")
    parser.add_argument("--representative_dataset", default=None,
                        help="calibration images, a dataset spec (folder:PATH, a tfds name); "
                             "default for a train.py run: its dataset")
    parser.add_argument("--data_dir", default=None, help="tensorflow-datasets data directory")
    parser.add_argument("--num_calibration_images", type=cli_args.positive_int,
                        default=defaults.num_calibration_images,
                        help=f"images that calibrate (default {defaults.num_calibration_images})")
    parser.add_argument("--verify_dataset", default=None,
                        help="the images the report is measured on (its validation split); "
                             "default: those of --representative_dataset")
    parser.add_argument("--num_verification_images", type=cli_args.positive_int, default=100,
                        help="images measured (default 100)")
    parser.add_argument("--latency_rounds", type=int, default=10,
                        help="rounds of the per-layer timing; 0 leaves the latency column out "
                             "(default 10)")
    parser.add_argument("--json", default=None, help="also write the report as JSON here")
    parser.add_argument("--png", default=None,
                        help="also draw it here as a PNG (needs matplotlib)")
    return parser


def _refusal(args):
    """The first argument problem (one line), or None: all checked before any work."""
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.export import report_plot
    from mobilenet_tf.utils import fileio
    if (args.model is None) == (args.weights is None):
        return "give exactly one of --model (.keras file or train.py run) and --weights"
    for name in ("representative_dataset", "verify_dataset"):
        value = getattr(args, name)
        if value is not None:
            try:
                data_lib.parse_dataset_spec(value)
            except ValueError as e:
                return f"--{name}: {e}"
    if args.latency_rounds < 0:
        return f"--latency_rounds must be >= 0, got {args.latency_rounds}"
    for name, suffix in (("json", ".json"), ("png", ".png")):
        path = getattr(args, name)
        if path is not None:
            problem = (f"must be a {suffix} file name" if not path.endswith(suffix)
                       else fileio.file_problem(path))
            if problem:
                return f"--{name} {problem}. Received: --{name}={path}"
    if args.png is not None:
        return report_plot.matplotlib_problem()
    return None


def main(argv=None):
    args = _parser().parse_args(argv)
    problem = _refusal(args)
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    return runtime.run_command(PROG, lambda: _run(args))


def _run(args):
    native.import_tensorflow()
    from mobilenet_tf.export import pipeline, report, report_plot
    from mobilenet_tf.export.options import ExportOptions
    from mobilenet_tf.utils import console, fileio
    console.log_to("stdout")
    source = args.model if args.model is not None else pipeline.FromWeights(
        args.weights, alpha=args.alpha, image_size=args.image_size, classes=args.classes)
    options = ExportOptions(quantization="int8", representative_dataset=args.representative_dataset,
                            data_dir=args.data_dir,
                            num_calibration_images=args.num_calibration_images,
                            verify_dataset=args.verify_dataset,
                            num_verification_images=args.num_verification_images)
    result = report.quantization_report(source, options, tflite=args.tflite,
                                        latency_rounds=args.latency_rounds)
    print("\n".join(result.lines()))
    files = {}
    if args.json:
        files[args.json] = (json.dumps(result.to_dict(), indent=1) + "\n").encode("utf-8")
    if args.png:
        files[args.png] = report_plot.png_bytes(result)
    if files:
        fileio.write_all(files)
        print("Wrote " + " and ".join(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
