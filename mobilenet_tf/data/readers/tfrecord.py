"""The TFRecord reader (``tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]`` or ``tfrecord:DIR``, its
``train-*`` and ``validation-*``): TF-slim / Model Garden ImageNet shards.

The shard format is ``mobilenet_tf.data.tfrecords``: ``image/encoded``, ``image/class/label``
1..K, optional ``image/object/bbox/*`` (which the training crops use). ``background_class``:
a K+1-class head with TF-slim's class 0 and the labels as stored (1001 for ImageNet); default
a K-class head, label - 1. The first records of a shard are checked at start; the examples are
counted once (TF-slim's ImageNet sizes known) and the counts kept in the run folder. Shards
are read interleaved and in parallel, in an order seeded per epoch, and with several input
pipelines split by file.
"""

import concurrent.futures
import dataclasses
import json
import logging
import os
import random
import re

from mobilenet_tf.utils import fileio
from mobilenet_tf.data import tfrecords
from mobilenet_tf.data.readers.base import ImageDataset
from mobilenet_tf.model import imagenet
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["TFRecordDataset", "load", "pipeline_error"]

logger = logging.getLogger(__name__)

_COUNTS_FILE = "tfrecord_counts.json"
_LABEL_RANGE = "a stored label is outside"


def _op_reason(error):
    """A TensorFlow op error's message on one line, without the ``{{function_node ...}}`` and
    ``[Op:...]`` decorations TensorFlow adds, cut to 160 characters."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name:\S*)?", "",
                  str(getattr(error, "message", error)))
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


_KINDS = {"int64_list": ("an int64", "int64"), "bytes_list": ("bytes", "bytes"),
          "float_list": ("a float", "float")}


def _feature_problem(raw):
    """What is wrong with the label and image features of one serialized example, in words
    (issue 27: a label stored as bytes, a float or two values was called missing), or None."""
    try:
        features = tf.train.Example.FromString(raw).features.feature
    except Exception:          # not an Example: the caller says so
        return None
    for key, kind in ((tfrecords.LABEL, "int64_list"), (tfrecords.ENCODED, "bytes_list")):
        if key not in features:
            return f"its examples have no {key!r} feature"
        stored = features[key].WhichOneof("kind")
        if stored != kind:
            return (f"its examples' {key!r} is stored as {_KINDS.get(stored, (stored,))[0]} "
                    f"({stored}), not as {_KINDS[kind][0]} ({kind})")
        values = len(getattr(features[key], kind).value)
        if values != 1:
            return f"its examples' {key!r} holds {values} values, not one"
    return None


def _probe_shard(path, num_labels, records=8):
    """Parses the first `records` examples of shard `path`; TFRecordError (one line) when it is
    not a TFRecord file of TF-slim examples or a label is out of 1..num_labels."""
    spec = tfrecords.feature_spec()
    try:
        for raw in tf.data.TFRecordDataset(path).take(records):
            try:
                example = tf.io.parse_single_example(raw, spec)
            except tf.errors.InvalidArgumentError as e:
                what = _feature_problem(raw.numpy())
                if what is None:
                    missing = [k for k in (tfrecords.ENCODED, tfrecords.LABEL) if k in str(e)]
                    what = (f"its examples have no {missing[0]!r} feature" if missing else
                            "its records are not tf.train.Example protos")
                raise tfrecords.TFRecordError(
                    f"tfrecord: {path}: {what}; expected TF-slim's ImageNet features "
                    f"({tfrecords.ENCODED}, {tfrecords.LABEL} 1..K)") from None
            label = int(example[tfrecords.LABEL])
            if not 1 <= label <= num_labels:
                raise tfrecords.TFRecordError(
                    f"tfrecord: {path}: label {label} is outside 1..{num_labels} (TF-slim's "
                    f"{tfrecords.LABEL}: classes 1..K, 0 the background, K from labels.txt beside "
                    "the shards, else 1000 for ImageNet)")
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        reason = _op_reason(e)
        raise tfrecords.TFRecordError(f"tfrecord: {path} is not a TFRecord file or is damaged "
                                      f"({reason})") from None
    except tf.errors.OpError as e:
        reason = _op_reason(e)
        raise tfrecords.TFRecordError(f"tfrecord: {path} cannot be read ({reason})") from None


def _count_records(path):
    try:
        return int(tf.data.TFRecordDataset(path, buffer_size=1 << 22).reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1))
    except tf.errors.OpError as e:
        reason = _op_reason(e)
        raise tfrecords.TFRecordError(f"tfrecord: {path} is not a TFRecord file or is damaged "
                                      f"({reason})") from None


def _load_counts(cache_dir):
    try:
        with open(os.path.join(cache_dir, _COUNTS_FILE), encoding="utf-8") as fh:
            cached = json.load(fh)
        return cached if isinstance(cached, dict) else {}
    except (OSError, TypeError, ValueError):
        return {}


def _shard_counts(files, split, cached):
    """Examples in `files`: TF-slim's ImageNet sizes for its 1024 / 128 shards, else counted
    (one read of every shard, in threads) and kept in `cached` (``{path: [size, mtime, n]}``,
    saved in the run folder) so that a resumed run counts only shards that changed."""
    names = [os.path.basename(f) for f in files]
    known = tfrecords.IMAGENET_SIZES.get((split, len(files)))
    if known and all(n == tfrecords.shard_name(split, i, len(files)) for i, n in enumerate(names)):
        return known, f"TF-slim's ImageNet {split} size"
    stamps = {}
    for f in files:
        st = os.stat(f)
        stamps[os.path.abspath(f)] = [st.st_size, st.st_mtime_ns]
    todo = [f for f in files if (cached.get(os.path.abspath(f)) or [None])[:2] != stamps[os.path.abspath(f)]]
    if todo:
        logger.info(f"tfrecord: counting the examples of {len(todo)} {split} shard(s) (once; kept "
                    "in the run folder)")
        with concurrent.futures.ThreadPoolExecutor(min(8, len(todo))) as pool:
            for f, n in zip(todo, pool.map(_count_records, todo)):
                cached[os.path.abspath(f)] = stamps[os.path.abspath(f)] + [n]
    total = sum(cached[os.path.abspath(f)][2] for f in files)
    return total, ("counted" if todo else "counted before, unchanged")


def _read_shards(files, mapper, cycle_length=16):
    """Records of `files` (in that order, interleaved, parallel, deterministic) through `mapper`."""
    files = list(files)
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20).map(lambda r: (r, f)),
        cycle_length=max(1, min(cycle_length, len(files))), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.map(mapper, num_parallel_calls=tf.data.AUTOTUNE)


def pipeline_error(error):
    """The one-line message of an error that a TFRecord pipeline raises on purpose (a label
    outside 1..K, met while reading), from the TensorFlow error `error` that carries it; None
    for any other error."""
    text = str(getattr(error, "message", error))
    found = re.search(r"\[([^\[\]]*" + _LABEL_RANGE + r"[^\[\]]*)\]", text)
    if found is None:
        return None
    value = re.search(r"\[x \([^)]*\) = \] \[(-?\d+)\]", text)
    message = found.group(1).replace("\\'", "'")
    if value:
        message = message.replace(_LABEL_RANGE, f"a stored label ({value.group(1)}) is outside", 1)
    return message


def _parser(spec, num_labels, num_classes, background_class):
    """``(raw record, shard path) -> ({"encoded", "name", "bbox"}, label)``, failing with the
    message :func:`pipeline_error` finds for a label outside 1..num_labels."""
    offset = 0 if background_class else 1
    features = tfrecords.feature_spec()
    range_message = (f"{spec}: {_LABEL_RANGE} 1..{num_labels} (0 is the background class of "
                     f"TF-slim, for which the {num_classes}-class head has no output)")

    def parse(raw, shard):
        ex = tf.io.parse_single_example(raw, features)
        label = ex[tfrecords.LABEL] - offset
        with tf.control_dependencies([
                tf.debugging.assert_greater_equal(ex[tfrecords.LABEL], tf.constant(1, tf.int64),
                                                  message=range_message),
                tf.debugging.assert_less_equal(ex[tfrecords.LABEL],
                                               tf.constant(num_labels, tf.int64),
                                               message=range_message)]):
            label = tf.identity(label)
        boxes = tf.stack([tf.sparse.to_dense(ex[f"image/object/bbox/{k}"])
                          for k in tfrecords.BBOX_KEYS], axis=1)
        name = tf.strings.join([shard, ex[tfrecords.FILENAME]], separator=": ")
        return {"encoded": ex[tfrecords.ENCODED], "name": name, "bbox": boxes}, label
    return parse


@dataclasses.dataclass(eq=False)
class TFRecordDataset(ImageDataset):
    """TFRecord shards: ``train_files`` (read in an order seeded by ``seed`` and the epoch),
    ``parse`` (a record and its shard -> example), ``shard_counts`` (``{path: [size,
    mtime_ns, examples]}``, kept in the run folder)."""
    train_files: list = None
    parse: object = None
    seed: int = 0
    shard_counts: dict = None
    _noted: set = dataclasses.field(default_factory=set, init=False, repr=False)

    boxes = True

    def epoch_files(self, epoch):
        order = list(self.train_files)
        random.Random(f"{self.seed}/{epoch}").shuffle(order)
        return order

    def epoch_source(self, epoch):
        return _read_shards(self.epoch_files(epoch), self.parse)

    def shard_source(self, epoch, num_shards, shard_index):
        """Files `shard_index`, `shard_index` + `num_shards`, ... of the epoch's order when
        there are at least `num_shards` files, else None; says which, once per pipeline."""
        count = len(self.train_files)
        by_file = count >= num_shards
        note = (num_shards, shard_index if by_file else None)
        if note not in self._noted:
            self._noted.add(note)
            logger.info(
                f"{self.spec}: input pipeline {shard_index} of {num_shards} reads shards "
                f"{shard_index}, {shard_index + num_shards}, ... of each epoch's order "
                f"({len(range(shard_index, count, num_shards))} of {count})" if by_file else
                f"{self.spec}: {count} shard(s) for {num_shards} input pipelines: fewer shards "
                "than pipelines, so every pipeline reads every shard and keeps every "
                f"{num_shards}-th example")
        if not by_file:
            return None
        return _read_shards(self.epoch_files(epoch)[shard_index::num_shards], self.parse)

    def save(self, directory):
        """Writes the shard counts to `directory`."""
        if self.shard_counts:
            os.makedirs(directory, exist_ok=True)
            fileio.write_text(os.path.join(directory, _COUNTS_FILE), json.dumps(self.shard_counts))


def _find(value):
    """``(train files, validation files or None)`` of a ``tfrecord:`` spec's value."""
    train_pattern, val_pattern = value
    if val_pattern is None and os.path.isdir(train_pattern):
        train_files = tfrecords.find_shards(train_pattern, "train")
        try:
            val_files = tfrecords.find_shards(train_pattern, "validation")
        except tfrecords.TFRecordError:
            val_files = None
    else:
        train_files = tfrecords.find_shards(train_pattern)
        val_files = tfrecords.find_shards(val_pattern) if val_pattern else None
    return train_files, val_files


