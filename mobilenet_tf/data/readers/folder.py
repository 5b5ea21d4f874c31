"""The labelled folder reader (``folder:PATH``): the files and labels of the folder's manifest.

Layouts (``mobilenet_tf.data.layout``): one sub-folder per class, or ``train/`` and
``val/`` with class sub-folders. When every class folder is an ImageNet WordNet id
(``n01514668/``, as ImageNet's own train folder), the labels are the 1000-class head's
ImageNet indices. Nothing is decoded before training starts: each file gets the header check
(``mobilenet_tf.data.checks``) into the manifest (``mobilenet_tf.data.manifest``), reused from
``manifest_dir`` while the folder is unchanged; a file that passes but cannot be decoded is
skipped when the pipeline meets it. :func:`scan_folder` is the same listing in memory (the
TFRecord writer's).
"""

import dataclasses
import logging
import os
import shutil
import weakref

from mobilenet_tf.data import checks
from mobilenet_tf.data import layout as layout_lib
from mobilenet_tf.data import manifest as manifest_lib
from mobilenet_tf.data.options import DEFAULT_FOLDER_FORMATS
from mobilenet_tf.data.readers.base import ImageDataset
from mobilenet_tf.model import imagenet
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["FolderDataset", "FolderScan", "load", "scan_folder"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class FolderDataset(ImageDataset):
    """A labelled folder. ``manifest``: ``{"dir", "info"}``, where its manifest is (a temporary
    folder removed with the dataset, or the ``manifest_dir`` it was reused from) and what it
    holds."""
    manifest: dict = None

    def save(self, directory):
        """Copies the manifest to `directory` (unless it was read from there)."""
        manifest_lib.copy_manifest(self.manifest["dir"], directory)


def _manifest_source(tsv, label_map=None):
    """``({"path": path}, label)`` of each ``label<TAB>path`` line of `tsv`, in order; the file
    is read when the example is decoded (so the shuffle buffer holds paths, not images).
    `label_map`: the label each class folder's index stands for (WordNet-id folders)."""
    mapping = None if label_map is None else tf.constant(label_map, tf.int64)

    def parse(line):
        parts = tf.strings.split(line, "\t", maxsplit=1)
        label = tf.strings.to_number(parts[0], tf.int64)
        return {"path": parts[1]}, label if mapping is None else tf.gather(mapping, label)
    return tf.data.TextLineDataset(tsv).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def _all_imagenet_ids(class_names):
    """Whether every class folder is named by an ImageNet-1k WordNet id (``n01514668``)."""
    ids = set(imagenet.wordnet_ids())
    return bool(class_names) and all(name in ids for name in class_names)


def load(spec, path, formats, validation_fraction, seed, manifest_dir=None):
    """The :class:`FolderDataset` of labelled folder `path` (see the module docstring)."""
    formats = checks.check_formats(formats)
    info, where = manifest_lib.load_or_build(spec, path, formats, validation_fraction, seed,
                                             manifest_dir)
    train_n, val_n = info["num_train"], info["num_validation"]
    num_classes, class_names, label_map = len(info["class_names"]), info["class_names"], None
    if _all_imagenet_ids(class_names):
        # ImageNet's own layout: labels are the 1000-class head's indices, so a pretrained
        # ImageNet head (--init_weights) is kept and scored as it is.
        label_map = [imagenet.class_index(wnid) for wnid in class_names]
        num_classes, class_names = imagenet.NUM_CLASSES, labels_lib.label_names(imagenet.NUM_CLASSES)
        logger.info(f"{spec}: the {len(label_map)} class folders are ImageNet WordNet ids: labels "
                    f"are the {imagenet.NUM_CLASSES}-class ImageNet indices (an ImageNet head is "
                    "kept)")
    if info["layout"] == "train/val":
        how = "train/ and val/ folders"
    else:
        how = f"{validation_fraction:g} of train/ held out" if validation_fraction else "no validation"
    logger.info(f"{spec}: {len(info['class_names'])} classes, {train_n} training and {val_n} "
                f"validation images ({how}); files left out: {len(info['skipped'])} (header "
                "check; files that cannot be decoded are skipped when met, and named)")
    data = FolderDataset(
        spec=spec, num_classes=num_classes, num_train=train_n, num_validation=val_n,
        train_source=_manifest_source(os.path.join(where, "train.tsv"), label_map),
        validation_source=(_manifest_source(os.path.join(where, "validation.tsv"), label_map)
                           if val_n else None),
        encoded=True, class_names=class_names,
        skipped=[tuple(x) for x in info["skipped"]], description=f"{spec} ({info['layout']} layout)",
        manifest={"dir": where, "info": info})
    if where != manifest_dir:
        weakref.finalize(data, shutil.rmtree, where, True)
    return data


@dataclasses.dataclass
class FolderScan:
    """Result of :func:`scan_folder`: usable (path, label) pairs and what was left out."""
    class_names: list
    train: list
    validation: list          # None: no val/ folder (hold out from train)
    skipped: list             # [(path, reason)]
    layout: str


def scan_folder(path, formats=DEFAULT_FOLDER_FORMATS, *, workers=None, decode=False):
    """Lists and checks every file of a labelled folder, in memory.

    Each candidate file gets the header check (its first 32 bytes, in ``workers``
    threads), or a full decode with ``decode=True``; files that fail are returned in
    ``skipped`` with the reason, never raised. Training uses the manifest
    (:func:`load`), which does the same check class by class into files.

    Raises:
      ValueError: unknown entries in ``formats``.
      DatasetError: the folder does not exist, has no class sub-folders, fewer
        than 2 classes, or no usable image.
    """
    formats = checks.check_formats(formats)
    found = layout_lib.labelled_layout(path)
    train_files = layout_lib.class_files(found.train_root, found.class_names)
    val_files = layout_lib.class_files(found.val_root, found.class_names) if found.val_root else []
    candidates = train_files + val_files
    skipped = checks.check_files(candidates, formats, workers, decode)
    bad = {p for p, _ in skipped}
    train = [(p, label) for p, label in train_files if p not in bad]
    validation = [(p, label) for p, label in val_files if p not in bad] if found.val_root else None
    manifest_lib.require_images(path, len(candidates), len(train), skipped)
    return FolderScan(found.class_names, train, validation, skipped, found.kind)
