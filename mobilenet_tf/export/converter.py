"""Export a Keras MobileNetV1 to TFLite for phones, and check the result against Keras.

* :func:`convert` -> the ``.tflite`` file's bytes, in one of :data:`QUANTIZATIONS`:

  ``none``           float32 weights and activations;
  ``float16``        float16 weights (half the size), float32 arithmetic on CPUs;
  ``dynamic_range``  int8 weights, float activations (weights quantized per channel,
                     activations quantized on the fly inside each layer);
  ``int8``           full integer: every convolution and the classifier in int8 with
                     per-channel weights and per-tensor activations whose ranges are
                     calibrated on representative images (the TFLite converter's
                     post-training integer quantization).

  The input is fixed to the model's size with batch 1 (what mobile runtimes want) and the
  file has one signature, ``serving_default``, with input ``images`` and output
  ``probabilities``. With ``raw_rgb_input`` (the default) the model takes uint8 RGB
  0..255 (what Android's camera / Bitmap pipelines give) and does the [-1, 1] scaling
  itself: a Cast/Mul/Sub inside the float models; for ``int8`` the input quantization
  is pinned to map 0..255 onto the [-1, 1] range (scale 2/255, zero point 127 or 128;
  Google's official quantized MobileNets: scale 1/128, zero point 128), so the bytes go
  in unchanged and no extra operator runs.
* :func:`serving_archive`: the ``keras.export.ExportArchive`` with that signature, also
  what ``export_tflite.py --saved_model_dir`` writes as a TensorFlow SavedModel.
* :func:`with_metadata`: the ``.tflite`` bytes with the TFLite model metadata MediaPipe Tasks'
  ``ImageClassifier`` reads (name, description, version, license, the input's normalization, the
  labels packed in as a ``TENSOR_AXIS_LABELS`` file; :mod:`mobilenet_tf.export.metadata`), and
  :func:`mediapipe_problem`, why MediaPipe will not run an export (int8 input or output).
* :func:`verify` runs the ``.tflite`` bytes with the LiteRT interpreter
  (:class:`mobilenet_tf.export.tflite.TFLiteClassifier`) and the Keras model on the same
  images and returns a :class:`Verification`: file size, top-1 agreement, top-1/top-5
  of each when labels exist, max / mean absolute difference of the probabilities,
  median latency at 1 thread and at all cores.
* :func:`load_images`: evaluation-preprocessed images (central crop 0.875, bilinear
  resize, as ``mobilenet_tf.data.preprocessing.preprocess_for_eval``) from a dataset spec
  (``mobilenet_tf.data.load_dataset``: a tfds name, ``folder:PATH``, ``synthetic``; also a folder
  holding an ImageNet ``labels.csv`` as ``mobilenet_tf.data.labelled.read_labelled_folder`` reads), as uint8.

This module returns bytes and records; it writes no files except inside a temporary
directory it removes (the TFLite converter reads a SavedModel from disk). It reads no flags.
"""

import dataclasses
import os
import shutil
import tempfile
import warnings

import numpy as np

from mobilenet_tf.model import imagenet
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.utils import native
from mobilenet_tf.errors import InputError, WorkError
from mobilenet_tf.model.saved import MODEL_FILE, SUMMARY_FILE, ModelFileError, load_model
from mobilenet_tf.model.labels import label_names, labels_path, read_labels

__all__ = ["QUANTIZATIONS", "IO_TYPES", "DEFAULT_MIN_TOP1_AGREEMENT", "DEFAULT_NUM_CALIBRATION_IMAGES",
           "VERIFY_BATCH_SIZE", "SIGNATURE_KEY", "INPUT_NAME", "OUTPUT_NAME", "ExportError",
           "ModelFileError", "VerificationError",
           "model_image_size", "resolve_io_types", "serving_archive", "convert", "label_names",
           "DEFAULT_MODEL_VERSION", "with_metadata", "mediapipe_problem",
           "Verification", "verify", "check_agreement", "LoadedImages", "load_images",
           "to_unit_range", "load_model", "labels_path", "read_labels", "MODEL_FILE",
           "SUMMARY_FILE"]

QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")
IO_TYPES = ("uint8", "int8", "float32")
# Fewest top-1 agreements with the Keras model (fraction of the verification images) an export
# must reach. Measured on the 50 imagenet50 images (README "Export to TFLite"): float32 and
# float16 agree on 50/50 at 0.25/128; dynamic range 46/50; int8 (post-training, calibrated on
# 244 photos) 43/50 at 0.25/128 and 45/50 at 0.75/192. The defaults leave a few images of margin;
# small models are less sure of their top-1 and so flip more often under quantization.
DEFAULT_MIN_TOP1_AGREEMENT = {"none": 0.98, "float16": 0.96, "dynamic_range": 0.85, "int8": 0.8}
DEFAULT_NUM_CALIBRATION_IMAGES = 300
VERIFY_BATCH_SIZE = 32          # Keras runs the verification images in batches of this size
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
DEFAULT_MODEL_VERSION = "1"
_RAW_SCALE = 2.0 / 255.0


class ExportError(InputError):
    """An export that cannot be done as asked. One-line message (exit 2)."""


class VerificationError(WorkError, ExportError):
    """The converted file disagrees with the Keras model more than allowed (exit 1)."""


def model_image_size(model):
    """``(height, width)`` of a Keras image model with a fixed input size."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ExportError(f"the model must take RGB images (batch, height, width, 3). Received: "
                          f"input_shape={shape}")
    if shape[1] is None or shape[2] is None:
        raise ExportError("the model's input size is not fixed; rebuild it with "
                          f"input_shape=(size, size, 3) before export. Received: input_shape={shape}")
    output = tuple(model.output_shape)
    if len(output) != 2:
        raise ExportError(f"the model must output class probabilities (batch, classes). Received: "
                          f"output_shape={output}")
    return int(shape[1]), int(shape[2])


def resolve_io_types(quantization, input_type=None, output_type=None, raw_rgb_input=True):
    """The input and output tensor types an export gets (None: the default), checked.

    Float exports (``none``, ``float16``, ``dynamic_range``) take uint8 with
    ``raw_rgb_input``, else float32, and output float32. ``int8`` takes uint8 with
    ``raw_rgb_input`` (else float32 by default, or int8/uint8 quantized [-1, 1] values)
    and outputs float32 by default, or int8/uint8.
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"`quantization` must be one of {', '.join(QUANTIZATIONS)}. "
                          f"Received: quantization={quantization!r}")
    for name, value in (("input_type", input_type), ("output_type", output_type)):
        if value is not None and value not in IO_TYPES:
            raise ExportError(f"`{name}` must be one of {', '.join(IO_TYPES)}. "
                              f"Received: {name}={value!r}")
    default_input = "uint8" if raw_rgb_input else "float32"
    if raw_rgb_input and input_type not in (None, "uint8"):
        raise ExportError("raw_rgb_input (the app feeds 0..255 RGB bytes) needs input_type=uint8; "
                          f"turn raw_rgb_input off for other input types. Received: "
                          f"input_type={input_type!r}")
    if quantization != "int8":
        if input_type not in (None, default_input):
            raise ExportError(f"input_type={input_type} is for quantization=int8; a {quantization} "
                              f"export takes {default_input} "
                              f"({'raw 0..255 RGB' if raw_rgb_input else '[-1, 1] floats'}). "
                              f"Received: input_type={input_type!r}")
        if output_type not in (None, "float32"):
            raise ExportError(f"output_type={output_type} is for quantization=int8; a {quantization} "
                              f"export outputs float32. Received: output_type={output_type!r}")
    return input_type or default_input, output_type or "float32"


def to_unit_range(images):
    """uint8 0..255 -> float32 [-1, 1] (``imagenet.preprocess_input``); float images are taken
    as [-1, 1] already."""
    images = np.asarray(images)
    return imagenet.preprocess_input(images) if images.dtype == np.uint8 else images.astype(np.float32)


def serving_archive(model, *, raw_rgb_input=True, batch_size=1):
    """A ``keras.export.ExportArchive`` of `model` with one endpoint ``serving_default``:
    ``images`` (batch_size, H, W, 3) -> ``{"probabilities": (batch_size, classes)}``.

    With ``raw_rgb_input`` the input is uint8 0..255 and scaled to [-1, 1] inside
    (``x / 127.5 - 1``, as ``mobilenet_tf.model.imagenet.preprocess_input``), else float32
    in [-1, 1]. ``batch_size=None`` gives a variable batch (for serving).
    """
    import keras
    import tensorflow as tf
    height, width = model_image_size(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    if raw_rgb_input:
        spec = tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name=INPUT_NAME)

        def serve(images):
            return {OUTPUT_NAME: model(imagenet.preprocess_input(images), training=False)}
    else:
        spec = tf.TensorSpec([batch_size, height, width, 3], tf.float32, name=INPUT_NAME)

        def serve(images):
            return {OUTPUT_NAME: model(images, training=False)}
    archive.add_endpoint(SIGNATURE_KEY, serve, input_signature=[spec])
    return archive


