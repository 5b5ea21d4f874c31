"""Image preprocessing for training and evaluation: TF-slim's Inception preprocessing.

What TF-slim's ``preprocessing_factory`` uses for ``mobilenet_v1``
(``inception_preprocessing.py``), in the "fast mode" its training script uses:

* training (:func:`preprocess_for_train`): a random crop from
  ``tf.image.sample_distorted_bounding_box`` (min_object_covered 0.1, aspect
  ratio 0.75-1.33, area ``min_crop_area``-1.0, 100 attempts, whole image as
  the bounding box, or the object boxes of the example when it has them, as
  TF-slim does with ImageNet's ``image/object/bbox``), bilinear resize to the
  model size, random left-right
  flip, fast colour distortion (brightness +-32/255, then saturation 0.5-1.5,
  clipped to [0, 1]);
* evaluation (:func:`preprocess_for_eval`): central crop of 0.875 of each
  side, bilinear resize;
* both return float32 in [-1, 1] (``(x - 0.5) * 2``, slim's last step), the
  range MobileNet's released weights expect.

The paper trains small models "with less data augmentation ... limiting the
size of small crops": ``min_crop_area`` is that knob (slim's default 0.05; a
larger value such as 0.25 gives milder crops). Without object boxes the box is
the whole image, and a crop must cover ``MIN_OBJECT_COVERED`` (0.1) of it: so,
as in TF-slim, crops are at least 10% of the image whatever ``min_crop_area``
below 0.1 says (measured in tests/test_preprocessing.py).

:func:`prepare_image` is what prediction and evaluation apply to one decoded image: ``"resize"``
(resize to the model size, no crop: what the reference accuracies in
``../shared/data/README.md`` use) or ``"central_crop"`` (the evaluation crop above).

This module holds TensorFlow functions only: no file reading, no flags.
"""

from mobilenet_tf.data.options import DEFAULT_MIN_CROP_AREA, PREPROCESSINGS
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["preprocess_for_train", "preprocess_for_eval", "preprocess", "MIN_OBJECT_COVERED",
           "ASPECT_RATIO_RANGE", "DEFAULT_MIN_CROP_AREA", "MAX_ATTEMPTS", "EVAL_CENTRAL_FRACTION",
           "BRIGHTNESS_MAX_DELTA", "SATURATION_RANGE", "PREPROCESSINGS", "prepare_image"]

MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
MAX_ATTEMPTS = 100
EVAL_CENTRAL_FRACTION = 0.875
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)


def _check_size(height, width):
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")


def _to_unit_float(image):
    """uint8 [0, 255] -> float32 [0, 1]; float images are assumed in [0, 1] already."""
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.float32:
        image = tf.image.convert_image_dtype(image, tf.float32)
    return image


def _to_minus_one_one(image):
    return (image - 0.5) * 2.0


def preprocess_for_train(image, height, width, *, min_crop_area=DEFAULT_MIN_CROP_AREA,
                         color_distortion=True, seed=None, bboxes=None):
    """Random Inception crop, resize, flip and colour distortion; float32 in [-1, 1].

    Args:
      image: a (h, w, 3) ``uint8`` image (or float32 in [0, 1]).
      height, width: output size.
      min_crop_area: smallest fraction of the image area a crop may cover
        (slim 0.05; in (0, 1]).
      color_distortion: apply brightness and saturation distortion (slim's
        fast mode). The crop and the flip are always applied.
      seed: optional int seed for the random crop.
      bboxes: optional float32 (n, 4) object boxes ``[ymin, xmin, ymax, xmax]``
        in [0, 1] (TF-slim's ``image/object/bbox``): the crop covers at least
        ``MIN_OBJECT_COVERED`` of one of them. n may be 0: then, as with None,
        the whole image is the box.

    Returns:
      float32 tensor (height, width, 3) in [-1, 1].
    """
    _check_size(height, width)
    if not 0 < min_crop_area <= 1:
        raise ValueError(f"`min_crop_area` must be in (0, 1]. Received: min_crop_area={min_crop_area!r}")
    image = _to_unit_float(image)
    if bboxes is None:
        bbox = tf.constant([0.0, 0.0, 1.0, 1.0], dtype=tf.float32, shape=[1, 1, 4])
    else:
        # No boxes (n = 0): sample_distorted_bounding_box takes the whole image.
        bbox = tf.reshape(tf.clip_by_value(tf.cast(bboxes, tf.float32), 0.0, 1.0), [1, -1, 4])
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=bbox, seed=seed,
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=(min_crop_area, 1.0), max_attempts=MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, size)
    image.set_shape([None, None, 3])
    image = tf.image.resize(image, [height, width], method="bilinear")
    image = tf.image.random_flip_left_right(image)
    if color_distortion:
        # slim distort_color(fast_mode=True, color_ordering=0): brightness, then saturation.
        image = tf.image.random_brightness(image, max_delta=BRIGHTNESS_MAX_DELTA)
        image = tf.image.random_saturation(image, lower=SATURATION_RANGE[0], upper=SATURATION_RANGE[1])
        image = tf.clip_by_value(image, 0.0, 1.0)
    return _to_minus_one_one(image)


def preprocess_for_eval(image, height, width, *, central_fraction=EVAL_CENTRAL_FRACTION):
    """Central crop (``central_fraction`` of each side) and bilinear resize; float32 in [-1, 1].

    Deterministic: the same image always gives the same output.
    """
    _check_size(height, width)
    if central_fraction is not None and not 0 < central_fraction <= 1:
        raise ValueError("`central_fraction` must be in (0, 1] or None. "
                         f"Received: central_fraction={central_fraction!r}")
    image = _to_unit_float(image)
    if central_fraction is not None and central_fraction < 1:
        image = tf.image.central_crop(image, central_fraction=central_fraction)
    image = tf.image.resize(image, [height, width], method="bilinear")
    image = tf.clip_by_value(image, 0.0, 1.0)
    return _to_minus_one_one(image)


def preprocess(image, height, width, training, **kwargs):
    """:func:`preprocess_for_train` if ``training`` else :func:`preprocess_for_eval`."""
    if training:
        return preprocess_for_train(image, height, width, **kwargs)
    return preprocess_for_eval(image, height, width, **kwargs)


def prepare_image(image, image_size, preprocessing="resize"):
    """A decoded RGB uint8 image (h, w, 3) -> float32 (size, size, 3) in [-1, 1].

    ``preprocessing``: ``"resize"`` (bilinear resize to `image_size`, no crop)
    or ``"central_crop"`` (keep the central 87.5 % of each side, then resize):
    :func:`preprocess_for_eval` without or with its crop.
    `image_size` is an int or (height, width).
    """
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"`preprocessing` must be one of {PREPROCESSINGS}. "
                         f"Received: preprocessing={preprocessing!r}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return preprocess_for_eval(
        image, height, width,
        central_fraction=EVAL_CENTRAL_FRACTION if preprocessing == "central_crop" else None)
