"""Exports a MobileNetV1 to TFLite for Android (float32, float16, dynamic range or full int8).

  python export_tflite.py --model=runs/m050/model.keras --quantization=int8 \\
      --representative_dataset=folder:/data/my_photos --output=mobilenet.tflite
  python export_tflite.py --weights=imagenet --alpha=0.75 --image_size=192 --quantization=int8 \\
      --representative_dataset=folder:/data/my_photos --output=m.tflite
  python export_tflite.py ... --quantization=int8 --float_layers_target=0.95 --output=m.tflite

``--float_layers`` keeps named layers of an int8 export in float, ``--float_layers_target`` the
fewest layers, chosen by measured sensitivity, that bring the top-1 agreement with the Keras model
to a target (docs/quantization-report.md).

The export is one library call, ``mobilenet_tf.export.export_model`` (convert, add the TFLite
model metadata MediaPipe Tasks' ImageClassifier reads, check the ``.tflite`` file against the
Keras model with the LiteRT interpreter on validation images, then write ``--output``, the
labels beside it as ``<output name>_labels.txt`` and, with ``--saved_model_dir``, a TensorFlow
SavedModel, every file through a temporary name renamed at the end, so that a failed, refused or
interrupted export leaves nothing behind). This script turns flags into its ``ExportOptions``
(the flags are those fields, under the same names and defaults), checks them before TensorFlow
is imported, and prints: the library's progress lines on stdout, its warnings on stderr
(``WARNING: ...``; a variant MediaPipe will not run, int8 input or output, gets one), the
verification table (``--noverify`` skips it) and what was written.

Exit status (docs/errors.md): 0 written; 2 input refused before any work (a bad flag,
a missing or damaged model or weights file, an output path that cannot be written, missing
calibration data, an offline download), one line on stderr; 1 the export failed (its
verification disagrees with the Keras model too often); 130 / 143 interrupted.
"""

import dataclasses
import logging
import re
import sys

from absl import app
from absl import flags
from absl import logging as absl_logging

from mobilenet_tf import data as data_lib
from mobilenet_tf import errors
from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.export import options as export_options
from mobilenet_tf.utils import console
from mobilenet_tf.utils import native

FLAGS = flags.FLAGS
_DEFAULTS = export_options.ExportOptions()   # every ExportOptions field is a flag of that name

# --- the model --------------------------------------------------------------------------------------
flags.DEFINE_string("model", None, "A .keras model file, or a train.py --model_dir (its model.keras).")
flags.DEFINE_string("weights", None,
                    "Instead of --model: what MobileNetV1(weights=...) takes: 'imagenet', a Keras "
                    ".h5 / .keras / .weights.h5 file or a TF-slim checkpoint prefix; with --alpha, "
                    "--image_size and --classes.")
flags.DEFINE_float("alpha", 1.0, "Width multiplier α of the --weights model.")
flags.register_validator("alpha", lambda v: v > 0, message="must be > 0")
flags.DEFINE_integer("image_size", 224, "Input height and width of the --weights model.",
                     lower_bound=32)
flags.DEFINE_integer("classes", None, "Classes of the --weights model's head (default: what the "
                     "weights hold; 1001 for TF-slim checkpoints).", lower_bound=1)

# --- the conversion ---------------------------------------------------------------------------------
# Default "none"; ExportOptions.quantization=None (what a flag not given passes) also means
# int8 for a quantization-aware model, the only way it exports.
flags.DEFINE_enum("quantization", "none", export_options.QUANTIZATIONS,
                  "none: float32; float16: float16 weights; dynamic_range: int8 weights, float "
                  "activations; int8: full integer (int8 weights per channel and activations, "
                  "calibrated on --representative_dataset).")
flags.DEFINE_enum("input_type", _DEFAULTS.input_type, export_options.IO_TYPES,
                  "Input tensor type. Default: uint8 with --raw_rgb_input, else float32. int8 and "
                  "uint8 without --raw_rgb_input (quantized [-1, 1] values) need --quantization=int8.")
flags.DEFINE_enum("output_type", _DEFAULTS.output_type, export_options.IO_TYPES,
                  "Output tensor type (default float32 probabilities); int8/uint8 need "
                  "--quantization=int8.")
