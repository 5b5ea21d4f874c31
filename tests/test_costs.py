"""The paper's published cost figures, reproduced by the pure-Python calculator.

Each table below is copied from the paper (Howard et al. 2017) or from the
TF-slim docstring of research/slim/nets/mobilenet_v1.py; the calculator must
reproduce it. The paper prints Mult-Adds and parameters in millions, rounded
to its printed precision; a few of its figures are truncated rather than
rounded (e.g. 290.68M printed as 290), so `published()` accepts either.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

from mobilenet_tf.model import architecture
from mobilenet_tf.model import costs
from oracles import published


# --- the slim docstring's exact base-network counts (no head) --------------------------------
@pytest.mark.parametrize("alpha,size,params,mult_adds", [
    (1.0, 224, 3_185_088, 567_716_352),
    (0.75, 128, 1_800_144, 106_002_432),
])
def test_slim_docstring_base_network(alpha, size, params, mult_adds):
    c = costs.count(alpha=alpha, image_size=size, include_top=False)
    assert c.params == params
    assert c.mult_adds == mult_adds


# --- Table 3: one 14x14x512 -> 512 layer ------------------------------------------------------
@pytest.mark.parametrize("layer_type,alpha,rho,mult_adds_m,params_m", [
    ("conv", 1.0, 1.0, 462, 2.36),
    ("separable", 1.0, 1.0, 52.3, 0.27),
    ("separable", 0.75, 1.0, 29.6, 0.15),
    ("separable", 0.75, 0.714, 15.1, 0.15),
])
def test_table3_single_layer(layer_type, alpha, rho, mult_adds_m, params_m):
    mult_adds, params = costs.layer_costs(layer_type, 3, 512, 512, 14, alpha=alpha, rho=rho)
    ma_decimals = 0 if mult_adds_m == int(mult_adds_m) else 1
    assert published(mult_adds, mult_adds_m, ma_decimals), mult_adds
    assert published(params, params_m, 2), params


def test_table3_exact_values():
    # The formulas behind Table 3, exactly: D_K^2·M·N·D_F^2 and D_K^2·M·D_F^2 + M·N·D_F^2.
    assert costs.layer_costs("conv", 3, 512, 512, 14) == (462_422_016, 2_359_296)
    assert costs.layer_costs("separable", 3, 512, 512, 14) == (52_283_392, 266_752)


# --- Table 2: resource per layer type at 1.0/224 ---------------------------------------------
def test_table2_breakdown():
    shares = costs.count().breakdown()
    assert list(shares) == ["Conv 1×1", "Conv DW 3×3", "Conv 3×3", "Fully Connected"]
    rounded = {k: (round(ma, 2), round(p, 2)) for k, (ma, p) in shares.items()}
    assert rounded["Conv 1×1"] == (94.86, 74.59)
    assert rounded["Conv DW 3×3"] == (3.06, 1.06)
    assert rounded["Fully Connected"] == (0.18, 24.33)
    # The paper prints 1.19% for Conv 3x3 Mult-Adds. The first layer costs
    # 3·3·3·32·112·112 = 10,838,016 of 568,740,352 Mult-Adds = 1.9056%, i.e.
    # 1.91 with its digits transposed: with 1.19 the paper's four rows sum to
    # 99.29%, with 1.91 to 100.01%. Its parameter share (0.02%) is as printed.
    assert rounded["Conv 3×3"] == (1.91, 0.02)
    assert round(sum(ma for ma, _ in rounded.values()), 2) == 100.01
    # The printed figure is the computed one with two digits swapped.
    printed, computed = "1.19", f"{shares['Conv 3×3'][0]:.2f}"
    assert computed != printed and sorted(computed) == sorted(printed)


# --- Table 4: separable vs full convolutions ---------------------------------------------------
def test_table4_separable_vs_full_convolution():
    separable = costs.count(conv_defs="mobilenet_v1")
    full = costs.count(conv_defs="conv_mobilenet")
    assert published(separable.mult_adds, 569, 0) and published(separable.params, 4.2, 1)
    # Conv MobileNet: 4,867.29M Mult-Adds vs the paper's 4866 (within 0.03%), 29.28M params -> 29.3.
    assert abs(full.mult_adds / 1e6 - 4866) / 4866 < 5e-4
    assert published(full.params, 29.3, 1)
    assert full.mult_adds == 4_867_293_184 and full.params == 29_281_120
    assert {layer.category for layer in full.layers} - {None} == {"Conv 3×3", "Fully Connected"}


# --- Table 5: shallow MobileNet -----------------------------------------------------------------
def test_table5_shallow():
    shallow = costs.count(conv_defs="shallow_mobilenet")
    assert published(shallow.mult_adds, 307, 0) and published(shallow.params, 2.9, 1)
    assert len(architecture.SHALLOW_MOBILENET_CONV_DEFS) == 14 - 5
    # Same cost through an explicit table (conv_defs is data, not a name).
    explicit = costs.count(conv_defs=list(architecture.SHALLOW_MOBILENET_CONV_DEFS))
    assert (explicit.mult_adds, explicit.params) == (shallow.mult_adds, shallow.params)


# --- Table 6: width multiplier at 224 ----------------------------------------------------------
@pytest.mark.parametrize("alpha,mult_adds_m,params_m", [
    (1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)])
def test_table6_width_multiplier(alpha, mult_adds_m, params_m):
    c = costs.count(alpha=alpha, image_size=224)
    assert published(c.mult_adds, mult_adds_m, 0), c.mult_adds
    assert published(c.params, params_m, 1), c.params


# --- Table 7: resolution at alpha 1 ------------------------------------------------------------
@pytest.mark.parametrize("size,mult_adds_m", [(224, 569), (192, 418), (160, 290), (128, 186)])
def test_table7_resolution(size, mult_adds_m):
    c = costs.count(alpha=1.0, image_size=size)
    assert published(c.mult_adds, mult_adds_m, 0), c.mult_adds
    assert published(c.params, 4.2, 1)


# --- Table 9: 0.50 MobileNet-160 ---------------------------------------------------------------
def test_table9_half_mobilenet_160():
    c = costs.count(alpha=0.5, image_size=160)
    assert published(c.mult_adds, 76, 0) and published(c.params, 1.32, 2)


# --- exact totals for the 16 published configurations (oracle: keras.applications count_params,
#     checked against Keras itself in test_model.py) ------------------------------------------
def test_batchnorm_inclusive_total_at_224():
    # keras.applications.MobileNet(weights=None).count_params() == 4,253,864.
    assert costs.count().params_with_batchnorm == 4_253_864


def test_table1_rows_at_224():
    c = costs.count()
    names = [layer.name for layer in c.layers]
    assert names == architecture.endpoint_names() + ["AvgPool_1a", "Logits", "Predictions"]
    rows = [(layer.type_stride, layer.filter_shape, layer.input_size) for layer in c.layers]
    assert rows[:5] == [
        ("Conv / s2", "3×3×3×32", (224, 224, 3)),
        ("Conv dw / s1", "3×3×32 dw", (112, 112, 32)),
        ("Conv / s1", "1×1×32×64", (112, 112, 32)),
        ("Conv dw / s2", "3×3×64 dw", (112, 112, 64)),
        ("Conv / s1", "1×1×64×128", (56, 56, 64)),
    ]
    assert rows[-3:] == [
        ("Avg Pool / s1", "Pool 7×7", (7, 7, 1024)),
        ("FC / s1", "1024×1000", (1, 1, 1024)),
        ("Softmax / s1", "Classifier", (1, 1, 1000)),
    ]
    # 28 layers counting depthwise and pointwise separately (section 3.2).
    assert sum(1 for layer in c.layers if layer.category) == 28


def test_output_stride_costs_more_and_marks_dilation():
    base = costs.count(alpha=0.25, image_size=128)
    os8 = costs.count(alpha=0.25, image_size=128, output_stride=8)
    assert os8.params == base.params and os8.mult_adds > base.mult_adds
    dilated = [layer for layer in os8.layers if layer.rate > 1]
    assert dilated and all("r" in layer.type_stride for layer in dilated)


@pytest.mark.parametrize("kwargs", [
    dict(alpha=0.5, image_size=96),
    dict(alpha=0.5, image_size=(96, 80), depth_multiplier=2),
    dict(alpha=0.25, image_size=64, depth_multiplier=3, min_depth=4),
    dict(alpha=0.25, image_size=96, depth_multiplier=2, output_stride=8),
    dict(alpha=0.25, image_size=64, conv_defs="conv_mobilenet"),
    dict(alpha=0.25, image_size=64, conv_defs="shallow_mobilenet", classes=10),
])
def test_every_row_equals_the_keras_layers_it_counts(kwargs):
    """Oracle: the built Keras model. A convolution's Mult-Adds are its kernel's weights (each
    used once per output position) times its output's height and width; its parameters are
    the kernel's weights. Depthwise kernels with depth_multiplier m hold k·k·C·m weights."""
    import keras
    import mobilenet_tf
    size = kwargs.get("image_size")
    shape = (size, size, 3) if isinstance(size, int) else (*size, 3)
    model = mobilenet_tf.MobileNetV1(input_shape=shape, **{k: v for k, v in kwargs.items()
                                                           if k != "image_size"})
    expected = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            weights = int(np.prod(layer.kernel.shape))
            height, width = layer.output.shape[1:3]
            expected[layer.name] = (weights * height * width, weights)
    counted = costs.count(**kwargs)
    rows = {layer.name: (layer.mult_adds, layer.params) for layer in counted.layers
            if layer.category is not None}
    assert rows == expected
    assert counted.params_with_batchnorm == model.count_params()


