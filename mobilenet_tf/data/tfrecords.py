"""TF-slim / Model Garden ImageNet TFRecord shards: the features, finding shards, writing them.

The shards TF-slim's ``build_imagenet_data.py`` writes (and Model Garden reads),
``train-00000-of-01024`` ... and ``validation-00000-of-00128``, hold one
``tf.train.Example`` per image with these features (what is read here):

=============================================  ==================================================
``image/encoded``                              the JPEG bytes
``image/class/label``                          1..K (ImageNet: 1..1000, the sorted WordNet ids);
                                               0 is TF-slim's background class, never an image's
``image/object/bbox/{ymin,xmin,ymax,xmax}``    object boxes in [0, 1] (ImageNet: the training
                                               images with a box annotation), which Inception
                                               preprocessing crops around; none: the whole image
``image/filename``                             the source file's name (reported when undecodable)
=============================================  ==================================================

and also ``image/class/synset``, ``image/class/text``, ``image/height``, ``image/width``,
``image/format``, ``image/colorspace``, ``image/channels``, which :func:`write_shards`
writes too. The class names of shards other than ImageNet's are in ``labels.txt`` beside
them (TF-slim's ``dataset_utils.write_label_file`` format: ``1:ants`` per line).

:func:`write_shards` makes such shards from image files (``python -m
mobilenet_tf.write_tfrecords`` is the command); ``mobilenet_tf.data.readers.tfrecord`` reads them
(``tfrecord:`` dataset specs). Each shard is written to a temporary name and renamed
when complete, so a killed writer leaves no partial shard under a final name.

No flags are read here.
"""

import glob
import os
import random
import re

from mobilenet_tf.utils import fileio
from mobilenet_tf.data import images
from mobilenet_tf.errors import InputError
from mobilenet_tf.utils import backend

__all__ = ["TFRecordError", "ENCODED", "LABEL", "FILENAME", "BBOX_KEYS", "LABELS_FILE",
           "IMAGENET_SIZES", "find_shards", "read_label_file", "shard_name", "output_problem",
           "write_shards", "feature_spec"]

ENCODED = "image/encoded"
LABEL = "image/class/label"
FILENAME = "image/filename"
BBOX_KEYS = ("ymin", "xmin", "ymax", "xmax")      # the order sample_distorted_bounding_box takes
LABELS_FILE = "labels.txt"
# TF-slim's datasets/imagenet.py _SPLITS_TO_SIZES, for shards laid out as build_imagenet_data.py
# writes them (1024 training and 128 validation shards): no need to count 1.3 million records.
IMAGENET_SIZES = {("train", 1024): 1281167, ("validation", 128): 50000}
_JPEG_QUALITY = 95


class TFRecordError(InputError):
    """Shards that are missing, damaged or not what they should be. One line (exit status 2)."""


def feature_spec():
    """``tf.io.parse_single_example`` features of TF-slim's ImageNet examples (see the docstring)."""
    tf = backend.tensorflow(backend.TF_DATA)
    spec = {ENCODED: tf.io.FixedLenFeature([], tf.string),
            LABEL: tf.io.FixedLenFeature([], tf.int64),
            FILENAME: tf.io.FixedLenFeature([], tf.string, default_value="")}
    for key in BBOX_KEYS:
        spec[f"image/object/bbox/{key}"] = tf.io.VarLenFeature(tf.float32)
    return spec