flags.DEFINE_boolean("raw_rgb_input", _DEFAULTS.raw_rgb_input,
                     "The model takes raw uint8 RGB 0..255 and does the [-1, 1] scaling itself, so "
                     "an app feeds camera bytes unchanged. --noraw_rgb_input: the app scales to "
                     "[-1, 1] (x / 127.5 - 1) itself.")
flags.DEFINE_string("representative_dataset", _DEFAULTS.representative_dataset,
                    "Calibration images for int8, a dataset spec as train.py's --dataset: a tfds "
                    "name, 'folder:PATH' or 'synthetic' (only with --allow_synthetic_calibration). "
                    "Its training split calibrates, its validation split verifies. Default for a "
                    "train.py run (--model=run folder or its model.keras): the run's dataset.")
flags.DEFINE_string("data_dir", _DEFAULTS.data_dir,
                    "tensorflow-datasets data directory (default: tfds' own).")
flags.DEFINE_integer("num_calibration_images", _DEFAULTS.num_calibration_images,
                     "Images used to calibrate int8.", lower_bound=1)
flags.DEFINE_boolean("allow_synthetic_calibration", _DEFAULTS.allow_synthetic_calibration,
                     "Allow --representative_dataset=synthetic (random noise: activation ranges "
                     "unlike real photos, a poor int8 model). Prints a warning.")

# --- layers kept in float (int8 only) --------------------------------------------------------------
flags.DEFINE_list("float_layers", list(_DEFAULTS.float_layers),
                  "int8: layers to keep in float, by name (Conv2d_0, Conv2d_1_depthwise, ..., "
                  "Conv2d_13_pointwise, AvgPool_1a, Logits, Predictions) or as regular "
                  "expressions matched against whole names (Conv2d_1[0-3]_.*), comma-separated. "
                  "python -m mobilenet_tf.quant_report shows which layers lose most.")
flags.DEFINE_float("float_layers_target", _DEFAULTS.float_layers_target,
                   "int8: keep the fewest further layers in float, chosen by measured sensitivity, "
                   "until the top-1 agreement with the Keras model on the verification images "
                   "reaches this fraction; prints what it kept and the size and latency against "
                   "full int8 and float32. Not reached: exit status 1, nothing written.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("max_float_layers", _DEFAULTS.max_float_layers,
                     "The most layers --float_layers_target may keep in float (default: any).",
                     lower_bound=1)

# --- verification -----------------------------------------------------------------------------------
flags.DEFINE_boolean("verify", _DEFAULTS.verify,
                     "Run the .tflite file and the Keras model on the same images and print the "
                     "comparison table; --noverify skips it.")
flags.DEFINE_string("verify_dataset", _DEFAULTS.verify_dataset,
                    "Verification images (dataset spec; its validation split). Default: the "
                    "validation split of --representative_dataset (or of a run's dataset), else "
                    "synthetic images.")
flags.DEFINE_integer("num_verification_images", _DEFAULTS.num_verification_images,
                     "Images to verify on.", lower_bound=1)
