"""Bad input and faults, one table: every command, one line, one exit-status convention,
nothing left behind.

Each row of CASES is a bad input or a fault a user meets: the command (train.py,
export_tflite.py or python -m mobilenet_tf.<tool>), the exit status it must give (2 refused
before any work, 1 failed during it), a regex the one line on stderr must match, and what
must (not) exist afterwards. Signals (SIGINT, SIGTERM, a second SIGINT, SIGKILL) run on real
subprocesses below the table.

train.py and the python -m tools run in this process (their main functions, stderr captured),
which is fast; export_tflite.py defines the same absl flags as train.py (one process cannot
hold both), so it runs as a subprocess.
"""

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT

H5 = "weights/mobilenet_2_5_128_tf.h5"
CKPT = "weights/mobilenet_v1_0.25_128.ckpt"
NATIVE_NOISE = re.compile(r"absl::InitializeLog|cudart_stub|cuInit|cpu_feature_guard|"
                          r"fully_quantize|XNNPACK|oneDNN|tensorflow/core")


def _env(**extra):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


# --- inputs the rows use ----------------------------------------------------------------------

def _truncate(source, target, keep=0.3):
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * keep)])


def _inputs(tmp, data):
    """Damaged copies of real files, folders of the wrong shape, a keras.json-free KERAS_HOME."""
    _truncate(data / H5, tmp / "trunc.h5")
    shutil.copy(data / (CKPT + ".index"), tmp / "trunc_data.ckpt.index")
    _truncate(data / (CKPT + ".data-00000-of-00001"), tmp / "trunc_data.ckpt.data-00000-of-00001")
    _truncate(data / (CKPT + ".index"), tmp / "trunc_index.ckpt.index", keep=0.5)
    shutil.copy(data / (CKPT + ".data-00000-of-00001"), tmp / "trunc_index.ckpt.data-00000-of-00001")
    _truncate(data / "tflite/mobilenet_v1_0.25_128_quant.tflite", tmp / "trunc.tflite")
    (tmp / "trunc.keras").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (tmp / "one_class" / "ants").mkdir(parents=True)
    shutil.copy(data / "imagenet50" / "n01514668_cock.JPEG", tmp / "one_class" / "ants" / "a.jpg")
    (tmp / "out").mkdir()
    (tmp / "out" / "m.tflite").write_bytes(b"the previous export")
    (tmp / "runs").mkdir()
    (tmp / "keras_home").mkdir()
    (tmp / "not_tfrecord").mkdir()
    (tmp / "not_tfrecord" / "train-00000-of-00001").write_bytes(b"a JPEG list, not records\n" * 20)
    _inputs_of_issue_27(tmp, data)


def _inputs_of_issue_27(tmp, data):
    """issue 27, groups 8-17: flag files (Latin-1, including themselves, a -> b -> a), TFRecord
    shards with a Latin-1 labels.txt and with a label given twice."""
    (tmp / "latin1.flags").write_bytes("--alpha=0.25\n# café\n".encode("latin-1"))
    (tmp / "self.flags").write_text(f"--flagfile={tmp / 'self.flags'}\n--alpha=0.25\n")
    (tmp / "a.flags").write_text(f"--flagfile={tmp / 'b.flags'}\n")
    (tmp / "b.flags").write_text(f"--flagfile={tmp / 'a.flags'}\n")
    from mobilenet_tf.data import tfrecords
    photo = str(data / "imagenet50" / "n01514668_cock.JPEG")
    for folder, labels in (("latin1_labels", "1:ants\n2:bées\n".encode("latin-1")),
                           ("twice_labels", b"1:ants\n1:bees\n")):
        tfrecords.write_shards({"train": ([(photo, 0), (photo, 1)], 1)}, ["ants", "bees"],
                               str(tmp / folder), progress=False)
        (tmp / folder / tfrecords.LABELS_FILE).write_bytes(labels)
    tfrecords.write_shards({"train": ([(photo, 0), (photo, 1)], 1)}, ["ants", "bees"],
                           str(tmp / "train_only"), progress=False)
    import tensorflow as tf
    jpeg = (data / "imagenet50" / "n01514668_cock.JPEG").read_bytes()
    for name, label in (("bytes", tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"1"]))),
                        ("float", tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))),
                        ("two", tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2])))):
        example = tf.train.Example(features=tf.train.Features(feature={
            tfrecords.ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
            tfrecords.LABEL: label}))
        (tmp / f"label_{name}").mkdir()
        with tf.io.TFRecordWriter(str(tmp / f"label_{name}" / "train-00000-of-00001")) as writer:
            writer.write(example.SerializeToString())


# --- the table --------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    command: list            # [program, args...]; {tmp} and {data} are filled in
    status: int
    line: str                # regex for the one line (after "<program>: ")
    env: dict = None
    unchanged: tuple = ("out", "runs")   # folders of tmp that must look as before
    file_size_limit: int = None          # RLIMIT_FSIZE while it runs: a full disk (EFBIG)


TRAIN_ARGS = ["--dataset=synthetic", "--synthetic_examples=16", "--synthetic_classes=4",
              "--alpha=0.25", "--image_size=32", "--batch_size=8", "--train_steps=2",
              "--model_dir={tmp}/runs/run", "--verbose=0"]
NO_TENSORFLOW = {"PYTHONPATH": "{tmp}/no_tensorflow"}     # issue 27: refused before TensorFlow
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "KERAS_HOME": "{tmp}/keras_home"}

