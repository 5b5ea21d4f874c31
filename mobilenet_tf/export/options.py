"""The settings of an export and their rules, checked before any work: pure Python.

:class:`ExportOptions` is every setting of :func:`mobilenet_tf.export.pipeline.export_model`,
one field each with its default (``export_tflite.py`` makes its flags from these fields, under
the same names). The rules across settings are stated here once, as functions that return
the problem in one line (or None) so that the library raises them as :class:`ExportError` and
``export_tflite.py`` refuses the same flags before TensorFlow is imported:
:func:`resolve_io_types`, :func:`calibration_problem`, :func:`float_layers_problem`,
:func:`output_problem`, :func:`saved_model_dir_problem`.

This module imports neither TensorFlow nor NumPy, and reads no flags.
"""

import dataclasses
import os
import re

from mobilenet_tf import data as data_lib
from mobilenet_tf.errors import InputError, WorkError
from mobilenet_tf.model.defaults import NUM_CALIBRATION_IMAGES
from mobilenet_tf.utils import fileio

__all__ = ["QUANTIZATIONS", "IO_TYPES", "DEFAULT_MIN_TOP1_AGREEMENT", "DEFAULT_NUM_CALIBRATION_IMAGES",
           "DEFAULT_MODEL_VERSION", "ExportError", "VerificationError", "ExportOptions",
           "resolve_io_types", "calibration_problem", "float_layers_problem", "output_problem",
           "saved_model_dir_problem"]

QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")
IO_TYPES = ("uint8", "int8", "float32")
# Fewest top-1 agreements with the Keras model (fraction of the verification images) an export
# must reach. Measured on the 50 imagenet50 images (bench/README.md, "TFLite export modes at
# α=0.25/128"): float32 and float16 agree on 50/50 at 0.25/128; dynamic range 46/50; int8
# (post-training, calibrated on 244 photos) 43/50 at 0.25/128 and 45/50 at 0.75/192. The
# defaults leave a few images of margin; small models are less sure of their top-1 and so flip
# more often under quantization.
DEFAULT_MIN_TOP1_AGREEMENT = {"none": 0.98, "float16": 0.96, "dynamic_range": 0.85, "int8": 0.8}
DEFAULT_NUM_CALIBRATION_IMAGES = NUM_CALIBRATION_IMAGES   # also QAT's calibrated start
DEFAULT_MODEL_VERSION = "1"


class ExportError(InputError):
    """An export that cannot be done as asked. One-line message (exit 2)."""


