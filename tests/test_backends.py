"""The model and the training recipe on Keras' JAX (and PyTorch) backend, against TensorFlow's.

One subprocess per backend (``KERAS_BACKEND`` is read once per process) runs
``tests/backend_worker.py`` on inputs the TensorFlow backend wrote (images, a ``.keras`` and a
``.weights.h5`` file); this process runs the same worker on the TensorFlow backend, which is
the oracle: every output, loss, learning rate and updated weight of the other backend is
compared with TensorFlow's on the same inputs and the same starting weights.

Tolerances (tests/numerics.py):

* forward passes in float32: ``2 u ΣK · scale`` (another order of the same sums);
  probabilities twice their logits' bound (softmax); the quantization-aware run one step of
  its logits quantizer more (a value within rounding of a level may round to the next one);
* training (two steps of ``fit`` and the EMA averages after it): each tensor within
  ``4 e + 2 u |w|`` of TensorFlow's, where ``e`` is float32's own rounding error on it,
  measured as TensorFlow's float32 result minus the same two steps in float64 (the two
  backends' errors, each allowed twice TensorFlow's, plus one rounding of the stored value).
  The recipe's variants move the result 30 to 10^6 times that (regularizing the depthwise
  filters: 35x, no weight decay: 31x; label smoothing, warmup, the staircase, EMA, TF-slim's
  epsilon, batch-norm momentum: 10^3 to 10^6x), so a backend that dropped any of them fails.
  The scalars: the loss as a tensor, with ``e`` at least twice the first step's logits'
  float32 error (one scalar's measured error can be near zero by chance); the L2 penalty
  ``2 (n - 1) u`` of itself (a sum of n squares); the learning rate ``16 u`` of itself (a few
  float32 operations on the step count, on each backend). One output channel per tensor may leave the bound: a ReLU6 input within rounding of its
  kink flips a gradient on one backend (``_assert_close_but_one_channel``).
  (Float64 on both backends is no yardstick: Keras 3.15 computes batch norm in float32 on
  JAX and PyTorch whatever the input.)

JAX compiles with ``--xla_backend_optimization_level=0`` here: the same operations, compiled
in a third of the time (LLVM's optimizations only reorder the arithmetic, which the tolerances
allow).
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import backend_worker
import numerics
from conftest import REPO_ROOT, in_ci

pytestmark = pytest.mark.slow

BACKENDS = ("jax", "torch")
WORKER_TIMEOUT = 600


class _Launched:
    """The worker running on another backend, started before the TensorFlow side computes."""

    def __init__(self, backend, in_dir):
        self.backend, self.out = backend, in_dir / f"{backend}.npz"
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO_ROOT),
                   JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_backend_optimization_level=0")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "backend_worker.py"), str(in_dir),
             str(self.out)], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)

    def results(self):
        output, _ = self.process.communicate(timeout=WORKER_TIMEOUT)
        assert self.process.returncode == 0, f"{self.backend} worker failed:\n{output[-4000:]}"
        with np.load(self.out) as data:
            return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared_data):
    in_dir = tmp_path_factory.mktemp("backends")
    backend_worker.prepare(in_dir)
    return in_dir


@pytest.fixture(scope="module", params=BACKENDS)
def launched(request, prepared):
    backend = request.param
    if importlib.util.find_spec(backend) is None:
        if backend == "jax" and in_ci():
            pytest.fail("jax is not installed: CI installs it with the test extras (jax[cpu])")
        pytest.skip(f"{backend} is not installed (pip install {backend} runs these tests on it)")
    return _Launched(backend, prepared)


@pytest.fixture(scope="module")
def tensorflow_results(prepared):
    import keras
    assert keras.backend.backend() == "tensorflow"
    return {key: np.asarray(value) for key, value in backend_worker._flatten(
        backend_worker.run(prepared)).items()}


@pytest.fixture(scope="module")
def results(launched, tensorflow_results):
    """``(other backend's results, TensorFlow's)``."""
    return launched.results(), tensorflow_results


def _assert_close(got, want, bound, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    worst = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert worst <= np.max(bound), f"{what}: max |difference| {worst:.3g} > bound {np.max(bound):.3g}"


def _forward_bound(reduction, outputs):
    return 2 * numerics.U32 * float(reduction) * float(np.max(np.abs(outputs)))


def test_backend_ran_without_tensorflow(results):
    other, _ = results
    assert str(other["backend"]) in BACKENDS
    assert other["tensorflow_imported"].size == 0, (
        f"TensorFlow was imported on {other['backend']}: {list(other['tensorflow_imported'])[:5]}")


def test_builder_with_every_keyword(results):
    other, tf = results
    for case in backend_worker.BUILDER_CASES:
        assert str(other[f"builder/{case}/name"]) == str(tf[f"builder/{case}/name"])
        reduction = tf[f"builder/{case}/reduction"]
        if f"builder/{case}/logits" in tf:
            _assert_close(other[f"builder/{case}/logits"], tf[f"builder/{case}/logits"],
                          _forward_bound(reduction, tf[f"builder/{case}/logits"]), f"{case} logits")
            bound = 2 * _forward_bound(reduction, tf[f"builder/{case}/logits"])
        else:
            bound = _forward_bound(reduction, tf[f"builder/{case}"])
        _assert_close(other[f"builder/{case}"], tf[f"builder/{case}"], bound, f"builder {case}")


def test_weights_files_saved_by_tensorflow(results):
    """Google's Keras 2 .h5 (with the head and without), our .weights.h5 and .keras files saved
    by the TensorFlow backend (as `weights` and with keras.saving.load_model), run folders of
    0.1.0 (float and quantization-aware)."""
    other, tf = results
    google = tf["weights/google_h5/reduction"]
    logits = tf["weights/google_h5_logits"]
    _assert_close(other["weights/google_h5_logits"], logits, _forward_bound(google, logits),
                  "Google .h5 logits")
    _assert_close(other["weights/google_h5"], tf["weights/google_h5"],
                  2 * _forward_bound(google, logits), "Google .h5 probabilities")
    assert list(other["weights/google_h5_top5"]) == list(tf["weights/google_h5_top5"])
    assert str(tf["weights/google_h5_top5"][0]) == "n01514668 cock"
    _assert_close(other["weights/google_h5_no_top"], tf["weights/google_h5_no_top"],
                  _forward_bound(google, tf["weights/google_h5_no_top"]), "Google .h5 no top")
    own = 2 * _forward_bound(tf["weights/own/reduction"], tf["weights/own/logits"])
    for key in ("own_weights_h5", "own_keras_as_weights", "own_keras_load_model"):
        _assert_close(other[f"weights/{key}"], tf[f"weights/{key}"], own, key)
    for run in ("float", "qat"):
        bound = _forward_bound(tf[f"weights/run_{run}/reduction"], tf[f"weights/run_{run}/logits"])
        if run == "qat":
            bound += float(tf["weights/run_qat/logits_step"])
        _assert_close(other[f"weights/run_{run}/logits"], tf[f"weights/run_{run}/logits"], bound,
                      f"0.1.0 {run} run, logits")
        _assert_close(other[f"weights/run_{run}"], tf[f"weights/run_{run}"], 2 * bound,
                      f"0.1.0 {run} run")


def test_costs_features_preprocess_and_decode(results):
    other, tf = results
    assert list(other["costs/alpha_0.5_160"]) == list(tf["costs/alpha_0.5_160"])
    assert str(other["costs/table"]) == str(tf["costs/table"])
    reduction = tf["features/model/reduction"]
    for key in [k for k in tf if k.startswith("features/") and not k.endswith("reduction")]:
        _assert_close(other[key], tf[key], _forward_bound(reduction, tf[key]), key)
    assert np.array_equal(other["preprocess/numpy"], tf["preprocess/numpy"])
    _assert_close(other["preprocess/tensor"], tf["preprocess/tensor"], 2 * numerics.U32,
                  "preprocess_input of a backend tensor")
    assert str(other["preprocess/tensor_type"]).startswith(str(other["backend"])), (
        f"preprocess_input returned a {other['preprocess/tensor_type']} tensor on {other['backend']}")
    assert list(other["decode/1001"]) == list(tf["decode/1001"])


def _training_tensors(data, prefix):
    """``{(step, weight path): value}`` after each step and after fit (the EMA averages)."""
    paths = [str(p) for p in data[f"{prefix}/paths"]]
    steps = [f"step{i}" for i in range(backend_worker.TRAIN_STEPS)] + ["final"]
    return {(step, path): data[f"{prefix}/{step}/{path}"] for step in steps for path in paths}


def _float32_error(tf):
    """float32's own rounding error of each training tensor: TensorFlow float32 - float64."""
    f32, f64 = _training_tensors(tf, "train"), _training_tensors(tf, "train64")
    return {key: np.abs(f32[key] - f64[key]) for key in f32}


