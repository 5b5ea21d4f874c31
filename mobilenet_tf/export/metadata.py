"""TFLite model metadata for an image classifier: what MediaPipe Tasks' ``ImageClassifier``
(Android, iOS, Python, web) reads from a ``.tflite`` file — the class names and how images
map onto the input tensor — so that an app loads the one file and nothing beside it.

* :func:`populate`: ``.tflite`` bytes -> the same model with metadata and its labels packed
  in: a ``ModelMetadata`` flatbuffer (schema ``metadata_schema.fbs``, file identifier
  ``M001``) stored in a model buffer named ``TFLITE_METADATA``, and the labels file
  appended to the model as a zip archive (the file is then also a valid zip holding
  ``labels.txt``). The network, its tensors and its signature are unchanged.
* :func:`read_metadata` / :func:`read_labels`: the metadata and the class names back from a
  ``.tflite`` file's bytes (None when it has none); Google's own ``mobilenet_v1_*_quant.tflite``
  files are read too.
* :func:`mediapipe_problem`: why MediaPipe's ``ImageClassifier`` will not run a model (it takes
  uint8 or float32 images and gives float32 or uint8 scores), or None.

What is written, for the one input and the one output (TFLite Support's conventions, which
Google's quantized MobileNets follow):

=========================  =================================================================
input ``image``            ``ImageProperties`` (RGB); ``NormalizationOptions`` mean 127.5,
                           std 127.5 (``(x - 127.5) / 127.5``: 0..255 onto [-1, 1]) for a
                           float32 input, and for a quantized integer input (the schema: a
                           quantized model keeps its float model's normalization, the
                           quantization then maps [-1, 1] back onto 0..255); none for a uint8
                           input without quantization (the graph scales the bytes itself);
                           ``Stats`` of the tensor's values (0..255, or -1..1 for float32)
output ``probability``     ``FeatureProperties``; the labels as a ``TENSOR_AXIS_LABELS``
                           associated file; ``Stats`` 0..1 (float32) or 0..255 (uint8)
model                      name, description, version, license, ``min_parser_version``
=========================  =================================================================

MediaPipe reads a uint8 image tensor as the image's 0..255 bytes and ignores normalization
there; a float32 one it fills with ``(x - mean) / std`` and refuses without
``NormalizationOptions``.

Which library does what: the model flatbuffer is read and re-packed with LiteRT's generated
schema module (``ai_edge_litert.schema_py_generated``, its ``ModelT`` object API), as the
metadata populator of TFLite Support and MediaPipe does with its own copy. The metadata
flatbuffer is written and read here with the ``flatbuffers`` runtime, field slots taken from
``metadata_schema.fbs`` (:data:`_SLOTS`): its generated Python module ships only with
``tflite-support`` (needs protobuf < 4, so not beside TensorFlow 2.21) and ``mediapipe`` (an
optional dependency, with OpenCV and matplotlib, whose metadata writer does not import in 1.2.2;
the tests decode this module's output with mediapipe's generated module). Library code: it
writes no files and reads no flags.
"""

import dataclasses
import io
import zipfile

import flatbuffers
import numpy as np

from mobilenet_tf.errors import InputError, WeightsError

__all__ = ["METADATA_NAME", "METADATA_IDENTIFIER", "MIN_PARSER_VERSION", "LABELS_FILE",
           "INPUT_TENSOR_NAME", "OUTPUT_TENSOR_NAME", "RGB_MEAN", "RGB_STD", "AssociatedFileType",
           "MetadataError", "DamagedMetadataError", "TensorInfo", "ImageClassifierMetadata",
           "input_info", "output_info", "populate", "read_metadata", "read_labels", "mediapipe_problem"]

METADATA_NAME = "TFLITE_METADATA"   # the model's metadata entry readers look up
METADATA_IDENTIFIER = b"M001"       # metadata_schema.fbs: file_identifier
# The oldest metadata parser that understands every field written here: schema 1.0.0 (nothing
# added later is used: no subgraph process units, tensor groups, custom metadata, file versions,
# VOCABULARY / SCANN files, audio). The rule is MediaPipe's metadata_version.cc.
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"          # the packed labels, one class per line in output order
INPUT_TENSOR_NAME = "image"         # names MediaPipe's and TFLite Support's writers use
OUTPUT_TENSOR_NAME = "probability"
RGB_MEAN = RGB_STD = 127.5          # (x - 127.5) / 127.5 = x / 127.5 - 1: 0..255 onto [-1, 1]
_TFLITE_IDENTIFIER = b"TFL3"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # a fixed date: the same model gives the same bytes


