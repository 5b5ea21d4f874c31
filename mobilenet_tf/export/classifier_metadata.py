"""The TFLite metadata an export of a Keras classifier carries: its name, a description of the
classifier and the export, version, license and labels (:func:`with_metadata`, over the
flatbuffer writer :func:`mobilenet_tf.export.metadata.populate`), and :func:`mediapipe_problem`,
why MediaPipe Tasks' ``ImageClassifier`` will not run an export (int8 input or output).

Bytes in, bytes out: this module writes no files.
"""

from mobilenet_tf.export import metadata
from mobilenet_tf.export import tflite
from mobilenet_tf.export.converter import model_image_size
from mobilenet_tf.export.options import DEFAULT_MODEL_VERSION
from mobilenet_tf.model import imagenet
from mobilenet_tf.model import labels as labels_lib

__all__ = ["with_metadata", "mediapipe_problem"]


def with_metadata(content, model, labels, *, quantization, version=DEFAULT_MODEL_VERSION,
                  license=None):
    """`content` (``.tflite`` bytes of `model`) with the TFLite metadata MediaPipe Tasks reads:
    name (the Keras model's), a description of the classifier and the export, `version`,
    `license`, the input's image properties and normalization, and `labels` (class names in
    output order) packed in as the output's ``TENSOR_AXIS_LABELS`` file. The network is
    unchanged. See :func:`mobilenet_tf.export.metadata.populate`."""
    from mobilenet_tf import __version__
    height, width = model_image_size(model)
    labels = labels_lib.label_names(int(model.output_shape[-1]), labels)
    count = len(labels)
    if labels_lib.is_imagenet_head(count) and labels == labels_lib.label_names(count):
        head = f"{count} ImageNet classes" + (" (0 = background)" if count > imagenet.NUM_CLASSES
                                              else "")
    else:
        head = f"{count} classes: {', '.join(labels[:10])}{', ...' if count > 10 else ''}"
    description = (f"MobileNetV1 image classifier (Howard et al. 2017, arXiv:1704.04861), "
                   f"{height}x{width} RGB input, {head}. TFLite export ({quantization}) by "
                   f"mobilenet-tf {__version__}.")
    return metadata.populate(content, labels, name=model.name, description=description,
                             version=version, license=license)


def mediapipe_problem(content):
    """Why MediaPipe Tasks' ImageClassifier will not run the ``.tflite`` bytes (one line), or
    None (:func:`mobilenet_tf.export.metadata.mediapipe_problem`)."""
    return metadata.mediapipe_problem(tflite.TFLiteClassifier(content))
