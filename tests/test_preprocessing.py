"""Inception preprocessing (TF-slim's, for MobileNet): shapes, dtype, range, determinism, oracles."""

import numpy as np
import pytest
import tensorflow as tf

import numerics
from mobilenet_tf.data import preprocessing

# Values in [-1, 1] from a few float32 operations each (a 4-tap bilinear interpolation, a
# scale and a shift): within a few roundings of 1.
PIXEL_ROUNDING = 8 * numerics.U32


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
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=0, atol=PIXEL_ROUNDING)


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
        assert (np.allclose(out, whole, rtol=0, atol=PIXEL_ROUNDING)
                or np.allclose(out, whole[:, ::-1], rtol=0, atol=PIXEL_ROUNDING))


def test_small_min_crop_area_gives_zoomed_crops():
    """With area down to 0.05 some crops are small: the output differs from the whole image."""
    image = _image(64, 64)
    whole = preprocessing.preprocess_for_eval(image, 32, 32, central_fraction=None).numpy()
    tf.random.set_seed(0)
    outs = [preprocessing.preprocess_for_train(image, 32, 32, min_crop_area=0.05,
                                               color_distortion=False).numpy() for _ in range(10)]
    assert sum(not (np.allclose(o, whole, rtol=0, atol=PIXEL_ROUNDING)
                    or np.allclose(o, whole[:, ::-1], rtol=0, atol=PIXEL_ROUNDING))
               for o in outs) >= 5


# --- the training augmentation's constants, measured from what comes out ---------------------------

N_DRAWS = 400


def _extremes_bound(low, high):
    """The smallest of N uniform draws on [low, high] exceeds low + 15·(high - low)/N with
    probability (1 - 15/N)**N < e**-15 (likewise the largest): bounds a test of the range's
    ends can use whatever the seeds draw."""
    return 15 * (high - low) / N_DRAWS


