"""The predict / evaluate / convert commands on the real images and weights.

Oracle: shared/data/README.md's reference accuracy of these weights in
keras.applications.MobileNet on imagenet50 (resize to the model size, scale to
[-1, 1], no crop): 22 of 50 top-1 at α=0.25/128, 33 of 50 at α=0.75/192.
Commands run in-process through their `main(argv)`; one subprocess run checks
the real command line (exit status, stderr) with weights='imagenet' from a
pre-filled Keras cache.
"""

import csv
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import mobilenet_tf
import numerics
from mobilenet_tf import convert, evaluate, predict
from mobilenet_tf.model import imagenet

REFERENCE_TOP1 = {(0.25, 128): 22, (0.75, 192): 33}
H5 = {(0.25, 128): "mobilenet_2_5_128_tf.h5", (0.75, 192): "mobilenet_7_5_192_tf.h5"}
SLIM_CKPT = "mobilenet_v1_0.25_128.ckpt"


def _rows(shared_data):
    with open(shared_data / "imagenet50" / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def _run_main(module, argv, capsys):
    """Runs `module.main(argv)`; returns (exit status, stdout, stderr)."""
    try:
        status = module.main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("alpha,size,weights_file,extra", [
    (0.25, 128, H5[(0.25, 128)], []),
    (0.75, 192, H5[(0.75, 192)], []),
    (0.25, 128, SLIM_CKPT, []),                    # 1001-class head, averaged weights (default)
    (0.25, 128, SLIM_CKPT, ["--classes=1000"]),    # background row dropped
])
def test_evaluate_reports_the_reference_accuracy(shared_data, capsys, alpha, size, weights_file,
                                                 extra):
    status, out, _ = _run_main(evaluate, [
        f"--alpha={alpha}", f"--image_size={size}",
        f"--weights={shared_data / 'weights' / weights_file}",
        f"--images={shared_data / 'imagenet50'}"] + extra, capsys)
    assert status == 0
    top1 = REFERENCE_TOP1[(alpha, size)]
    assert re.search(rf"^top-1 accuracy: {top1}/50 = {top1 / 50:.4f}$", out, re.M)
    assert re.search(r"^top-5 accuracy: \d+/50 = ", out, re.M)
    progress = re.sub(r"\x1b\[[0-9;]*m", "", out)   # the progress bar, without its colours
    assert re.search(rf"50/50 .* - top1: {top1 / 50:.4f} - top5: ", progress)


@pytest.mark.parametrize("alpha,size", sorted(REFERENCE_TOP1))
def test_predict_top1_matches_the_reference_accuracy(shared_data, capsys, alpha, size):
    rows = _rows(shared_data)
    paths = [str(shared_data / "imagenet50" / r["file"]) for r in rows]
    status, out, _ = _run_main(predict, [
        f"--alpha={alpha}", f"--image_size={size}",
        f"--weights={shared_data / 'weights' / H5[(alpha, size)]}"] + paths, capsys)
    assert status == 0
    blocks = re.findall(r"^(\S.*)\n  1\. +([\d.]+)% +(.+) \((n\d{8})\)\n(?:  [2-5]\. .*\n){4}",
                        out, re.M)
    assert [b[0] for b in blocks] == paths
    correct = sum(wnid == row["synset"] for (_, _, _, wnid), row in zip(blocks, rows))
    assert correct == REFERENCE_TOP1[(alpha, size)]
    # The printed top 5 of an image are keras.applications.MobileNet's five most probable classes
    # with the same file on the same resized image, as percentages rounded to 0.01. Reference:
    # that model in float64; float32 (ours, another order of the same sums) may land up to
    # √K_max times float32's own error on this image away from it (tests/numerics.py).
    cock = re.search(r"n01514668_cock\.JPEG\n((?:  \d\. .*\n){5})", out)[1]
    printed = re.findall(r"^  \d\. +(\d+\.\d+)% +(.+) \((n\d{8})\)$", cock, re.M)
    reference = keras.applications.MobileNet(alpha=alpha, input_shape=(size, size, 3),
                                             weights=str(shared_data / "weights" / H5[(alpha, size)]))
    image = tf.io.decode_jpeg(tf.io.read_file(str(shared_data / "imagenet50" /
                                                  "n01514668_cock.JPEG")), channels=3)
    x = tf.image.resize(tf.cast(image, tf.float32), (size, size))[tf.newaxis] / 127.5 - 1
    probs = np.asarray(numerics.float64_copy(reference)(tf.cast(x, tf.float64), training=False))[0]
    error = np.abs(np.asarray(reference(x, training=False))[0] - probs).max()
    bound = 100 * np.sqrt(max(numerics.reduction_lengths(reference))) * error
    top = np.argsort(-probs)[:5]
    assert [wnid for _, _, wnid in printed] == [imagenet.wordnet_ids()[i] for i in top]
    for (percent, _, _), p in zip(printed, probs[top]):
        assert abs(float(percent) - 100 * p) <= 0.005 + bound


@pytest.mark.slow
def test_predict_command_line_skips_bad_files_and_fails(shared_data, tmp_path):
    """The real command, weights='imagenet' from a pre-filled Keras cache ($KERAS_HOME)."""
    (tmp_path / "keras" / "models").mkdir(parents=True)
    shutil.copy(shared_data / "weights" / H5[(0.25, 128)],
                tmp_path / "keras" / "models" / H5[(0.25, 128)])
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is text")
    good = shared_data / "imagenet50" / "n01514668_cock.JPEG"
    gif = shared_data / "hymenoptera" / "train" / "ants" / "imageNotFound.gif"
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras"), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "mobilenet_tf.predict", "--alpha=0.25", "--image_size=128",
         "--weights=imagenet", str(good), str(not_an_image), str(gif)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    # issue 27, group 14: every line on stderr in the `<command>: error:` form.
    assert re.search(rf"^python -m mobilenet_tf\.predict: error: {re.escape(str(not_an_image))}: "
                     r"not a JPEG, PNG, GIF or BMP image \(skipped\)$", result.stderr, re.M)
    assert re.search(r"^python -m mobilenet_tf\.predict: error: 1 of 3 files could not be "
                     r"classified$", result.stderr, re.M)
    assert re.search(rf"^{re.escape(str(good))}\n  1\. +[\d.]+% +cock \(n01514668\)$",
                     result.stdout, re.M)
    assert re.search(rf"^{re.escape(str(gif))}\n  1\. ", result.stdout, re.M)  # GIF: first frame
    assert str(not_an_image) not in result.stdout


def test_evaluate_wordnet_subfolders_and_bad_files(shared_data, tmp_path, capsys):
    rows = _rows(shared_data)[:6]
    for row in rows:
        (tmp_path / row["synset"]).mkdir()
        os.symlink(shared_data / "imagenet50" / row["file"], tmp_path / row["synset"] / row["file"])
    (tmp_path / rows[0]["synset"] / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    status, out, err = _run_main(evaluate, [
        "--alpha=0.25", "--image_size=128", "--batch_size=4",
        f"--weights={shared_data / 'weights' / H5[(0.25, 128)]}", f"--images={tmp_path}"], capsys)
    assert status == 1
    assert re.search(r"^python -m mobilenet_tf\.evaluate: error: .*/broken\.jpg: cannot be "
                     r"decoded .*\(skipped\)$", err, re.M)
    assert re.search(r"^images: 6 \(1 skipped\) from .* \(class sub-folders\); 1000 classes; "
                     r"preprocessing resize$", out, re.M), out
    # Oracle: keras.applications.MobileNet with the same file on the six images, resized.
    reference = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
                                             weights=str(shared_data / "weights" / H5[(0.25, 128)]))
    x = np.stack([tf.image.resize(tf.cast(tf.io.decode_jpeg(tf.io.read_file(
        str(shared_data / "imagenet50" / row["file"])), channels=3), tf.float32), (128, 128))
        for row in rows]) / 127.5 - 1
    ranked = np.argsort(-np.asarray(reference(x, training=False)), axis=1)
    labels = np.array([int(row["class_index"]) for row in rows])
    top1, top5 = (ranked[:, 0] == labels).sum(), (ranked[:, :5] == labels[:, None]).any(1).sum()
    assert re.search(rf"^top-1 accuracy: {top1}/6 ", out, re.M), out
    assert re.search(rf"^top-5 accuracy: {top5}/6 ", out, re.M), out


def test_evaluate_tfds_dataset(shared_data, tmp_path, capsys):
    """tfds:NAME with a real TFDS dataset, prepared offline from the 50 images."""
    import tensorflow_datasets as tfds
    rows = _rows(shared_data)
    folder = shared_data / "imagenet50"

    class Imagenet50Local(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(),
                "label": tfds.features.ClassLabel(names=list(imagenet.wordnet_ids()))}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"validation": self._generate_examples()}

        def _generate_examples(self):
            for row in rows:
                yield row["file"], {"image": str(folder / row["file"]), "label": row["synset"]}

    Imagenet50Local(data_dir=str(tmp_path)).download_and_prepare()
    status, out, _ = _run_main(evaluate, [
        "--alpha=0.25", "--image_size=128", f"--weights={shared_data / 'weights' / SLIM_CKPT}",
        "--images=tfds:imagenet50_local", f"--tfds_data_dir={tmp_path}"], capsys)
    assert status == 0
    assert re.search(r"^top-1 accuracy: 22/50 = 0\.4400$", out, re.M)
    status, _, err = _run_main(evaluate, [
        "--alpha=0.25", "--image_size=128", f"--weights={shared_data / 'weights' / SLIM_CKPT}",
        "--images=tfds:imagenet50_local:train", f"--tfds_data_dir={tmp_path}"], capsys)
    assert status == 2
    assert re.search(r"error: --images=tfds:imagenet50_local:train: cannot read the TFDS dataset",
                     err)


