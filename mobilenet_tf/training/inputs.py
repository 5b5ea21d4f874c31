"""The data of a run: the dataset its config names, and the training and validation inputs
built from it (``mobilenet_tf.data`` does the reading; this module maps the config onto it)."""

import os

from mobilenet_tf import data as data_lib

__all__ = ["load_data", "train_input", "eval_input", "calibration_batches"]


def load_data(config):
    """The ``ImageDataset`` of ``config.dataset``; a folder's manifest is kept in (and reused
    from) ``model_dir``."""
    return data_lib.load_dataset(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        validation_fraction=config.validation_fraction, formats=config.folder_formats,
        synthetic_examples=config.synthetic_examples, synthetic_classes=config.synthetic_classes,
        download=config.download, seed=config.seed,
        allow_unlabelled=bool(getattr(config, "teacher", None)),
        manifest_dir=os.path.join(config.model_dir, data_lib.MANIFEST_DIR) if config.model_dir
        else None, background_class=bool(getattr(config, "background_class", False)))


def train_input(config, data, epoch, skip_steps, *, batch_size, num_shards=1, shard_index=0):
    """Epoch `epoch`'s training input, from its step `skip_steps` on (a function of the step, so
    a resumed run gets the same batches); `batch_size` is one input's (a replica's or a
    worker's) share of the global ``config.batch_size``."""
    return data_lib.train_input(
        data, batch_size=batch_size, image_size=config.image_size, epoch=epoch,
        skip_steps=skip_steps, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
        min_crop_area=config.min_crop_area, color_distortion=config.color_distortion,
        cache=config.cache, global_batch_size=config.batch_size, num_shards=num_shards,
        shard_index=shard_index)


def eval_input(config, data):
    """The validation input of `data` in batches of ``config.batch_size``."""
    return data_lib.eval_input(data, batch_size=config.batch_size, image_size=config.image_size,
                               cache=config.cache)


def calibration_batches(config, data):
    """The first ``config.num_calibration_images`` training images of
    ``config.representative_dataset`` (default: of `data`, the run's dataset), with evaluation
    preprocessing, as float [-1, 1] batches: the images post-training int8 of the same data
    calibrates on (``export_tflite.py`` takes the first N of the training images the same way).
    Labels are not read (images without labels calibrate too)."""
    if config.representative_dataset:
        data = data_lib.load_dataset(
            config.representative_dataset, data_dir=config.data_dir,
            image_size=config.image_size, validation_fraction=0.0,
            formats=config.folder_formats, allow_unlabelled=True)
    batches, count = [], 0
    for batch in data_lib.eval_input(data, batch_size=config.batch_size,
                                     image_size=config.image_size, source=data.train_source,
                                     labels=False):
        batch = batch.numpy()[:config.num_calibration_images - count]
        batches.append(batch)
        count += len(batch)
        if count >= config.num_calibration_images:
            break
    return batches
