"""The tensorflow-datasets reader (a dataset spec ``NAME``, e.g. ``imagenet2012``,
``tf_flowers``, ``imagenette``; ``python -m mobilenet_tf.evaluate --images=tfds:NAME[:SPLIT]``):
one set of rules for finding and preparing a dataset, for training and evaluation alike.

A dataset with ``image`` and ``label`` features, read from ``data_dir``. When it is not
prepared: a dataset that tfds cannot download (ImageNet) is prepared from its archives in
``<data_dir>/downloads/manual`` when they are there (nothing is downloaded), else the error
says which archives go where; any other is downloaded and prepared only with ``download``
(and a reachable network). Splits for training: ``train``; for validation ``validation``,
else ``test``, else the last ``validation_fraction`` of ``train`` held out. Images stay
encoded (decoded in the pipelines).
"""

import dataclasses
import logging
import os
import socket

from mobilenet_tf.data.readers.base import DatasetError, ImageDataset
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["VALIDATION_SPLITS", "TfdsDataset", "open_builder", "label_feature", "examples",
           "load"]

logger = logging.getLogger(__name__)

VALIDATION_SPLITS = ("validation", "test")
# The archives tfds' manually downloaded datasets need in <data_dir>/downloads/manual.
MANUAL_FILES = {"imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")}
MANUAL_SOURCES = {"imagenet2012": "https://image-net.org/download-images, after registering"}


def _network_reachable(timeout=3.0):
    if any(os.environ.get(v) for v in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")):
        return True   # let tfds try through the proxy
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _prepare_from_archives(builder, name, data_dir, shown_dir):
    import tensorflow_datasets as tfds
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
    logger.info(f"preparing tfds dataset {name!r} from {', '.join(needed)} in {manual} into "
                f"{builder.data_dir} (once; hours for ImageNet)")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))


def open_builder(name, data_dir=None, *, download=True):
    """The prepared tfds builder of dataset `name` in `data_dir` (None: tfds' default),
    prepared first by the rules of the module docstring; `download` False: nothing is
    downloaded. Raises DatasetError (one line, saying how to provide the data)."""
    import tensorflow_datasets as tfds
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DatasetError(f"dataset {name!r} is not a tensorflow-datasets dataset (see "
                           "https://www.tensorflow.org/datasets/catalog; use 'folder:PATH' for a "
                           "folder of images)") from None
    if builder.is_prepared():
        return builder
    shown_dir = data_dir or "tfds' default data_dir (~/tensorflow_datasets)"
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        _prepare_from_archives(builder, name, data_dir, shown_dir)
    elif not download:
        raise DatasetError(f"tfds dataset {name!r} is not prepared in {shown_dir} and downloads "
                           f"are off: run `tfds build {name} --data_dir=DIR`, pass --data_dir=DIR")
    elif not _network_reachable():
        raise DatasetError(
            f"tfds dataset {name!r} is not prepared in {shown_dir} and the network is not "
            f"reachable to download it: run `tfds build {name} --data_dir=DIR` on a machine with "
            "network, copy DIR here and pass --data_dir=DIR")
    else:
        logger.info(f"downloading and preparing tfds dataset {name!r} into {builder.data_dir}")
        builder.download_and_prepare()
    return builder


def label_feature(builder, name):
    """The ``label`` feature (a ``ClassLabel``) of `builder`; DatasetError unless the dataset
    has ``image`` and ``label`` features."""
    features = builder.info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    if "image" not in keys or "label" not in keys:
        raise DatasetError(f"tfds dataset {name!r} has features {keys}; training needs 'image' and "
                           "'label' (an image classification dataset)")
    return features["label"]


def examples(builder, split, *, shuffle_files=False, shuffle_seed=0):
    """``(encoded image, int64 label)`` of `split` (a tfds split, slices allowed)."""
    import tensorflow_datasets as tfds
    ds = builder.as_dataset(split=split, shuffle_files=shuffle_files,
                            decoders={"image": tfds.decode.SkipDecoding()},
                            read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed))
    return ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int64)))


@dataclasses.dataclass(eq=False)
class TfdsDataset(ImageDataset):
    """A tensorflow-datasets dataset; each epoch reads the files of ``train_split`` in an order
    seeded by the epoch."""
    builder: object = None
    train_split: str = "train"

    def epoch_source(self, epoch):
        return examples(self.builder, self.train_split, shuffle_files=True, shuffle_seed=epoch)


def load(name, data_dir, validation_fraction, download):
    """The :class:`TfdsDataset` of tfds dataset `name` (see the module docstring)."""
    builder = open_builder(name, data_dir, download=download)
    label = label_feature(builder, name)
    num_classes = label.num_classes
    splits = builder.info.splits
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
    logger.info(f"tfds {name}: {num_classes} classes, {train_split} ({num_train}) for training, "
                f"{val_split} ({num_val}) for validation")
    return TfdsDataset(spec=name, num_classes=num_classes, num_train=num_train,
                       num_validation=num_val, train_source=examples(builder, train_split),
                       validation_source=examples(builder, val_split) if val_split else None,
                       encoded=True, class_names=getattr(label, "names", None),
                       description=f"tfds {name} ({train_split} / {val_split})",
                       builder=builder, train_split=train_split)