def test_help_says_which_preprocessing_is_the_default(capsys):
    """Google's weights: 'resize' (the reference accuracies); a run of train.py or its export:
    'central_crop', what its validation used."""
    for module in (predict, evaluate):
        status, out, _ = _run_main(module, ["--help"], capsys)
        assert status == 0
        out = " ".join(out.split())   # argparse wraps the help text
        assert re.search(r"'resize': resize the whole image to the model size, no crop, then "
                         r"scale to \[-1, 1\] .* the default for Google's weights\); "
                         r"'central_crop': .* \(the default for a train\.py run or its export",
                         out), out


@pytest.mark.parametrize("module,argv,pattern", [
    (predict, ["--alpha=-1", "x.jpg"], r"argument --alpha: must be a number > 0, got '-1'"),
    (predict, ["--alpha=0.3", "--image_size=128", "x.jpg"],
     r"error: weights='imagenet' exist only for alpha/image size 0\.25/128, .* Received: "
     r"alpha=0\.3, image_size=128"),
    (predict, ["--weights=/no/such.ckpt", "x.jpg"],
     r"error: `weights` must be None, 'imagenet', .*; there is no such file or checkpoint "
     r"prefix\. Received: weights='/no/such\.ckpt'"),
    (predict, ["--classes=10", "--alpha=0.25", "--image_size=128", "x.jpg"],
     r"error: weights='imagenet' with include_top=True need classes=1000; .* Received: "
     r"classes=10"),
    (evaluate, ["--images=/no/such/folder"], r"error: --images: no such folder: /no/such/folder"),
    (evaluate, ["--image_size=abc", "--images=x"], r"argument --image_size: must be an int >= 1"),
    (convert, ["--from=x.ckpt", "--alpha=0.25", "--image_size=128", "--output=m.txt"],
     r"error: --output must end in \.keras or \.weights\.h5\. Received: --output=m\.txt"),
    (convert, ["--from=/no/such.ckpt", "--alpha=0.25", "--image_size=128", "--output=m.keras"],
     r"error: `weights` must be None, 'imagenet', .*; there is no such file or checkpoint "
     r"prefix\. Received: weights='/no/such\.ckpt'"),
])
def test_argument_errors_exit_2(capsys, module, argv, pattern):
    status, _, err = _run_main(module, argv, capsys)
    assert status == 2
    assert re.search(pattern, err), err
    assert "Traceback" not in err