def test_rectangular_and_depth_multiplier():
    c = costs.count(alpha=0.5, image_size=(160, 128), depth_multiplier=2)
    first_dw = c.layers[1]
    assert first_dw.input_size == (80, 64, 16) and first_dw.filter_shape == "3×3×16×2 dw"
    assert c.layers[2].filter_shape == "1×1×32×32"


def test_table_text_has_table1_and_table2():
    text = costs.count(alpha=0.5, image_size=160).table()
    assert "Conv2d_13_pointwise" in text and "Table 2. Resource Per Layer Type" in text
    assert "76,524,800" in text and "1,319,648" in text and "89.92%" in text


def test_cli_prints_table_without_tensorflow():
    code = ("import sys, runpy; sys.argv=['costs', '--alpha=0.5', '--image_size=160'];"
            "runpy.run_module('mobilenet_tf.costs', run_name='__main__', alter_sys=True)")
    out = subprocess.run([sys.executable, "-c", code + ";"], capture_output=True, text=True)
    # run_module raises SystemExit(0) from sys.exit(main()).
    assert out.returncode == 0, out.stderr
    assert "Total" in out.stdout and "Fully Connected" in out.stdout
    check = subprocess.run(
        [sys.executable, "-c", "import sys, mobilenet_tf.costs, mobilenet_tf.model.costs; "
                               "print('tensorflow' in sys.modules, 'keras' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert check.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("argv,pattern", [
    (["--alpha=0"], r"`alpha` .* must be a number > 0\. Received: alpha=0\.0"),
    (["--image_size=0"], r"`image_size` must be at least 32x32 .*Received: image_size=0"),
    (["--image_size=31"], r"`image_size` must be at least 32x32 .*Received: image_size=31"),
    (["--image_size=32x31"], r"`image_size` must be at least 32x32 .*Received: image_size=\(32, 31\)"),
    (["--output_stride=4"], r"`output_stride` must be None, 8, 16 or 32\. Received: output_stride=4"),
    (["--classes=0"], r"`classes` must be an int >= 1 .*Received: classes=0"),
])
def test_cli_errors(argv, pattern):
    out = subprocess.run([sys.executable, "-m", "mobilenet_tf.costs"] + argv,
                         capture_output=True, text=True)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert re.search(pattern, last), last


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(alpha=-1), r"`alpha` \(the width multiplier α\) must be a number > 0\. Received: alpha=-1"),
    (dict(alpha=float("nan")), r"Received: alpha=nan"),
    (dict(depth_multiplier=0), r"`depth_multiplier` .* must be an int >= 1\. Received: depth_multiplier=0"),
    (dict(min_depth=0), r"`min_depth` must be an int >= 1\. Received: min_depth=0"),
    (dict(conv_defs="resnet"), r"`conv_defs` must be .*Received: conv_defs='resnet'"),
    (dict(conv_defs=[("Pool", 3, 1, 32)]), r"`conv_defs` row 0 must be a Conv.*Received: conv_defs\[0\]"),
    (dict(image_size=(1, 2, 3)), r"`image_size` must be an int .*Received: image_size=\(1, 2, 3\)"),
])
def test_count_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        costs.count(**kwargs)


def test_layer_costs_errors():
    with pytest.raises(ValueError, match=r"`layer_type` must be 'conv' or 'separable'\. Received: layer_type='dw'"):
        costs.layer_costs("dw", 3, 512, 512, 14)
    with pytest.raises(ValueError, match=r"`rho` .* must be in \(0, 1\]\. Received: rho=1\.5"):
        costs.layer_costs("conv", 3, 512, 512, 14, rho=1.5)


def test_channel_rule_truncates_like_slim():
    # slim: depth(c) = max(int(c * α), min_depth). At α=0.3 truncation and rounding differ
    # (32·0.3 = 9.6 -> 9, 256·0.3 = 76.8 -> 76); at α=0.1, 32·0.1 = 3.2 is clamped to 8.
    outs = [layer.out_channels for layer in architecture.plan(alpha=0.3) if layer.kind != "depthwise"]
    assert outs == [9, 19, 38, 38, 76, 76, 153, 153, 153, 153, 153, 153, 307, 307]
    assert architecture.plan(alpha=0.1)[0].out_channels == 8
    assert architecture.plan(alpha=0.1, min_depth=2)[0].out_channels == 3
