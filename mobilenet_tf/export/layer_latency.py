"""Each layer's share of a ``.tflite`` file's latency, where LiteRT's Python API can measure it.

LiteRT's Python interpreter times only a whole ``invoke()`` (per-operator profiling is in the
``benchmark_model`` binary, which no pip package ships). So :func:`layer_latency_ms` times the
file cut short after each operator: the same flatbuffer, its operators up to and including
operator k, with k's output as the graph's output (``ai_edge_litert``'s schema object API, as
:mod:`mobilenet_tf.export.metadata` uses it). A layer's time is the difference between the
prefixes ending at its operator and at the one before; the prefixes take turns, round after
round, so that machine noise hits them alike, and each figure is the fastest run (noise only
adds time). Layers cheaper than the noise come out near zero (or slightly negative: shown as
they are measured). Whole files side by side are timed by
:func:`mobilenet_tf.export.latency.interleaved_latency` (medians); these cut files are no
classifiers (their output is an inner tensor) and a difference of two times wants each time's
least noisy estimate, the fastest run, hence this module's own loop. Writes no files.
"""

import time

import numpy as np

__all__ = ["truncated", "layer_latency_ms"]


def truncated(content, last_op):
    """The ``.tflite`` bytes `content` cut after operator index `last_op` (its first output
    becomes the graph's only output; signatures and metadata are dropped)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    graph = model.subgraphs[0]
    graph.operators = graph.operators[:last_op + 1]
    graph.outputs = [int(graph.operators[-1].outputs[0])]
    model.signatureDefs = []
    model.metadata = []
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _interpreter(content, num_threads):
    from mobilenet_tf.export import tflite
    interpreter = tflite._interpreter(content, num_threads)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.full(detail["shape"], 128 if detail["dtype"] in (
        np.uint8,) else 0, detail["dtype"]))
    return interpreter


def layer_latency_ms(content, mapped, *, rounds=10, runs=3, num_threads=1, warmup=3):
    """``({layer: ms}, total ms)``: the fastest time of each layer of `mapped`
    (:func:`mobilenet_tf.export.layer_map.map_layers` of `content`) in one ``invoke()``, and of the
    whole file, with `num_threads` threads. A layer's time includes the QUANTIZE / DEQUANTIZE
    operators just before it (the seams of a layer kept in float)."""
    ends = [op.op_index for op in mapped]
    prefixes = {end: _interpreter(truncated(content, end), num_threads) for end in ends}
    whole = _interpreter(content, num_threads)
    everything = list(prefixes.items()) + [(None, whole)]
    for _, interpreter in everything:
        for _ in range(warmup):
            interpreter.invoke()
    times = {end: [] for end, _ in everything}
    for _ in range(rounds):
        for end, interpreter in everything:
            for _ in range(runs):
                start = time.perf_counter()
                interpreter.invoke()
                times[end].append(time.perf_counter() - start)
    fastest = {end: 1000.0 * min(t) for end, t in times.items()}
    per_layer, previous = {}, 0.0
    for op in mapped:
        per_layer[op.layer] = fastest[op.op_index] - previous
        previous = fastest[op.op_index]
    return per_layer, fastest[None]
