"""Atomic file writes: every file this project writes goes through here.

A file is written to a temporary name in its destination folder and renamed
into place with ``os.replace`` only when complete, so an interrupted or failed
write leaves the old file (or nothing) and never a half-written one. Temporary
files get the permissions a plain ``open(path, "w")`` would (``mkstemp``'s
default is 0600).

A temporary is named ``.tmp-<pid>-<random>-<target name>``. A process killed
while writing (SIGKILL, a power cut) cannot remove its own: the next write to
the same target removes every temporary of that target whose process is gone,
so they never accumulate.

:func:`folder_problem` / :func:`file_problem` say, in one line and before any
work, why a folder or file could not be written there.
"""

import contextlib
import hashlib
import os
import re
import shutil
import tempfile

__all__ = ["atomic_path", "write_bytes", "write_text", "save_model", "write_all",
           "remove_stale_temporaries", "folder_problem", "file_problem", "file_sha256",
           "TEMP_PREFIX"]

TEMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process
        return True
    return True


def remove_stale_temporaries(path):
    """Removes the temporaries (files or folders) that dead processes left for target `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.abspath(path))
    pattern = re.compile(rf"^(?:{re.escape(TEMP_PREFIX)}|{re.escape(_OLD_PREFIX)})(\d+)-[^-]+-"
                         rf"{re.escape(name)}$")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        full = os.path.join(directory, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(full)


def _temp_prefix(kind=TEMP_PREFIX):
    return f"{kind}{os.getpid()}-"


def _temp_name(path, suffix=None):
    remove_stale_temporaries(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.abspath(path))
    # mkstemp puts its random part between prefix and suffix: .tmp-<pid>-<random>-<name><suffix>
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(),
                               suffix=f"-{name}" + (suffix or ""))
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def _temp_dir(path, kind=TEMP_PREFIX):
    remove_stale_temporaries(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.abspath(path))
    tmp = tempfile.mkdtemp(dir=directory, prefix=_temp_prefix(kind), suffix=f"-{name}")
    os.chmod(tmp, 0o777 & ~_umask())
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
            tmp_dir = _temp_dir(target)
            archive.write_out(tmp_dir, verbose=False)
        for tmp, path in temps:
            os.replace(tmp, path)
        if saved_model is not None:
            if os.path.isdir(target):
                backup = _temp_dir(target, _OLD_PREFIX)
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


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def folder_problem(path):
    """None if a folder can be at `path` and be written (it exists as a writable folder, or can
    be created), else why not, one line starting with the path: ``"x is a file, not a folder"``."""
    path = os.fspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            return f"{path} is a file, not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is a folder this user cannot write to"
        return None
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{path} cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{path} cannot be created: this user cannot write to {existing}"
    return None


def file_problem(path):
    """None if a file can be written at `path` (its folder exists and is writable, and `path`
    is not a folder), else why not, one line."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return f"{path} is a folder, not a file"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        existing = _nearest_existing(directory)
        if not os.path.isdir(existing):
            return f"{path} cannot be written: {existing} is a file, not a folder"
        return f"{path} cannot be written: folder {directory} does not exist"
    if not os.path.isdir(directory):
        return f"{path} cannot be written: {directory} is a file, not a folder"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{path} cannot be written: this user cannot write to {directory}"
    return None


def file_sha256(path):
    """The SHA-256 of file `path` (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
