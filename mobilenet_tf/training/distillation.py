"""Knowledge distillation (the paper's section 4.5): a MobileNet trained to match a teacher.

The student learns from the teacher's temperature-softened outputs (Hinton et
al. 2015), alone or mixed with the labels. The training step is Keras'
``keras.distillation.Distiller`` with ``LogitsDistillation``; its loss is

    (1 - w) * CE(labels, softmax(s))  +  w * T^2 * KL(softmax(t / T) || softmax(s / T))

(plus the student's weight decay), where ``s`` / ``t`` are the student's and
teacher's logits, ``T`` the temperature and ``w`` the distillation weight:
``w = 1`` uses the teacher only (labels unused, so images without labels
train), ``0 < w < 1`` mixes. Keras' ``student_loss_weight`` is ``1 - w``.

What this module adds to Keras':

* :func:`load_teacher`: a teacher from a ``train.py`` run folder, a ``.keras``
  file, or weights (``imagenet``, Keras ``.h5``, TF-slim checkpoint) with its
  α and input size.
* :func:`logits_model`: the logits of a MobileNetV1 classifier (the input of its
  softmax), in float32; the teacher's is wrapped to take the student's input
  and resize it to the teacher's size, so the teacher sees the same augmented
  crop as the student (bilinearly resized).
* ``LogitsDistillation`` is given ``keras.losses.KLDivergence()`` itself: its
  default, the string ``"kl_divergence"``, resolves to the loss *function*, which
  Keras 3.15 then applies to the temperature-scaled logits as if they were
  probabilities (no softmax, no T^2; negative "KL" values).
* :class:`Distiller`: Keras' Distiller plus the student's regularization losses
  (Keras' ``compute_loss`` leaves ``model.losses`` out, which would silently
  drop weight decay), training batches without labels (only the loss
  trackers are reported then), and the ``student_loss`` / ``distillation_loss``
  / ``total_loss`` logs of the whole batch under N replicas (Keras' show 1/N
  of them; the ``loss`` it trains on is scaled right).

The teacher runs in inference mode (``training=False``, frozen) and is not part
of the student's checkpoints or ``model.keras``. No flags are read here.
"""

import dataclasses
import os

import keras

from mobilenet_tf import errors
from mobilenet_tf.errors import InputError
from mobilenet_tf.training.config import (DEFAULT_DISTILLATION_TEMPERATURE,
                                          DEFAULT_DISTILLATION_WEIGHT)

__all__ = ["DEFAULT_TEMPERATURE", "DEFAULT_WEIGHT", "TeacherError", "Teacher", "load_teacher",
           "check_teacher_classes", "logits_model", "Distiller", "make_distiller"]

# The defaults of train.py's --distillation_temperature / --distillation_weight (config.py).
DEFAULT_TEMPERATURE = DEFAULT_DISTILLATION_TEMPERATURE   # keras' LogitsDistillation default
DEFAULT_WEIGHT = DEFAULT_DISTILLATION_WEIGHT             # 1 - keras' Distiller student_loss_weight


class TeacherError(InputError):
    """A teacher that cannot teach this student. One line (exit status 2)."""


@dataclasses.dataclass
class Teacher:
    """A loaded teacher: ``model`` maps [-1, 1] images of ``image_size`` to probabilities;
    ``class_names`` are its classes when it knows them (a ``train.py`` run), else None."""
    model: object
    image_size: tuple
    class_names: list
    source: str

    @property
    def num_classes(self):
        return int(self.model.output_shape[-1])