CASES = {
    # Damaged weights files, through every command that reads them.
    "train_truncated_h5": Case(
        ["train.py", *TRAIN_ARGS, "--init_weights={tmp}/trunc.h5"], 2,
        r"error: weights: .*trunc\.h5 is damaged or truncated and cannot be read \(OSError: .*"),
    "export_truncated_h5": Case(
        ["export_tflite.py", "--weights={tmp}/trunc.h5", "--alpha=0.25", "--image_size=128",
         "--output={tmp}/out/m.tflite"], 2,
        r"error: weights: .*trunc\.h5 is damaged or truncated and cannot be read \(OSError: .*"),
    "predict_truncated_h5": Case(
        ["predict", "--weights={tmp}/trunc.h5", "--alpha=0.25", "--image_size=128",
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: weights: .*trunc\.h5 is damaged or truncated and cannot be read \(OSError: .*"),
    "convert_truncated_h5": Case(
        ["convert", "--from={tmp}/trunc.h5", "--alpha=0.25", "--image_size=128",
         "--output={tmp}/out/m.keras"], 2,
        r"error: weights: .*trunc\.h5 is damaged or truncated and cannot be read \(OSError: .*"),
    "train_truncated_checkpoint_data": Case(
        ["train.py", *TRAIN_ARGS, "--init_weights={tmp}/trunc_data.ckpt"], 2,
        r"error: weights: .*trunc_data\.ckpt is damaged or truncated and cannot be read "
        r"\(IndexError: Read less bytes than requested\)"),
    "export_truncated_checkpoint_data": Case(
        ["export_tflite.py", "--weights={tmp}/trunc_data.ckpt", "--alpha=0.25", "--image_size=128",
         "--output={tmp}/out/m.tflite"], 2,
        r"error: weights: .*trunc_data\.ckpt is damaged or truncated and cannot be read .*"),
    "predict_truncated_checkpoint_index": Case(
        ["predict", "--weights={tmp}/trunc_index.ckpt", "--alpha=0.25", "--image_size=128",
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: weights: .*trunc_index\.ckpt is damaged or truncated and cannot be read "
        r"\(.*Error: not an sstable \(bad magic number\)\)"),
    "export_truncated_keras": Case(
        ["export_tflite.py", "--model={tmp}/trunc.keras", "--output={tmp}/out/m.tflite"], 2,
        r"error: .*trunc\.keras is damaged or truncated: it starts like a \.keras zip archive "
        r"but its table of contents is missing"),
    "predict_truncated_keras": Case(
        ["predict", "--model={tmp}/trunc.keras", "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --model: .*trunc\.keras is damaged or truncated: it starts like a \.keras zip "
        r"archive but its table of contents is missing"),
    "predict_truncated_tflite": Case(
        ["predict", "--model={tmp}/trunc.tflite", "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --model: .*trunc\.tflite is damaged or truncated: LiteRT cannot load it \(.*\)"),
    # Output and run folders that are files or sit under a file: refused before any work.
    "train_model_dir_is_a_file": Case(
        ["train.py", *TRAIN_ARGS, "--model_dir=/etc/passwd"], 2,
        r"error: flag --model_dir=/etc/passwd: /etc/passwd is a file, not a folder"),
    "train_model_dir_under_a_file": Case(
        ["train.py", *TRAIN_ARGS, "--model_dir=/etc/passwd/x"], 2,
        r"error: flag --model_dir=/etc/passwd/x: /etc/passwd/x cannot be created: /etc/passwd is "
        r"a file, not a folder"),
    "export_output_under_a_file": Case(
        ["export_tflite.py", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--output=/etc/passwd/x.tflite"], 2,
        r"error: flag --output=/etc/passwd/x\.tflite: /etc/passwd/x\.tflite cannot be written: "
        r"/etc/passwd is a file, not a folder\. Received: --output=/etc/passwd/x\.tflite"),
    "convert_output_under_a_file": Case(
        ["convert", "--from={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--output=/etc/passwd/x.keras"], 2,
        r"error: --output: /etc/passwd/x\.keras cannot be written: /etc/passwd is a file, not a "
        r"folder"),
    # Refused runs leave no run folder behind.
    "train_unknown_tfds_dataset": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=bogus"], 2,
        r"error: dataset 'bogus' is not a tensorflow-datasets dataset .*"),
    "train_missing_folder": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=folder:{tmp}/nowhere"], 2,
        r"error: folder dataset '.*nowhere' does not exist .*"),
    "train_folder_with_one_class": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=folder:{tmp}/one_class"], 2,
        r"error: folder dataset '.*one_class' needs at least 2 class sub-folders, found 1 .*"),
    "train_offline_tfds": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tf_flowers", "--data_dir={tmp}/tfds",
         "--nodownload"], 2,
        r"error: tfds dataset 'tf_flowers' is not prepared in .*tfds and downloads are off: .*"),
    "train_tfrecord_glob_matches_nothing": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/nowhere/train-*"], 2,
        r"error: tfrecord: no file matches .*nowhere/train-\* ?; expected TF-slim / Model Garden "
        r"shards .*"),
    "train_not_a_tfrecord": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/not_tfrecord"], 2,
        r"error: tfrecord: .*not_tfrecord/train-00000-of-00001 is not a TFRecord file or is damaged "
        r"\(corrupted record at 0[^{}\[\]]*\)"),
    "write_tfrecords_missing_folder": Case(
        ["write_tfrecords", "--images={tmp}/nowhere", "--output={tmp}/out/shards"], 2,
        r"error: folder dataset '.*nowhere' does not exist .*"),
    "train_missing_init_weights": Case(
        ["train.py", *TRAIN_ARGS, "--init_weights={tmp}/nope.h5"], 2,
        r"error: `weights` must be None, 'imagenet', .*there is no such file or checkpoint prefix\. "
        r"Received: weights='.*nope\.h5'"),
    # The same situation gives the same status in every tool.
    "predict_offline_imagenet": Case(
        ["predict", "--weights=imagenet", "--alpha=0.25", "--image_size=128",
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: weights='imagenet': cannot download .*", env=OFFLINE),
    "export_offline_imagenet": Case(
        ["export_tflite.py", "--weights=imagenet", "--alpha=0.25", "--image_size=128",
         "--output={tmp}/out/m.tflite"], 2, r"error: weights='imagenet': cannot download .*",
        env=OFFLINE),
    "convert_offline_imagenet": Case(
        ["convert", "--from=imagenet", "--alpha=0.25", "--image_size=128",
         "--output={tmp}/out/m.keras"], 2, r"error: weights='imagenet': cannot download .*",
        env=OFFLINE),
    "predict_missing_model": Case(
        ["predict", "--model={tmp}/nope.tflite", "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --model: no such TFLite file: .*nope\.tflite"),
    "export_missing_model": Case(
        ["export_tflite.py", "--model={tmp}/nope.keras", "--output={tmp}/out/m.tflite"], 2,
        r"error: no such model file or train\.py run folder: .*nope\.keras"),
    "evaluate_truncated_h5": Case(
        ["evaluate", "--weights={tmp}/trunc.h5", "--alpha=0.25", "--image_size=128",
         "--images={data}/imagenet50"], 2,
        r"error: weights: .*trunc\.h5 is damaged or truncated and cannot be read \(OSError: .*"),
    "evaluate_missing_folder": Case(
        ["evaluate", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--images={tmp}/nowhere"], 2,
        r"error: --images: no such folder: .*nowhere \(or use tfds:NAME\[:SPLIT\]\)"),
    "evaluate_tfds_not_prepared": Case(
        ["evaluate", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--images=tfds:imagenet_v2", "--tfds_data_dir={tmp}/tfds"], 2,
        r"error: --images=tfds:imagenet_v2: cannot read the TFDS dataset \(.*\)"),
    "tradeoff_alpha_the_builder_refuses": Case(
        ["tradeoff", "--alpha=1.0,0", "--output_dir={tmp}/out/tradeoff"], 2,
        r"error: `alpha` \(the width multiplier α\) must be a number > 0\. Received: alpha=0\.0"),
    "tradeoff_size_the_builder_refuses": Case(
        ["tradeoff", "--image_size=224,31", "--output_dir={tmp}/out/tradeoff"], 2,
        r"error: `image_size` must be at least 32x32 \(height and width each >= 32\)\. "
        r"Received: image_size=31"),
    "tradeoff_negative_budget": Case(
        ["tradeoff", "--budget_ms=-1", "--output_dir={tmp}/out/tradeoff"], 2,
        r"error: `budget_ms` \(the latency budget in milliseconds\) must be a number > 0\. "
        r"Received: budget_ms=-1\.0"),
    "tradeoff_folder_under_a_file": Case(
        ["tradeoff", "--output_dir=/etc/passwd/tradeoff"], 2,
        r"error: /etc/passwd/tradeoff cannot be created: /etc/passwd is a file, not a folder\. "
        r"Received: output_dir='/etc/passwd/tradeoff'"),
    # Layers kept in float (issue 24): a name that is no layer (after loading the model, before
    # calibrating; a pattern matching none: tests/test_quant_report.py), without int8 and a
    # pattern that does not compile (both before TensorFlow); quant_report's own refusals.
    "export_unknown_float_layer": Case(
        ["export_tflite.py", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--quantization=int8", "--representative_dataset=folder:{data}/hymenoptera",
         "--float_layers=Conv2d_0,Conv2d_99", "--output={tmp}/out/m.tflite"], 2,
        r"error: float_layers: 'Conv2d_99' is not a quantized layer of this model; its layers "
        r"are Conv2d_0, .*, Predictions\. Received: float_layers=Conv2d_99"),
    "export_float_layers_without_int8": Case(
        ["export_tflite.py", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--float_layers=Logits", "--output={tmp}/out/m.tflite"], 2,
        r"error: flags .*: --float_layers keeps layers of an int8 export in float: it needs "
        r"--quantization=int8\. Received: --quantization=none"),
    "export_float_layers_bad_pattern": Case(
        ["export_tflite.py", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--quantization=int8", "--representative_dataset=folder:{data}/hymenoptera",
         "--float_layers=Conv2d_(1", "--output={tmp}/out/m.tflite"], 2,
        r"error: flags .*: --float_layers: 'Conv2d_\(1' is not a regular expression \(.+\)\. "
        r"Received: --float_layers=Conv2d_\(1"),
    "quant_report_without_a_model": Case(
        ["quant_report", "--representative_dataset=folder:{data}/hymenoptera"], 2,
        r"error: give exactly one of --model \(\.keras file or train\.py run\) and --weights"),
    "quant_report_json_under_a_file": Case(
        ["quant_report", "--weights={data}/" + H5, "--json={tmp}/out/m.tflite/r.json"], 2,
        r"error: --json .*\. Received: --json=.*r\.json"),
    "costs_below_the_builders_size": Case(
        ["costs", "--image_size=7"], 2,
        r"error: `image_size` must be at least 32x32 \(height and width each >= 32\)\. "
        r"Received: image_size=7"),
    # issue 27, groups 8-17 (begin)
    # A full disk: the real errno path, RLIMIT_FSIZE (writes past it fail with EFBIG, "File too
    # large"; Python ignores SIGXFSZ), one line, status 1, no temporary left.
    "train_disk_full_at_the_first_checkpoint": Case(
        ["train.py", *TRAIN_ARGS[:-2], "--model_dir={tmp}/full/run", "--verbose=0"], 1,
        r"error: the checkpoint at step \d+ cannot be written to .*full/run/checkpoints \(.*File "
        r"too large\): training stopped; the last complete checkpoint is none \(no checkpoint "
        r"was written yet\)", file_size_limit=200_000),
    "export_disk_full_with_saved_model_dir": Case(
        ["export_tflite.py", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=128",
         "--noverify", "--output={tmp}/out/full.tflite", "--saved_model_dir={tmp}/out/saved"], 1,
        r"error: \S+; File too large", file_size_limit=300_000),
    "write_tfrecords_disk_full": Case(
        ["write_tfrecords", "--images={data}/hymenoptera", "--output={tmp}/out/full_shards"], 1,
        r"error: \S+/out/full_shards/\.tmp-\S+-train-00000-of-00001; File too large",
        file_size_limit=100_000),
    # 9: undecodable bytes, overflowing numbers and unwritable paths: refused, one line.
    "train_flagfile_not_utf8": Case(
        ["train.py", "--flagfile={tmp}/latin1.flags", *TRAIN_ARGS], 2,
        r"error: flag file .*latin1\.flags is not UTF-8 text \(byte 0xe9 at offset 18\); save it "
        r"as UTF-8"),
    "costs_alpha_overflows": Case(
        ["costs", "--alpha=1e300"], 2,
        r"error: argument --alpha: the counts of α=1e\+300 overflow a float \(the widest layer "
        r"would have about 1\.02e\+303 channels\); give a smaller α"),
    "train_unwritable_cache": Case(
        ["train.py", *TRAIN_ARGS, "--cache=/etc/passwd/cache"], 2,
        r"error: flag --cache=/etc/passwd/cache: `cache` /etc/passwd/cache cannot be written: "
        r"/etc/passwd is a file, not a folder: give 'memory' or a file path prefix in a writable "
        r"folder\. Received: cache='/etc/passwd/cache'"),
    "train_tfrecord_labels_not_utf8": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/latin1_labels"], 2,
        r"error: .*latin1_labels/labels\.txt is not UTF-8 text \(byte 0xe9 at offset 10\); "
        r"TF-slim's labels\.txt holds 'LABEL:NAME' lines in UTF-8"),
    "export_model_version_not_utf8": Case(
        ["export_tflite.py", "--weights={tmp}/nope.h5", "--alpha=0.25", "--image_size=128",
         "--model_version=-1 \udcff", "--output={tmp}/out/m.tflite"], 2,
        r"error: flag --model_version=.*: must be UTF-8 text \(it is written into the \.tflite "
        r"metadata\); byte 0xff at offset 3 is not\. Received: --model_version='-1 \\udcff'"),
    # 10: no NaN or inf setting reaches TensorFlow (absl's bounds let them through).
    "train_alpha_inf": Case(["train.py", *TRAIN_ARGS, "--alpha=inf"], 2,
                            r"error: flag --alpha=inf: must be > 0"),
    "train_weight_decay_nan": Case(["train.py", *TRAIN_ARGS, "--weight_decay=nan"], 2,
                                   r"error: flag --weight_decay=nan: must be >= 0"),
    # 11: a size whose activations cannot fit in memory (a lower bound, so on any machine).
    "train_too_large_for_memory": Case(
        ["train.py", *TRAIN_ARGS, "--image_size=100000", "--batch_size=1"], 2,
        r"error: training of α=0\.25 at image_size=100000, batch 1 needs at least [\d.]+ GiB of "
        r"memory \(activations of every layer, docs/model-and-costs\.md#memory\), more than the "
        r"[\d.]+ GiB available: give a smaller --image_size or --batch_size"),
    "predict_too_large_for_memory": Case(
        ["predict", "--weights={data}/" + H5, "--alpha=0.25", "--image_size=100000",
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: inference of α=0\.25 at image_size=100000, batch 1 needs at least [\d.]+ GiB "
        r"of memory \(.*\), more than the [\d.]+ GiB available: give a smaller --image_size or "
        r"--batch_size"),
    # 12: a flag file cycle is an error, not absl's warning and then a default run.
    "train_flagfile_includes_itself": Case(
        ["train.py", "--flagfile={tmp}/self.flags", *TRAIN_ARGS], 2,
        r"error: flag file cycle: (\S+/self\.flags) -> \1 \(a flag file must not include "
        r"itself\)"),
    "export_flagfile_cycle_of_two": Case(
        ["export_tflite.py", "--flagfile={tmp}/a.flags", "--weights={tmp}/nope.h5",
         "--output={tmp}/out/m.tflite"], 2,
        r"error: flag file cycle: (\S+/a\.flags) -> \S+/b\.flags -> \1 \(a flag file must not "
        r"include itself\)"),
    # 14: messages that name the right cause.
    "train_tfrecord_label_given_twice": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/twice_labels"], 2,
        r"error: .*twice_labels/labels\.txt line 2: label 1 appears twice \(as 'ants' and "
        r"'bees'\); each label names one class"),
    "train_tfrecord_label_stored_as_bytes": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/label_bytes"], 2,
        r"error: tfrecord: .*label_bytes/train-00000-of-00001: its examples' 'image/class/label' "
        r"is stored as bytes \(bytes_list\), not as an int64 \(int64_list\); expected .*"),
    "train_tfrecord_label_stored_as_float": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/label_float"], 2,
        r"error: tfrecord: .*: its examples' 'image/class/label' is stored as a float "
        r"\(float_list\), not as an int64 \(int64_list\); expected .*"),
    "train_tfrecord_label_of_two_values": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/label_two"], 2,
        r"error: tfrecord: .*: its examples' 'image/class/label' holds 2 values, not one; "
        r"expected .*"),
    "train_tfrecord_without_validation_shards": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=tfrecord:{tmp}/train_only"], 2,
        r"error: tfrecord:.*train_only has no validation data for mode 'train_and_eval' \(use "
        r"mode 'train' or give validation shards: validation-\* beside train-\* in the folder, "
        r"or tfrecord:TRAIN_GLOB,VALIDATION_GLOB\)"),
    "train_missing_teacher": Case(
        ["train.py", *TRAIN_ARGS, "--teacher={tmp}/nope_teacher.h5"], 2,
        r"error: teacher .*nope_teacher\.h5 does not exist: give a train\.py run folder, a "
        r"\.keras file, or weights \(\.h5, \.weights\.h5, a TF-slim checkpoint prefix\) with "
        r"teacher_alpha and teacher_image_size"),
    "train_jpeg_teacher": Case(
        ["train.py", *TRAIN_ARGS, "--teacher={data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: teacher .*n01514668_cock\.JPEG is a JPEG image: give a train\.py run folder, "
        r".*"),
    # issue 27, groups 8-17 (end)
}


# --- issue 27, groups 1-7 (lost or wrong results) ---------------------------------------------
CASES.update({
    # 1: no setting range holds NaN or inf (the learning rate that made a NaN model.keras).
    "train_infinite_learning_rate": Case(
        ["train.py", *TRAIN_ARGS, "--learning_rate=inf"], 2,
        r"error: flag --learning_rate=inf: must be > 0"),
    # 4: shards written into the folder they are made from would be read as part of it.
    "write_tfrecords_output_inside_the_images": Case(
        ["write_tfrecords", "--images={tmp}/two_classes", "--output={tmp}/two_classes/shards"], 2,
        r"error: output .*two_classes/shards is inside the image folder .*two_classes: the shards "
        r"would be read as part of it; choose a folder outside it",
        unchanged=("out", "runs", "two_classes")),
    # 5: refused before any work: before TensorFlow is imported (export_tflite.py runs where it
    # cannot be).
    "train_infinite_distillation_temperature": Case(
        ["train.py", *TRAIN_ARGS, "--distillation_temperature=inf"], 2,
        r"error: flag --distillation_temperature=inf: inf is not a number in the range "
        r"\[0\.0, 100\.0\]"),
    "train_warmup_of_a_trillion_epochs": Case(
        ["train.py", *TRAIN_ARGS, "--warmup_epochs=1e12"], 2,
        r"error: flag --warmup_epochs=1e12: 1000000000000\.0 is not a number in the range "
        r"\[0\.0, 1000\.0\]"),
    "export_nan_min_top1_agreement": Case(
        ["export_tflite.py", "--weights={tmp}/nope.h5", "--alpha=0.25", "--image_size=128",
         "--min_top1_agreement=nan", "--output={tmp}/out/m.tflite"], 2,
        r"error: `min_top1_agreement` must be a fraction in \[0, 1\]\. Received: "
        r"min_top1_agreement=nan", env=NO_TENSORFLOW),
    "export_empty_model_version": Case(
        ["export_tflite.py", "--weights={tmp}/nope.h5", "--alpha=0.25", "--image_size=128",
         "--model_version=", "--output={tmp}/out/m.tflite"], 2,
        r"error: `model_version` must be a non-empty string \(it is written into the \.tflite "
        r"metadata\)\. Received: model_version=''", env=NO_TENSORFLOW),
    # 6: a setting a saved model fixes, given beside it, is refused, whatever its value.
    "predict_run_with_alpha_and_size": Case(
        ["predict", "--model={tmp}/runs", "--alpha=0.5", "--image_size=160",
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --alpha, --image_size cannot be given with --model=.*runs: a saved model fixes "
        r"its own α, input size, classes and weights; leave them out"),
    "predict_run_with_weights": Case(
        ["predict", "--model={tmp}/runs", "--weights={data}/" + H5,
         "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --weights cannot be given with --model=.*runs: .*; leave it out"),
    "predict_tflite_with_size_and_classes": Case(
        ["predict", "--model={data}/tflite/mobilenet_v1_0.25_128_quant.tflite", "--image_size=224",
         "--classes=1001", "{data}/imagenet50/n01514668_cock.JPEG"], 2,
        r"error: --image_size, --classes cannot be given with --model=.*\.tflite: .*"),
    "evaluate_run_with_alpha": Case(
        ["evaluate", "--model={tmp}/runs", "--alpha=0.25", "--images={data}/imagenet50"], 2,
        r"error: --alpha cannot be given with --model=.*runs: .*; leave it out"),
    "export_run_with_alpha": Case(
        ["export_tflite.py", "--model={tmp}/runs", "--alpha=0.5", "--output={tmp}/out/m.tflite"],
        2, r"error: --alpha cannot be given with --model=.*runs: a saved model fixes its own α, "
           r"input size, classes and weights; leave it out", env=NO_TENSORFLOW),
    "train_eval_with_model_settings": Case(
        ["train.py", "--mode=eval", "--model_dir={tmp}/runs", "--alpha=0.5", "--image_size=160",
         "--quantize", "--teacher={tmp}/runs", "--dataset=synthetic"], 2,
        r"error: --alpha, --image_size, --teacher, --quantize cannot be given with --mode=eval "
        r"--model_dir=.*runs: the run fixes every setting but where its validation data is and "
        r"how it is read \(--dataset, --data_dir, --batch_size, --validation_fraction, --cache, "
        r"--folder_formats\); leave them out"),
    "train_eval_with_noquantize": Case(
        ["train.py", "--mode=eval", "--model_dir={tmp}/runs", "--noquantize"], 2,
        r"error: --quantize cannot be given with --mode=eval .*; leave it out"),
    # 7: a class folder name that labels.txt and the manifest cannot hold, in both commands.
    "train_class_folder_with_a_line_break": Case(
        ["train.py", *TRAIN_ARGS, "--dataset=folder:{tmp}/line_break"], 2,
        r"error: folder dataset '.*line_break': class folder '.*line_break/be\\nes' has a line "
        r"break or tab in its name, which labels\.txt and the manifest cannot hold: rename it"),
    "write_tfrecords_class_folder_with_a_line_break": Case(
        ["write_tfrecords", "--images={tmp}/line_break", "--output={tmp}/out/shards"], 2,
        r"error: folder dataset '.*line_break': class folder '.*line_break/be\\nes' has a line "
        r"break or tab in its name, which labels\.txt and the manifest cannot hold: rename it"),
})


def _inputs_of_issue_27_results(tmp, data):
    """issue 27, groups 1-7: a TensorFlow that cannot be imported (a refusal "before any work"
    must not need it); a class folder named with a line break; a folder of two classes."""
    (tmp / "no_tensorflow" / "tensorflow").mkdir(parents=True)
    (tmp / "no_tensorflow" / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('TensorFlow was imported before the refusal')\n")
    photo = data / "imagenet50" / "n01514668_cock.JPEG"
    for folder, classes in (("line_break", ("ants", "be\nes")), ("two_classes", ("ants", "bees"))):
        for name in classes:
            (tmp / folder / name).mkdir(parents=True)
            shutil.copy(photo, tmp / folder / name / "a.jpg")


def _fill(args, tmp, data):
    return [a.format(tmp=tmp, data=data) for a in args]


def _snapshot(tmp, folders):
    """{relative path: bytes or None (folder)} under the given folders of tmp."""
    out = {}
    for folder in folders:
        for root, dirs, files in os.walk(tmp / folder):
            for d in dirs:
                out[os.path.relpath(os.path.join(root, d), tmp)] = None
            for f in files:
                with open(os.path.join(root, f), "rb") as handle:
                    out[os.path.relpath(os.path.join(root, f), tmp)] = handle.read()
    return out


def _in_process(program, argv, env, monkeypatch, capfd):
    """(status, stdout, stderr) of train.py / a python -m tool run in this process."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    capfd.readouterr()
    try:
        if program == "train.py":
            sys.path.insert(0, str(REPO_ROOT))
            import train
            train.FLAGS.unparse_flags()
            status = train.main(train._parse_flags(["train.py", *argv]))
        else:
            import importlib
            status = importlib.import_module(f"mobilenet_tf.{program}").main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capfd.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    _inputs(tmp, shared_data)
    _inputs_of_issue_27_results(tmp, shared_data)
    return tmp


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_with_the_convention_status_and_leaves_nothing(
        case, inputs, shared_data, monkeypatch, capfd):
    spec = CASES[case]
    program, *args = spec.command
    argv = _fill(args, inputs, shared_data)
    env = {k: v.format(tmp=inputs) for k, v in (spec.env or {}).items()}
    before = _snapshot(inputs, spec.unchanged)
    if program == "export_tflite.py":
        result = subprocess.run([sys.executable, str(REPO_ROOT / program), *argv], cwd=REPO_ROOT,
                                env=_env(**env), capture_output=True, text=True, timeout=300,
                                preexec_fn=_file_size_limit(spec.file_size_limit))
        status, err = result.returncode, result.stderr
    else:
        with _file_size_limited(spec.file_size_limit):
            status, _, err = _in_process(program, argv, env, monkeypatch, capfd)
    name = "python -m mobilenet_tf." + program if not program.endswith(".py") else program
    lines = err.strip().splitlines()
    assert status == spec.status, err
    assert len(lines) == 1 and re.fullmatch(re.escape(name) + ": " + spec.line, lines[0]), err
    assert "Traceback" not in err
    assert _snapshot(inputs, spec.unchanged) == before      # nothing written, nothing changed
    assert not _temporaries(inputs)


def _temporaries(tmp):
    """Half-written files and folders: our ``.tmp-*``, TensorFlow's ``ckpt-N_temp``."""
    return [os.path.join(root, name) for root, dirs, files in os.walk(tmp)
            for name in dirs + files if name.startswith(".tmp-") or "_temp" in name]


def _file_size_limit(limit):
    """A preexec_fn giving the child a file size limit (None: none)."""
    if limit is None:
        return None

    def limit_child():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(
            resource.RLIMIT_FSIZE)[1]))
    return limit_child


@contextlib.contextmanager
def _file_size_limited(limit):
    """This process's soft file size limit lowered while the block runs (a full disk: writes
    past it fail with EFBIG, Python ignores SIGXFSZ), then restored."""
    import resource
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_damaged_files_raise_weights_error_from_the_api(inputs):
    import mobilenet_tf
    from mobilenet_tf.export import tflite
    from mobilenet_tf.model import saved
    from mobilenet_tf.model import weights
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3))
    for name, pattern in (("trunc.h5", r"trunc\.h5 is damaged or truncated .*\(OSError: "),
                          ("trunc_data.ckpt", r"trunc_data\.ckpt is damaged or truncated .*"
                                              r"\(IndexError: ")):
        with pytest.raises(weights.WeightsError, match=pattern):
            weights.load_weights(model, str(inputs / name), skip_mismatched_head=True)
        with pytest.raises(weights.WeightsError, match=pattern):
            mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), weights=str(inputs / name),
                                     classes=1001 if "ckpt" in name else 1000)
    # A Keras 3 .weights.h5 and a .keras model cut short, a .tflite cut short.
    model.save_weights(inputs / "good.weights.h5")
    _truncate(inputs / "good.weights.h5", inputs / "cut.weights.h5")
    with pytest.raises(weights.WeightsError, match=r"cut\.weights\.h5 is damaged or truncated"):
        weights.load_weights(model, str(inputs / "cut.weights.h5"))
    model.save(inputs / "good.keras")
    _truncate(inputs / "good.keras", inputs / "cut.keras")
    damaged_keras = r"cut\.keras is damaged or truncated: it starts like a \.keras zip archive"
    with pytest.raises(weights.WeightsError, match=damaged_keras):
        weights.load_weights(model, str(inputs / "cut.keras"))
    with pytest.raises(weights.WeightsError, match=damaged_keras):
        saved.load_model(inputs / "cut.keras")
    with pytest.raises(weights.WeightsError, match=r"trunc\.tflite is damaged or truncated: "
                                                   r"LiteRT cannot load it"):
        tflite.TFLiteClassifier(str(inputs / "trunc.tflite"))


