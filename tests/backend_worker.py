"""What tests/test_backends.py runs on each Keras backend: the same code, the same inputs.

    KERAS_BACKEND=jax python tests/backend_worker.py IN_DIR OUT.npz

``prepare(IN_DIR)`` (TensorFlow backend, in the test process) writes the inputs every backend
reads: the images, a ``.keras`` file and a ``.weights.h5`` file saved by the TensorFlow backend,
and the paths of Google's files. ``run(IN_DIR)`` computes, on whatever backend Keras runs on,
everything the test compares: the builder's outputs for every keyword, weights loaded from each
file kind, ``costs``, ``feature_extractor``, ``preprocess_input`` / ``decode_predictions``, the
training recipe's losses, learning rates and weights after ``model.fit``, and the one-line
refusals of what needs TensorFlow; and whether TensorFlow was imported. Weights are made from a
seed with NumPy (:func:`fill_weights`), so every backend starts from the same numbers.
"""

import json
import os
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
IMAGE = "n01514668_cock.JPEG"          # imagenet50's cock, class 7
TENSORFLOW_MODULES = ("tensorflow", "tensorflow_datasets")
TRAIN_STEPS, TRAIN_BATCH, TRAIN_SIZE, TRAIN_CLASSES = 2, 8, 64, 5
# The recipe with every part switched on and large enough to show in two steps: RMSprop with
# TF-slim's epsilon (the default), warmup over both steps and a staircase decay every 2 steps
# (rates after steps 1 and 2: r, r/2; without the staircase's floor r/sqrt(2) after step 1),
# the L2 filter (not the depthwise kernels) at a weight decay where it moves the weights, label
# smoothing, EMA, and batch-norm statistics that move. 64x64 and batches of 8 keep the last
# layers' batch statistics (2x2 x 8 values) and the steps well conditioned: two float32 runs
# then differ by rounding, not by chaos (batch norm over 4 values at 32x32 amplified it 1000x).
# Fewer than 6 classes: no top-5 metric (TensorFlow's in_top_k has no float64 kernel).
TRAIN_CONFIG = dict(alpha=0.25, image_size=TRAIN_SIZE, batch_size=TRAIN_BATCH, dropout=0.0,
                    learning_rate=0.01, warmup_epochs=1.0, lr_decay_epochs=1.0,
                    lr_decay_factor=0.5, weight_decay=0.001, label_smoothing=0.1,
                    moving_average_decay=0.5, batch_norm_momentum=0.5)
# Every keyword of MobileNetV1 (input_tensor and input_shape=None in the last two).
BUILDER_CASES = {
    "a": dict(input_shape=(64, 64, 3), alpha=0.25, depth_multiplier=2, dropout=0.5,
              include_top=True, weights=None, classes=7, classifier_activation=None,
              name="every_keyword", min_depth=4, conv_defs="shallow_mobilenet", output_stride=16,
              padding="symmetric", activation="relu", checkpoint_weights="auto"),
    "b": dict(input_shape=(40, 56, 3), alpha=0.25, include_top=False, pooling="max",
              conv_defs="conv_mobilenet", output_stride=8),
    "c": dict(input_shape=None, alpha=0.25, include_top=False, pooling="avg"),
    "d": dict(input_tensor=(48, 48, 3), alpha=0.25, classes=5, classifier_activation="softmax"),
}
BUILDER_IMAGE_SIZE = {"a": (64, 64), "b": (40, 56), "c": (48, 48), "d": (48, 48)}


def data_dir():
    return pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO.parent / "shared" / "data"))


def fill_weights(model, seed):
    """Every weight of `model` from NumPy's generator `seed`, the same on every backend:
    kernels He-scaled by their fan-in, batch-norm scales and variances in [0.5, 1.5]."""
    import keras
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            shape, name = tuple(variable.shape), variable.path.split("/")[-1]
            if name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.1, shape)
            else:
                fan_in = np.prod(shape[:2]) * (
                    1 if isinstance(layer, keras.layers.DepthwiseConv2D) else shape[2])
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            variable.assign(value.astype(np.float32))
    return model


def images(size, count, seed):
    """``count`` images of `size` (height, width), preprocessed ([-1, 1]), from `seed`."""
    from mobilenet_tf.model.imagenet import preprocess_input
    pixels = np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)
    return preprocess_input(pixels)


