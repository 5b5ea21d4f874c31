"""Where the images of a folder are: the folder layouts that training, evaluation and the
TFRecord writer read, and the listing of image files.

Layouts: ``PATH/<class>/<images>``; ``PATH/train/<class>/`` with ``PATH/val/<class>/`` (or
``validation/``); ``PATH/train/<class>/`` alone. Images without labels: ``PATH/<images>``, or
``PATH/train/<images>`` (with ``PATH/val/<class>/`` for validation). Hidden entries (a name
starting with ``.``) are never read. A class folder's name becomes a line of ``labels.txt``
and a part of every path in the manifest (``label<TAB>path`` lines), so a name holding a
line break or a tab is refused (:func:`class_folders`), wherever a folder is read as classes.
Nothing here opens a file: checking the files is ``mobilenet_tf.data.checks``.
"""

import dataclasses
import os

from mobilenet_tf.data import images
from mobilenet_tf.data.readers.base import DatasetError

__all__ = ["VAL_FOLDER_NAMES", "HOW", "FolderLayout", "subfolders", "class_folders",
           "split_folders", "list_image_files", "visible_files", "class_files", "labelled_layout",
           "unlabelled_layout"]

VAL_FOLDER_NAMES = ("val", "validation")
HOW = "expected PATH/<class>/<images> or PATH/train/<class>/ and PATH/val/<class>/"


def subfolders(path):
    """Sorted names of the visible sub-folders of `path`."""
    return sorted(d for d in os.listdir(path)
                  if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))


def class_folders(dataset, root):
    """:func:`subfolders` of `root` read as class names; DatasetError (one line, naming it)
    for a name with a line break or a tab, which ``labels.txt`` and the manifest cannot hold
    (issue 27: its files were all left out, leaving an empty class). `dataset`: the folder
    named in the message."""
    names = subfolders(root)
    for name in names:
        if any(c in name for c in "\n\r\t"):
            raise DatasetError(f"folder dataset {dataset!r}: class folder "
                               f"{os.path.join(root, name)!r} has a line break or tab in its "
                               "name, which labels.txt and the manifest cannot hold: rename it")
    return names


def split_folders(names):
    """``(train name or None, val name or None)`` among sub-folder `names`: ``train`` and the
    first of :data:`VAL_FOLDER_NAMES` present."""
    return ("train" if "train" in names else None,
            next((n for n in VAL_FOLDER_NAMES if n in names), None))


def list_image_files(directory):
    """Sorted paths of the visible files with an image extension directly in `directory`."""
    return [os.path.join(directory, e) for e in sorted(os.listdir(directory))
            if not e.startswith(".") and os.path.isfile(os.path.join(directory, e))
            and os.path.splitext(e)[1].lower() in images.IMAGE_EXTENSIONS]


def visible_files(directory):
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


def class_files(root, class_names):
    """``[(path, label)]`` of the files in ``root/<class>/``, label the class's index."""
    files = []
    for label, name in enumerate(class_names):
        directory = os.path.join(root, name)
        if os.path.isdir(directory):
            files += [(full, label) for full, _, _ in visible_files(directory)]
    return files


@dataclasses.dataclass
class FolderLayout:
    """A labelled folder: ``kind`` is ``"classes"``, ``"train"`` or ``"train/val"``;
    ``val_root`` None without a validation folder."""
    kind: str
    train_root: str
    val_root: str
    class_names: list


def labelled_layout(path):
    """The :class:`FolderLayout` of labelled folder `path`. Raises DatasetError (one line)
    for a folder that is missing, has fewer than 2 classes, or validation classes that the
    training folder lacks."""
    if not os.path.exists(path):
        raise DatasetError(f"folder dataset {path!r} does not exist ({HOW})")
    if not os.path.isdir(path):
        raise DatasetError(f"folder dataset {path!r} is not a folder ({HOW})")
    names = subfolders(path)
    train, val_name = split_folders(names)
    if train and (val_name or set(names) == {"train"}):
        kind = "train/val" if val_name else "train"
        train_root = os.path.join(path, train)
        class_names = class_folders(path, train_root)
        val_root = os.path.join(path, val_name) if val_name else None
        if val_root:
            extra = sorted(set(class_folders(path, val_root)) - set(class_names))
            if extra:
                raise DatasetError(f"folder dataset {path!r}: {val_name}/ has classes that train/ "
                                   f"lacks: {extra}")
    else:
        kind, train_root, val_root, class_names = "classes", path, None, class_folders(path, path)
    if len(class_names) < 2:
        raise DatasetError(f"folder dataset {path!r} needs at least 2 class sub-folders, found "
                           f"{len(class_names)} {class_names} ({HOW})")
    return FolderLayout(kind, train_root, val_root, class_names)


def unlabelled_layout(path):
    """``(train_root, val_root or None)`` when the training images of folder `path` have no
    class sub-folders (``PATH/<images>``, or ``PATH/train/<images>`` [+ ``PATH/val/<class>/``]);
    else None."""
    if not os.path.isdir(path):
        return None
    names = subfolders(path)
    train, val_name = split_folders(names)
    if train and set(names) <= {train, val_name}:
        train_root = os.path.join(path, train)
        if not subfolders(train_root) and list_image_files(train_root):
            return train_root, os.path.join(path, val_name) if val_name else None
        return None
    if not names and list_image_files(path):
        return path, None
    return None
