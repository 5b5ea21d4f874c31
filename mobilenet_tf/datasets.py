"""Image classification data for training: tensorflow-datasets, image folders, synthetic.

A dataset spec names the source:

* ``NAME`` (e.g. ``imagenet2012``, ``tf_flowers``, ``stanford_dogs``,
  ``imagenette``): a tensorflow-datasets dataset with ``image`` and ``label``
  features, read from ``data_dir``. Splits: ``train`` for training; for
  validation ``validation``, else ``test``, else the last
  ``validation_fraction`` of ``train`` held out.
* ``folder:PATH``: one sub-folder per class (``PATH/<class>/<image>``), or
  ``PATH/train/<class>/`` and ``PATH/val/<class>/`` (also ``validation/``).
  When every class folder is an ImageNet WordNet id (``n01514668/``, as ImageNet's
  own train folder), the labels are the 1000-class head's ImageNet indices;
  without a ``val/`` folder, ``validation_fraction`` of each class is held out
  (a fixed, seeded choice). Every file is checked (fully decoded) before
  training starts; files that are not images, cannot be decoded, or are GIFs
  when GIF is not among ``formats`` are left out and reported by name, with a
  count (:attr:`ImageDataset.skipped`). GIF is opt-in: in photo folders GIFs
  are usually "image not found" placeholders or animations.
  Images without labels (``allow_unlabelled``, for distillation from a teacher):
  ``PATH/<images>`` (no validation), or ``PATH/train/<images>`` with
  ``PATH/val/<class>/`` for validation; such a dataset has ``labelled`` False,
  and its classes are those of ``val/`` (None without it: the teacher's).
* ``synthetic``: random uint8 images and labels of the right shape, generated
  on the fly (deterministic per example), for smoke tests and benchmarks.

:func:`load_dataset` finds the data and fails within seconds with one line
(:class:`DatasetError`) saying what is missing and how to provide it;
:func:`train_input` / :func:`eval_input` build the ``tf.data`` pipelines
(parallel decode and preprocessing, seeded per-epoch shuffling, optional
cache, prefetch). The training input is built per epoch and can start at any
step of it, so a resumed run gets the examples it would have got.

No flags are read here.
"""

import concurrent.futures
import dataclasses
import os
import random
import socket

import tensorflow as tf

from mobilenet_tf import imagenet
from mobilenet_tf import images
from mobilenet_tf import labels as labels_lib
from mobilenet_tf import preprocessing
from mobilenet_tf.errors import InputError
from mobilenet_tf.train_options import DEFAULT_FOLDER_FORMATS, FOLDER_FORMATS, parse_dataset_spec

__all__ = ["DatasetError", "ImageDataset", "parse_dataset_spec", "load_dataset", "scan_folder",
           "train_input", "eval_input", "steps_per_epoch", "FOLDER_FORMATS", "DEFAULT_FOLDER_FORMATS",
           "VALIDATION_SPLITS"]

VALIDATION_SPLITS = ("validation", "test")
_FOLDER_VAL_NAMES = ("val", "validation")
_AUTOTUNE = tf.data.AUTOTUNE


class DatasetError(InputError):
    """The data named by a dataset spec is missing or unusable. One-line message (exit 2)."""


@dataclasses.dataclass
class ImageDataset:
    """A classification dataset found by :func:`load_dataset`.

    ``train_source`` / ``validation_source`` yield ``(image, label)`` before
    preprocessing, in a fixed order; ``image`` is encoded bytes when
    ``encoded`` is True (decoded in the pipeline, in parallel), else a uint8
    (h, w, 3) tensor. ``validation_source`` is None when there is no
    validation data. ``epoch_source(epoch)``, when set, gives the training
    examples for one epoch (tfds: files read in an order seeded by the epoch);
    by default every epoch reads ``train_source``.
    """
    spec: str
    num_classes: int
    num_train: int
    num_validation: int
    train_source: tf.data.Dataset
    validation_source: object
    encoded: bool
    class_names: list = None
    skipped: list = dataclasses.field(default_factory=list)   # [(path, reason)]
    description: str = ""
    epoch_source: object = None
    labelled: bool = True      # False: training examples have label -1 (images without labels)
    _cached: dict = dataclasses.field(default_factory=dict, repr=False)


