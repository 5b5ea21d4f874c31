"""Training throughput of train.py's model and step vs keras.applications.MobileNet.

    python bench/train_throughput.py                       # the issue's 8 rows + input pipeline
    python bench/train_throughput.py --rows=0.25/128/float32 --repetitions=5 --steps=10

For each row (alpha, image size, precision) three models train on the same
in-memory batch of random images (so only compute is measured):

* **ours**: ``mobilenet_tf.training.build_model`` + ``training.compile_model``, i.e.
  exactly what ``train.py`` trains: MobileNetV1 with TF-slim padding and
  initialisation, the per-variable L2 filter added to the loss, RMSprop
  (rho 0.9, momentum 0.9, epsilon 1.0), categorical cross-entropy, top-1/top-5
  metrics, the mixed-precision policy of ``mobilenet_tf.training.precision``;
* **ours without L2**: the same with ``weight_decay=0``: keras.applications'
  model has no weight decay, so this isolates the network and step from the
  recipe's extra loss term;
* **keras.applications**: ``keras.applications.MobileNet(weights=None)`` of the
  same alpha, size and 1000 classes, compiled with the same optimizer, loss and
  metrics (and, for bfloat16 / float16, built under the same policy with its
  softmax in float32, float16 with the same loss scaling).

Each runs its compiled Keras train step (``train_on_batch``: the function
``fit`` runs for each batch, without the tf.data iterator around it), warmed
up, alternately: repetition r times ``--steps`` steps of each model in turn,
so machine noise hits all alike. Reported: median images/s of each and the
median of the per-repetition ratios ours / Keras.

The input pipeline row measures ``mobilenet_tf.data.train_input`` on the
real JPEGs of ``../shared/data/hymenoptera`` (or ``$MOBILENET_TF_DATA``):
decode + Inception training preprocessing + batching, cached nothing, with
tf.data limited to one thread (images/s per core) and with all cores.
Writes nothing.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))            # this checkout's mobilenet_tf, installed or not

import cpu_features  # noqa: E402  (bench/, beside this script)

DEFAULT_ROWS = [f"{a}/{s}/{p}" for p in ("float32", "bfloat16") for a in ("1.0", "0.25")
                for s in (224, 128)]


def _data_dir():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def _parse_row(row):
    try:
        alpha, size, precision = row.split("/")
        alpha, size = float(alpha), int(size)
    except ValueError:
        raise SystemExit(f"train_throughput.py: error: a row is ALPHA/SIZE/PRECISION, e.g. "
                         f"0.25/128/float32. Received: {row!r}") from None
    if precision not in ("float32", "bfloat16", "float16"):
        raise SystemExit(f"train_throughput.py: error: precision must be float32, bfloat16 or "
                         f"float16. Received: {row!r}")
    return alpha, size, precision


def _models(alpha, size, precision, batch_size, classes=1000):
    """{"ours": train.py's model and step, "ours_wd0": the same without the L2 term,
    "keras": keras.applications.MobileNet with the same optimizer, loss and metrics}."""
    import keras
    from mobilenet_tf.training import precision as precision_lib
    from mobilenet_tf import training
    mixed = "none" if precision == "float32" else precision
    models = {}
    for name, weight_decay in (("ours", training.TrainConfig.weight_decay), ("ours_wd0", 0.0)):
        config = training.TrainConfig(alpha=alpha, image_size=size, batch_size=batch_size,
                                      mixed_precision=mixed, mode="train",
                                      weight_decay=weight_decay)
        models[name] = training.build_model(config, classes)
        training.compile_model(models[name], config, training.learning_rate_schedule(config, 1000))

    def keras_app():
        return keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha,
                                            weights=None, classes=classes)

    theirs = precision_lib.build_with_policy(keras_app, mixed)
    if mixed != "none":
        theirs.get_layer("predictions").dtype_policy = "float32"
    theirs.compile(optimizer=precision_lib.with_loss_scaling(theirs, training.make_optimizer(
                       config, training.learning_rate_schedule(config, 1000))),
                   loss=keras.losses.CategoricalCrossentropy(),
                   metrics=[keras.metrics.CategoricalAccuracy(name="top1"),
                            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5")])
    models["keras"] = theirs
    return models


def _batch(size, batch_size, classes=1000):
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch_size, size, size, 3)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch_size)]
    return tf.constant(x), tf.constant(y)


def _images_per_second(model, batch, steps, batch_size):
    """``steps`` calls of the model's compiled train step (``train_on_batch``, what ``fit`` runs)."""
    x, y = batch
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def bench_row(row, *, batch_size, steps, repetitions, warmup, log):
    alpha, size, precision = _parse_row(row)
    models = _models(alpha, size, precision, batch_size)
    batch = _batch(size, batch_size)
    for model in models.values():
        _images_per_second(model, batch, warmup, batch_size)
    rates = {name: [] for name in models}
    for r in range(repetitions):
        for name, model in models.items():
            rates[name].append(_images_per_second(model, batch, steps, batch_size))
        log(f"  {row} repetition {r + 1}/{repetitions}: ours {rates['ours'][-1]:.1f}, "
            f"ours without L2 {rates['ours_wd0'][-1]:.1f}, keras.applications "
            f"{rates['keras'][-1]:.1f} images/s")
    ratio = {name: statistics.median(a / b for a, b in zip(rates[name], rates["keras"]))
             for name in ("ours", "ours_wd0")}
    return {"row": row, "alpha": alpha, "size": size, "precision": precision,
            **{name: statistics.median(r) for name, r in rates.items()},
            "ratio": ratio["ours"], "ratio_wd0": ratio["ours_wd0"]}


