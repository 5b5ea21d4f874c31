"""TF-slim's training-time constants of MobileNetV1 (``mobilenet_v1_arg_scope``), in one place:
pure Python, so the training configuration states its defaults without importing Keras.

The builder uses the batch-norm and initializer constants; the weight decay is training's
(the builder attaches no regularizer).
"""

__all__ = ["BATCH_NORM_MOMENTUM", "BATCH_NORM_EPSILON", "INIT_STDDEV", "DEFAULT_WEIGHT_DECAY",
           "NUM_CALIBRATION_IMAGES"]

BATCH_NORM_MOMENTUM = 0.9997   # slim's batch_norm_decay
BATCH_NORM_EPSILON = 1e-3
INIT_STDDEV = 0.09             # truncated normal for every conv kernel
DEFAULT_WEIGHT_DECAY = 4e-5    # slim's weight_decay: used by training, not by the builder
# Images that calibrate int8 activation ranges: post-training int8's (export) and the start of
# quantization-aware training's learned ranges (training), the same number in both (issue 26).
NUM_CALIBRATION_IMAGES = 300
