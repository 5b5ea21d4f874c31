"""Run a trained MobileNetV1: Google's ImageNet weights, your own ``train.py`` run, or an
exported ``.tflite`` file, behind one interface.

* :func:`load_classifier`: a :class:`Classifier` (the callable model, its input size, the
  names of its outputs, whether they are ImageNet's) from ``model=`` (a ``train.py`` run
  folder, a ``.keras`` file, a ``.tflite`` file) or ``weights=`` with ``alpha`` and
  ``image_size`` (``"imagenet"``, a ``.h5`` file, a TF-slim checkpoint).
* :func:`classify_files`: the top classes of image files; :func:`evaluate_batches`: top-1
  (and top-5 where it means something: at least ``MIN_CLASSES_FOR_TOP5`` classes).

Library code: the ``predict`` and ``evaluate`` commands call it; it imports no command-line
module.
"""

import dataclasses
import os

import numpy as np

from mobilenet_tf.data import preprocessing as preprocessing_lib
from mobilenet_tf.errors import InputError
from mobilenet_tf.model import imagenet
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.model import saved
from mobilenet_tf.model.labels import MIN_CLASSES_FOR_TOP5
from mobilenet_tf.utils import backend

__all__ = ["TFDS_PREFIX", "Classifier", "load_classifier", "classify_files", "folder_batches",
           "tfds_batches", "evaluate_batches", "top_k"]

TFDS_PREFIX = "tfds:"


def top_k(num_classes, k=5):
    """`k` clipped to the number of classes."""
    return max(1, min(int(k), int(num_classes)))


# --- loading ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Classifier:
    """A loaded classifier. ``model(x, training=False)`` maps a batch of [-1, 1] images
    (float32, ``image_size``) to probabilities; ``names`` names its outputs in order;
    ``imagenet`` says they are ImageNet's classes (1000, or 1001 with background first;
    then ``decode_predictions`` and WordNet-id labels apply)."""
    model: object
    image_size: tuple
    names: list
    imagenet: bool
    source: str
    trained_here: bool = False       # a train.py run / .keras / export of one (not Google's)

    @property
    def num_classes(self):
        return len(self.names)

    @property
    def label_offset(self):
        """Index of ImageNet class 0 among the outputs (ImageNet heads only)."""
        return imagenet.label_offset(self.num_classes)


def load_classifier(model=None, *, weights="imagenet", alpha=1.0, image_size=224, classes=None,
                    checkpoint_weights="auto"):
    """A :class:`Classifier` from `model` (a ``train.py`` run folder, a ``.keras`` file, a
    ``.tflite`` file) or, without `model`, a MobileNetV1 of `alpha` / `image_size` with
    `weights` (what ``MobileNetV1(weights=...)`` takes; a ``.keras`` file or run folder
    given as `weights` is loaded as `model`).

    Class names: a run's ``summary.json``; a ``.tflite`` file's metadata (the labels packed
    in it), else its ``<name>_labels.txt``; ImageNet's for a 1000 / 1001 head without names
    or with ImageNet's (Keras' or WordNet's, as Google's files have); else ``class_0``, ...

    Raises InputError / WeightsError (one line) for anything that cannot be loaded.
    """
    if model is None and isinstance(weights, (str, os.PathLike)) and \
            saved.is_keras_model_path(os.fspath(weights)):
        model, weights = weights, None
    if model is not None:
        path = os.fspath(model)
        from mobilenet_tf.export import tflite
        is_tflite = path.endswith(".tflite") or saved.is_tflite_file(path)
        if is_tflite and not saved.is_keras_model_path(path):
            from mobilenet_tf.export import metadata
            runner = tflite.TFLiteClassifier(path)
            names, where = metadata.read_labels(runner.content, path), f"the metadata of {path}"
            if names is None:
                names, where = labels_lib.read_labels(path), labels_lib.labels_path(path)
            if names is not None and len(names) != runner.num_classes:
                raise InputError(f"{where} has {len(names)} labels for a head of "
                                 f"{runner.num_classes} outputs")
            is_imagenet = labels_lib.is_imagenet_labels(names, runner.num_classes)
            names = labels_lib.label_names(runner.num_classes, None if is_imagenet else names)
            return Classifier(runner, tuple(runner.image_size), names, is_imagenet, path,
                              trained_here=not is_imagenet)
        keras_model, class_names = saved.load_model(path)
        shape = tuple(keras_model.input_shape[1:3])
        if None in shape:
            raise InputError(f"{path} has no fixed input size ({shape}); export or predict "
                             "need one")
        num_classes = int(keras_model.output_shape[-1])
        names = labels_lib.label_names(num_classes, class_names)
        is_imagenet = class_names is None and labels_lib.is_imagenet_head(num_classes)
        return Classifier(keras_model, shape, names, is_imagenet, path, trained_here=True)
    keras_model = saved.model_from_weights(weights, alpha=alpha, image_size=image_size,
                                           classes=classes, checkpoint_weights=checkpoint_weights)
    classes = int(keras_model.output_shape[-1])
    names = labels_lib.label_names(classes)
    return Classifier(keras_model, tuple(keras_model.input_shape[1:3]), names,
                      labels_lib.is_imagenet_head(classes), str(weights))


# --- labelled folders -------------------------------------------------------------------------

# --- running ----------------------------------------------------------------------------------

