"""Loading Google's weights: Keras 2 .h5 files, TF-slim checkpoints, 'imagenet', own files.

Oracles: keras.applications.MobileNet loaded with the same .h5 file (the same outputs,
bit for bit, on the real images), the .h5 file's top-1 for the slim checkpoint made from
the same weights, the names and shapes in the index file of Google's real
mobilenet_v1_1.0_224.ckpt, and Google's 1001-line label file for the class names.
"""

import csv
import hashlib
import json
import os
import re
import shutil

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import mobilenet_tf
import numerics
from mobilenet_tf.model import architecture
from mobilenet_tf.model import imagenet
from mobilenet_tf.data import preprocessing
from mobilenet_tf.data import images
from mobilenet_tf.model import weight_names
from mobilenet_tf.model import weight_sources
from mobilenet_tf.model import weights

H5 = {(0.25, 128): "mobilenet_2_5_128_tf.h5", (0.75, 192): "mobilenet_7_5_192_tf.h5"}
SLIM_CKPT = "mobilenet_v1_0.25_128.ckpt"
OFFICIAL_INDEX_PREFIX = "official_mobilenet_v1_1.0_224.ckpt"


def _weights_file(shared_data, name):
    return str(shared_data / "weights" / name)


@pytest.fixture(scope="module")
def imagenet50(shared_data):
    """(decoded uint8 images, their 0..999 labels, file names) of the 50 real images."""
    folder = shared_data / "imagenet50"
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    pictures = [images.load_image(str(folder / r["file"])) for r in rows]
    return pictures, np.array([int(r["class_index"]) for r in rows]), [r["file"] for r in rows]


def _inputs(pictures, size):
    return np.stack([np.asarray(preprocessing.prepare_image(p, size)) for p in pictures])


@pytest.fixture(scope="module")
def model_025_h5(shared_data):
    return mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3),
                                    weights=_weights_file(shared_data, H5[(0.25, 128)]))


# --- Keras 2 .h5 files vs keras.applications ---------------------------------------------------
@pytest.mark.parametrize("alpha,size", sorted(H5))
def test_h5_outputs_equal_keras_applications(shared_data, imagenet50, alpha, size):
    path = _weights_file(shared_data, H5[(alpha, size)])
    ours = mobilenet_tf.MobileNetV1(alpha=alpha, input_shape=(size, size, 3), weights=path)
    reference = keras.applications.MobileNet(alpha=alpha, input_shape=(size, size, 3),
                                             weights=path)
    x = _inputs(imagenet50[0], size)
    # The same operations on the same shapes in the same order: the same floats.
    np.testing.assert_array_equal(np.asarray(ours(x, training=False)),
                                  np.asarray(reference(x, training=False)))
    # Feature maps too (include_top=False gets everything but the head from the same file).
    features = mobilenet_tf.MobileNetV1(alpha=alpha, input_shape=(size, size, 3),
                                        include_top=False, weights=path)
    reference_features = keras.Model(reference.input, reference.get_layer("conv_pw_13_relu").output)
    np.testing.assert_array_equal(np.asarray(features(x[:8])),
                                  np.asarray(reference_features(x[:8])))


def test_h5_accuracy_on_imagenet50_is_the_published_reference(model_025_h5, imagenet50):
    # shared/data/README.md: keras.applications with these weights gets 22 of 50 top-1.
    pictures, labels, _ = imagenet50
    probs = np.asarray(model_025_h5(_inputs(pictures, 128), training=False))
    assert int((probs.argmax(1) == labels).sum()) == 22


def test_include_top_false_reports_the_unused_head(shared_data, capsys):
    path = _weights_file(shared_data, H5[(0.25, 128)])
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False,
                                     pooling="avg")
    report = weights.load_weights(model, path)
    assert report.unused == ["conv_preds/bias:0", "conv_preds/kernel:0"]
    assert report.loaded == 135
    assert re.search(r"Not used: 2 variables of the source \(conv_preds/bias:0, conv_preds/kernel:0\)",
                     capsys.readouterr().out)


# --- TF-slim checkpoints -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def slim_models(shared_data):
    prefix = _weights_file(shared_data, SLIM_CKPT)
    built = {}
    for classes, choice in ((1001, "auto"), (1000, "average"), (1001, "raw")):
        built[(classes, choice)] = mobilenet_tf.MobileNetV1(
            alpha=0.25, input_shape=(128, 128, 3), classes=classes, weights=prefix,
            checkpoint_weights=choice)
    return built


