"""Convert a TF-slim checkpoint or a Keras 2 .h5 file into this project's .keras model.

    python -m mobilenet_tf.convert --from=mobilenet_v1_0.25_128.ckpt --alpha=0.25 \\
        --image_size=128 --output=mobilenet_v1_0.25_128.keras

A thin command over ``mobilenet_tf.model.convert.convert_weights``. The output loads with plain
``keras.models.load_model`` (or
``MobileNetV1(weights=...)``). ``--output`` ending in ``.weights.h5`` writes the
weights only. The file is written to a temporary name in the same folder and
renamed, so an interrupted run leaves nothing half-written.
"""

import sys

from mobilenet_tf.utils import fileio
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.utils import native

__all__ = ["main"]


def main(argv=None):
    from mobilenet_tf.model.weight_sources import CHECKPOINT_WEIGHTS
    parser = cli_args.ArgumentParser(
        prog="python -m mobilenet_tf.convert",
        description="Convert a TF-slim checkpoint or Keras 2 .h5 file to a .keras model file.")
    parser.add_argument("--from", dest="source", required=True,
                        help="TF-slim checkpoint prefix, Keras .h5 file, or 'imagenet'")
    parser.add_argument("--alpha", type=cli_args.positive_float, required=True,
                        help="width multiplier α of the weights")
    parser.add_argument("--image_size", type=cli_args.positive_int, required=True,
                        help="input height and width of the saved model")
    parser.add_argument("--classes", type=cli_args.positive_int, default=None,
                        help="classes of the saved head (default: the source's; a TF-slim "
                             "1001-class head loads into 1000 without its background row)")
    parser.add_argument("--include_top", choices=("true", "false"), default="true",
                        help="keep the classifier head (default true)")
    parser.add_argument("--checkpoint_weights", choices=CHECKPOINT_WEIGHTS, default="auto",
                        help="TF-slim checkpoints: 'average' (ExponentialMovingAverage "
                             "shadows), 'raw', or 'auto' (default: the averages when present)")
    parser.add_argument("--output", required=True, help="output .keras (or .weights.h5) file")
    args = parser.parse_args(argv)
    return runtime.run_command("python -m mobilenet_tf.convert", lambda: _run(args, parser))


def _run(args, parser):
    if not args.output.endswith((".keras", ".weights.h5")):
        parser.error(f"--output must end in .keras or .weights.h5. Received: --output={args.output}")
    problem = fileio.file_problem(args.output)
    if problem:
        parser.error(f"--output: {problem}")
    native.import_tensorflow()
    from mobilenet_tf.model import convert
    try:
        model = convert.convert_weights(args.source, args.output, alpha=args.alpha,
                                        image_size=args.image_size, classes=args.classes,
                                        include_top=args.include_top == "true",
                                        checkpoint_weights=args.checkpoint_weights)
    except ValueError as e:      # the builder's and the loader's refusals of the arguments
        parser.error(str(e))
    print(f"Wrote {args.output} ({model.name}, {model.count_params():,} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