def load_dataset(spec, *, data_dir=None, image_size=224, validation_fraction=0.1,
                 formats=DEFAULT_FOLDER_FORMATS, synthetic_examples=1024, synthetic_classes=1000,
                 download=True, seed=0, log=print, allow_unlabelled=False):
    """Finds the data named by ``spec`` and returns an :class:`ImageDataset`.

    Args:
      spec: see the module docstring.
      data_dir: tensorflow-datasets data directory (None: tfds' default).
      image_size: side of synthetic images.
      validation_fraction: fraction of the training data held out when the
        data has no validation split (0 for none).
      formats: image formats a folder dataset reads, from ``FOLDER_FORMATS``.
      synthetic_examples, synthetic_classes: size of the synthetic dataset.
      download: allow tfds to download a dataset that is not prepared.
      seed: seed of the held-out choice for folders.
      log: callable for progress and report lines.
      allow_unlabelled: accept a folder whose training images have no class sub-folders
        (see the module docstring); without it such a folder is refused, saying so.

    Raises:
      ValueError: a malformed argument.
      DatasetError: the data is not there or unusable (one line, with how to fix).
    """
    kind, value = parse_dataset_spec(spec)
    if not 0 <= validation_fraction < 1:
        raise ValueError("`validation_fraction` must be in [0, 1). "
                         f"Received: validation_fraction={validation_fraction!r}")
    if kind == "synthetic":
        return _synthetic(spec, image_size, synthetic_examples, synthetic_classes, validation_fraction)
    if kind == "folder":
        unlabelled = _unlabelled_layout(value)
        if unlabelled:
            if not allow_unlabelled:
                raise DatasetError(
                    f"folder dataset {value!r} has images but no class sub-folders: images "
                    "without labels train only from a teacher (--teacher, "
                    "--distillation_weight=1); for labels use PATH/<class>/<images>")
            return _unlabelled_folder(spec, value, *unlabelled, formats, log)
        return _folder(spec, value, formats, validation_fraction, seed, log)
    return _tfds(value, data_dir, validation_fraction, download, log)


# --- synthetic ------------------------------------------------------------------------------------

