"""Does distillation help a small MobileNet? Issue 15's experiment on the ants/bees photos.

    python bench/distillation.py            # reads ../shared/data (or $MOBILENET_TF_DATA)

In one process, through the library (``mobilenet_tf.training.loop.train``, what ``train.py``
runs): a teacher α=0.75/192 fine-tuned from Google's ImageNet weights on
``hymenoptera/train``, then students α=0.25/128 from their ImageNet weights with the
same steps and schedule (the quick start's recipe: base frozen, head trained; with
``--whole_network`` every layer but batch norm trains), for each seed:
(a) labels only, (b) distillation with ``--distillation_weight`` 0.5 (half labels, half
teacher), (c) 1.0 (the teacher only, labels unused). Validation top-1 on the 153
``hymenoptera/val`` photos; mean, spread (sample standard deviation) and min-max per
variant, and the teacher's top-1 at its own 192x192 and on the 128x128 crops it sees
during distillation (resized to 192). Runs are written under ``--work`` (default: a
temporary folder, removed).
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))            # this checkout's mobilenet_tf, installed or not
sys.path.insert(0, str(REPO / "bench"))
import cpu_features  # noqa: E402  (bench/, beside this script)


def _data_root():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=3.0)
    parser.add_argument("--work", default=None, help="keep the runs here")
    parser.add_argument("--whole_network", action="store_true",
                        help="train every layer (batch norm in inference mode), not the head only")
    args = parser.parse_args()
    data = _data_root()
    folder = data / "hymenoptera"
    weights = data / "weights"
    for path in (folder, weights / "mobilenet_7_5_192_tf.h5", weights / "mobilenet_2_5_128_tf.h5"):
        if not path.exists():
            sys.exit(f"missing {path} (set MOBILENET_TF_DATA)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from mobilenet_tf import data as data_lib
    from mobilenet_tf.training import distillation
    from mobilenet_tf import training

    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="distill-bench-"))
    common = dict(dataset=f"folder:{folder}", batch_size=32, epochs=args.epochs,
                  base_learning_rate=0.016, base_batch_size=256, min_crop_area=0.25,
                  verbose=0, mode="train_and_eval", freeze_base=not args.whole_network)

    def run(name, seed, **kw):
        keras.utils.set_random_seed(seed)        # head initialization, dropout
        config = training.TrainConfig(**common, seed=seed, model_dir=str(work / name), **kw)
        t0 = time.perf_counter()
        summary = training.train(config)
        return summary["final_top1"], time.perf_counter() - t0

    teacher_top1, teacher_s = run("teacher", 0, alpha=0.75, image_size=192,
                                  init_weights=str(weights / "mobilenet_7_5_192_tf.h5"))
    # What the teacher scores on the 128x128 crops it is shown during distillation.
    teacher = distillation.load_teacher(str(work / "teacher"))
    ds = data_lib.load_dataset(f"folder:{folder}")
    seen = distillation.logits_model(teacher.model, (128, 128))
    seen.compile(metrics=[keras.metrics.CategoricalAccuracy(name="top1")],
                 loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    teacher_seen = seen.evaluate(data_lib.eval_input(ds, batch_size=32, image_size=128),
                                 verbose=0, return_dict=True)["top1"]

    student = dict(alpha=0.25, image_size=128, init_weights=str(weights / "mobilenet_2_5_128_tf.h5"))
    variants = [("labels only", {}),
                ("distillation w=0.5", dict(teacher=str(work / "teacher"), distillation_weight=0.5,
                                            distillation_temperature=args.temperature)),
                ("distillation w=1.0 (no labels)", dict(teacher=str(work / "teacher"),
                                                        distillation_weight=1.0,
                                                        distillation_temperature=args.temperature))]
    results = {name: [] for name, _ in variants}
    seconds = {name: [] for name, _ in variants}
    for seed in range(args.seeds):
        for i, (name, kw) in enumerate(variants):       # variants take turns: noise hits all alike
            top1, s = run(f"student_{i}_seed{seed}", seed, **student, **kw)
            results[name].append(top1)
            seconds[name].append(s)
            print(f"seed {seed}: {name}: top-1 {top1:.4f} ({s:.0f} s)", flush=True)

    n_val = ds.num_validation
    print()
    print(cpu_features.describe())
    print(f"hymenoptera val: {n_val} photos; {args.epochs} epochs of batch 32, rate 0.002, "
          f"temperature {args.temperature:g}; seeds 0..{args.seeds - 1}; "
          + ("whole network trained" if args.whole_network else "base frozen, head trained"))
    print()
    print("| model | validation top-1 per seed | mean | spread (sd) | images right (mean) | "
          "time per run |")
    print("|---|---|---|---|---|---|")
    print(f"| teacher α=0.75/192 (seed 0) | {teacher_top1:.4f} | | | "
          f"{round(teacher_top1 * n_val)}/{n_val} | {teacher_s:.0f} s |")
    print(f"| teacher on 128x128 crops resized to 192 (what it shows the student) | "
          f"{teacher_seen:.4f} | | | {round(teacher_seen * n_val)}/{n_val} | |")
    for name, values in results.items():
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.mean(values)
        print(f"| student α=0.25/128, {name} | {', '.join(f'{v:.4f}' for v in values)} | "
              f"{mean:.4f} | {sd:.4f} | {mean * n_val:.1f}/{n_val} | "
              f"{statistics.mean(seconds[name]):.0f} s |")
    if not args.work:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
