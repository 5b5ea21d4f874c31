"""Where the suite's numeric tolerances come from.

A tolerance here is computed from the computation it guards, never read off
one machine's result:

* Two float32 evaluations of the same arithmetic in another order (another
  CPU's kernels, batch size, device count) differ by rounding. A dot product of
  length K carries a relative error of at most about K·u (u = 2**-24, float32's
  unit roundoff; Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1);
  through a network the layers' errors add, so outputs agree to
  u · ΣK · (output scale) — :func:`float32_bound` with :func:`reduction_lengths`.
* Where that worst case is too loose to tell right from wrong, the test
  evaluates the same model in float64 (:func:`float64_copy`) and measures
  float32's actual rounding error side by side, on the same inputs.
* Softmax: ``|Δp_i| <= 2 p_i max|Δz|`` for a change Δz of the logits, so
  probabilities move by at most twice the logits' error.
"""

import math

import numpy as np

U32 = 2.0 ** -24          # float32 unit roundoff (half an ulp of 1)
U16 = 2.0 ** -11          # float16
UBF16 = 2.0 ** -8         # bfloat16


def reduction_lengths(model):
    """The length of every sum the model's forward pass computes per output value:
    k·k·C_in for a convolution, k·k for a depthwise one, C_in for a dense layer,
    H·W for a global average pool (in layer order)."""
    import keras
    lengths = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            lengths.append(int(np.prod(layer.kernel_size)))
        elif isinstance(layer, keras.layers.Conv2D):
            lengths.append(int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1]))
        elif isinstance(layer, keras.layers.Dense):
            lengths.append(int(layer.input.shape[-1]))
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
            lengths.append(int(np.prod(layer.input.shape[1:3])))
    return lengths


def float32_bound(model, scale):
    """Largest difference two float32 evaluations of `model` may show on outputs of
    magnitude `scale`: u · ΣK · scale for each of the two, so twice that."""
    return 2 * U32 * sum(reduction_lengths(model)) * scale


def softmax_sum_bound(classes):
    """|Σp - 1| of a float32 softmax over `classes` outputs: each p_i carries a few
    roundings (exp, the sum's share, the division), the sum `classes` more."""
    return (classes + 4) * U32


def float64_copy(model):
    """The same Keras model computing in float64 (weights cast exactly): the
    exact reference for float32 rounding studies."""
    config = model.get_config()
    for layer in config["layers"]:
        dtype = layer["config"].get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
            dtype["config"]["name"] = "float64"
        elif dtype is not None:
            layer["config"]["dtype"] = "float64"
    twin = model.__class__.from_config(config)
    twin.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return twin


def binomial_sd(n, p):
    """Standard deviation of a count of successes in n trials of probability p."""
    return math.sqrt(n * p * (1 - p))


def beyond_chance(n, p, alpha=1e-6):
    """The fewest hits of n that a guesser right with probability p reaches with probability at
    most `alpha` (the exact binomial tail): a score at least this is learning, not luck."""
    tail = 0.0
    for k in range(n, -1, -1):
        tail += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if tail > alpha:
            return k + 1
    return 0