class AssociatedFileType:
    """metadata_schema.fbs ``enum AssociatedFileType : byte``."""
    UNKNOWN = 0
    DESCRIPTIONS = 1
    TENSOR_AXIS_LABELS = 2
    TENSOR_VALUE_LABELS = 3
    TENSOR_AXIS_SCORE_CALIBRATION = 4
    VOCABULARY = 5


_COLOR_SPACE_RGB = 1                # enum ColorSpaceType : byte { UNKNOWN, RGB, GRAYSCALE }
_CONTENT_FEATURE = 1                # union ContentProperties { FeatureProperties, ImageProperties, ...}
_CONTENT_IMAGE = 2
_PROCESS_NORMALIZATION = 1          # union ProcessUnitOptions { NormalizationOptions, ... }

# Field slots (declaration order, 0-based; a union takes two: its type, then its value) of the
# tables written here, from metadata_schema.fbs (schema version 1.5.0).
_SLOTS = {
    "ModelMetadata": ("name", "description", "version", "subgraph_metadata", "author", "license",
                      "associated_files", "min_parser_version"),
    "SubGraphMetadata": ("name", "description", "input_tensor_metadata", "output_tensor_metadata",
                         "associated_files", "input_process_units", "output_process_units",
                         "input_tensor_groups", "output_tensor_groups", "custom_metadata"),
    "TensorMetadata": ("name", "description", "dimension_names", "content", "process_units",
                       "stats", "associated_files"),
    "Content": ("content_properties_type", "content_properties", "range"),
    "ImageProperties": ("color_space", "default_size"),
    "FeatureProperties": (),
    "ProcessUnit": ("options_type", "options"),
    "NormalizationOptions": ("mean", "std"),
    "Stats": ("max", "min"),
    "AssociatedFile": ("name", "description", "type", "locale", "version"),
}


def _slot(table, field):
    return _SLOTS[table].index(field)


class MetadataError(InputError):
    """Metadata that cannot be written for this model (one line, exit status 2)."""


class DamagedMetadataError(MetadataError, WeightsError):
    """A ``.tflite`` file whose metadata or packed files are damaged or cut short: a WeightsError
    like every damaged model file."""


@dataclasses.dataclass
class TensorInfo:
    """What the metadata says about one tensor."""
    name: str = None
    description: str = None
    content: str = None              # "image" or "feature"
    color_space: str = None          # "RGB" for an image
    mean: tuple = None               # NormalizationOptions, or None
    std: tuple = None
    min: tuple = None                # Stats
    max: tuple = None
    label_file: str = None           # the first TENSOR_AXIS_LABELS associated file


@dataclasses.dataclass
class ImageClassifierMetadata:
    """The metadata of a ``.tflite`` image classifier, as :func:`read_metadata` finds it."""
    name: str = None
    description: str = None
    version: str = None
    author: str = None
    license: str = None
    min_parser_version: str = None
    input: TensorInfo = None
    output: TensorInfo = None
    labels: list = None              # the lines of the output's label file, or None
    packed_files: tuple = ()         # names of the files packed in the model's zip


# --- what to say about the tensors -------------------------------------------------------------

def input_info(runner):
    """:class:`TensorInfo` of the input of a :class:`mobilenet_tf.export.tflite.TFLiteClassifier`."""
    dtype, (scale, _) = runner.input_dtype, runner.input_quantization
    info = TensorInfo(name=INPUT_TENSOR_NAME, content="image", color_space="RGB")
    if dtype == "float32":
        info.description = ("RGB image of the model's size, 0..255 scaled to [-1, 1] by "
                            "(x - 127.5) / 127.5")
        info.mean, info.std, info.min, info.max = (RGB_MEAN,), (RGB_STD,), (-1.0,), (1.0,)
    elif dtype == "uint8" and not scale:
        info.description = ("RGB image of the model's size as its 0..255 bytes (the model scales "
                            "them to [-1, 1] itself)")
        info.min, info.max = (0.0,), (255.0,)
    else:      # quantized integers: the float model's normalization, then the quantization
        kind = "the 0..255 bytes" if runner.input_kind == "raw_rgb" else "quantized values"
        info.description = (f"RGB image of the model's size as {kind}: (x - 127.5) / 127.5, "
                            "quantized with the tensor's scale and zero point")
        info.mean, info.std = (RGB_MEAN,), (RGB_STD,)
        if dtype == "uint8":
            info.min, info.max = (0.0,), (255.0,)
    return info


