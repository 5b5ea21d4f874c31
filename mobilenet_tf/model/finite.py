"""Whether a model's weights are all finite: what may be saved as a finished model, a
checkpoint, or exported (issue 27: a learning rate of 1e38 trained a model of NaN weights that
was saved and exported without a word).

:func:`nonfinite_weights` names the weight tensors (trainable or not: batch norm statistics
too) that hold a NaN or an infinity; :func:`nonfinite_problem` says it in one line.
"""

import numpy as np

__all__ = ["nonfinite_weights", "nonfinite_problem"]


def nonfinite_weights(model):
    """The paths of `model`'s weight tensors holding a NaN or ±inf, in the model's order."""
    return [getattr(w, "path", w.name) for w in model.weights
            if not np.isfinite(np.asarray(w.numpy(), dtype=np.float64)).all()]


def nonfinite_problem(model):
    """``"N of M weight tensors hold NaN or inf (first: PATH)"``, or None when all are finite."""
    bad = nonfinite_weights(model)
    if not bad:
        return None
    return f"{len(bad)} of {len(model.weights)} weight tensors hold NaN or inf (first: {bad[0]})"
