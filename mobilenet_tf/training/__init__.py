"""Training: the run's configuration, recipe (schedule, weight decay, optimizer), loop,
checkpoints, evaluation, distillation, distribution and mixed precision."""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    name: "loop" for name in (
        "TrainConfig", "TrainingError", "StaircaseDecayWithWarmup", "scaled_learning_rate",
        "learning_rate_schedule", "weight_decay_rule", "split_weight_decay", "l2_penalty",
        "apply_weight_decay", "make_optimizer", "build_model", "compile_model", "train",
        "evaluate", "restore_run", "saved_config", "atomic_write_text", "write_scalar",
        "CHECKPOINT_SUBDIR", "TENSORBOARD_SUBDIR")
} | {name: "options" for name in ("OPTIMIZERS", "MODES", "ARCHITECTURES")}, old="training")
