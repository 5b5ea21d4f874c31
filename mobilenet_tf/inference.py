"""Run a trained MobileNetV1: Google's ImageNet weights, your own ``train.py`` run, or an
exported ``.tflite`` file, behind one interface.

* :func:`load_classifier`: a :class:`Classifier` (the callable model, its input size, the
  names of its outputs, whether they are ImageNet's) from ``model=`` (a ``train.py`` run
  folder, a ``.keras`` file, a ``.tflite`` file) or ``weights=`` with ``alpha`` and
  ``image_size`` (``"imagenet"``, a ``.h5`` file, a TF-slim checkpoint).
* :func:`load_model`: a ``.keras`` file or run folder -> ``(keras model, class names)``.
* :func:`read_labelled_folder`: the images of a labelled folder and their labels in the
  classifier's output indexing: the layouts ``train.py`` reads (class sub-folders, or the
  ``val/`` of a ``train/`` + ``val/`` folder) for any head, and for ImageNet heads also
  WordNet-id sub-folders and the ``labels.csv`` of ``../shared/data/imagenet50``.
* :func:`classify_files`: the top classes of image files; :func:`evaluate_batches`: top-1
  (and top-5 where it means something: at least :data:`MIN_CLASSES_FOR_TOP5` classes).

Library code: the ``predict`` and ``evaluate`` commands and ``export``'s verification call
it; it imports no command-line module.
"""

import csv
import dataclasses
import json
import os
import zipfile

import numpy as np

from mobilenet_tf import imagenet
from mobilenet_tf import labels as labels_lib
from mobilenet_tf.errors import InputError, WeightsError
from mobilenet_tf.labels import MODEL_FILE, SUMMARY_FILE

__all__ = ["MODEL_FILE", "SUMMARY_FILE", "MIN_CLASSES_FOR_TOP5", "TFDS_PREFIX", "Classifier",
           "ModelFileError", "load_model", "load_classifier", "LabelledImages",
           "read_labelled_folder", "classify_files", "folder_batches", "tfds_batches",
           "evaluate_batches", "top_k", "run_dataset", "convert_weights"]

MIN_CLASSES_FOR_TOP5 = 6        # with 5 or fewer classes every label is in the top 5
TFDS_PREFIX = "tfds:"
_FOLDER_VAL_NAMES = ("val", "validation")   # as train.py's folder datasets


class ModelFileError(WeightsError):
    """A ``.keras`` file or run folder that is missing, damaged or not a Keras model (exit 2)."""


def run_dataset(model_path):
    """``(dataset spec, data_dir)`` a ``train.py`` run trained on, from the ``summary.json``
    of a run folder (or beside its ``model.keras``); ``(None, None)`` for anything else."""
    path = os.fspath(model_path)
    model_dir = path if os.path.isdir(path) else (
        os.path.dirname(os.path.abspath(path)) if os.path.basename(path) == MODEL_FILE else None)
    if model_dir is None:
        return None, None
    try:
        with open(os.path.join(model_dir, SUMMARY_FILE), encoding="utf-8") as f:
            config = json.load(f).get("config") or {}
    except (OSError, ValueError, AttributeError):
        return None, None
    spec = config.get("dataset")
    return (spec, config.get("data_dir")) if isinstance(spec, str) and spec else (None, None)


def is_quantization_aware_file(model_path):
    """Whether the ``.keras`` file (or a run folder's ``model.keras``) holds a model made by
    ``mobilenet_tf.qat.quantize_model``, read from the file's ``config.json`` without loading
    it (and without TensorFlow). False for anything unreadable: loading it reports that."""
    path = os.fspath(model_path)
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json").decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return '"mobilenet_tf>QuantizedConv"' in config


def top_k(num_classes, k=5):
    """`k` clipped to the number of classes."""
    return max(1, min(int(k), int(num_classes)))


# --- loading ----------------------------------------------------------------------------------

