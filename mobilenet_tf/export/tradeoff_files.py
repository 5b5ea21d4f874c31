"""The ``.tflite`` files of a trade-off grid, kept in one folder so that they can be timed here
and copied to a phone (LiteRT's ``benchmark_model``): one float32 and one int8 file per
configuration, made with the exporter (``mobilenet_tf.export.converter.convert``) from a model
with random weights (Keras' initializers: latency does not depend on the weights' values), int8
calibrated on a few images of a dataset spec (``synthetic`` random images by default).

``manifest.json`` in the folder records, per file, the settings it was made with, the versions
of the libraries that made it and its SHA-256. A later run over the same folder reuses a file
whose settings and versions are the same and whose bytes are unchanged, and makes the others
again. Every file (the manifest too) is written atomically (``mobilenet_tf.utils.fileio``) as
soon as it is made, so an interrupted run keeps what it finished.
"""

import dataclasses
import hashlib
import json
import logging
import os
import time

from mobilenet_tf.export.options import ExportError
from mobilenet_tf.utils import backend
from mobilenet_tf.utils import fileio

__all__ = ["MANIFEST", "FileEntry", "file_name", "settings_of", "library_versions", "read_manifest",
           "ensure_files", "QUANTIZATION"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_MANIFEST_FORMAT = 1
# The trade-off's precisions as the exporter's quantization modes.
QUANTIZATION = {"float32": "none", "int8": "int8"}
WEIGHTS = "random (Keras' initializers)"


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One file of the folder: its `path`, size in bytes, and whether this run `reused` it."""
    path: str
    size_bytes: int
    reused: bool


def file_name(config, precision):
    """``mobilenet_v1_0.5_160_int8.tflite``."""
    return f"{config.name}_{precision}.tflite"


def settings_of(config, precision, calibration, num_calibration_images):
    """What a file is made from; a file made from other settings is made again."""
    int8 = precision == "int8"
    return {"architecture": config.architecture, "alpha": config.alpha,
            "image_size": config.image_size, "precision": precision,
            "quantization": QUANTIZATION[precision], "weights": WEIGHTS,
            "input": "uint8 RGB 0..255 (raw_rgb_input)", "output": "float32 probabilities",
            "calibration": calibration if int8 else None,
            "num_calibration_images": num_calibration_images if int8 else None}


def library_versions():
    """The versions of what makes the bytes: this package, TensorFlow's converter, Keras."""
    import keras
    from mobilenet_tf import __version__
    tf = backend.tensorflow(backend.TFLITE)
    return {"mobilenet_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def read_manifest(folder):
    """``{file name: entry}`` of the folder's manifest; empty when there is none or it cannot be
    read (then every file is made again)."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        files = document["files"]
        if document.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError(f"format {document.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.warning("%s cannot be read (%s): making every file again", path,
                       " ".join(str(e).split())[:120])
        return {}
    return files


def _write_manifest(folder, files):
    document = {"format": _MANIFEST_FORMAT,
                "about": "the settings, library versions and SHA-256 each .tflite file of this "
                         "folder was made with (python -m mobilenet_tf.tradeoff reuses a file "
                         "when all three are unchanged)",
                "files": dict(sorted(files.items()))}
    fileio.write_text(os.path.join(folder, MANIFEST), json.dumps(document, indent=1) + "\n")


def _unchanged(folder, name, entry, settings, versions):
    path = os.path.join(folder, name)
    return (entry is not None and entry.get("settings") == settings
            and entry.get("versions") == versions and os.path.isfile(path)
            and os.path.getsize(path) == entry.get("bytes")
            and fileio.file_sha256(path) == entry.get("sha256"))


def _calibration_images(spec, size, count, data_dir, cache):
    if size not in cache:
        from mobilenet_tf.export import images
        loaded = images.load_images(spec, size, count, data_dir=data_dir)
        if len(loaded.images) < count:
            logger.info("calibration: %d of the %d images asked for (all %s has)",
                        len(loaded.images), count, spec)
        cache[size] = loaded.images
    return cache[size]


def ensure_files(configurations, precisions, folder, *, calibration="synthetic",
                 num_calibration_images=8, data_dir=None):
    """Makes (or reuses) the file of each configuration and precision in `folder`, which exists.

    Returns ``{(configuration, precision): FileEntry}``. Raises ExportError (one line) when
    the calibration data cannot be read.
    """
    import keras
    import mobilenet_tf
    from mobilenet_tf.export import converter
    versions = library_versions()
    manifest = read_manifest(folder)
    out, cache = {}, {}
    total = len(configurations) * len(precisions)
    done = 0
    for config in configurations:
        wanted = {}
        for precision in precisions:
            name = file_name(config, precision)
            settings = settings_of(config, precision, calibration, num_calibration_images)
            if _unchanged(folder, name, manifest.get(name), settings, versions):
                done += 1
                out[(config, precision)] = FileEntry(os.path.join(folder, name),
                                                     manifest[name]["bytes"], True)
                logger.info("[%d/%d] %s: reused (same settings and library versions, bytes "
                            "unchanged)", done, total, name)
            else:
                wanted[precision] = (name, settings)
        if not wanted:
            continue
        keras.backend.clear_session()
        model = mobilenet_tf.MobileNetV1(alpha=config.alpha, conv_defs=config.architecture,
                                         input_shape=(config.image_size, config.image_size, 3),
                                         weights=None)
        for precision, (name, settings) in wanted.items():
            start = time.perf_counter()
            representative = None
            if precision == "int8":
                try:
                    representative = _calibration_images(calibration, config.image_size,
                                                         num_calibration_images, data_dir, cache)
                except ValueError as e:
                    raise ExportError(f"calibration={calibration}: {' '.join(str(e).split())}") from None
            content = converter.convert(model, QUANTIZATION[precision], representative,
                                        num_calibration_images=num_calibration_images)
            path = os.path.join(folder, name)
            fileio.write_bytes(path, content)
            manifest[name] = {"settings": settings, "versions": versions, "bytes": len(content),
                              "sha256": hashlib.sha256(content).hexdigest()}
            _write_manifest(folder, manifest)
            done += 1
            out[(config, precision)] = FileEntry(path, len(content), False)
            logger.info("[%d/%d] %s: made (%.1f s, %s bytes)", done, total, name,
                        time.perf_counter() - start, f"{len(content):,}")
    return out
