"""Run a MobileNetV1 ``.tflite`` image classifier with the LiteRT interpreter.

:class:`TFLiteClassifier` wraps ``ai_edge_litert.interpreter.Interpreter`` (the
successor of the deprecated ``tf.lite.Interpreter``; XNNPACK is its default CPU
delegate) for any single-image classifier: this project's exports and
Google's official ``mobilenet_v1_*_quant.tflite`` files alike. It takes the
images either as the camera gives them (uint8 RGB 0..255, already resized to
the model's size) or as the Keras model takes them (float32 in [-1, 1]) and
converts them to what the file's input tensor wants:

* ``"float"`` input (float32): the [-1, 1] floats;
* ``"raw_rgb"`` input (uint8 without quantization, or uint8 quantized so that
  0..255 maps onto [-1, 1] as in Google's models): the 0..255 bytes;
* ``"quantized"`` input (int8 / uint8 with other parameters): the [-1, 1]
  floats quantized with the tensor's scale and zero point.

Outputs are always returned as float32 probabilities (dequantized when the
output tensor is quantized). This module reads files, it writes none.
"""

import os
import statistics
import time

import numpy as np

from mobilenet_tf.model import imagenet
from mobilenet_tf.utils import native
from mobilenet_tf.errors import InputError, WeightsError

__all__ = ["TFLiteError", "DamagedTFLiteError", "TFLiteClassifier",
           "read_tflite", "op_weight_types", "INPUT_KINDS", "WEIGHT_OPS"]

INPUT_KINDS = ("float", "raw_rgb", "quantized")
# Operators whose second input is a weight tensor (the filter of a convolution / fully connected).
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier, bytes 4..8 of every .tflite file
_RAW_RGB_TOLERANCE = 0.02     # |real(0) + 1| and |real(255) - 1| of a raw-RGB uint8 input


class TFLiteError(InputError):
    """A file that is not a usable TFLite image classifier. One-line message."""


class DamagedTFLiteError(TFLiteError, WeightsError):
    """A ``.tflite`` file that LiteRT cannot load (cut short, overwritten): a TFLiteError, and
    a WeightsError like every damaged weights file."""


