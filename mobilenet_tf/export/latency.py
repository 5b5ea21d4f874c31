"""Latency of several ``.tflite`` files measured side by side: the median time of one
``invoke()`` of each, the files taking turns round by round, so that whatever else the machine
does (other jobs, frequency changes) hits all of them alike and their ratios hold.

Used by ``python -m mobilenet_tf.tradeoff`` and ``bench/export_benchmark.py``. Writes nothing.
"""

import statistics

__all__ = ["interleaved_latency"]


def interleaved_latency(runners, *, rounds=7, runs=10, warmup=5, image_for=None):
    """``{key: median ms}`` of one invoke of each runner of ``{key: TFLiteClassifier}``.

    Each runner first runs `warmup` invokes; then, `rounds` times, each runner in turn runs
    `runs` invokes and records their median. The result is the median of a runner's `rounds`
    round medians. ``image_for(runner)`` gives the image each runner is timed on (default: the
    runner's mid-grey image; latency does not depend on the pixel values).
    """
    for name, value in (("rounds", rounds), ("runs", runs), ("warmup", warmup)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")

    def image(runner):
        return None if image_for is None else image_for(runner)

    times = {key: [] for key in runners}
    for runner in runners.values():
        runner.latency_ms(image(runner), runs=warmup, warmup=warmup)
    for _ in range(rounds):
        for key, runner in runners.items():
            times[key].append(runner.latency_ms(image(runner), runs=runs, warmup=1))
    return {key: statistics.median(values) for key, values in times.items()}