def test_slim_checkpoint_top1_equals_h5_on_every_image(slim_models, model_025_h5, imagenet50):
    x = _inputs(imagenet50[0], 128)
    h5_top1 = np.asarray(model_025_h5(x, training=False)).argmax(1)
    slim_1001 = np.asarray(slim_models[(1001, "auto")](x, training=False))
    slim_1000 = np.asarray(slim_models[(1000, "average")](x, training=False))
    np.testing.assert_array_equal(slim_1001.argmax(1) - 1, h5_top1)   # class i is i + 1 in slim
    np.testing.assert_array_equal(slim_1000.argmax(1), h5_top1)       # background row dropped
    # Dropping the background row is slicing the logits: the same 256-term sums per class (in
    # a kernel blocked for 1000 rather than 1001 outputs), so logits within 2·256·u of their
    # scale and probabilities within twice that (tests/numerics.py).
    logits = np.asarray(keras.Model(slim_models[(1001, "auto")].input,
                                    slim_models[(1001, "auto")].get_layer("SpatialSqueeze").output)(
        x[:4]))
    bound = 2 * 2 * 256 * numerics.U32 * np.abs(logits).max()
    np.testing.assert_allclose(slim_1000[:4], tf.nn.softmax(logits[:, 1:]), rtol=0, atol=bound)


def test_slim_raw_weights_are_not_the_averages(slim_models, imagenet50):
    x = _inputs(imagenet50[0], 128)
    averaged = np.asarray(slim_models[(1001, "auto")](x, training=False))
    raw = np.asarray(slim_models[(1001, "raw")](x, training=False))
    # The same operations: any difference at all is other weights.
    assert not np.array_equal(averaged, raw)


def test_slim_raw_and_average_load_the_named_tensors(shared_data, slim_models):
    reader = tf.train.load_checkpoint(_weights_file(shared_data, SLIM_CKPT))
    name = "MobilenetV1/Conv2d_3_pointwise/weights"
    np.testing.assert_array_equal(slim_models[(1001, "raw")].get_layer("Conv2d_3_pointwise").kernel,
                                  reader.get_tensor(name))
    np.testing.assert_array_equal(slim_models[(1001, "auto")].get_layer("Conv2d_3_pointwise").kernel,
                                  reader.get_tensor(name + "/ExponentialMovingAverage"))
    np.testing.assert_array_equal(slim_models[(1000, "average")].get_layer("Logits").bias,
                                  reader.get_tensor("MobilenetV1/Logits/Conv2d_1c_1x1/biases/"
                                                    "ExponentialMovingAverage")[1:])


def test_slim_loading_says_which_weights_it_used(shared_data, capsys):
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False)
    prefix = _weights_file(shared_data, SLIM_CKPT)
    report = weights.load_weights(model, prefix)
    out = capsys.readouterr().out
    assert report.checkpoint_weights == "average"
    assert re.search(r"Loaded 135 variables from .*mobilenet_v1_0\.25_128\.ckpt "
                     r"\(checkpoint_weights='average': the ExponentialMovingAverage shadows\)\.", out)
    assert re.search(r"Ignored by design: 137 raw values \(averages used\), 166 optimizer slots, "
                     r"1 global_step, 2 loss averages\.", out)
    assert re.search(r"Not used: 2 variables .*MobilenetV1/Logits/Conv2d_1c_1x1/biases/"
                     r"ExponentialMovingAverage", out)
    weights.load_weights(model, prefix, checkpoint_weights="raw")
    assert re.search(r"checkpoint_weights='raw': the raw variables.*\n.*Ignored by design: 137 "
                     r"moving averages \(raw values used\)", capsys.readouterr().out)


def test_slim_names_for_alpha_1_are_exactly_googles(shared_data):
    """Mapping of a 1.0/224 model == the real checkpoint's 137 model variables, shapes too.

    Of the 443 names in Google's mobilenet_v1_1.0_224.ckpt: 137 model variables (27 kernels,
    27 x 4 batch norm, logits weights and biases), their 137 ExponentialMovingAverage shadows,
    166 RMSProp slots (2 per trained variable), global_step and 2 loss averages."""
    prefix = _weights_file(shared_data, OFFICIAL_INDEX_PREFIX)
    listed = dict((name, tuple(shape)) for name, shape in tf.train.list_variables(prefix))
    assert len(listed) == 443
    kinds = {name: weight_names.classify_checkpoint_variable(name, listed) for name in listed}
    counts = {k: list(kinds.values()).count(k) for k in set(kinds.values())}
    assert counts == {"model": 137, "average": 137, "slot": 166, "global_step": 1,
                      "other_average": 2}
    model = mobilenet_tf.MobileNetV1(alpha=1.0, input_shape=(224, 224, 3), classes=1001)
    expected = weight_names.slim_model_variables(model)
    real = {name: shape for name, shape in listed.items() if kinds[name] == "model"}
    assert sorted(set(expected) - set(real)) == []   # none the checkpoint lacks
    assert sorted(set(real) - set(expected)) == []   # none the mapping leaves out
    assert expected == real                          # and the same shapes
    assert {n for n, k in kinds.items() if k == "average"} == {
        n + "/ExponentialMovingAverage" for n in real}
    assert {n for n, k in kinds.items() if k == "other_average"} == {
        "total_loss/ExponentialMovingAverage",
        "softmax_cross_entropy_loss/value/ExponentialMovingAverage"}


