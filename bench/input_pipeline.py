"""ImageNet-scale input (issue 13): start-up time, input throughput per core, manifest memory.

    python bench/input_pipeline.py                          # all three parts (about 10 min here)
    python bench/input_pipeline.py --parts=startup --repetitions=3
    python bench/input_pipeline.py --parts=memory --large_files=1000000

Three parts, each measured side by side in one run (parts can be run separately):

* **startup**: a folder of ``--files`` real JPEGs (``--image_px`` square, in ``--classes``
  class folders; generated once in ``--work_dir``) and ``train.py --dataset=folder:...``
  (α=0.25/128, batch 32, ``--mode=train``) in a fresh process, timed from the moment the
  process is started to the end of its first training step, three ways, taking turns:
  *full decode* (today's start on ``main``: ``scan_folder`` decodes every file
  before training, in the same thread pool; reproduced by putting ``main``'s folder
  reader in place of ``mobilenet_tf.data.readers.folder.load``), *manifest* (the header
  check into a manifest kept in the run folder) and *resumed* (the same command with one
  more step: the kept manifest is reused when the folder is unchanged, and the checkpoint
  restored).
* **throughput**: images/s of ``mobilenet_tf.data.train_input`` (decode + Inception training
  preprocessing + batching, nothing cached) at 224 and 128 from the 244 hymenoptera
  training photos as a folder and as TFRecord shards (written once by
  ``mobilenet_tf.data.tfrecords.write_shards``), with tf.data limited to one thread (per core)
  and with all cores; beside the compiled train step (``train_on_batch`` of what
  ``train.py`` trains, in-memory batch) at α=1.0/224 and α=0.25/128.
* **memory**: peak RSS of a fresh process that builds the manifest of the ``--files``
  folder and of a ``--large_files`` one (hard links to the same JPEGs, ten per file: real
  directory entries and real files, repeated content), then reuses it, then pulls the
  first batches of ``train_input``; beside the list held in memory as ``main`` held it.

Timings depend on the machine: every table is printed under ``bench/cpu_features.py``'s
CPU line. Nothing is written outside ``--work_dir``.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))            # this checkout's mobilenet_tf, installed or not

import cpu_features  # noqa: E402  (bench/, beside this script)

EVENT = "@@input_pipeline "
STARTUP_ARGS = ["--alpha=0.25", "--image_size=128", "--batch_size=32", "--mode=train",
                "--verbose=2", "--validation_fraction=0.1"]
VARIANTS = ("full_decode", "manifest", "resumed")


def _data_dir():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def _log(line):
    print(line, flush=True)


class _OtherLoad:
    """How busy the CPUs were with work other than this benchmark's (this process and its
    children), from /proc/stat: a timed table is only as good as the machine was quiet."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        import resource
        try:
            with open("/proc/stat") as f:
                values = [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (sum(values) - values[3] - values[4]) / ticks       # all but idle and iowait
        ours = sum(getattr(resource.getrusage(who), field)
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for field in ("ru_utime", "ru_stime"))
        return time.perf_counter(), busy, ours

    def describe(self):
        end = self._sample()
        if self.start is None or end is None:
            return "load of other processes unknown (no /proc/stat)"
        wall = end[0] - self.start[0]
        other = max(0.0, (end[1] - self.start[1]) - (end[2] - self.start[2]))
        return (f"other processes used {other / wall:.2f} of the {os.cpu_count()} cores meanwhile "
                f"({wall:.0f} s)")


# --- the generated folder ---------------------------------------------------------------------------

def _encoder():
    """A function (uint8 array) -> JPEG bytes: Pillow when installed (fast), else TensorFlow."""
    try:
        from PIL import Image
        import io

        def encode(array):
            out = io.BytesIO()
            Image.fromarray(array).save(out, format="JPEG", quality=90)
            return out.getvalue()
    except ImportError:
        import tensorflow as tf

        def encode(array):
            return tf.io.encode_jpeg(array, quality=90).numpy()
    return encode


def generate_folder(root, files, classes, px, log=_log):
    """``root/cNNN/NNNNNN.jpg``: `files` distinct JPEGs of px x px (a blocky colour field per
    image plus noise, about the entropy of a small photo), spread over `classes` folders.
    Skipped when ``root/.generated`` records the same parameters."""
    import numpy as np
    marker = root / ".generated"
    want = {"files": files, "classes": classes, "px": px}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    encode = _encoder()
    rng = np.random.default_rng(0)
    block = max(1, px // 8)
    for c in range(classes):
        (root / f"c{c:03d}").mkdir(parents=True)
    for i in range(files):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = np.kron(coarse, np.ones((block, block, 1), np.uint8))[:px, :px]
        noise = rng.integers(-12, 13, image.shape)
        image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        (root / f"c{i % classes:03d}" / f"{i:06d}.jpg").write_bytes(encode(image))
        if (i + 1) % 20000 == 0:
            log(f"  generated {i + 1} of {files} JPEGs ({time.perf_counter() - start:.0f} s)")
    marker.write_text(json.dumps(want))


def link_folder(source, root, copies, log=_log):
    """``root`` with `copies` hard links to each file of `source` (same class folders)."""
    marker = root / ".generated"
    want = {"source": str(source), "copies": copies}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    count = 0
    for cls in sorted(p for p in source.iterdir() if p.is_dir()):
        (root / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir()):
            for k in range(copies):
                os.link(f, root / cls.name / f"{f.stem}_{k}{f.suffix}")
            count += copies
    log(f"  linked {count} directory entries ({time.perf_counter() - start:.0f} s)")
    marker.write_text(json.dumps(want))


# --- startup ----------------------------------------------------------------------------------------

def _event(name):
    print(f"{EVENT}{name} {time.time():.6f}", flush=True)


def _main_folder(spec, path, formats, validation_fraction, seed, manifest_dir=None):
    """``main``'s folder reader: ``scan_folder`` decodes every file before training (the same
    thread pool), then the list is held in memory (the manifest's hold-out draw, a source of
    the (path, label) list)."""
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.data import manifest
    from mobilenet_tf.data.readers import unlabelled
    scan = data_lib.scan_folder(path, formats, decode=True)
    train, val = scan.train, scan.validation
    if val is None:
        train, val = manifest.hold_out(train, validation_fraction, len(scan.class_names), seed)
    print(f"{spec}: {len(scan.class_names)} classes, {len(train)} training and {len(val)} "
          f"validation images (every file decoded); files left out: {len(scan.skipped)}")
    return data_lib.ImageDataset(
        spec=spec, num_classes=len(scan.class_names), num_train=len(train),
        num_validation=len(val), train_source=unlabelled.pairs_source(train),
        validation_source=unlabelled.pairs_source(val), encoded=True,
        class_names=scan.class_names, skipped=scan.skipped, description=spec)


def startup_child(variant, argv):
    """Runs train.py in this process, printing the times of its stages (see ``startup``)."""
    _event("python")
    from mobilenet_tf.utils import native
    native.import_tensorflow()
    from mobilenet_tf.data.readers import folder
    from mobilenet_tf.training import callbacks, inputs
    _event("imported")
    if variant == "full_decode":
        folder.load = _main_folder
    load = inputs.load_data

    def load_data(config):
        data = load(config)
        _event("data")
        return data

    inputs.load_data = load_data
    end = callbacks.StepCallback.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        if not getattr(self, "_bench_first_seen", False):
            self._bench_first_seen = True
            _event("first_step")
        return end(self, batch, logs)

    callbacks.StepCallback.on_train_batch_end = on_train_batch_end
    sys.argv = [str(REPO / "train.py"), *argv]
    import runpy
    try:
        runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    except SystemExit as e:
        return e.code or 0
    return 0


def _startup_run(variant, root, model_dir, steps, log_path):
    argv = [f"--dataset=folder:{root}", f"--model_dir={model_dir}", f"--train_steps={steps}",
            *STARTUP_ARGS]
    start = time.time()
    with open(log_path, "a") as log_file:
        log_file.write(f"\n=== {variant}: {' '.join(argv)}\n")
        log_file.flush()
        result = subprocess.run([sys.executable, __file__, "--_startup_child", variant, "--", *argv],
                                stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=REPO)
        log_file.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"input_pipeline.py: error: the {variant} run failed (exit status "
                         f"{result.returncode}); see {log_path}")
    events = {}
    for line in result.stdout.splitlines():
        if line.startswith(EVENT):
            name, stamp = line[len(EVENT):].split()
            events.setdefault(name, float(stamp) - start)
    return events


def startup(work, files, classes, px, repetitions, log=_log):
    root = work / f"folder_{files}"
    generate_folder(root, files, classes, px, log)
    log_path = work / "startup.log"
    rows = {v: [] for v in VARIANTS}
    for r in range(repetitions):
        runs = work / "startup_runs"
        if runs.exists():
            shutil.rmtree(runs)
        for variant in VARIANTS:
            model_dir = runs / ("full_decode" if variant == "full_decode" else "manifest")
            steps = 2 if variant == "resumed" else 1
            events = _startup_run(variant, root, model_dir, steps, log_path)
            rows[variant].append(events)
            log(f"  repetition {r + 1}/{repetitions}, {variant}: data ready at {events['data']:.1f} s, "
                f"first step done at {events['first_step']:.1f} s")
    return {v: {k: statistics.median(e[k] for e in runs) for k in runs[0]}
            for v, runs in rows.items()}


# --- throughput -------------------------------------------------------------------------------------

def _plain_decode(dataset, ds):
    """``main``'s decode step: a parallel map, no skipping (a file that cannot be decoded stops
    the run), in place of ``mobilenet_tf.data.decoding.decode_skipping``."""
    import tensorflow as tf
    from mobilenet_tf.data import decoding

    def decode(image, label):
        data, _, boxes = decoding._unpack(image)
        return decoding.decode_image(data), label, boxes
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def _input_rate(spec, size, *, batch_size, batches, threads, plain=False):
    import tensorflow as tf
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.data import decoding
    data = data_lib.load_dataset(spec, image_size=size, validation_fraction=0.0)
    skipping = decoding.decode_skipping
    if plain:
        decoding.decode_skipping = _plain_decode
    try:
        ds = data_lib.train_input(data, batch_size=batch_size, image_size=size).repeat()
    finally:
        decoding.decode_skipping = skipping
    options = tf.data.Options()
    if threads:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    it = iter(ds.with_options(options))
    for _ in range(2):
        next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    images = batches * batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def _step_rate(alpha, size, *, batch_size, steps, warmup=2):
    import numpy as np
    import tensorflow as tf
    from mobilenet_tf import training
    config = training.TrainConfig(alpha=alpha, image_size=size, batch_size=batch_size, mode="train")
    model = training.build_model(config, 1000)
    training.compile_model(model, config, training.learning_rate_schedule(config, 1000))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)).astype("float32"))
    y = tf.constant(np.eye(1000, dtype="float32")[rng.integers(0, 1000, batch_size)])
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def throughput(work, *, batch_size, batches, repetitions, train_batch_size, train_steps, log=_log):
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.data import tfrecords
    folder = _data_dir() / "hymenoptera" / "train"
    if not folder.is_dir():
        raise SystemExit(f"input_pipeline.py: error: {folder} not found (set MOBILENET_TF_DATA to "
                         "the folder holding hymenoptera/)")
    shards = work / "hymenoptera_tfrecord"
    if not (shards / tfrecords.LABELS_FILE).is_file():
        scan = data_lib.scan_folder(str(folder))
        tfrecords.write_shards({"train": (scan.train, 4)}, scan.class_names, str(shards),
                               progress=False)
    sources = {"folder": f"folder:{folder}", "tfrecord": f"tfrecord:{shards}",
               "folder_plain": f"folder:{folder}"}
    rates = {}
    for r in range(repetitions):       # the sources take turns, so machine noise hits all
        for size in (224, 128):
            for threads in (1, 0):
                for name, spec in sources.items():
                    rate, per_cpu = _input_rate(spec, size, batch_size=batch_size,
                                                batches=batches, threads=threads,
                                                plain=name == "folder_plain")
                    # One thread: images per CPU-second of this process (per core, whatever
                    # else runs on the machine); all cores: images per second of wall time.
                    rates.setdefault((name, size, threads), []).append(per_cpu if threads
                                                                       else rate)
                    log(f"  repetition {r + 1}/{repetitions}: {name} {size}x{size}, "
                        f"{threads or 'all'} thread(s): {rate:.1f} images/s, {per_cpu:.1f} "
                        "images per CPU-second")
    steps = {}
    for alpha, size in ((1.0, 224), (0.25, 128)):
        steps[size] = (alpha, _step_rate(alpha, size, batch_size=train_batch_size,
                                         steps=train_steps))
        log(f"  train step α={alpha:g}/{size}, batch {train_batch_size}: {steps[size][1]:.1f} images/s")
    return {k: statistics.median(v) for k, v in rates.items()}, steps


