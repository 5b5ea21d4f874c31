"""The options of ``predict`` and ``evaluate`` that choose the model, its weights and the
preprocessing, and the classifier they name."""

from mobilenet_tf.cli import args as cli_args

__all__ = ["add_model_arguments", "check_model_arguments", "load_classifier"]

# The defaults of the options that build a model from weights: their arguments default to None,
# so that check_model_arguments knows which were given (refused beside --model).
_DEFAULTS = {"alpha": 1.0, "image_size": 224, "weights": "imagenet", "checkpoint_weights": "auto"}

_PREPROCESSING_HELP = ("'resize': resize the whole image to the model size, no crop, then "
                       "scale to [-1, 1] (the preprocessing of the reference accuracies in "
                       "shared/data/README.md; the default for Google's weights); "
                       "'central_crop': TF-slim's evaluation, central 87.5%% crop, then resize "
                       "(the default for a train.py run or its export: what its validation used)")


def add_model_arguments(parser):
    """The options that say which model and weights to use, and the preprocessing (shared
    by predict and evaluate)."""
    from mobilenet_tf.data.options import PREPROCESSINGS
    from mobilenet_tf.model.weight_sources import CHECKPOINT_WEIGHTS
    parser.add_argument("--model", default=None,
                        help="a train.py run folder, a .keras file, or a .tflite file "
                             "(export_tflite.py), instead of --weights/--alpha/--image_size")
    parser.add_argument("--alpha", type=cli_args.positive_float, default=None,
                        help="width multiplier α (default 1.0)")
    parser.add_argument("--image_size", type=cli_args.positive_int, default=None,
                        help="input height and width (default 224)")
    parser.add_argument("--weights", default=None,
                        help="'imagenet' (default; Google's Keras applications file, downloaded "
                             "into the Keras cache), a .h5/.weights.h5 file or a TF-slim "
                             "checkpoint prefix")
    parser.add_argument("--classes", type=cli_args.positive_int, default=None,
                        help="classes of the head: 1000 or 1001 (TF-slim, background first); "
                             "default: what the weights file holds (1000 for 'imagenet')")
    parser.add_argument("--checkpoint_weights", choices=CHECKPOINT_WEIGHTS, default=None,
                        help="TF-slim checkpoints: 'average' (ExponentialMovingAverage "
                             "shadows), 'raw', or 'auto' (default: the averages when present)")
    parser.add_argument("--preprocessing", choices=PREPROCESSINGS, default=None,
                        help=_PREPROCESSING_HELP)
    parser.add_argument("--batch_size", type=cli_args.positive_int, default=32,
                        help="images per forward pass (default 32)")


def check_model_arguments(parser, args):
    """Refuses (``parser.error``: one line, exit 2) the options that build a model from
    weights when they are given beside --model (``saved.settings_it_fixes``: one rule for
    every command), then fills in their defaults."""
    from mobilenet_tf.model import saved
    given = [name for name in saved.MODEL_SETTINGS if getattr(args, name) is not None]
    problem = args.model is not None and saved.settings_it_fixes(f"--model={args.model}", given)
    if problem:
        parser.error(problem)
    for name, value in _DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def load_classifier(args):
    """The classifier the parsed `args` name; sets ``args.preprocessing`` when not given."""
    from mobilenet_tf import errors
    from mobilenet_tf.inference import classifier as inference
    try:
        classifier = inference.load_classifier(
            args.model, weights=args.weights, alpha=args.alpha, image_size=args.image_size,
            classes=args.classes, checkpoint_weights=args.checkpoint_weights)
    except errors.InputError as e:
        if args.model is None:
            raise
        raise errors.InputError(f"--model: {errors.one_line(e)}") from None
    except ValueError as e:      # the builder's refusals of --alpha, --image_size, --classes
        raise errors.InputError(errors.one_line(e)) from None
    if args.preprocessing is None:
        args.preprocessing = "central_crop" if classifier.trained_here else "resize"
    return classifier
