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

from mobilenet_tf import runtime

__all__ = ["add_model_arguments", "load_classifier", "main"]

_PREPROCESSING_HELP = ("'resize': resize the whole image to the model size, no crop, then "
                       "scale to [-1, 1] (the preprocessing of the reference accuracies in "
                       "shared/data/README.md; the default for Google's weights); "
                       "'central_crop': TF-slim's evaluation, central 87.5%% crop, then resize "
                       "(the default for a train.py run or its export: what its validation used)")


def add_model_arguments(parser):
    """The options that say which model and weights to use, and the preprocessing (shared
    by predict and evaluate)."""
    from mobilenet_tf.imagenet import PREPROCESSINGS
    from mobilenet_tf.weights import CHECKPOINT_WEIGHTS
    parser.add_argument("--model", default=None,
                        help="a train.py run folder, a .keras file, or a .tflite file "
                             "(export_tflite.py), instead of --weights/--alpha/--image_size")
    parser.add_argument("--alpha", type=runtime.positive_float, default=1.0,
                        help="width multiplier α (default 1.0)")
    parser.add_argument("--image_size", type=runtime.positive_int, default=224,
                        help="input height and width (default 224)")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' (default; Google's Keras applications file, downloaded "
                             "into the Keras cache), a .h5/.weights.h5 file or a TF-slim "
                             "checkpoint prefix")
    parser.add_argument("--classes", type=runtime.positive_int, default=None,
                        help="classes of the head: 1000 or 1001 (TF-slim, background first); "
                             "default: what the weights file holds (1000 for 'imagenet')")
    parser.add_argument("--checkpoint_weights", choices=CHECKPOINT_WEIGHTS, default="auto",
                        help="TF-slim checkpoints: 'average' (ExponentialMovingAverage "
                             "shadows), 'raw', or 'auto' (default: the averages when present)")
    parser.add_argument("--preprocessing", choices=PREPROCESSINGS, default=None,
                        help=_PREPROCESSING_HELP)
    parser.add_argument("--batch_size", type=runtime.positive_int, default=32,
                        help="images per forward pass (default 32)")


def load_classifier(args):
    """The classifier the parsed `args` name; sets ``args.preprocessing`` when not given."""
    from mobilenet_tf import errors
    from mobilenet_tf import inference
    try:
        classifier = inference.load_classifier(
            args.model, weights=args.weights, alpha=args.alpha, image_size=args.image_size,
            classes=args.classes, checkpoint_weights=args.checkpoint_weights)
    except errors.InputError as e:
        if args.model is None:
            raise
        raise errors.InputError(f"--model: {errors.one_line(e)}") from None
    except ValueError as e:      # the builder's refusals of --alpha, --image_size, --classes
        raise errors.InputError(errors.one_line(e)) from None
    if args.preprocessing is None:
        args.preprocessing = "central_crop" if classifier.trained_here else "resize"
    return classifier


def main(argv=None):
    parser = runtime.ArgumentParser(
        prog="python -m mobilenet_tf.predict",
        description="Print the top classes of each image file.")
    add_model_arguments(parser)
    parser.add_argument("--top", type=runtime.positive_int, default=5,
                        help="classes to print per image (default 5; at most the model's)")
    parser.add_argument("files", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")
    args = parser.parse_args(argv)
    return runtime.run_command("python -m mobilenet_tf.predict", lambda: _run(args))


def _run(args):
    runtime.import_tensorflow()
    from mobilenet_tf import inference
    classifier = load_classifier(args)
    failed = 0
    for path, rows, error in inference.classify_files(
            classifier, args.files, preprocessing=args.preprocessing, top=args.top,
            batch_size=args.batch_size):
        if error is not None:
            failed += 1
            print(f"error: {error} (skipped)", file=sys.stderr)
            continue
        print(path)
        for rank, (ident, name, prob) in enumerate(rows, 1):
            where = ident if classifier.imagenet else f"class {ident}"
            print(f"  {rank}. {prob:7.2%}  {name} ({where})")
    if failed:
        print(f"{failed} of {len(args.files)} files could not be classified", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