def _class_names(directory):
    """``(class names 1..K, where they came from)``: ``labels.txt`` in `directory`, else
    ImageNet's 1000."""
    names = tfrecords.read_label_file(directory)
    if names is None:
        return list(imagenet.class_names()), "no labels.txt: ImageNet's 1000 classes"
    num_labels = max(names) if names else 0
    if sorted(names) != list(range(1, num_labels + 1)) or num_labels < 2:
        raise tfrecords.TFRecordError(
            f"{os.path.join(directory, tfrecords.LABELS_FILE)}: labels must be 1..K with K >= 2, "
            f"each once. Received: labels {sorted(names)[:10]}")
    return [names[i] for i in range(1, num_labels + 1)], "labels.txt"


def load(spec, value, background_class, seed, manifest_dir):
    """The :class:`TFRecordDataset` of a ``tfrecord:`` spec (its ``value``, as
    ``parse_dataset_spec`` gives it); shard counts reused from `manifest_dir`."""
    train_files, val_files = _find(value)
    class_names, source_names = _class_names(os.path.dirname(train_files[0]))
    num_labels = len(class_names)
    for f in [train_files[0]] + (val_files[:1] if val_files else []):
        _probe_shard(f, num_labels)
    cached = _load_counts(manifest_dir) if manifest_dir else {}
    num_train, how_train = _shard_counts(train_files, "train", cached)
    num_val, how_val = _shard_counts(val_files, "validation", cached) if val_files else (0, "")
    num_classes = num_labels + (1 if background_class else 0)
    if background_class:
        class_names = ["background"] + class_names
    parse = _parser(spec, num_labels, num_classes, background_class)
    logger.info(f"{spec}: {len(train_files)} training shards ({num_train} examples, {how_train}), "
                + (f"{len(val_files)} validation shards ({num_val} examples, {how_val})"
                   if val_files else "no validation shards")
                + f"; {num_classes} classes ({source_names}"
                + (", background class 0 and the labels as stored)" if background_class
                   else ", label - 1: no background class)"))
    return TFRecordDataset(
        spec=spec, num_classes=num_classes, num_train=num_train, num_validation=num_val,
        train_source=_read_shards(train_files, parse),
        validation_source=_read_shards(val_files, parse) if val_files else None,
        encoded=True, class_names=class_names,
        description=f"{spec} ({len(train_files)} + {len(val_files or [])} TFRecord shards)",
        train_files=train_files, parse=parse, seed=seed, shard_counts=cached)
