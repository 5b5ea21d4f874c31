"""Pretrained weights into a built MobileNetV1: one loader for every source.

Sources (``weight_sources``): ``"imagenet"`` (Google's Keras applications files, downloaded
into the Keras cache), a Keras 2 ``.h5`` weights file with or without top (``keras.applications``
layer names ``conv1``, ``conv_dw_1``, ... or this project's), a TF-slim checkpoint prefix
(Google's ``mobilenet_v1_*.ckpt`` releases; a ``.index`` file or a directory holding a
checkpoint also works), this project's own ``.keras`` and ``.weights.h5`` files, and a
``train.py`` run folder (its ``model.keras``: e.g. a float run to fine-tune with
quantization-aware training). Names (``weight_names``): a model variable is keyed ``(keras
layer name, weight name)``, e.g. ``("Conv2d_1_depthwise", "kernel")``, and found in each
format by that module's mapping.

How a TF-slim checkpoint's variables are read (Google's 1.0/224 release has 443):

* 137 *model variables* (27 convolution kernels, 27 x 4 batch-norm gamma, beta,
  moving_mean, moving_variance, and the logits' weights and biases);
* 137 ``<model variable>/ExponentialMovingAverage`` shadows of them;
* 166 optimizer slots (``/RMSProp``, ``/RMSProp_1`` of the 83 trained variables),
  ``global_step``, and 2 averages of losses (``total_loss/ExponentialMovingAverage``,
  ``softmax_cross_entropy_loss/value/ExponentialMovingAverage``), all ignored.

``checkpoint_weights="average"`` loads the shadows (what TF-slim's evaluation
restores and what the published accuracy was measured with), ``"raw"`` the
model variables; ``"auto"`` (default) takes the shadows when the checkpoint has
them for every model variable. The loader says which it used. TF-slim heads
have 1001 classes (0 = background): loading one into ``classes=1000`` drops the
background row, ``classes=1001`` keeps it.

Every problem is a ``WeightsError`` (a ``ValueError``) with one line naming the
variable and both shapes; source variables that are not used are reported.
Loading checks everything first and assigns nothing unless all of it fits.

This module does not build models (``MobileNetV1`` calls ``weight_sources.check_weights``
before building and :func:`load_weights` after). ``verbose=True`` prints the report: an
explicit request to print, as Keras' ``verbose``.
"""

import dataclasses
import os

import numpy as np

from mobilenet_tf.errors import WeightsError
from mobilenet_tf.model.weight_names import (HEAD_LAYER, find_backbone, keras_applications_layer,
                                             model_variables, slim_name)
from mobilenet_tf.model.weight_sources import (CHECKPOINT_WEIGHTS, IMAGENET_ALPHAS, WeightsSource,
                                               identify_source, imagenet_file_name, imagenet_size,
                                               imagenet_weights_path, read_source,
                                               unknown_size_note)