def output_info(runner):
    """:class:`TensorInfo` of the output (class probabilities) of a ``TFLiteClassifier``."""
    info = TensorInfo(name=OUTPUT_TENSOR_NAME, content="feature", label_file=LABELS_FILE,
                      description="Probabilities of the classes in labels.txt, in its order")
    if runner.output_dtype == "float32":
        info.min, info.max = (0.0,), (1.0,)
    elif runner.output_dtype == "uint8":
        info.min, info.max = (0.0,), (255.0,)
    return info


def mediapipe_problem(runner):
    """Why MediaPipe Tasks' ``ImageClassifier`` will not run the model of a ``TFLiteClassifier``
    as meant (one line), or None. It refuses an int8 input (it takes uint8 or float32 images)
    and an int8 output (it reads uint8 or float32 scores); a uint8 input it fills with the
    image's bytes, right only when the model takes raw 0..255 RGB."""
    if runner.input_dtype not in ("uint8", "float32"):
        return (f"will not load in MediaPipe Tasks' ImageClassifier: its input tensor is "
                f"{runner.input_dtype} (MediaPipe takes uint8 or float32 images)")
    if runner.output_dtype not in ("uint8", "float32"):
        return (f"will not load in MediaPipe Tasks' ImageClassifier: its output tensor is "
                f"{runner.output_dtype} (MediaPipe reads uint8 or float32 scores)")
    if runner.input_dtype == "uint8" and runner.input_kind != "raw_rgb":
        scale, zero_point = runner.input_quantization
        return ("loads in MediaPipe Tasks' ImageClassifier but gets wrong inputs: MediaPipe feeds "
                "a uint8 input the image's 0..255 bytes, and this one takes quantized [-1, 1] "
                f"values (scale {scale:.6g}, zero point {zero_point})")
    return None


# --- writing ------------------------------------------------------------------------------------