def test_shared_slim_checkpoint_has_googles_names(shared_data):
    ours = {n for n, _ in tf.train.list_variables(_weights_file(shared_data, SLIM_CKPT))}
    google = {n for n, _ in tf.train.list_variables(_weights_file(shared_data,
                                                                  OFFICIAL_INDEX_PREFIX))}
    assert ours == google


# --- weights="imagenet": the Keras cache and the real download code ----------------------------
def test_imagenet_file_names():
    assert weight_sources.imagenet_file_name(0.75, 192) == "mobilenet_7_5_192_tf.h5"
    assert weight_sources.imagenet_file_name(1.0, 224, include_top=False) == "mobilenet_1_0_224_tf_no_top.h5"
    assert weight_sources.imagenet_file_name(0.5, 160) == "mobilenet_5_0_160_tf.h5"
    assert weight_sources.BASE_WEIGHT_PATH == \
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"


def test_imagenet_from_prefilled_keras_cache(shared_data, model_025_h5, imagenet50, tmp_path,
                                             monkeypatch):
    (tmp_path / "models").mkdir()
    shutil.copy(_weights_file(shared_data, H5[(0.25, 128)]),
                tmp_path / "models" / "mobilenet_2_5_128_tf.h5")
    monkeypatch.setattr(weight_sources, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(weight_sources, "BASE_WEIGHT_PATH", "http://unreachable.invalid/mobilenet/")
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), weights="imagenet")
    x = _inputs(imagenet50[0][:8], 128)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model_025_h5(x)))
    # Fine-tuning: into a built model with a new 2-class head, everything but the head.
    two_classes = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=2)
    report = mobilenet_tf.load_weights(two_classes, "imagenet", skip_mismatched_head=True)
    assert report.loaded == 135 and report.source.endswith("models/mobilenet_2_5_128_tf.h5")
    np.testing.assert_array_equal(two_classes.get_layer("Conv2d_9_depthwise").kernel,
                                  model_025_h5.get_layer("Conv2d_9_depthwise").kernel)


def test_imagenet_for_an_input_of_unknown_size_is_the_224_file_as_keras(monkeypatch):
    """keras.applications.MobileNet(weights="imagenet", include_top=False) without input_shape
    builds an input of any size and loads the 224 file (rows is None: 'not in [128, 160, 192,
    224]'); so does this. Keras is the oracle: its get_file call is caught, nothing downloaded."""
    from keras.src.applications import mobilenet as keras_mobilenet
    asked = []

    def catch(fname, origin, **kwargs):
        asked.append(fname)
        raise InterruptedError("caught")
    monkeypatch.setattr(keras_mobilenet.file_utils, "get_file", catch)
    with pytest.warns(UserWarning, match=r"Weights for input shape \(224, 224\) will be loaded"), \
            pytest.raises(InterruptedError):
        keras.applications.MobileNet(weights="imagenet", alpha=0.25, include_top=False)
    assert asked == ["mobilenet_2_5_224_tf_no_top.h5"]
    for shape in [(None, None, 3), (None, 128, 3), (160, None, 3)]:
        source = weight_sources.check_weights("imagenet", alpha=0.25, input_shape=shape,
                                              include_top=False)
        assert source.path == "mobilenet_2_5_224_tf_no_top.h5"


