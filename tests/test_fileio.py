"""Atomic writes: a failed write leaves the old file (or nothing) and no temporary files."""

import os

import pytest

from mobilenet_tf.utils import fileio


class _Boom(RuntimeError):
    pass


def _listing(directory):
    return sorted(os.listdir(directory))


def test_write_text_replaces_whole_file_with_plain_permissions(tmp_path):
    path = tmp_path / "summary.json"
    fileio.write_text(path, "old")
    fileio.write_text(path, "new")
    assert path.read_text() == "new"
    assert _listing(tmp_path) == ["summary.json"]
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failure_inside_atomic_path_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old model")
    with pytest.raises(_Boom):
        with fileio.atomic_path(path, suffix=".keras") as tmp:
            with open(tmp, "w") as f:
                f.write("half a mod")
            assert path.read_text() == "old model"     # nothing visible before the end
            raise _Boom()
    assert path.read_text() == "old model"
    assert _listing(tmp_path) == ["model.keras"]


def test_failed_save_model_leaves_nothing(tmp_path):
    class Unsaveable:
        def save(self, path, overwrite=True):
            with open(path, "w") as f:
                f.write("partial")
            raise _Boom()

    with pytest.raises(_Boom):
        fileio.save_model(Unsaveable(), tmp_path / "m.keras")
    assert _listing(tmp_path) == []


def test_write_all_is_all_or_nothing(tmp_path):
    class BrokenArchive:
        def write_out(self, directory, verbose=False):
            open(os.path.join(directory, "saved_model.pb"), "w").close()
            raise _Boom()

    files = {tmp_path / "m.tflite": b"\x00" * 10, tmp_path / "m_labels.txt": b"a\nb\n"}
    with pytest.raises(_Boom):
        fileio.write_all(files, (BrokenArchive(), tmp_path / "saved"))
    assert _listing(tmp_path) == []
    fileio.write_all(files)
    assert _listing(tmp_path) == ["m.tflite", "m_labels.txt"]
    assert (tmp_path / "m_labels.txt").read_bytes() == b"a\nb\n"