def _synthetic(spec, image_size, num_examples, num_classes, validation_fraction):
    for name, value in (("synthetic_examples", num_examples), ("synthetic_classes", num_classes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    num_val = int(round(num_examples * validation_fraction))
    size = int(image_size)

    def source(offset, count):
        def make(i):
            i = tf.cast(i, tf.int32)
            image = tf.random.stateless_uniform([size, size, 3], seed=tf.stack([i, 7]), maxval=256,
                                                dtype=tf.int32)
            label = tf.random.stateless_uniform([], seed=tf.stack([i, 11]), maxval=num_classes,
                                                dtype=tf.int32)
            return tf.cast(image, tf.uint8), tf.cast(label, tf.int64)
        return tf.data.Dataset.range(offset, offset + count).map(make, num_parallel_calls=_AUTOTUNE)

    return ImageDataset(
        spec=spec, num_classes=num_classes, num_train=num_examples - num_val, num_validation=num_val,
        train_source=source(0, num_examples - num_val),
        validation_source=source(num_examples - num_val, num_val) if num_val else None,
        encoded=False, description=f"synthetic: {num_examples - num_val} train / {num_val} validation "
                                   f"random {size}x{size} images, {num_classes} classes")


# --- folders --------------------------------------------------------------------------------------

def _class_dirs(path):
    return sorted(d for d in os.listdir(path)
                  if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))


def _gif_reason(formats):
    wanted = ",".join(sorted(set(formats) | {"gif"}, key=FOLDER_FORMATS.index))
    return (f"GIF: pass --folder_formats={wanted} (library: formats=) to include GIFs; in photo "
            "folders GIFs are usually placeholders or animations")


def _check_file(path, formats):
    """None if `path` is a usable image, else the reason it is left out (one line)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in images.IMAGE_EXTENSIONS:
        return f"not an image file (extension {ext or 'none'!r})"
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    fmt = images.sniff_format(header)
    if fmt is None:
        return "not a JPEG, PNG, GIF or BMP image"
    if fmt not in formats:
        return _gif_reason(formats) if fmt == "gif" else f"{fmt.upper()} is not among formats {formats}"
    try:
        images.check_image_file(path)
    except images.ImageError as e:
        message = str(e)
        return message[len(path) + 2:] if message.startswith(path + ": ") else message
    return None


def _list_class_files(root, class_names):
    files = []
    for label, name in enumerate(class_names):
        directory = os.path.join(root, name)
        if not os.path.isdir(directory):
            continue
        for entry in sorted(os.listdir(directory)):
            full = os.path.join(directory, entry)
            if entry.startswith(".") or not os.path.isfile(full):
                continue
            files.append((full, label))
    return files


def _check_files(pairs, formats, workers=None):
    """``[(path, reason)]`` of the (path, label) `pairs` that are not usable images (in threads)."""
    with concurrent.futures.ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 1) + 2)) as pool:
        reasons = list(pool.map(lambda item: _check_file(item[0], formats), pairs))
    return [(p, r) for (p, _), r in zip(pairs, reasons) if r is not None]


@dataclasses.dataclass
class FolderScan:
    """Result of :func:`scan_folder`: usable (path, label) pairs and what was left out."""
    class_names: list
    train: list
    validation: list          # None: no val/ folder (hold out from train)
    skipped: list             # [(path, reason)]
    layout: str


def scan_folder(path, formats=DEFAULT_FOLDER_FORMATS, *, workers=None):
    """Lists and checks every file of a folder dataset (see the module docstring).

    Every candidate file is fully decoded once (in ``workers`` threads); files
    that fail are returned in ``skipped`` with the reason, never raised.

    Raises:
      ValueError: unknown entries in ``formats``.
      DatasetError: the folder does not exist, has no class sub-folders, fewer
        than 2 classes, or no usable image.
    """
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FOLDER_FORMATS]
    if unknown or not formats:
        raise ValueError(f"`formats` must be a non-empty subset of {FOLDER_FORMATS}. "
                         f"Received: formats={formats!r}")
    how = ("expected PATH/<class>/<images> or PATH/train/<class>/ and PATH/val/<class>/")
    if not os.path.exists(path):
        raise DatasetError(f"folder dataset {path!r} does not exist ({how})")
    if not os.path.isdir(path):
        raise DatasetError(f"folder dataset {path!r} is not a folder ({how})")
    subdirs = _class_dirs(path)
    val_name = next((n for n in _FOLDER_VAL_NAMES if n in subdirs), None)
    if "train" in subdirs and (val_name or set(subdirs) == {"train"}):
        layout = "train/val" if val_name else "train"
        train_root = os.path.join(path, "train")
        class_names = _class_dirs(train_root)
        val_root = os.path.join(path, val_name) if val_name else None
        if val_root:
            extra = sorted(set(_class_dirs(val_root)) - set(class_names))
            if extra:
                raise DatasetError(f"folder dataset {path!r}: {val_name}/ has classes that train/ "
                                   f"lacks: {extra}")
    else:
        layout = "classes"
        train_root, val_root, class_names = path, None, subdirs
    if len(class_names) < 2:
        raise DatasetError(f"folder dataset {path!r} needs at least 2 class sub-folders, found "
                           f"{len(class_names)} {class_names} ({how})")
    train_files = _list_class_files(train_root, class_names)
    val_files = _list_class_files(val_root, class_names) if val_root else []
    candidates = train_files + val_files
    if not candidates:
        raise DatasetError(f"folder dataset {path!r} has no files in its class folders ({how})")
    skipped = _check_files(candidates, formats, workers)
    bad = {p for p, _ in skipped}
    train = [(p, label) for p, label in train_files if p not in bad]
    validation = [(p, label) for p, label in val_files if p not in bad] if val_root else None
    if not train:
        raise DatasetError(f"folder dataset {path!r} has no usable training image "
                           f"({len(skipped)} files left out, first: {skipped[0][0]}: {skipped[0][1]})")
    return FolderScan(class_names, train, validation, skipped, layout)


def _image_files(directory):
    return [os.path.join(directory, e) for e in sorted(os.listdir(directory))
            if not e.startswith(".") and os.path.isfile(os.path.join(directory, e))
            and os.path.splitext(e)[1].lower() in images.IMAGE_EXTENSIONS]


def _unlabelled_layout(path):
    """``(train_root, val_root or None)`` when the training images of folder `path` have no
    class sub-folders (``PATH/<images>``, or ``PATH/train/<images>`` [+ ``PATH/val/<class>/``]);
    else None."""
    if not os.path.isdir(path):
        return None
    subdirs = _class_dirs(path)
    val_name = next((n for n in _FOLDER_VAL_NAMES if n in subdirs), None)
    if "train" in subdirs and set(subdirs) <= {"train", val_name}:
        train_root = os.path.join(path, "train")
        if not _class_dirs(train_root) and _image_files(train_root):
            return train_root, os.path.join(path, val_name) if val_name else None
        return None
    if not subdirs and _image_files(path):
        return path, None
    return None


def _unlabelled_folder(spec, path, train_root, val_root, formats, log):
    candidates = _image_files(train_root)
    class_names, val_files = None, []
    if val_root:
        class_names = _class_dirs(val_root)
        if len(class_names) < 2:
            raise DatasetError(f"folder dataset {path!r}: {os.path.basename(val_root)}/ needs at "
                               f"least 2 class sub-folders, found {class_names}")
        val_files = _list_class_files(val_root, class_names)
    pairs = [(p, -1) for p in candidates] + val_files
    skipped = _check_files(pairs, formats)
    bad = {p for p, _ in skipped}
    train = [(p, -1) for p in candidates if p not in bad]
    val = [(p, label) for p, label in val_files if p not in bad]
    if skipped:
        log(f"{spec}: left out {len(skipped)} of {len(pairs)} files:")
        for p, reason in skipped:
            log(f"  {p}: {reason}")
    if not train:
        raise DatasetError(f"folder dataset {path!r} has no usable training image")
    log(f"{spec}: {len(train)} training images without labels"
        + (f", {len(val)} validation images in {len(class_names)} classes" if val_root else
           ", no validation") + f"; files left out: {len(skipped)}")
    return ImageDataset(spec=spec, num_classes=len(class_names) if class_names else None,
                        num_train=len(train), num_validation=len(val),
                        train_source=_pairs_source(train), validation_source=_pairs_source(val),
                        encoded=True, class_names=class_names, skipped=skipped,
                        description=f"{spec} (images without labels"
                                    + (" + val/ classes)" if val_root else ")"),
                        labelled=False)


def _pairs_source(pairs):
    if not pairs:
        return None
    paths = tf.constant([p for p, _ in pairs])
    labels = tf.constant([label for _, label in pairs], dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices((paths, labels)).map(
        lambda p, y: (tf.io.read_file(p), y))


def _all_imagenet_ids(class_names):
    """Whether every class folder is named by an ImageNet-1k WordNet id (``n01514668``)."""
    ids = set(imagenet.wordnet_ids())
    return bool(class_names) and all(name in ids for name in class_names)


def _hold_out(pairs, fraction, num_classes, seed):
    """Per class, a seeded choice of round(fraction * n) files (at least 1 when n >= 2)."""
    rng = random.Random(seed)
    train, val = [], []
    by_label = {}
    for pair in pairs:
        by_label.setdefault(pair[1], []).append(pair)
    for label in range(num_classes):
        members = by_label.get(label, [])
        rng.shuffle(members)
        k = int(round(len(members) * fraction))
        if fraction > 0 and len(members) >= 2:
            k = max(1, min(k, len(members) - 1))
        val += members[:k]
        train += members[k:]
    return sorted(train), sorted(val)


def _folder(spec, path, formats, validation_fraction, seed, log):
    scan = scan_folder(path, formats)
    total = len(scan.train) + len(scan.validation or []) + len(scan.skipped)
    if scan.skipped:
        log(f"{spec}: left out {len(scan.skipped)} of {total} files:")
        for p, reason in scan.skipped:
            log(f"  {p}: {reason}")
    train, val = scan.train, scan.validation
    num_classes, class_names = len(scan.class_names), scan.class_names
    if _all_imagenet_ids(class_names):
        # ImageNet's own layout: labels are the 1000-class head's indices, so a pretrained
        # ImageNet head (--init_weights) is kept and scored as it is.
        index = [imagenet.class_index(wnid) for wnid in class_names]
        train = [(p, index[label]) for p, label in train]
        val = None if val is None else [(p, index[label]) for p, label in val]
        num_classes, class_names = imagenet.NUM_CLASSES, labels_lib.label_names(imagenet.NUM_CLASSES)
        log(f"{spec}: the {len(index)} class folders are ImageNet WordNet ids: labels are the "
            f"{imagenet.NUM_CLASSES}-class ImageNet indices (an ImageNet head is kept)")
    if val is None:
        train, val = _hold_out(train, validation_fraction, num_classes, seed)
        how = f"{validation_fraction:g} of train/ held out" if validation_fraction else "no validation"
    else:
        how = "train/ and val/ folders"
    log(f"{spec}: {len(scan.class_names)} classes, {len(train)} training and {len(val)} validation "
        f"images ({how}); files left out: {len(scan.skipped)}")

    return ImageDataset(spec=spec, num_classes=num_classes, num_train=len(train),
                        num_validation=len(val), train_source=_pairs_source(train),
                        validation_source=_pairs_source(val), encoded=True, class_names=class_names,
                        skipped=scan.skipped, description=f"{spec} ({scan.layout} layout)")


# --- tensorflow-datasets --------------------------------------------------------------------------

def _network_reachable(timeout=3.0):
    if any(os.environ.get(v) for v in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")):
        return True   # let tfds try through the proxy
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds(name, data_dir, validation_fraction, download, log):
    import tensorflow_datasets as tfds
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DatasetError(f"dataset {name!r} is not a tensorflow-datasets dataset (see "
                           "https://www.tensorflow.org/datasets/catalog; use 'folder:PATH' for a "
                           "folder of images)") from None
    shown_dir = data_dir or "tfds' default data_dir (~/tensorflow_datasets)"
    if not builder.is_prepared():
        if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
            manual = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                                  "downloads", "manual")
            raise DatasetError(
                f"tfds dataset {name!r} is not prepared in {shown_dir} and needs a manual download: "
                f"put its source files in {manual} as https://www.tensorflow.org/datasets/catalog/"
                f"{name.split('/')[0].split(':')[0]} explains, then run `tfds build {name} "
                f"--data_dir=DIR` and pass --data_dir=DIR")
        if not download:
            raise DatasetError(f"tfds dataset {name!r} is not prepared in {shown_dir} and downloads "
                               f"are off: run `tfds build {name} --data_dir=DIR`, pass --data_dir=DIR")
        if not _network_reachable():
            raise DatasetError(
                f"tfds dataset {name!r} is not prepared in {shown_dir} and the network is not "
                f"reachable to download it: run `tfds build {name} --data_dir=DIR` on a machine with "
                "network, copy DIR here and pass --data_dir=DIR")
        log(f"downloading and preparing tfds dataset {name!r} into {builder.data_dir}")
        builder.download_and_prepare()
    info = builder.info
    features = info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    if "image" not in keys or "label" not in keys:
        raise DatasetError(f"tfds dataset {name!r} has features {keys}; training needs 'image' and "
                           "'label' (an image classification dataset)")
    num_classes = features["label"].num_classes
    splits = info.splits
    if "train" not in splits:
        raise DatasetError(f"tfds dataset {name!r} has no 'train' split (splits: {list(splits)})")
    num_train = splits["train"].num_examples
    val_name = next((s for s in VALIDATION_SPLITS if s in splits), None)
    if val_name:
        train_split, val_split = "train", val_name
        num_val = splits[val_name].num_examples
    elif validation_fraction > 0:
        num_val = max(1, int(round(num_train * validation_fraction)))
        num_train -= num_val
        train_split, val_split = f"train[:{num_train}]", f"train[{num_train}:]"
    else:
        train_split, val_split, num_val = "train", None, 0

    def source(split, shuffle_files, shuffle_seed=0):
        if split is None:
            return None
        ds = builder.as_dataset(split=split, shuffle_files=shuffle_files,
                                decoders={"image": tfds.decode.SkipDecoding()},
                                read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed))
        return ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int64)))

    log(f"tfds {name}: {num_classes} classes, {train_split} ({num_train}) for training, "
        f"{val_split} ({num_val}) for validation")
    names = features["label"].names if hasattr(features["label"], "names") else None
    return ImageDataset(spec=name, num_classes=num_classes, num_train=num_train,
                        num_validation=num_val, train_source=source(train_split, False),
                        validation_source=source(val_split, False), encoded=True, class_names=names,
                        description=f"tfds {name} ({train_split} / {val_split})",
                        epoch_source=lambda epoch: source(train_split, True, shuffle_seed=epoch))


# --- pipelines ------------------------------------------------------------------------------------

def steps_per_epoch(num_examples, batch_size):
    """Full batches per epoch (at least 1)."""
    return max(1, num_examples // batch_size)


def _decode(image):
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _decoded_source(dataset, source, cache):
    if source is None:
        return None
    if dataset.encoded:
        source = source.map(lambda x, y: (_decode(x), y), num_parallel_calls=_AUTOTUNE)
    if cache is not None:
        source = source.cache("" if cache == "memory" else cache)
    return source


def _epoch_source(dataset, epoch, cache):
    """``(examples of `epoch`, still encoded?)``. With a cache: decoded examples, one cached
    dataset shared by all epochs; without: as stored (decoding comes after shuffle and skip,
    so skipped examples are never decoded and the shuffle buffer holds encoded bytes)."""
    if cache is not None:
        key = ("train", cache)
        if key not in dataset._cached:
            dataset._cached[key] = _decoded_source(dataset, dataset.train_source, cache)
        return dataset._cached[key], False
    source = dataset.epoch_source(epoch) if dataset.epoch_source else dataset.train_source
    return source, dataset.encoded


def train_input(dataset, *, batch_size, image_size, epoch=0, skip_steps=0, seed=0,
                shuffle_buffer=10000, min_crop_area=preprocessing.DEFAULT_MIN_CROP_AREA,
                color_distortion=True, cache=None, global_batch_size=None, num_shards=1,
                shard_index=0):
    """The training batches ``(images, one_hot_labels)`` of one epoch, from step `skip_steps` on
    (``images`` alone for a dataset without labels).

    Epoch e is the training examples shuffled with the seed ``(seed, e)`` (a
    buffer of ``min(num_train, shuffle_buffer)`` examples: a full permutation
    when the data fits), cut to ``steps_per_epoch`` full batches. So the
    batches of a step do not depend on where a run was restarted; the random
    crops and colour changes are drawn anew. ``cache``: None, "memory" or a
    file prefix, to keep decoded images (before the random preprocessing).
    Returns exactly ``steps_per_epoch - skip_steps`` batches (when sharded:
    the batches of that many steps for this worker's replicas).

    Distributed training (``mobilenet_tf.distribute.distribute_input``): each
    of ``num_shards`` input pipelines (one per worker) reads every
    ``num_shards``-th example (from ``shard_index``) of that same order, in
    batches of ``batch_size`` (per replica), while ``global_batch_size``
    (default ``batch_size``) sets the epoch and the skipped steps. Together
    the workers read each example once per epoch, and the global batch at a
    step holds the examples it holds on one device; each worker decodes only
    its own examples (without ``cache``).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    global_batch = batch_size if global_batch_size is None else global_batch_size
    if not (isinstance(num_shards, int) and num_shards >= 1 and 0 <= shard_index < num_shards
            and isinstance(global_batch, int) and global_batch % (num_shards * batch_size) == 0):
        raise ValueError(f"a global batch of {global_batch} cannot be read as {num_shards} shards "
                         f"of batches of {batch_size}. Received: global_batch_size={global_batch}, "
                         f"num_shards={num_shards}, shard_index={shard_index}")
    spe = steps_per_epoch(dataset.num_train, global_batch)
    if not 0 <= skip_steps < spe:
        raise ValueError(f"`skip_steps` must be in [0, {spe}). Received: skip_steps={skip_steps!r}")
    source, encoded = _epoch_source(dataset, int(epoch), cache)
    buffer = max(1, min(dataset.num_train, shuffle_buffer))
    # Python-int seeds only: a tensor seed breaks tf.data when the global seed is 0.
    ds = source.shuffle(buffer, seed=(int(seed) * 1_000_003 + int(epoch)) % (2 ** 31 - 1),
                        reshuffle_each_iteration=False)
    ds = ds.repeat().take(spe * global_batch).skip(skip_steps * global_batch)
    if num_shards > 1:
        ds = ds.shard(num_shards, shard_index)
    num_classes = dataset.num_classes

    def prep(image, label):
        if encoded:
            image = _decode(image)
        image = preprocessing.preprocess_for_train(image, image_size, image_size,
                                                   min_crop_area=min_crop_area,
                                                   color_distortion=color_distortion)
        return (image, tf.one_hot(label, num_classes)) if dataset.labelled else image

    ds = ds.map(prep, num_parallel_calls=_AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(_AUTOTUNE)


def eval_input(dataset, *, batch_size, image_size, cache=None, source=None):
    """Validation batches ``(images, one_hot_labels)``, each example once, in order."""
    source = _decoded_source(dataset, source if source is not None else dataset.validation_source,
                             cache)
    if source is None:
        raise DatasetError(f"{dataset.spec} has no validation data (pass a validation fraction > 0)")
    num_classes = dataset.num_classes

    def prep(image, label):
        return (preprocessing.preprocess_for_eval(image, image_size, image_size),
                tf.one_hot(label, num_classes))

    return source.map(prep, num_parallel_calls=_AUTOTUNE).batch(batch_size).prefetch(_AUTOTUNE)
