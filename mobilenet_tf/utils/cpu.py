"""The CPU a benchmark ran on, and the instruction sets its speed ratios depend on.

int8 and bfloat16 speed-ups come from particular instructions: XNNPACK's signed int8
kernels use AVX-512 VNNI (or AVX-VNNI) dot products where the CPU has them, oneDNN's
bfloat16 uses AVX-512 BF16 / AMX. A ratio measured on one CPU says little about another,
so every benchmark table (``bench/``) and the trade-off table of ``python -m
mobilenet_tf.tradeoff`` is printed under :func:`describe`'s line. Pure Python; reads
``/proc/cpuinfo`` only.
"""

import os
import platform

__all__ = ["FEATURES", "read_cpuinfo", "describe", "available_cores"]

# (/proc/cpuinfo flag, name printed)
FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512F"),
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("amx_tile", "AMX"),
)


def read_cpuinfo(path="/proc/cpuinfo"):
    """``(model name, set of flags)`` from a Linux cpuinfo file; ``(None, None)`` without one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:      # x86 / ARM spelling
            flags = set(value.split())
    return model, flags


def describe(path="/proc/cpuinfo"):
    """One line: CPU model, cores, and which of :data:`FEATURES` it has."""
    model, flags = read_cpuinfo(path)
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    cores = os.cpu_count() or 1
    if flags is None:
        features = "instruction sets unknown (no /proc/cpuinfo)"
    else:
        features = ", ".join(f"{name} {'yes' if flag in flags else 'no'}"
                             for flag, name in FEATURES)
    return f"CPU: {model}, {cores} cores; {features}"


def available_cores():
    """The cores this process may run on (its CPU affinity, which a container or ``taskset``
    narrows), else ``os.cpu_count()``: "all cores" for a thread count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
