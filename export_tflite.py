"""Exports a MobileNetV1 to TFLite for Android (float32, float16, dynamic range or full int8).

  python export_tflite.py --model=runs/m050/model.keras --quantization=int8 \\
      --representative_dataset=folder:/data/my_photos --output=mobilenet.tflite
  python export_tflite.py --weights=imagenet --alpha=0.75 --image_size=192 --quantization=int8 \\
      --representative_dataset=folder:/data/my_photos --output=m.tflite

Converts (``mobilenet_tf.export.converter.convert``), adds the TFLite model metadata MediaPipe Tasks'
ImageClassifier reads (the class names packed in, the input's normalization, name, version,
license: ``mobilenet_tf.export.converter.with_metadata``; a variant MediaPipe will not run, int8 input or
output, gets one WARNING line), then checks the ``.tflite`` file against the Keras model with
the LiteRT interpreter on validation images and prints one table (``--noverify`` skips it);
only then writes ``--output``, the labels also beside it (``<output name>_labels.txt``, one
class per line in output order) and, with ``--saved_model_dir``, a TensorFlow SavedModel.
Every file is written to a temporary name in its folder and renamed, so a failed, refused or
interrupted export leaves nothing behind (and the temporaries of a killed one are removed by
the next export to that name).

Exit status (README "Exit status"): 0 written; 2 input refused before any work (a bad flag,
a missing or damaged model or weights file, an output path that cannot be written, missing
calibration data, an offline download), one line on stderr; 1 the export failed (its
verification disagrees with the Keras model too often); 130 / 143 interrupted.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from mobilenet_tf import errors
from mobilenet_tf.utils import fileio
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.utils import console
from mobilenet_tf.utils import native
from mobilenet_tf.data import options as data_options

FLAGS = flags.FLAGS
QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")   # = mobilenet_tf.export.converter.QUANTIZATIONS
IO_TYPES = ("uint8", "int8", "float32")

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
flags.DEFINE_enum("quantization", "none", QUANTIZATIONS,
                  "none: float32; float16: float16 weights; dynamic_range: int8 weights, float "
                  "activations; int8: full integer (int8 weights per channel and activations, "
                  "calibrated on --representative_dataset).")
flags.DEFINE_enum("input_type", None, IO_TYPES,
                  "Input tensor type. Default: uint8 with --raw_rgb_input, else float32. int8 and "
                  "uint8 without --raw_rgb_input (quantized [-1, 1] values) need --quantization=int8.")
flags.DEFINE_enum("output_type", None, IO_TYPES,
                  "Output tensor type (default float32 probabilities); int8/uint8 need "
                  "--quantization=int8.")
flags.DEFINE_boolean("raw_rgb_input", True,
                     "The model takes raw uint8 RGB 0..255 and does the [-1, 1] scaling itself, so "
                     "an app feeds camera bytes unchanged. --noraw_rgb_input: the app scales to "
                     "[-1, 1] (x / 127.5 - 1) itself.")
flags.DEFINE_string("representative_dataset", None,
                    "Calibration images for int8, a dataset spec as train.py's --dataset: a tfds "
                    "name, 'folder:PATH' or 'synthetic' (only with --allow_synthetic_calibration). "
                    "Its training split calibrates, its validation split verifies. Default for a "
                    "train.py run (--model=run folder or its model.keras): the run's dataset.")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory (default: tfds' own).")
flags.DEFINE_integer("num_calibration_images", 300, "Images used to calibrate int8.", lower_bound=1)
flags.DEFINE_boolean("allow_synthetic_calibration", False,
                     "Allow --representative_dataset=synthetic (random noise: activation ranges "
                     "unlike real photos, a poor int8 model). Prints a warning.")

# --- verification -----------------------------------------------------------------------------------
flags.DEFINE_boolean("verify", True, "Run the .tflite file and the Keras model on the same images "
                     "and print the comparison table; --noverify skips it.")
flags.DEFINE_string("verify_dataset", None,
                    "Verification images (dataset spec; its validation split). Default: the "
                    "validation split of --representative_dataset (or of a run's dataset), else "
                    "synthetic images.")
flags.DEFINE_integer("num_verification_images", 200, "Images to verify on.", lower_bound=1)
flags.DEFINE_float("min_top1_agreement", None,
                   "Fail (write nothing) when the .tflite model's top-1 class equals the Keras "
                   "model's on fewer than this fraction of the verification images. Default per "
                   "mode: none 0.98, float16 0.96, dynamic_range 0.85, int8 0.8.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("latency_runs", 30, "invoke() calls timed per latency figure.", lower_bound=1)

# --- output -----------------------------------------------------------------------------------------
flags.DEFINE_string("output", None, "The .tflite file to write (its folder must exist).")
flags.DEFINE_string("saved_model_dir", None,
                    "Also write a TensorFlow SavedModel here for serving (signature serving_default, "
                    "variable batch; replaced if it exists).")
flags.DEFINE_string("license", None,
                    "License line written into the .tflite file's metadata. Default: Apache-2.0 "
                    "for --weights=imagenet (Google's MobileNetV1 weights), else a line saying "
                    "the exporter does not know it.")
flags.DEFINE_string("model_version", "1", "Version written into the .tflite file's metadata.")
flags.mark_flag_as_required("output")


def _spec_ok(value):
    if value is None:
        return True
    try:
        data_options.parse_dataset_spec(value)
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return True


flags.register_validator("representative_dataset", _spec_ok)
flags.register_validator("verify_dataset", _spec_ok)


def _output_ok(value):
    if value is None:
        return True
    if not value.endswith(".tflite"):
        raise flags.ValidationError(f"must be a .tflite file name. Received: --output={value}")
    problem = fileio.file_problem(value)
    if problem:
        raise flags.ValidationError(f"{problem}. Received: --output={value}")
    return True


flags.register_validator("output", _output_ok)


def _saved_model_dir_ok(value):
    if value is None:
        return True
    parent = os.path.dirname(os.path.abspath(value))
    problem = fileio.folder_problem(value) or (None if os.path.isdir(parent) else
                                               f"folder {parent} does not exist")
    if problem:
        raise flags.ValidationError(f"{problem}. Received: --saved_model_dir={value}")
    return True


flags.register_validator("saved_model_dir", _saved_model_dir_ok)


@flags.multi_flags_validator(["model", "weights"],
                             message="give exactly one of --model (.keras file or train.py model "
                                     "dir) and --weights (imagenet, .h5 file, TF-slim checkpoint)")
def _one_model(values):
    return (values["model"] is None) != (values["weights"] is None)


@flags.multi_flags_validator(["quantization", "representative_dataset", "allow_synthetic_calibration",
                              "model"])
def _calibration_ok(values):
    spec = values["representative_dataset"]
    if spec is None and values["model"] is not None:
        from mobilenet_tf.model import saved
        spec = saved.run_dataset(values["model"])[0]     # a run: the data it trained on
    if (values["quantization"] == "int8" and spec is None
            and not _quantization_aware(values["model"])):
        raise flags.ValidationError(
            "--quantization=int8 needs calibration images: --representative_dataset=folder:PATH "
            "or a tfds name (a few hundred images like those the app sees)")
    if spec == "synthetic" and not values["allow_synthetic_calibration"]:
        raise flags.ValidationError(
            "--representative_dataset=synthetic calibrates on random noise; pass "
            "--allow_synthetic_calibration to do it anyway")
    return True


def _quantization_aware(model):
    """A --model trained with --quantize (it exports as int8, from the ranges it learned)."""
    from mobilenet_tf.model import saved
    return model is not None and saved.is_quantization_aware_file(model)


@flags.multi_flags_validator(["quantization", "input_type", "output_type", "raw_rgb_input",
                              "model"])
def _io_types_ok(values):
    from mobilenet_tf.export import converter as export  # no TensorFlow import at module level there
    quantization = "int8" if _quantization_aware(values["model"]) else values["quantization"]
    try:
        export.resolve_io_types(quantization, values["input_type"], values["output_type"],
                                values["raw_rgb_input"])
    except ValueError as e:
        raise flags.ValidationError(str(e).replace("raw_rgb_input", "--raw_rgb_input")
                                    .replace("input_type=", "--input_type=")
                                    .replace("output_type=", "--output_type=")) from None
    return True


def _parse_flags(argv):
    """absl parsing, but a bad flag is one line and exit status 2 (absl: 2 lines, status 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"export_tflite.py: error: {' '.join(str(e).split())}\n")
        sys.exit(2)