def bench_input(size, *, batch_size, batches, threads, log):
    """images/s of decode + Inception training preprocessing of hymenoptera's JPEGs."""
    import tensorflow as tf
    from mobilenet_tf import data as data_lib
    folder = _data_dir() / "hymenoptera"
    if not folder.is_dir():
        log(f"  input pipeline: {folder} not found, skipped")
        return None
    data = data_lib.load_dataset(f"folder:{folder}", image_size=size, validation_fraction=0.0)
    # One epoch of hymenoptera is 7 batches of 32: repeat it (decoding is never cached here).
    ds = data_lib.train_input(data, batch_size=batch_size, image_size=size).repeat()
    options = tf.data.Options()
    if threads:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)
    it = iter(ds)
    for _ in range(2):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * batch_size / (time.perf_counter() - start)
    log(f"  input pipeline {size}x{size}, {threads or 'all'} thread(s): {rate:.1f} images/s")
    return rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                        help="comma-separated ALPHA/SIZE/PRECISION rows (default: the issue's 8)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repetition")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
    parser.add_argument("--input_batches", type=int, default=16,
                        help="batches timed for the input pipeline (0: skip it)")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "repetitions"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1. Received: {getattr(args, name)}")

    import tensorflow as tf
    log = lambda line: print(line, flush=True)      # noqa: E731
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for row in rows:
        _parse_row(row)
    devices = tf.config.list_physical_devices("GPU")
    log(f"TensorFlow {tf.__version__}, {len(devices)} GPU(s), {os.cpu_count()} CPU core(s); "
        f"batch {args.batch_size}, {args.repetitions} x {args.steps} timed steps per model and row")
    results = []
    for row in rows:
        start = time.perf_counter()
        results.append(bench_row(row, batch_size=args.batch_size, steps=args.steps,
                                 repetitions=args.repetitions, warmup=args.warmup, log=log))
        log(f"  ({time.perf_counter() - start:.0f} s)")
    inputs = {}
    if args.input_batches:
        for size in sorted({r["size"] for r in results}, reverse=True):
            inputs[size] = {threads: bench_input(size, batch_size=args.batch_size,
                                                 batches=args.input_batches, threads=threads,
                                                 log=log)
                            for threads in (1, 0)}

    cpu = cpu_features.describe()
    print()
    print(cpu)
    print()
    print("| α | size | precision | ours images/s | keras.applications images/s | ratio | "
          "ours without L2 images/s | ratio without L2 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['alpha']:g} | {r['size']} | {r['precision']} | {r['ours']:.1f} | "
              f"{r['keras']:.1f} | {r['ratio']:.3f} | {r['ours_wd0']:.1f} | {r['ratio_wd0']:.3f} |")
    if inputs:
        print()
        print(cpu)
        print()
        print("| input pipeline (hymenoptera JPEGs) | images/s, 1 core | images/s, all cores |")
        print("|---|---|---|")
        for size, rate in inputs.items():
            if rate[1] is not None:
                print(f"| decode + Inception preprocessing {size}x{size} | {rate[1]:.1f} | "
                      f"{rate[0]:.1f} |")
    print()
    worst = min(results, key=lambda r: r["ratio"])
    print(f"ratio >= 1.0 in every row: {'yes' if worst['ratio'] >= 1.0 else 'no'} "
          f"(lowest {worst['ratio']:.3f}, {worst['row']})")
    small = next((r for r in results if r["alpha"] == 0.25 and r["size"] == 128
                  and r["precision"] == "float32"), None)
    if small and 128 in inputs and inputs[128][0]:
        print(f"input pipeline ({inputs[128][0]:.1f} images/s, all cores) faster than the "
              f"0.25/128 float32 step ({small['ours']:.1f} images/s): "
              f"{'yes' if inputs[128][0] > small['ours'] else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