def test_imagenet_into_an_any_size_model_from_prefilled_keras_cache(shared_data, model_025_h5,
                                                                    imagenet50, tmp_path,
                                                                    monkeypatch, capsys):
    # Every Google file has the same variable shapes: the 128 file without its head stands in
    # for the 224 _no_top one.
    (tmp_path / "models").mkdir()
    with h5py.File(_weights_file(shared_data, H5[(0.25, 128)]), "r") as f, \
            h5py.File(tmp_path / "models" / "mobilenet_2_5_224_tf_no_top.h5", "w") as g:
        for key, value in f.attrs.items():
            g.attrs[key] = value
        kept = [n for n in f.attrs["layer_names"] if n != "conv_preds"]
        g.attrs["layer_names"] = kept
        for name in kept:
            f.copy(f[name], g, name=name)
    monkeypatch.setattr(weight_sources, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(weight_sources, "BASE_WEIGHT_PATH", "http://unreachable.invalid/mobilenet/")
    model = mobilenet_tf.MobileNetV1(alpha=0.25, include_top=False, weights="imagenet")
    assert model.input_shape == (None, None, None, 3)
    out = capsys.readouterr().out
    assert "Loaded 135 variables from " + str(tmp_path / "models" / "mobilenet_2_5_224_tf_no_top.h5") in out
    assert ("weights='imagenet' for an input of unknown size: mobilenet_2_5_224_tf_no_top.h5 "
            "(trained at 224x224), as keras.applications.") in out
    np.testing.assert_array_equal(model.get_layer("Conv2d_13_pointwise").kernel,
                                  model_025_h5.get_layer("Conv2d_13_pointwise").kernel)
    # load_weights into a built any-size model picks the same file.
    built = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(None, None, 3), include_top=False)
    report = mobilenet_tf.load_weights(built, "imagenet", verbose=False)
    assert report.source.endswith("models/mobilenet_2_5_224_tf_no_top.h5") and report.loaded == 135
    assert report.notes == ["weights='imagenet' for an input of unknown size: "
                            "mobilenet_2_5_224_tf_no_top.h5 (trained at 224x224), as "
                            "keras.applications."]
    x = _inputs(imagenet50[0][:4], 128)
    reference = keras.Model(model_025_h5.input, model_025_h5.get_layer("Conv2d_13_pointwise_Relu6").output)
    # Same weights, same layers; the any-size model uses 'same' where the 128 one pads
    # explicitly: float32 rounding through the network (tests/numerics.py) on ReLU6 outputs.
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(reference(x)), rtol=0,
                               atol=numerics.float32_bound(reference, 6.0))


def test_imagenet_downloads_with_keras_get_file(shared_data, tmp_path, monkeypatch):
    # A file:// origin runs the real download code (keras.utils.get_file) without a network.
    monkeypatch.setattr(weight_sources, "BASE_WEIGHT_PATH", (shared_data / "weights").as_uri() + "/")
    path = weight_sources.imagenet_weights_path(0.75, 192, cache_dir=str(tmp_path))
    assert path == str(tmp_path / "models" / "mobilenet_7_5_192_tf.h5")
    with open(path, "rb") as a, open(_weights_file(shared_data, H5[(0.75, 192)]), "rb") as b:
        assert a.read() == b.read()
    # include_top=False asks for the _no_top file (not in shared/data: the download fails).
    with pytest.raises(weights.WeightsError,
                       match=r"^weights='imagenet': cannot download file://.*/"
                             r"mobilenet_7_5_192_tf_no_top\.h5 \(.*\); download it by hand"):
        weight_sources.imagenet_weights_path(0.75, 192, include_top=False, cache_dir=str(tmp_path))


