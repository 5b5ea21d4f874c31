"""Reading image files: format sniffing and decoding to RGB uint8.

Shared by prediction, evaluation, the folder dataset and TFLite calibration.
Formats: JPEG, PNG, GIF (first frame), BMP — what ``tf.io.decode_image``
decodes. The format is read from the file's first bytes, not its name.
"""

import os

from mobilenet_tf.errors import InputError
from mobilenet_tf.utils import backend

__all__ = ["ImageError", "IMAGE_EXTENSIONS", "sniff_format", "check_image_file", "load_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")

# Which formats each file extension may hold.
_EXTENSION_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".gif": "gif", ".bmp": "bmp"}


class ImageError(InputError):
    """A file that is missing, not an image, or cannot be decoded. One-line message."""


def sniff_format(header):
    """Image format from a file's first bytes: 'jpeg', 'png', 'gif', 'bmp' or None."""
    if header[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if header[:2] == b"BM":
        return "bmp"
    return None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot be read ({e.strerror or e})") from None


def check_image_file(path, strict_extension=False):
    """Reads and fully decodes `path`; returns its format or raises ImageError.

    With ``strict_extension``, a file whose content does not match its
    extension (a GIF named ``.jpg``) is refused too: dataset folders are
    decoded by content, but a mislabelled file usually means a broken download.
    """
    data = _read(path)
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageError(f"{path}: not a JPEG, PNG, GIF or BMP image")
    ext = os.path.splitext(path)[1].lower()
    if strict_extension and ext in _EXTENSION_FORMATS and _EXTENSION_FORMATS[ext] != fmt:
        raise ImageError(f"{path}: named {ext} but holds a {fmt.upper()} image")
    _decode(data, path)
    return fmt


def _decode(data, path):
    tf = backend.tensorflow(backend.TF_DATA)
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        reason = str(getattr(e, "message", e)).strip().splitlines()[0] if str(e).strip() else "decode failed"
        raise ImageError(f"{path}: cannot be decoded ({reason})") from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{path}: image has no pixels")
    return image


def load_image(path):
    """Decodes `path` to an RGB ``uint8`` tensor of shape (height, width, 3).

    GIFs give their first frame. Raises ImageError (one line naming the file)
    for a missing, unreadable, non-image or truncated file.
    """
    data = _read(path)
    if sniff_format(data[:16]) is None:
        raise ImageError(f"{path}: not a JPEG, PNG, GIF or BMP image")
    return _decode(data, path)
