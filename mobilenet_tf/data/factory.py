"""Finding the data a dataset spec names: :func:`load_dataset` picks the reader, and
:func:`save_manifest` keeps what it learnt in the run folder.

Specs (``mobilenet_tf.data.options.parse_dataset_spec``): ``NAME`` (tensorflow-datasets,
``readers.tfds``), ``folder:PATH`` (``readers.folder``; images without labels
``readers.unlabelled``), ``tfrecord:TRAIN_GLOB[,VALIDATION_GLOB]`` or ``tfrecord:DIR``
(``readers.tfrecord``), ``synthetic`` (``readers.synthetic``). No flags are read here.
"""

from mobilenet_tf.data import layout
from mobilenet_tf.data.options import DEFAULT_FOLDER_FORMATS, parse_dataset_spec
from mobilenet_tf.data.readers import folder, synthetic, tfds, tfrecord, unlabelled
from mobilenet_tf.data.readers.base import DatasetError

__all__ = ["load_dataset", "save_manifest"]


def load_dataset(spec, *, data_dir=None, image_size=224, validation_fraction=0.1,
                 formats=DEFAULT_FOLDER_FORMATS, synthetic_examples=1024, synthetic_classes=1000,
                 download=True, seed=0, allow_unlabelled=False, manifest_dir=None,
                 background_class=False):
    """Finds the data named by `spec` and returns its
    :class:`~mobilenet_tf.data.readers.base.ImageDataset`, logging what it found.

    Args:
      spec: see the module docstring.
      data_dir: tensorflow-datasets data directory (None: tfds' default).
      image_size: side of synthetic images.
      validation_fraction: fraction of the training data held out when the
        data has no validation split (0 for none).
      formats: image formats a folder dataset reads, from ``FOLDER_FORMATS``.
      synthetic_examples, synthetic_classes: size of the synthetic dataset.
      download: allow tfds to download a dataset that is not prepared.
      seed: seed of the held-out choice for folders, of the shard order for TFRecords.
      allow_unlabelled: accept a folder whose training images have no class sub-folders
        (``readers.unlabelled``); without it such a folder is refused, saying so.
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
        return synthetic.load(spec, image_size, synthetic_examples, synthetic_classes,
                              validation_fraction)
    if kind == "tfrecord":
        return tfrecord.load(spec, value, background_class, seed, manifest_dir)
    if kind == "tfds":
        return tfds.load(value, data_dir, validation_fraction, download)
    roots = layout.unlabelled_layout(value)
    if roots is None:
        return folder.load(spec, value, formats, validation_fraction, seed, manifest_dir)
    if not allow_unlabelled:
        raise DatasetError(
            f"folder dataset {value!r} has images but no class sub-folders: images without labels "
            "train only from a teacher (--teacher, --distillation_weight=1); for labels use "
            "PATH/<class>/<images>")
    return unlabelled.load(spec, value, *roots, formats)


def save_manifest(dataset, directory):
    """Keeps what :func:`load_dataset` learnt about the data in `directory` (the run folder's
    ``MANIFEST_DIR``), atomically: a folder's manifest (unless it was read from there), a
    TFRecord dataset's shard counts. A no-op for other datasets."""
    dataset.save(directory)
