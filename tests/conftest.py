"""Shared test fixtures.

Real test material lives in ``../shared/data`` beside the repository (or where
``MOBILENET_TF_DATA`` points). On a user's machine, tests that need it skip
with a reason naming where it was looked for. In CI (``CI=true``, which
``.ci/run`` sets) a missing folder or file fails the whole run at once with one
line, so the data tests can never pass by skipping.
"""

import logging
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# What the tests read from the data folder (see ../shared/data/README.md).
REQUIRED_DATA = (
    "weights/mobilenet_2_5_128_tf.h5",
    "weights/mobilenet_7_5_192_tf.h5",
    "weights/mobilenet_v1_0.25_128.ckpt.index",
    "weights/mobilenet_v1_0.25_128.ckpt.data-00000-of-00001",
    "weights/official_mobilenet_v1_1.0_224.ckpt.index",
    "tflite/mobilenet_v1_0.25_128_quant.tflite",
    "tflite/imagenet_labels.txt",
    "imagenet50/labels.csv",
    "hymenoptera/train/ants",
    "hymenoptera/val/bees",
)


def in_ci():
    """True when the CI environment variable says so (GitHub, GitLab and .ci/run set CI=true)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def data_location():
    """``(path, how it was chosen)``: where the real test data is looked for."""
    if os.environ.get("MOBILENET_TF_DATA"):
        return pathlib.Path(os.environ["MOBILENET_TF_DATA"]), "MOBILENET_TF_DATA"
    return REPO_ROOT.parent / "shared" / "data", "../shared/data beside the repository"


def missing_data():
    """None when the data folder holds everything the tests read, else a one-line reason."""
    path, how = data_location()
    if not path.is_dir():
        return f"real test data not found at {path} ({how}); set MOBILENET_TF_DATA to its folder"
    missing = [name for name in REQUIRED_DATA if not (path / name).exists()]
    if missing:
        return (f"real test data at {path} ({how}) lacks {', '.join(missing)}; set "
                "MOBILENET_TF_DATA to a complete copy")
    return None


def shared_data_dir():
    """The real-data folder, or None when it is absent or incomplete."""
    return None if missing_data() else data_location()[0]


def pytest_sessionstart(session):
    reason = missing_data()
    if reason and in_ci():
        raise pytest.UsageError(f"CI=true but {reason}")


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data; skips the test (with the reason) when it is absent."""
    reason = missing_data()
    if reason:
        pytest.skip(reason)
    return data_location()[0]


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def library_log():
    """The messages the library logs (``logging.getLogger("mobilenet_tf")`` and below) while
    the test runs, as a list of strings. Attached to the package's logger itself, so it sees
    them whether or not a command in this process turned propagation off."""
    logger = logging.getLogger("mobilenet_tf")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