# --- files ------------------------------------------------------------------------------------------


# --- main -------------------------------------------------------------------------------------------

def _build_model():
    """(model, class names or None, description) from --model or --weights."""
    from mobilenet_tf.export import converter as export
    if FLAGS.model is not None:
        model, class_names = export.load_model(FLAGS.model)
        return model, class_names, FLAGS.model
    from mobilenet_tf.inference import classifier as inference
    classifier = inference.load_classifier(weights=FLAGS.weights, alpha=FLAGS.alpha,
                                           image_size=FLAGS.image_size, classes=FLAGS.classes)
    size = FLAGS.image_size
    return classifier.model, None, (f"MobileNetV1 alpha={FLAGS.alpha:g} {size}x{size} "
                                    f"weights={FLAGS.weights}")


GOOGLE_WEIGHTS_LICENSE = "Apache-2.0 (Google's MobileNetV1 ImageNet weights)"
UNKNOWN_LICENSE = "not stated: the exporter does not know the license of these weights and data"


def _license():
    if FLAGS.license is not None:
        return FLAGS.license
    return GOOGLE_WEIGHTS_LICENSE if FLAGS.weights == "imagenet" else UNKNOWN_LICENSE


def _labels_for_model(loaded, num_classes):
    """Labels of `loaded` images in the model's output indexing, or None if they don't match."""
    if loaded is None or loaded.labels is None:
        return None
    if loaded.imagenet_labels:
        return loaded.labels + 1 if num_classes == 1001 else (
            loaded.labels if num_classes == 1000 else None)
    return loaded.labels if loaded.num_classes == num_classes else None