def find_shards(pattern, split=None):
    """Sorted files matching glob `pattern`; a directory means its ``<split>-*`` files.

    Raises TFRecordError when nothing matches (naming the pattern).
    """
    shown = pattern
    if os.path.isdir(pattern):
        if split is None:
            raise TFRecordError(f"tfrecord: {pattern!r} is a folder; name the shards with a glob "
                                f"(e.g. {os.path.join(pattern, 'train-*')})")
        pattern = os.path.join(pattern, f"{split}-*")
        shown = f"{pattern} (the {split} shards of folder {shown})"
    files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f)
                   and not os.path.basename(f).startswith(fileio.TEMP_PREFIX))
    if not files:
        raise TFRecordError(f"tfrecord: no file matches {shown}; expected TF-slim / Model Garden "
                            "shards such as train-00000-of-01024 (python -m "
                            "mobilenet_tf.write_tfrecords makes them from an image folder)")
    if shown != pattern:       # a folder: its split's shards must be one write's (issue 27)
        counts = sorted({m.group(1) for m in (_SHARD_COUNT.match(os.path.basename(f))
                                              for f in files) if m})
        if len(counts) > 1:
            raise TFRecordError(
                f"tfrecord: folder {os.path.dirname(pattern)} holds the {split} shards of "
                f"{len(counts)} writes ({', '.join('-of-' + c for c in counts)}): each example "
                "would be read more than once; remove the shards of the older write")
    return files


_SHARD_COUNT = re.compile(r"^[^/]+-\d{5}-of-(\d{5})$")


def read_label_file(directory):
    """``{label: name}`` from ``directory/labels.txt`` (``1:ants`` lines), or None without one.

    Raises TFRecordError for a malformed line.
    """
    path = os.path.join(directory, LABELS_FILE)
    if not os.path.isfile(path):
        return None
    names = {}
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:            # issue 27: was a bare UnicodeDecodeError
        raise TFRecordError(f"{path} is not UTF-8 text (byte {data[e.start]:#04x} at offset "
                            f"{e.start}); TF-slim's labels.txt holds 'LABEL:NAME' lines in "
                            "UTF-8") from None
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip():
            continue
        key, sep, name = line.partition(":")
        if not sep or not key.strip().isdigit():
            raise TFRecordError(f"{path} line {number}: expected 'LABEL:NAME' (TF-slim's "
                                f"labels.txt). Received: {line[:80]!r}")
        if int(key) in names:                  # issue 27: was Keras' "Received: labels [1]"
            raise TFRecordError(f"{path} line {number}: label {int(key)} appears twice (as "
                                f"{names[int(key)]!r} and {name!r}); each label names one "
                                "class")
        names[int(key)] = name
    return names


def shard_name(split, index, count):
    """TF-slim's shard file name: ``train-00003-of-00128``."""
    return f"{split}-{index:05d}-of-{count:05d}"


