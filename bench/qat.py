"""What does quantization-aware training buy? Issue 12's side-by-side table, in one run.

    python bench/qat.py            # reads ../shared/data (or $MOBILENET_TF_DATA)

Through the library (``mobilenet_tf.training.loop.train`` is what ``train.py`` runs, ``export.convert``
/ ``export.verify`` what ``export_tflite.py`` runs), for α=0.25/128:

(a) ants/bees (``hymenoptera``): a float run from Google's ImageNet weights with the whole network
    training (batch norm in inference mode, as the weights need), then PTQ int8 of it (calibrated
    on ``train/``), and a QAT run fine-tuned from the float run's folder (``--quantize
    --init_weights=RUN``) exported to int8 from its learned ranges. Scored on the 153 ``val/``
    photos.
(b) ImageNet: Google's weights with their 1000-class head, on ``imagenet50`` (one image of each
    of 50 classes) in two folds, each laid out as WordNet-id class folders (``train.py``'s
    ``folder:`` then uses ImageNet's label indices): fold k fine-tunes with QAT on 25 images
    (briefly, from the labels and from the float model as teacher: ``--teacher``, weight 1 by
    default, since 25 images of 25 classes alone would teach the head to prefer those 25) and
    calibrates PTQ on the same 25; all are scored on the other 25, beside Google's official
    ``mobilenet_v1_0.25_128_quant.tflite`` (trained with QAT on all of ImageNet). The two folds'
    counts are added: 50 held-out images. A second QAT run per fold distils the float model into
    its QAT twin on more images: the fold's 25 and the 397 ``hymenoptera`` photos as one folder
    without labels (the teacher alone trains, as in the first run; ants and bees are ImageNet
    classes), ``--imagenet_distill_steps`` steps of 32.

Each row: top-1, and top-1 agreement with the float model (the QAT int8 file also with its QAT
Keras model, and max |Δp|). Prints the CPU and its instruction sets first.
"""

import argparse
import csv
import os
import pathlib
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))            # this checkout's mobilenet_tf, installed or not
sys.path.insert(0, str(REPO / "bench"))
import cpu_features  # noqa: E402  (bench/, beside this script)