# --- runs that are not refused ----------------------------------------------------------------

def _train_subprocess(args, **popen):
    popen.setdefault("env", _env())
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "train.py"), *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _wait_for_checkpoint(model_dir, step, process, limit=240):
    deadline = time.time() + limit
    while time.time() < deadline and process.poll() is None:
        state = model_dir / "checkpoints" / "checkpoint"
        if state.exists() and re.search(r"ckpt-(\d+)\"", state.read_text()):
            latest = max(int(m) for m in re.findall(r"ckpt-(\d+)\"", state.read_text()))
            if latest >= step:
                return latest
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step >= {step}: {process.poll()}")


@pytest.mark.slow
@pytest.mark.parametrize("signum, status, resume", [(signal.SIGINT, 130, False),
                                                    (signal.SIGTERM, 143, True)])
def test_signal_saves_a_checkpoint_at_the_current_step_and_the_run_resumes(
        tmp_path, signum, status, resume):
    """Both signals save and exit with 128 + signal number; the resume is the same code path
    for both (a checkpoint at step N), so one of them is resumed."""
    import tensorflow as tf
    model_dir = tmp_path / "run"
    args = ["--dataset=synthetic", "--synthetic_examples=400", "--synthetic_classes=5",
            "--alpha=0.25", "--image_size=32", "--batch_size=4", "--train_steps=60",
            "--checkpoint_every_steps=5", "--mode=train", f"--model_dir={model_dir}"]
    # issue 27, group 13: after its last line the process ends at once (os._exit: no atexit,
    # no TensorFlow teardown, which took 9 to over 30 s); a sitecustomize.py on PYTHONPATH
    # leaves a mark when atexit handlers run.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit\natexit.register(lambda: open(%r, 'w').close())\n"
        % str(tmp_path / "atexit_ran"))
    process = _train_subprocess(args, env=_env(PYTHONPATH=os.pathsep.join(
        [str(site), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])))
    try:
        _wait_for_checkpoint(model_dir, 5, process)
        process.send_signal(signum)
        err = ""
        for line in process.stderr:
            err, last_line = err + line, time.monotonic()
        process.wait(120)
        ended = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
    name = signal.Signals(signum).name
    assert process.returncode == status, err[-2000:]
    assert ended - last_line < 5 and not (tmp_path / "atexit_ran").exists()
    lines = err.strip().splitlines()
    match = re.fullmatch(rf"train\.py: interrupted by {name} at step (\d+) of 60; checkpoint saved "
                         rf"\((.*ckpt-(\d+))\); run the same command to resume", lines[-1])
    assert match and match.group(1) == match.group(3), err
    assert lines[:-1] == [f"train.py: stopping after this step ({name}; again to quit at once)"]
    step = int(match.group(1))
    assert 5 <= step < 60 and tf.train.latest_checkpoint(str(model_dir / "checkpoints")) == \
        match.group(2)
    assert "Traceback" not in err and not (model_dir / "model.keras").exists()
    if not resume:
        return
    # The same command continues from that step, to the end.
    result = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args, "--verbose=0"],
                            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Resuming at step {step} of 60." in result.stdout
    summary = json.loads((model_dir / "summary.json").read_text())
    assert (summary["start_step"], summary["final_step"]) == (step, 60)