def _bytes(value):
    tf = backend.tensorflow(backend.TF_DATA)
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    tf = backend.tensorflow(backend.TF_DATA)
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _example(path, label, class_name):
    """(serialized Example, None) for image file `path`, or (None, reason) when it is not usable."""
    tf = backend.tensorflow(backend.TF_DATA)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})"
    fmt = images.sniff_format(data[:16])
    if fmt is None:
        return None, "not a JPEG, PNG, GIF or BMP image"
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        reason = " ".join(str(getattr(e, "message", e)).split())[:200] or "decode failed"
        return None, f"cannot be decoded ({reason})"
    height, width = int(image.shape[0]), int(image.shape[1])
    if not height or not width:
        return None, "image has no pixels"
    if fmt != "jpeg":    # TF-slim converts PNG (and CMYK JPEG) to RGB JPEG; so does this.
        data = tf.io.encode_jpeg(image, quality=_JPEG_QUALITY).numpy()
    name = os.fsencode(class_name)
    features = {
        ENCODED: _bytes(data), LABEL: _int(label), FILENAME: _bytes(os.fsencode(os.path.basename(path))),
        "image/class/synset": _bytes(name), "image/class/text": _bytes(name),
        "image/height": _int(height), "image/width": _int(width), "image/format": _bytes(b"JPEG"),
        "image/colorspace": _bytes(b"RGB"), "image/channels": _int(3),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(), None


def _inside(path, folder):
    """Whether `path` is `folder` or inside it (symbolic links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def output_problem(output_dir, source=None):
    """Why shards cannot be written to `output_dir` (one line), or None: a folder that cannot
    be written, or one inside the image folder `source` (its shards would be read as part of
    that folder)."""
    problem = fileio.folder_problem(output_dir)
    if problem:
        return f"output {problem}"
    if source is not None and _inside(output_dir, source):
        return (f"output {output_dir} is inside the image folder {source}: the shards would be "
                "read as part of it; choose a folder outside it")
    return None


def _stale_shards(output_dir, split, num_shards):
    """The ``<split>-NNNNN-of-MMMMM`` files of `output_dir` that a set of `num_shards` shards
    does not name: an earlier write with another count, which ``tfrecord:DIR`` would read too."""
    pattern = re.compile(rf"^{re.escape(split)}-(\d{{5}})-of-(\d{{5}})$")
    if not os.path.isdir(output_dir):
        return []
    return sorted(os.path.join(output_dir, name) for name in os.listdir(output_dir)
                  if (m := pattern.match(name)) and int(m.group(2)) != num_shards)


def write_shards(splits, class_names, output_dir, *, seed=0, progress=True, source=None):
    """Writes TF-slim ImageNet-style shards of labelled image files; returns what was written.

    Args:
      splits: ``{split: (files, num_shards)}``, ``files`` a list of ``(path, label)`` with
        label in 0..K-1 (stored as label + 1, TF-slim's convention: 0 is the background).
      class_names: the K class names (``image/class/synset`` and ``labels.txt``).
      output_dir: where ``<split>-NNNNN-of-MMMMM`` and ``labels.txt`` go (created if needed).
      seed: the files are shuffled (with this seed) before being dealt into shards, so each
        shard holds every class, as TF-slim's writer does.
      progress: show a ``keras.utils.Progbar``.
      source: the image folder the files come from; an `output_dir` inside it is refused
        (its shards would be read as part of the folder).

    Returns:
      ``{"shards": {split: [paths]}, "examples": {split: n}, "skipped": [(path, reason)],
      "removed": [paths]}``. Files that cannot be decoded are left out and listed in
      ``skipped``; ``removed``: the shards of a split written here that an earlier write with
      another shard count left (removed before the split is written, so that ``tfrecord:DIR``
      never reads an example twice).

    Raises:
      TFRecordError: more shards than files of a split, or an output folder that cannot be
        written or is inside `source` (before anything is written).
    """
    import keras
    tf = backend.tensorflow(backend.TF_DATA)
    problem = output_problem(output_dir, source)
    if problem:
        raise TFRecordError(problem)
    for split, (files, num_shards) in splits.items():
        if not isinstance(num_shards, int) or not 1 <= num_shards <= max(1, len(files)):
            raise TFRecordError(f"{split}: the number of shards must be in [1, {len(files)}] (the "
                                f"{split} images). Received: {split}_shards={num_shards!r}")
    os.makedirs(output_dir, exist_ok=True)
    total = sum(len(files) for files, _ in splits.values())
    bar = keras.utils.Progbar(total, unit_name="image") if progress else None
    written = {"shards": {}, "examples": {}, "skipped": [], "removed": []}
    done = 0
    for split, (files, num_shards) in splits.items():
        for stale in _stale_shards(output_dir, split, num_shards):
            os.remove(stale)
            written["removed"].append(stale)
        order = sorted(files)
        random.Random(seed).shuffle(order)
        paths, count = [], 0
        for index in range(num_shards):
            part = order[index::num_shards]
            path = os.path.join(output_dir, shard_name(split, index, num_shards))
            with fileio.atomic_path(path) as tmp:
                with tf.io.TFRecordWriter(tmp) as writer:
                    for file, label in part:
                        record, reason = _example(file, label + 1, class_names[label])
                        if record is None:
                            written["skipped"].append((file, reason))
                        else:
                            writer.write(record)
                            count += 1
                        done += 1
                        if bar is not None:
                            bar.update(done)
            paths.append(path)
        written["shards"][split] = paths
        written["examples"][split] = count
    fileio.write_text(os.path.join(output_dir, LABELS_FILE),
                      "".join(f"{i + 1}:{name}\n" for i, name in enumerate(class_names)))
    return written
