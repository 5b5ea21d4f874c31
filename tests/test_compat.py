"""What users of mobilenet-tf 0.1 have keeps working after the move into sub-packages.

* Every public name of every 0.1 module (``tests/data/public_names_0_1_0.json``, read from
  the 0.1.0 sources) is reachable at its old path, ``mobilenet_tf.<module>.<name>``, and is
  the very object the new layout defines.
* Run folders and ``.keras`` files that 0.1.0's ``train.py`` wrote (float, EMA, quantization-
  aware, distilled, a folder dataset with its manifest; ``tests/data/runs_0_1_0``) load,
  predict, evaluate, export and resume.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import pytest

from conftest import REPO_ROOT

OLD_NAMES = json.loads((REPO_ROOT / "tests" / "data" / "public_names_0_1_0.json").read_text())


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_every_public_name_of_0_1_resolves_at_its_old_path(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(f"mobilenet_tf.{old}")
        missing = [name for name in OLD_NAMES[old] if not hasattr(module, name)]
    assert missing == []


def test_an_old_path_gives_the_new_object_and_says_where_it_went():
    from mobilenet_tf.model import weights
    with pytest.warns(DeprecationWarning, match=r"mobilenet_tf\.weights\.load_weights is now "
                                                r"mobilenet_tf\.model\.weights\.load_weights"):
        from mobilenet_tf.weights import load_weights
    assert load_weights is weights.load_weights


def test_an_unknown_name_at_an_old_path_is_refused():
    import mobilenet_tf.datasets
    with pytest.raises(AttributeError, match="'mobilenet_tf.datasets' has no attribute 'nope'"):
        mobilenet_tf.datasets.nope
    with pytest.raises(ImportError, match="cannot import name 'nope'"):
        from mobilenet_tf.datasets import nope  # noqa: F401


def test_old_paths_need_no_tensorflow_until_a_name_that_needs_it_is_used():
    code = ("import sys, warnings; warnings.simplefilter('ignore');"
            "import mobilenet_tf.architecture, mobilenet_tf.train_options, mobilenet_tf.costs;"
            "from mobilenet_tf.train_options import parse_dataset_spec, OPTIMIZERS;"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True)
    assert out.stdout.split() == ["False"]


# --- run folders written by 0.1.0 -----------------------------------------------------------------
# tests/data/runs_0_1_0 (its README has the commands): each must load, predict, evaluate, export
# and resume with today's code. Paths inside are relative to that folder, so each test works in
# a copy of it.
RUNS = REPO_ROOT / "tests" / "data" / "runs_0_1_0"
COMMON = ["--alpha=0.1", "--image_size=32", "--batch_size=4", "--keep_checkpoints=1",
          "--log_every_steps=0", "--verbose=2", "--validation_fraction=0.25",
          "--batch_norm_momentum=0.9"]
SYNTHETIC = ["--dataset=synthetic", "--synthetic_examples=24", "--synthetic_classes=3"]
# run folder -> the flags it was made with (besides COMMON)
MADE_WITH = {
    "float": SYNTHETIC,
    "ema": SYNTHETIC + ["--moving_average_decay=0.9"],
    "qat": SYNTHETIC + ["--quantize"],
    "distilled": SYNTHETIC + ["--teacher=float"],
    "folder": ["--dataset=folder:photos"],
}


def _command(cwd, *args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CONFIG", None)
    result = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


@pytest.fixture
def old_runs(tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MADE_WITH))
def test_a_0_1_run_folder_loads_predicts_evaluates_exports_and_resumes(old_runs, name):
    run = old_runs / name
    saved = json.loads((run / "summary.json").read_text())
    image = old_runs / "photos" / "red" / "0.jpg"

    # loads: the model and the class names the run recorded (3 classes, its own input size)
    from mobilenet_tf.model import saved as saved_lib
    model, class_names = saved_lib.load_model(run)
    assert model.input_shape[1:] == (32, 32, 3) and model.output_shape[-1] == 3
    assert class_names == saved["class_names"]

    # predicts: one image, the run's classes
    out = _command(old_runs, "-m", "mobilenet_tf.predict", f"--model={name}", image).stdout
    assert out.splitlines()[0].endswith("0.jpg") and len(re.findall(r"^\s+\d\. ", out, re.M)) == 3

    # evaluates: the newest checkpoint on the run's own validation data gives the run's figure
    _command(old_runs, REPO_ROOT / "train.py", "--mode=eval", f"--model_dir={name}")
    scores = json.loads((run / "eval.json").read_text())
    assert scores["step"] == 3 and scores["num_validation"] == saved["num_validation"]
    assert scores["ema"] == (name == "ema")
    if name != "ema":      # model.keras of an EMA run holds the averages, as eval does
        assert abs(scores["top1"] - saved["final_top1"]) < 1e-6

    # exports: float32 (the quantization-aware run: int8 from its learned ranges), verified on
    # the run's validation data (synthetic data must be allowed by name)
    output = old_runs / f"{name}.tflite"
    allow = ["--allow_synthetic_calibration"] if SYNTHETIC[0] in MADE_WITH[name] else []
    _command(old_runs, REPO_ROOT / "export_tflite.py", f"--model={name}", f"--output={output}",
             "--num_verification_images=6", *allow)
    names = saved["class_names"] or ["class_0", "class_1", "class_2"]    # synthetic data: none
    assert output.stat().st_size > 0
    assert (old_runs / f"{name}_labels.txt").read_text().split() == names

    # resumes: two more steps from the checkpoint of step 3
    out = _command(old_runs, REPO_ROOT / "train.py", f"--model_dir={name}", "--train_steps=5",
                   *COMMON, *MADE_WITH[name]).stdout
    assert "Resuming at step 3 of 5" in out
    assert json.loads((run / "summary.json").read_text())["final_step"] == 5
