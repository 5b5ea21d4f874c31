"""The memory a MobileNetV1 run needs, estimated from the architecture table before anything is
built, and the memory this machine has free (pure Python: no TensorFlow).

The estimate is the activations of the layers (docs/model-and-costs.md#memory):

* inference holds at least the largest pair of consecutive tensors (a layer's input and its
  output): ``batch x 4 bytes x max(input + output elements)``;
* training keeps, for the backward pass, every convolution's output and its activation's
  (ReLU6 after batch norm): ``batch x 4 bytes x 2 x sum(output elements)``, plus the input
  batch;
* weights: ``parameters x 4 bytes``, four times in training (weights, gradients, two
  optimizer slots).

Everything TensorFlow adds (workspace, the input pipeline's buffers, the runtime) is left out,
so the estimate is a lower bound: a run it refuses cannot fit; one it lets through may still
need more. Available memory: ``MemAvailable`` of ``/proc/meminfo`` (else
``os.sysconf``), and the cgroup's limit when it is lower.
"""

import os

from mobilenet_tf.model import architecture

__all__ = ["needed_bytes", "available_bytes", "memory_problem"]

_FLOAT = 4


def needed_bytes(alpha, image_size, batch_size, *, training, conv_defs=None, classes=1000):
    """Lower bound of the bytes a forward pass (``training=False``) or a training step of
    `batch_size` images of `image_size` (int or (h, w)) needs; see the module docstring."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    layers = architecture.plan(conv_defs or architecture.MOBILENET_V1_CONV_DEFS, alpha=alpha,
                               input_size=size)
    inputs = size[0] * size[1] * 3
    outputs = [layer.output_size[0] * layer.output_size[1] * layer.out_channels
               for layer in layers]
    params = sum(layer.kernel[0] * layer.kernel[1] * layer.out_channels
                 * (1 if layer.kind == "depthwise" else layer.in_channels) for layer in layers)
    params += layers[-1].out_channels * classes
    if training:
        activations = inputs + 2 * sum(outputs)
        weights = 4 * params
    else:
        chain = [inputs] + outputs
        activations = max(a + b for a, b in zip(chain, chain[1:]))
        weights = params
    return _FLOAT * (batch_size * activations + weights)


def _cgroup_free():
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return int(limit) - int(f.read().strip())
    except (OSError, ValueError):
        return None


def available_bytes():
    """Memory available to this process now, in bytes (None when it cannot be told)."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None
    limit = _cgroup_free()
    return min(free, limit) if limit is not None else free


def memory_problem(alpha, image_size, batch_size, *, training, conv_defs=None, classes=1000,
                   names=("--image_size", "--batch_size")):
    """One line when the estimate (:func:`needed_bytes`) exceeds the memory available, else
    None. `names`: how the caller's user sets the size and the batch."""
    needed = needed_bytes(alpha, image_size, batch_size, training=training,
                          conv_defs=conv_defs, classes=classes)
    free = available_bytes()
    if free is None or needed <= free:
        return None
    what = "training" if training else "inference"
    return (f"{what} of α={alpha:g} at image_size={image_size}, batch {batch_size} needs at least "
            f"{needed / 2**30:.1f} GiB of memory (activations of every layer, "
            "docs/model-and-costs.md#memory), more than the "
            f"{free / 2**30:.1f} GiB available: give a smaller {' or '.join(names)}")
