"""The cheap check of an image file before training: extension, format (magic bytes) and, for
PNG, GIF and BMP, the size in the header, from the file's first 32 bytes; many files at once,
in threads only when storage makes a check slow; the report of the files left out.

A file that passes but cannot be decoded is the pipelines' to skip
(``mobilenet_tf.data.decoding``). Nothing here lists folders or raises for a bad file: each
check returns the reason a file is left out (one line), or None.
"""

import concurrent.futures
import logging
import os
import struct
import time

from mobilenet_tf.data import images
from mobilenet_tf.data.options import FOLDER_FORMATS

__all__ = ["check_formats", "check_file", "check_files", "report_left_out"]

logger = logging.getLogger(__name__)

_PROBE_FILES = 256            # header checks timed before choosing threads or not
_THREADS_ABOVE_SECONDS = 50e-6   # per header check: slower means waiting on storage, not Python
_CHUNK_FILES = 256            # header checks per thread-pool task


def check_formats(formats):
    """`formats` as a tuple; ValueError unless a non-empty subset of ``FOLDER_FORMATS``."""
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FOLDER_FORMATS]
    if unknown or not formats:
        raise ValueError(f"`formats` must be a non-empty subset of {FOLDER_FORMATS}. "
                         f"Received: formats={formats!r}")
    return formats


def _gif_reason(formats):
    wanted = ",".join(sorted(set(formats) | {"gif"}, key=FOLDER_FORMATS.index))
    return (f"GIF: pass --folder_formats={wanted} (library: formats=) to include GIFs; in photo "
            "folders GIFs are usually placeholders or animations")


def _header_size(fmt, header):
    """``(width, height)`` from the first 32 bytes of a PNG, GIF or BMP file; None for JPEG (its
    size is in a frame header at no fixed place) or a header too short to hold it."""
    if fmt == "png" and len(header) >= 24:
        return struct.unpack(">II", header[16:24])
    if fmt == "gif" and len(header) >= 10:
        return struct.unpack("<HH", header[6:10])
    if fmt == "bmp" and len(header) >= 26:
        width, height = struct.unpack("<ii", header[18:26])
        return width, abs(height)
    return None


def check_file(path, formats, decode=False):
    """None if `path` looks like a usable image, else the reason it is left out (one line).

    The check reads the first 32 bytes: extension, format (magic bytes), and for PNG, GIF and
    BMP the size in the header. ``decode=True`` also decodes the whole file (the check before
    manifests, which took about half an hour for ImageNet on 2 cores); without it a file that
    passes but cannot be decoded is skipped when training meets it.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in images.IMAGE_EXTENSIONS:
        return f"not an image file (extension {ext or 'none'!r})"
    if "\t" in path or "\n" in path or "\r" in path:
        return "the file name holds a tab or line break, which the manifest cannot store"
    try:
        fd = os.open(path, os.O_RDONLY)        # not open(): no buffered file object per file
        try:
            header = os.read(fd, 32)
        finally:
            os.close(fd)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not header:
        return "empty file"
    fmt = images.sniff_format(header)
    if fmt is None:
        return "not a JPEG, PNG, GIF or BMP image"
    if fmt not in formats:
        return _gif_reason(formats) if fmt == "gif" else f"{fmt.upper()} is not among formats {formats}"
    size = _header_size(fmt, header)
    if size is not None and (size[0] <= 0 or size[1] <= 0):
        return "image has no pixels"
    if decode:
        try:
            images.check_image_file(path)
        except images.ImageError as e:
            message = str(e)
            return message[len(path) + 2:] if message.startswith(path + ": ") else message
    return None


def check_files(pairs, formats, workers=None, decode=False):
    """``[(path, reason)]`` of the (path, label) `pairs` that are not usable images, in order.

    Full decodes run in ``workers`` threads, one file per task (TensorFlow releases the GIL
    while decoding). Header checks run in threads only when storage makes them slow (a network
    file system, a cold disk): the first ``_PROBE_FILES`` are timed, and above
    ``_THREADS_ABOVE_SECONDS`` a file the rest go to the threads in chunks. A file served from
    memory or a local SSD costs about 15 us of Python, and spreading such checks over threads
    made them 2 to 6 times slower here (GIL handoffs around every system call)."""
    threads = workers or min(8, (os.cpu_count() or 1) + 2)
    if decode:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            reasons = list(pool.map(lambda item: check_file(item[0], formats, True), pairs))
        return [(p, r) for (p, _), r in zip(pairs, reasons) if r is not None]

    def check(chunk):
        return [check_file(path, formats) for path, _ in chunk]

    start = time.perf_counter()
    reasons, rest = check(pairs[:_PROBE_FILES]), pairs[_PROBE_FILES:]
    if rest and (time.perf_counter() - start) / _PROBE_FILES <= _THREADS_ABOVE_SECONDS:
        reasons, rest = reasons + check(rest), []
    if rest:
        chunks = [rest[i:i + _CHUNK_FILES] for i in range(0, len(rest), _CHUNK_FILES)]
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for part in pool.map(check, chunks):
                reasons += part
    return [(p, r) for (p, _), r in zip(pairs, reasons) if r is not None]


def report_left_out(spec, skipped, total):
    """Logs the files left out of dataset `spec` (``[(path, reason)]``) of `total`, one a line."""
    if skipped:
        logger.info(f"{spec}: left out {len(skipped)} of {total} files:")
        for p, reason in skipped:
            logger.info(f"  {p}: {reason}")