__all__ = ["LoadReport", "load_weights", "WeightsError"]


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_weights` did."""
    source: str
    kind: str
    loaded: int = 0
    checkpoint_weights: str = None          # "average" / "raw" for checkpoints
    notes: list = dataclasses.field(default_factory=list)     # background row dropped, head skipped
    ignored: dict = dataclasses.field(default_factory=dict)   # category -> count, by design
    unused: list = dataclasses.field(default_factory=list)    # source weights nothing took

    def lines(self):
        out = [f"Loaded {self.loaded} variables from {self.source}"
               + (f" ({_CHECKPOINT_CHOICE_TEXT[self.checkpoint_weights]})"
                  if self.checkpoint_weights else "") + "."]
        if self.ignored:
            out.append("Ignored by design: " + ", ".join(
                f"{count} {what}" for what, count in self.ignored.items()) + ".")
        out.extend(self.notes)
        if self.unused:
            shown = ", ".join(self.unused[:6]) + (", ..." if len(self.unused) > 6 else "")
            out.append(f"Not used: {len(self.unused)} variables of the source ({shown}).")
        return out


_CHECKPOINT_CHOICE_TEXT = {
    "average": "checkpoint_weights='average': the ExponentialMovingAverage shadows",
    "raw": "checkpoint_weights='raw': the raw variables, not their moving averages",
}


def _shape(array_or_shape):
    return tuple(int(s) for s in getattr(array_or_shape, "shape", array_or_shape))


def load_weights(model, source, *, skip_mismatched_head=False, checkpoint_weights="auto",
                 verbose=True):
    """Loads pretrained weights into an already-built MobileNetV1.

    Args:
      model: a model built by ``mobilenet_tf.MobileNetV1`` (or a model holding one
        as a nested layer, e.g. a fine-tuning wrapper).
      source: ``"imagenet"`` (the file for the model's α and input size), the path
        of a Keras 2 ``.h5`` file, a TF-slim checkpoint prefix, or this project's
        ``.keras`` / ``.weights.h5`` file (see the module docstring).
      skip_mismatched_head: leave the classifier (``Logits``) as it is when the
        source has no head or a head of another class count (fine-tuning to new
        classes). Without it such a head is an error. A 1001-class TF-slim head
        always loads into 1000 classes by dropping the background row.
      checkpoint_weights: for TF-slim checkpoints, ``"average"`` (the
        ExponentialMovingAverage shadows), ``"raw"`` or ``"auto"`` (the shadows
        when present: what the published accuracy was measured with).
      verbose: print what was loaded, what was ignored and what was not used.

    Returns:
      A :class:`LoadReport`.

    Raises:
      WeightsError: (a ValueError, one line) for a source that does not exist or
        is not a weights file, a missing variable, or a shape mismatch (naming the
        variable and both shapes). Nothing is assigned then.
    """
    if checkpoint_weights not in CHECKPOINT_WEIGHTS:
        raise WeightsError(f"`checkpoint_weights` must be one of {CHECKPOINT_WEIGHTS}. "
                           f"Received: checkpoint_weights={checkpoint_weights!r}")
    backbone = find_backbone(model)
    targets = model_variables(backbone)
    if isinstance(source, WeightsSource):
        resolved = source
    elif isinstance(source, str) and source == "imagenet":
        alpha = _model_alpha(backbone)
        resolved = WeightsSource("imagenet", imagenet_file_name(
            alpha, imagenet_size(alpha, backbone.input_shape[1:]),
            include_top=(HEAD_LAYER, "kernel") in targets))
    elif isinstance(source, (str, os.PathLike)):
        resolved = identify_source(source)
    else:
        raise WeightsError("`source` must be 'imagenet' or the path of a weights file or "
                           f"checkpoint. Received: source={source!r}")
    notes = []
    if resolved.kind == "imagenet":
        alpha = _model_alpha(backbone)
        path = imagenet_weights_path(alpha, imagenet_size(alpha, backbone.input_shape[1:]),
                                     include_top=(HEAD_LAYER, "kernel") in targets)
        if None in backbone.input_shape[1:3]:
            notes.append(unknown_size_note(os.path.basename(path)))
        resolved = WeightsSource("keras2_h5", path)

    tensors = read_source(resolved, backbone, checkpoint_weights)
    report = LoadReport(source=tensors.description, kind=tensors.kind,
                        checkpoint_weights=tensors.checkpoint_weights,
                        ignored=dict(tensors.ignored), notes=notes)
    assignments = []
    head_keys = [k for k in targets if k[0] == HEAD_LAYER]
    head_source = [k for k in tensors.entries if k[0] == HEAD_LAYER]
    skip_head = False
    if head_keys:
        model_classes = _shape(targets[(HEAD_LAYER, "kernel")])[-1]
        if not head_source:
            if not skip_mismatched_head:
                raise WeightsError(
                    f"weights: {tensors.description} has no classifier head but the model has "
                    f"one ({model_classes} classes): build with include_top=False or pass "
                    f"skip_mismatched_head=True")
            skip_head = True
            report.notes.append("Head not loaded: the source has no classifier head.")
        else:
            name, load = tensors.entries.get((HEAD_LAYER, "bias"),
                                             tensors.entries[head_source[0]])
            source_classes_ = _shape(load())[-1]
            if source_classes_ != model_classes and not (
                    source_classes_ == 1001 and model_classes == 1000):
                if not skip_mismatched_head:
                    raise WeightsError(
                        f"weights: {name} has shape ({source_classes_},) in "
                        f"{tensors.description} but the model's Logits/bias has shape "
                        f"({model_classes},): build with classes={source_classes_} or pass "
                        f"skip_mismatched_head=True")
                skip_head = True
                report.notes.append(f"Head not loaded: the source has {source_classes_} "
                                    f"classes, the model {model_classes}.")
    used = set()
    for key, variable in targets.items():
        if key[0] == HEAD_LAYER and skip_head:
            continue
        if key not in tensors.entries:
            wanted = "/".join(key)
            if tensors.kind == "slim_checkpoint":
                wanted = slim_name(*key)
            elif tensors.kind == "keras2_h5" and keras_applications_layer(key[0]):
                wanted += f" or {keras_applications_layer(key[0])}/{key[1]}"
            raise WeightsError(f"weights: {tensors.description} has no variable for the model's "
                               f"{'/'.join(key)} (looked for {wanted}, shape "
                               f"{_shape(variable)})")
        name, load = tensors.entries[key]
        value = np.asarray(load())
        target_shape = _shape(variable)
        if (key[0] == HEAD_LAYER and value.shape[-1:] == (1001,) and target_shape[-1:] == (1000,)
                and value.shape[:-1] == target_shape[:-1]):
            value = value[..., 1:]
            if "Dropped" not in " ".join(report.notes):
                report.notes.append("Dropped the background class (index 0) of the 1001-class "
                                    "head: the model has 1000 classes.")
        if value.shape != target_shape:
            raise WeightsError(f"weights: {name} has shape {value.shape} in {tensors.description} "
                               f"but the model's {'/'.join(key)} has shape {target_shape}")
        assignments.append((variable, value))
        used.add(key)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    report.loaded = len(assignments)
    report.unused = sorted(tensors.entries[k][0] for k in tensors.entries
                           if k not in used and not (skip_head and k[0] == HEAD_LAYER)) \
        + list(tensors.unmapped)
    if skip_head and head_source:
        report.ignored["head variables (head not loaded)"] = len(head_source)
    if head_source and not head_keys:
        report.notes.append("The source's classifier head is not used: the model has no head "
                            "(include_top=False).")
    if verbose:
        for line in report.lines():
            print(line)
    return report


def _model_alpha(backbone):
    """α of a built MobileNetV1, from its first layer's channels (32 at α=1)."""
    channels = _shape(backbone.get_layer("Conv2d_0").kernel)[-1]
    for alpha in IMAGENET_ALPHAS:
        if max(int(32 * alpha), 8) == channels:
            return alpha
    return channels / 32.0
