"""The ``synthetic`` dataset: random uint8 images and labels of the right shape, generated on
the fly (deterministic per example), for smoke tests and benchmarks."""

from mobilenet_tf.data.readers.base import ImageDataset
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["load"]


def _source(offset, count, size, num_classes):
    def make(i):
        i = tf.cast(i, tf.int32)
        image = tf.random.stateless_uniform([size, size, 3], seed=tf.stack([i, 7]), maxval=256,
                                            dtype=tf.int32)
        label = tf.random.stateless_uniform([], seed=tf.stack([i, 11]), maxval=num_classes,
                                            dtype=tf.int32)
        return tf.cast(image, tf.uint8), tf.cast(label, tf.int64)
    return tf.data.Dataset.range(offset, offset + count).map(make, num_parallel_calls=tf.data.AUTOTUNE)


def load(spec, image_size, num_examples, num_classes, validation_fraction):
    """`num_examples` random `image_size` images of `num_classes` classes; the last
    ``round(num_examples * validation_fraction)`` are the validation examples."""
    for name, value in (("synthetic_examples", num_examples), ("synthetic_classes", num_classes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    num_val = int(round(num_examples * validation_fraction))
    num_train, size = num_examples - num_val, int(image_size)
    return ImageDataset(
        spec=spec, num_classes=num_classes, num_train=num_train, num_validation=num_val,
        train_source=_source(0, num_train, size, num_classes),
        validation_source=_source(num_train, num_val, size, num_classes) if num_val else None,
        encoded=False, description=f"synthetic: {num_train} train / {num_val} validation "
                                   f"random {size}x{size} images, {num_classes} classes")