# --- memory -----------------------------------------------------------------------------------------

def _proc_status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_child(root, manifest_dir, how):
    """Prints JSON: peak RSS (MiB) after importing TensorFlow, after the listing, after 5
    batches of ``train_input``, and the seconds the listing took."""
    from mobilenet_tf.utils import native
    native.import_tensorflow()
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.data import checks, layout, manifest
    from mobilenet_tf.data.readers import unlabelled
    out = {"imported": _proc_status_kib("VmHWM") / 1024}
    start = time.perf_counter()
    if how == "in_memory":
        # main's scan_folder and folder reader with the header check in place of the decode:
        # every (path, label) in a list, one thread-pool task per file, then tf.constant of
        # the paths.
        import concurrent.futures
        found = layout.labelled_layout(root)
        candidates = layout.class_files(found.train_root, found.class_names)
        formats = data_lib.DEFAULT_FOLDER_FORMATS
        with concurrent.futures.ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool:
            reasons = list(pool.map(lambda item: checks.check_file(item[0], formats),
                                    candidates))
        usable = [c for c, r in zip(candidates, reasons) if r is None]
        train, _ = manifest.hold_out(usable, 0.1, len(found.class_names), 0)
        data = data_lib.ImageDataset(spec=root, num_classes=len(found.class_names),
                                     num_train=len(train), num_validation=0,
                                     train_source=unlabelled.pairs_source(train),
                                     validation_source=None, encoded=True)
    else:
        data = data_lib.load_dataset(f"folder:{root}", manifest_dir=manifest_dir)
        data_lib.save_manifest(data, manifest_dir)
    out["seconds"] = time.perf_counter() - start
    out["listed"] = _proc_status_kib("VmHWM") / 1024
    out["files"] = data.num_train + data.num_validation
    it = iter(data_lib.train_input(data, batch_size=32, image_size=128))
    for _ in range(5):
        next(it)
    out["batches"] = _proc_status_kib("VmHWM") / 1024
    print(EVENT + json.dumps(out), flush=True)
    return 0


