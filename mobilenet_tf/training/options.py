"""Choices of the training run that need no TensorFlow (pure Python): ``train.py`` checks its
flags with them before TensorFlow is imported."""

from mobilenet_tf.model import architecture

__all__ = ["OPTIMIZERS", "MODES", "ARCHITECTURES"]

OPTIMIZERS = ("rmsprop", "momentum", "sgd", "adamw")
MODES = ("train", "eval", "train_and_eval")
ARCHITECTURES = tuple(architecture.NAMED_CONV_DEFS)   # mobilenet_v1, conv_mobilenet, shallow_mobilenet