class VerificationError(WorkError, ExportError):
    """The converted file disagrees with the Keras model more than allowed (exit 1).
    ``verification``: the :class:`mobilenet_tf.export.verification.Verification` that fell short
    (None when raised without one)."""

    def __init__(self, message, verification=None):
        super().__init__(message)
        self.verification = verification


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Every setting of an export (``export_tflite.py``'s flags have these names and defaults).

    Conversion:
      quantization: one of :data:`QUANTIZATIONS`; None: ``none``, or ``int8`` for a
        quantization-aware model (which exports as nothing else).
      input_type, output_type: one of :data:`IO_TYPES` or None (:func:`resolve_io_types`).
      raw_rgb_input: the model takes uint8 RGB 0..255 and scales to [-1, 1] itself.
      representative_dataset: the dataset spec whose training images calibrate ``int8``
        (``mobilenet_tf.data``: a tfds name, ``folder:PATH``, ``synthetic`` only with
        `allow_synthetic_calibration`); None: a ``train.py`` run's own dataset.
      data_dir: tensorflow-datasets' data directory (None: the run's, else tfds' own).
      num_calibration_images: images that calibrate ``int8``.
    Layers kept in float (``int8`` only; docs/quantization-report.md):
      float_layers: layer names (``Conv2d_0``, ``Conv2d_13_pointwise``, ``Logits``,
        ``Predictions``) or regular expressions matched against whole names
        (``Conv2d_1[0-3]_.*``) of layers to keep in float; the rest is int8.
      float_layers_target: keep the fewest further layers in float, chosen by measured
        sensitivity, until the top-1 agreement with the Keras model on the verification images
        reaches this fraction (``mobilenet_tf.export.selection``); None: no automatic choice.
      max_float_layers: the most layers the automatic choice may keep in float (None: any).
    Verification (the ``.tflite`` file against the Keras model, before anything is written):
      verify: False skips it.
      verify_dataset: dataset spec whose validation images verify; None: that of the
        representative dataset (or the run's), else synthetic images.
      num_verification_images, latency_runs: images compared; ``invoke()`` calls timed per latency.
      min_top1_agreement: the fraction of images whose top-1 class must agree; None:
        `float_layers_target` when given, else :data:`DEFAULT_MIN_TOP1_AGREEMENT` of the
        quantization.
    Files:
      saved_model_dir: also write a TensorFlow SavedModel (variable batch) here.
      license, model_version: written into the ``.tflite`` metadata (license None: Apache-2.0
        for ``weights="imagenet"``, else a line saying it is not known).
    """
    quantization: str = None
    input_type: str = None
    output_type: str = None
    raw_rgb_input: bool = True
    representative_dataset: str = None
    data_dir: str = None
    num_calibration_images: int = DEFAULT_NUM_CALIBRATION_IMAGES
    allow_synthetic_calibration: bool = False
    float_layers: tuple = ()
    float_layers_target: float = None
    max_float_layers: int = None
    verify: bool = True
    verify_dataset: str = None
    num_verification_images: int = 200
    min_top1_agreement: float = None
    latency_runs: int = 30
    saved_model_dir: str = None
    license: str = None
    model_version: str = DEFAULT_MODEL_VERSION

    def check(self):
        """ExportError (one line) for the first setting that is not allowed on its own or with
        the others, as far as that is known without the model."""
        # quantization None is "none" or, for a quantization-aware model, "int8": what int8
        # refuses, every quantization refuses; the rest is checked once the model is known.
        resolve_io_types(self.quantization or "int8", self.input_type, self.output_type,
                         self.raw_rgb_input)
        for name in ("num_calibration_images", "num_verification_images", "latency_runs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ExportError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
        minimum = self.min_top1_agreement
        if minimum is not None and not (isinstance(minimum, (int, float)) and 0 <= minimum <= 1):
            raise ExportError("`min_top1_agreement` must be a fraction in [0, 1]. Received: "
                              f"min_top1_agreement={minimum!r}")
        version = self.model_version
        if not isinstance(version, str) or not version.strip():
            raise ExportError("`model_version` must be a non-empty string (it is written into "
                              f"the .tflite metadata). Received: model_version={version!r}")
        for name in ("representative_dataset", "verify_dataset"):
            if getattr(self, name) is not None:
                try:
                    data_lib.parse_dataset_spec(getattr(self, name))
                except ValueError as e:
                    raise ExportError(f"{name}: {e}") from None
        self._check_float_layers()
        problem = self.saved_model_dir and saved_model_dir_problem(self.saved_model_dir)
        if problem:
            raise ExportError(f"{problem}. Received: saved_model_dir={self.saved_model_dir!r}")

    def _check_float_layers(self):
        entries = self.float_layers
        if isinstance(entries, str) or not all(isinstance(e, str) and e.strip() for e in entries):
            raise ExportError("`float_layers` must be a sequence of layer names or patterns. "
                              f"Received: float_layers={entries!r}")
        for entry in entries:
            try:
                re.compile(entry)
            except re.error as e:
                raise ExportError(f"float_layers: {entry!r} is not a regular expression ({e}). "
                                  f"Received: float_layers={entry}") from None
        target = self.float_layers_target
        if target is not None and not (isinstance(target, (int, float)) and 0 < target <= 1):
            raise ExportError("`float_layers_target` must be a fraction in (0, 1]. Received: "
                              f"float_layers_target={target!r}")
        limit = self.max_float_layers
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise ExportError(f"`max_float_layers` must be an int >= 1. Received: "
                              f"max_float_layers={limit!r}")
        if limit is not None and target is None:
            raise ExportError("max_float_layers bounds the automatic choice: give "
                              "float_layers_target too")
        if target is not None and not self.verify:
            raise ExportError("float_layers_target chooses layers on the verification images: "
                              "it cannot be used with verify=False")


def float_layers_problem(quantization, float_layers, float_layers_target, quantization_aware=False):
    """Why layers cannot be kept in float as asked (one line), or None."""
    if not float_layers and float_layers_target is None:
        return None
    option = "float_layers" if float_layers else "float_layers_target"
    if quantization_aware:
        return (f"{option}: a quantization-aware model exports to int8 from its learned ranges; "
                "layers are kept in float in a post-training int8 export of a float model")
    if quantization != "int8":
        return (f"{option} keeps layers of an int8 export in float: it needs quantization=int8. "
                f"Received: quantization={quantization}")
    return None


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


def calibration_problem(quantization, representative_dataset, allow_synthetic_calibration,
                        quantization_aware=False):
    """Why an export cannot be calibrated as asked (one line), or None. `quantization` is the
    one the export gets (``int8`` for a quantization-aware model, which calibrates on nothing:
    its ranges were learned); `representative_dataset` the spec it would calibrate on (the
    option, or a run's dataset)."""
    if quantization != "int8" or quantization_aware:
        return None
    if representative_dataset is None:
        return ("quantization=int8 needs calibration images: representative_dataset=folder:PATH "
                "or a tfds name (a few hundred images like those the app sees)")
    if representative_dataset == "synthetic" and not allow_synthetic_calibration:
        return ("representative_dataset=synthetic calibrates on random noise; pass "
                "allow_synthetic_calibration=True to do it anyway")
    return None


def output_problem(path):
    """Why `path` cannot be the ``.tflite`` file written (one line), or None."""
    if not os.fspath(path).endswith(".tflite"):
        return "must be a .tflite file name"
    return fileio.file_problem(path)


def saved_model_dir_problem(path):
    """Why a SavedModel cannot be written to folder `path` (one line), or None: its parent
    must exist (the folder itself is replaced whole)."""
    parent = os.path.dirname(os.path.abspath(path))
    return fileio.folder_problem(path) or (None if os.path.isdir(parent) else
                                           f"folder {parent} does not exist")
