"""Classify image files with a MobileNetV1 and print each one's top classes.

    python -m mobilenet_tf.predict --alpha=0.75 --image_size=192 --weights=imagenet cat.jpg dog.png
    python -m mobilenet_tf.predict --model=runs/quickstart ant.jpg        # a train.py run
    python -m mobilenet_tf.predict --model=runs/quickstart/mobilenet_int8.tflite ant.jpg

``--model`` takes a ``train.py`` run folder, its ``model.keras`` (class names from the
run's ``summary.json``) or a ``.tflite`` file (names from its TFLite metadata, else from
the ``<model>_labels.txt`` beside it); without it, ``--weights`` / ``--alpha`` /
``--image_size`` build Google's ImageNet model (``imagenet``, a ``.h5`` file or a
TF-slim checkpoint prefix). ``--top`` is clipped to the number of classes. A file that
is not a decodable JPEG/PNG/GIF/BMP image is reported by name and skipped (exit
status 1); bad arguments exit 2. A thin command over ``mobilenet_tf.inference``.
"""

import sys

from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.cli.model_args import add_model_arguments, check_model_arguments, load_classifier
from mobilenet_tf.utils import native

__all__ = ["add_model_arguments", "load_classifier", "main"]


def main(argv=None):
    parser = cli_args.ArgumentParser(
        prog="python -m mobilenet_tf.predict",
        description="Print the top classes of each image file.")
    add_model_arguments(parser)
    parser.add_argument("--top", type=cli_args.positive_int, default=5,
                        help="classes to print per image (default 5; at most the model's)")
    parser.add_argument("files", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")
    args = check_model_arguments(parser, parser.parse_args(argv))
    return runtime.run_command("python -m mobilenet_tf.predict", lambda: _run(args))


def _run(args):
    native.import_tensorflow()
    from mobilenet_tf.inference import classifier as inference
    classifier = load_classifier(args)
    if args.model is None:         # issue 27: --image_size=10000 grew to 8 GB, unbounded
        from mobilenet_tf import errors
        from mobilenet_tf.model import memory
        problem = memory.memory_problem(args.alpha, classifier.image_size[0],
                                        min(args.batch_size, len(args.files)), training=False)
        if problem:
            raise errors.InputError(problem)
    failed = 0
    for path, rows, error in inference.classify_files(
            classifier, args.files, preprocessing=args.preprocessing, top=args.top,
            batch_size=args.batch_size):
        if error is not None:
            failed += 1
            print(f"{PROG}: error: {error} (skipped)", file=sys.stderr)
            continue
        print(path)
        for rank, (ident, name, prob) in enumerate(rows, 1):
            where = ident if classifier.imagenet else f"class {ident}"
            print(f"  {rank}. {prob:7.2%}  {name} ({where})")
    if failed:
        print(f"{PROG}: error: {failed} of {len(args.files)} files could not be classified",
              file=sys.stderr)
        return 1
    return 0


PROG = "python -m mobilenet_tf.predict"     # its lines on stderr start with it (issue 27)


if __name__ == "__main__":
    sys.exit(main())
