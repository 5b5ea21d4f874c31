"""Print the cost tables of one MobileNetV1 configuration: the paper's Table 1 (per-layer
Mult-Adds and parameters) and Table 2 (share by layer type).

    python -m mobilenet_tf.costs --alpha=0.5 --image_size=160

A thin command over ``mobilenet_tf.model.costs`` (pure Python: no TensorFlow import). The
library's names are also reachable here, so ``mobilenet_tf.costs.count(...)`` keeps working.
"""

import argparse
import sys

from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.model import architecture
from mobilenet_tf.model.costs import CATEGORY_ORDER, Costs, LayerCost, count, layer_costs  # noqa: F401

__all__ = ["count", "layer_costs", "Costs", "LayerCost", "CATEGORY_ORDER", "main"]


def _parse_size(text):
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int or HxW, got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise argparse.ArgumentTypeError(f"must be an int or HxW, got {text!r}")


def main(argv=None):
    parser = cli_args.ArgumentParser(
        prog="python -m mobilenet_tf.costs",
        description="Print the paper's Table 1 (per-layer Mult-Adds and parameters) and Table 2 "
                    "(share by layer type) for one MobileNetV1 configuration.")
    parser.add_argument("--alpha", type=float, default=1.0, help="width multiplier α (default 1.0)")
    parser.add_argument("--image_size", type=_parse_size, default=224,
                        help="input resolution, e.g. 160 or 160x128 (sets ρ = size/224)")
    parser.add_argument("--depth_multiplier", type=int, default=1,
                        help="depthwise channel multiplier (Keras' meaning; default 1)")
    parser.add_argument("--min_depth", type=int, default=8)
    parser.add_argument("--conv_defs", default="mobilenet_v1",
                        choices=sorted(architecture.NAMED_CONV_DEFS))
    parser.add_argument("--output_stride", type=int, default=None)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--include_top", default=True, action=argparse.BooleanOptionalAction)
    args = parser.parse_args(argv)
    try:
        result = count(alpha=args.alpha, image_size=args.image_size,
                       depth_multiplier=args.depth_multiplier, min_depth=args.min_depth,
                       conv_defs=args.conv_defs, output_stride=args.output_stride,
                       include_top=args.include_top, classes=args.classes)
        table = result.table()
    except ValueError as e:
        parser.error(str(e))
    except OverflowError:
        # α = 1e300 (issue 27): layer widths are exact ints, the table's figures floats.
        parser.error(f"argument --alpha: the counts of α={args.alpha:g} overflow a float "
                     f"(the widest layer would have about {1024 * args.alpha:.3g} channels); "
                     "give a smaller α")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