def read_tflite(path):
    """The bytes of a ``.tflite`` file; TFLiteError (one line) when it is not one."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise TFLiteError(f"no such TFLite file: {path}")
    if not os.path.isfile(path):
        raise TFLiteError(f"{path} is not a file (expected a .tflite model)")
    with open(path, "rb") as f:
        content = f.read()
    if content[4:8] != _TFLITE_IDENTIFIER:
        raise TFLiteError(f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    return content


def _interpreter(content, num_threads=None, delegates=True, source="<bytes>",
                 preserve_all_tensors=False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with native.quiet_native_stderr():   # "INFO: Created TensorFlow Lite XNNPACK delegate"
            interpreter = Interpreter(model_content=content, num_threads=num_threads,
                                      experimental_op_resolver_type=resolver,
                                      experimental_preserve_all_tensors=preserve_all_tensors)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:   # LiteRT's flatbuffer verifier and allocation
        reason = " ".join(str(e).split())[:200]
        raise DamagedTFLiteError(f"{source} is damaged or truncated: LiteRT cannot load it "
                                 f"({reason})") from None
    return interpreter


def _dtype_name(dtype):
    return np.dtype(dtype).name


def op_weight_types(content):
    """``[(op name, weight tensor name, weight dtype name), ...]`` for every
    convolution / fully-connected operator of a ``.tflite`` model (from the
    interpreter's op and tensor details). A weight stored as float16 or int8 and
    expanded by a ``DEQUANTIZE`` operator is reported with its stored type."""
    interpreter = _interpreter(content, delegates=False)   # the model's own operators
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()   # the interpreter's only op listing
    producer = {int(out): op for op in ops for out in op["outputs"]}
    out = []
    for op in ops:
        if op["op_name"] in WEIGHT_OPS:
            index = int(op["inputs"][1])
            if index in producer and producer[index]["op_name"] == "DEQUANTIZE":
                index = int(producer[index]["inputs"][0])
            weight = tensors[index]
            out.append((op["op_name"], weight["name"], _dtype_name(weight["dtype"])))
    return out


class TFLiteClassifier:
    """A ``.tflite`` classifier with one image input ``(1, H, W, 3)`` and one output ``(1, classes)``.

    Args:
      model: path of a ``.tflite`` file, or its bytes.
      num_threads: interpreter threads (None: LiteRT's default).
      keep_tensors: keep every intermediate tensor for :meth:`run_with_tensors` (LiteRT's
        reference kernels then run the file, without the XNNPACK delegate).
    """

    def __init__(self, model, *, num_threads=None, keep_tensors=False):
        if isinstance(model, (bytes, bytearray, memoryview)):
            content = bytes(model)
            if content[4:8] != _TFLITE_IDENTIFIER:
                raise TFLiteError("model bytes are not a TFLite model (no 'TFL3' identifier)")
            self.source = "<bytes>"
        else:
            content = read_tflite(model)
            self.source = os.fspath(model)
        self.content = content
        self.num_threads = num_threads
        self._interpreter = _interpreter(content, num_threads, delegates=not keep_tensors,
                                         source=self.source, preserve_all_tensors=keep_tensors)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise TFLiteError(f"{self.source}: expected one input and one output, found "
                              f"{len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(int(d) for d in self._input["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise TFLiteError(f"{self.source}: expected an image input of shape (1, H, W, 3), "
                              f"found {shape}")
        out_shape = tuple(int(d) for d in self._output["shape"])
        if len(out_shape) != 2 or out_shape[0] != 1:
            raise TFLiteError(f"{self.source}: expected an output of shape (1, classes), found "
                              f"{out_shape}")
        self.image_size = shape[1:3]
        self.num_classes = out_shape[1]
        self.input_dtype = _dtype_name(self._input["dtype"])
        self.output_dtype = _dtype_name(self._output["dtype"])
        self.input_quantization = tuple(self._input["quantization"])    # (scale, zero point)
        self.output_quantization = tuple(self._output["quantization"])
        self.input_kind = self._input_kind()
        self.signatures = self._interpreter.get_signature_list()

    @property
    def size_bytes(self):
        return len(self.content)

    def _input_kind(self):
        scale, zero_point = self.input_quantization
        if self.input_dtype == "float32":
            return "float"
        if self.input_dtype == "uint8":
            if scale == 0:
                return "raw_rgb"   # scaled to [-1, 1] inside the model (a Cast, Mul and Sub)
            low, high = scale * (0 - zero_point), scale * (255 - zero_point)
            if abs(low + 1) <= _RAW_RGB_TOLERANCE and abs(high - 1) <= _RAW_RGB_TOLERANCE:
                return "raw_rgb"   # the quantization itself maps 0..255 onto [-1, 1]
        if scale == 0:
            raise TFLiteError(f"{self.source}: {self.input_dtype} input without quantization "
                              "parameters: cannot tell how images map to it")
        return "quantized"

    def _prepare(self, image):
        """One (H, W, 3) image, uint8 0..255 or float [-1, 1] -> the input tensor's (1, H, W, 3)."""
        image = np.asarray(image)
        raw = image.dtype == np.uint8
        if image.shape[:2] != tuple(self.image_size) or image.shape[-1] != 3:
            raise TFLiteError(f"{self.source}: images must be {self.image_size[0]}x"
                              f"{self.image_size[1]}x3 (resize them first). Received: "
                              f"shape={image.shape}")
        if self.input_kind == "raw_rgb":
            x = image if raw else imagenet.to_uint8(image)
        else:
            x = imagenet.preprocess_input(image) if raw else image.astype(np.float32)
            if self.input_kind == "quantized":
                scale, zero_point = self.input_quantization
                info = np.iinfo(self.input_dtype)
                x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
                x = x.astype(self.input_dtype)
        return x[np.newaxis]

    def _run(self, x):
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(self._output["index"])[0]
        if self.output_dtype != "float32":
            scale, zero_point = self.output_quantization
            y = (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def predict(self, images):
        """Probabilities ``(N, classes)`` float32 for images ``(N, H, W, 3)`` (or one ``(H, W, 3)``):
        uint8 0..255 RGB, or float in [-1, 1] (the Keras model's input)."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[np.newaxis]
        if images.ndim != 4:
            raise TFLiteError(f"images must be (N, H, W, 3) or (H, W, 3). Received: "
                              f"shape={images.shape}")
        return np.stack([self._run(self._prepare(image)) for image in images]) if len(images) \
            else np.zeros((0, self.num_classes), np.float32)

    def run_with_tensors(self, image, tensor_indices):
        """Probabilities of one (H, W, 3) image and ``{index: values}`` of the intermediate tensors
        `tensor_indices`, dequantized to float32 when quantized (needs ``keep_tensors=True``)."""
        if not hasattr(self, "_tensor_quantization"):
            self._tensor_quantization = {d["index"]: d["quantization"]
                                         for d in self._interpreter.get_tensor_details()}
        probs = self._run(self._prepare(image))
        values = {}
        for index in tensor_indices:
            value = self._interpreter.get_tensor(index)
            scale, zero_point = self._tensor_quantization[index]
            values[index] = ((value.astype(np.float32) - zero_point) * np.float32(scale)
                             if scale else value.astype(np.float32))
        return probs, values

    @property
    def output_shape(self):
        """``(None, classes)``, as a Keras model's."""
        return (None, self.num_classes)

    def __call__(self, images, training=False):
        """:meth:`predict` with a Keras model's call signature, so code written for a Keras
        classifier (``model(batch, training=False)``) runs the ``.tflite`` file."""
        del training
        return self.predict(images)

    def latency_ms(self, image=None, *, runs=30, warmup=3):
        """Median wall time of one ``invoke()`` in milliseconds (after `warmup` runs), on `image`
        (default: a mid-grey image)."""
        if image is None:
            image = np.full((*self.image_size, 3), 128, np.uint8)
        self._interpreter.set_tensor(self._input["index"], self._prepare(image))
        for _ in range(warmup):
            self._interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self._interpreter.invoke()
            times.append(time.perf_counter() - start)
        return 1000.0 * statistics.median(times)

    def describe(self):
        """One line: input and output tensors as an app sees them."""
        def q(dtype, params):
            return f"{dtype}" + (f" (scale {params[0]:.6g}, zero point {params[1]})"
                                 if params[0] else "")
        return (f"input {q(self.input_dtype, self.input_quantization)} "
                f"1x{self.image_size[0]}x{self.image_size[1]}x3 [{self.input_kind}], "
                f"output {q(self.output_dtype, self.output_quantization)} 1x{self.num_classes}")
