"""Does the int8 file compute what the QAT Keras model computes? Level by level, block by block.

    python bench/qat_fidelity.py       # about 1 min; reads ../shared/data (or $MOBILENET_TF_DATA)

The QAT twin of Google's α=0.25/128 weights (``qat.quantize_model``, batch norm in inference mode,
the learned ranges set by one training-mode batch of 64 ``hymenoptera/train`` photos, no weight
update) is exported to full int8 (``export.convert``); the 50 ``imagenet50`` images go through the
file (LiteRT, every tensor kept) and through the Keras model fed what the file's uint8 input means.
For each end point: the share of values at a different int8 level, and the largest difference in
levels; then top-1 agreement. Side by side, in one run, the known-wrong simulations: a float bias
(not rounded to the file's int32 steps), and that with the input range (-1, 1) itself (fake
quantization nudges its zero point to 127; the file's uint8 input has 128): the simulation this
project had until 2026-11-24.
Prints the CPU and its instruction sets first.
"""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import cpu_features  # noqa: E402


def main():
    data = pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))
    weights = data / "weights" / "mobilenet_2_5_128_tf.h5"
    for path in (weights, data / "imagenet50", data / "hymenoptera"):
        if not path.exists():
            sys.exit(f"missing {path} (set MOBILENET_TF_DATA)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from mobilenet_tf import MobileNetV1
    from mobilenet_tf import export
    from mobilenet_tf.model import qat

    print(cpu_features.describe())
    val = export.load_images(f"folder:{data / 'imagenet50'}", (128, 128), 50,
                             split="validation").images
    calibration = export.load_images(f"folder:{data / 'hymenoptera'}", (128, 128), 64,
                                     split="train").images

    def twin(variant):
        float_model = MobileNetV1((128, 128, 3), alpha=0.25, weights=str(weights))
        for layer in float_model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        saved = qat.INPUT_RANGE
        if variant == "float bias, input (-1, 1)":
            qat.INPUT_RANGE = (-1.0, 1.0)
        try:
            model = qat.quantize_model(float_model)
        finally:
            qat.INPUT_RANGE = saved
        if variant != "this project":
            for layer in model.layers:
                if isinstance(layer, qat.QuantizedConv):
                    layer.input_scale = None
        model(export.to_unit_range(calibration), training=True)   # sets the learned ranges
        return model

    variants = ["this project", "float bias", "float bias, input (-1, 1)"]
    table, agreement = {}, {}
    for variant in variants:
        model = twin(variant)
        interpreter = Interpreter(model_content=export.convert(model, "int8"),
                                  experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        into = interpreter.get_input_details()[0]
        scale, zero_point = into["quantization"]
        details = interpreter.get_tensor_details()
        points = {}
        for layer in model.layers:
            if layer.name.endswith(("_Relu6", "_quant")):
                found = [d for d in details if f"/{layer.name}_1/" in d["name"]
                         and len(d["shape"]) >= 2 and d["quantization"][0] > 0]
                if found:
                    points[layer.name] = found[-1]
        probe = keras.Model(model.input, [model.get_layer(n).output for n in points]
                            + [model.output])
        outputs = probe.predict((val.astype(np.float32) - zero_point) * np.float32(scale),
                                verbose=0)
        ours = dict(zip(points, (np.asarray(o) for o in outputs[:-1])))
        levels = {n: [] for n in points}
        file_top1 = []
        for i, image in enumerate(val):
            interpreter.set_tensor(into["index"], image[np.newaxis])
            interpreter.invoke()
            file_top1.append(interpreter.get_tensor(
                interpreter.get_output_details()[0]["index"])[0].argmax())
            for name, d in points.items():
                step, zero = d["quantization"]
                theirs = (interpreter.get_tensor(d["index"]).astype(np.float32) - zero) * step
                levels[name].append(np.abs(theirs - ours[name][i:i + 1].reshape(theirs.shape))
                                    .ravel() / step)
        for name in points:
            off = np.round(np.concatenate(levels[name]))
            table.setdefault(name, {})[variant] = (float((off > 0).mean()), int(off.max()))
        agreement[variant] = int((np.asarray(file_top1) == np.asarray(outputs[-1]).argmax(1)).sum())

    print(f"\nα=0.25/128, Google's weights, {len(val)} imagenet50 images: share of values at a "
          "different int8 level in the file than in the QAT Keras model (largest difference, "
          "levels)\n")
    print("| end point | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[v][0]:.2%} ({row[v][1]})" for v in variants)
              + " |")
    print("| **top-1 equal** | " + " | ".join(f"{agreement[v]}/{len(val)}" for v in variants)
          + " |")


if __name__ == "__main__":
    main()
