"""Images/s of our training step on one GPU (Keras on JAX), beside timm's MobileNetV1 in PyTorch.

    python bench/gpu_train_step.py                        # on a GPU: the table (under 8 minutes)
    python bench/gpu_train_step.py --json=out.json        # where the JSON goes
    python bench/gpu_train_step.py --rows=0.25/32 --batch_size=2 --steps=1   # what a test runs

Made for a machine with JAX, PyTorch and timm and no TensorFlow: it needs Keras (3.15) and
this package on the path, nothing else of ours. ``KERAS_BACKEND`` is set to ``jax`` here.

For each row (α / image size) and precision (float32, bfloat16), on the same in-memory batch of
random images and labels, already on the device:

* **ours**: ``mobilenet_tf.training.build_model`` + ``compile_model``, the model and step
  ``train.py`` trains (TF-slim padding and initialisation, the L2 filter that skips depthwise
  kernels, RMSprop with TF-slim's epsilon, the staircase schedule with warmup, label smoothing,
  EMA, top-1/top-5 metrics; bfloat16 = the ``--mixed_precision=bfloat16`` policy with a float32
  softmax), XLA-compiled by Keras' JAX trainer (``jax.jit`` of ``train_step``, state donated):
  the step function ``fit`` calls, called in a loop without ``fit``'s data iterator;
* **timm**: ``mobilenetv1_100`` (for α ≠ 1 the same generator with that channel multiplier),
  channels_last, ``torch.compile``, bfloat16 under ``torch.autocast``, cross-entropy with label
  smoothing and ``torch.optim.RMSprop`` (rho 0.9, momentum 0.9, eps 1.0): forward, backward and
  update. Skipped, saying so, when torch or timm is not installed.

All configurations are built and compiled first, then timed in turns: repetition r runs
``--steps`` steps of each in turn, so machine noise hits all alike; the median images/s is
reported. Beside it, the GPU's measured bf16 matrix throughput (square matmuls, JAX and
PyTorch, the best of both) and the fraction of it each row reaches, counting a training step as
3 × 2 × Mult-Adds FLOPs per image (forward, and the two backward products; Mult-Adds from
``mobilenet_tf.costs``, the paper's count). And how many cores of our input pipeline
(``mobilenet_tf.data.train_input``) that many images/s would need, from its images/s per core
measured on this project's CPU machine (``bench/README.md``, ImageNet-scale input).

On a machine without a GPU the same code runs on the CPU; pass tiny sizes there (a test does).
Prints the device, the library versions and the table; writes the table as JSON.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))            # this checkout's mobilenet_tf, installed or not

if os.environ.get("KERAS_BACKEND", "jax") != "jax":
    raise SystemExit(f"gpu_train_step.py: error: runs Keras on JAX; KERAS_BACKEND="
                     f"{os.environ['KERAS_BACKEND']!r} is set. Unset it or set KERAS_BACKEND=jax")
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")   # JAX and PyTorch share the GPU

DEFAULT_ROWS = "1.0/224,0.25/128"
PRECISIONS = ("float32", "bfloat16")
CLASSES = 1000
# Images/s of mobilenet_tf.data.train_input on ONE core (decode + Inception training
# preprocessing + batching of ImageNet-like JPEGs, folder input), by image size: bench/README.md,
# "ImageNet-scale input" (AVX2 AMD EPYC, 2026-11-24). Cores of input a row needs = its images/s
# / this.
INPUT_IMAGES_PER_CORE = {224: 271.0, 128: 316.8}
IMAGENET_TRAIN_EXAMPLES = 1281167


def _parse_rows(text):
    rows = []
    for row in text.split(","):
        try:
            alpha, size = row.split("/")
            alpha, size = float(alpha), int(size)
        except ValueError:
            raise SystemExit(f"gpu_train_step.py: error: a row is ALPHA/SIZE, e.g. 0.25/128. "
                             f"Received: {row!r}") from None
        if not 0 < alpha <= 4 or size < 32:
            raise SystemExit(f"gpu_train_step.py: error: a row needs 0 < ALPHA <= 4 and SIZE >= 32. "
                             f"Received: {row!r}")
        rows.append((alpha, size))
    return rows


def _parse_precisions(text):
    precisions = text.split(",")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise SystemExit(f"gpu_train_step.py: error: --precisions takes {', '.join(PRECISIONS)}. "
                         f"Received: {text!r}")
    return precisions


def _torch_and_timm():
    """``(torch, timm)``, or ``(None, reason)`` when either is missing."""
    try:
        import torch
        import timm
    except ImportError as e:
        return None, f"{e.name} is not installed"
    return torch, timm


# -- ours: Keras on JAX ----------------------------------------------------------------------------

def keras_step(alpha, size, precision, batch_size, seed=0):
    """``step(n)``: n training steps of train.py's compiled model and step on one device-resident
    batch, blocking until done. Returns ``(step, description)``."""
    import jax
    import keras
    import numpy as np
    from mobilenet_tf import training
    from mobilenet_tf.training.schedule import learning_rate_schedule
    config = training.TrainConfig(alpha=alpha, image_size=size, batch_size=batch_size,
                                  mixed_precision="none" if precision == "float32" else precision,
                                  mode="train", jit_compile=True)
    model = training.build_model(config, CLASSES, report=False)
    training.compile_model(model, config, learning_rate_schedule(
        config, steps_per_epoch=max(1, IMAGENET_TRAIN_EXAMPLES // batch_size)), report=False)
    rng = np.random.default_rng(seed)
    x = jax.device_put(rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32))
    y = jax.device_put(keras.utils.to_categorical(rng.integers(0, CLASSES, batch_size), CLASSES))
    model.train_on_batch(x, y)                 # builds, compiles (jax.jit of train_step), 1 step
    state = [model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                  optimizer_variables=True, metrics_variables=True)]

    def step(n):
        logs = None
        for _ in range(n):
            logs, state[0] = model.train_function(state[0], iter([(x, y, None)]))
        if logs is None:
            return None
        jax.block_until_ready((logs, state[0]))
        return float(logs["loss"])
    return step


# -- timm: PyTorch ---------------------------------------------------------------------------------

def timm_step(torch, timm, alpha, size, precision, batch_size, device, compile_model=True, seed=0):
    """``step(n)`` for timm's MobileNetV1 of width `alpha` (see the module docstring)."""
    torch.manual_seed(seed)
    if alpha == 1.0:
        model = timm.create_model("mobilenetv1_100", num_classes=CLASSES)
    else:
        from timm.models import efficientnet
        model = efficientnet._gen_mobilenet_v1(f"mobilenetv1_{round(alpha * 100):03d}", alpha,
                                               num_classes=CLASSES)
    model = model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.016 * batch_size / 256, alpha=0.9,
                                    eps=1.0, momentum=0.9, weight_decay=4e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    forward = torch.compile(model) if compile_model else model
    x = torch.rand(batch_size, 3, size, size, device=device).mul_(2).sub_(1)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch_size,), device=device)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16,
                    enabled=precision == "bfloat16")

    def one():
        with torch.autocast(**autocast):
            loss = loss_fn(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    def step(n):
        loss = None
        for _ in range(n):
            loss = one()
        if loss is None:
            return None
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())
    return step