def _scalar_bounds(tf, bound):
    """The bound of each scalar of the training run.

    * the L2 penalty before training, a sum of ``n`` squares of the same float32 weights on
      both backends: ``2 (n - 1) u · penalty`` (each backend's sum within ``(n - 1) u`` of exact);
    * the next step's learning rate, a few float32 operations on the step count (a cast, a
      division, floor, power, a product, the warmup's minimum and product): ``2 · 8 u · rate``;
    * each step's loss: ``bound(e, loss)`` as for the weights, with ``e`` at least twice
      float32's error of the first step's logits (TensorFlow float32 - float64; the
      cross-entropy moves by at most 2 · max |Δlogit| per example): one scalar's measured
      error can be near zero by chance, the 40 logits' cannot all be.
    """
    u = numerics.U32
    bounds = {"penalty": 2 * (float(tf["train/decayed_size"]) - 1) * u * float(tf["train/penalty"])}
    logits_error = float(np.max(np.abs(tf["train/logits"] - tf["train64/logits"])))
    for i in range(backend_worker.TRAIN_STEPS):
        bounds[f"step{i}/next_rate"] = 2 * 8 * u * float(tf[f"train/step{i}/next_rate"])
        loss = tf[f"train/step{i}/loss"]
        e = max(abs(float(loss) - float(tf[f"train64/step{i}/loss"])), 2 * logits_error)
        bounds[f"step{i}/loss"] = bound(e, loss)
    return bounds


