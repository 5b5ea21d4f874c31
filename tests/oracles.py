"""Independent recomputations the tests compare the library's reports with."""

import math

import numpy as np

import numerics


def published(value, printed, decimals):
    """True if the paper's `printed` figure (in millions) is `value` rounded or truncated: the
    paper prints Mult-Adds and parameters in millions, a few truncated rather than rounded
    (290.68M printed as 290)."""
    scaled = value / 1e6
    factor = 10 ** decimals
    return printed in (round(scaled, decimals), math.floor(scaled * factor) / factor)


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


def mediapipe_classify(path, images):
    """What MediaPipe Tasks' ImageClassifier (PyPI ``mediapipe``: the C++ task graph Android runs)
    says about each image (uint8 RGB at the model's size, so its resize is the identity):
    ``(scores, top, names)`` — every class's score (N, classes) by index, MediaPipe's first
    category per image, and ``{index: category_name}`` over all categories it returned."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as e:
        raise AssertionError(f"mediapipe is not installed ({e}): pip install -e '.[test,android]'") from None
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                            max_results=-1)
    scores, top, names = [], [], {}
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in images:
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
            (head,) = result.classifications
            row = np.full(len(head.categories), np.nan, np.float32)
            for category in head.categories:
                row[category.index] = category.score
                names[category.index] = category.category_name
            assert not np.isnan(row).any(), "MediaPipe left classes out"
            scores.append(row)
            top.append(head.categories[0].index)
    return np.stack(scores), np.asarray(top), names


def mediapipe_float_input(images, mean, std):
    """The float32 tensor MediaPipe makes of uint8 images for NormalizationOptions (mean, std):
    its ImageToTensorCalculator maps 0..255 linearly onto [(0 - mean) / std, (255 - mean) / std],
    x * ((max - min) / 255) + min in float32 (mediapipe image_preprocessing_graph.cc)."""
    low, high = np.float32((0.0 - mean) / std), np.float32((255.0 - mean) / std)
    scale = np.float32((high - low) / np.float32(255))
    return np.asarray(images, np.float32) * scale + low
