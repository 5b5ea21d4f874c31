"""Data: dataset specs, the readers of each source, the ``tf.data`` pipelines, preprocessing,
image files and labelled folders."""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    "load_dataset": "datasets", "train_input": "datasets", "eval_input": "datasets",
    "ImageDataset": "datasets", "DatasetError": "datasets", "parse_dataset_spec": "options",
    "steps_per_epoch": "datasets", "save_manifest": "datasets",
    "skipped_during_training": "datasets", "pipeline_error": "datasets", "MANIFEST_DIR": "datasets",
})
