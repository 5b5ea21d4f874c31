"""Mult-Adds and parameters of a MobileNetV1, counted the way the paper counts.

Pure Python: importing this module does not import TensorFlow.

The paper (Howard et al. 2017, Tables 1-7) counts, per layer,

* Mult-Adds of convolutions and the fully connected layer: a KxK convolution
  from M to N channels producing an F_h x F_w map costs K·K·M·N·F_h·F_w, a
  KxK depthwise convolution K·K·M·F_h·F_w (equations 2-7); the fully
  connected layer M·classes. Pooling, batch norm, activations and softmax are
  not counted;
* parameters as the weights of those layers only (no biases, no batch norm).

``Costs.params_with_batchnorm`` adds what the paper leaves out — batch norm's
γ, β, moving mean and moving variance (4 per channel) and the classifier's
bias — and equals Keras' ``model.count_params()`` for the same configuration.

Usage::

    >>> from mobilenet_tf.model import costs
    >>> c = costs.count(alpha=0.5, image_size=160)
    >>> print(c)                      # one-line summary, paper units
    >>> print(c.table())              # the paper's Table 1 + Table 2 for this configuration

or from the shell: ``python -m mobilenet_tf.costs --alpha=0.5 --image_size=160`` (the command
``mobilenet_tf/costs.py``).
"""

import dataclasses

from mobilenet_tf.model import architecture
from mobilenet_tf.model import validation

__all__ = ["LayerCost", "Costs", "count", "layer_costs", "CATEGORY_ORDER"]

# Table 2's rows, in the paper's order.
CATEGORY_ORDER = ("Conv 1×1", "Conv DW 3×3", "Conv 3×3", "Fully Connected")


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One row of the paper's Table 1, with its cost."""
    name: str              # TF-slim end point / Keras layer name
    layer_type: str        # "Conv", "Conv dw", "Avg Pool", "FC", "Softmax"
    stride: int
    rate: int              # dilation rate (1 unless output_stride is set)
    filter_shape: str      # "3×3×3×32", "3×3×32 dw", "Pool 7×7", "1024×1000", "Classifier"
    input_size: tuple      # (h, w, c) of the layer's input
    mult_adds: int         # as the paper counts them
    params: int            # weights as the paper counts them (no bias, no batch norm)
    batchnorm_params: int = 0   # γ, β, moving mean, moving variance
    bias_params: int = 0
    category: str = None   # Table 2 row, or None for rows that cost nothing

    @property
    def type_stride(self):
        text = f"{self.layer_type} / s{self.stride}"
        return text + (f" r{self.rate}" if self.rate > 1 else "")


def _kernel_text(kernel):
    return f"{kernel[0]}×{kernel[1]}"


def _conv_row(layer, in_size):
    kh, kw = layer.kernel
    out_h, out_w = layer.output_size
    m, n = layer.in_channels, layer.out_channels
    if layer.kind == "depthwise":
        mult = n // m    # depthwise channel multiplier
        return LayerCost(
            name=layer.name, layer_type="Conv dw", stride=layer.stride, rate=layer.rate,
            filter_shape=f"{_kernel_text(layer.kernel)}×{m}{'' if mult == 1 else f'×{mult}'} dw",
            input_size=in_size, mult_adds=kh * kw * n * out_h * out_w, params=kh * kw * n,
            batchnorm_params=4 * n, category=f"Conv DW {_kernel_text(layer.kernel)}")
    return LayerCost(
        name=layer.name, layer_type="Conv", stride=layer.stride, rate=layer.rate,
        filter_shape=f"{_kernel_text(layer.kernel)}×{m}×{n}", input_size=in_size,
        mult_adds=kh * kw * m * n * out_h * out_w, params=kh * kw * m * n,
        batchnorm_params=4 * n, category=f"Conv {_kernel_text(layer.kernel)}")


