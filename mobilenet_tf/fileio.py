"""Atomic file writes: every file this project writes goes through here.

A file is written to a temporary name in its destination folder and renamed
into place with ``os.replace`` only when complete, so an interrupted or failed
write leaves the old file (or nothing) and never a half-written one. Temporary
files get the permissions a plain ``open(path, "w")`` would (``mkstemp``'s
default is 0600).
"""

import contextlib
import os
import shutil
import tempfile

__all__ = ["atomic_path", "write_bytes", "write_text", "save_model", "write_all"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_name(path, suffix=None):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                               suffix=suffix if suffix is not None else "-" + os.path.basename(path))
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yields a temporary path beside `path`; renames it to `path` if the block succeeds.

    `suffix` is the temporary file's suffix when the writer cares (Keras picks
    the format from ``.keras`` / ``.weights.h5``). On any exception the
    temporary file is removed and `path` is untouched.
    """
    tmp = _temp_name(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def save_model(model, path):
    """``model.save`` (``.keras``) or ``model.save_weights`` (``.weights.h5``), atomically."""
    suffix = ".weights.h5" if str(path).endswith(".weights.h5") else ".keras"
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".keras":
            model.save(tmp, overwrite=True)
        else:
            model.save_weights(tmp, overwrite=True)


def write_all(files, saved_model=None):
    """Writes ``{path: bytes}`` and optionally a SavedModel ``(archive, dir)`` as one unit.

    Everything is written to temporary names first and renamed into place only
    when all of it was written; on failure every temporary is removed. An
    existing SavedModel directory is replaced whole. ``archive`` is anything
    with ``write_out(dir, verbose=False)`` (a ``keras.export.ExportArchive``).
    """
    temps, tmp_dir, backup = [], None, None
    try:
        for path, data in files.items():
            tmp = _temp_name(path)
            temps.append((tmp, path))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if saved_model is not None:
            archive, target = saved_model
            tmp_dir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)), prefix=".tmp-")
            os.chmod(tmp_dir, 0o777 & ~_umask())
            archive.write_out(tmp_dir, verbose=False)
        for tmp, path in temps:
            os.replace(tmp, path)
        if saved_model is not None:
            if os.path.isdir(target):
                backup = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)),
                                          prefix=".old-")
                os.replace(target, os.path.join(backup, "old"))
            os.replace(tmp_dir, target)
            tmp_dir = None
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.remove(tmp)
        for leftover in (tmp_dir, backup):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
