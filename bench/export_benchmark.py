"""int8 vs float32 TFLite export vs Google's official quantized MobileNetV1, side by side.

    python bench/export_benchmark.py            # alpha 0.75, 192x192, data from ../shared/data

Exports the Keras MobileNetV1 (weights ``mobilenet_7_5_192_tf.h5``) as float32
(``quantization=none``) and full int8 (calibrated on the hymenoptera training photos,
not on the test images), then measures in one process, on the same machine, for those
two files and Google's ``mobilenet_v1_0.75_192_quant.tflite``: file size, top-1 / top-5
on the 50 labelled imagenet50 images (TF-slim evaluation preprocessing: central crop
0.875, bilinear resize) and the median latency of one ``invoke()`` at 1 thread (and at
all cores), the models' runs interleaved round by round so that machine noise hits all
three alike. Prints a Markdown table and the issue's targets as ratios, met or not.
Writes nothing (the exports stay in memory).
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parent.parent

import cpu_features  # noqa: E402  (bench/, beside this script)


def _data_dir():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=0.75)
    parser.add_argument("--image_size", type=int, default=192)
    parser.add_argument("--calibration", default=None,
                        help="dataset spec for int8 calibration (default folder:<data>/hymenoptera)")
    parser.add_argument("--num_calibration_images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved latency rounds")
    parser.add_argument("--runs", type=int, default=20, help="invokes per round and model")
    args = parser.parse_args(argv)

    import numpy as np
    import mobilenet_tf
    from mobilenet_tf import export
    from mobilenet_tf.export import latency, tflite

    data = _data_dir()
    alpha_text = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}[args.alpha]
    weights = data / "weights" / f"mobilenet_{alpha_text}_{args.image_size}_tf.h5"
    google = data / "tflite" / f"mobilenet_v1_{args.alpha:g}_{args.image_size}_quant.tflite"
    for path in (weights, google):
        if not path.exists():
            sys.exit(f"missing {path} (set MOBILENET_TF_DATA)")
    size = args.image_size
    model = mobilenet_tf.MobileNetV1(alpha=args.alpha, input_shape=(size, size, 3),
                                     weights=str(weights))
    test = export.load_images(f"folder:{data / 'imagenet50'}", size, 50)
    calibration = export.load_images(args.calibration or f"folder:{data / 'hymenoptera'}", size,
                                     args.num_calibration_images)
    print(f"alpha {args.alpha:g}, {size}x{size}; test: {len(test.images)} imagenet50 images; "
          f"int8 calibration: {len(calibration.images)} images of {calibration.description}")

    start = time.perf_counter()
    files = {"float32 export": export.convert(model, "none")}
    files["int8 export"] = export.convert(model, "int8", calibration.images,
                                          num_calibration_images=args.num_calibration_images)
    print(f"converted both in {time.perf_counter() - start:.1f} s")
    files["Google quant (official)"] = tflite.read_tflite(google)

    keras_probs = np.asarray(model(export.to_unit_range(test.images), training=False))
    rows = {}
    for name, content in files.items():
        runner = tflite.TFLiteClassifier(content, num_threads=1)
        probs = runner.predict(test.images)
        if probs.shape[1] == 1001:                 # TF-slim head: drop the background class
            probs = probs[:, 1:]
        top = np.argsort(-probs, axis=1, kind="stable")[:, :5]
        rows[name] = {
            "runner": runner, "size": len(content), "io": runner.describe(),
            "top1": int((top[:, 0] == test.labels).sum()),
            "top5": int((top == test.labels[:, None]).any(axis=1).sum()),
            "agree": int((probs.argmax(1) == keras_probs.argmax(1)).sum())}
    keras_top1 = int((keras_probs.argmax(1) == test.labels).sum())

    def image_for(runner):
        return test.images[0]

    one = latency.interleaved_latency({n: r["runner"] for n, r in rows.items()},
                                      image_for=image_for, rounds=args.rounds, runs=args.runs)
    cores = os.cpu_count() or 1
    multi = latency.interleaved_latency(
        {n: tflite.TFLiteClassifier(files[n], num_threads=cores) for n in rows},
        image_for=image_for, rounds=max(3, args.rounds // 3), runs=args.runs)

    cpu = cpu_features.describe()
    print()
    print(cpu)
    print()
    print(f"| model | size | top-1 / 50 | top-5 / 50 | top-1 = Keras float | latency 1 thread | "
          f"latency {cores} threads | tensors |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['size'] / 1024:,.0f} KiB | {r['top1']} | {r['top5']} | {r['agree']}/50 | "
              f"{one[name]:.2f} ms | {multi[name]:.2f} ms | {r['io']} |")
    print(f"\nKeras float model: top-1 {keras_top1}/50.")
    f32, i8, g = rows["float32 export"], rows["int8 export"], rows["Google quant (official)"]
    lf, li, lg = one["float32 export"], one["int8 export"], one["Google quant (official)"]
    checks = [
        ("int8 size / float32 size", i8["size"] / f32["size"], "<= 0.30", i8["size"] / f32["size"] <= 0.30),
        ("int8 top-1 - float32 top-1 (images)", i8["top1"] - f32["top1"], ">= -1",
         i8["top1"] - f32["top1"] >= -1),
        ("int8 top-1 - Google quant top-1 (images)", i8["top1"] - g["top1"], ">= 0",
         i8["top1"] >= g["top1"]),
        ("int8 latency / Google quant latency (1 thread)", li / lg, "<= 0.6", li / lg <= 0.6),
        ("int8 latency / float32 latency (1 thread)", li / lf, "<= 0.5", li / lf <= 0.5),
    ]
    print(f"\n{cpu}\n\n| target | measured | bound | met |\n|---|---|---|---|")
    for what, value, bound, met in checks:
        shown = f"{value:.2f}" if isinstance(value, float) else f"{value:+d}"
        print(f"| {what} | {shown} | {bound} | {'yes' if met else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
