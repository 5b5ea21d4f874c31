"""Export a model to a ``.tflite`` file in one call: :func:`export_model`.

The sequence, each step a function of its own module: load the model (a ``.keras`` file or a
``train.py`` run folder, a MobileNetV1 from weights, or a Keras model in memory); choose the
calibration and verification data (the options, else a run's own dataset); calibrate
(:func:`mobilenet_tf.export.images.load_images`), convert
(:func:`mobilenet_tf.export.converter.convert`), add the metadata MediaPipe reads
(:func:`mobilenet_tf.export.classifier_metadata.with_metadata`), verify against the Keras model
(:func:`mobilenet_tf.export.verification.verify`, :func:`~mobilenet_tf.export.verification.check_agreement`);
only then write the ``.tflite`` file, ``<name>_labels.txt`` beside it and optionally a
SavedModel, all through temporary names renamed at the end
(:func:`mobilenet_tf.utils.fileio.write_all`): a refused, failed or interrupted export
leaves nothing behind. It returns an :class:`ExportResult` saying what it did.

With ``float_layers`` or ``float_layers_target`` (int8 only) the conversion is
:class:`mobilenet_tf.export.selective.SelectiveQuantizer`'s (calibrate once, quantize with those
layers in float), the automatic choice :func:`mobilenet_tf.export.selection.select_float_layers`'s
on the verification images, and the result also holds what was kept and the file against full
int8 and float32 (``ExportResult.selection``, ``.comparison``).

Progress goes to ``logging`` (INFO), what the user should act on at WARNING (also in
``ExportResult.warnings``). This module prints nothing and reads no flags.
"""

import dataclasses
import logging
import os

from mobilenet_tf.export import classifier_metadata, converter, images, verification
from mobilenet_tf.export.options import (DEFAULT_MIN_TOP1_AGREEMENT, ExportError, ExportOptions,
                                         calibration_problem, float_layers_problem, output_problem,
                                         resolve_io_types)
from mobilenet_tf.export.verification import Verification
from mobilenet_tf.model import labels as labels_lib
from mobilenet_tf.model import saved
from mobilenet_tf.utils import backend
from mobilenet_tf.utils import fileio

__all__ = ["GOOGLE_WEIGHTS_LICENSE", "UNKNOWN_LICENSE", "FromWeights", "ExportResult",
           "export_model", "load_source"]

logger = logging.getLogger(__name__)

GOOGLE_WEIGHTS_LICENSE = "Apache-2.0 (Google's MobileNetV1 ImageNet weights)"
UNKNOWN_LICENSE = "not stated: the exporter does not know the license of these weights and data"


