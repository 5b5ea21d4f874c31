"""Labelled image folders for scoring a classifier: the images and their labels as the
classifier's output indices.

Layouts, by the rules training reads folders with (``mobilenet_tf.data.layout``):
``<class>/<images>``, or ``train/<class>/`` with ``val/<class>/`` (then ``val/`` is read); for
ImageNet heads also WordNet-id sub-folders and the ``labels.csv`` of
``../shared/data/imagenet50``.
"""

import csv
import dataclasses
import os

from mobilenet_tf.data import layout as layout_lib
from mobilenet_tf.errors import InputError
from mobilenet_tf.model import imagenet

__all__ = ["LabelledImages", "read_labelled_folder"]


@dataclasses.dataclass
class LabelledImages:
    """Image ``paths`` and their ``labels`` in a classifier's output indexing; ``layout``
    says how the folder was read."""
    paths: list
    labels: list
    layout: str = ""


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
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise InputError(f"--images: no such folder: {directory} (or use tfds:NAME[:SPLIT])")
    offset = 0
    if imagenet_head:
        offset = imagenet.label_offset(len(classifier_names)) if classifier_names else 0
        csv_path = os.path.join(directory, "labels.csv")
        if os.path.isfile(csv_path):
            return _imagenet_csv(directory, csv_path, offset)
    subfolders = layout_lib.subfolders(directory)
    root, layout = directory, "class sub-folders"
    train, val_name = layout_lib.split_folders(subfolders)
    if train and val_name:
        root, layout = os.path.join(directory, val_name), f"{val_name}/ of a train/{val_name} folder"
    subfolders = layout_lib.class_folders(directory, root)
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
        for path in layout_lib.list_image_files(os.path.join(root, name)):
            paths.append(path)
            labels.append(label)
    return LabelledImages(paths, labels, layout)