# -- the yardstick: bf16 matrix throughput ------------------------------------------------------------

def _best_rate(run, flops, repetitions=5):
    run()                                    # compile, warm up
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return flops / min(times)


def matmul_flops(n, calls, torch=None, device=None):
    """FLOP/s of bf16 ``n × n`` matmuls: ``{"jax": ..., "torch": ...}`` (torch when given)."""
    import jax
    import jax.numpy as jnp
    a = jnp.ones((n, n), jnp.bfloat16) / n      # a @ a == a: the chain stays finite

    def chain(b):                                  # each product needs the last: none elided
        for _ in range(calls):
            b = b @ a
        return b
    matmul = jax.jit(chain)
    rates = {"jax": _best_rate(lambda: jax.block_until_ready(matmul(a)), 2 * n ** 3 * calls)}
    if torch is not None:
        t = torch.ones((n, n), dtype=torch.bfloat16, device=device) / n

        def run():
            b = t
            for _ in range(calls):
                b = b @ t
            if device.type == "cuda":
                torch.cuda.synchronize()
        rates["torch"] = _best_rate(run, 2 * n ** 3 * calls)
    return rates


# -- the run --------------------------------------------------------------------------------------

def environment(torch, timm_or_reason):
    import jax
    import keras
    device = jax.devices()[0]
    env = {"device": f"{device.platform}: {getattr(device, 'device_kind', '')}".strip(),
           "host": platform.node(), "python": platform.python_version(),
           "jax": jax.__version__, "keras": keras.__version__}
    if device.platform == "cpu":
        from mobilenet_tf.utils import cpu
        env["device"] += " (" + cpu.describe() + ")"
    if torch is not None:
        env.update(torch=torch.__version__, timm=timm_or_reason.__version__,
                   torch_device=(torch.cuda.get_device_name(0) if torch.cuda.is_available()
                                 else "cpu"),
                   cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
                   matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32))
    else:
        env["timm"] = f"skipped: {timm_or_reason}"
    return env


def _configurations(rows, precisions, batch_size, torch, timm, torch_compile, log):
    from mobilenet_tf.model import costs
    device = None
    if torch is not None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = []
    for precision in precisions:
        for alpha, size in rows:
            mult_adds = costs.count(alpha=alpha, image_size=size, classes=CLASSES).mult_adds
            for impl in ("ours", "timm") if torch is not None else ("ours",):
                start = time.perf_counter()
                log(f"building and compiling {impl} α={alpha:g}/{size} {precision} ...")
                step = (keras_step(alpha, size, precision, batch_size) if impl == "ours" else
                        timm_step(torch, timm, alpha, size, precision, batch_size, device,
                                  torch_compile))
                step(1)                      # torch.compile compiles on the first call
                configs.append(dict(impl=impl, alpha=alpha, image_size=size, precision=precision,
                                    batch_size=batch_size, mult_adds=mult_adds, step=step,
                                    compile_s=round(time.perf_counter() - start, 1), times=[]))
    return configs, device


