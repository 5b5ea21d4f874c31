"""Weights files turned into this project's ``.keras`` (or ``.weights.h5``) model files."""

__all__ = ["convert_weights"]


def convert_weights(source, output, *, alpha, image_size, classes=None, include_top=True,
                    checkpoint_weights="auto"):
    """Builds MobileNetV1 of `alpha` / `image_size`, loads `source` (anything
    ``weights.load_weights`` reads, or ``"imagenet"``) into it and saves it to `output`
    (``.keras`` or ``.weights.h5``, written atomically). Returns the model."""
    from mobilenet_tf.utils import fileio
    from mobilenet_tf.model import builder as model_lib
    from mobilenet_tf.model import weight_sources
    from mobilenet_tf.model import weights as weights_lib
    if classes is None:
        classes = 1000 if source == "imagenet" else (weight_sources.source_classes(source) or 1000)
    model = model_lib.MobileNetV1(input_shape=(image_size, image_size, 3), alpha=alpha,
                                  include_top=include_top, classes=classes)
    weights_lib.load_weights(model, source, checkpoint_weights=checkpoint_weights)
    fileio.save_model(model, output)
    return model