class _Writer:
    """Builds the ModelMetadata flatbuffer bottom-up (children before parents)."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)

    def string(self, text):
        return None if text is None else self.b.CreateString(text)

    def floats(self, values):
        return None if values is None else self.b.CreateNumpyVector(np.asarray(values, np.float32))

    def offsets(self, items):
        self.b.StartVector(4, len(items), 4)
        for item in reversed(items):
            self.b.PrependUOffsetTRelative(item)
        return self.b.EndVector()

    def table(self, name, offsets=None, bytes_=None):
        """A table with offset fields `offsets` and byte fields `bytes_` ({field: value})."""
        self.b.StartObject(len(_SLOTS[name]))
        for field, value in (offsets or {}).items():
            if value is not None:
                self.b.PrependUOffsetTRelativeSlot(_slot(name, field), value, 0)
        for field, value in (bytes_ or {}).items():
            self.b.PrependUint8Slot(_slot(name, field), value, 0)
        return self.b.EndObject()

    def tensor(self, info):
        if info.content == "image":
            properties = self.table("ImageProperties", bytes_={"color_space": _COLOR_SPACE_RGB})
            kind = _CONTENT_IMAGE
        else:
            properties, kind = self.table("FeatureProperties"), _CONTENT_FEATURE
        content = self.table("Content", {"content_properties": properties},
                             {"content_properties_type": kind})
        units = None
        if info.mean is not None:
            normalization = self.table("NormalizationOptions", {"mean": self.floats(info.mean),
                                                                "std": self.floats(info.std)})
            units = self.offsets([self.table("ProcessUnit", {"options": normalization},
                                             {"options_type": _PROCESS_NORMALIZATION})])
        stats = None
        if info.min is not None:
            stats = self.table("Stats", {"max": self.floats(info.max), "min": self.floats(info.min)})
        files = None
        if info.label_file is not None:
            files = self.offsets([self.table(
                "AssociatedFile",
                {"name": self.string(info.label_file),
                 "description": self.string("Class names, one per line in output order")},
                {"type": AssociatedFileType.TENSOR_AXIS_LABELS})])
        return self.table("TensorMetadata", {
            "name": self.string(info.name), "description": self.string(info.description),
            "content": content, "process_units": units, "stats": stats,
            "associated_files": files})

    def model_metadata(self, meta):
        inputs = self.offsets([self.tensor(meta.input)])
        outputs = self.offsets([self.tensor(meta.output)])
        subgraph = self.table("SubGraphMetadata", {"input_tensor_metadata": inputs,
                                                   "output_tensor_metadata": outputs})
        root = self.table("ModelMetadata", {
            "name": self.string(meta.name), "description": self.string(meta.description),
            "version": self.string(meta.version), "subgraph_metadata": self.offsets([subgraph]),
            "author": self.string(meta.author), "license": self.string(meta.license),
            "min_parser_version": self.string(MIN_PARSER_VERSION)})
        self.b.Finish(root, file_identifier=METADATA_IDENTIFIER)
        return bytes(self.b.Output())


def _check_labels(labels, num_classes):
    labels = [str(name) for name in labels]
    if len(labels) != num_classes:
        raise MetadataError(f"{len(labels)} labels for a model of {num_classes} outputs")
    for i, name in enumerate(labels):
        if not name.strip() or "\n" in name or "\r" in name:
            raise MetadataError(f"label {i} ({name!r}) must be non-empty text on one line: the "
                                f"labels are packed one per line")
    return labels


def populate(content, labels, *, name, description, version, license, author=None):
    """The ``.tflite`` model `content` (bytes) with image-classifier metadata and `labels`
    packed in, as bytes. Metadata already there is replaced, files packed before are dropped.

    Args:
      labels: the class names in output order, one per output.
      name, description, version, license, author: the model's general information.

    Raises:
      MetadataError: labels that do not fit the model, or a model this cannot rewrite.
      mobilenet_tf.export.tflite.TFLiteError: bytes that are not a single-image classifier.
    """
    from ai_edge_litert import schema_py_generated as schema
    from mobilenet_tf.export import tflite
    runner = tflite.TFLiteClassifier(content)
    labels = _check_labels(labels, runner.num_classes)
    meta = ImageClassifierMetadata(name=name, description=description, version=version,
                                   author=author, license=license, input=input_info(runner),
                                   output=output_info(runner))
    metadata_bytes = _Writer().model_metadata(meta)

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    if any(buffer.offset for buffer in model.buffers or []):
        raise MetadataError("the model keeps weights outside its flatbuffer (a model over 2 GB): "
                            "its metadata cannot be rewritten here")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_bytes, np.uint8)
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if _text(m.name) == METADATA_NAME), None)
    if entry is not None:
        model.buffers[entry.buffer] = buffer
    else:
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + len(metadata_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)

    out = io.BytesIO()
    out.write(builder.Output())
    with zipfile.ZipFile(out, "a") as archive:     # a zip after the flatbuffer, as TFLite Support
        info = zipfile.ZipInfo(LABELS_FILE, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_STORED
        archive.writestr(info, ("\n".join(labels) + "\n").encode("utf-8"))
    return out.getvalue()


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


# --- reading ------------------------------------------------------------------------------------

class _Table:
    """One table of a flatbuffer, read by field name (the slots of :data:`_SLOTS`)."""

    def __init__(self, kind, buf, pos):
        self.kind, self._t = kind, flatbuffers.table.Table(buf, pos)

    def _offset(self, field):
        return self._t.Offset(4 + 2 * _slot(self.kind, field))

    def string(self, field):
        o = self._offset(field)
        return self._t.String(o + self._t.Pos).decode("utf-8") if o else None

    def byte(self, field):
        o = self._offset(field)
        return self._t.Get(flatbuffers.number_types.Uint8Flags, o + self._t.Pos) if o else 0

    def table(self, field, kind):
        o = self._offset(field)
        return _Table(kind, self._t.Bytes, self._t.Indirect(o + self._t.Pos)) if o else None

    def tables(self, field, kind):
        o = self._offset(field)
        if not o:
            return []
        start = self._t.Vector(o)
        return [_Table(kind, self._t.Bytes, self._t.Indirect(start + 4 * i))
                for i in range(self._t.VectorLen(o))]

    def floats(self, field):
        o = self._offset(field)
        if not o:
            return None
        values = self._t.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, o)
        return tuple(float(v) for v in values)


def _read_tensor(table):
    info = TensorInfo(name=table.string("name"), description=table.string("description"))
    content = table.table("content", "Content")
    if content is not None:
        kind = content.byte("content_properties_type")
        if kind == _CONTENT_IMAGE:
            info.content = "image"
            properties = content.table("content_properties", "ImageProperties")
            space = properties.byte("color_space") if properties is not None else 0
            info.color_space = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}.get(space, str(space))
        elif kind == _CONTENT_FEATURE:
            info.content = "feature"
    for unit in table.tables("process_units", "ProcessUnit"):
        if unit.byte("options_type") == _PROCESS_NORMALIZATION and info.mean is None:
            options = unit.table("options", "NormalizationOptions")
            info.mean, info.std = options.floats("mean"), options.floats("std")
    stats = table.table("stats", "Stats")
    if stats is not None:
        info.min, info.max = stats.floats("min"), stats.floats("max")
    for file in table.tables("associated_files", "AssociatedFile"):
        if file.byte("type") == AssociatedFileType.TENSOR_AXIS_LABELS:
            info.label_file = file.string("name")
            break
    return info


def _metadata_buffer(content):
    """The bytes of the model's ``TFLITE_METADATA`` buffer, or None."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) != METADATA_NAME:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength():
            return buffer.DataAsNumpy().tobytes()
        if buffer.Offset():        # stored after the flatbuffer (models over 2 GB)
            return bytes(content[buffer.Offset():buffer.Offset() + buffer.Size()])
    return None