def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def classify_files(classifier, paths, *, preprocessing="resize", top=5, batch_size=32):
    """Yields ``(path, rows, error)`` per file, in order: `rows` lists the top classes as
    ``(id, name, probability)`` — ``id`` the WordNet id for ImageNet heads (as
    ``decode_predictions``), else the output index as a string — or None with `error` the
    one-line message for a file that is not an image. `top` is clipped to the classes."""
    from mobilenet_tf.data import images
    top = top_k(classifier.num_classes, top)
    for chunk in _batches(list(paths), batch_size):
        loaded, results = [], {}
        for path in chunk:
            try:
                image = images.load_image(path)
            except images.ImageError as e:
                results[path] = (None, str(e))
                continue
            loaded.append((path, preprocessing_lib.prepare_image(
                image, classifier.image_size, preprocessing)))
        if loaded:
            batch = np.stack([np.asarray(x) for _, x in loaded])
            probs = np.asarray(classifier.model(batch, training=False))
            if classifier.imagenet:
                rows = imagenet.decode_predictions(probs, top=top)
            else:
                rows = [[(str(i), classifier.names[i], float(p[i]))
                         for i in np.argsort(-p, kind="stable")[:top]] for p in probs]
            for (path, _), decoded in zip(loaded, rows):
                results[path] = (decoded, None)
        for path in chunk:
            yield (path, *results[path])


def folder_batches(data, image_size, preprocessing, batch_size, errors):
    """``(images, labels, files in batch)`` batches of a :class:`LabelledImages`; files that
    are not images are appended to `errors` (one line each) and left out."""
    from mobilenet_tf.data import images
    for start in range(0, len(data.paths), batch_size):
        xs, ys = [], []
        for path, label in zip(data.paths[start:start + batch_size],
                               data.labels[start:start + batch_size]):
            try:
                image = images.load_image(path)
            except images.ImageError as e:
                errors.append(str(e))
                continue
            xs.append(np.asarray(preprocessing_lib.prepare_image(image, image_size, preprocessing)))
            ys.append(label)
        yield (np.stack(xs) if xs else None), np.asarray(ys, dtype=np.int64), \
            len(data.paths[start:start + batch_size])


def tfds_batches(spec, classifier, data_dir, preprocessing, batch_size):
    """Batches of ``tfds:NAME[:SPLIT]`` (default split ``validation``), found by the training
    reader's rules (``mobilenet_tf.data.readers.tfds``) with downloads off, with labels in
    `classifier`'s output indexing: by WordNet id for ImageNet heads, by class name otherwise.
    Returns ``(generator, number of examples)``."""
    tf = backend.tensorflow(backend.TF_DATA)
    from mobilenet_tf.data import decoding
    from mobilenet_tf.data.readers import tfds as tfds_reader
    name, _, split = spec[len(TFDS_PREFIX):].partition(":")
    split = split or "validation"
    try:
        builder = tfds_reader.open_builder(name, data_dir, download=False)
        label_names = tfds_reader.label_feature(builder, name).names
        num = builder.info.splits[split].num_examples
        ds = tfds_reader.examples(builder, split)
    except Exception as e:  # noqa: BLE001 - tfds raises many types for a missing dataset
        reason = " ".join(str(e).split())[:300]
        raise InputError(f"--images={spec}: cannot read the TFDS dataset ({reason})") from None
    index = {n: i for i, n in enumerate(classifier.names)}
    try:
        if classifier.imagenet:
            offset = classifier.label_offset
            mapping = [imagenet.class_index(n) + offset for n in label_names]
        else:
            mapping = [index[n] for n in label_names]
    except (ValueError, KeyError):
        what = "ImageNet WordNet ids" if classifier.imagenet else "the model's class names"
        raise InputError(f"--images={spec}: its label names are not {what}") from None
    table = tf.constant(np.asarray(mapping, np.int64))
    size = classifier.image_size

    def prepare(image, label):
        return (preprocessing_lib.prepare_image(decoding.decode_image(image), size, preprocessing),
                tf.gather(table, label))

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)

    def generate():
        for x, y in ds:
            yield x.numpy(), y.numpy(), int(y.shape[0])
    return generate(), num


def evaluate_batches(model, batches, num_examples, *, num_classes=None, progress=True,
                     verbose=None):
    """Top-1 (and top-5 for :data:`MIN_CLASSES_FOR_TOP5` classes or more) over
    ``(images, labels, files in batch)`` batches, labels in the model's output indexing.

    Returns ``{"top1": correct, "top5": correct or None, "count": scored images}``.
    """
    import keras
    from mobilenet_tf.utils import console
    num_classes = num_classes or int(model.output_shape[-1])
    with_top5 = num_classes >= MIN_CLASSES_FOR_TOP5
    bar = None
    if progress:      # a live bar on a terminal; redirected, one plain line at the end
        bar = keras.utils.Progbar(num_examples, unit_name="image",
                                  stateful_metrics=["top1", "top5"],
                                  verbose=console.progress_verbosity(verbose))
    top1 = top5 = count = seen = 0
    for x, y, files in batches:
        seen += files
        if x is not None and len(x):
            probs = np.asarray(model(x, training=False))
            order = np.argsort(-probs, axis=1, kind="stable")[:, :5]
            top1 += int((order[:, 0] == y).sum())
            top5 += int((order == y[:, None]).any(axis=1).sum())
            count += len(y)
        if bar is not None:
            values = [("top1", top1 / max(count, 1))]
            if with_top5:
                values.append(("top5", top5 / max(count, 1)))
            bar.update(seen, values=values, finalize=False)
    if bar is not None:
        bar.update(seen, finalize=True)
    return {"top1": top1, "top5": top5 if with_top5 else None, "count": count}