flags.DEFINE_float("min_top1_agreement", _DEFAULTS.min_top1_agreement,
                   "Fail (write nothing) when the .tflite model's top-1 class equals the Keras "
                   "model's on fewer than this fraction of the verification images. Default per "
                   "mode: " + ", ".join(f"{mode} {value:g}" for mode, value in
                                        export_options.DEFAULT_MIN_TOP1_AGREEMENT.items()) + ".",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("latency_runs", _DEFAULTS.latency_runs,
                     "invoke() calls timed per latency figure.", lower_bound=1)

# --- output -----------------------------------------------------------------------------------------
flags.DEFINE_string("output", None, "The .tflite file to write (its folder must exist).")
flags.DEFINE_string("saved_model_dir", _DEFAULTS.saved_model_dir,
                    "Also write a TensorFlow SavedModel here for serving (signature serving_default, "
                    "variable batch; replaced if it exists).")
flags.DEFINE_string("license", _DEFAULTS.license,
                    "License line written into the .tflite file's metadata. Default: Apache-2.0 "
                    "for --weights=imagenet (Google's MobileNetV1 weights), else a line saying "
                    "the exporter does not know it.")
flags.DEFINE_string("model_version", _DEFAULTS.model_version,
                    "Version written into the .tflite file's metadata.")
flags.mark_flag_as_required("output")

# The library's option names in a message, as this script's flags: `name=True` -> `--name`,
# `name=` -> `--name=`, and the names with an underscore alone (not inside a path).
_OPTION = "|".join(sorted((f.name for f in dataclasses.fields(export_options.ExportOptions)),
                          key=len, reverse=True))
_NOT_IN_A_PATH = r"(?<![\w/.\-])"


def _flag_terms(text):
    """A library message in this command's terms: its option names written as flags."""
    text = re.sub(_NOT_IN_A_PATH + rf"({_OPTION})=True\b", r"--\1", text)
    text = re.sub(_NOT_IN_A_PATH + rf"({_OPTION})=False\b", r"--no\1", text)
    text = re.sub(_NOT_IN_A_PATH + rf"({_OPTION})=", r"--\1=", text)
    return re.sub(_NOT_IN_A_PATH + rf"((?:{_OPTION}))(?![\w./\-=])",
                  lambda m: f"--{m.group(1)}" if "_" in m.group(1) else m.group(1), text)


def _refuse(problem):
    """A library rule's answer as a flag validator's: True, or ValidationError in flag terms."""
    if problem:
        raise flags.ValidationError(_flag_terms(problem))
    return True


def _spec_ok(value):
    if value is None:
        return True
    try:
        data_lib.parse_dataset_spec(value)
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return True


flags.register_validator("representative_dataset", _spec_ok)
flags.register_validator("verify_dataset", _spec_ok)


def _output_ok(value):
    problem = value is not None and export_options.output_problem(value)
    if problem:
        raise flags.ValidationError(f"{problem}. Received: --output={value}")
    return True


flags.register_validator("output", _output_ok)


def _saved_model_dir_ok(value):
    problem = value is not None and export_options.saved_model_dir_problem(value)
    if problem:
        raise flags.ValidationError(f"{problem}. Received: --saved_model_dir={value}")
    return True


flags.register_validator("saved_model_dir", _saved_model_dir_ok)


def _utf8_ok(name):
    """Text written into the .tflite metadata must be UTF-8 (issue 27: bytes that are not,
    ``$'\\xff'``, failed after the conversion)."""
    def check(value):
        try:
            value is None or value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise flags.ValidationError(
                f"must be UTF-8 text (it is written into the .tflite metadata); byte "
                f"{ord(value[e.start]) - 0xdc00:#04x} at offset {e.start} is not. Received: "
                f"--{name}={value!r}") from None
        return True
    return check


for _name in ("model_version", "license"):
    flags.register_validator(_name, _utf8_ok(_name))


@flags.multi_flags_validator(["model", "weights"],
                             message="give exactly one of --model (.keras file or train.py model "
                                     "dir) and --weights (imagenet, .h5 file, TF-slim checkpoint)")
def _one_model(values):
    return (values["model"] is None) != (values["weights"] is None)


def _quantization_aware(model):
    """A --model trained with --quantize (it exports as int8, from the ranges it learned)."""
    from mobilenet_tf.model import saved
    return model is not None and saved.is_quantization_aware_file(model)


def _quantization(values):
    """The quantization the export gets (int8 for a quantization-aware --model)."""
    return "int8" if _quantization_aware(values["model"]) else values["quantization"]


@flags.multi_flags_validator(["quantization", "representative_dataset", "allow_synthetic_calibration",
                              "model"])
def _calibration_ok(values):
    spec = values["representative_dataset"]
    if spec is None and values["model"] is not None:
        from mobilenet_tf.model import saved
        spec = saved.run_dataset(values["model"])[0]     # a run: the data it trained on
    return _refuse(export_options.calibration_problem(
        _quantization(values), spec, values["allow_synthetic_calibration"],
        _quantization_aware(values["model"])))


@flags.multi_flags_validator(["quantization", "float_layers", "float_layers_target",
                              "max_float_layers", "verify", "model"])
def _float_layers_ok(values):
    problem = export_options.float_layers_problem(
        _quantization(values), values["float_layers"], values["float_layers_target"],
        _quantization_aware(values["model"]))
    if problem:
        return _refuse(problem)
    try:
        export_options.ExportOptions(
            float_layers=tuple(values["float_layers"] or ()),
            float_layers_target=values["float_layers_target"],
            max_float_layers=values["max_float_layers"], verify=values["verify"]).check()
    except export_options.ExportError as e:
        return _refuse(str(e))
    return True


@flags.multi_flags_validator(["quantization", "input_type", "output_type", "raw_rgb_input",
                              "model"])
def _io_types_ok(values):
    try:
        export_options.resolve_io_types(_quantization(values), values["input_type"],
                                        values["output_type"], values["raw_rgb_input"])
    except ValueError as e:
        return _refuse(str(e))
    return True


def _parse_flags(argv):
    """absl parsing, but a bad flag is one line and exit status 2 (absl: 2 lines, status 1);
    a flag file that is not UTF-8 or includes itself is refused first (issue 27)."""
    problem = cli_args.flagfile_problem(argv)
    if problem:
        sys.stderr.write(f"export_tflite.py: error: {problem}\n")
        sys.exit(2)
    try:
        return FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"export_tflite.py: error: {' '.join(str(e).split())}\n")
        sys.exit(2)


