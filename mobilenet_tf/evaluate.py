"""Top-1 (and top-5) accuracy of a MobileNetV1 on a labelled image set.

    python -m mobilenet_tf.evaluate --alpha=0.75 --image_size=192 --weights=imagenet \\
        --images=../shared/data/imagenet50
    python -m mobilenet_tf.evaluate --weights=imagenet --images=tfds:imagenet2012:validation
    python -m mobilenet_tf.evaluate --model=runs/quickstart --images=../shared/data/hymenoptera

The model is chosen as in ``mobilenet_tf.predict`` (``--model`` for a ``train.py`` run,
its ``model.keras`` or a ``.tflite`` export). ``--images`` is
  * a folder in a layout ``train.py`` reads: class sub-folders named by the model's
    classes, or ``train/`` + ``val/`` (then ``val/`` is scored);
  * for ImageNet heads also WordNet-id sub-folders (the ImageNet validation layout) or
    a ``labels.csv`` (``file,synset,class_index``: ``../shared/data/imagenet50``);
  * ``tfds:NAME[:SPLIT]``, a TensorFlow Datasets dataset labelled with the model's class
    names or, for ImageNet heads, WordNet ids (default split ``validation``, read from
    ``--tfds_data_dir``; nothing is downloaded).
Top-5 is reported for 6 classes or more. Files that are not images are reported by
name and skipped (exit status 1). A thin command over ``mobilenet_tf.inference.classifier``.
"""

import os
import sys

from mobilenet_tf.cli import model_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.utils import native

__all__ = ["main"]


def main(argv=None):
    parser = cli_args.ArgumentParser(
        prog="python -m mobilenet_tf.evaluate",
        description="Top-1 and top-5 accuracy over a labelled image set.")
    model_args.add_model_arguments(parser)
    parser.add_argument("--images", required=True,
                        help="a folder (class sub-folders, train/ + val/, WordNet-id "
                             "sub-folders or labels.csv) or tfds:NAME[:SPLIT]")
    parser.add_argument("--tfds_data_dir", default=None,
                        help="TFDS data_dir for --images=tfds:... (default: TFDS' own)")
    parser.add_argument("--limit", type=cli_args.positive_int, default=None,
                        help="score only the first N images (folders only)")
    args = model_args.check_model_arguments(parser, parser.parse_args(argv))
    return runtime.run_command("python -m mobilenet_tf.evaluate", lambda: _run(args))


def _run(args):
    native.import_tensorflow()
    from mobilenet_tf.inference import classifier as inference
    from mobilenet_tf.data import labelled
    from mobilenet_tf.errors import InputError
    errors = []
    if args.images.startswith(inference.TFDS_PREFIX):
        classifier = model_args.load_classifier(args)
        batches, num = inference.tfds_batches(args.images, classifier, args.tfds_data_dir,
                                              args.preprocessing, args.batch_size)
        where = args.images
    else:
        if not os.path.isdir(args.images):
            raise InputError(f"--images: no such folder: {args.images} (or use "
                             "tfds:NAME[:SPLIT])")
        classifier = model_args.load_classifier(args)
        data = labelled.read_labelled_folder(args.images, classifier.names,
                                             imagenet_head=classifier.imagenet)
        if args.limit:
            data = labelled.LabelledImages(data.paths[:args.limit], data.labels[:args.limit],
                                           data.layout)
        if not data.paths:
            raise InputError(f"--images: no image files in {args.images}")
        batches = inference.folder_batches(data, classifier.image_size, args.preprocessing,
                                           args.batch_size, errors)
        num, where = len(data.paths), f"{args.images} ({data.layout})"
    result = inference.evaluate_batches(classifier.model, batches, num,
                                        num_classes=classifier.num_classes)
    for error in errors:
        print(f"{PROG}: error: {error} (skipped)", file=sys.stderr)
    n = result["count"]
    print(f"images: {n}" + (f" ({len(errors)} skipped)" if errors else "") + f" from {where}; "
          f"{classifier.num_classes} classes; preprocessing {args.preprocessing}")
    for k in ("top1", "top5"):
        if result[k] is not None:
            print(f"{k[:3]}-{k[3]} accuracy: {result[k]}/{n} = {result[k] / max(n, 1):.4f}")
    return 1 if errors else 0


PROG = "python -m mobilenet_tf.evaluate"     # its lines on stderr start with it (issue 27)


if __name__ == "__main__":
    sys.exit(main())