def prepare(in_dir):
    """The inputs every backend reads (written by the TensorFlow backend): the imagenet50 photo
    at 128x128, a model saved as .keras and its weights as .weights.h5, Google's file paths."""
    import tensorflow as tf
    import mobilenet_tf
    in_dir = pathlib.Path(in_dir)
    photo = tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(data_dir() / "imagenet50" / IMAGE)),
                                              channels=3), (128, 128))
    np.save(in_dir / "photo.npy", np.round(photo.numpy()).clip(0, 255).astype(np.uint8)[None])
    model = fill_weights(mobilenet_tf.MobileNetV1((64, 64, 3), alpha=0.25, classes=6), seed=11)
    model.save(in_dir / "own.keras")
    model.save_weights(in_dir / "own.weights.h5")
    paths = {"google_h5": str(data_dir() / "weights" / "mobilenet_2_5_128_tf.h5"),
             "slim_checkpoint": str(data_dir() / "weights" / "mobilenet_v1_0.25_128.ckpt"),
             "runs": str(REPO / "tests" / "data" / "runs_0_1_0")}
    (in_dir / "paths.json").write_text(json.dumps(paths))


def _predict(model, x):
    """`model`'s outputs on `x`; a dict for a model of named outputs."""
    out = model.predict(x, verbose=0)
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return np.asarray(out)


def builder_outputs():
    import keras
    import mobilenet_tf
    out = {}
    for case, kwargs in BUILDER_CASES.items():
        kwargs = dict(kwargs)
        if "input_tensor" in kwargs:
            kwargs["input_tensor"] = keras.Input(kwargs["input_tensor"])
        model = fill_weights(mobilenet_tf.MobileNetV1(**kwargs), seed=ord(case))
        x = images(BUILDER_IMAGE_SIZE[case], 2, ord(case))
        out[f"builder/{case}/name"] = np.array(model.name)
        sized = model if kwargs.get("input_shape", ()) is not None else mobilenet_tf.MobileNetV1(
            **{**kwargs, "input_shape": (*BUILDER_IMAGE_SIZE[case], 3)})   # the pool's length
        out[f"builder/{case}/reduction"] = np.array(_reduction(sized))
        if case == "d":
            out[f"builder/{case}"], out[f"builder/{case}/logits"] = _with_logits(model, x)
        else:
            out[f"builder/{case}"] = _predict(model, x)
    return out


def _reduction(model):
    """ΣK of `model`'s forward pass (tests/numerics.py): what its float32 rounding scales with."""
    import numerics
    return sum(numerics.reduction_lengths(model))


def _with_logits(model, x):
    """``(outputs, logits)`` of a classifier on `x`, in one compiled predict."""
    import keras
    both = keras.Model(model.input, [model.output, model.get_layer("SpatialSqueeze").output])
    outputs, logits = both.predict(x, verbose=0)
    return np.asarray(outputs), np.asarray(logits)


def weights_outputs(in_dir, paths):
    """Google's Keras 2 .h5 (with and without the head), our .weights.h5 and .keras files saved
    by the TensorFlow backend, and run folders of 0.1.0 (float and quantization-aware)."""
    import keras
    import mobilenet_tf
    from mobilenet_tf.model import saved
    photo = mobilenet_tf.preprocess_input(np.load(in_dir / "photo.npy"))
    x64 = images((64, 64), 2, 64)
    google = mobilenet_tf.MobileNetV1((128, 128, 3), alpha=0.25, weights=paths["google_h5"])
    probs, logits = _with_logits(google, photo)
    decoded = mobilenet_tf.decode_predictions(probs, top=5)[0]
    no_top = mobilenet_tf.MobileNetV1((128, 128, 3), alpha=0.25, include_top=False,
                                      pooling="avg", weights=paths["google_h5"])
    out = {"weights/google_h5": probs,
           "weights/google_h5_logits": logits,
           "weights/google_h5/reduction": np.array(_reduction(google)),
           "weights/google_h5_top5": np.array([f"{w} {n}" for w, n, _ in decoded]),
           "weights/google_h5_no_top": _predict(no_top, photo),
           "weights/own_weights_h5": _predict(mobilenet_tf.MobileNetV1(
               (64, 64, 3), alpha=0.25, classes=6, weights=str(in_dir / "own.weights.h5")), x64),
           "weights/own_keras_as_weights": _predict(mobilenet_tf.MobileNetV1(
               (64, 64, 3), alpha=0.25, classes=6, weights=str(in_dir / "own.keras")), x64),
           }
    own = keras.saving.load_model(in_dir / "own.keras")
    out["weights/own_keras_load_model"], out["weights/own/logits"] = _with_logits(own, x64)
    out["weights/own/reduction"] = np.array(_reduction(own))
    x32 = images((32, 32), 2, 32)
    for run in ("float", "qat"):
        model, names = saved.load_model(os.path.join(paths["runs"], run))
        out[f"weights/run_{run}"], out[f"weights/run_{run}/logits"] = _with_logits(model, x32)
        out[f"weights/run_{run}/reduction"] = np.array(_reduction(model))
        out[f"weights/run_{run}/names"] = np.array(list(names or ()), dtype=str)
    quantizer = model.get_layer("Logits_quant")
    out["weights/run_qat/logits_step"] = np.array(
        float(np.asarray(quantizer.range_max) - np.asarray(quantizer.range_min)) / 255)
    return out