def read_metadata(content, source="<bytes>"):
    """The :class:`ImageClassifierMetadata` of ``.tflite`` bytes, or None when the model has
    no ``TFLITE_METADATA``. Raises DamagedMetadataError (one line) when the metadata is damaged or
    names a labels file that is not packed in the model."""
    content = bytes(content)
    try:
        data = _metadata_buffer(content)
        if data is None:
            return None
        if data[4:8] != METADATA_IDENTIFIER:
            raise DamagedMetadataError(f"{source}: its {METADATA_NAME} is not model metadata "
                                       f"(no {METADATA_IDENTIFIER.decode()} identifier)")
        root = _Table("ModelMetadata", data,
                      flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
        meta = ImageClassifierMetadata(
            name=root.string("name"), description=root.string("description"),
            version=root.string("version"), author=root.string("author"),
            license=root.string("license"), min_parser_version=root.string("min_parser_version"))
        subgraphs = root.tables("subgraph_metadata", "SubGraphMetadata")
        if subgraphs:
            inputs = subgraphs[0].tables("input_tensor_metadata", "TensorMetadata")
            outputs = subgraphs[0].tables("output_tensor_metadata", "TensorMetadata")
            meta.input = _read_tensor(inputs[0]) if inputs else None
            meta.output = _read_tensor(outputs[0]) if outputs else None
    except MetadataError:
        raise
    except Exception as e:   # noqa: BLE001 - a damaged flatbuffer fails in many ways
        reason = " ".join(str(e).split())[:120]
        raise DamagedMetadataError(f"{source}: its model metadata is damaged "
                                   f"({type(e).__name__}: {reason})") from None
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            meta.packed_files = tuple(archive.namelist())
            if meta.output is not None and meta.output.label_file is not None:
                text = archive.read(meta.output.label_file).decode("utf-8")
                meta.labels = text.split("\n")
                if meta.labels and meta.labels[-1] == "":
                    meta.labels.pop()          # after the last newline, as MediaPipe reads it
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError) as e:
        if meta.output is not None and meta.output.label_file is not None:
            raise DamagedMetadataError(
                f"{source}: its metadata names the labels file {meta.output.label_file}, which is "
                f"not packed in it ({type(e).__name__}; the file is damaged or cut short)") from None
    return meta


def read_labels(content, source="<bytes>"):
    """The class names packed in ``.tflite`` bytes (its output's ``TENSOR_AXIS_LABELS`` file),
    or None when it has no metadata or no labels. DamagedMetadataError as :func:`read_metadata`."""
    meta = read_metadata(content, source)
    return None if meta is None else meta.labels
