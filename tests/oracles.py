"""Independent recomputations the tests compare the library's reports with."""

import numpy as np

import numerics


def validation_scores(model, images, one_hot, weight_decay):
    """What Keras' evaluate() of a train.py model should report on these images, recomputed
    with NumPy from the model's outputs: ``(top-1 hits, top-5 hits, loss, loss bound)``.

    The loss is the mean cross-entropy plus TF-slim's L2 term wd·Σw²/2 over the convolution
    kernels but the depthwise ones (Keras adds regularization losses to the validation loss
    too). ``loss bound``: how far float32 may move it (-log p by twice the logits' rounding,
    a sum of N squares by N·u of itself).
    """
    import keras
    probs = np.asarray(model.predict(images, verbose=0), np.float64)
    logits = np.asarray(keras.Model(model.input, model.get_layer("SpatialSqueeze").output)
                        .predict(images, verbose=0))
    labels = np.asarray(one_hot).argmax(axis=1)
    ranked = np.argsort(-probs, axis=1)
    top1 = int((ranked[:, 0] == labels).sum())
    top5 = int((ranked[:, :5] == labels[:, None]).any(axis=1).sum())
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    squares = sum(float(np.sum(np.asarray(k, np.float64) ** 2)) for k in kernels)
    penalty = weight_decay * squares / 2
    loss = float(np.mean(-np.log(probs[np.arange(len(labels)), labels]))) + penalty
    bound = (2 * numerics.float32_bound(model, np.abs(logits).max())
             + numerics.U32 * sum(int(np.prod(k.shape)) for k in kernels) * penalty)
    return top1, top5, loss, bound


def tflite_ops_and_tensors(content):
    """The model's own operators (no XNNPACK delegate folding them into DELEGATE nodes)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_content=content, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    return interpreter, interpreter._get_ops_details(), tensors


def stored_weight_dtypes(content, with_sizes=False):
    """dtype of each conv / FC weight as stored (behind a DEQUANTIZE for float16)."""
    _, ops, tensors = tflite_ops_and_tensors(content)
    producer = {int(out): op for op in ops for out in op["outputs"]}
    dtypes = []
    for op in ops:
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            index = int(op["inputs"][1])
            if index in producer and producer[index]["op_name"] == "DEQUANTIZE":
                index = int(producer[index]["inputs"][0])
            name = np.dtype(tensors[index]["dtype"]).name
            dtypes.append((name, int(np.prod(tensors[index]["shape"]))) if with_sizes else name)
    return dtypes
