"""Top-1 / top-5 ImageNet accuracy of a pretrained MobileNetV1 on a labelled image set.

    python -m mobilenet_tf.evaluate --alpha=0.75 --image_size=192 --weights=imagenet \\
        --images=../shared/data/imagenet50
    python -m mobilenet_tf.evaluate --weights=imagenet --images=tfds:imagenet2012:validation

``--images`` is one of
  * a folder with ``labels.csv`` (columns ``file,synset,class_index``: the
    imagenet50 layout; class_index is the 0..999 index of the sorted WordNet id);
  * a folder of class subfolders named by WordNet id (``n01440764/*.JPEG``,
    the ImageNet validation layout);
  * ``tfds:NAME[:SPLIT]``, a TensorFlow Datasets dataset whose label names are
    ImageNet WordNet ids (``imagenet2012``, ``imagenet_v2``, ...; default split
    ``validation``, read from ``--tfds_data_dir``; nothing is downloaded).
A 1001-class (TF-slim) head is scored with its background class shifted out.
Files that are not images are reported by name and skipped; the exit status is
then 1.
"""

import csv
import os
import sys

from mobilenet_tf import predict
from mobilenet_tf import runtime

__all__ = ["LabelledImages", "read_labelled_folder", "evaluate_batches", "main"]

TFDS_PREFIX = "tfds:"


class LabelledImages:
    """``paths`` and their 0..999 ImageNet ``labels`` from a folder."""

    def __init__(self, paths, labels):
        self.paths, self.labels = list(paths), list(labels)


def read_labelled_folder(directory):
    """Reads a folder in the imagenet50 layout (labels.csv) or the WordNet-id subfolder
    layout; raises ValueError (one line) for anything else."""
    from mobilenet_tf import imagenet
    from mobilenet_tf import images
    if not os.path.isdir(directory):
        raise ValueError(f"--images: no such folder: {directory} (or use tfds:NAME[:SPLIT])")
    csv_path = os.path.join(directory, "labels.csv")
    if os.path.isfile(csv_path):
        paths, labels = [], []
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"file", "synset", "class_index"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{csv_path}: needs the columns file,synset,class_index; "
                                 f"missing {','.join(sorted(missing))}")
            for line, row in enumerate(reader, 2):
                index = imagenet.class_index(row["synset"])
                if str(index) != row["class_index"].strip():
                    raise ValueError(f"{csv_path} line {line}: class_index {row['class_index']} "
                                     f"is not the index of {row['synset']} ({index})")
                paths.append(os.path.join(directory, row["file"]))
                labels.append(index)
        return LabelledImages(paths, labels)
    subfolders = sorted(d for d in os.listdir(directory)
                        if os.path.isdir(os.path.join(directory, d)))
    if not subfolders:
        raise ValueError(f"--images: {directory} has neither labels.csv nor class subfolders "
                         "named by WordNet id")
    paths, labels = [], []
    for name in subfolders:
        try:
            index = imagenet.class_index(name)
        except ValueError:
            raise ValueError(f"--images: subfolder {os.path.join(directory, name)} is not named "
                             "by an ImageNet WordNet id (n01440764 ...)") from None
        for path in images.list_image_files(os.path.join(directory, name)):
            paths.append(path)
            labels.append(index)
    return LabelledImages(paths, labels)


def _folder_batches(data, image_size, preprocessing, batch_size, errors):
    import numpy as np
    from mobilenet_tf import imagenet
    from mobilenet_tf import images
    for start in range(0, len(data.paths), batch_size):
        xs, ys = [], []
        for path, label in zip(data.paths[start:start + batch_size],
                               data.labels[start:start + batch_size]):
            try:
                image = images.load_image(path)
            except images.ImageError as e:
                errors.append(str(e))
                continue
            xs.append(np.asarray(imagenet.prepare_image(image, image_size, preprocessing)))
            ys.append(label)
        yield (np.stack(xs) if xs else None), np.asarray(ys, dtype=np.int64), \
            len(data.paths[start:start + batch_size])