_TF_TYPES = {"uint8": "uint8", "int8": "int8", "float32": "float32"}


def convert(model, quantization, representative_images=None, *, input_type=None, output_type=None,
            raw_rgb_input=True, num_calibration_images=DEFAULT_NUM_CALIBRATION_IMAGES):
    """Converts a Keras image classifier to a ``.tflite`` model and returns its bytes.

    Args:
      model: a Keras model with a fixed input size (a ``MobileNetV1`` or a ``train.py`` model).
      quantization: one of :data:`QUANTIZATIONS`.
      representative_images: for ``int8``, the calibration images (an array or iterable of
        (H, W, 3) images at the model's size, uint8 0..255 or float [-1, 1]); the first
        `num_calibration_images` are used. Required for ``int8``, ignored otherwise.
      input_type, output_type: tensor types, see :func:`resolve_io_types`.
      raw_rgb_input: the model takes uint8 RGB 0..255 and scales to [-1, 1] itself.

    Raises:
      ExportError: a bad argument or missing calibration data (one line).
    """
    input_type, output_type = resolve_io_types(quantization, input_type, output_type, raw_rgb_input)
    height, width = model_image_size(model)
    from mobilenet_tf.model import qat
    quantization_aware = qat.is_quantization_aware(model)
    if quantization_aware and quantization != "int8":
        raise ExportError(f"{model.name} is quantization-aware (trained with quantize): it exports "
                          f"as quantization=int8, from its learned ranges. Received: "
                          f"quantization={quantization!r}")
    calibration = None
    if quantization == "int8" and not quantization_aware:
        if representative_images is None:
            raise ExportError("quantization=int8 needs representative_images to calibrate the "
                              "activation ranges (a few hundred images like those the app sees)")
        if not isinstance(num_calibration_images, int) or num_calibration_images < 1:
            raise ExportError("`num_calibration_images` must be an int >= 1. Received: "
                              f"num_calibration_images={num_calibration_images!r}")
        calibration = []
        for image in representative_images:
            if len(calibration) == num_calibration_images:
                break
            image = to_unit_range(image)
            if image.shape != (height, width, 3):
                raise ExportError(f"representative images must be {height}x{width}x3 (the model's "
                                  f"size). Received: shape={image.shape}")
            calibration.append(image)
        if not calibration:
            raise ExportError("quantization=int8: representative_images is empty")
        if raw_rgb_input:
            # Pin the input's calibrated range to exactly [-1, 1] (one pixel each of one image),
            # so that the uint8 input's quantization is scale 2/255, zero point 128: the app's
            # 0..255 bytes are the quantized input as they are.
            calibration[0] = calibration[0].copy()
            calibration[0][0, 0, :] = -1.0
            calibration[0][0, 1, :] = 1.0

    import tensorflow as tf
    archive = serving_archive(model, raw_rgb_input=raw_rgb_input and quantization != "int8",
                              batch_size=1)
    tmp = tempfile.mkdtemp(prefix="mobilenet_tf_export_")
    try:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE_KEY])
        if quantization != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            if calibration is not None:
                def representative_dataset():
                    for image in calibration:
                        yield {INPUT_NAME: image[np.newaxis]}
                converter.representative_dataset = representative_dataset
                # Full int8, or the conversion fails.
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # else: the fake-quantization ops of a quantization-aware model carry every range
            # (the converter refuses TFLITE_BUILTINS_INT8 without a representative dataset;
            # _check_integer_only checks the result instead).
            converter.inference_input_type = getattr(tf, _TF_TYPES[input_type])
            converter.inference_output_type = getattr(tf, _TF_TYPES[output_type])
        with warnings.catch_warnings(), native.quiet_native_stderr():
            # The converter's calibrator still uses tf.lite.Interpreter internally; its C++
            # prints "fully_quantize: 0, inference_type: 6, ..." (errors still raise).
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            content = converter.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if quantization == "int8" and raw_rgb_input:
        from mobilenet_tf.export import tflite
        runner = tflite.TFLiteClassifier(content)
        scale, zero_point = runner.input_quantization
        if runner.input_kind != "raw_rgb" or abs(scale - _RAW_SCALE) > 1e-6 * _RAW_SCALE:
            raise ExportError(f"internal: the int8 input quantization is scale {scale}, zero point "
                              f"{zero_point}, not 2/255 and 127 or 128 as pinned")
    return content


