"""The folder manifest: a labelled folder's files and labels, checked once and kept in the run
folder, reused while the folder's listing is unchanged.

A manifest is three files: ``train.tsv`` and ``validation.tsv`` (``label<TAB>path`` lines, in
order) and ``manifest.json`` (what it was made from: the folder, formats, validation fraction
and seed; a fingerprint of the listing: class names, file names, sizes and mtimes; the counts
and the files left out, with reasons). The folder is listed and checked class by class, so one
class's listing is in memory at once. Without a ``val/`` folder each class's validation files
are :func:`hold_out_class`'s seeded draw. Reusing a manifest opens no image file.

A kept manifest is verified before it is reused (:func:`manifest_problem`), else rebuilt with
one log line saying why: the checksum of its ``.tsv`` files (``sha256`` in
``manifest.json``), each line a label of the folder's classes and a path in that class's
folder of the dataset, in the order it was written, no line twice, and the counts it records.

The format is kept as it is (``version`` 1, ``sha256`` added): manifests that earlier runs
kept are read (those without a checksum are verified line by line).
"""

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile

from mobilenet_tf.utils import fileio
from mobilenet_tf.data import checks
from mobilenet_tf.data import layout as layout_lib
from mobilenet_tf.data.readers.base import DatasetError

__all__ = ["MANIFEST_DIR", "MANIFEST_FILE", "hold_out_class", "hold_out", "folder_fingerprint",
           "require_images", "manifest_problem", "load_or_build", "copy_manifest"]

logger = logging.getLogger(__name__)

MANIFEST_DIR = "folder_manifest"
MANIFEST_FILE = "manifest.json"
_VERSION = 1
_SPLITS = ("train", "validation")


def hold_out_class(members, fraction, rng):
    """``(train, validation)`` of one class's files `members`: a draw of round(fraction * n)
    of them by `rng` (at least 1 when n >= 2 and fraction > 0, never all), each part sorted.
    The classes of a folder are drawn in label order with one ``random.Random(seed)``."""
    members = sorted(members)
    rng.shuffle(members)
    k = int(round(len(members) * fraction))
    if fraction > 0 and len(members) >= 2:
        k = max(1, min(k, len(members) - 1))
    return sorted(members[k:]), sorted(members[:k])


def hold_out(pairs, fraction, num_classes, seed):
    """``(train, validation)`` of ``(path, label)`` `pairs`: :func:`hold_out_class` per class,
    as a manifest holds them out."""
    rng = random.Random(seed)
    by_label = {}
    for pair in pairs:
        by_label.setdefault(pair[1], []).append(pair)
    train, val = [], []
    for label in range(num_classes):
        kept, held = hold_out_class(by_label.get(label, []), fraction, rng)
        train += kept
        val += held
    return sorted(train), sorted(val)


def _walk_folder(path):
    """``(layout, [(label, split, entries)])`` with ``entries`` from ``layout.visible_files``,
    one class at a time (a generator: the listing of one class is in memory at once)."""
    found = layout_lib.labelled_layout(path)

    def classes():
        for label, name in enumerate(found.class_names):
            for split, root in zip(_SPLITS, (found.train_root, found.val_root)):
                directory = os.path.join(root, name) if root else None
                if directory and os.path.isdir(directory):
                    yield label, split, layout_lib.visible_files(directory)
                elif root:
                    yield label, split, []
    return found, classes()


def _key(path, formats, validation_fraction, seed):
    return {"version": _VERSION, "folder": os.path.abspath(path), "formats": list(formats),
            "validation_fraction": validation_fraction, "seed": seed}


def _digest(found):
    return hashlib.sha256(json.dumps([found.kind, found.class_names]).encode())


def _fingerprint_update(digest, split, label, entries):
    digest.update(f"{split}\0{label}\0".encode())
    for p, size, mtime in entries:
        digest.update(os.fsencode(p) + f"\0{size}\0{mtime}\n".encode())


def folder_fingerprint(path):
    """sha256 of the folder's listing: class names, file names, sizes and mtimes (no file read)."""
    found, classes = _walk_folder(path)
    digest = _digest(found)
    for label, split, entries in classes:
        _fingerprint_update(digest, split, label, entries)
    return digest.hexdigest()


