"""Which brief QAT fine-tune of a float model never ends below post-training int8? (issue 26)

    python bench/qat_recipes.py          # about 25 min on 2 cores; reads ../shared/data
    python bench/qat_recipes.py --seeds=0 --steps=40      # a quicker look

α=0.25/128 from Google's ``mobilenet_2_5_128_tf.h5`` (1000-class head kept). Fine-tune and
calibrate on one set, measure on another that no step saw:

(A) fine-tune on the 397 ``hymenoptera`` photos (train/ and val/, as one folder without
    labels), calibrate post-training int8 (PTQ) on the first 300 of them (the images QAT's
    calibrated start uses too), measure on ``imagenet50``: top-1 (ImageNet labels) and top-1
    agreement with the float model.
(B) the reverse: fine-tune and calibrate on the 50 ``imagenet50`` images, measure top-1
    agreement with the float model on the 153 ``hymenoptera/val`` photos (no ImageNet labels
    there: agreement only).

Recipes (``mobilenet_tf.training.train`` with ``quantize=True``, what ``train.py --quantize``
runs; batch norm in inference mode, as these weights need, :doc:`data README`):

* ``calibrated``: the QAT twin with its learned ranges calibrated, no step (0 steps);
* ``distill lr`` : distillation from the float model (``teacher=`` the same weights,
  ``distillation_weight=1``) on the images without labels, ``--steps`` steps of 16 at a
  constant RMSprop rate ``lr``;
* ``labels 1e-5`` (A only): the same steps from the photos' labels (ants, bees as their
  ImageNet WordNet ids, so the 1000-class head is kept), no teacher.

Each QAT row is run for every seed (mean, min–max); the int8 file is the QAT model exported
from its own ranges, and its top-1 agreement with its Keras QAT model (fed what the file's
uint8 input means) is the fidelity of issue 26 item 3. Prints the CPU first.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import cpu_features  # noqa: E402

ANTS, BEES = "n02219486", "n02206856"      # ImageNet WordNet ids of the hymenoptera classes


def _data_root():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def _link_all(files, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        link = folder / f"{i:04d}_{f.name}"
        if not link.exists():
            os.symlink(f.resolve(), link)
    return folder


def _images(root):
    return [f for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in
            (".jpg", ".jpeg", ".png")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rates", default="1e-5", help="distillation learning rates")
    parser.add_argument("--label_seeds", default="0", help="seeds of the labels recipe (A)")
    parser.add_argument("--directions", default="AB")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    data = _data_root()
    weights = data / "weights" / "mobilenet_2_5_128_tf.h5"
    google = data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"
    for path in (data / "hymenoptera", data / "imagenet50", weights):
        if not path.exists():
            sys.exit(f"missing {path} (set MOBILENET_TF_DATA)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    from mobilenet_tf import MobileNetV1, export, training
    from mobilenet_tf.export import tflite
    from mobilenet_tf.model import qat, qat_ranges

    print(cpu_features.describe(), flush=True)
    t0 = time.time()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="qat-recipes-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    rates = [float(r) for r in args.rates.split(",") if r]
    size = (128, 128)
    float_model = MobileNetV1((128, 128, 3), alpha=0.25, weights=str(weights))
    official = tflite.TFLiteClassifier(str(google)) if google.exists() else None
    hym = _images(data / "hymenoptera")
    tune_a = _link_all(hym, work / "hymenoptera_photos")
    labelled_a = work / "hymenoptera_wnid"
    for split, wnid in (("ants", ANTS), ("bees", BEES)):
        _link_all(_images(data / "hymenoptera" / "train" / split)
                  + _images(data / "hymenoptera" / "val" / split), labelled_a / wnid)
    tune_b = _link_all(_images(data / "imagenet50"), work / "imagenet50_photos")
    directions = {
        "A": dict(tune=tune_a, labelled=labelled_a,
                  measure=export.load_images(f"folder:{data / 'imagenet50'}", size, 1000),
                  what="fine-tuned and calibrated on the 397 hymenoptera photos, measured on "
                       "imagenet50 (50 images)"),
        "B": dict(tune=tune_b, labelled=None,
                  measure=export.load_images(f"folder:{data / 'hymenoptera'}", size, 1000,
                                             split="validation"),
                  what="fine-tuned and calibrated on the 50 imagenet50 images, measured on the "
                       "153 hymenoptera/val photos (agreement with float only)")}

    def keras_probs(model, images):
        return np.asarray(model.predict(export.to_unit_range(images), verbose=0, batch_size=64))

    def qat_probs(model, images):
        content = export.convert(model, "int8")
        runner = tflite.TFLiteClassifier(content)
        scale, zero_point = runner.input_quantization
        grid = (images.astype(np.float32) - zero_point) * np.float32(scale)
        return np.asarray(model.predict(grid, verbose=0, batch_size=64)), runner.predict(images)

    def train_qat(direction, tune, seed, rate, labels):
        common = dict(mode="train", alpha=0.25, image_size=128, batch_size=16,
                      train_steps=args.steps, epochs=args.steps, learning_rate=rate,
                      lr_decay_factor=1.0, init_weights=str(weights), quantize=True,
                      min_crop_area=0.5, validation_fraction=0.0, log_every_steps=0,
                      verbose=0, seed=seed)
        name = f"{direction}_{'labels' if labels else 'distill'}_{rate:g}_seed{seed}"
        if labels:
            config = training.TrainConfig(dataset=f"folder:{labels}", model_dir=str(work / name),
                                          **common)
        else:
            config = training.TrainConfig(dataset=f"folder:{tune}", model_dir=str(work / name),
                                          teacher=str(weights), teacher_alpha=0.25,
                                          teacher_image_size=128, distillation_weight=1.0,
                                          **common)
        import keras
        keras.utils.set_random_seed(seed)
        return training.train(config)["model"]

    for key in args.directions:
        d = directions[key]
        measure = d["measure"]
        labels = measure.labels_for(1000)
        calibration = export.load_images(f"folder:{d['tune']}", size, 300, split="train")
        reference = keras_probs(float_model, measure.images)
        rows = []        # (name, [(top1, agree, fidelity, ties)] per seed)

        def scores(probs, keras=None):
            top = probs.argmax(1)
            out = {"agree": float((top == reference.argmax(1)).mean())}
            if labels is not None:
                out["top1"] = float((top == labels).mean())
            if keras is not None:
                theirs = keras.argmax(1)
                out["fidelity"] = float((top == theirs).mean())
                # Disagreements where the file's two classes tie exactly (its softmax output
                # has 1/256 steps; argmax takes the lower index).
                rows_ = np.arange(len(top))
                tied = (top != theirs) & (probs[rows_, top] == probs[rows_, theirs])
                out["fidelity_untied"] = float(((top == theirs) | tied).mean())
            return out

        rows.append(("float Keras model", [scores(reference)]))
        ptq = tflite.TFLiteClassifier(export.convert(float_model, "int8", calibration.images))
        rows.append((f"post-training int8 (calibrated on {len(calibration.images)})",
                     [scores(ptq.predict(measure.images))]))
        if official is not None:
            rows.append(("Google's mobilenet_v1_0.25_128_quant.tflite",
                         [scores(official.predict(measure.images)[:, 1:])]))
        twin = qat.quantize_model(float_model)
        qat_ranges.calibrate_ranges(twin, [export.to_unit_range(calibration.images[i:i + 64])
                                           for i in range(0, len(calibration.images), 64)])
        k, lite = qat_probs(twin, measure.images)
        rows.append(("QAT int8, calibrated start, 0 steps", [scores(lite, k)]))
        recipes = [(f"QAT int8, distill lr {r:g}, {args.steps} steps of 16", r, None)
                   for r in rates]
        if d["labelled"] is not None:
            recipes.append((f"QAT int8, labels lr 1e-05, {args.steps} steps of 16", 1e-5,
                            d["labelled"]))
        for name, rate, labelled in recipes:
            per_seed = []
            for seed in (seeds if labelled is None else
                         [int(x) for x in args.label_seeds.split(",")]):
                model = train_qat(key, d["tune"], seed, rate, labelled)
                k, lite = qat_probs(model, measure.images)
                per_seed.append(scores(lite, k))
                print(f"  {key} {name} seed {seed}: {per_seed[-1]} "
                      f"({time.time() - t0:.0f} s)", flush=True)
            rows.append((name, per_seed))

        n = len(measure.images)
        print(f"\n({key}) {d['what']}; {len(seeds)} seed(s) {args.seeds} for the fine-tunes\n")
        cols = (["top-1"] if labels is not None else []) + [
            "agreement with float", "int8 file = its QAT Keras model",
            "same, exact ties in the file's output counted as agreeing"]
        print("| model | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")

        def cell(values):
            if not values:
                return "—"
            counts = [round(v * n) for v in values]
            if len(counts) == 1:
                return f"{counts[0]}/{n}"
            return f"{np.mean(counts):.1f}/{n} ({min(counts)}–{max(counts)})"

        for name, per_seed in rows:
            keys = ["top1"] if labels is not None else []
            keys += ["agree", "fidelity", "fidelity_untied"]
            cells = [cell([s[k] for s in per_seed if k in s]) for k in keys]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{time.time() - t0:.0f} s; runs in {work}")


if __name__ == "__main__":
    main()