def load_teacher(path, *, alpha=None, image_size=None):
    """A :class:`Teacher` from ``path``.

    ``path``: a ``train.py`` run folder or a ``.keras`` file (α, size and classes are the
    model's own: ``alpha`` / ``image_size`` must be None), or weights — ``"imagenet"``, a
    Keras ``.h5`` file, a TF-slim checkpoint — for a MobileNetV1 of ``alpha`` and
    ``image_size`` (both required), with the head the weights hold.

    Raises TeacherError / WeightsError (one line) for a teacher that cannot be loaded.
    """
    from mobilenet_tf.model import saved
    path = os.fspath(path)
    if path != "imagenet" and not saved.is_keras_model_path(path) and (
            path.endswith(".tflite") or saved.is_tflite_file(path)):
        raise TeacherError(f"teacher {path} is a .tflite file, which cannot run inside a Keras "
                           "training step: give its run folder, .keras file or weights")
    if saved.is_keras_model_path(path):
        if alpha is not None or image_size is not None:
            raise TeacherError(f"teacher_alpha / teacher_image_size apply to a teacher given "
                               f"as weights; {path} is a model with its own. Received: "
                               f"teacher_alpha={alpha}, teacher_image_size={image_size}")
        model, class_names = saved.load_model(path)
        size = tuple(model.input_shape[1:3])
        if None in size:
            raise TeacherError(f"teacher {path} has no fixed input size ({size})")
        _logits_tensor(model, path)        # refuses a model that is not a classifier
        return Teacher(model, size, class_names, path)
    if path != "imagenet":
        _check_weights_path(path)
    if alpha is None or image_size is None:
        raise TeacherError(f"teacher {path} is weights: give the teacher's α and input size "
                           "(teacher_alpha, teacher_image_size; e.g. 0.75 and 192). Received: "
                           f"teacher_alpha={alpha}, teacher_image_size={image_size}")
    model = saved.model_from_weights(path, alpha=alpha, image_size=image_size)
    return Teacher(model, tuple(model.input_shape[1:3]), None, path)


def _check_weights_path(path):
    """A teacher path that is neither a model nor weights (issue 27: a missing path and a
    JPEG were called weights lacking teacher_alpha): TeacherError naming what it is."""
    from mobilenet_tf.data import images
    from mobilenet_tf.errors import WeightsError
    from mobilenet_tf.model import weight_sources
    wanted = ("give a train.py run folder, a .keras file, or weights (.h5, .weights.h5, a "
              "TF-slim checkpoint prefix) with teacher_alpha and teacher_image_size")
    if not os.path.exists(path) and not os.path.isfile(path + ".index"):
        raise TeacherError(f"teacher {path} does not exist: {wanted}")
    try:
        weight_sources.identify_source(path)
    except WeightsError as e:
        kind = None
        if os.path.isfile(path):
            with open(path, "rb") as f:
                kind = images.sniff_format(f.read(16))
        what = f"a {kind.upper()} image" if kind else f"not a model or weights ({e})"
        raise TeacherError(f"teacher {path} is {what}: {wanted}") from None


def check_teacher_classes(teacher, num_classes, class_names, dataset):
    """Refuses (TeacherError, one line) a teacher whose classes are not the training data's:
    another class count, or, when both name their classes, other names or order."""
    if teacher.num_classes != num_classes:
        raise TeacherError(f"teacher {teacher.source} predicts {teacher.num_classes} classes, "
                           f"{dataset} has {num_classes}: the teacher must predict the "
                           "student's classes")
    if teacher.class_names and class_names:
        for i, (a, b) in enumerate(zip(teacher.class_names, class_names)):
            if str(a) != str(b):
                raise TeacherError(f"teacher {teacher.source} has other classes than {dataset}: "
                                   f"output {i} is {a!r} for the teacher, {b!r} in the data")