def _read(directory):
    try:
        with open(os.path.join(directory, MANIFEST_FILE), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not all(os.path.isfile(os.path.join(directory, f"{s}.tsv")) for s in _SPLITS):
        return None
    return info if isinstance(info, dict) else None


def _build(path, formats, validation_fraction, seed, out_dir, workers=None):
    """Lists and checks the folder class by class into ``out_dir/{train,validation}.tsv`` and
    returns the manifest's description (a dict)."""
    found, classes = _walk_folder(path)
    digest = _digest(found)
    rng = random.Random(seed)
    counts = {split: 0 for split in _SPLITS}
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
            bad = checks.check_files(pairs, formats, workers)
            skipped += bad
            bad = {p for p, _ in bad}
            good = [p for p, _ in pairs if p not in bad]
            if found.kind == "train/val":
                write(split, label, good)
                continue
            train, val = hold_out_class(good, validation_fraction, rng)
            write("validation", label, val)
            write("train", label, train)
    require_images(path, total, counts["train"], skipped)
    return {"key": _key(path, formats, validation_fraction, seed),
            "fingerprint": digest.hexdigest(), "layout": found.kind,
            "class_names": found.class_names, "num_train": counts["train"],
            "num_validation": counts["validation"], "files": total,
            "skipped": [list(s) for s in skipped],
            "sha256": {split: fileio.file_sha256(os.path.join(out_dir, f"{split}.tsv"))
                       for split in _SPLITS}}


def _lines_problem(tsv, split, found, count):
    """What is wrong with the ``label<TAB>path`` lines of `tsv` (one line), or None: each label
    one of `found`'s classes, each path a file of that class's folder of the dataset (train/
    or val/ as `split` says), in the order written (by label, then path: so no line twice),
    `count` lines."""
    roots = {"train": found.train_root,
             "validation": found.val_root if found.kind == "train/val" else found.train_root}
    folders = [os.path.abspath(os.path.join(roots[split], name)) for name in found.class_names]
    seen = {}                  # dirname -> its absolute path (one per class folder)
    previous, n = None, 0
    with open(tsv, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        for number, line in enumerate(f, 1):
            label, tab, p = line.rstrip("\n").partition("\t")
            if not (tab and label.isascii() and label.isdigit()) or int(label) >= len(folders):
                return (f"{split}.tsv line {number} has no label of the "
                        f"{len(found.class_names)} classes: {line[:80]!r}")
            label = int(label)
            folder = os.path.dirname(p)
            if folder not in seen:
                seen[folder] = os.path.abspath(folder)
            if seen[folder] != folders[label]:
                return (f"{split}.tsv line {number}: {p!r} is not in the folder of class "
                        f"{found.class_names[label]!r} ({folders[label]})")
            if previous is not None and (label, p) <= previous:
                return f"{split}.tsv line {number} is out of order or repeated: {p!r}"
            previous, n = (label, p), n + 1
    if n != count:
        return f"{split}.tsv has {n} lines, its manifest.json says {count}"
    return None


def manifest_problem(directory, info, path):
    """Why the manifest kept in `directory` (`info`: its ``manifest.json``) cannot be reused
    for folder `path` as it is (one line), or None. The folder's listing is not compared here
    (:func:`folder_fingerprint` is)."""
    found = layout_lib.labelled_layout(path)
    if info.get("class_names") != found.class_names:
        return (f"its classes {info.get('class_names')} are not the folder's "
                f"{found.class_names}")
    sums = info.get("sha256")
    for split in _SPLITS:
        tsv = os.path.join(directory, f"{split}.tsv")
        if sums is not None and fileio.file_sha256(tsv) != sums.get(split):
            return f"{split}.tsv does not match its checksum in {MANIFEST_FILE}"
        count = info.get("num_train" if split == "train" else "num_validation")
        problem = _lines_problem(tsv, split, found, count)
        if problem:
            return problem
    return None


def require_images(path, files, num_train, skipped):
    """DatasetError (one line) when the class folders of folder `path` hold no file (`files`
    is 0), or no usable training image (`num_train` is 0; `skipped` says why)."""
    if files == 0:
        raise DatasetError(f"folder dataset {path!r} has no files in its class folders "
                           f"({layout_lib.HOW})")
    if num_train == 0:
        raise DatasetError(f"folder dataset {path!r} has no usable training image "
                           f"({len(skipped)} files left out, first: {skipped[0][0]}: {skipped[0][1]})")


def load_or_build(spec, path, formats, validation_fraction, seed, manifest_dir=None):
    """``(info, directory)``: the manifest kept in `manifest_dir` when it was made from the same
    settings and the folder's listing is unchanged, else a new one in a temporary folder (the
    caller removes it; :func:`copy_manifest` keeps it). Logs which, and the files left out."""
    key = _key(path, formats, validation_fraction, seed)
    if manifest_dir and os.path.isdir(manifest_dir):
        saved = _read(manifest_dir)
        if saved is None:
            logger.info(f"{spec}: the manifest in {manifest_dir} is incomplete or its "
                        f"{MANIFEST_FILE} cannot be read: making a new one")
        elif saved.get("key") != key:
            logger.info(f"{spec}: the manifest in {manifest_dir} was made from other settings "
                        "(folder, formats, validation fraction or seed): making a new one")
        elif saved.get("fingerprint") != folder_fingerprint(path):
            names = layout_lib.labelled_layout(path).class_names
            why = ("files added, removed or modified" if saved.get("class_names") == names
                   else f"class folders {saved.get('class_names')} are now {names}")
            logger.info(f"{spec}: the folder changed since its manifest in {manifest_dir} was "
                        f"made ({why}): making a new one")
        else:
            problem = manifest_problem(manifest_dir, saved, path)
            if problem is None:
                logger.info(f"{spec}: the folder is unchanged since its manifest was made: "
                            f"reusing {manifest_dir} ({saved['files']} files, no file opened)")
                return saved, manifest_dir
            logger.info(f"{spec}: the manifest in {manifest_dir} cannot be trusted ({problem}): "
                        "making a new one")
    where = tempfile.mkdtemp(prefix="mobilenet_tf_manifest_")
    try:
        info = _build(path, formats, validation_fraction, seed, where)
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise
    with open(os.path.join(where, MANIFEST_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f)
    checks.report_left_out(spec, info["skipped"], info["files"])
    return info, where


def copy_manifest(source, directory):
    """Copies the manifest in `source` to `directory`, atomically (``manifest.json`` last: a
    copy cut short is not read as a manifest); nothing when they are the same folder."""
    if os.path.abspath(source) == os.path.abspath(directory):
        return
    os.makedirs(directory, exist_ok=True)
    for name in ("train.tsv", "validation.tsv", MANIFEST_FILE):
        with fileio.atomic_path(os.path.join(directory, name)) as tmp:
            shutil.copyfile(os.path.join(source, name), tmp)