@pytest.mark.slow
def test_second_sigint_exits_at_once_and_the_last_checkpoint_stays(tmp_path):
    """The second Ctrl-C arrives while the first waits for its step to end (steps of 128x128
    images, slow enough to see): the process ends at once, without the first one's checkpoint
    and message, and the last checkpoint it had saved is whole."""
    import tensorflow as tf
    model_dir = tmp_path / "run"
    args = ["--dataset=synthetic", "--synthetic_examples=400", "--synthetic_classes=5",
            "--alpha=0.25", "--image_size=128", "--batch_size=32", "--train_steps=100000",
            "--checkpoint_every_steps=2", "--mode=train", f"--model_dir={model_dir}"]
    process = _train_subprocess(args)
    try:
        _wait_for_checkpoint(model_dir, 2, process)
        process.send_signal(signal.SIGINT)
        first = process.stderr.readline()            # printed by the first signal's handler
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert first == "train.py: stopping after this step (SIGINT; again to quit at once)\n"
    assert process.returncode == 130 and rest == "", rest
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    step = int(latest.rsplit("-", 1)[1])
    reader = tf.train.load_checkpoint(latest)             # complete and readable
    [key] = [k for k in reader.get_variable_to_shape_map()
             if re.fullmatch(r"optimizer/_?iterations/\.ATTRIBUTES/VARIABLE_VALUE", k)]
    assert int(reader.get_tensor(key)) == step


