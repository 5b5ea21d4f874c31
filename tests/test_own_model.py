"""Your own model, end to end, with default flags: train.py on a folder -> predict and
evaluate on the run -> export_tflite.py -> predict and evaluate on the .tflite.

Three classes (red, green, blue noise images) in train/ + val/ folders, α=0.25 at 32x32:
seconds per step on two cores, and a model that learns the colours in a few epochs. The
oracles: the run's own validation figures in summary.json (the same images, preprocessing
and weights), the class names it recorded, and the export's labels file.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

CLASSES = ("blue", "green", "red")     # sorted: train.py's output order


def _colour_folder(root, per_class, seed):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 110, (40, 40, 3))
            image[..., 2 - label] += 140          # blue -> channel 2, green 1, red 0
            tf.io.write_file(str(root / name / f"{i}.png"),
                             tf.io.encode_png(image.astype(np.uint8)))


def _env():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CONFIG", None)
    return env


def _run(*args):
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=600)
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run folder and its data (train/ 16 per class, val/ 8 per class)."""
    root = tmp_path_factory.mktemp("own")
    _colour_folder(root / "data" / "train", 16, seed=0)
    _colour_folder(root / "data" / "val", 8, seed=1)
    model_dir = root / "run"
    result = _run("train.py", f"--dataset=folder:{root / 'data'}", "--alpha=0.25",
                  "--image_size=32", "--batch_size=8", "--epochs=8", "--learning_rate=0.01",
                  "--batch_norm_momentum=0.9", f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "learning rate 0.01 (learning_rate, as given)" in result.stdout
    return root, model_dir, result.stdout


def _predictions(stdout):
    """{path: [(probability %, name, index)]} from predict's output."""
    out, current = {}, None
    for line in stdout.splitlines():
        row = re.fullmatch(r"  \d+\. +([\d.]+)%  (\S+) \(class (\d+)\)", line)
        if row:
            out[current].append((float(row.group(1)), row.group(2), int(row.group(3))))
        else:
            current = line
            out[current] = []
    return out


@pytest.mark.slow
def test_train_predict_evaluate_export_with_default_flags(run):
    root, model_dir, train_out = run
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["class_names"] == list(CLASSES)
    # Three classes: no top-5 anywhere (every label would be in it).
    assert "final_top5" not in summary and "val_top5" not in summary["history"]
    assert not re.search(r"top-5", train_out), train_out
    assert re.search(r"^Validation at step 48: top-1 [\d.]+ \(24 images\)$", train_out, re.M)
    # The run's own score of model.keras on val/ (train.py's tf.data pipeline) is the oracle
    # for evaluate below; how well 48 images train from scratch varies from run to run.
    val_top1 = round(summary["final_top1"] * 24)

    # predict on the run folder and on its model.keras: the run's names, top clipped to 3.
    images = [root / "data" / "val" / name / "0.png" for name in CLASSES]
    printed = []
    for model in (model_dir, model_dir / "model.keras"):
        result = _run("-m", "mobilenet_tf.predict", f"--model={model}", *map(str, images))
        assert result.returncode == 0 and result.stderr == "", result.stderr
        rows = _predictions(result.stdout)
        assert list(rows) == [str(p) for p in images]
        for block in rows.values():
            assert len(block) == 3 and sorted(r[1] for r in block) == list(CLASSES)
            assert all(CLASSES[index] == name for _, name, index in block)
            assert abs(sum(p for p, _, _ in block) - 100) <= 0.015      # 3 rounded to 0.01 %
        printed.append(rows)
    assert printed[0] == printed[1]

    # evaluate on the run with the data folder: its val/ images, the run's preprocessing, the
    # same count as the run's own validation.
    result = _run("-m", "mobilenet_tf.evaluate", f"--model={model_dir}",
                  f"--images={root / 'data'}")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^images: 24 from .*data \(val/ of a train/val folder\); 3 classes; "
                     r"preprocessing central_crop$", result.stdout, re.M), result.stdout
    assert re.search(rf"^top-1 accuracy: {val_top1}/24 = ", result.stdout, re.M), result.stdout
    assert "top-5" not in result.stdout

    # export with default flags, then the same two commands on the .tflite file.
    tflite = model_dir / "m.tflite"
    result = _run("export_tflite.py", f"--model={model_dir}", f"--output={tflite}",
                  "--latency_runs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "top-1 Keras / TFLite" in result.stdout and "top-5" not in result.stdout
    assert (model_dir / "m_labels.txt").read_text() == "blue\ngreen\nred\n"
    result = _run("-m", "mobilenet_tf.predict", f"--model={tflite}", *map(str, images))
    assert result.returncode == 0, result.stderr
    lite_rows = _predictions(result.stdout)
    for path, block in lite_rows.items():
        # float32 export: the same ranking; probabilities to float32 rounding of 1024-term
        # sums (~1e-4), far below the 0.01 % printed.
        assert [r[1:] for r in block] == [r[1:] for r in printed[0][path]]
    result = _run("-m", "mobilenet_tf.evaluate", f"--model={tflite}",
                  f"--images={root / 'data' / 'val'}")
    assert result.returncode == 0, result.stderr
    match = re.search(r"^top-1 accuracy: (\d+)/24 = ", result.stdout, re.M)
    assert match and abs(int(match.group(1)) - val_top1) <= _near_ties(model_dir, root), \
        result.stdout


def _near_ties(model_dir, root):
    """Validation images whose top-2 margin is within float32 rounding of the export
    (1024-term sums: 1024 x 2^-23 ≈ 1.2e-4): where a float32 .tflite may rank otherwise."""
    from mobilenet_tf.inference import classifier as inference
    from mobilenet_tf.data import labelled
    classifier = inference.load_classifier(str(model_dir))
    data = labelled.read_labelled_folder(root / "data" / "val", classifier.names)
    ties = 0
    for x, _, _ in inference.folder_batches(data, classifier.image_size, "central_crop", 32, []):
        top2 = np.sort(np.asarray(classifier.model(x, training=False)), axis=1)[:, -2:]
        ties += int((top2[:, 1] - top2[:, 0] < 1024 * 2.0 ** -23).sum())
    return ties


def test_evaluate_refuses_a_folder_of_other_classes(run):
    root, model_dir, _ = run
    other = root / "other"
    (other / "purple").mkdir(parents=True)
    result = _run("-m", "mobilenet_tf.evaluate", f"--model={model_dir}", f"--images={other}")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"python -m mobilenet_tf.evaluate: error: --images: sub-folder {other / 'purple'} is not "
        "one of the model's 3 classes (blue, green, red)")


def test_a_batch_larger_than_the_training_set_is_refused(run, tmp_path):
    root, _, _ = run
    result = _run("train.py", f"--dataset=folder:{root / 'data'}", "--alpha=0.25",
                  "--image_size=32", "--batch_size=64", f"--model_dir={tmp_path / 'r'}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "train.py: error: batch_size=64 is larger than the 48 training examples of "
        f"folder:{root / 'data'}: every step would repeat examples. Use a batch_size of at most "
        "48 (the global batch, over all replicas)")
    assert not (tmp_path / "r").exists()