def _tfds_batches(spec, data_dir, image_size, preprocessing, batch_size):
    """Batches from ``tfds:NAME[:SPLIT]``; returns (generator, number of examples)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from mobilenet_tf import imagenet
    name, _, split = spec[len(TFDS_PREFIX):].partition(":")
    split = split or "validation"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        info = builder.info
        label_names = info.features["label"].names
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except Exception as e:  # tfds raises many types for a missing/undownloaded dataset
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"--images={spec}: cannot read the TFDS dataset ({reason})") from None
    try:
        mapping = np.array([imagenet.class_index(n) for n in label_names], dtype=np.int64)
    except ValueError:
        raise ValueError(f"--images={spec}: its label names are not ImageNet WordNet ids") from None
    num = info.splits[split].num_examples
    table = tf.constant(mapping)

    def prepare(image, label):
        return imagenet.prepare_image(image, image_size, preprocessing), tf.gather(table, label)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)

    def generate():
        for x, y in ds:
            yield x.numpy(), y.numpy(), int(y.shape[0])
    return generate(), num


def evaluate_batches(model, batches, num_examples, *, progress=True):
    """Top-1 / top-5 over ``(images, labels, files_in_batch)`` batches (labels 0..999).

    Returns ``{"top1": correct, "top5": correct, "count": scored images}``. A
    1001-class head's background output is dropped before ranking.
    """
    import keras
    import numpy as np
    from mobilenet_tf import imagenet
    offset = imagenet.label_offset(model.output_shape[-1])
    bar = None
    if progress:
        # A live bar on a terminal; redirected, one plain line at the end.
        bar = keras.utils.Progbar(num_examples, unit_name="image", stateful_metrics=["top1", "top5"],
                                  verbose=runtime.progress_verbosity())
    top1 = top5 = count = seen = 0
    for x, y, files in batches:
        seen += files
        if x is not None and len(x):
            probs = np.asarray(model(x, training=False))[:, offset:]
            top = np.argsort(-probs, axis=1, kind="stable")[:, :5]
            top1 += int((top[:, 0] == y).sum())
            top5 += int((top == y[:, None]).any(axis=1).sum())
            count += len(y)
        if bar is not None:
            bar.update(seen, values=[("top1", top1 / max(count, 1)),
                                     ("top5", top5 / max(count, 1))], finalize=False)
    if bar is not None:
        bar.update(seen, finalize=True)
    return {"top1": top1, "top5": top5, "count": count}


def main(argv=None):
    parser = runtime.ArgumentParser(
        prog="python -m mobilenet_tf.evaluate",
        description="Top-1 and top-5 ImageNet accuracy over a labelled image set.")
    predict.add_model_arguments(parser)
    parser.add_argument("--images", required=True,
                        help="a folder (labels.csv with file,synset,class_index, or WordNet-id "
                             "subfolders) or tfds:NAME[:SPLIT] (default split 'validation')")
    parser.add_argument("--tfds_data_dir", default=None,
                        help="TFDS data_dir for --images=tfds:... (default: TFDS' own)")
    parser.add_argument("--limit", type=predict._positive_int, default=None,
                        help="score only the first N images (folders only)")
    args = parser.parse_args(argv)
    return runtime.run_command("python -m mobilenet_tf.evaluate", lambda: _run(args, parser))


def _run(args, parser):
    runtime.import_tensorflow()
    errors = []
    if not args.images.startswith(TFDS_PREFIX):
        try:
            data = read_labelled_folder(args.images)
        except ValueError as e:
            parser.error(str(e))
        if args.limit:
            data = LabelledImages(data.paths[:args.limit], data.labels[:args.limit])
        if not data.paths:
            parser.error(f"--images: no image files in {args.images}")
    model = predict.build_model(args, parser)
    try:
        if args.images.startswith(TFDS_PREFIX):
            batches, num = _tfds_batches(args.images, args.tfds_data_dir, args.image_size,
                                         args.preprocessing, args.batch_size)
        else:
            batches = _folder_batches(data, args.image_size, args.preprocessing,
                                      args.batch_size, errors)
            num = len(data.paths)
        result = evaluate_batches(model, batches, num)
    except ValueError as e:
        parser.error(str(e))
    for error in errors:
        print(f"error: {error} (skipped)", file=sys.stderr)
    n = result["count"]
    print(f"images: {n}" + (f" ({len(errors)} skipped)" if errors else ""))
    for k in ("top1", "top5"):
        print(f"{k[:3]}-{k[3]} accuracy: {result[k]}/{n} = {result[k] / max(n, 1):.4f}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
