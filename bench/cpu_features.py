"""The CPU line every benchmark table is printed under: ``mobilenet_tf.utils.cpu`` (the library
prints the same line under the trade-off table of ``python -m mobilenet_tf.tradeoff``).

    python bench/cpu_features.py
"""

import sys

from mobilenet_tf.utils.cpu import FEATURES, describe, read_cpuinfo  # noqa: F401

if __name__ == "__main__":
    print(describe())
    sys.exit(0)