def api_outputs():
    """costs, feature_extractor (of a model and from builder keywords), preprocess_input of a
    NumPy array and of a backend tensor, decode_predictions of a 1001-class head."""
    import keras
    import mobilenet_tf
    from mobilenet_tf.model import costs
    out = {}
    result = costs.count(alpha=0.5, image_size=160)
    out["costs/alpha_0.5_160"] = np.array([result.mult_adds, result.params])
    out["costs/table"] = np.array(str(mobilenet_tf.costs.count(alpha=0.25, image_size=128)))
    model = fill_weights(mobilenet_tf.MobileNetV1((64, 64, 3), alpha=0.25, classes=4), seed=5)
    x = images((64, 64), 2, 5)
    features = _predict(mobilenet_tf.feature_extractor(
        model, endpoints=("Conv2d_5_pointwise", "Conv2d_13_pointwise", "Logits")), x)
    for name, value in features.items():
        out[f"features/model/{name}"] = value
    out["features/model/reduction"] = np.array(_reduction(model))
    built = mobilenet_tf.feature_extractor(endpoints="Conv2d_11_pointwise", input_shape=(64, 64, 3),
                                           alpha=0.25)
    fill_weights(built, seed=6)
    out["features/kwargs/Conv2d_11_pointwise"] = _predict(built, x)["Conv2d_11_pointwise"]
    pixels = np.arange(0, 256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    out["preprocess/numpy"] = mobilenet_tf.preprocess_input(pixels)
    tensor = mobilenet_tf.preprocess_input(keras.ops.convert_to_tensor(pixels))
    out["preprocess/tensor"] = keras.ops.convert_to_numpy(tensor)
    out["preprocess/tensor_type"] = np.array(type(tensor).__module__.split(".")[0])
    scores = np.linspace(0.0, 1.0, 1001, dtype=np.float32)[None]
    out["decode/1001"] = np.array([" ".join(map(str, row[:2]))
                                   for row in mobilenet_tf.decode_predictions(scores, top=3)[0]])
    return out


class _Recorder:
    """After each step of fit: the running loss, the learning rate of the next step and the
    raw (not yet averaged) weights. Keras' JAX trainer keeps the state apart during fit; a
    callback that reads weights syncs it first (``jax_state_sync``), as Keras' own do."""

    def __init__(self):
        import keras

        class Recorder(keras.callbacks.Callback):
            def on_train_batch_end(inner, batch, logs=None):
                if hasattr(inner.model, "jax_state_sync"):
                    inner.model.jax_state_sync()
                self.rows.append((float(logs["loss"]),
                                  float(keras.ops.convert_to_numpy(inner.model.optimizer.learning_rate)),
                                  [np.asarray(w) for w in inner.model.get_weights()]))
        self.rows = []
        self.callback = Recorder()


def training_outputs(float64=False, **overrides):
    """:func:`_training_outputs`; ``float64`` (the TensorFlow backend's yardstick only: Keras
    3.15 computes batch norm in float32 on other backends whatever the input, its type
    promotion maps float64 to float32 there) with Keras' floatx float64, in which it sums the
    losses."""
    import keras
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64" if float64 else floatx)
    try:
        return {key.replace("train/", "train64/" if float64 else "train/", 1): value
                for key, value in _training_outputs(float64, **overrides).items()}
    finally:
        keras.config.set_floatx(floatx)


def _training_outputs(float64=False, **overrides):
    """The recipe's model and step: build_model + compile_model (what train.py compiles),
    model.fit on in-memory batches for TRAIN_STEPS steps. ``float64``: the same model computing
    in float64 (the yardstick of float32's rounding); ``overrides``: TrainConfig fields."""
    import keras
    from mobilenet_tf.model import qat
    from mobilenet_tf.training import TrainConfig, build_model, compile_model
    from mobilenet_tf.training.schedule import learning_rate_schedule
    from mobilenet_tf.training.weight_decay import split_weight_decay
    config = TrainConfig(**{**TRAIN_CONFIG, **overrides})
    model = build_model(config, TRAIN_CLASSES, report=False)
    if float64:
        import numerics
        model = numerics.float64_copy(model)
    model = fill_weights(model, seed=3)
    x = images((TRAIN_SIZE, TRAIN_SIZE), TRAIN_STEPS * TRAIN_BATCH, 7)
    logits = None
    if keras.backend.backend() == "tensorflow":
        # The first step's logits (training mode: batch statistics), for the loss's yardstick;
        # that forward pass moved the batch-norm statistics, so the weights are set again.
        logits = np.asarray(keras.Model(model.input, model.get_layer("SpatialSqueeze").output)(
            x[:TRAIN_BATCH], training=True))
        model = fill_weights(model, seed=3)
    compile_model(model, config, learning_rate_schedule(config, steps_per_epoch=TRAIN_STEPS),
                  report=False)
    decayed, _ = split_weight_decay(model, config.regularize_depthwise)
    paths = [v.path for v in model.weights]
    rng = np.random.default_rng(7)
    count = TRAIN_STEPS * TRAIN_BATCH
    y = keras.utils.to_categorical(rng.integers(0, TRAIN_CLASSES, count), TRAIN_CLASSES)
    out = {"train/paths": np.array(paths), "train/decayed": np.array([v.path for v in decayed]),
           "train/initial": np.concatenate([np.ravel(w) for w in model.get_weights()]),
           "train/decayed_size": np.array(sum(int(np.prod(v.shape)) for v in decayed)),
           "train/penalty": np.array(sum(float(keras.ops.convert_to_numpy(loss))
                                         for loss in model.losses))}
    if logits is not None:
        out["train/logits"] = logits
    recorder = _Recorder()
    history = model.fit(x, y, batch_size=TRAIN_BATCH, epochs=1, shuffle=False, verbose=0,
                        callbacks=[recorder.callback])
    for step, (loss, rate, weights) in enumerate(recorder.rows):
        out[f"train/step{step}/loss"] = np.array(loss)
        out[f"train/step{step}/next_rate"] = np.array(rate)
        for path, w in zip(paths, weights):
            out[f"train/step{step}/{path}"] = w
    for path, w in zip(paths, model.get_weights()):
        out[f"train/final/{path}"] = np.asarray(w)       # the averages (EMA) after fit
    out["train/history_loss"] = np.array(history.history["loss"])
    out["train/qat_layers_registered"] = np.array(bool(qat.QuantizedConv))
    return out


def refusals(paths):
    """Each part that needs TensorFlow, called on this backend: ``(error class, message)``."""
    import mobilenet_tf
    from mobilenet_tf import training
    calls = {
        "tf.data input": lambda: __import__("mobilenet_tf.data", fromlist=["load_dataset"])
        .load_dataset("synthetic"),
        "TF-slim checkpoint": lambda: mobilenet_tf.MobileNetV1(
            (128, 128, 3), alpha=0.25, weights=paths["slim_checkpoint"]),
        "TFLite export": lambda: __import__("mobilenet_tf.export", fromlist=["export_model"])
        .export_model(os.path.join(paths["runs"], "float"), "/nonexistent/m.tflite"),
        "tf.distribute": lambda: mobilenet_tf.create_strategy("default"),
        "train": lambda: mobilenet_tf.train(mobilenet_tf.TrainConfig(dataset="synthetic")),
        "evaluate": lambda: training.evaluate(os.path.join(paths["runs"], "float")),
    }
    out = {}
    for what, call in calls.items():
        try:
            call()
            out[f"refusal/{what}"] = np.array(["no error", ""])
        except Exception as e:  # noqa: BLE001 - the test names the class it expects
            out[f"refusal/{what}"] = np.array([type(e).__name__, str(e)])
    return out


def run(in_dir):
    import keras
    in_dir = pathlib.Path(in_dir)
    paths = json.loads((in_dir / "paths.json").read_text())
    out = {"backend": np.array(keras.backend.backend())}
    out.update(builder_outputs())
    out.update(weights_outputs(in_dir, paths))
    out.update(api_outputs())
    out.update(training_outputs())
    if keras.backend.backend() != "tensorflow":
        out.update(refusals(paths))
    else:
        out.update(training_outputs(float64=True))
    out["tensorflow_imported"] = np.array(
        sorted(m for m, module in sys.modules.items()
               if module is not None and m.split(".")[0] in TENSORFLOW_MODULES), dtype=str)
    return out


def _flatten(out):
    flat = {}
    for key, value in out.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                flat[f"{key}/{inner}"] = v
        else:
            flat[key] = value
    return flat


def hide_tensorflow():
    """Makes ``import tensorflow`` fail in this process, as on a machine without TensorFlow
    (CI has it installed): what runs on every backend must not import it, and a refusal must
    come before any import of it. Keras' own checks (``tf.available``) then say False."""
    for name in TENSORFLOW_MODULES:
        sys.modules[name] = None


def skip_random_initialization():
    """Every weight the worker compares is set by :func:`fill_weights` or loaded from a file, so
    the builder's random initial values (TF-slim's truncated normal) are never used; on JAX
    each kernel shape costs an XLA compilation of the truncated normal (a tenth of a second,
    100+ shapes here), so they start as zeros."""
    import keras

    def zeros(self, shape, dtype=None):
        return np.zeros(shape, dtype=dtype or keras.config.floatx())
    keras.initializers.TruncatedNormal.__call__ = zeros


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        hide_tensorflow()
    skip_random_initialization()
    np.savez(sys.argv[2], **_flatten(run(sys.argv[1])))