def _check_training(other, tf, bound):
    backend = other["backend"]
    assert list(other["train/decayed"]) == list(tf["train/decayed"])
    assert not any("depthwise/" in str(p) for p in tf["train/decayed"])
    _assert_close(other["train/initial"], tf["train/initial"], 0.0, "starting weights")
    for name, scalar_bound in _scalar_bounds(tf, bound).items():
        _assert_close(other[f"train/{name}"], tf[f"train/{name}"], scalar_bound,
                      f"{name} on {backend}")
    errors = _float32_error(tf)
    mine, want = _training_tensors(other, "train"), _training_tensors(tf, "train")
    for key, value in want.items():
        _assert_close_but_one_channel(mine[key], value, bound(errors[key].max(), value),
                                      f"{key[1]} after {key[0]} on {backend}")


def _assert_close_but_one_channel(got, want, bound, what):
    """Within `bound` in every output channel (the last axis) but at most one.

    A ReLU6 input within rounding of 0 or 6 takes the other side of the kink on one backend
    and flips that activation's gradient: the update of the one channel it feeds moves by
    far more than rounding (seen on PyTorch: one output channel of Conv2d_8_pointwise's kernel
    6x the bound after the second step, every other channel within it). Such a flip is an
    accident of the data and the CPU's summation order, so one channel per tensor may leave
    the bound; a dropped or changed part of the recipe moves every channel (30x the bound and
    more) and still fails."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.ndim == 0:
        return _assert_close(got, want, bound, what)
    per_channel = np.abs(got - want).reshape(-1, got.shape[-1]).max(axis=0)
    beyond = np.flatnonzero(per_channel > np.max(bound))
    assert len(beyond) <= 1, (f"{what}: {len(beyond)} channels beyond the bound "
                              f"{np.max(bound):.3g} (worst {per_channel.max():.3g})")


def test_training_recipe(results):
    """build_model + compile_model + fit: within twice each backend's float32 rounding error
    (measured on TensorFlow) plus one rounding of the stored value."""
    other, tf = results
    _check_training(other, tf, lambda e, value: 4 * e + 2 * numerics.U32 * np.max(np.abs(value)))


def test_tensorflow_only_parts_refuse_in_one_line(results):
    other, _ = results
    backend = str(other["backend"])
    refusals = {key.split("/", 1)[1]: other[key] for key in other if key.startswith("refusal/")}
    assert set(refusals) == {"tf.data input", "TF-slim checkpoint", "TFLite export",
                             "tf.distribute", "train", "evaluate"}
    for what, (kind, message) in refusals.items():
        assert kind == "BackendError", f"{what} on {backend}: {kind}: {message}"
        assert "\n" not in message and f"runs Keras on '{backend}'" in message, message
        assert "TensorFlow backend" in message, message


@pytest.mark.parametrize("command", [["-m", "mobilenet_tf.predict", "x.jpg"],
                                     ["train.py", "--dataset=synthetic"]])
def test_commands_refuse_another_backend(command):
    """The commands are TensorFlow's: KERAS_BACKEND=jax is refused in one line, exit 2, before
    TensorFlow is imported (no TensorFlow start-up line on stderr)."""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, *command], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Keras' TensorFlow backend" in lines[0], result.stderr
    assert "runs Keras on 'jax'" in lines[0], lines[0]


def test_refusal_is_checked_in_one_place():
    """Every TensorFlow import of the package goes through utils.backend (tests/test_layout.py
    checks the imports); this checks the one function itself on a fake backend name."""
    from mobilenet_tf.errors import BackendError
    from mobilenet_tf.utils import backend
    backend.require_tensorflow("x")                   # this process: TensorFlow
    with pytest.raises(BackendError, match=r"^x needs Keras' TensorFlow backend; this process "
                                           r"runs Keras on 'jax' \(KERAS_BACKEND=jax\)"):
        backend.require_tensorflow("x", "jax")
