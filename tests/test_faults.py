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


# --- the table --------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    command: list            # [program, args...]; {tmp} and {data} are filled in
    status: int
    line: str                # regex for the one line (after "<program>: ")
    env: dict = None
    unchanged: tuple = ("out", "runs")   # folders of tmp that must look as before


TRAIN_ARGS = ["--dataset=synthetic", "--synthetic_examples=16", "--synthetic_classes=4",
              "--alpha=0.25", "--image_size=32", "--batch_size=8", "--train_steps=2",
              "--model_dir={tmp}/runs/run", "--verbose=0"]
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
    "costs_below_the_builders_size": Case(
        ["costs", "--image_size=7"], 2,
        r"error: `image_size` must be at least 32x32 \(height and width each >= 32\)\. "
        r"Received: image_size=7"),
}


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
                                env=_env(**env), capture_output=True, text=True, timeout=300)
        status, err = result.returncode, result.stderr
    else:
        status, _, err = _in_process(program, argv, env, monkeypatch, capfd)
    name = "python -m mobilenet_tf." + program if not program.endswith(".py") else program
    lines = err.strip().splitlines()
    assert status == spec.status, err
    assert len(lines) == 1 and re.fullmatch(re.escape(name) + ": " + spec.line, lines[0]), err
    assert "Traceback" not in err
    assert _snapshot(inputs, spec.unchanged) == before      # nothing written, nothing changed


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
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "train.py"), *args], cwd=REPO_ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


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
    process = _train_subprocess(args)
    try:
        _wait_for_checkpoint(model_dir, 5, process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    name = signal.Signals(signum).name
    assert process.returncode == status, err[-2000:]
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
            "runtime.exit_on_early_signals('train.py')\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "time.sleep(30)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 143
    assert result.stderr == ("train.py: interrupted by SIGTERM before training started; nothing "
                             "was written\n")


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
    assert capfd.readouterr().err == ("cmd: interrupted by SIGINT before training started; "
                                      "nothing was written\n")


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
    assert capfd.readouterr().err == ("cmd: interrupted by SIGINT before training started; "
                                      "nothing was written\n")


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