# --- output -----------------------------------------------------------------------------------------

class _Lines(logging.Formatter):
    """The library's log lines in this command's terms; warnings start with ``WARNING:``."""

    def format(self, record):
        text = _flag_terms(record.getMessage())
        return f"WARNING: {text}" if record.levelno >= logging.WARNING else text


def _log_lines():
    """The library's INFO lines on stdout, its warnings on stderr (both as flag terms)."""
    logger = console.log_to("stdout")
    for handler in logger.handlers:
        handler.setFormatter(_Lines())
        handler.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(_Lines())
    logger.addHandler(warnings)


def _options():
    """ExportOptions from the flags of its fields (quantization None when not given)."""
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(export_options.ExportOptions)}
    if not FLAGS["quantization"].present:
        values["quantization"] = None
    values["float_layers"] = tuple(values["float_layers"] or ())
    return export_options.ExportOptions(**values)


def _export():
    from mobilenet_tf.model import saved
    given = [name for name in saved.MODEL_SETTINGS if name in FLAGS and FLAGS[name].present]
    problem = FLAGS.model is not None and saved.settings_it_fixes(f"--model={FLAGS.model}", given)
    if problem:
        raise export_options.ExportError(problem)
    _options().check()       # every setting's own check, before TensorFlow (issue 27)
    native.import_tensorflow()
    from mobilenet_tf import export
    source = FLAGS.model if FLAGS.model is not None else export.FromWeights(
        FLAGS.weights, alpha=FLAGS.alpha, image_size=FLAGS.image_size, classes=FLAGS.classes)
    from mobilenet_tf.export import selection
    try:
        result = export.export_model(source, FLAGS.output, _options())
    except export.VerificationError as e:
        if e.verification is not None:
            print("\n".join(e.verification.lines()))
        raise
    except selection.SelectionError as e:
        print("\n".join(_flag_terms(line) for line in e.selection.lines()))
        raise
    if result.selection is not None:
        print("\n".join(_flag_terms(line) for line in result.selection.lines()))
    if result.comparison:
        print("\n".join(selection.comparison_lines(result.comparison,
                                                   result.verification.num_images)))
    if result.verification is not None:
        print("\n".join(result.verification.lines()))
    saved_model = f"; SavedModel {FLAGS.saved_model_dir}" if FLAGS.saved_model_dir else ""
    print(f"Wrote {result.output} ({result.size_bytes:,} bytes, with TFLite metadata and its "
          f"{result.num_classes} labels packed in) and {result.labels_file}{saved_model}")
    return 0


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"export_tflite.py: error: unexpected arguments {argv[1:]} "
                         "(flags start with --)\n")
        return errors.EXIT_REFUSED
    absl_logging.set_verbosity(absl_logging.WARNING)
    _log_lines()
    return runtime.run_command("export_tflite.py", _export)


if __name__ == "__main__":
    runtime.exit_on_early_signals("export_tflite.py")
    app.run(main, flags_parser=_parse_flags)