def _logits_tensor(model, source=None):
    """The symbolic logits of a MobileNetV1 classifier: the input of its ``Predictions``
    softmax (its output when ``Predictions`` applies no activation)."""
    try:
        predictions = model.get_layer("Predictions")
    except ValueError:
        raise TeacherError(f"{source or model.name} is not a MobileNetV1 classifier (no "
                           "'Predictions' layer)") from None
    activation = getattr(predictions, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    if name == "softmax":
        return predictions.input
    if name == "linear":
        return predictions.output
    raise TeacherError(f"{source or model.name}: distillation needs logits; its Predictions "
                       f"layer applies {name!r}, not softmax")


def logits_model(model, input_size=None, name=None):
    """A model that shares ``model``'s layers and returns its logits in float32.

    ``input_size``: ``(height, width)`` of the images it will be given, when not the
    model's own; they are resized (bilinear) to the model's size first.
    """
    logits = keras.Model(model.inputs, _logits_tensor(model), name=f"{model.name}_logits")
    own = tuple(model.input_shape[1:3])
    size = own if input_size is None else tuple(int(s) for s in input_size)
    inputs = keras.Input((*size, 3), name="images")
    x = inputs
    if size != own:
        x = keras.layers.Resizing(*own, interpolation="bilinear", name="resize_to_teacher")(x)
    x = logits(x)
    x = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(x)
    return keras.Model(inputs, x, name=name or f"{model.name}_logits_view")


_DISTILLER_TRACKERS = ("student_loss", "distillation_loss", "total_loss")


class Distiller(keras.distillation.Distiller):
    """``keras.distillation.Distiller`` with the student's regularization losses and
    batches without labels (see the module docstring)."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)
        for extra in self.student.losses:         # weight decay (scaled per replica as Keras does)
            loss = keras.ops.add(loss, self._aggregate_additional_loss(extra))
        return loss

    def _unscaled(self, results):
        # Keras' Distiller feeds its trackers the per-replica losses, which Keras scales by
        # 1/replicas (so that summed gradients are the global batch's): report the batch's.
        if self.student_loss_weight == 0:
            results.pop("student_loss", None)      # never computed (Keras logs a 0)
        replicas = self.distribute_strategy.num_replicas_in_sync
        if replicas > 1:
            for name in _DISTILLER_TRACKERS:
                if name in results:
                    results[name] = results[name] * replicas
        return results

    def _loss_results(self):
        trackers = [self._loss_tracker, self.distillation_loss_tracker]
        return self._unscaled({m.name: m.result() for m in trackers if m is not None})

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is not None:
            return super().compute_metrics(x, y, y_pred, sample_weight)
        # Images without labels: accuracy has nothing to compare with; report the losses.
        return self._loss_results()

    def get_metrics_result(self):
        compiled = getattr(self, "_compile_metrics", None)
        if compiled is not None and not compiled.built:
            # Only unlabelled batches so far (no validation yet): the accuracy metrics have
            # never seen a label and cannot report (Keras would raise).
            return self._loss_results()
        return self._unscaled(dict(super().get_metrics_result()))


def make_distiller(student, teacher, *, temperature=DEFAULT_TEMPERATURE, weight=DEFAULT_WEIGHT):
    """The :class:`Distiller` that trains ``student`` (a MobileNetV1 classifier, whose
    variables it shares) from ``teacher`` (a :class:`Teacher` or a Keras classifier).

    Compile it with a ``from_logits=True`` label loss: its predictions are the student's
    logits. Raises TeacherError for a weight outside (0, 1] or a temperature <= 0.
    """
    if not 0 < weight <= 1:
        raise TeacherError(f"distillation_weight must be in (0, 1] (1: the teacher only). "
                           f"Received: distillation_weight={weight}")
    if not temperature > 0:
        raise TeacherError(f"distillation_temperature must be > 0. Received: "
                           f"distillation_temperature={temperature}")
    teacher_model = teacher.model if isinstance(teacher, Teacher) else teacher
    size = tuple(student.input_shape[1:3])
    try:
        return Distiller(
            teacher=logits_model(teacher_model, size, name="teacher"),
            student=logits_model(student, name="student"),
            # The loss instance, not Keras' default "kl_divergence": that string resolves to the
            # function, which LogitsDistillation (Keras 3.15) applies to the scaled logits
            # themselves — no softmax, no T^2 (the "KL" even goes negative).
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=float(temperature), loss=keras.losses.KLDivergence()),
            student_loss_weight=1.0 - float(weight))
    except ValueError as e:     # Keras' own compatibility checks
        raise TeacherError(f"teacher and student cannot be paired: {errors.one_line(e)}") from None