# --- metadata -------------------------------------------------------------------------------------

def with_metadata(content, model, labels, *, quantization, version=DEFAULT_MODEL_VERSION,
                  license=None):
    """`content` (``.tflite`` bytes of `model`) with the TFLite metadata MediaPipe Tasks reads:
    name (the Keras model's), a description of the classifier and the export, `version`,
    `license`, the input's image properties and normalization, and `labels` (class names in
    output order) packed in as the output's ``TENSOR_AXIS_LABELS`` file. The network is
    unchanged. See :func:`mobilenet_tf.export.metadata.populate`."""
    from mobilenet_tf import __version__
    from mobilenet_tf.export import metadata
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
    from mobilenet_tf.export import metadata
    from mobilenet_tf.export import tflite
    return metadata.mediapipe_problem(tflite.TFLiteClassifier(content))


# --- verification ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Verification:
    """How a ``.tflite`` export compares with its Keras model on the same images."""
    quantization: str
    size_bytes: int
    num_images: int
    top1_agreement: float            # fraction of images where both give the same top-1 class
    max_abs_diff: float              # of the probabilities, over all images and classes
    mean_abs_diff: float
    latency_ms_1_thread: float       # median of one invoke()
    latency_ms_all_threads: float
    threads_all: int
    io: str = ""                     # input / output tensors as the app sees them
    keras_top1: float = None         # accuracies when the images have labels of this head
    keras_top5: float = None
    tflite_top1: float = None
    tflite_top5: float = None
    images: str = ""                 # where the images came from

    def _count(self, fraction):
        return f"{round(fraction * self.num_images)}/{self.num_images} ({fraction:.1%})"

    def lines(self):
        """The verification table, one row per line."""
        rows = [("file size", f"{self.size_bytes / 1024:.1f} KiB ({self.size_bytes:,} bytes)"),
                ("tensors", self.io),
                ("top-1 agreement with Keras", self._count(self.top1_agreement))]
        if self.keras_top1 is not None:
            rows += [("top-1 Keras / TFLite",
                      f"{self._count(self.keras_top1)} / {self._count(self.tflite_top1)}")]
        if self.keras_top5 is not None:      # with 5 classes or fewer it would be 100 %
            rows += [("top-5 Keras / TFLite",
                      f"{self._count(self.keras_top5)} / {self._count(self.tflite_top5)}")]
        rows += [("max / mean |prob. difference|", f"{self.max_abs_diff:.3g} / {self.mean_abs_diff:.3g}"),
                 ("median latency, 1 thread", f"{self.latency_ms_1_thread:.2f} ms"),
                 (f"median latency, {self.threads_all} threads", f"{self.latency_ms_all_threads:.2f} ms")]
        width = max(len(k) for k, _ in rows)
        head = (f"Verification of the {self.quantization} export against the Keras model on "
                f"{self.num_images} images{' (' + self.images + ')' if self.images else ''}:")
        return [head] + [f"  {k:<{width}}  {v}" for k, v in rows]


