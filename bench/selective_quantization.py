"""Where int8 loses, and does keeping a few layers in float close the gap? (issue 24)

    python bench/selective_quantization.py                 # α=0.25/128 and 0.75/192, ~10 min
    python bench/selective_quantization.py --configs=0.25/128 --report_dir=/tmp/reports

For each configuration, Google's weights (``../shared/data/weights``) in the Keras model:

1. the per-layer report (``mobilenet_tf.export.report.quantization_report``, what
   ``python -m mobilenet_tf.quant_report`` prints), calibrated on the 244 hymenoptera training
   photos and measured on the 50 imagenet50 images (with ``--report_dir``, also its JSON and PNG);
2. the automatic selective export (``export_tflite.py --float_layers_target``'s rule,
   ``mobilenet_tf.export.selection``) for each target, calibrated on the same training photos and
   choosing on the 153 hymenoptera validation photos (agreement with the Keras model needs no
   labels);
3. on the other set, imagenet50: float32, full int8, each selective file and Google's
   quantization-aware ``mobilenet_v1_*_quant.tflite`` (1001 classes: its background class left
   out) side by side: top-1 agreement with the Keras model, top-1 accuracy, file size (no
   metadata), latency of one ``invoke()`` at 1 thread, the files taking turns round by round;
   with ``ai-edge-quantizer`` installed also its full int8 (recipe ``static_wi8_ai8``, the same
   calibration photos): the other quantizer the issue names, measured beside the converter's.

Prints the CPU and its instruction sets first, then Markdown tables. Writes only into
``--report_dir`` when given.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import cpu_features  # noqa: E402

WEIGHTS = {"0.25/128": "mobilenet_2_5_128_tf.h5", "0.75/192": "mobilenet_7_5_192_tf.h5"}


def _ai_edge_quantizer(float_content, calibration_images):
    """Google's ai-edge-quantizer's full int8 of the float32 file, or None when not installed."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        return None
    aeq = quantizer.Quantizer(float_content)
    aeq.load_quantization_recipe(recipe.static_wi8_ai8())
    ranges = aeq.calibrate({"serving_default": [{"images": image[None]}
                                                for image in calibration_images]})
    return bytes(aeq.quantize(ranges, enable_progress_report=False).quantized_model)


def _side_by_side(files, model, test, rounds, runs):
    """Rows (name, layers in float, agreement, top-1, size, ms) on the test images."""
    from mobilenet_tf.export import latency as latency_lib, sensitivity, tflite
    keras_probs = sensitivity.keras_probabilities(model, test.images)
    labels = test.labels
    runners = {name: tflite.TFLiteClassifier(content, num_threads=1)
               for name, (content, _) in files.items()}
    latency = latency_lib.interleaved_latency(runners, rounds=rounds, runs=runs,
                                              image_for=lambda runner: test.images[0])
    rows = []
    for name, (content, float_layers) in files.items():
        probs = runners[name].predict(test.images)
        if probs.shape[1] == keras_probs.shape[1] + 1:      # TF-slim's 1001: background first
            probs = probs[:, 1:]
        rows.append((name, float_layers, float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
                     float((probs.argmax(1) == labels).mean()), len(content), latency[name]))
    return rows, float((keras_probs.argmax(1) == labels).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="0.25/128,0.75/192")
    parser.add_argument("--targets", default="0.9,0.95,0.98",
                        help="top-1 agreement targets of the automatic choice (on the selection "
                             "set)")
    parser.add_argument("--report_dir", default=None, help="write each report's JSON and PNG here")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    data = pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))
    from mobilenet_tf import MobileNetV1
    from mobilenet_tf.export import (ExportOptions, FromWeights, load_images, report, report_plot,
                                     selection, selective, sensitivity)
    from mobilenet_tf.export import converter
    from mobilenet_tf.export.classifier_metadata import mediapipe_problem
    print(cpu_features.describe())
    hymenoptera, imagenet50 = f"folder:{data / 'hymenoptera'}", f"folder:{data / 'imagenet50'}"
    targets = [float(t) for t in args.targets.split(",")]
    for config in args.configs.split(","):
        alpha, size = float(config.split("/")[0]), int(config.split("/")[1])
        weights = data / "weights" / WEIGHTS[config]
        google = data / "tflite" / f"mobilenet_v1_{alpha:g}_{size}_quant.tflite"

        # 1. The report, as the command makes it.
        options = ExportOptions(quantization="int8", representative_dataset=hymenoptera,
                                verify_dataset=imagenet50, num_verification_images=50)
        result = report.quantization_report(FromWeights(str(weights), alpha=alpha, image_size=size),
                                            options)
        print(f"\n### α={config}: per-layer report\n")
        print("```")
        print("\n".join(result.lines()))
        print("```")
        if args.report_dir:
            folder = pathlib.Path(args.report_dir)
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"quant_report_{alpha:g}_{size}"
            (folder / f"{stem}.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
            if report_plot.matplotlib_problem() is None:
                (folder / f"{stem}.png").write_bytes(report_plot.png_bytes(result))

        # 2. The automatic choice, on the other set.
        model = MobileNetV1((size, size, 3), alpha=alpha, weights=str(weights))
        calibration = load_images(hymenoptera, size, 300, split="train")
        choose = load_images(hymenoptera, size, 200, split="validation")
        test = load_images(imagenet50, size, 50, split="validation")
        quantizer = selective.SelectiveQuantizer(model, calibration.images)
        choose_probs = sensitivity.keras_probabilities(model, choose.images)
        files = {"float32": (converter.convert(model, "none"), len(quantizer.layers)),
                 "full int8": (quantizer.quantize(), 0)}
        print(f"\n### α={config}: automatic choice on {len(choose.images)} hymenoptera "
              f"validation photos (calibrated on {len(calibration.images)} training photos)\n")
        print("```")
        for target in targets:
            try:
                chosen = selection.select_float_layers(quantizer, choose.images, choose_probs,
                                                       target)
            except selection.SelectionError as e:
                chosen = e.selection
            print("\n".join(chosen.lines()))
            files[f"selective, target {target:g}"] = (quantizer.quantize(chosen.float_layers),
                                                      len(chosen.float_layers))
        print("```")
        aeq = _ai_edge_quantizer(files["float32"][0], calibration.images)
        if aeq is not None:
            files["ai-edge-quantizer int8"] = (aeq, 0)
        files["Google's QAT uint8"] = (google.read_bytes(), 0)

        # 3. Side by side on imagenet50.
        rows, keras_top1 = _side_by_side(files, model, test, args.rounds, args.runs)
        print(f"\n### α={config}: on imagenet50 ({len(test.images)} images; Keras float top-1 "
              f"{round(keras_top1 * len(test.images))}/{len(test.images)})\n")
        print("| file | layers in float | top-1 agreement with Keras | top-1 | size (KiB) "
              "| latency, 1 thread (ms) |")
        print("|---|---|---|---|---|---|")
        n = len(test.images)
        for name, float_layers, agreement, top1, size_bytes, ms in rows:
            print(f"| {name} | {float_layers} | {round(agreement * n)}/{n} | {round(top1 * n)}/{n} "
                  f"| {size_bytes / 1024:.1f} | {ms:.2f} |")
        for name, (content, _) in files.items():
            problem = mediapipe_problem(content)
            verdict = "input and output types MediaPipe takes" if problem is None else problem
            print(f"{name}: {verdict}")


if __name__ == "__main__":
    main()
