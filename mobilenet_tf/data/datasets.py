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
  (a fixed, seeded choice). Nothing is decoded before training starts: each
  file gets a cheap check (extension, magic bytes, the size in PNG/GIF/BMP
  headers), class by class, into a *manifest* of files and labels
  (``train.tsv``, ``validation.tsv``, ``manifest.json`` with a fingerprint of
  the listing: names, sizes, mtimes), which :func:`save_manifest` keeps in the
  run folder and ``manifest_dir`` reuses when the listing is unchanged (a
  resumed run opens no file to start). Files that fail the check, or are GIFs
  when GIF is not among ``formats``, are left out and reported by name, with a
  count (:attr:`ImageDataset.skipped`); files that pass but cannot be decoded
  are skipped when the pipeline meets them, each named once
  (:func:`skipped_during_training`), and training goes on. GIF is opt-in: in
  photo folders GIFs are usually "image not found" placeholders or animations.
  Images without labels (``allow_unlabelled``, for distillation from a teacher):
  ``PATH/<images>`` (no validation), or ``PATH/train/<images>`` with
  ``PATH/val/<class>/`` for validation; such a dataset has ``labelled`` False,
  and its classes are those of ``val/`` (None without it: the teacher's).
* ``tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]`` or ``tfrecord:DIR`` (its
  ``train-*`` and ``validation-*``): TF-slim / Model Garden ImageNet shards
  (``mobilenet_tf.data.tfrecords``: ``image/encoded``, ``image/class/label``
  1..K, optional ``image/object/bbox/*``, which the training crops use).
  ``background_class``: a K+1-class head with TF-slim's class 0 and the labels
  as stored (1001 for ImageNet); default a K-class head, label - 1. Shards are
  read interleaved and in parallel, in an order seeded per epoch, and with
  several workers split by file.
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
import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import weakref

import tensorflow as tf

from mobilenet_tf.utils import fileio
from mobilenet_tf.model import imagenet
from mobilenet_tf.data import images
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.data import preprocessing
from mobilenet_tf.data import tfrecords
from mobilenet_tf.errors import InputError
from mobilenet_tf.data.options import DEFAULT_FOLDER_FORMATS, FOLDER_FORMATS, parse_dataset_spec

__all__ = ["DatasetError", "ImageDataset", "parse_dataset_spec", "load_dataset", "scan_folder",
           "train_input", "eval_input", "steps_per_epoch", "FOLDER_FORMATS", "DEFAULT_FOLDER_FORMATS",
           "VALIDATION_SPLITS", "MANIFEST_DIR", "save_manifest", "skipped_during_training",
           "pipeline_error"]

VALIDATION_SPLITS = ("validation", "test")
# The archives tfds' manually downloaded datasets need in <data_dir>/downloads/manual.
MANUAL_FILES = {"imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")}
MANUAL_SOURCES = {"imagenet2012": "https://image-net.org/download-images, after registering"}
_FOLDER_VAL_NAMES = ("val", "validation")
_AUTOTUNE = tf.data.AUTOTUNE
# Examples tried for decoding at once, each in its own one-element dataset (so at most this many
# decodes run in parallel): one per core, at least 8 to cover waits on storage. (A fixed 8 would
# leave the cores of a large GPU machine idle; cycle_length=AUTOTUNE gave 1 here.)
_DECODE_CYCLE = max(8, os.cpu_count() or 1)


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
    shard_source: object = None   # TFRecord: (epoch, num_shards, index) -> that pipeline's files
    num_files: int = 0            # TFRecord: training shards
    boxes: bool = False           # examples carry object boxes for the training crop
    manifest: dict = None         # folder: {"dir", "info"} of its manifest
    shard_counts: dict = None     # TFRecord: {path: [size, mtime_ns, examples]}
    log: object = None            # where pipelines report skipped files
    _cached: dict = dataclasses.field(default_factory=dict, repr=False)


def load_dataset(spec, *, data_dir=None, image_size=224, validation_fraction=0.1,
                 formats=DEFAULT_FOLDER_FORMATS, synthetic_examples=1024, synthetic_classes=1000,
                 download=True, seed=0, log=print, allow_unlabelled=False, manifest_dir=None,
                 background_class=False):
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
      manifest_dir: where a previous run kept this data's manifest (a folder's files and
        labels, a TFRecord dataset's shard sizes): reused when the data is unchanged. New
        manifests are made in a temporary folder; :func:`save_manifest` keeps them.
      background_class: TFRecord shards: a head with TF-slim's background class 0.

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
        return _folder(spec, value, formats, validation_fraction, seed, log, manifest_dir)
    if kind == "tfrecord":
        return _tfrecord(spec, value, background_class, seed, log, manifest_dir)
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


def _header_size(fmt, header):
    """``(width, height)`` from the first 32 bytes of a PNG, GIF or BMP file; None for JPEG (its
    size is in a frame header at no fixed place) or a header too short to hold it."""
    if fmt == "png" and len(header) >= 24:
        return struct.unpack(">II", header[16:24])
    if fmt == "gif" and len(header) >= 10:
        return struct.unpack("<HH", header[6:10])
    if fmt == "bmp" and len(header) >= 26:
        width, height = struct.unpack("<ii", header[18:26])
        return width, abs(height)
    return None


def _check_file(path, formats, decode=False):
    """None if `path` looks like a usable image, else the reason it is left out (one line).

    The check reads the first 32 bytes: extension, format (magic bytes), and for PNG, GIF and
    BMP the size in the header. ``decode=True`` also decodes the whole file (the check before
    manifests, which took about half an hour for ImageNet on 2 cores); without it a file that
    passes but cannot be decoded is skipped when training meets it (see :func:`train_input`).
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in images.IMAGE_EXTENSIONS:
        return f"not an image file (extension {ext or 'none'!r})"
    if "\t" in path or "\n" in path or "\r" in path:
        return "the file name holds a tab or line break, which the manifest cannot store"
    try:
        fd = os.open(path, os.O_RDONLY)        # not open(): no buffered file object per file
        try:
            header = os.read(fd, 32)
        finally:
            os.close(fd)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not header:
        return "empty file"
    fmt = images.sniff_format(header)
    if fmt is None:
        return "not a JPEG, PNG, GIF or BMP image"
    if fmt not in formats:
        return _gif_reason(formats) if fmt == "gif" else f"{fmt.upper()} is not among formats {formats}"
    size = _header_size(fmt, header)
    if size is not None and (size[0] <= 0 or size[1] <= 0):
        return "image has no pixels"
    if decode:
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
        files += [(full, label) for full, _, _ in _entries(directory)]
    return files


def _entries(directory):
    """Sorted ``(path, size, mtime_ns)`` of the visible files of `directory` (one stat each)."""
    found = []
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue
            found.append((entry.path, st.st_size, st.st_mtime_ns))
    found.sort()
    return found


_PROBE_FILES = 256            # header checks timed before choosing threads or not
_THREADS_ABOVE_SECONDS = 50e-6   # per header check: slower means waiting on storage, not Python
_CHUNK_FILES = 256            # header checks per thread-pool task


def _check_files(pairs, formats, workers=None, decode=False):
    """``[(path, reason)]`` of the (path, label) `pairs` that are not usable images.

    Full decodes run in ``workers`` threads, one file per task (TensorFlow releases the GIL
    while decoding). Header checks run in threads only when storage makes them slow (a network
    file system, a cold disk): the first ``_PROBE_FILES`` are timed, and above
    ``_THREADS_ABOVE_SECONDS`` a file the rest go to the threads in chunks. A file served from
    memory or a local SSD costs about 15 us of Python, and spreading such checks over threads
    made them 2 to 6 times slower here (GIL handoffs around every system call)."""
    threads = workers or min(8, (os.cpu_count() or 1) + 2)
    if decode:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            reasons = list(pool.map(lambda item: _check_file(item[0], formats, True), pairs))
        return [(p, r) for (p, _), r in zip(pairs, reasons) if r is not None]

    def check(chunk):
        return [_check_file(path, formats) for path, _ in chunk]

    start = time.perf_counter()
    reasons, rest = check(pairs[:_PROBE_FILES]), pairs[_PROBE_FILES:]
    if rest and (time.perf_counter() - start) / _PROBE_FILES <= _THREADS_ABOVE_SECONDS:
        reasons, rest = reasons + check(rest), []
    if rest:
        chunks = [rest[i:i + _CHUNK_FILES] for i in range(0, len(rest), _CHUNK_FILES)]
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for part in pool.map(check, chunks):
                reasons += part
    return [(p, r) for (p, _), r in zip(pairs, reasons) if r is not None]


@dataclasses.dataclass
class FolderScan:
    """Result of :func:`scan_folder`: usable (path, label) pairs and what was left out."""
    class_names: list
    train: list
    validation: list          # None: no val/ folder (hold out from train)
    skipped: list             # [(path, reason)]
    layout: str


_HOW = "expected PATH/<class>/<images> or PATH/train/<class>/ and PATH/val/<class>/"


def _check_formats(formats):
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FOLDER_FORMATS]
    if unknown or not formats:
        raise ValueError(f"`formats` must be a non-empty subset of {FOLDER_FORMATS}. "
                         f"Received: formats={formats!r}")
    return formats


def _folder_layout(path):
    """``(layout, train_root, val_root or None, class_names)`` of a labelled folder dataset."""
    if not os.path.exists(path):
        raise DatasetError(f"folder dataset {path!r} does not exist ({_HOW})")
    if not os.path.isdir(path):
        raise DatasetError(f"folder dataset {path!r} is not a folder ({_HOW})")
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
                           f"{len(class_names)} {class_names} ({_HOW})")
    return layout, train_root, val_root, class_names


def scan_folder(path, formats=DEFAULT_FOLDER_FORMATS, *, workers=None, decode=False):
    """Lists and checks every file of a folder dataset (see the module docstring), in memory.

    Each candidate file gets the cheap check (its first 32 bytes, in ``workers``
    threads), or a full decode with ``decode=True``; files that fail are returned in
    ``skipped`` with the reason, never raised. Training uses the manifest
    (:func:`load_dataset`), which does the same check class by class into files.

    Raises:
      ValueError: unknown entries in ``formats``.
      DatasetError: the folder does not exist, has no class sub-folders, fewer
        than 2 classes, or no usable image.
    """
    formats = _check_formats(formats)
    layout, train_root, val_root, class_names = _folder_layout(path)
    train_files = _list_class_files(train_root, class_names)
    val_files = _list_class_files(val_root, class_names) if val_root else []
    candidates = train_files + val_files
    if not candidates:
        raise DatasetError(f"folder dataset {path!r} has no files in its class folders ({_HOW})")
    skipped = _check_files(candidates, formats, workers, decode)
    bad = {p for p, _ in skipped}
    train = [(p, label) for p, label in train_files if p not in bad]
    validation = [(p, label) for p, label in val_files if p not in bad] if val_root else None
    if not train:
        raise DatasetError(f"folder dataset {path!r} has no usable training image "
                           f"({len(skipped)} files left out, first: {skipped[0][0]}: {skipped[0][1]})")
    return FolderScan(class_names, train, validation, skipped, layout)


# --- the folder manifest: files and labels, kept in the run folder ---------------------------------

MANIFEST_DIR = "folder_manifest"
_MANIFEST_FILE = "manifest.json"
_MANIFEST_VERSION = 1


def _walk_folder(path):
    """``(layout, class_names, [(label, split, entries)])`` with ``entries`` from :func:`_entries`,
    one class at a time (a generator: the listing of one class is in memory at once)."""
    layout, train_root, val_root, class_names = _folder_layout(path)

    def classes():
        for label, name in enumerate(class_names):
            for split, root in (("train", train_root), ("validation", val_root)):
                directory = os.path.join(root, name) if root else None
                if directory and os.path.isdir(directory):
                    yield label, split, _entries(directory)
                elif root:
                    yield label, split, []
    return layout, class_names, classes()


def _manifest_key(path, formats, validation_fraction, seed):
    return {"version": _MANIFEST_VERSION, "folder": os.path.abspath(path), "formats": list(formats),
            "validation_fraction": validation_fraction, "seed": seed}


def _fingerprint_update(digest, split, label, entries):
    digest.update(f"{split}\0{label}\0".encode())
    for p, size, mtime in entries:
        digest.update(os.fsencode(p) + f"\0{size}\0{mtime}\n".encode())


def _folder_fingerprint(path):
    """sha256 of the folder's listing: class names, file names, sizes and mtimes (no file read)."""
    layout, class_names, classes = _walk_folder(path)
    digest = hashlib.sha256(json.dumps([layout, class_names]).encode())
    for label, split, entries in classes:
        _fingerprint_update(digest, split, label, entries)
    return digest.hexdigest()


def _read_manifest(directory):
    try:
        with open(os.path.join(directory, _MANIFEST_FILE), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not all(os.path.isfile(os.path.join(directory, f"{s}.tsv")) for s in ("train", "validation")):
        return None
    return info if isinstance(info, dict) else None


def _build_manifest(path, formats, validation_fraction, seed, out_dir, workers=None):
    """Lists and checks the folder class by class into ``out_dir/{train,validation}.tsv``
    (``label<TAB>path`` lines) and returns the manifest's description (a dict)."""
    layout, class_names, classes = _walk_folder(path)
    digest = hashlib.sha256(json.dumps([layout, class_names]).encode())
    rng = random.Random(seed)      # the same draws as _hold_out over the whole list
    counts = {"train": 0, "validation": 0}
    skipped, total = [], 0
    with open(os.path.join(out_dir, "train.tsv"), "w", encoding="utf-8", errors="surrogateescape") \
            as train_file, open(os.path.join(out_dir, "validation.tsv"), "w", encoding="utf-8",
                                errors="surrogateescape") as val_file:
        out = {"train": train_file, "validation": val_file}

        def write(split, label, paths):
            out[split].writelines(f"{label}\t{p}\n" for p in paths)
            counts[split] += len(paths)

        for label, split, entries in classes:
            _fingerprint_update(digest, split, label, entries)
            pairs = [(p, label) for p, _, _ in entries]
            total += len(pairs)
            bad = _check_files(pairs, formats, workers)
            skipped += bad
            bad = {p for p, _ in bad}
            good = [p for p, _ in pairs if p not in bad]
            if layout == "train/val":
                write(split, label, good)
                continue
            members = sorted(good)
            rng.shuffle(members)
            k = int(round(len(members) * validation_fraction))
            if validation_fraction > 0 and len(members) >= 2:
                k = max(1, min(k, len(members) - 1))
            write("validation", label, sorted(members[:k]))
            write("train", label, sorted(members[k:]))
    if total == 0:
        raise DatasetError(f"folder dataset {path!r} has no files in its class folders ({_HOW})")
    if counts["train"] == 0:
        raise DatasetError(f"folder dataset {path!r} has no usable training image "
                           f"({len(skipped)} files left out, first: {skipped[0][0]}: {skipped[0][1]})")
    return {"key": _manifest_key(path, formats, validation_fraction, seed),
            "fingerprint": digest.hexdigest(), "layout": layout, "class_names": class_names,
            "num_train": counts["train"], "num_validation": counts["validation"],
            "files": total, "skipped": [list(s) for s in skipped]}


def save_manifest(dataset, directory):
    """Keeps what :func:`load_dataset` learnt about the data in `directory` (the run folder's
    ``MANIFEST_DIR``), atomically: a folder's manifest (unless it was read from there), a
    TFRecord dataset's shard counts. A no-op for other datasets."""
    if dataset.shard_counts:
        os.makedirs(directory, exist_ok=True)
        fileio.write_text(os.path.join(directory, _COUNTS_FILE), json.dumps(dataset.shard_counts))
    manifest = dataset.manifest
    if not manifest or os.path.abspath(manifest["dir"]) == os.path.abspath(directory):
        return
    os.makedirs(directory, exist_ok=True)
    for name in ("train.tsv", "validation.tsv", _MANIFEST_FILE):     # manifest.json last
        with fileio.atomic_path(os.path.join(directory, name)) as tmp:
            shutil.copyfile(os.path.join(manifest["dir"], name), tmp)


def _folder(spec, path, formats, validation_fraction, seed, log, manifest_dir=None):
    formats = _check_formats(formats)
    key = _manifest_key(path, formats, validation_fraction, seed)
    info, where = None, None
    if manifest_dir and os.path.isdir(manifest_dir):
        saved = _read_manifest(manifest_dir)
        if saved is not None and saved.get("key") == key:
            if saved.get("fingerprint") == _folder_fingerprint(path):
                info, where = saved, manifest_dir
                log(f"{spec}: the folder is unchanged since its manifest was made: reusing "
                    f"{manifest_dir} ({info['files']} files, no file opened)")
            else:
                log(f"{spec}: the folder changed since its manifest in {manifest_dir} was made "
                    "(files added, removed or modified): making a new one")
    if info is None:
        where = tempfile.mkdtemp(prefix="mobilenet_tf_manifest_")
        try:
            info = _build_manifest(path, formats, validation_fraction, seed, where)
        except BaseException:
            shutil.rmtree(where, ignore_errors=True)
            raise
        with open(os.path.join(where, _MANIFEST_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f)
        skipped = info["skipped"]
        if skipped:
            log(f"{spec}: left out {len(skipped)} of {info['files']} files:")
            for p, reason in skipped:
                log(f"  {p}: {reason}")
    train_n, val_n = info["num_train"], info["num_validation"]
    num_classes, class_names, label_map = len(info["class_names"]), info["class_names"], None
    if _all_imagenet_ids(class_names):
        # ImageNet's own layout: labels are the 1000-class head's indices, so a pretrained
        # ImageNet head (--init_weights) is kept and scored as it is.
        label_map = [imagenet.class_index(wnid) for wnid in class_names]
        num_classes, class_names = imagenet.NUM_CLASSES, labels_lib.label_names(imagenet.NUM_CLASSES)
        log(f"{spec}: the {len(label_map)} class folders are ImageNet WordNet ids: labels are the "
            f"{imagenet.NUM_CLASSES}-class ImageNet indices (an ImageNet head is kept)")
    if info["layout"] == "train/val":
        how = "train/ and val/ folders"
    else:
        how = f"{validation_fraction:g} of train/ held out" if validation_fraction else "no validation"
    log(f"{spec}: {len(info['class_names'])} classes, {train_n} training and {val_n} validation "
        f"images ({how}); files left out: {len(info['skipped'])} (header check; files that cannot "
        "be decoded are skipped when met, and named)")
    data = ImageDataset(
        spec=spec, num_classes=num_classes, num_train=train_n, num_validation=val_n,
        train_source=_manifest_source(os.path.join(where, "train.tsv"), label_map),
        validation_source=(_manifest_source(os.path.join(where, "validation.tsv"), label_map)
                           if val_n else None),
        encoded=True, class_names=class_names,
        skipped=[tuple(x) for x in info["skipped"]], description=f"{spec} ({info['layout']} layout)",
        manifest={"dir": where, "info": info}, log=log)
    if where != manifest_dir:
        weakref.finalize(data, shutil.rmtree, where, True)
    return data


def _manifest_source(tsv, label_map=None):
    """``({"path": path}, label)`` of each ``label<TAB>path`` line of `tsv`, in order; the file
    is read when the example is decoded (so the shuffle buffer holds paths, not images).
    `label_map`: the label each class folder's index stands for (WordNet-id folders)."""
    mapping = None if label_map is None else tf.constant(label_map, tf.int64)

    def parse(line):
        parts = tf.strings.split(line, "\t", maxsplit=1)
        label = tf.strings.to_number(parts[0], tf.int64)
        return {"path": parts[1]}, label if mapping is None else tf.gather(mapping, label)
    return tf.data.TextLineDataset(tsv).map(parse, num_parallel_calls=_AUTOTUNE)


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
                        labelled=False, log=log)


def _pairs_source(pairs):
    if not pairs:
        return None
    paths = tf.constant([p for p, _ in pairs])
    labels = tf.constant([label for _, label in pairs], dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(({"path": paths}, labels))


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


# --- TFRecord shards (TF-slim / Model Garden) ------------------------------------------------------

_COUNTS_FILE = "tfrecord_counts.json"


def _op_reason(error):
    """A TensorFlow op error's message on one line, without the ``{{function_node ...}}`` and
    ``[Op:...]`` decorations TensorFlow adds, cut to 160 characters."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name:\S*)?", "",
                  str(getattr(error, "message", error)))
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _probe_shard(path, num_labels, records=8):
    """Parses the first `records` examples of shard `path`; TFRecordError (one line) when it is
    not a TFRecord file of TF-slim examples or a label is out of 1..num_labels."""
    spec = tfrecords.feature_spec()
    try:
        for raw in tf.data.TFRecordDataset(path).take(records):
            try:
                example = tf.io.parse_single_example(raw, spec)
            except tf.errors.InvalidArgumentError as e:
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


def _shard_counts(files, split, cached, log):
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
        log(f"tfrecord: counting the examples of {len(todo)} {split} shard(s) (once; kept in the run "
            "folder)")
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
        num_parallel_calls=_AUTOTUNE, deterministic=True)
    return ds.map(mapper, num_parallel_calls=_AUTOTUNE)


_LABEL_RANGE = "a stored label is outside"


def pipeline_error(error):
    """The one-line message of an error that a pipeline of this module raises on purpose (a
    TFRecord label outside 1..K, met while reading), from the TensorFlow error `error` that
    carries it; None for any other error."""
    text = str(getattr(error, "message", error))
    found = re.search(r"\[([^\[\]]*" + _LABEL_RANGE + r"[^\[\]]*)\]", text)
    if found is None:
        return None
    value = re.search(r"\[x \([^)]*\) = \] \[(-?\d+)\]", text)
    message = found.group(1).replace("\\'", "'")
    if value:
        message = message.replace(_LABEL_RANGE, f"a stored label ({value.group(1)}) is outside", 1)
    return message


def _tfrecord(spec, value, background_class, seed, log, manifest_dir):
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
    names = tfrecords.read_label_file(os.path.dirname(train_files[0]))
    if names is not None:
        num_labels = max(names) if names else 0
        if sorted(names) != list(range(1, num_labels + 1)) or num_labels < 2:
            raise tfrecords.TFRecordError(
                f"{os.path.join(os.path.dirname(train_files[0]), tfrecords.LABELS_FILE)}: labels must "
                f"be 1..K with K >= 2, each once. Received: labels {sorted(names)[:10]}")
        class_names = [names[i] for i in range(1, num_labels + 1)]
        source_names = "labels.txt"
    else:
        num_labels = imagenet.NUM_CLASSES
        class_names = list(imagenet.class_names())
        source_names = "no labels.txt: ImageNet's 1000 classes"
    for f in [train_files[0]] + (val_files[:1] if val_files else []):
        _probe_shard(f, num_labels)
    cached = _load_counts(manifest_dir) if manifest_dir else {}
    num_train, how_train = _shard_counts(train_files, "train", cached, log)
    num_val, how_val = (_shard_counts(val_files, "validation", cached, log) if val_files
                        else (0, ""))
    num_classes = num_labels + (1 if background_class else 0)
    if background_class:
        class_names = ["background"] + class_names
    offset = 0 if background_class else 1
    spec_features = tfrecords.feature_spec()
    range_message = (f"{spec}: {_LABEL_RANGE} 1..{num_labels} (0 is the background class of "
                     f"TF-slim, for which the {num_classes}-class head has no output)")

    def parse(raw, shard):
        ex = tf.io.parse_single_example(raw, spec_features)
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

    def epoch_files(epoch):
        order = list(train_files)
        random.Random(f"{seed}/{epoch}").shuffle(order)
        return order

    def shard_source(epoch, num_shards, shard_index):
        return _read_shards(epoch_files(epoch)[shard_index::num_shards], parse)

    log(f"{spec}: {len(train_files)} training shards ({num_train} examples, {how_train}), "
        + (f"{len(val_files)} validation shards ({num_val} examples, {how_val})" if val_files
           else "no validation shards")
        + f"; {num_classes} classes ({source_names}"
        + (", background class 0 and the labels as stored)" if background_class
           else ", label - 1: no background class)"))
    data = ImageDataset(
        spec=spec, num_classes=num_classes, num_train=num_train, num_validation=num_val,
        train_source=_read_shards(train_files, parse),
        validation_source=_read_shards(val_files, parse) if val_files else None,
        encoded=True, class_names=class_names,
        description=f"{spec} ({len(train_files)} + {len(val_files or [])} TFRecord shards)",
        epoch_source=lambda epoch: _read_shards(epoch_files(epoch), parse),
        shard_source=shard_source, num_files=len(train_files), boxes=True, shard_counts=cached,
        log=log)
    return data


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
            base = name.split("/")[0].split(":")[0]
            needed = MANUAL_FILES.get(base)
            missing = [f for f in needed or () if not os.path.isfile(os.path.join(manual, f))]
            if not needed or missing:
                what = (f"put {' and '.join(needed)} ({', '.join(missing)} missing; from "
                        f"{MANUAL_SOURCES[base]}) in {manual}" if needed else
                        f"put its source files in {manual} as https://www.tensorflow.org/datasets/"
                        f"catalog/{base} explains")
                raise DatasetError(
                    f"tfds dataset {name!r} is not prepared in {shown_dir} and needs a manual "
                    f"download: {what}, then run `tfds build {name} --data_dir=DIR` (or train once "
                    "with --data_dir=DIR, which prepares it) and pass --data_dir=DIR")
            log(f"preparing tfds dataset {name!r} from {', '.join(needed)} in {manual} into "
                f"{builder.data_dir} (once; hours for ImageNet)")
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual))
        elif not download:
            raise DatasetError(f"tfds dataset {name!r} is not prepared in {shown_dir} and downloads "
                               f"are off: run `tfds build {name} --data_dir=DIR`, pass --data_dir=DIR")
        elif not _network_reachable():
            raise DatasetError(
                f"tfds dataset {name!r} is not prepared in {shown_dir} and the network is not "
                f"reachable to download it: run `tfds build {name} --data_dir=DIR` on a machine with "
                "network, copy DIR here and pass --data_dir=DIR")
        else:
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


_NO_BOXES = ((0, 4), tf.float32)


def _unpack(image):
    """``(encoded bytes, name, boxes)`` of an encoded source's image element: bytes (tfds), or
    a record ``{"path"}`` (folders: the file is read here) or ``{"encoded", "name", "bbox"}``
    (TFRecord shards)."""
    if isinstance(image, dict):
        if "path" in image:
            return tf.io.read_file(image["path"]), image["path"], tf.zeros(*_NO_BOXES)
        return image["encoded"], image["name"], image["bbox"]
    return image, tf.constant(""), tf.zeros(*_NO_BOXES)


class _BadFiles:
    """Files met in the pipeline that cannot be read or decoded: each named once, counted."""

    def __init__(self, spec, log):
        self.spec, self.log, self.names, self._lock = spec, log, [], threading.Lock()

    def __call__(self, name):
        name = name.numpy().decode("utf-8", "surrogateescape") if hasattr(name, "numpy") else name
        with self._lock:
            if name not in self.names:
                self.names.append(name)
                self.log(f"{self.spec}: skipped {name or 'an image'}: cannot be read or decoded "
                         f"({len(self.names)} skipped so far; training goes on)")
        return False


def _bad_files(dataset):
    if "bad" not in dataset._cached:
        dataset._cached["bad"] = _BadFiles(dataset.spec, dataset.log or print)
    return dataset._cached["bad"]


def skipped_during_training(dataset):
    """Names of the files the pipelines skipped because they could not be read or decoded."""
    bad = dataset._cached.get("bad")
    return list(bad.names) if bad else []


def _decode_skipping(dataset, ds):
    """``(image, label)`` of encoded examples -> ``(uint8 image, label, boxes)``, leaving out
    (and reporting once, by name) each example whose bytes cannot be read or decoded; the
    order is kept. Each example is tried in a one-element dataset whose error is dropped
    (``ignore_errors``), followed by a marker that is taken only when the attempt gave nothing."""
    report = _bad_files(dataset)

    def attempt(image, label):
        one = tf.data.Dataset.from_tensors((image, label))

        def decoded(image, label):
            data, name, boxes = _unpack(image)
            return _decode(data), label, boxes, True, name

        def failed(image, label):
            _, name, boxes = _unpack(image) if not (isinstance(image, dict) and "path" in image) \
                else (None, image["path"], tf.zeros(*_NO_BOXES))
            return tf.zeros([0, 0, 3], tf.uint8), label, boxes, False, name

        return one.map(decoded).ignore_errors().concatenate(one.map(failed)).take(1)

    ds = ds.interleave(attempt, cycle_length=_DECODE_CYCLE, block_length=1,
                       num_parallel_calls=_AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda x, y, b, ok, name: tf.cond(
        ok, lambda: tf.constant(True), lambda: tf.py_function(report, [name], tf.bool)))
    return ds.map(lambda x, y, b, ok, name: (x, y, b))


def _with_boxes(ds):
    return ds.map(lambda x, y: (x, y, tf.zeros(*_NO_BOXES)))


def _decoded_source(dataset, source, cache):
    """``(uint8 image, label, boxes)`` of `source`, optionally cached after decoding."""
    if source is None:
        return None
    source = _decode_skipping(dataset, source) if dataset.encoded else _with_boxes(source)
    if cache is not None:
        source = source.cache("" if cache == "memory" else cache)
    return source


def _epoch_source(dataset, epoch, cache, num_shards=1, shard_index=0):
    """``(examples of `epoch`, still encoded?, sharded by file?)``. With a cache: decoded
    examples, one cached dataset shared by all epochs; without: as stored (decoding comes
    after shuffle and skip, so skipped examples are never decoded and the shuffle buffer holds
    encoded bytes, or only paths for folders). TFRecord shards with several input pipelines:
    pipeline i reads shards i, i + n, ... of the epoch's shard order, when there are at least
    as many shards as pipelines."""
    if cache is not None:
        key = ("train", cache)
        if key not in dataset._cached:
            dataset._cached[key] = _decoded_source(dataset, dataset.train_source, cache)
        return dataset._cached[key], False, False
    if num_shards > 1 and dataset.shard_source is not None:
        by_file = dataset.num_files >= num_shards
        note = ("shard_note", num_shards, shard_index if by_file else None)
        if note not in dataset._cached:
            dataset._cached[note] = True
            (dataset.log or print)(
                f"{dataset.spec}: input pipeline {shard_index} of {num_shards} reads shards "
                f"{shard_index}, {shard_index + num_shards}, ... of each epoch's order "
                f"({len(range(shard_index, dataset.num_files, num_shards))} of {dataset.num_files})"
                if by_file else
                f"{dataset.spec}: {dataset.num_files} shard(s) for {num_shards} input pipelines: "
                "fewer shards than pipelines, so every pipeline reads every shard and keeps every "
                f"{num_shards}-th example")
        if by_file:
            return dataset.shard_source(epoch, num_shards, shard_index), dataset.encoded, True
    source = dataset.epoch_source(epoch) if dataset.epoch_source else dataset.train_source
    return source, dataset.encoded, False


def _no_auto_shard(ds, policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return ds.with_options(options)


def train_input(dataset, *, batch_size, image_size, epoch=0, skip_steps=0, seed=0,
                shuffle_buffer=10000, min_crop_area=preprocessing.DEFAULT_MIN_CROP_AREA,
                color_distortion=True, cache=None, global_batch_size=None, num_shards=1,
                shard_index=0):
    """The training batches ``(images, one_hot_labels)`` of one epoch, from step `skip_steps` on
    (``images`` alone for a dataset without labels).

    Epoch e is the training examples shuffled with the seed ``(seed, e)`` (a
    buffer of ``min(num_train, shuffle_buffer)`` examples: a full permutation
    when the data fits; TFRecord shards are also read in an order seeded by
    ``(seed, e)``), cut to ``steps_per_epoch`` full batches. So the batches of
    a step do not depend on where a run was restarted; the random crops and
    colour changes are drawn anew. ``cache``: None, "memory" or a file prefix,
    to keep decoded images (before the random preprocessing). Returns exactly
    ``steps_per_epoch - skip_steps`` batches (when sharded: the batches of that
    many steps for this worker's replicas).

    An example whose file cannot be read or decoded (a folder's truncated JPEG,
    a damaged record) is left out, named once in the log (see
    :func:`skipped_during_training`), and the next one takes its place; the
    run goes on. (After such a file the examples of later steps move up by
    one, so a run resumed after it may see its batches shifted by one example.)

    Distributed training (``mobilenet_tf.training.distribute.distribute_input``): each
    of ``num_shards`` input pipelines (one per worker) reads its share of the
    epoch, in batches of ``batch_size`` (per replica), while
    ``global_batch_size`` (default ``batch_size``) sets the epoch and the
    skipped steps. TFRecord shards are split by file when there are at least
    ``num_shards`` of them (pipeline i reads files i, i + n, ... of the epoch's
    file order, and only those); otherwise, and for other data, every pipeline
    takes every ``num_shards``-th example (from ``shard_index``) of the same
    order, so the global batch at a step holds the examples it holds on one
    device. Each worker decodes only its own examples (without ``cache``).
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
    source, encoded, by_file = _epoch_source(dataset, int(epoch), cache, num_shards, shard_index)
    per_pipeline = global_batch // num_shards
    buffer = max(1, min(dataset.num_train // (num_shards if by_file else 1), shuffle_buffer))
    # Python-int seeds only: a tensor seed breaks tf.data when the global seed is 0.
    ds = source.shuffle(buffer, seed=(int(seed) * 1_000_003 + int(epoch)) % (2 ** 31 - 1),
                        reshuffle_each_iteration=False).repeat()
    if by_file:
        ds = ds.skip(skip_steps * per_pipeline)
    else:
        ds = ds.skip(skip_steps * global_batch)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
    ds = _decode_skipping(dataset, ds) if encoded else (
        ds if cache is not None else _with_boxes(ds))
    ds = ds.take((spe - skip_steps) * per_pipeline)
    num_classes = dataset.num_classes
    boxes = dataset.boxes

    def prep(image, label, bboxes):
        image = preprocessing.preprocess_for_train(image, image_size, image_size,
                                                   min_crop_area=min_crop_area,
                                                   color_distortion=color_distortion,
                                                   bboxes=bboxes if boxes else None)
        return (image, tf.one_hot(label, num_classes)) if dataset.labelled else image

    ds = ds.map(prep, num_parallel_calls=_AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(_AUTOTUNE)
    return _no_auto_shard(ds, tf.data.experimental.AutoShardPolicy.OFF)


def eval_input(dataset, *, batch_size, image_size, cache=None, source=None):
    """Validation batches ``(images, one_hot_labels)``, each example once, in order (files that
    cannot be decoded left out and named, as in :func:`train_input`). Under a multi-worker
    strategy the examples are split between the workers (``AutoShardPolicy.DATA``)."""
    source = _decoded_source(dataset, source if source is not None else dataset.validation_source,
                             cache)
    if source is None:
        raise DatasetError(f"{dataset.spec} has no validation data (pass a validation fraction > 0)")
    num_classes = dataset.num_classes

    def prep(image, label, boxes):
        return (preprocessing.preprocess_for_eval(image, image_size, image_size),
                tf.one_hot(label, num_classes))

    ds = source.map(prep, num_parallel_calls=_AUTOTUNE).batch(batch_size).prefetch(_AUTOTUNE)
    return _no_auto_shard(ds, tf.data.experimental.AutoShardPolicy.DATA)