# --- errors, each before any layer is built where the value alone is wrong ---------------------
@pytest.fixture
def no_building(monkeypatch):
    """Makes building a layer plan fail loudly, to prove an error came before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("a layer was built before the weights argument was checked")
    monkeypatch.setattr(architecture, "plan", refuse)


PAIRS = r"0\.25/128, 0\.25/160, 0\.25/192, 0\.25/224, 0\.5/128, .*, 1/224"


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(alpha=0.3, input_shape=(128, 128, 3)),
     rf"^weights='imagenet' exist only for alpha/image size {PAIRS} \(square inputs\)\. "
     r"Received: alpha=0\.3, image_size=128$"),
    (dict(alpha=0.25, input_shape=(150, 150, 3)),
     r"^weights='imagenet' exist only .*Received: alpha=0\.25, image_size=150$"),
    (dict(alpha=0.25, input_shape=(128, 160, 3)),
     r"^weights='imagenet' exist only .*\(square inputs\)\. Received: alpha=0\.25, "
     r"input_shape=\(128, 160, 3\)$"),
    (dict(alpha=0.25, input_shape=(128, 128, 3), classes=10),
     r"^weights='imagenet' with include_top=True need classes=1000; .*skip_mismatched_head=True"
     r"\)\. Received: classes=10$"),
    (dict(alpha=0.25, input_shape=(128, 128, 3), depth_multiplier=2),
     r"^weights='imagenet' need depth_multiplier=1\. Received: depth_multiplier=2$"),
    (dict(alpha=0.25, input_shape=(128, 128, 3), conv_defs="shallow_mobilenet"),
     r"^weights='imagenet' exist for the standard MobileNetV1 table only"),
])
def test_imagenet_errors_before_building(no_building, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        mobilenet_tf.MobileNetV1(weights="imagenet", **kwargs)


def test_bad_weights_values_fail_before_building(no_building, tmp_path):
    with pytest.raises(ValueError, match=r"^`weights` must be None, 'imagenet', a \.h5/\.keras/"
                                         r"\.weights\.h5 file or a TF checkpoint prefix; there is "
                                         r"no such file or checkpoint prefix\. Received: "
                                         r"weights='.*/missing\.ckpt'$"):
        mobilenet_tf.MobileNetV1(weights=str(tmp_path / "missing.ckpt"))
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    with pytest.raises(ValueError, match=r"^weights: .*/notes\.h5 is not a Keras "
                                         r"\.h5/\.keras/\.weights\.h5 file or a TF checkpoint"):
        mobilenet_tf.MobileNetV1(weights=str(text))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"^weights: .*/other\.h5 is an HDF5 file but not a "
                                         r"Keras weights file$"):
        mobilenet_tf.MobileNetV1(weights=str(tmp_path / "other.h5"))
    with pytest.raises(ValueError, match=r"^weights: .* is a directory without a TF checkpoint"):
        mobilenet_tf.MobileNetV1(weights=str(tmp_path))
    with pytest.raises(ValueError, match=r"^`weights` must be None, 'imagenet' or the path .*"
                                         r"Received: weights=3$"):
        mobilenet_tf.MobileNetV1(weights=3)
    with pytest.raises(ValueError, match=r"^`checkpoint_weights` must be one of \('auto', "
                                         r"'average', 'raw'\)\. Received: checkpoint_weights='ema'$"):
        mobilenet_tf.MobileNetV1(weights=None, checkpoint_weights="ema")


def test_wrong_alpha_names_the_variable_and_both_shapes(shared_data):
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: conv1/kernel:0 has shape \(3, 3, 3, 8\) in .*"
                             r"mobilenet_2_5_128_tf\.h5 but the model's Conv2d_0/kernel has "
                             r"shape \(3, 3, 3, 16\)$"):
        mobilenet_tf.MobileNetV1(alpha=0.5, input_shape=(128, 128, 3),
                                 weights=_weights_file(shared_data, H5[(0.25, 128)]))
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: MobilenetV1/Conv2d_0/weights/ExponentialMovingAverage has "
                             r"shape \(3, 3, 3, 8\) in .*ckpt but the model's Conv2d_0/kernel has "
                             r"shape \(3, 3, 3, 24\)$"):
        mobilenet_tf.MobileNetV1(alpha=0.75, input_shape=(128, 128, 3), classes=1001,
                                 weights=_weights_file(shared_data, SLIM_CKPT))


def test_wrong_class_count_and_skip_mismatched_head(shared_data, model_025_h5):
    path = _weights_file(shared_data, H5[(0.25, 128)])
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: conv_preds/bias:0 has shape \(1000,\) in .*"
                             r"mobilenet_2_5_128_tf\.h5 but the model's Logits/bias has shape "
                             r"\(10,\): build with classes=1000 or pass skip_mismatched_head=True$"):
        mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=10, weights=path)
    # A 1000-class head cannot become TF-slim's 1001 (no background row to invent).
    with pytest.raises(weights.WeightsError, match=r"has shape \(1000,\) .* Logits/bias has shape "
                                                   r"\(1001,\)"):
        mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=1001, weights=path)
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=10)
    head_before = np.array(model.get_layer("Logits").kernel)
    report = weights.load_weights(model, path, skip_mismatched_head=True, verbose=False)
    assert report.loaded == 135
    assert "Head not loaded: the source has 1000 classes, the model 10." in report.notes
    np.testing.assert_array_equal(model.get_layer("Logits").kernel, head_before)
    for name in ("Conv2d_0", "Conv2d_13_pointwise", "Conv2d_13_pointwise_BatchNorm"):
        for ours, theirs in zip(model.get_layer(name).weights,
                                model_025_h5.get_layer(name).weights):
            np.testing.assert_array_equal(ours, theirs)


def _write_checkpoint(prefix, tensors):
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(tensors),
                      shape_and_slices=[""] * len(tensors),
                      tensors=[tf.constant(v) for v in tensors.values()])


def test_missing_variable_and_missing_averages(shared_data, tmp_path, capsys):
    reader = tf.train.load_checkpoint(_weights_file(shared_data, SLIM_CKPT))
    names = reader.get_variable_to_shape_map()
    raw = {n: reader.get_tensor(n) for n in names
           if weight_names.classify_checkpoint_variable(n, names) == "model"}
    # Only raw variables (a checkpoint written without moving averages): "auto" takes them.
    _write_checkpoint(str(tmp_path / "raw.ckpt"), raw)
    model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), classes=1001,
                                     weights=str(tmp_path / "raw.ckpt"))
    assert re.search(r"checkpoint_weights='raw'", capsys.readouterr().out)
    np.testing.assert_array_equal(model.get_layer("Conv2d_5_depthwise").kernel,
                                  raw["MobilenetV1/Conv2d_5_depthwise/depthwise_weights"])
    with pytest.raises(weights.WeightsError,
                       match=r"^checkpoint_weights='average' but .*raw\.ckpt has no MobilenetV1/"
                             r".*/ExponentialMovingAverage; use checkpoint_weights='raw'$"):
        weights.load_weights(model, str(tmp_path / "raw.ckpt"), checkpoint_weights="average")
    del raw["MobilenetV1/Conv2d_13_pointwise/BatchNorm/moving_variance"]
    _write_checkpoint(str(tmp_path / "partial.ckpt"), raw)
    before = np.array(model.get_layer("Conv2d_0").kernel)
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: .*partial\.ckpt has no variable for the model's "
                             r"Conv2d_13_pointwise_BatchNorm/moving_variance \(looked for "
                             r"MobilenetV1/Conv2d_13_pointwise/BatchNorm/moving_variance, "
                             r"shape \(256,\)\)$"):
        weights.load_weights(model, str(tmp_path / "partial.ckpt"))
    np.testing.assert_array_equal(model.get_layer("Conv2d_0").kernel, before)  # nothing assigned


# --- the project's own files -------------------------------------------------------------------
def test_own_keras_and_weights_h5_round_trip(model_025_h5, imagenet50, tmp_path):
    x = _inputs(imagenet50[0][:8], 128)
    expected = np.asarray(model_025_h5(x))
    model_025_h5.save(tmp_path / "m.keras")
    model_025_h5.save_weights(tmp_path / "m.weights.h5")
    for name in ("m.keras", "m.weights.h5"):
        model = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3),
                                         weights=str(tmp_path / name))
        np.testing.assert_array_equal(np.asarray(model(x)), expected)
    # Everything but the head into a headless model, and a headless file into a model with a head.
    body = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False,
                                    weights=str(tmp_path / "m.weights.h5"))
    np.testing.assert_array_equal(body.get_layer("Conv2d_13_pointwise").kernel,
                                  model_025_h5.get_layer("Conv2d_13_pointwise").kernel)
    body.save_weights(tmp_path / "body.weights.h5")
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: .*body\.weights\.h5 has no classifier head but the model "
                             r"has one \(1000 classes\): build with include_top=False or pass "
                             r"skip_mismatched_head=True$"):
        mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3),
                                 weights=str(tmp_path / "body.weights.h5"))


def test_load_weights_into_a_fine_tuning_wrapper(shared_data, model_025_h5):
    base = mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False,
                                    pooling="avg")
    inputs = keras.Input((128, 128, 3))
    wrapper = keras.Model(inputs, keras.layers.Dense(2)(base(inputs)))
    report = mobilenet_tf.load_weights(wrapper, _weights_file(shared_data, SLIM_CKPT),
                                       verbose=False)
    assert report.loaded == 135
    reader = tf.train.load_checkpoint(_weights_file(shared_data, SLIM_CKPT))
    np.testing.assert_array_equal(
        base.get_layer("Conv2d_7_pointwise_BatchNorm").beta,
        reader.get_tensor("MobilenetV1/Conv2d_7_pointwise/BatchNorm/beta/ExponentialMovingAverage"))


# --- labels ------------------------------------------------------------------------------------
def test_class_names_are_googles_labels(shared_data):
    with open(shared_data / "tflite" / "imagenet_labels.txt") as f:
        google = [line.rstrip("\n") for line in f]
    assert google[0] == "background"
    assert list(imagenet.class_names()) == google[1:]


def test_wordnet_ids_match_imagenet50_class_indices(shared_data):
    with open(shared_data / "imagenet50" / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            assert imagenet.class_index(row["synset"]) == int(row["class_index"])
    ids = imagenet.wordnet_ids()
    assert len(ids) == 1000 and list(ids) == sorted(ids) and len(set(ids)) == 1000


def test_decode_predictions_for_1000_and_1001_heads():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, 207], preds[0, 0], preds[1, 999] = 0.7, 0.2, 0.9
    decoded = mobilenet_tf.decode_predictions(preds, top=2)
    assert decoded[0] == [("n02099601", "golden_retriever", pytest.approx(0.7, rel=numerics.U32)),
                          ("n01440764", "tench", pytest.approx(0.2, rel=numerics.U32))]
    assert decoded[1][0][:2] == ("n15075141", "toilet_tissue")
    slim = np.zeros((1, 1001), np.float32)
    slim[0, 0], slim[0, 208] = 0.6, 0.3
    assert mobilenet_tf.decode_predictions(slim, top=2)[0] == [
        ("background", "background", pytest.approx(0.6, rel=numerics.U32)),
        ("n02099601", "golden_retriever", pytest.approx(0.3, rel=numerics.U32))]
    with pytest.raises(ValueError, match=r"^ImageNet predictions need a head of 1000 or 1001 .*"
                                         r"Received: classes=10$"):
        mobilenet_tf.decode_predictions(np.zeros((1, 10)))
    with pytest.raises(ValueError, match=r"^`decode_predictions` expects a batch .* Received: "
                                         r"preds\.shape=\(1000,\)$"):
        mobilenet_tf.decode_predictions(np.zeros(1000))
    with pytest.raises(ValueError, match=r"^`top` must be an int in \[1, 1000\]\. Received: top=0$"):
        mobilenet_tf.decode_predictions(preds, top=0)
    with pytest.raises(ValueError, match=r"^'n99999999' is not one of the 1000 ImageNet WordNet ids"):
        imagenet.class_index("n99999999")


def test_preprocess_input_scales_to_minus_one_one():
    x = np.array([[0, 127.5, 255]], np.float32)
    np.testing.assert_allclose(mobilenet_tf.preprocess_input(x), [[-1, 0, 1]])
    np.testing.assert_allclose(mobilenet_tf.preprocess_input(tf.constant([0, 255], tf.uint8)),
                               [-1, 1])
    image = np.full((7, 9, 3), 255, np.uint8)
    prepared = preprocessing.prepare_image(image, 32)
    assert prepared.shape == (32, 32, 3)
    np.testing.assert_allclose(prepared, 1.0)
    with pytest.raises(ValueError, match=r"^`preprocessing` must be one of \('resize', "
                                         r"'central_crop'\)\. Received: preprocessing='crop'$"):
        preprocessing.prepare_image(image, 32, "crop")


@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
def test_preprocess_input_takes_keras_data_format(data_format):
    """keras.applications.mobilenet.preprocess_input(x, data_format) is the oracle: the same
    scaling (x / 127.5 - 1, elementwise) whatever the layout."""
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 5, 4)).astype(np.float32)
    expected = keras.applications.mobilenet.preprocess_input(x.copy(), data_format=data_format)
    np.testing.assert_array_equal(mobilenet_tf.preprocess_input(x, data_format=data_format),
                                  expected)
    np.testing.assert_array_equal(mobilenet_tf.preprocess_input(x, data_format), expected)
    np.testing.assert_array_equal(
        mobilenet_tf.preprocess_input(tf.constant(x), data_format=data_format), expected)


@pytest.mark.parametrize("data_format", ["channels_middle", "NHWC", ""])
def test_preprocess_input_refuses_another_data_format_as_keras(data_format):
    with pytest.raises(ValueError, match="Received: data_format="):
        keras.applications.mobilenet.preprocess_input(np.zeros((1, 2, 2, 3)), data_format=data_format)
    with pytest.raises(ValueError) as info:
        mobilenet_tf.preprocess_input(np.zeros((1, 2, 2, 3)), data_format=data_format)
    assert str(info.value) == ("`data_format` must be None, 'channels_last' or 'channels_first'. "
                               f"Received: data_format={data_format!r}")


def _keras_class_index_json(ids, names):
    """imagenet_class_index.json as Keras' file is written: json.dumps of
    {"0": [wordnet id, name], ...} with json's default separators, no newline at the end."""
    return json.dumps({str(i): [wnid, name] for i, (wnid, name) in enumerate(zip(ids, names))})