def _export():
    native.import_tensorflow()
    console.log_to()
    from mobilenet_tf.export import converter as export
    model, class_names, description = _build_model()
    size = export.model_image_size(model)
    num_classes = int(model.output_shape[-1])
    quantization = FLAGS.quantization
    from mobilenet_tf.model import qat
    quantization_aware = qat.is_quantization_aware(model)
    if quantization_aware:
        if FLAGS["quantization"].present and quantization != "int8":
            raise export.ExportError(
                f"{description} was trained with --quantize: it exports as --quantization=int8 "
                f"(from its learned ranges). Received: --quantization={quantization}")
        quantization = "int8"
    print(f"Exporting {description} ({size[0]}x{size[1]}, {num_classes} classes) as "
          f"{quantization}")
    calibration = verification = None
    from mobilenet_tf.model import saved
    run_spec, run_data_dir = (saved.run_dataset(FLAGS.model) if FLAGS.model
                              else (None, None))
    representative = FLAGS.representative_dataset or run_spec
    data_dir = FLAGS.data_dir or run_data_dir
    if run_spec and not (FLAGS.representative_dataset and FLAGS.verify_dataset):
        print(f"The run's dataset {run_spec} is used where --representative_dataset / "
              "--verify_dataset are not given")
    if quantization_aware:
        print("Quantization-aware model: int8 from the ranges it learned in training "
              "(no calibration)")
    elif quantization == "int8" and representative == "synthetic":
        sys.stderr.write("WARNING: calibrating on synthetic random images "
                         "(--allow_synthetic_calibration): activation ranges of noise, not of "
                         "photos; expect a poor int8 model\n")
    if quantization == "int8" and not quantization_aware:
        calibration = export.load_images(representative, size,
                                         FLAGS.num_calibration_images, split="train",
                                         data_dir=data_dir)
        print(f"Calibrating on {len(calibration.images)} images ({calibration.description})")
    content = export.convert(model, quantization,
                             calibration.images if calibration is not None else None,
                             input_type=FLAGS.input_type, output_type=FLAGS.output_type,
                             raw_rgb_input=FLAGS.raw_rgb_input,
                             num_calibration_images=FLAGS.num_calibration_images)
    verify_spec = FLAGS.verify_dataset or representative
    if FLAGS.verify:
        if verify_spec is None:
            sys.stderr.write("WARNING: no --verify_dataset or --representative_dataset: verifying "
                             "on synthetic random images (probability differences only)\n")
            verify_spec = "synthetic"
        verification = export.load_images(verify_spec, size, FLAGS.num_verification_images,
                                          split="validation", data_dir=data_dir)
    if class_names is None:
        for loaded in (calibration, verification):
            if (loaded is not None and loaded.class_names and not loaded.imagenet_labels
                    and len(loaded.class_names) == num_classes):
                class_names = loaded.class_names
                break
    labels = export.label_names(num_classes, class_names)
    content = export.with_metadata(content, model, labels, quantization=quantization,
                                   version=FLAGS.model_version, license=_license())
    problem = export.mediapipe_problem(content)
    if problem:
        sys.stderr.write(f"WARNING: {FLAGS.output} {problem}. For MediaPipe, export with the "
                         "defaults --raw_rgb_input and --output_type=float32\n")
    if FLAGS.verify:
        result = export.verify(content, model, verification.images,
                               _labels_for_model(verification, num_classes),
                               quantization=quantization, latency_runs=FLAGS.latency_runs,
                               description=verification.description)
        print("\n".join(result.lines()))
        minimum = FLAGS.min_top1_agreement
        if minimum is None:
            minimum = export.DEFAULT_MIN_TOP1_AGREEMENT[quantization]
        export.check_agreement(result, minimum)
    files = {FLAGS.output: content,
             export.labels_path(FLAGS.output): ("\n".join(labels) + "\n").encode("utf-8")}
    saved_model = None
    if FLAGS.saved_model_dir:
        saved_model = (export.serving_archive(model, raw_rgb_input=FLAGS.raw_rgb_input,
                                              batch_size=None), FLAGS.saved_model_dir)
    fileio.write_all(files, saved_model)
    print(f"Wrote {FLAGS.output} ({len(content):,} bytes, with TFLite metadata and its "
          f"{len(labels)} labels packed in) and {export.labels_path(FLAGS.output)}"
          + (f"; SavedModel {FLAGS.saved_model_dir}" if saved_model else ""))
    return 0


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"export_tflite.py: error: unexpected arguments {argv[1:]} "
                         "(flags start with --)\n")
        return errors.EXIT_REFUSED
    logging.set_verbosity(logging.WARNING)
    return runtime.run_command("export_tflite.py", _export)


if __name__ == "__main__":
    runtime.exit_on_early_signals("export_tflite.py")
    app.run(main, flags_parser=_parse_flags)
