"""The reader of a folder of images without labels (``folder:PATH`` with
``allow_unlabelled``), for distillation from a teacher.

Layouts (``mobilenet_tf.data.layout.unlabelled_layout``): ``PATH/<images>`` (no validation),
or ``PATH/train/<images>`` with ``PATH/val/<class>/`` for validation. The training examples
have label -1 and ``labelled`` False; the classes are those of ``val/`` (None without it: the
teacher's). The files get the header check at start (no manifest).
"""

import logging
import os

from mobilenet_tf.data import checks
from mobilenet_tf.data import layout as layout_lib
from mobilenet_tf.data.readers.base import DatasetError, ImageDataset
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["load", "pairs_source"]

logger = logging.getLogger(__name__)


def pairs_source(pairs):
    """``({"path": path}, label)`` of ``(path, label)`` `pairs`, in order; None for none."""
    if not pairs:
        return None
    paths = tf.constant([p for p, _ in pairs])
    labels = tf.constant([label for _, label in pairs], dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(({"path": paths}, labels))


def load(spec, path, train_root, val_root, formats):
    """The dataset of folder `path` whose training images are in `train_root` without class
    sub-folders, and validation classes in `val_root` (or None)."""
    formats = checks.check_formats(formats)
    candidates = layout_lib.list_image_files(train_root)
    class_names, val_files = None, []
    if val_root:
        class_names = layout_lib.class_folders(path, val_root)
        if len(class_names) < 2:
            raise DatasetError(f"folder dataset {path!r}: {os.path.basename(val_root)}/ needs at "
                               f"least 2 class sub-folders, found {class_names}")
        val_files = layout_lib.class_files(val_root, class_names)
    pairs = [(p, -1) for p in candidates] + val_files
    skipped = checks.check_files(pairs, formats)
    bad = {p for p, _ in skipped}
    train = [(p, -1) for p in candidates if p not in bad]
    val = [(p, label) for p, label in val_files if p not in bad]
    checks.report_left_out(spec, skipped, len(pairs))
    if not train:
        raise DatasetError(f"folder dataset {path!r} has no usable training image")
    logger.info(f"{spec}: {len(train)} training images without labels"
                + (f", {len(val)} validation images in {len(class_names)} classes" if val_root else
                   ", no validation") + f"; files left out: {len(skipped)}")
    return ImageDataset(spec=spec, num_classes=len(class_names) if class_names else None,
                        num_train=len(train), num_validation=len(val),
                        train_source=pairs_source(train), validation_source=pairs_source(val),
                        encoded=True, class_names=class_names, skipped=skipped,
                        description=f"{spec} (images without labels"
                                    + (" + val/ classes)" if val_root else ")"),
                        labelled=False)
