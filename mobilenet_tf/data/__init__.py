"""Data: dataset specs, one reader per source, the folder layouts and manifest, the ``tf.data``
pipelines, preprocessing, image files and labelled folders."""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    "load_dataset": "factory", "save_manifest": "factory",
    "train_input": "pipeline", "eval_input": "pipeline", "steps_per_epoch": "pipeline",
    "skipped_during_training": "decoding",
    "ImageDataset": "readers.base", "DatasetError": "readers.base",
    "pipeline_error": "readers.tfrecord", "VALIDATION_SPLITS": "readers.tfds",
    "scan_folder": "readers.folder", "MANIFEST_DIR": "manifest",
    "parse_dataset_spec": "options", "FOLDER_FORMATS": "options",
    "DEFAULT_FOLDER_FORMATS": "options",
    "read_labelled_folder": "labelled", "LabelledImages": "labelled",
})