def _coordinate_image(size=200):
    """R = row, G = column, B = 128: a crop, resized, still says where it came from."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return tf.constant(np.stack([rows, cols, np.full_like(rows, 128)], -1).astype(np.uint8))


def _crop_of(out, size=32):
    """(top, left, height, width, flipped) of the crop behind a bilinear resize to `size` of
    the coordinate image: row r of the output samples the crop at (r + 0.5)·h/size - 0.5 (half
    pixel centers), so R[size-1] - R[0] = h·(size-1)/size exactly for a linear ramp."""
    pixels = (np.asarray(out, np.float64) / 2 + 0.5) * 255
    rows, cols = pixels[..., 0], pixels[..., 1]
    height = (rows[-1].mean() - rows[0].mean()) * size / (size - 1)
    flipped = cols[:, -1].mean() < cols[:, 0].mean()
    width = abs(cols[:, -1].mean() - cols[:, 0].mean()) * size / (size - 1)
    return height, width, flipped


def test_training_crops_cover_slims_area_and_aspect_ranges_and_half_are_mirrored():
    """TF-slim's Inception crop: area 5%-100% of the image, but covering at least 10% of the
    object box, which without boxes is the whole image: so 10%-100%; aspect ratio (w/h)
    0.75-1.33; then a left-right flip with probability 1/2. Every crop lies in those ranges (up
    to its integer pixel sides), the extremes are reached, and the flip rate is 1/2 within 5
    standard deviations."""
    image = _coordinate_image()
    tf.random.set_seed(0)
    crops = [_crop_of(preprocessing.preprocess_for_train(image, 32, 32, color_distortion=False))
             for _ in range(N_DRAWS)]
    heights, widths, flips = (np.array(v) for v in zip(*crops))
    area, aspect = heights * widths / 200 ** 2, widths / heights
    (low_aspect, high_aspect), covered = (preprocessing.ASPECT_RATIO_RANGE,
                                          preprocessing.MIN_OBJECT_COVERED)
    assert (preprocessing.DEFAULT_MIN_CROP_AREA, covered, low_aspect, high_aspect) == (
        0.05, 0.1, 0.75, 1.33)                                              # TF-slim's constants
    low_area = max(preprocessing.DEFAULT_MIN_CROP_AREA, covered)
    pixel = 1 / heights + 1 / widths        # a side rounded to whole pixels moves these this much
    # The sides are read off float32 pixels (each within PIXEL_ROUNDING of [-1, 1], 255/2 px).
    measured = 255 * PIXEL_ROUNDING * pixel
    assert (area >= low_area * (1 - pixel)).all() and (area <= 1 + measured).all()
    assert (aspect >= low_aspect * (1 - pixel)).all() and (aspect <= high_aspect * (1 + pixel)).all()
    assert area.min() <= low_area + _extremes_bound(low_area, 1)
    assert aspect.min() <= low_aspect + _extremes_bound(low_aspect, high_aspect)
    assert aspect.max() >= high_aspect - _extremes_bound(low_aspect, high_aspect)
    assert abs(flips.mean() - 0.5) <= 5 * 0.5 / np.sqrt(N_DRAWS)      # 5 standard deviations
    # A larger min_crop_area (the paper's milder crops for small models) is the lower end.
    crops = [_crop_of(preprocessing.preprocess_for_train(image, 32, 32, min_crop_area=0.5,
                                                         color_distortion=False))
             for _ in range(N_DRAWS // 4)]
    heights, widths, _ = (np.array(v) for v in zip(*crops))
    area = heights * widths / 200 ** 2
    assert (area >= 0.5 * (1 - 1 / heights - 1 / widths)).all()
    assert area.min() <= 0.5 + 4 * _extremes_bound(0.5, 1)      # N/4 draws: 4 times the gap


def test_colour_distortion_is_slims_brightness_then_saturation():
    """Brightness δ in ±32/255, then saturation ×f, f in [0.5, 1.5] (slim's fast mode). On a flat
    colour both are readable off the output: V' = V + δ (HSV value = the largest channel), and
    HSV saturation (max - min)/max is multiplied by f."""
    colour = np.array([0.6, 0.4, 0.3])                # none of the draws clips it to [0, 1]
    image = tf.constant(np.broadcast_to(colour, (40, 40, 3)).astype(np.float32))
    tf.random.set_seed(0)
    deltas, factors = [], []
    for _ in range(N_DRAWS):
        out = np.asarray(preprocessing.preprocess_for_train(image, 8, 8, min_crop_area=1.0),
                         np.float64)[0, 0] / 2 + 0.5
        delta = out.max() - colour.max()
        shifted = colour + delta
        deltas.append(delta)
        factors.append(((out.max() - out.min()) / out.max())
                       / ((shifted.max() - shifted.min()) / shifted.max()))
    deltas, factors = np.array(deltas), np.array(factors)
    max_delta, (low, high) = preprocessing.BRIGHTNESS_MAX_DELTA, preprocessing.SATURATION_RANGE
    assert (max_delta, low, high) == (32 / 255, 0.5, 1.5)                  # TF-slim's constants
    rounding = 64 * numerics.U32          # float32 HSV round trip of values <= 1, a few ops each
    assert np.abs(deltas).max() <= max_delta + rounding
    assert np.abs(deltas).max() >= max_delta - _extremes_bound(-max_delta, max_delta)
    assert deltas.min() <= -max_delta + _extremes_bound(-max_delta, max_delta)
    assert factors.min() >= low - 8 * rounding and factors.max() <= high + 8 * rounding
    assert factors.min() <= low + _extremes_bound(low, high)
    assert factors.max() >= high - _extremes_bound(low, high)


def test_float_input_in_unit_range_is_accepted():
    image = tf.image.convert_image_dtype(_image(), tf.float32)
    np.testing.assert_allclose(preprocessing.preprocess_for_eval(image, 48, 48).numpy(),
                               preprocessing.preprocess_for_eval(_image(), 48, 48).numpy(),
                               rtol=0, atol=PIXEL_ROUNDING)


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
