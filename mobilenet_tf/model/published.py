"""Google's published ImageNet accuracy of each MobileNetV1 configuration: the figures a user
weighs against cost and latency when choosing α and ρ (``python -m mobilenet_tf.tradeoff``).

Pure Python data: importing this module does not import TensorFlow. Two sources, named in
every table that quotes them:

* :data:`SLIM_SOURCE`: TF-slim's table of the released checkpoints (``mobilenet_v1.md``), top-1
  and top-5 of the 16 float checkpoints (α ∈ {1.0, 0.75, 0.5, 0.25} × {224, 192, 160, 128}) and
  of their 8-bit ``_quant`` twins (trained with quantization in the loop, run as uint8 TFLite
  files). These are the weights ``--weights=imagenet`` and ``../shared/data/weights`` hold.
* :data:`PAPER_SOURCE`: the paper's own top-1 where it has a row (Tables 4-7: α at 224, ρ at
  α = 1, and the Table 4/5 variants ``conv_mobilenet`` and ``shallow_mobilenet``, for which no
  checkpoint was released). The paper's models were trained before the released checkpoints,
  so the two differ by up to 0.9 points (1.0/128: 64.4 in the paper, 65.2 released).

Nothing here is measured; the project's own measurements live in ``bench/README.md``.
"""

import dataclasses

__all__ = ["Published", "published", "SLIM_SOURCE", "PAPER_SOURCE", "SLIM_ALPHAS",
           "SLIM_IMAGE_SIZES"]

SLIM_SOURCE = ("TF-slim's table of the released MobileNetV1 checkpoints (2018-02-22): "
               "tensorflow/models research/slim/nets/mobilenet_v1.md")
PAPER_SOURCE = "Howard et al. 2017 (arXiv:1704.04861), Tables 4-7"

SLIM_ALPHAS = (1.0, 0.75, 0.5, 0.25)
SLIM_IMAGE_SIZES = (224, 192, 160, 128)

# (α, image size): (top-1, top-5 of the float checkpoint, top-1, top-5 of its _quant twin), in %.
_SLIM = {
    (1.0, 224): (70.9, 89.9, 69.7, 89.5),
    (1.0, 192): (70.0, 89.2, 69.0, 88.9),
    (1.0, 160): (68.0, 87.7, 67.3, 87.7),
    (1.0, 128): (65.2, 85.8, 64.0, 85.5),
    (0.75, 224): (68.4, 88.2, 67.9, 88.1),
    (0.75, 192): (67.2, 87.3, 66.2, 87.1),
    (0.75, 160): (65.3, 86.0, 63.9, 85.5),
    (0.75, 128): (62.1, 83.9, 59.8, 82.8),
    (0.5, 224): (63.3, 84.9, 62.2, 84.5),
    (0.5, 192): (61.7, 83.6, 60.4, 83.2),
    (0.5, 160): (59.1, 81.9, 57.7, 81.3),
    (0.5, 128): (56.3, 79.4, 54.9, 78.9),
    (0.25, 224): (49.8, 74.2, 48.2, 73.8),
    (0.25, 192): (47.7, 72.3, 45.8, 71.9),
    (0.25, 160): (45.5, 70.3, 43.5, 69.1),
    (0.25, 128): (41.5, 66.3, 39.9, 65.8),
}

# (architecture, α, image size): (top-1 in %, the paper's tables that print it).
_PAPER = {
    ("mobilenet_v1", 1.0, 224): (70.6, "Tables 4, 6, 7"),
    ("mobilenet_v1", 1.0, 192): (69.1, "Table 7"),
    ("mobilenet_v1", 1.0, 160): (67.2, "Table 7"),
    ("mobilenet_v1", 1.0, 128): (64.4, "Table 7"),
    ("mobilenet_v1", 0.75, 224): (68.4, "Tables 5, 6"),
    ("mobilenet_v1", 0.5, 224): (63.7, "Table 6"),
    ("mobilenet_v1", 0.25, 224): (50.6, "Table 6"),
    ("conv_mobilenet", 1.0, 224): (71.7, "Table 4"),
    ("shallow_mobilenet", 1.0, 224): (65.3, "Table 5"),
}


@dataclasses.dataclass(frozen=True)
class Published:
    """The published ImageNet accuracy of one configuration, in %; None where none was published.

    ``top1`` / ``top5``: the released float checkpoint (:data:`SLIM_SOURCE`); ``top1_int8`` /
    ``top5_int8``: its 8-bit ``_quant`` checkpoint; ``paper_top1``: the paper's figure, from
    ``paper_table``."""
    top1: float = None
    top5: float = None
    top1_int8: float = None
    top5_int8: float = None
    paper_top1: float = None
    paper_table: str = None

    def accuracy(self, precision):
        """The top-1 a ``precision`` ("float32" or "int8") file of this configuration is ranked
        by: the released float checkpoint's (else the paper's) for float32, the released
        ``_quant`` checkpoint's for int8; None where none was published."""
        if precision == "int8":
            return self.top1_int8
        return self.top1 if self.top1 is not None else self.paper_top1


def _key(alpha):
    return round(float(alpha), 6)


def published(architecture="mobilenet_v1", alpha=1.0, image_size=224):
    """The :class:`Published` figures of MobileNetV1 `architecture` (a name of
    ``mobilenet_tf.model.architecture.NAMED_CONV_DEFS``) at width multiplier `alpha` and square
    input `image_size` (an int, or an ``(h, w)`` pair); every field None where none exist."""
    if isinstance(image_size, (tuple, list)):
        if len(image_size) != 2 or image_size[0] != image_size[1]:
            return Published()
        image_size = image_size[0]
    slim = _SLIM.get((_key(alpha), int(image_size))) if architecture == "mobilenet_v1" else None
    paper = _PAPER.get((architecture, _key(alpha), int(image_size)))
    return Published(*(slim or (None,) * 4), *(paper or (None, None)))