def load_model(path):
    """``(keras model, class names or None)`` from a ``.keras`` file or a ``train.py`` run
    folder (its ``model.keras``). Class names come from the run's ``summary.json`` (beside
    the ``.keras`` file when that is a run's ``model.keras``).

    Raises ModelFileError (one line) for a missing path, a run without ``model.keras``, a
    file that is damaged or not a ``.keras`` model.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        model_dir, path = path, os.path.join(path, MODEL_FILE)
        if not os.path.isfile(path):
            raise ModelFileError(f"run folder {model_dir} has no {MODEL_FILE} (train.py writes "
                                 "it when training ends)")
    elif not os.path.exists(path):
        raise ModelFileError(f"no such model file or train.py run folder: {path}")
    else:
        model_dir = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) else None
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if names is None and is_zip:
        raise ModelFileError(f"{path} is damaged or truncated: it starts like a .keras zip "
                             "archive but its table of contents is missing")
    if names is None or "config.json" not in names:
        raise ModelFileError(f"{path} is not a Keras .keras model file (a zip with config.json; "
                             "for a .h5 weights file or a TF-slim checkpoint use --weights)")
    import keras
    from mobilenet_tf import qat  # noqa: F401  (registers the quantization-aware layers)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises several types for a damaged or foreign file
        reason = " ".join(str(e).split())[:300]
        raise ModelFileError(f"{path} is damaged or cannot be loaded by Keras "
                             f"({type(e).__name__}: {reason})") from None
    class_names = None
    if os.path.basename(path) == MODEL_FILE:
        class_names = labels_lib.run_class_names(model_dir)
    return model, class_names


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


def _is_keras_model_path(path):
    return os.path.isdir(path) or path.endswith(".keras")


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
            _is_keras_model_path(os.fspath(weights)):
        model, weights = weights, None
    if model is not None:
        path = os.fspath(model)
        from mobilenet_tf import tflite
        is_tflite = path.endswith(".tflite") or tflite.is_tflite_file(path)
        if is_tflite and not _is_keras_model_path(path):
            from mobilenet_tf import metadata
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
        keras_model, class_names = load_model(path)
        shape = tuple(keras_model.input_shape[1:3])
        if None in shape:
            raise InputError(f"{path} has no fixed input size ({shape}); export or predict "
                             "need one")
        num_classes = int(keras_model.output_shape[-1])
        names = labels_lib.label_names(num_classes, class_names)
        is_imagenet = class_names is None and labels_lib.is_imagenet_head(num_classes)
        return Classifier(keras_model, shape, names, is_imagenet, path, trained_here=True)
    from mobilenet_tf import model as model_lib
    from mobilenet_tf import weights as weights_lib
    if classes is None:
        classes = 1000
        if weights not in (None, "imagenet"):
            classes = weights_lib.source_classes(weights) or 1000
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    keras_model = model_lib.MobileNetV1(input_shape=(*size, 3), alpha=alpha, weights=weights,
                                        classes=classes, checkpoint_weights=checkpoint_weights)
    names = labels_lib.label_names(classes)
    return Classifier(keras_model, size, names, labels_lib.is_imagenet_head(classes),
                      str(weights))


# --- labelled folders -------------------------------------------------------------------------

@dataclasses.dataclass
class LabelledImages:
    """Image ``paths`` and their ``labels`` in a classifier's output indexing; ``layout``
    says how the folder was read."""
    paths: list
    labels: list
    layout: str = ""


def _subfolders(directory):
    return sorted(d for d in os.listdir(directory)
                  if not d.startswith(".") and os.path.isdir(os.path.join(directory, d)))


def _imagenet_csv(directory, csv_path, offset):
    paths, labels = [], []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "synset", "class_index"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{csv_path}: needs the columns file,synset,class_index; "
                             f"missing {','.join(sorted(missing))}")
        for line, row in enumerate(reader, 2):
            index = imagenet.class_index(row["synset"])
            if str(index) != row["class_index"].strip():
                raise InputError(f"{csv_path} line {line}: class_index {row['class_index']} "
                                 f"is not the index of {row['synset']} ({index})")
            paths.append(os.path.join(directory, row["file"]))
            labels.append(index + offset)
    return LabelledImages(paths, labels, "labels.csv (ImageNet WordNet ids)")


def read_labelled_folder(directory, classifier_names=None, *, imagenet_head=False):
    """The images of `directory` and their labels as output indices of a classifier whose
    outputs are `classifier_names` (or ImageNet's when `imagenet_head`).

    Layouts, as ``train.py`` reads folders: ``<class>/<images>``, or ``train/<class>/`` with
    ``val/<class>/`` (then ``val/`` is read: the images the run did not train on). A class
    folder must be one of the classifier's names; for an ImageNet head it may also be a
    WordNet id (``n01440764``), and a ``labels.csv`` (``file,synset,class_index``) is read.
    Raises InputError (one line) for a folder that fits none of these.
    """
    from mobilenet_tf import images
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise InputError(f"--images: no such folder: {directory} (or use tfds:NAME[:SPLIT])")
    offset = 0
    if imagenet_head:
        offset = imagenet.label_offset(len(classifier_names)) if classifier_names else 0
        csv_path = os.path.join(directory, "labels.csv")
        if os.path.isfile(csv_path):
            return _imagenet_csv(directory, csv_path, offset)
    subfolders = _subfolders(directory)
    root, layout = directory, "class sub-folders"
    val_name = next((n for n in _FOLDER_VAL_NAMES if n in subfolders), None)
    if "train" in subfolders and val_name:
        root, layout = os.path.join(directory, val_name), f"{val_name}/ of a train/{val_name} folder"
        subfolders = _subfolders(root)
    if not subfolders:
        raise InputError(f"--images: {directory} has no class sub-folders (expected "
                         "<class>/<images>, train/ and val/ with class sub-folders"
                         + (", or labels.csv" if imagenet_head else "") + ")")
    index = {}
    if classifier_names:
        index = {name: i for i, name in enumerate(classifier_names)}
    paths, labels = [], []
    for name in subfolders:
        if name in index:
            label = index[name]
        elif imagenet_head:
            try:
                label = imagenet.class_index(name) + offset
            except ValueError:
                raise InputError(f"--images: sub-folder {os.path.join(root, name)} is neither "
                                 "one of the model's class names nor an ImageNet WordNet id "
                                 "(n01440764 ...)") from None
        else:
            more = ", ..." if len(classifier_names) > 10 else ""
            shown = ", ".join(classifier_names[:10]) + more
            raise InputError(f"--images: sub-folder {os.path.join(root, name)} is not one of the "
                             f"model's {len(classifier_names)} classes ({shown})")
        for path in images.list_image_files(os.path.join(root, name)):
            paths.append(path)
            labels.append(label)
    return LabelledImages(paths, labels, layout)


# --- running ----------------------------------------------------------------------------------

def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def classify_files(classifier, paths, *, preprocessing="resize", top=5, batch_size=32):
    """Yields ``(path, rows, error)`` per file, in order: `rows` lists the top classes as
    ``(id, name, probability)`` — ``id`` the WordNet id for ImageNet heads (as
    ``decode_predictions``), else the output index as a string — or None with `error` the
    one-line message for a file that is not an image. `top` is clipped to the classes."""
    from mobilenet_tf import images
    top = top_k(classifier.num_classes, top)
    for chunk in _batches(list(paths), batch_size):
        loaded, results = [], {}
        for path in chunk:
            try:
                image = images.load_image(path)
            except images.ImageError as e:
                results[path] = (None, str(e))
                continue
            loaded.append((path, imagenet.prepare_image(image, classifier.image_size,
                                                        preprocessing)))
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


def tfds_batches(spec, classifier, data_dir, preprocessing, batch_size):
    """Batches of ``tfds:NAME[:SPLIT]`` (default split ``validation``; nothing is
    downloaded) with labels in `classifier`'s output indexing: by WordNet id for ImageNet
    heads, by class name otherwise. Returns ``(generator, number of examples)``."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    name, _, split = spec[len(TFDS_PREFIX):].partition(":")
    split = split or "validation"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        info = builder.info
        label_names = info.features["label"].names
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
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
    num = info.splits[split].num_examples
    table = tf.constant(np.asarray(mapping, np.int64))
    size = classifier.image_size

    def prepare(image, label):
        return imagenet.prepare_image(image, size, preprocessing), tf.gather(table, label)

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
    from mobilenet_tf import runtime
    num_classes = num_classes or int(model.output_shape[-1])
    with_top5 = num_classes >= MIN_CLASSES_FOR_TOP5
    bar = None
    if progress:      # a live bar on a terminal; redirected, one plain line at the end
        bar = keras.utils.Progbar(num_examples, unit_name="image",
                                  stateful_metrics=["top1", "top5"],
                                  verbose=runtime.progress_verbosity(verbose))
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


def convert_weights(source, output, *, alpha, image_size, classes=None, include_top=True,
                    checkpoint_weights="auto"):
    """Builds MobileNetV1 of `alpha` / `image_size`, loads `source` (anything
    ``weights.load_weights`` reads, or ``"imagenet"``) into it and saves it to `output`
    (``.keras`` or ``.weights.h5``, written atomically). Returns the model."""
    from mobilenet_tf import fileio
    from mobilenet_tf import model as model_lib
    from mobilenet_tf import weights as weights_lib
    if classes is None:
        classes = 1000 if source == "imagenet" else (weights_lib.source_classes(source) or 1000)
    model = model_lib.MobileNetV1(input_shape=(image_size, image_size, 3), alpha=alpha,
                                  include_top=include_top, classes=classes)
    weights_lib.load_weights(model, source, checkpoint_weights=checkpoint_weights)
    fileio.save_model(model, output)
    return model
