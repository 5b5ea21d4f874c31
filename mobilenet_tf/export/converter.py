"""Convert a Keras MobileNetV1 to TFLite: the ``.tflite`` file's bytes, in one of
:data:`~mobilenet_tf.export.options.QUANTIZATIONS`:

``none``           float32 weights and activations;
``float16``        float16 weights (half the size), float32 arithmetic on CPUs;
``dynamic_range``  int8 weights, float activations (weights quantized per channel,
                   activations quantized on the fly inside each layer);
``int8``           full integer: every convolution and the classifier in int8 with
                   per-channel weights and per-tensor activations whose ranges are
                   calibrated on representative images (the TFLite converter's
                   post-training integer quantization), or learned in training by a
                   quantization-aware model (``mobilenet_tf.model.qat``).

The input is fixed to the model's size with batch 1 (what mobile runtimes want) and the
file has one signature, ``serving_default``, with input ``images`` and output
``probabilities``. With ``raw_rgb_input`` (the default) the model takes uint8 RGB
0..255 (what Android's camera / Bitmap pipelines give) and does the [-1, 1] scaling
itself: a Cast/Mul/Sub inside the float models; for ``int8`` the input quantization
is pinned to map 0..255 onto the [-1, 1] range (scale 2/255, zero point 127 or 128;
Google's official quantized MobileNets: scale 1/128, zero point 128), so the bytes go
in unchanged and no extra operator runs. :func:`serving_archive` is the
``keras.export.ExportArchive`` with that signature (also what a SavedModel for serving is
written from).

This module returns bytes; it writes no files except inside a temporary directory it
removes (the TFLite converter reads a SavedModel from disk). It loads no data and no model.
"""

import shutil
import tempfile
import warnings

import numpy as np

from mobilenet_tf.export.options import DEFAULT_NUM_CALIBRATION_IMAGES, ExportError, resolve_io_types
from mobilenet_tf.model import imagenet
from mobilenet_tf.utils import native
from mobilenet_tf.utils import backend

__all__ = ["SIGNATURE_KEY", "INPUT_NAME", "OUTPUT_NAME", "model_image_size", "to_unit_range",
           "serving_archive", "convert", "calibrate", "quantize_calibrated"]

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
_RAW_SCALE = 2.0 / 255.0


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
    tf = backend.tensorflow(backend.TFLITE)
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


def _calibration_images(model, representative_images, num_calibration_images, raw_rgb_input):
    """The first `num_calibration_images` of `representative_images` as float [-1, 1] arrays
    at the model's size, the input range pinned to [-1, 1] with `raw_rgb_input`."""
    height, width = model_image_size(model)
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
    return calibration


def _run_converter(model, raw_rgb_input, configure):
    """The TFLite converter over `model`'s serving archive, set up by ``configure(converter)``,
    run; its bytes."""
    tf = backend.tensorflow(backend.TFLITE)
    archive = serving_archive(model, raw_rgb_input=raw_rgb_input, batch_size=1)
    tmp = tempfile.mkdtemp(prefix="mobilenet_tf_export_")
    try:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE_KEY])
        configure(converter)
        with warnings.catch_warnings(), native.quiet_native_stderr():
            # The converter's calibrator still uses tf.lite.Interpreter internally; its C++
            # prints "fully_quantize: 0, inference_type: 6, ..." (errors still raise).
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            return converter.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _representative_dataset(calibration):
    def representative_dataset():
        for image in calibration:
            yield {INPUT_NAME: image[np.newaxis]}
    return representative_dataset


def _check_pinned_input(content):
    from mobilenet_tf.export import tflite
    runner = tflite.TFLiteClassifier(content)
    scale, zero_point = runner.input_quantization
    if runner.input_kind != "raw_rgb" or abs(scale - _RAW_SCALE) > 1e-6 * _RAW_SCALE:
        raise ExportError(f"internal: the int8 input quantization is scale {scale}, zero point "
                          f"{zero_point}, not 2/255 and 127 or 128 as pinned")