def test_decode_predictions_names_are_keras_own(tmp_path, monkeypatch):
    """All 1000 (wordnet id, name) pairs against Keras' own imagenet_class_index.json, read by
    Keras' own loader, keras.applications.imagenet_utils.decode_predictions.

    That file cannot be downloaded here or in CI, and no package ships it. But Keras pins its
    MD5 (``get_file(..., file_hash=...)``) and uses a file in its cache only when the hash
    matches. So the test writes the file Keras' layout gives for our pairs (json.dumps of
    {"0": [id, name], ...}) into a Keras cache and lets Keras load it, the download address
    made unreachable: it is read only if it is Keras' file to the byte, and then Keras' answers
    on one-hot rows must be ours. A copy of Keras' file in the real Keras cache (~/.keras/models
    or $KERAS_HOME/models), if there is one, is read through the same loader as well."""
    import keras.src.applications.imagenet_utils as keras_imagenet_utils
    from keras.src.backend.config import keras_home
    real_get_file = keras_imagenet_utils.file_utils.get_file
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "imagenet_class_index.json").write_text(
        _keras_class_index_json(imagenet.wordnet_ids(), imagenet.keras_class_names()))
    caches = [str(tmp_path)]
    if os.path.isfile(os.path.join(keras_home(), "models", "imagenet_class_index.json")):
        caches.append(keras_home())

    def get_file_from(cache):
        def get_file(fname, origin, **kwargs):
            # Keras' check, said first: with another file Keras would try to download its own.
            with open(os.path.join(cache, kwargs["cache_subdir"], fname), "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            assert md5 == kwargs["file_hash"], (
                f"{fname} in {cache} is not Keras' file (MD5 {md5}, Keras pins "
                f"{kwargs['file_hash']}): a name or id differs from Keras'")
            return real_get_file(fname, origin, cache_dir=cache, **kwargs)
        return get_file

    one_hot = np.eye(1000, dtype=np.float32)
    ours = [row[0][:2] for row in imagenet.decode_predictions(one_hot, top=1)]
    for cache in caches:
        monkeypatch.setattr(keras_imagenet_utils, "CLASS_INDEX", None)
        monkeypatch.setattr(keras_imagenet_utils, "CLASS_INDEX_PATH",
                            "http://unreachable.invalid/imagenet_class_index.json")
        monkeypatch.setattr(keras_imagenet_utils.file_utils, "get_file", get_file_from(cache))
        theirs = keras.applications.imagenet_utils.decode_predictions(one_hot, top=1)
        assert [tuple(row[0][:2]) for row in theirs] == ours
    assert ours[101] == ("n01871265", "tusker") and len(set(ours)) == 1000