def _data_root():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def _imagenet_folds(data, work):
    """imagenet50 split in two halves (even / odd rows of ``labels.csv``), as two folders of
    WordNet-id class folders (symlinks): fold k trains on half k and is scored on the other.

    One image per class, so the halves share no class: train/ also gets the other half's class
    folders, empty, because a folder dataset's val/ classes must be among train/'s."""
    with open(data / "imagenet50" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    roots = []
    for k in (0, 1):
        root = work / f"imagenet50_fold{k}"
        for i, row in enumerate(rows):
            split = "train" if i % 2 == k else "val"
            (root / "train" / row["synset"]).mkdir(parents=True, exist_ok=True)
            (root / split / row["synset"]).mkdir(parents=True, exist_ok=True)
            link = root / split / row["synset"] / row["file"]
            if not link.exists():
                os.symlink(data / "imagenet50" / row["file"], link)
        roots.append(root)
    return roots


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="ab", help="a, b or ab")
    parser.add_argument("--float_epochs", type=int, default=10)
    parser.add_argument("--qat_epochs", type=int, default=5)
    parser.add_argument("--float_learning_rate", type=float, default=3e-4,
                        help="constant RMSprop rate of the whole-network float fine-tune")
    parser.add_argument("--qat_learning_rate", type=float, default=1e-4)
    parser.add_argument("--imagenet_qat_steps", type=int, default=20)
    parser.add_argument("--imagenet_qat_learning_rate", type=float, default=1e-4)
    parser.add_argument("--imagenet_distillation_weight", type=float, default=1.0,
                        help="(b): weight of the float model as teacher (0: labels only)")
    parser.add_argument("--imagenet_distill_steps", type=int, default=150,
                        help="(b): steps of the QAT run distilled on the 25 + hymenoptera "
                             "photos (0: leave it out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="keep the runs here")
    args = parser.parse_args()
    data = _data_root()
    weights = data / "weights" / "mobilenet_2_5_128_tf.h5"
    google = data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"
    for path in (data / "hymenoptera", data / "imagenet50", weights, google):
        if not path.exists():
            sys.exit(f"missing {path} (set MOBILENET_TF_DATA)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    from mobilenet_tf import MobileNetV1
    from mobilenet_tf import export
    from mobilenet_tf.export import tflite
    from mobilenet_tf import training

    print(cpu_features.describe())
    keras.utils.set_random_seed(args.seed)
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="qat-bench-"))
    size = (128, 128)
    header = ("| model | top-1 | top-1 agreement with float | int8 file vs its QAT Keras model |\n"
              "|---|---|---|---|")

    def score(name, probs, labels, reference=None, keras_probs=None):
        top1 = float((probs.argmax(1) == labels).mean())
        line = f"| {name} | {top1:.4f} ({int(round(top1 * len(labels)))}/{len(labels)}) |"
        line += (f" {int((probs.argmax(1) == reference.argmax(1)).sum())}/{len(labels)} |"
                 if reference is not None else " — |")
        if keras_probs is not None:
            mine, theirs = probs.argmax(1), keras_probs.argmax(1)
            rows = np.arange(len(labels))
            # Both outputs are quantized (the Keras model's logits, the file's softmax in 1/256
            # steps): where the two top-1s differ, are the two classes exactly tied in one of them?
            differ = mine != theirs
            tied = differ & ((probs[rows, mine] == probs[rows, theirs])
                             | (keras_probs[rows, mine] == keras_probs[rows, theirs]))
            line += (f" {int((~differ).sum())}/{len(labels)}"
                     + (f" ({int(tied.sum())} of the other {int(differ.sum())}: exact ties)"
                        if differ.any() else "")
                     + f", max Δp {np.abs(probs - keras_probs).max():.3g} |")
        else:
            line += " — |"
        print(line, flush=True)

    def keras_probs(model, images):
        return np.asarray(model.predict(export.to_unit_range(images), verbose=0, batch_size=64))

    def qat_probs(qat_model, val):
        """The QAT Keras model's and its int8 file's probabilities, and the file's size; the
        Keras model is fed what the file's uint8 input means (x/127.5 - 1 falls on rounding
        ties)."""
        qat = export.convert(qat_model, "int8")
        classifier = tflite.TFLiteClassifier(qat)
        scale, zero_point = classifier.input_quantization
        return (np.asarray(qat_model.predict(
            (val.images.astype(np.float32) - zero_point) * np.float32(scale), verbose=0)),
            classifier.predict(val.images), len(qat))

    def all_probs(float_model, qat_model, val, calibration):
        """Probabilities of the float model, its PTQ int8 file, the QAT Keras model and the QAT
        int8 file."""
        ptq = export.convert(float_model, "int8", calibration.images)
        qat_keras, qat_lite, qat_bytes = qat_probs(qat_model, val)
        return {"float": keras_probs(float_model, val.images),
                "ptq": tflite.TFLiteClassifier(ptq).predict(val.images),
                "qat_keras": qat_keras, "qat_lite": qat_lite}, len(ptq), qat_bytes

    def table(probs, labels, ptq_bytes, qat_bytes, extra=()):
        print(header)
        reference = probs["float"]
        score("float Keras model", reference, labels)
        score(f"PTQ int8 .tflite ({ptq_bytes / 1024:.0f} KiB)", probs["ptq"], labels, reference)
        score("QAT Keras model", probs["qat_keras"], labels, reference)
        score(f"QAT int8 .tflite ({qat_bytes / 1024:.0f} KiB)", probs["qat_lite"], labels,
              reference, probs["qat_keras"])
        for name, key, *keras_key in extra:
            score(name, probs[key], labels, reference,
                  probs[keras_key[0]] if keras_key else None)

    if "a" in args.parts:
        # (a) ants/bees, the whole network fine-tuned (batch norm in inference mode).
        folder = f"folder:{data / 'hymenoptera'}"
        common = dict(dataset=folder, alpha=0.25, image_size=128, batch_size=32,
                      min_crop_area=0.25, verbose=0, seed=args.seed)
        float_run = training.train(training.TrainConfig(
            model_dir=str(work / "float"), epochs=args.float_epochs, init_weights=str(weights),
            learning_rate=args.float_learning_rate, **common))
        qat_run = training.train(training.TrainConfig(
            model_dir=str(work / "qat"), epochs=args.qat_epochs, init_weights=str(work / "float"),
            learning_rate=args.qat_learning_rate, quantize=True, **common))
        val = export.load_images(folder, size, 1000, split="validation")
        probs, ptq_bytes, qat_bytes = all_probs(
            float_run["model"], qat_run["model"], val,
            export.load_images(folder, size, 300, split="train"))
        print(f"\n(a) hymenoptera, α=0.25/128, whole network trained: float {args.float_epochs} "
              f"epochs at learning rate {args.float_learning_rate:g}, then QAT {args.qat_epochs} "
              f"epochs at {args.qat_learning_rate:g} from the float run; PTQ calibrated on the "
              f"train/ photos; {len(val.labels)} val/ photos\n")
        table(probs, val.labels, ptq_bytes, qat_bytes)

    if "b" in args.parts:
        # (b) ImageNet head, Google's weights, two folds of imagenet50.
        float_model = MobileNetV1((128, 128, 3), alpha=0.25, weights=str(weights))
        official = tflite.TFLiteClassifier(str(google))
        teacher = ({} if not args.imagenet_distillation_weight else
                   dict(teacher=str(weights), teacher_alpha=0.25, teacher_image_size=128,
                        distillation_weight=args.imagenet_distillation_weight))
        folds, labels = [], []
        for k, root in enumerate(_imagenet_folds(data, work)):
            spec = f"folder:{root}"
            qat_run = training.train(training.TrainConfig(
                dataset=spec, model_dir=str(work / f"imagenet_qat{k}"), alpha=0.25,
                image_size=128, batch_size=25, train_steps=args.imagenet_qat_steps,
                epochs=args.imagenet_qat_steps, learning_rate=args.imagenet_qat_learning_rate,
                init_weights=str(weights), quantize=True, min_crop_area=0.5, verbose=0,
                seed=args.seed, **teacher))
            val = export.load_images(spec, size, 50, split="validation")
            probs, ptq_bytes, qat_bytes = all_probs(
                float_model, qat_run["model"], val,
                export.load_images(spec, size, 50, split="train"))
            probs["google"] = official.predict(val.images)[:, 1:]    # 1001 classes: 0 = background
            if args.imagenet_distill_steps:
                photos = work / f"imagenet_distill{k}" / "train"    # no labels: the teacher's
                photos.mkdir(parents=True, exist_ok=True)
                files = [f for f in sorted((root / "train").rglob("*")) if f.is_file()]
                files += [f for f in sorted((data / "hymenoptera").rglob("*")) if f.is_file()]
                for i, f in enumerate(files):
                    link = photos / f"{i:04d}_{f.name}"
                    if not link.exists():
                        os.symlink(f.resolve(), link)
                distilled = training.train(training.TrainConfig(
                    dataset=f"folder:{photos.parent}", mode="train",
                    model_dir=str(work / f"imagenet_qat_distill{k}"), alpha=0.25, image_size=128,
                    batch_size=32, train_steps=args.imagenet_distill_steps,
                    epochs=args.imagenet_distill_steps,
                    learning_rate=args.imagenet_qat_learning_rate, init_weights=str(weights),
                    quantize=True, min_crop_area=0.5, verbose=0, seed=args.seed,
                    teacher=str(weights), teacher_alpha=0.25, teacher_image_size=128,
                    distillation_weight=1.0))
                probs["distill_keras"], probs["distill_lite"], distill_bytes = qat_probs(
                    distilled["model"], val)
            folds.append(probs)
            labels.append(val.labels)
        probs = {key: np.concatenate([fold[key] for fold in folds]) for key in folds[0]}
        print(f"\n(b) imagenet50 in two folds: Google's α=0.25/128 weights (1000-class head kept) "
              f"QAT-fine-tuned on 25 images, {args.imagenet_qat_steps} steps of 25 at learning "
              f"rate {args.imagenet_qat_learning_rate:g}, teacher weight "
              f"{args.imagenet_distillation_weight:g}, PTQ calibrated on the same 25, all "
              f"scored on the other 25; the two folds' counts added\n")
        extra = [("Google's mobilenet_v1_0.25_128_quant.tflite", "google")]
        if args.imagenet_distill_steps:
            extra += [(f"QAT Keras model, distilled on 25 + 397 photos "
                       f"({args.imagenet_distill_steps} steps of 32)", "distill_keras"),
                      (f"QAT int8 .tflite ({distill_bytes / 1024:.0f} KiB), distilled on 25 + "
                       "397 photos", "distill_lite", "distill_keras")]
        table(probs, np.concatenate(labels), ptq_bytes, qat_bytes, extra=extra)
    print(f"\nRuns in {work}")


if __name__ == "__main__":
    main()