def convert(model, quantization, representative_images=None, *, input_type=None, output_type=None,
            raw_rgb_input=True, num_calibration_images=DEFAULT_NUM_CALIBRATION_IMAGES):
    """Converts a Keras image classifier to a ``.tflite`` model and returns its bytes.

    Args:
      model: a Keras model with a fixed input size (a ``MobileNetV1`` or a ``train.py`` model).
      quantization: one of :data:`mobilenet_tf.export.options.QUANTIZATIONS`.
      representative_images: for ``int8``, the calibration images (an array or iterable of
        (H, W, 3) images at the model's size, uint8 0..255 or float [-1, 1]); the first
        `num_calibration_images` are used. Required for ``int8``, ignored otherwise.
      input_type, output_type: tensor types, see :func:`mobilenet_tf.export.options.resolve_io_types`.
      raw_rgb_input: the model takes uint8 RGB 0..255 and scales to [-1, 1] itself.

    Raises:
      ExportError: a bad argument or missing calibration data (one line).
    """
    input_type, output_type = resolve_io_types(quantization, input_type, output_type, raw_rgb_input)
    model_image_size(model)
    from mobilenet_tf.model import qat
    quantization_aware = qat.is_quantization_aware(model)
    if quantization_aware and quantization != "int8":
        raise ExportError(f"{model.name} is quantization-aware (trained with quantize): it exports "
                          f"as quantization=int8, from its learned ranges. Received: "
                          f"quantization={quantization!r}")
    calibration = None
    if quantization == "int8" and not quantization_aware:
        calibration = _calibration_images(model, representative_images, num_calibration_images,
                                          raw_rgb_input)

    tf = backend.tensorflow(backend.TFLITE)

    def configure(converter):
        if quantization != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            if calibration is not None:
                converter.representative_dataset = _representative_dataset(calibration)
                # Full int8, or the conversion fails.
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # else: the fake-quantization ops of a quantization-aware model carry every range
            # (the converter refuses TFLITE_BUILTINS_INT8 without a representative dataset).
            converter.inference_input_type = getattr(tf, _TF_TYPES[input_type])
            converter.inference_output_type = getattr(tf, _TF_TYPES[output_type])

    content = _run_converter(model, raw_rgb_input and quantization != "int8", configure)
    if quantization == "int8" and raw_rgb_input:
        _check_pinned_input(content)
    return content


def calibrate(model, representative_images, *, raw_rgb_input=True,
              num_calibration_images=DEFAULT_NUM_CALIBRATION_IMAGES):
    """`model` as a float ``.tflite`` model carrying the activation ranges calibrated on
    `representative_images` (the TFLite converter's calibrate-only mode, the first half of
    what :func:`convert` does for ``int8``): what :func:`quantize_calibrated` quantizes, any
    number of times, with any layers left in float. Arguments as :func:`convert`'s; a
    quantization-aware model is refused (its ranges were learned, it calibrates on nothing)."""
    model_image_size(model)
    from mobilenet_tf.model import qat
    if qat.is_quantization_aware(model):
        raise ExportError(f"{model.name} is quantization-aware (trained with quantize): its int8 "
                          "comes from its learned ranges, not from a calibration; keeping layers "
                          "in float and the per-layer report need the float model it started from")
    calibration = _calibration_images(model, representative_images, num_calibration_images,
                                      raw_rgb_input)
    tf = backend.tensorflow(backend.TFLITE)

    def configure(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(calibration)
        converter._experimental_calibrate_only = True   # what QuantizationDebugger sets
    return _run_converter(model, False, configure)


def quantize_calibrated(calibrated, *, input_type=None, output_type=None, raw_rgb_input=True,
                        float_nodes=()):
    """The int8 ``.tflite`` bytes of a :func:`calibrate` result, the operators whose output
    tensors are named in `float_nodes` left in float (with a DEQUANTIZE before and a QUANTIZE
    after each float stretch). This is the TFLite converter's own quantizer, ``mlir_quantize``,
    as ``convert`` runs it, with the ``denylisted_nodes`` QuantizationDebugger passes to it;
    ``float_nodes=()`` gives the full int8 model."""
    input_type, output_type = resolve_io_types("int8", input_type, output_type, raw_rgb_input)
    tf = backend.tensorflow(backend.TFLITE)
    tflite_convert = backend.tensorflow(    # QuantizationDebugger's own quantizer
        backend.TFLITE, module="tensorflow.lite.python.convert")
    with warnings.catch_warnings(), native.quiet_native_stderr():
        content = tflite_convert.mlir_quantize(
            calibrated, input_data_type=getattr(tf, _TF_TYPES[input_type]),
            output_data_type=getattr(tf, _TF_TYPES[output_type]),
            denylisted_nodes=list(float_nodes) or None)
    if raw_rgb_input:
        _check_pinned_input(content)
    return content