def test_decode_predictions_names_keras_documents():
    """Keras' documentation (keras.io/api/applications, "Classify ImageNet classes with
    ResNet50") prints decode_predictions(preds, top=3)[0] for an elephant photo as
    [('n02504013', 'Indian_elephant', 0.82658225), ('n01871265', 'tusker', 0.1122357),
    ('n02504458', 'African_elephant', 0.061040461)]. Independent of any file layout."""
    preds = np.zeros((1, 1000), np.float32)
    for wnid, p in [("n02504013", 0.82658225), ("n01871265", 0.1122357),
                    ("n02504458", 0.061040461)]:
        preds[0, imagenet.class_index(wnid)] = p
    assert [r[:2] for r in imagenet.decode_predictions(preds, top=3)[0]] == [
        ("n02504013", "Indian_elephant"), ("n01871265", "tusker"),
        ("n02504458", "African_elephant")]
    # The rule: Keras' name is the first WordNet lemma with '_' for ' ' (414 classes differ
    # from the lemma as written; Keras' file shares two names, crane and maillot, as WordNet).
    lemmas = [name.split(",")[0] for name in imagenet.class_names()]
    assert list(imagenet.keras_class_names()) == [lemma.replace(" ", "_") for lemma in lemmas]
    assert sum(k != lemma for k, lemma in zip(imagenet.keras_class_names(), lemmas)) == 414
    assert len(set(imagenet.keras_class_names())) == 998


def test_class_data_file_ships_in_the_package():
    assert os.path.isfile(os.path.join(os.path.dirname(imagenet.__file__),
                                       "imagenet_classes.tsv"))


def test_keras2_file_missing_a_layer(shared_data, tmp_path):
    partial = tmp_path / "partial.h5"
    with h5py.File(_weights_file(shared_data, H5[(0.25, 128)]), "r") as f, \
            h5py.File(partial, "w") as g:
        for key, value in f.attrs.items():
            g.attrs[key] = value
        kept = [n for n in f.attrs["layer_names"] if n != "conv_pw_13"]
        g.attrs["layer_names"] = kept
        for name in kept:
            f.copy(f[name], g, name=name)
    with pytest.raises(weights.WeightsError,
                       match=r"^weights: .*partial\.h5 has no variable for the model's "
                             r"Conv2d_13_pointwise/kernel \(looked for Conv2d_13_pointwise/kernel "
                             r"or conv_pw_13/kernel, shape \(1, 1, 256, 256\)\)$"):
        mobilenet_tf.MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), weights=str(partial))
