"""The images an export is calibrated and verified on: up to N images of a dataset, prepared as
for evaluation (central crop 0.875, bilinear resize: ``mobilenet_tf.data.preprocessing``), as
uint8 RGB, with their labels.

:func:`load_images` reads any dataset spec ``mobilenet_tf.data`` reads (a tfds name,
``folder:PATH``, ``tfrecord:...``, ``synthetic``), and also a folder holding an ImageNet
``labels.csv`` (the imagenet50 layout, ``mobilenet_tf.data.labelled.read_labelled_folder``),
whose labels are ImageNet's. It writes no files.
"""

import dataclasses
import logging
import os

import numpy as np

from mobilenet_tf import data as data_lib
from mobilenet_tf.export.options import ExportError
from mobilenet_tf.model import imagenet

__all__ = ["LoadedImages", "load_images"]

logger = logging.getLogger(__name__)
BATCH_SIZE = 32


@dataclasses.dataclass
class LoadedImages:
    """Evaluation-preprocessed images of a dataset, uint8 (N, H, W, 3), with their labels
    (None without) and the dataset's class names (None when it has none)."""
    images: np.ndarray
    labels: np.ndarray
    class_names: list
    num_classes: int
    description: str
    imagenet_labels: bool = False     # labels are 0..999 ImageNet indices

    def labels_for(self, num_classes):
        """The labels in the output indexing of a head of `num_classes` outputs, or None when
        they do not fit it (ImageNet's 0..999 become 1..1000 for TF-slim's 1001)."""
        if self.labels is None:
            return None
        if self.imagenet_labels:
            return {imagenet.NUM_CLASSES: self.labels,
                    imagenet.NUM_CLASSES + 1: self.labels + 1}.get(num_classes)
        return self.labels if self.num_classes == num_classes else None


def _labelled_imagenet_folder(path, image_size, count):
    from mobilenet_tf.data import images as images_lib
    from mobilenet_tf.data import labelled
    from mobilenet_tf.data import preprocessing
    data = labelled.read_labelled_folder(path, imagenet_head=True)
    xs, ys = [], []
    for file, label in zip(data.paths, data.labels):
        if len(xs) == count:
            break
        try:
            image = images_lib.load_image(file)
        except images_lib.ImageError:
            continue
        xs.append(imagenet.to_uint8(preprocessing.preprocess_for_eval(image, *image_size)))
        ys.append(label)
    if not xs:
        raise ExportError(f"folder:{path}: no usable images")
    return LoadedImages(np.stack(xs), np.asarray(ys, np.int64), list(imagenet.class_names()),
                        imagenet.NUM_CLASSES, f"folder:{path}, ImageNet labels.csv",
                        imagenet_labels=True)


def load_images(spec, image_size, count, *, split="train", data_dir=None):
    """Up to `count` evaluation-preprocessed images of dataset `spec` as uint8.

    `split` is ``"train"`` (calibration) or ``"validation"`` (verification; a dataset
    without validation data falls back to its training images, and says so in a log line).
    ``folder:PATH`` with a ``labels.csv`` (the imagenet50 layout) gives ImageNet labels.
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    kind, value = data_lib.parse_dataset_spec(spec)
    if kind == "folder" and os.path.isfile(os.path.join(value, "labels.csv")):
        return _labelled_imagenet_folder(value, size, count)
    if kind == "synthetic":   # random images: `count` of them, whatever the split
        dataset = data_lib.load_dataset(spec, image_size=size[0], validation_fraction=0.0,
                                        synthetic_examples=count)
    else:
        # Images without labels (a distillation run's data) calibrate; verification uses val/.
        dataset = data_lib.load_dataset(spec, data_dir=data_dir, image_size=size[0],
                                        allow_unlabelled=True)
    source, read = dataset.train_source, split
    if split == "validation" and kind != "synthetic":
        if dataset.validation_source is not None:
            source = dataset.validation_source
        else:
            logger.info("%s has no validation data: verifying on its training images", spec)
            read = "training images (no validation data)"
    # Images without labels (a distillation run's training folder, whose class count may be
    # unknown) are read as images alone: the verification is agreement with the Keras model.
    unlabelled = kind == "synthetic" or (not dataset.labelled and source is dataset.train_source)
    xs, ys = [], []
    for batch in data_lib.eval_input(dataset, batch_size=BATCH_SIZE, image_size=size[0],
                                     source=source, labels=not unlabelled):
        if not unlabelled:
            batch, one_hot = batch
            ys.extend(np.argmax(one_hot.numpy(), axis=1))
        xs.extend(imagenet.to_uint8(batch.numpy()))
        if len(xs) >= count:
            break
    if not xs:
        raise ExportError(f"{spec}: no images in its {split} data")
    labels = None if unlabelled else np.asarray(ys[:count], np.int64)
    return LoadedImages(np.stack(xs[:count]), labels, dataset.class_names, dataset.num_classes,
                        f"{spec}, {read}" if kind != "synthetic" else "synthetic random images")
