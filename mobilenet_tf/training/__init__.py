"""Training: the run's configuration, recipe (schedule, weight decay, optimizer), loop,
checkpoints, evaluation, distillation, distribution and mixed precision.

``config`` (``TrainConfig``, pure Python) · ``schedule`` · ``weight_decay`` · ``recipe``
(model, optimizer, compile) · ``inputs`` · ``callbacks`` · ``tensorboard`` · ``checkpoints`` ·
``run_folder`` · ``loop`` (``train``) · ``evaluation`` (``evaluate``, ``restore_run``) ·
``distillation`` · ``distribute`` · ``precision`` · ``stop`` · ``settings`` · ``errors``.
"""

from mobilenet_tf import _api

_API = {
    "config": ("TrainConfig", "OPTIMIZERS", "MODES", "ARCHITECTURES", "EVAL_OVERRIDES"),
    "errors": ("TrainingError", "ConfigError", "RunFolderError"),
    "schedule": ("StaircaseDecayWithWarmup", "scaled_learning_rate", "initial_learning_rate",
                 "learning_rate_schedule"),
    "weight_decay": ("weight_decay_rule", "split_weight_decay", "l2_penalty",
                     "apply_weight_decay"),
    "recipe": ("make_optimizer", "build_model", "compile_model", "accuracy_metrics"),
    "loop": ("train",),
    "evaluation": ("evaluate", "restore_run"),
    "run_folder": ("saved_config", "atomic_write_text"),
    "tensorboard": ("write_scalar", "TENSORBOARD_SUBDIR"),
    "checkpoints": ("CHECKPOINT_SUBDIR",),
    "stop": ("StopRequest",),
}

__getattr__, __dir__, __all__ = _api.attach(
    __name__, {name: module for module, names in _API.items() for name in names}, old="training")
