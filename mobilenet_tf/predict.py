"""Classify image files with a pretrained MobileNetV1 and print each one's top classes.

    python -m mobilenet_tf.predict --alpha=0.75 --image_size=192 --weights=imagenet cat.jpg dog.png
    python -m mobilenet_tf.predict --model=mobilenet.tflite cat.jpg     # an export_tflite.py file

For each image, the top-5 ImageNet classes (WordNet lemma and id) and their
probabilities. A file that is not a decodable JPEG/PNG/GIF/BMP image is
reported by name and skipped; the exit status is 1 if any file failed, 2 for
bad arguments. ``--weights`` takes what ``MobileNetV1(weights=...)`` takes:
``imagenet``, a Keras ``.h5`` / ``.keras`` / ``.weights.h5`` file or a TF-slim
checkpoint prefix (its 1001-class head is kept unless ``--classes=1000``).

The model-building options here are shared with ``mobilenet_tf.evaluate``.
"""

import argparse
import sys

from mobilenet_tf import runtime

__all__ = ["add_model_arguments", "build_model", "classify_files", "main"]

_PREPROCESSING_HELP = ("'resize' (default): resize the whole image to the model size, no crop, "
                       "then scale to [-1, 1] (the preprocessing of the reference accuracies in "
                       "shared/data/README.md); 'central_crop': TF-slim's evaluation, central "
                       "87.5%% crop, then resize")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def add_model_arguments(parser):
    """The options that say which model and weights to use, and the preprocessing."""
    from mobilenet_tf.weights import CHECKPOINT_WEIGHTS
    from mobilenet_tf.imagenet import PREPROCESSINGS
    parser.add_argument("--alpha", type=_positive_float, default=1.0,
                        help="width multiplier α (default 1.0)")
    parser.add_argument("--image_size", type=_positive_int, default=224,
                        help="input height and width (default 224)")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' (default; Google's Keras applications file, downloaded "
                             "into the Keras cache), a .h5/.keras/.weights.h5 file or a TF-slim "
                             "checkpoint prefix")
    parser.add_argument("--classes", type=_positive_int, default=None,
                        help="classes of the head: 1000 or 1001 (TF-slim, background first); "
                             "default: what the weights file holds (1000 for 'imagenet')")
    parser.add_argument("--checkpoint_weights", choices=CHECKPOINT_WEIGHTS, default="auto",
                        help="TF-slim checkpoints: 'average' (ExponentialMovingAverage "
                             "shadows), 'raw', or 'auto' (default: the averages when present)")
    parser.add_argument("--preprocessing", choices=PREPROCESSINGS, default="resize",
                        help=_PREPROCESSING_HELP)
    parser.add_argument("--batch_size", type=_positive_int, default=32,
                        help="images per forward pass (default 32)")


def build_model(args, parser):
    """MobileNetV1 for parsed `args`; argument problems end in ``parser.error`` (exit 2)."""
    from mobilenet_tf import imagenet
    from mobilenet_tf import model as model_lib
    from mobilenet_tf import weights as weights_lib
    try:
        classes = args.classes
        if classes is None:
            classes = 1000
            if args.weights != "imagenet":
                classes = weights_lib.source_classes(args.weights) or 1000
        imagenet.label_offset(classes)
        return model_lib.MobileNetV1(
            input_shape=(args.image_size, args.image_size, 3), alpha=args.alpha,
            weights=args.weights, classes=classes, checkpoint_weights=args.checkpoint_weights)
    except ValueError as e:
        parser.error(str(e))


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _decode_with_labels(probs, labels, top):
    """Like ``decode_predictions`` for a head with its own labels: ``(index, name, p)`` rows."""
    import numpy as np
    if len(labels) != probs.shape[-1]:
        raise ValueError(f"{len(labels)} labels for a head of {probs.shape[-1]} outputs")
    return [[(str(i), labels[i], float(row[i])) for i in np.argsort(-row)[:top]] for row in probs]


def classify_files(model, paths, *, image_size, preprocessing="resize", top=5, batch_size=32,
                   labels=None):
    """Yields ``(path, decoded, error)`` per file, in order: `decoded` is the list of
    ``(wordnet_id, name, probability)`` from ``decode_predictions`` (or ``(class index,
    label, probability)`` when `labels` names the head's classes), or None with
    `error` the one-line ``ImageError`` message for a file that is not an image."""
    import numpy as np
    from mobilenet_tf import imagenet
    from mobilenet_tf import images
    for chunk in _batches(list(paths), batch_size):
        loaded, results = [], {}
        for path in chunk:
            try:
                image = images.load_image(path)
            except images.ImageError as e:
                results[path] = (None, str(e))
                continue
            loaded.append((path, imagenet.prepare_image(image, image_size, preprocessing)))
        if loaded:
            batch = np.stack([np.asarray(x) for _, x in loaded])
            probs = np.asarray(model(batch, training=False))
            decoded_rows = (imagenet.decode_predictions(probs, top=top) if labels is None
                            else _decode_with_labels(probs, labels, top))
            for (path, _), decoded in zip(loaded, decoded_rows):
                results[path] = (decoded, None)
        for path in chunk:
            yield (path, *results[path])


def main(argv=None):
    parser = runtime.ArgumentParser(
        prog="python -m mobilenet_tf.predict",
        description="Print the top ImageNet classes of each image file.")
    add_model_arguments(parser)
    parser.add_argument("--top", type=_positive_int, default=5,
                        help="classes to print per image (default 5)")
    parser.add_argument("--model", default=None,
                        help="a .tflite file (export_tflite.py) run with the LiteRT interpreter, "
                             "instead of --weights/--alpha/--image_size; class names from the "
                             "<model>_labels.txt written beside it, else ImageNet's")
    parser.add_argument("files", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")
    args = parser.parse_args(argv)
    return runtime.run_command("python -m mobilenet_tf.predict", lambda: _run(args, parser))


def _run(args, parser):
    runtime.import_tensorflow()
    if args.model is not None:  # the .tflite runner has the Keras call interface used below
        from mobilenet_tf import tflite
        try:
            model = tflite.TFLiteClassifier(args.model)
        except ValueError as e:
            parser.error(f"--model: {e}")
        args.image_size = model.image_size
        from mobilenet_tf import export
        labels = export.read_labels(args.model)
        if labels is not None and len(labels) != model.output_shape[-1]:
            parser.error(f"--model: {export.labels_path(args.model)} has {len(labels)} labels "
                         f"for a head of {model.output_shape[-1]} outputs")
        if labels is not None and model.output_shape[-1] in (1000, 1001) and \
                labels == export.label_names(model.output_shape[-1]):
            labels = None     # ImageNet's own: decode_predictions also gives the WordNet ids
    else:
        model = build_model(args, parser)
        labels = None
    if args.top > model.output_shape[-1]:
        parser.error(f"--top must be at most {model.output_shape[-1]}. Received: --top={args.top}")
    failed = 0
    for path, decoded, error in classify_files(model, args.files, image_size=args.image_size,
                                               preprocessing=args.preprocessing, top=args.top,
                                               batch_size=args.batch_size, labels=labels):
        if error is not None:
            failed += 1
            print(f"error: {error} (skipped)", file=sys.stderr)
            continue
        print(path)
        for rank, (wnid, name, prob) in enumerate(decoded, 1):
            print(f"  {rank}. {prob:7.2%}  {name} ({'class ' if labels else ''}{wnid})")
    if failed:
        print(f"{failed} of {len(args.files)} files could not be classified", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