def test_sigint_before_training_starts_exits_130_and_leaves_nothing(tmp_path):
    """Interrupted while TensorFlow starts: nothing to save, no run folder."""
    model_dir = tmp_path / "run"
    process = _train_subprocess(["--dataset=synthetic", "--alpha=0.25", "--image_size=32",
                                 f"--model_dir={model_dir}"])
    time.sleep(1.5)                      # flags parsed or not: no traceback either way
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("train.py: interrupted by SIGINT before training "
                                            "started; nothing was written")
    assert not model_dir.exists()


def test_a_signal_while_python_starts_is_one_line_too():
    """The window before a command's work installs its handlers (imports, flag parsing):
    exit_on_early_signals turns the signal into the same one line and status."""
    code = ("import os, signal, time\n"
            "from mobilenet_tf.cli import runner as runtime\n"
            "runtime.exit_on_early_signals('train.py', before='training started')\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "time.sleep(30)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 143
    assert result.stderr == ("train.py: interrupted by SIGTERM before training started; nothing "
                             "was written\n")


def test_predict_interrupted_does_not_speak_of_training():
    """issue 27, group 13: every command but train.py says only that nothing was written."""
    code = ("import os, signal, threading\n"
            "from mobilenet_tf import predict\n"
            "threading.Timer(1, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
            "import time\n"
            "predict._run = lambda args: time.sleep(30)\n"
            "raise SystemExit(predict.main(['x.jpg']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        130, "python -m mobilenet_tf.predict: interrupted by SIGINT; nothing was written\n")


def test_sigterm_during_one_long_tensorflow_call_ends_within_the_grace_period():
    """issue 27, group 13: Python runs signal handlers only between bytecodes, so a SIGTERM
    during one long native call (a first step that traces and compiles, a huge step) waited
    for it. train.py's watcher thread sees the signal at once and, when the step has not
    ended after the grace period (here 1 s), ends the process with one line. The long call:
    PBKDF2 in OpenSSL, one C call of about a minute that releases the GIL as TensorFlow does."""
    code = ("import hashlib, os, signal, sys, threading\n"
            "from mobilenet_tf.cli import runner\n"
            "runner.watch_signals('train.py', grace=1)\n"
            "def work():\n"
            "    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()\n"
            "    hashlib.pbkdf2_hmac('sha256', b'x', b'y', 100_000_000)\n"
            "    return 0\n"
            "sys.exit(runner.run_command('train.py', work, lambda signum: None))\n")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (
        143, "train.py: interrupted by SIGTERM; the step in progress did not end within 1 s: "
             "exiting without saving it (run the same command to resume from the last "
             "checkpoint)\n")
    assert time.monotonic() - start < 30


def _signal_inside(handler_block):
    """run_command's work: SIGINT arrives inside ``handler_block`` (a library's try/except)."""
    def work():
        return handler_block(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))
    return work


def test_a_signal_inside_a_library_that_catches_exception_still_interrupts(capfd):
    """Found by CI: SIGINT landed while TensorFlow imported, inside ``inspect``'s
    ``except Exception: raise TypeError('unsupported callable')``; the interrupt became a
    TypeError traceback and status 1. An interrupt is not an ``Exception``."""
    from mobilenet_tf.cli import runner as runtime

    def swallowing(body):                 # what a reader of damaged files does
        try:
            body()
        except Exception:
            return 0
        return 0
    assert runtime.run_command("cmd", _signal_inside(swallowing)) == 130
    assert capfd.readouterr().err == "cmd: interrupted by SIGINT; nothing was written\n"


def test_an_interrupt_renamed_by_a_catch_all_handler_still_exits_130(capfd):
    """Code with a bare ``except:`` that raises an error of its own: the interrupt is in the
    chain, and the command reports it, not the other error."""
    from mobilenet_tf.cli import runner as runtime

    def renaming(body):
        try:
            body()
        except:  # noqa: E722 - the point of the test
            raise TypeError("unsupported callable")
        return 0
    assert runtime.run_command("cmd", _signal_inside(renaming)) == 130
    assert capfd.readouterr().err == "cmd: interrupted by SIGINT; nothing was written\n"


@pytest.mark.slow
def test_rerunning_a_finished_run_changes_nothing(tmp_path, monkeypatch, capfd):
    argv = [a.format(tmp=tmp_path) for a in TRAIN_ARGS]
    status, _, err = _in_process("train.py", argv, {}, monkeypatch, capfd)
    assert status == 0, err
    before = _snapshot(tmp_path, ["runs"])
    status, out, err = _in_process("train.py", argv, {}, monkeypatch, capfd)
    assert status == 0 and err == "", err
    assert re.search(r"^Already trained: step 2 >= 2; .*runs/run is left unchanged\.$", out, re.M)
    assert _snapshot(tmp_path, ["runs"]) == before
    _eval_prints_no_ran_out_of_data_warning(tmp_path, monkeypatch, capfd)


def _eval_prints_no_ran_out_of_data_warning(tmp_path, monkeypatch, capfd):
    """issue 27, group 16 (on the run above, to save a training): a folder's validation length
    is unknown to Keras (files that cannot be decoded are left out on the way), and Keras warns
    "Your input ran out of data; interrupting training" at its end; --mode=eval must not."""
    import warnings
    import numpy as np
    import tensorflow as tf
    for cls in ("a", "b", "c", "d"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(2):
            tf.io.write_file(str(tmp_path / "photos" / cls / f"{i}.png"),
                             tf.io.encode_png(np.full((8, 8, 3), 60 * i, np.uint8)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, out, err = _in_process("train.py", [
            "--mode=eval", f"--model_dir={tmp_path}/runs/run", f"--dataset=folder:{tmp_path}/photos",
            "--validation_fraction=0.5", "--verbose=0"], {}, monkeypatch, capfd)
    assert status == 0, err
    assert "Evaluation of" in out and "ran out of data" not in out + err
    assert not [w for w in caught if "ran out of data" in str(w.message)]


@pytest.mark.slow
def test_one_step_epochs_are_timed(tmp_path, monkeypatch, capfd):
    """8 examples in batches of 8: every epoch is one step. All steps but the first (traced)
    are timed, so images/s is measured."""
    argv = ["--dataset=synthetic", "--synthetic_examples=8", "--synthetic_classes=4",
            "--validation_fraction=0", "--alpha=0.25", "--image_size=32", "--batch_size=8",
            "--train_steps=4", "--mode=train", f"--model_dir={tmp_path}/run", "--verbose=0"]
    status, _, err = _in_process("train.py", argv, {}, monkeypatch, capfd)
    assert status == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["steps_per_epoch"], summary["measured_steps"]) == (1, 3)
    assert summary["images_per_second"] >= 3 * 8 / summary["train_seconds"]


# --- issue 27, groups 1-7: results that must not be lost or wrong ----------------------------

@pytest.mark.slow
@pytest.mark.parametrize("learning_rate, problem", [
    # RMSProp's step is up to ~3x the rate: 3e38 overflows float32 (3.4e38) in the first update.
    ("3e38", r"after step 1 \d+ of \d+ weight tensors hold NaN or inf \(first: .*\) \(is the "
             r"learning rate too high\?\): training stopped, not saved; the last good checkpoint "
             r"is none \(no checkpoint was written yet\)"),
    # Finite weights whose outputs overflow: the validation loss is inf (the issue's 1e30).
    ("1e30", r"the model at step 1 is not finite: the validation loss is inf \(its outputs "
             r"overflow\); is the learning rate too high\? model\.keras not written; the last "
             r"good checkpoint is .*ckpt-1"),
])
def test_a_model_that_is_not_finite_is_never_saved_as_finished(
        tmp_path, monkeypatch, capfd, learning_rate, problem):
    """Group 1: the loss guard sees the loss before the step's update; the weights after it
    and the validation loss are checked before a checkpoint and before model.keras."""
    import numpy as np
    import tensorflow as tf
    argv = ["--dataset=synthetic", "--synthetic_examples=16", "--synthetic_classes=2",
            "--alpha=0.25", "--image_size=32", "--batch_size=4", "--train_steps=1",
            f"--learning_rate={learning_rate}", f"--model_dir={tmp_path}/run", "--verbose=0"]
    status, _, err = _in_process("train.py", argv, {}, monkeypatch, capfd)
    assert status == 1, err
    assert re.fullmatch(r"train\.py: error: " + problem, err.strip()), err
    assert not (tmp_path / "run" / "model.keras").exists()
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    if latest:             # what is kept for resuming is finite
        reader = tf.train.load_checkpoint(latest)
        for key in reader.get_variable_to_shape_map():
            value = reader.get_tensor(key)
            if key.startswith("model/") and np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.isfinite(value).all(), key


@pytest.mark.slow
def test_a_second_run_on_a_folder_in_use_is_refused_and_a_killed_run_leaves_no_lock(
        tmp_path, monkeypatch, capfd):
    """Group 3: while one train.py runs on a --model_dir, a second is refused in one line
    (status 2) and changes nothing; once the first is killed (SIGKILL: no clean-up), the same
    command resumes from its last checkpoint."""
    model_dir = tmp_path / "run"
    args = ["--dataset=synthetic", "--synthetic_examples=64", "--synthetic_classes=2",
            "--alpha=0.25", "--image_size=32", "--batch_size=4", "--train_steps=100000",
            "--checkpoint_every_steps=1", "--mode=train", f"--model_dir={model_dir}", "--verbose=0"]
    process = _train_subprocess(args)
    try:
        _wait_for_checkpoint(model_dir, 1, process)
        # One step: were it not refused, it would end at once ("already trained"), not hang.
        second = [a if not a.startswith("--train_steps") else "--train_steps=1" for a in args]
        status, _, err = _in_process("train.py", second, {}, monkeypatch, capfd)
        assert status == 2, err
        assert err == (f"train.py: error: model_dir {model_dir} is in use by another training run "
                       f"(process {process.pid}): wait for it to end, or use another "
                       "--model_dir\n")
    finally:
        process.kill()
        process.wait(60)
    import tensorflow as tf
    step = int(tf.train.latest_checkpoint(str(model_dir / "checkpoints")).rsplit("-", 1)[1])
    resume = [a if not a.startswith("--train_steps") else f"--train_steps={step + 1}" for a in args]
    status, out, err = _in_process("train.py", resume, {}, monkeypatch, capfd)
    assert status == 0, err
    assert f"Resuming at step {step} of {step + 1}." in out
    assert not (model_dir / ".lock").exists()


def test_the_exporter_refuses_a_model_with_nan_weights(tmp_path):
    import numpy as np
    import mobilenet_tf
    from mobilenet_tf import export
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), weights=None, classes=3)
    kernel = model.get_layer("Logits").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    model.save(tmp_path / "nan.keras")
    with pytest.raises(export.ExportError, match=r"nan\.keras cannot be exported: 1 of \d+ weight "
                                                 r"tensors hold NaN or inf \(first: Logits/kernel\)"):
        export.export_model(str(tmp_path / "nan.keras"), tmp_path / "m.tflite",
                            export.ExportOptions(verify=False))
    assert sorted(os.listdir(tmp_path)) == ["nan.keras"]


# --- temporaries of killed writes -------------------------------------------------------------

def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_next_write_removes_temporaries_of_killed_writers(tmp_path):
    from mobilenet_tf.utils import fileio
    dead, target = _dead_pid(), tmp_path / "m.tflite"
    stale_file = tmp_path / f".tmp-{dead}-abc123-m.tflite"
    stale_dir = tmp_path / f".tmp-{dead}-def456-saved"
    stale_file.write_bytes(b"half")
    stale_dir.mkdir()
    alive = tmp_path / f".tmp-{os.getppid()}-ghi789-m.tflite"      # a live writer's: kept
    alive.write_bytes(b"in progress")
    other = tmp_path / f".tmp-{dead}-jkl012-other.tflite"          # another target's: kept
    other.write_bytes(b"x")

    class Archive:
        def write_out(self, directory, verbose=False):
            open(os.path.join(directory, "saved_model.pb"), "w").close()
    fileio.write_all({target: b"model"}, (Archive(), tmp_path / "saved"))
    assert sorted(os.listdir(tmp_path)) == sorted(["m.tflite", "saved", alive.name, other.name])


def test_folders_this_user_cannot_write_are_refused():
    """The third kind of unusable output folder. Root may write anywhere, so under root the
    check runs in a forked child that has become `nobody` (after the imports, which need
    files only root can read here); the commands' rows above show the same function's
    answer becomes their one line."""
    import pathlib
    import tempfile
    from mobilenet_tf.utils import fileio
    top = pathlib.Path(tempfile.mkdtemp())      # pytest's tmp_path sits in a root-only folder
    try:
        top.chmod(0o755)
        locked = top / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        answers = _answers_of_another_user(fileio, locked)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(top)
    assert answers == [f"{locked} is a folder this user cannot write to",
                       f"{locked / 'run' / 'x'} cannot be created: this user cannot write to "
                       f"{locked}",
                       f"{locked / 'm.tflite'} cannot be written: this user cannot write to "
                       f"{locked}"]


def _answers_of_another_user(fileio, locked):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child: answer and exit, no pytest
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            answers = [fileio.folder_problem(locked), fileio.folder_problem(locked / "run" / "x"),
                       fileio.file_problem(locked / "m.tflite")]
            os.write(write, json.dumps(answers).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answers = json.loads(pipe.read() or "null")
    os.waitpid(pid, 0)
    return answers


@pytest.mark.slow
def test_sigkill_during_export_leaves_the_old_file_and_the_next_export_cleans_up(
        tmp_path, shared_data):
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.tflite").write_bytes(b"the previous export")
    args = [sys.executable, str(REPO_ROOT / "export_tflite.py"), f"--weights={shared_data / H5}",
            "--alpha=0.25", "--image_size=128", "--noverify", f"--output={out / 'm.tflite'}",
            f"--saved_model_dir={out / 'saved'}"]
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            if any(name.startswith(".tmp-") for name in os.listdir(out)):
                break
            time.sleep(0.01)
        assert process.poll() is None, "the export ended before it could be killed"
        process.kill()
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    left = [name for name in os.listdir(out) if name.startswith(".tmp-")]
    assert left and (out / "m.tflite").read_bytes() == b"the previous export"
    result = subprocess.run(args, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["m.tflite", "m_labels.txt", "saved"]


# --- what a command prints around its work ----------------------------------------------------

@pytest.mark.slow
def test_no_tensorflow_startup_lines_and_no_progress_bar_codes_when_redirected(
        tmp_path, shared_data):
    """stderr holds the command's own lines only, without TF_CPP_MIN_LOG_LEVEL; stdout sent
    to a file gets one plain line per epoch (no carriage returns, no colour codes);
    MOBILENET_TF_VERBOSE=1 brings TensorFlow's lines back."""
    env = _env()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    run = [sys.executable, str(REPO_ROOT / "train.py"), "--dataset=synthetic",
           "--synthetic_examples=48", "--synthetic_classes=4", "--alpha=0.25", "--image_size=32",
           "--batch_size=8", "--train_steps=10"]
    result = subprocess.run(run + [f"--model_dir={tmp_path}/a"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout
    epochs = re.findall(r"^Epoch (\d+)/2$", result.stdout, re.M)
    assert epochs == ["1", "2"]
    assert len(re.findall(r"^\d+/\d+ - \d+s .*loss: ", result.stdout, re.M)) == 2
    # The switch, through the tool that starts TensorFlow quickest.
    predict = [sys.executable, "-m", "mobilenet_tf.predict", f"--weights={shared_data / H5}",
               "--alpha=0.25", "--image_size=128",
               str(shared_data / "imagenet50" / "n01514668_cock.JPEG")]
    verbose = subprocess.run(predict, cwd=REPO_ROOT, env=dict(env, MOBILENET_TF_VERBOSE="1"),
                             capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0 and NATIVE_NOISE.search(verbose.stderr), verbose.stderr


@pytest.mark.slow
def test_export_prints_no_native_lines(tmp_path, shared_data):
    env = _env()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "export_tflite.py"), f"--weights={shared_data / H5}",
         "--alpha=0.25", "--image_size=128", "--quantization=int8",
         f"--representative_dataset=folder:{shared_data / 'hymenoptera'}",
         "--num_calibration_images=16", "--num_verification_images=16", "--latency_runs=2",
         f"--output={tmp_path / 'm.tflite'}"], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not NATIVE_NOISE.search(result.stderr), result.stderr
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout


def test_exit_status_convention_in_one_place():
    from mobilenet_tf import errors
    from mobilenet_tf import export
    from mobilenet_tf import training
    from mobilenet_tf.model import weights
    assert errors.exit_status(weights.WeightsError("x")) == 2
    assert errors.exit_status(training.RunFolderError("x")) == 2
    assert errors.exit_status(training.TrainingError("x")) == 1
    assert errors.exit_status(export.VerificationError("x")) == 1
    assert errors.exit_status(errors.Interrupted(signal.SIGTERM, 3, 10)) == 143
    assert errors.exit_status(OSError("disk full")) == 1