def _topk_hits(probs, labels, k):
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def verify(content, model, images, labels=None, *, quantization="", num_threads=None,
           latency_runs=30, description=""):
    """Runs the ``.tflite`` `content` and the Keras `model` on the same `images`.

    Args:
      images: (N, H, W, 3) uint8 0..255 RGB at the model's size (the TFLite model gets
        them as its input type needs, Keras gets ``x / 127.5 - 1``).
      labels: optional (N,) int labels in the model's output indexing.
      num_threads: "all cores" for the second latency (default ``os.cpu_count()``).
    """
    from mobilenet_tf.export import tflite
    images = np.asarray(images)
    if images.ndim != 4 or not len(images):
        raise ExportError(f"verification needs a non-empty batch of images. Received: "
                          f"shape={images.shape}")
    runner = tflite.TFLiteClassifier(content, num_threads=1)
    lite = runner.predict(images)
    keras_images = to_unit_range(images)
    from mobilenet_tf.model import qat
    if runner.input_kind == "raw_rgb" and qat.is_quantization_aware(model):
        # A quantization-aware model gets the int8 input the file computes with: byte b means
        # (b - zero point) * scale there, while x / 127.5 - 1 falls exactly halfway between two
        # levels, which the fake quantization would round up by half a level.
        scale, zero_point = runner.input_quantization
        keras_images = ((images.astype(np.float32) - zero_point) * np.float32(scale))
    keras_probs = np.concatenate([
        np.asarray(model(keras_images[i:i + VERIFY_BATCH_SIZE], training=False))
        for i in range(0, len(images), VERIFY_BATCH_SIZE)])
    if keras_probs.shape != lite.shape:
        raise ExportError(f"the TFLite model outputs {lite.shape[1:]}, the Keras model "
                          f"{keras_probs.shape[1:]}")
    diff = np.abs(keras_probs.astype(np.float64) - lite.astype(np.float64))
    threads = num_threads or os.cpu_count() or 1
    result = Verification(
        quantization=quantization, size_bytes=len(content), num_images=len(images),
        top1_agreement=float((keras_probs.argmax(1) == lite.argmax(1)).mean()),
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        latency_ms_1_thread=runner.latency_ms(images[0], runs=latency_runs),
        latency_ms_all_threads=tflite.TFLiteClassifier(content, num_threads=threads).latency_ms(
            images[0], runs=latency_runs),
        threads_all=threads, io=runner.describe(), images=description)
    if labels is not None:
        labels = np.asarray(labels)
        result.keras_top1 = _topk_hits(keras_probs, labels, 1)
        result.tflite_top1 = _topk_hits(lite, labels, 1)
        if lite.shape[1] >= labels_lib.MIN_CLASSES_FOR_TOP5:
            result.keras_top5 = _topk_hits(keras_probs, labels, 5)
            result.tflite_top5 = _topk_hits(lite, labels, 5)
    return result


def check_agreement(verification, minimum):
    """VerificationError (one line) when the top-1 agreement is below `minimum` (a fraction)."""
    if verification.top1_agreement < minimum:
        v = verification
        raise VerificationError(
            f"the {v.quantization} export agrees with the Keras model on the top-1 class of only "
            f"{round(v.top1_agreement * v.num_images)}/{v.num_images} images "
            f"({v.top1_agreement:.1%}), below min_top1_agreement={minimum:g}")


# --- images ---------------------------------------------------------------------------------------

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


def load_images(spec, image_size, count, *, split="train", data_dir=None, log=print):
    """Up to `count` evaluation-preprocessed images of dataset `spec` as uint8.

    `split` is ``"train"`` (calibration) or ``"validation"`` (verification; a dataset
    without validation data falls back to its training images, with a log line).
    ``folder:PATH`` with a ``labels.csv`` (the imagenet50 layout) gives ImageNet labels.
    """
    from mobilenet_tf import data as datasets
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    kind, value = datasets.parse_dataset_spec(spec)
    if kind == "folder" and os.path.isfile(os.path.join(value, "labels.csv")):
        return _labelled_imagenet_folder(value, size, count)
    if kind == "synthetic":   # random images: `count` of them, whatever the split
        dataset = datasets.load_dataset(spec, image_size=size[0], validation_fraction=0.0,
                                        synthetic_examples=count)
    else:
        # Images without labels (a distillation run's data) calibrate; verification uses val/.
        dataset = datasets.load_dataset(spec, data_dir=data_dir, image_size=size[0],
                                        allow_unlabelled=True)
    source = dataset.train_source
    if split == "validation" and kind != "synthetic":
        if dataset.validation_source is not None:
            source = dataset.validation_source
        else:
            log(f"{spec} has no validation data: verifying on its training images")
    xs, ys = [], []
    for batch, one_hot in datasets.eval_input(dataset, batch_size=32, image_size=size[0],
                                              source=source):
        xs.extend(imagenet.to_uint8(batch.numpy()))
        ys.extend(np.argmax(one_hot.numpy(), axis=1))
        if len(xs) >= count:
            break
    if not xs:
        raise ExportError(f"{spec}: no images in its {split} data")
    unlabelled = kind == "synthetic" or (not dataset.labelled and source is dataset.train_source)
    labels = None if unlabelled else np.asarray(ys[:count], np.int64)
    return LoadedImages(np.stack(xs[:count]), labels, dataset.class_names, dataset.num_classes,
                        f"{spec}, {split}" if kind != "synthetic" else "synthetic random images")
