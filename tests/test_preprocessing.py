"""Inception preprocessing (TF-slim's, for MobileNet): shapes, dtype, range, determinism, oracles."""

import numpy as np
import pytest
import tensorflow as tf

from mobilenet_tf import preprocessing


def _image(h=90, w=120, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(128, 128), (96, 160)])
def test_train_output_shape_dtype_range(size):
    image = _image()
    for seed in range(5):
        tf.random.set_seed(seed)
        out = preprocessing.preprocess_for_train(image, *size)
        assert out.shape == (*size, 3)
        assert out.dtype == tf.float32
        assert float(tf.reduce_min(out)) >= -1.0 and float(tf.reduce_max(out)) <= 1.0


def test_train_output_is_random():
    image = _image()
    tf.random.set_seed(1)
    a = preprocessing.preprocess_for_train(image, 64, 64)
    b = preprocessing.preprocess_for_train(image, 64, 64)
    assert not np.allclose(a.numpy(), b.numpy())


def test_eval_shape_range_and_determinism():
    image = _image()
    a = preprocessing.preprocess_for_eval(image, 128, 128)
    b = preprocessing.preprocess_for_eval(image, 128, 128)
    assert a.shape == (128, 128, 3) and a.dtype == tf.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(tf.reduce_min(a)) >= -1.0 and float(tf.reduce_max(a)) <= 1.0


def test_eval_is_central_crop_0875_then_bilinear_resize():
    image = _image(80, 80)
    # 0.875 of 80 is 70: tf.image.central_crop keeps rows/cols 5..74.
    crop = tf.image.convert_image_dtype(image, tf.float32)[5:75, 5:75]
    expected = (tf.image.resize(crop, [64, 64], method="bilinear") - 0.5) * 2
    out = preprocessing.preprocess_for_eval(image, 64, 64)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)


def test_scaling_maps_0_and_255_to_minus_one_and_one():
    black = tf.zeros((40, 40, 3), tf.uint8)
    white = tf.fill((40, 40, 3), tf.constant(255, tf.uint8))
    np.testing.assert_allclose(preprocessing.preprocess_for_eval(black, 32, 32).numpy(), -1.0)
    np.testing.assert_allclose(preprocessing.preprocess_for_eval(white, 32, 32).numpy(), 1.0)


def test_full_area_crop_without_colour_is_the_resized_image_or_its_mirror():
    """min_crop_area=1 and aspect ratio of the image inside 0.75..1.33: the crop is the whole image."""
    image = _image(64, 64)
    whole = preprocessing.preprocess_for_eval(image, 32, 32, central_fraction=None).numpy()
    for seed in range(6):
        tf.random.set_seed(seed)
        out = preprocessing.preprocess_for_train(image, 32, 32, min_crop_area=1.0,
                                                 color_distortion=False).numpy()
        assert np.allclose(out, whole, atol=1e-5) or np.allclose(out, whole[:, ::-1], atol=1e-5)


def test_small_min_crop_area_gives_zoomed_crops():
    """With area down to 0.05 some crops are small: the output differs from the whole image."""
    image = _image(64, 64)
    whole = preprocessing.preprocess_for_eval(image, 32, 32, central_fraction=None).numpy()
    tf.random.set_seed(0)
    outs = [preprocessing.preprocess_for_train(image, 32, 32, min_crop_area=0.05,
                                               color_distortion=False).numpy() for _ in range(10)]
    assert sum(not (np.allclose(o, whole, atol=1e-5) or np.allclose(o, whole[:, ::-1], atol=1e-5))
               for o in outs) >= 5


def test_float_input_in_unit_range_is_accepted():
    image = tf.image.convert_image_dtype(_image(), tf.float32)
    np.testing.assert_allclose(preprocessing.preprocess_for_eval(image, 48, 48).numpy(),
                               preprocessing.preprocess_for_eval(_image(), 48, 48).numpy(), atol=1e-6)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"min_crop_area": 0.0}, r"`min_crop_area` must be in \(0, 1\]\. Received: min_crop_area=0\.0"),
    ({"min_crop_area": 1.5}, r"`min_crop_area` must be in \(0, 1\]\. Received: min_crop_area=1\.5"),
])
def test_train_argument_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        preprocessing.preprocess_for_train(_image(), 32, 32, **kwargs)


def test_eval_argument_errors():
    with pytest.raises(ValueError, match=r"`central_fraction` must be in \(0, 1\] or None\. "
                                         r"Received: central_fraction=0"):
        preprocessing.preprocess_for_eval(_image(), 32, 32, central_fraction=0)
    with pytest.raises(ValueError, match=r"`height` must be an int >= 1\. Received: height=0"):
        preprocessing.preprocess_for_eval(_image(), 0, 32)