@dataclasses.dataclass(frozen=True)
class Costs:
    """Per-layer costs of one configuration and their totals."""
    description: str
    layers: tuple

    @property
    def mult_adds(self):
        return sum(layer.mult_adds for layer in self.layers)

    @property
    def params(self):
        """Parameters as the paper counts them: conv and FC weights."""
        return sum(layer.params for layer in self.layers)

    @property
    def params_with_batchnorm(self):
        """Every variable Keras counts: weights, the logits bias and batch norm (4 per channel)."""
        return sum(layer.params + layer.batchnorm_params + layer.bias_params
                   for layer in self.layers)

    def by_type(self):
        """{category: (mult_adds, params)} in Table 2's order (other kernel sizes after)."""
        totals = {}
        for layer in self.layers:
            if layer.category is not None:
                ma, p = totals.get(layer.category, (0, 0))
                totals[layer.category] = (ma + layer.mult_adds, p + layer.params)
        order = [c for c in CATEGORY_ORDER if c in totals] + sorted(
            c for c in totals if c not in CATEGORY_ORDER)
        return {c: totals[c] for c in order}

    def breakdown(self):
        """Table 2: {category: (% of Mult-Adds, % of parameters)}."""
        total_ma, total_p = self.mult_adds, self.params
        return {c: (100.0 * ma / total_ma if total_ma else 0.0, 100.0 * p / total_p if total_p else 0.0)
                for c, (ma, p) in self.by_type().items()}

    def __str__(self):
        return (f"{self.description}: {self.mult_adds / 1e6:.2f} Million Mult-Adds, "
                f"{self.params / 1e6:.2f} Million Parameters "
                f"({self.mult_adds:,} Mult-Adds; {self.params:,} parameters, "
                f"{self.params_with_batchnorm:,} with batch norm and bias)")

    def __repr__(self):
        return (f"Costs({self.description!r}, mult_adds={self.mult_adds}, params={self.params}, "
                f"params_with_batchnorm={self.params_with_batchnorm})")

    def table(self):
        """The paper's Table 1 for this configuration, totals, and its Table 2."""
        header = ("Name", "Type / Stride", "Filter Shape", "Input Size", "Mult-Adds", "Parameters")
        rows = [header]
        for layer in self.layers:
            rows.append((layer.name, layer.type_stride, layer.filter_shape,
                         "×".join(str(s) for s in layer.input_size),
                         f"{layer.mult_adds:,}" if layer.category else "-",
                         f"{layer.params:,}" if layer.category else "-"))
        rows.append(("Total", "", "", "", f"{self.mult_adds:,}", f"{self.params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        right = {4, 5}

        def fmt(row):
            return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                             for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(fmt(header))
        lines = [f"Table 1. {self.description}", rule, fmt(header), rule]
        lines += [fmt(r) for r in rows[1:-1]]
        lines += [rule, fmt(rows[-1]), "",
                  f"{self.mult_adds / 1e6:.1f} Million Mult-Adds, {self.params / 1e6:.2f} Million "
                  f"Parameters ({self.params_with_batchnorm:,} parameters with batch norm and "
                  "biases, as Keras' count_params())", "",
                  "Table 2. Resource Per Layer Type"]
        t2 = [("Type", "Mult-Adds", "Parameters")] + [
            (c, f"{ma:.2f}%", f"{p:.2f}%") for c, (ma, p) in self.breakdown().items()]
        w2 = [max(len(r[i]) for r in t2) for i in range(3)]
        lines += ["  ".join(cell.ljust(w2[0]) if i == 0 else cell.rjust(w2[i])
                            for i, cell in enumerate(r)) for r in t2]
        return "\n".join(lines)


def count(alpha=1.0, image_size=224, depth_multiplier=1, min_depth=8, conv_defs=None,
          output_stride=None, include_top=True, classes=1000, in_channels=3):
    """Counts a MobileNetV1's Mult-Adds and parameters layer by layer.

    Args:
      alpha: width multiplier α (TF-slim's ``depth_multiplier``): channels of
        every layer are ``max(int(c * alpha), min_depth)``.
      image_size: input resolution, an int or ``(height, width)``, each at least 32
        (what ``MobileNetV1`` builds); the resolution multiplier is ρ = image_size / 224.
      depth_multiplier: depthwise channel multiplier (Keras' meaning), default 1.
      min_depth: lower bound on channels at small α (TF-slim's ``min_depth``).
      conv_defs: the architecture table, or one of "mobilenet_v1",
        "conv_mobilenet" (Table 4), "shallow_mobilenet" (Table 5).
      output_stride: None, 8, 16 or 32 (dilated layers after that stride).
      include_top: count the average pool, fully connected and softmax rows.
      classes: outputs of the fully connected layer.
      in_channels: channels of the input image.

    Returns:
      A :class:`Costs`.

    Raises:
      ValueError: for any argument out of range, with a one-line message.
    """
    alpha = validation.check_alpha(alpha)
    depth_multiplier = validation.check_depth_multiplier(depth_multiplier)
    min_depth = validation.check_min_depth(min_depth)
    output_stride = validation.check_output_stride(output_stride)
    conv_defs = validation.check_conv_defs(conv_defs)
    classes = validation.check_classes(classes)
    size = validation.check_image_size(image_size)      # what the builder accepts: >= 32
    layers = architecture.plan(conv_defs, alpha=alpha, depth_multiplier=depth_multiplier,
                               min_depth=min_depth, output_stride=output_stride,
                               input_size=size, in_channels=in_channels)
    rows = [_conv_row(layer, layer.input_size + (layer.in_channels,)) for layer in layers]
    if include_top:
        last = layers[-1]
        (h, w), c = last.output_size, last.out_channels
        rows.append(LayerCost("AvgPool_1a", "Avg Pool", 1, 1, f"Pool {h}×{w}", (h, w, c), 0, 0))
        rows.append(LayerCost("Logits", "FC", 1, 1, f"{c}×{classes}", (1, 1, c), c * classes,
                              c * classes, bias_params=classes, category="Fully Connected"))
        rows.append(LayerCost("Predictions", "Softmax", 1, 1, "Classifier", (1, 1, classes), 0, 0))
    name = {architecture.MOBILENET_V1_CONV_DEFS: "MobileNetV1",
            architecture.CONV_MOBILENET_CONV_DEFS: "Conv MobileNet",
            architecture.SHALLOW_MOBILENET_CONV_DEFS: "Shallow MobileNet"}.get(
                conv_defs, "MobileNetV1 (custom conv_defs)")
    description = (f"{name} α={alpha:g} at {size[0]}×{size[1]}"
                   + (f", output_stride={output_stride}" if output_stride else "")
                   + (f", {classes} classes" if include_top else ", no top"))
    return Costs(description=description, layers=tuple(rows))


def layer_costs(layer_type, kernel_size, in_channels, out_channels, feature_size,
                alpha=1.0, rho=1.0):
    """Mult-Adds and parameters of one layer by the paper's equations (2)-(7).

    ``layer_type`` is "conv" (a standard KxK convolution, eq. 2) or
    "separable" (depthwise KxK then pointwise 1x1, eq. 4; with α eq. 6, with ρ
    eq. 7). ``feature_size`` is D_F, the output feature map's side; ρ scales it
    to ``round(ρ·D_F)`` (ρ is set implicitly through the input resolution).
    Returns ``(mult_adds, params)``. This is what Table 3 tabulates.
    """
    if layer_type not in ("conv", "separable"):
        raise ValueError(f"`layer_type` must be 'conv' or 'separable'. Received: layer_type={layer_type!r}")
    alpha = validation.check_alpha(alpha)
    if not architecture.is_number(rho) or not 0 < rho <= 1:
        raise ValueError(f"`rho` (the resolution multiplier ρ) must be in (0, 1]. Received: rho={rho!r}")
    m, n = int(in_channels * alpha), int(out_channels * alpha)
    f = round(feature_size * rho)
    k2 = kernel_size * kernel_size
    if layer_type == "conv":
        return k2 * m * n * f * f, k2 * m * n
    return k2 * m * f * f + m * n * f * f, k2 * m + m * n