def memory(work, files, classes, px, large_files, log=_log):
    small = work / f"folder_{files}"
    generate_folder(small, files, classes, px, log)
    copies = max(1, large_files // files)
    large = work / f"folder_{files}_x{copies}"
    link_folder(small, large, copies, log)
    results = {}
    for root in (small, large):
        manifest_dir = work / "memory_runs" / root.name
        if manifest_dir.exists():
            shutil.rmtree(manifest_dir)
        for how in ("new", "reused", "in_memory"):
            result = subprocess.run([sys.executable, __file__, "--_memory_child", str(root),
                                     str(manifest_dir), how], stdout=subprocess.PIPE, text=True,
                                    cwd=REPO)
            line = next((x for x in result.stdout.splitlines() if x.startswith(EVENT)), None)
            if result.returncode != 0 or line is None:
                raise SystemExit(f"input_pipeline.py: error: the memory run ({root.name}, {how}) "
                                 f"failed (exit status {result.returncode})")
            results[(root.name, how)] = json.loads(line[len(EVENT):])
            r = results[(root.name, how)]
            log(f"  {root.name} {how}: {r['files']} files, listed in {r['seconds']:.1f} s, peak RSS "
                f"{r['imported']:.0f} / {r['listed']:.0f} / {r['batches']:.0f} MiB")
    return results, (small.name, large.name)


# --- main -------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="startup,throughput,memory",
                        help="comma-separated: startup, throughput, memory (default: all)")
    parser.add_argument("--work_dir", default="/tmp/mobilenet_tf_bench_input",
                        help="where the generated folders, shards and runs go (kept for reuse)")
    parser.add_argument("--files", type=int, default=100_000, help="JPEGs of the generated folder")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--image_px", type=int, default=64, help="side of the generated JPEGs")
    parser.add_argument("--large_files", type=int, default=1_000_000,
                        help="directory entries of the large folder (memory part)")
    parser.add_argument("--repetitions", type=int, default=2,
                        help="startup: rounds of the three runs; throughput: rounds of the sources")
    parser.add_argument("--batches", type=int, default=16, help="input batches of 32 timed per rate")
    parser.add_argument("--train_batch_size", type=int, default=16)
    parser.add_argument("--train_steps", type=int, default=3, help="timed train steps per model")
    parser.add_argument("--_startup_child", help=argparse.SUPPRESS)
    parser.add_argument("--_memory_child", nargs=3, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args._startup_child:
        return startup_child(args._startup_child, [a for a in rest if a != "--"])
    if args._memory_child:
        return memory_child(*args._memory_child)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in ("startup", "throughput", "memory")]
    if unknown or not parts:
        parser.error(f"--parts must be a comma-separated subset of startup,throughput,memory. "
                     f"Received: --parts={args.parts!r}")
    for name in ("files", "classes", "image_px", "large_files", "repetitions", "batches",
                 "train_batch_size", "train_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1. Received: {getattr(args, name)}")
    if args.classes < 2 or args.files < 2 * args.classes:
        parser.error(f"--classes must be >= 2 and --files >= 2 x --classes. Received: "
                     f"--files={args.files} --classes={args.classes}")
    work = pathlib.Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    from mobilenet_tf.utils import native
    native.import_tensorflow()           # quietly: the throughput part runs in this process
    cpu = cpu_features.describe()
    _log(cpu)
    tables = []

    if "startup" in parts:
        _log(f"startup: {args.files} JPEGs of {args.image_px}x{args.image_px}, "
             f"{args.repetitions} round(s) of the three runs")
        load = _OtherLoad()
        times = startup(work, args.files, args.classes, args.image_px, args.repetitions)
        load = load.describe()
        lines = [f"start to first training step, folder of {args.files} JPEGs "
                 f"({args.image_px}x{args.image_px}, {args.classes} classes), train.py "
                 f"{' '.join(STARTUP_ARGS[:3])}, median of {args.repetitions}:", "",
                 "| start | Python + TensorFlow imported | data ready | first step done | "
                 "data ready → first step | vs full decode |",
                 "|---|---|---|---|---|---|"]
        names = {"full_decode": "full decode (main: scan_folder decodes every file)",
                 "manifest": "manifest (header check, kept in the run folder)",
                 "resumed": "resumed (manifest reused, checkpoint restored)"}
        base = times["full_decode"]["first_step"]
        for v in VARIANTS:
            t = times[v]
            lines.append(f"| {names[v]} | {t['imported']:.1f} s | {t['data']:.1f} s | "
                         f"{t['first_step']:.1f} s | {t['first_step'] - t['data']:.1f} s | "
                         f"{t['first_step'] / base:.2f} |")
        tables.append(lines + ["", load])

    if "throughput" in parts:
        _log("throughput: hymenoptera photos as a folder and as TFRecord shards")
        load = _OtherLoad()
        rates, steps = throughput(work, batch_size=32, batches=args.batches,
                                  repetitions=args.repetitions,
                                  train_batch_size=args.train_batch_size,
                                  train_steps=args.train_steps)
        load = load.describe()
        lines = ["decode + Inception training preprocessing (hymenoptera's 244 training photos, "
                 f"batches of 32, median of {args.repetitions}; 1 core: tf.data on one thread, "
                 "images per CPU-second; all cores: images per second) beside the train step "
                 f"(batch {args.train_batch_size}, float32, all cores, images per second):", "",
                 "| size | folder, 1 core | TFRecord, 1 core | folder, all cores | "
                 "TFRecord, all cores | train step | cores of input per train step "
                 "(folder / TFRecord) | folder without skipping (main's decode), 1 core / all |",
                 "|---|---|---|---|---|---|---|---|"]
        for size in (224, 128):
            alpha, step = steps[size]
            f1, t1 = rates[("folder", size, 1)], rates[("tfrecord", size, 1)]
            fa, ta = rates[("folder", size, 0)], rates[("tfrecord", size, 0)]
            p1, pa = rates[("folder_plain", size, 1)], rates[("folder_plain", size, 0)]
            lines.append(f"| {size}×{size} | {f1:.1f} | {t1:.1f} | {fa:.1f} | {ta:.1f} | "
                         f"{step:.1f} (α={alpha:g}) | {step / f1:.2f} / {step / t1:.2f} | "
                         f"{p1:.1f} / {pa:.1f} |")
        tables.append(lines + ["", load])

    if "memory" in parts:
        _log(f"memory: manifests of {args.files} and {args.large_files} files")
        load = _OtherLoad()
        results, (small, large) = memory(work, args.files, args.classes, args.image_px,
                                         args.large_files)
        load = load.describe()
        lines = ["peak RSS of a fresh process (MiB): after importing TensorFlow / after the "
                 "listing / after 5 batches of train_input at 128:", "",
                 "| folder | files | manifest made | manifest reused | list in memory as on main "
                 "(its scan with the header check in place of the decode) |",
                 "|---|---|---|---|---|"]
        for name in (small, large):
            cells = []
            for how in ("new", "reused", "in_memory"):
                r = results[(name, how)]
                cells.append(f"{r['imported']:.0f} / {r['listed']:.0f} / {r['batches']:.0f} "
                             f"({r['seconds']:.1f} s)")
            lines.append(f"| {name} | {results[(name, 'new')]['files']} | {' | '.join(cells)} |")
        tables.append(lines + ["", load])

    for lines in tables:
        print()
        print(cpu)
        print()
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
