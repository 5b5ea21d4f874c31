"""bench/gpu_train_step.py on the CPU at a tiny size: the code a GPU machine will run, known to
work before one is lent (issue 23). Subprocess: the bench sets KERAS_BACKEND=jax itself."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, in_ci

pytestmark = pytest.mark.slow

ARGS = ["--rows=0.25/32", "--precisions=float32,bfloat16", "--batch_size=2", "--steps=1",
        "--repetitions=2", "--warmup=0", "--matmul_size=64", "--matmul_calls=2",
        "--no_torch_compile"]


def _has(module):
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    if not _has("jax"):
        if in_ci():
            pytest.fail("jax is not installed: CI installs it with the test extras")
        pytest.skip("jax is not installed (the test extras install it)")
    out = tmp_path_factory.mktemp("gpu_bench") / "result.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_backend_optimization_level=0",
               PYTHONPATH=str(REPO_ROOT))
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run([sys.executable, "bench/gpu_train_step.py", *ARGS, f"--json={out}"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_prints_the_device_versions_and_table(bench):
    stdout, result = bench
    assert "\nDevice: cpu" in stdout, stdout
    assert "Versions: python" in stdout and "jax " in stdout and "keras " in stdout
    assert "TensorFlow imported: no" in stdout, stdout
    with_timm = _has("torch") and _has("timm")
    impls = ["ours", "timm"] if with_timm else ["ours"]
    assert [(r["impl"], r["precision"]) for r in result["table"]] == [
        (impl, precision) for precision in ("float32", "bfloat16") for impl in impls]
    for row in result["table"]:
        assert f"| {row['impl']} | 0.25 | 32 | {row['precision']} | 2 |" in stdout
        assert row["images_per_s"] > 0 and row["last_loss"] > 0
    if not with_timm:
        assert "timm rows skipped: " in stdout and "is not installed" in stdout, stdout


def test_fraction_of_matmul_counts_three_times_the_forward_flops(bench):
    """training ≈ 3 × 2 × Mult-Adds FLOPs per image, against the best measured bf16 matmul."""
    from mobilenet_tf.model import costs
    _, result = bench
    peak = max(result["environment"]["bf16_matmul_flops"].values()) * 1e12
    mult_adds = costs.count(alpha=0.25, image_size=32, classes=1000).mult_adds
    for row in result["table"]:
        assert row["train_flops_per_image"] == 6 * mult_adds
        want = row["images_per_s"] * 6 * mult_adds / peak
        assert row["fraction_of_bf16_matmul"] == pytest.approx(want, rel=0.01, abs=1e-4)
        assert row["input_cores_needed"] is None        # no per-core input figure at 32x32