def run(rows, precisions, *, batch_size, steps, repetitions, warmup, matmul_size, matmul_calls,
        torch_compile=True, log=print):
    torch, timm = _torch_and_timm()
    env = environment(torch, timm)
    env["tensorflow_imported"] = "tensorflow" in sys.modules
    configs, device = _configurations(rows, precisions, batch_size, torch, timm, torch_compile, log)
    for config in configs:
        config["step"](warmup)
    for r in range(repetitions):
        for config in configs:
            start = time.perf_counter()
            config["loss"] = config["step"](steps)
            config["times"].append(time.perf_counter() - start)
        log(f"repetition {r + 1}/{repetitions} done")
    peak = matmul_flops(matmul_size, matmul_calls, torch, device)
    best = max(peak.values())
    table = []
    for config in configs:
        rate = statistics.median(batch_size * steps / t for t in config["times"])
        per_core = INPUT_IMAGES_PER_CORE.get(config["image_size"])
        table.append(dict(
            impl=config["impl"], alpha=config["alpha"], image_size=config["image_size"],
            precision=config["precision"], batch_size=batch_size, images_per_s=float(f"{rate:.4g}"),
            train_flops_per_image=6 * config["mult_adds"],
            fraction_of_bf16_matmul=float(f"{rate * 6 * config['mult_adds'] / best:.4g}"),
            input_cores_needed=None if per_core is None else round(rate / per_core, 1),
            compile_s=config["compile_s"], last_loss=round(config["loss"], 4)))
    env["bf16_matmul_flops"] = {k: float(f"{v / 1e12:.4g}") for k, v in peak.items()}
    env["tensorflow_imported"] = env["tensorflow_imported"] or "tensorflow" in sys.modules
    return dict(environment=env, settings=dict(
        batch_size=batch_size, steps=steps, repetitions=repetitions, warmup=warmup,
        matmul=f"{matmul_size}x{matmul_size} bf16 x {matmul_calls}", classes=CLASSES,
        input_images_per_core=INPUT_IMAGES_PER_CORE), table=table)


def format_table(result):
    env = result["environment"]
    lines = [f"Device: {env['device']}"]
    names = ("python", "jax", "keras", "torch", "timm")
    lines.append("Versions: " + ", ".join(f"{k} {env[k]}" for k in names if k in env))
    lines.append("bf16 matmul, measured: " + ", ".join(
        f"{k} {v:g} TFLOP/s" for k, v in env["bf16_matmul_flops"].items())
        + f" ({result['settings']['matmul']}); TensorFlow imported: "
        + ("yes" if env["tensorflow_imported"] else "no"))
    lines.append("| impl | α | size | precision | batch | images/s | fraction of bf16 matmul "
                 "| cores of input needed | compile s |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for row in result["table"]:
        cores = "–" if row["input_cores_needed"] is None else f"{row['input_cores_needed']:g}"
        lines.append(f"| {row['impl']} | {row['alpha']:g} | {row['image_size']} | "
                     f"{row['precision']} | {row['batch_size']} | {row['images_per_s']:,.1f} | "
                     f"{row['fraction_of_bf16_matmul']:.2%} | {cores} | {row['compile_s']:g} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="ALPHA/SIZE,... (default %(default)s)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed repetition")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after compiling")
    parser.add_argument("--matmul_size", type=int, default=8192)
    parser.add_argument("--matmul_calls", type=int, default=10)
    parser.add_argument("--no_torch_compile", action="store_true",
                        help="timm without torch.compile (on a CPU its C++ build takes minutes)")
    parser.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."),
                                                       "gpu_train_step.json"))
    args = parser.parse_args(argv)
    rows, precisions = _parse_rows(args.rows), _parse_precisions(args.precisions)
    for name in ("batch_size", "steps", "repetitions", "matmul_size", "matmul_calls"):
        if getattr(args, name) < 1:
            raise SystemExit(f"gpu_train_step.py: error: --{name} must be >= 1. Received: "
                             f"{getattr(args, name)}")
    if args.warmup < 0:
        raise SystemExit(f"gpu_train_step.py: error: --warmup must be >= 0. Received: {args.warmup}")
    start = time.perf_counter()
    result = run(rows, precisions, batch_size=args.batch_size, steps=args.steps,
                 repetitions=args.repetitions, warmup=args.warmup, matmul_size=args.matmul_size,
                 matmul_calls=args.matmul_calls, torch_compile=not args.no_torch_compile,
                 log=lambda line: print(line, flush=True))
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(format_table(result))
    if "skipped" in result["environment"].get("timm", ""):
        print(f"timm rows skipped: {result['environment']['timm'].split(': ', 1)[1]}")
    from mobilenet_tf.utils import fileio
    fileio.write_text(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json} ({result['wall_s']:g} s)")


if __name__ == "__main__":
    main()