@dataclasses.dataclass(frozen=True)
class FromWeights:
    """A source for :func:`export_model`: a MobileNetV1 of `alpha` and `image_size` with
    `weights` (what ``MobileNetV1(weights=...)`` takes: ``"imagenet"``, a Keras ``.h5`` /
    ``.keras`` / ``.weights.h5`` file, a TF-slim checkpoint prefix); `classes`: the head's
    size (default: what the weights hold)."""
    weights: str
    alpha: float = 1.0
    image_size: int = 224
    classes: int = None

    def __str__(self):
        return (f"MobileNetV1 alpha={self.alpha:g} {self.image_size}x{self.image_size} "
                f"weights={self.weights}")


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_model` did."""
    output: str                       # the .tflite file written
    source: str                       # what was exported, in words
    quantization: str
    quantization_aware: bool          # int8 from ranges learned in training, no calibration
    image_size: tuple                 # (height, width)
    labels: list                      # class names in output order (packed in, and beside)
    size_bytes: int = 0
    calibration: str = None           # "N images (where from)", or None
    verification: Verification = None   # None with verify=False
    min_top1_agreement: float = None  # the threshold the verification was held to
    mediapipe_problem: str = None     # why MediaPipe will not run the file, or None
    float_layers: tuple = ()          # layers of an int8 export kept in float
    selection: object = None          # the automatic choice (selection.Selection), or None
    comparison: list = dataclasses.field(default_factory=list)   # selection.FileFigures rows
    files: list = dataclasses.field(default_factory=list)      # written, in order
    warnings: list = dataclasses.field(default_factory=list)   # one line each
    content: bytes = dataclasses.field(default=b"", repr=False)   # the .tflite file's bytes

    @property
    def num_classes(self):
        return len(self.labels)

    @property
    def labels_file(self):
        return labels_lib.labels_path(self.output)


def _checked(options, output):
    """`options` (default ExportOptions()) and `output` checked before any work."""
    options = ExportOptions() if options is None else options
    if not isinstance(options, ExportOptions):
        raise ExportError(f"`options` must be an ExportOptions. Received: options={options!r}")
    options.check()
    problem = output_problem(output)
    if problem:
        raise ExportError(f"output {problem}. Received: output={os.fspath(output)!r}")
    return options


def load_source(source):
    """``(keras model, class names or None, description, path of a .keras file / run or None)``
    of an :func:`export_model` `source`."""
    if isinstance(source, FromWeights):
        if saved.is_keras_model_path(os.fspath(source.weights)):   # a .keras file given as weights
            return saved.load_model(source.weights)[0], None, str(source), None
        model = saved.model_from_weights(source.weights, alpha=source.alpha,
                                         image_size=source.image_size, classes=source.classes)
        return model, None, str(source), None
    if isinstance(source, (str, os.PathLike)):
        model, class_names = saved.load_model(source)
        return model, class_names, os.fspath(source), os.fspath(source)
    if hasattr(source, "input_shape") and hasattr(source, "output_shape"):
        return source, None, source.name, None
    raise ExportError("`source` must be a .keras file or train.py run folder, a FromWeights or a "
                      f"Keras model. Received: source={source!r}")


def _start(model, description, options, output):
    """The result of exporting `model` as `options` say, as far as it is known before any work:
    its weights finite, its quantization (int8 for a quantization-aware model; another one
    refused) and tensor types checked."""
    from mobilenet_tf.model import finite, qat
    problem = finite.nonfinite_problem(model)
    if problem:          # what it would convert to is not a model (issue 27)
        raise ExportError(f"{description} cannot be exported: {problem}")
    quantization_aware = qat.is_quantization_aware(model)
    quantization = options.quantization
    if quantization_aware and quantization not in (None, "int8"):
        raise ExportError(f"{description} was trained with --quantize (quantization-aware): it "
                          f"exports as quantization=int8 (from its learned ranges). Received: "
                          f"quantization={quantization!r}")
    quantization = "int8" if quantization_aware else quantization or "none"
    resolve_io_types(quantization, options.input_type, options.output_type, options.raw_rgb_input)
    size = converter.model_image_size(model)
    logger.info("Exporting %s (%dx%d, %d classes) as %s", description, *size,
                int(model.output_shape[-1]), quantization)
    return ExportResult(output=output, source=description, quantization=quantization,
                        quantization_aware=quantization_aware, image_size=size, labels=[])


def _warn(result, message):
    result.warnings.append(message)
    logger.warning(message)


def _data(options, path, result):
    """``(calibration spec or None, verification spec or None, data_dir)``: the options', else
    those of the run `path` trained on, else synthetic images to verify on."""
    run_spec, run_data_dir = saved.run_dataset(path) if path else (None, None)
    representative = options.representative_dataset or run_spec
    problem = calibration_problem(result.quantization, representative,
                                  options.allow_synthetic_calibration, result.quantization_aware)
    if problem:
        raise ExportError(problem)
    if run_spec and not (options.representative_dataset and options.verify_dataset):
        logger.info("The run's dataset %s is used where representative_dataset / verify_dataset "
                    "are not given", run_spec)
    calibrate = result.quantization == "int8" and not result.quantization_aware
    if result.quantization_aware:
        logger.info("Quantization-aware model: int8 from the ranges it learned in training "
                    "(no calibration)")
    elif calibrate and representative == "synthetic":
        _warn(result, "calibrating on synthetic random images (allow_synthetic_calibration=True): "
                      "activation ranges of noise, not of photos; expect a poor int8 model")
    verify_spec = options.verify_dataset or representative
    if options.verify and verify_spec is None:
        _warn(result, "no verify_dataset or representative_dataset: verifying on synthetic random "
                      "images (probability differences only)")
        verify_spec = "synthetic"
    return (representative if calibrate else None, verify_spec if options.verify else None,
            options.data_dir or run_data_dir)


def _labels(num_classes, class_names, *loaded):
    """The head's labels: `class_names`, else those of the first of the `loaded` image sets
    that has a name per output, else :func:`mobilenet_tf.model.labels.label_names`' defaults."""
    for images_ in loaded:
        if (class_names is None and images_ is not None and images_.class_names
                and not images_.imagenet_labels and len(images_.class_names) == num_classes):
            class_names = images_.class_names
    return labels_lib.label_names(num_classes, class_names)


def _add_metadata(result, content, model, source, options):
    """The bytes with their metadata into `result`, and a warning if MediaPipe will not run them."""
    license = options.license
    if license is None:
        google = isinstance(source, FromWeights) and source.weights == "imagenet"
        license = GOOGLE_WEIGHTS_LICENSE if google else UNKNOWN_LICENSE
    quantization = result.quantization
    if result.float_layers:
        quantization += (f" with {len(result.float_layers)} layer(s) kept in float: "
                         f"{', '.join(result.float_layers)}")
    result.content = classifier_metadata.with_metadata(
        content, model, result.labels, quantization=quantization,
        version=options.model_version, license=license)
    result.size_bytes = len(result.content)
    result.mediapipe_problem = classifier_metadata.mediapipe_problem(result.content)
    if result.mediapipe_problem:
        _warn(result, f"{result.output} {result.mediapipe_problem}. For MediaPipe, export with "
                      "the defaults raw_rgb_input=True and output_type=float32")


def _verify(result, model, checked, options):
    """The verification into `result`; VerificationError below the agreement threshold."""
    num_classes = len(result.labels)
    result.verification = verification.verify(
        result.content, model, checked.images, checked.labels_for(num_classes),
        quantization=result.quantization, latency_runs=options.latency_runs,
        description=checked.description)
    result.min_top1_agreement = options.min_top1_agreement
    if result.min_top1_agreement is None:      # a target the user chose, else the mode's default
        result.min_top1_agreement = (DEFAULT_MIN_TOP1_AGREEMENT[result.quantization]
                                     if options.float_layers_target is None
                                     else options.float_layers_target)
    verification.check_agreement(result.verification, result.min_top1_agreement)


def _write(result, model, options):
    """The .tflite file, its labels and the optional SavedModel, all or nothing."""
    files = {result.output: result.content,
             result.labels_file: ("\n".join(result.labels) + "\n").encode("utf-8")}
    saved_model = None
    if options.saved_model_dir:
        saved_model = (converter.serving_archive(model, raw_rgb_input=options.raw_rgb_input,
                                                 batch_size=None), options.saved_model_dir)
    fileio.write_all(files, saved_model)
    result.files = list(files) + ([options.saved_model_dir] if saved_model else [])


def export_model(source, output, options=None, *, class_names=None):
    """Exports `source` to the ``.tflite`` file `output` as `options` say; returns what it did.

    Args:
      source: a ``.keras`` file or ``train.py`` run folder (path), a :class:`FromWeights`, or a
        Keras model with a fixed input size.
      output: the ``.tflite`` file to write (its folder must exist); its labels go to
        ``<name>_labels.txt`` beside it.
      options: an :class:`~mobilenet_tf.export.options.ExportOptions` (default: its defaults).
      class_names: the head's class names in output order, for a source that has none (default:
        the run's, else the calibration / verification dataset's when they fit the head, else
        ImageNet's for a 1000 / 1001 head, else ``class_0``, ...).

    Returns:
      An :class:`ExportResult`.

    Raises:
      BackendError (one line) on a Keras backend other than TensorFlow's; ExportError (and the
      InputError / WeightsError of a model that cannot be loaded or data
      that cannot be read), one line, before anything is written; VerificationError (carrying
      the Verification) when the file agrees with the Keras model on fewer top-1 classes than
      ``options.min_top1_agreement``: nothing is written then either.
    """
    backend.require_tensorflow(backend.TFLITE)
    options = _checked(options, output)
    model, run_names, description, path = load_source(source)
    result = _start(model, description, options, os.fspath(output))
    problem = float_layers_problem(result.quantization, options.float_layers,
                                   options.float_layers_target, result.quantization_aware)
    if problem:
        raise ExportError(problem)
    if options.float_layers:      # a name that is no layer is refused before any work
        from mobilenet_tf.export import layer_map, selective
        selective.resolve_float_layers(options.float_layers, layer_map.expected_layers(model))
    calibration_spec, verify_spec, data_dir = _data(options, path, result)
    calibration = checked = None
    if calibration_spec is not None:
        calibration = images.load_images(calibration_spec, result.image_size,
                                         options.num_calibration_images, split="train",
                                         data_dir=data_dir)
        result.calibration = f"{len(calibration.images)} images ({calibration.description})"
        logger.info("Calibrating on %s", result.calibration)
    if verify_spec is not None:
        checked = images.load_images(verify_spec, result.image_size,
                                     options.num_verification_images, split="validation",
                                     data_dir=data_dir)
    if options.float_layers or options.float_layers_target is not None:
        content = _selective(result, model, calibration, checked, options)
    else:
        content = converter.convert(model, result.quantization,
                                    None if calibration is None else calibration.images,
                                    input_type=options.input_type, output_type=options.output_type,
                                    raw_rgb_input=options.raw_rgb_input,
                                    num_calibration_images=options.num_calibration_images)
    result.labels = _labels(int(model.output_shape[-1]),
                            run_names if class_names is None else list(class_names),
                            calibration, checked)
    _add_metadata(result, content, model, source, options)
    if checked is not None:
        _verify(result, model, checked, options)
    _write(result, model, options)
    return result


def _selective(result, model, calibration, checked, options):
    """The int8 bytes with the layers `options` name (and, with a target, those the automatic
    choice adds) kept in float; the choice and the comparison with full int8 and float32 into
    `result`. SelectionError (nothing written) when the target is not reached."""
    from mobilenet_tf.export import layer_map, selection, selective, sensitivity
    quantizer = selective.SelectiveQuantizer(
        model, calibration.images, input_type=options.input_type,
        output_type=options.output_type, raw_rgb_input=options.raw_rgb_input,
        num_calibration_images=options.num_calibration_images)
    float_layers = selective.resolve_float_layers(options.float_layers, quantizer.layers)
    keras_probs = None if checked is None else sensitivity.keras_probabilities(model, checked.images)
    if options.float_layers_target is not None:
        logger.info("Choosing layers to keep in float until the top-1 agreement reaches %g on %d "
                    "images (%s)", options.float_layers_target, len(checked.images),
                    checked.description)
        result.selection = selection.select_float_layers(
            quantizer, checked.images, keras_probs, options.float_layers_target,
            base=float_layers, max_float_layers=options.max_float_layers,
            mult_adds=layer_map.mult_adds_by_layer(model))
        float_layers = result.selection.float_layers
    result.float_layers = float_layers
    logger.info("Kept in float: %s", ", ".join(float_layers) or "no layer (full int8)")
    content = quantizer.quantize(float_layers)
    if checked is not None:
        files = {"float32": (converter.convert(model, "none", raw_rgb_input=options.raw_rgb_input),
                             len(quantizer.layers)),
                 "full int8": (quantizer.quantize(()), 0),
                 "this export": (content, len(float_layers))}
        result.comparison = selection.compare_files(files, checked.images, keras_probs,
                                                    latency_runs=options.latency_runs)
    return content