def test_convert_checkpoint_to_keras(shared_data, tmp_path, capsys):
    output = tmp_path / "slim.keras"
    status, out, _ = _run_main(convert, [
        f"--from={shared_data / 'weights' / SLIM_CKPT}", "--alpha=0.25", "--image_size=128",
        f"--output={output}"], capsys)
    assert status == 0
    assert re.search(r"checkpoint_weights='average'", out)
    assert re.search(rf"^Wrote {re.escape(str(output))} \(mobilenet_v1_0\.25_128, [\d,]+ "
                     r"parameters\)$", out, re.M)
    assert sorted(os.listdir(tmp_path)) == ["slim.keras"]   # no temporary file left behind
    converted = keras.models.load_model(output)
    assert converted.output_shape == (None, 1001)
    direct = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=1001,
                                      weights=str(shared_data / "weights" / SLIM_CKPT))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(converted(x)), np.asarray(direct(x)))
    # A failing conversion leaves the existing output untouched.
    before = output.read_bytes()
    status, _, err = _run_main(convert, [
        f"--from={shared_data / 'weights' / SLIM_CKPT}", "--alpha=0.5", "--image_size=128",
        f"--output={output}"], capsys)
    assert status == 2 and re.search(r"has shape \(3, 3, 3, 8\) .* has shape \(3, 3, 3, 16\)", err)
    assert output.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["slim.keras"]
