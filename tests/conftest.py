"""Shared test fixtures.

Real test material lives in ``../shared/data`` beside the repository (or where
``MOBILENET_TF_DATA`` points). Tests that need it skip, with the reason, only
when that folder is absent (a user's machine); in CI it is present.
"""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_data_dir():
    """The real-data folder, or None when it is absent."""
    path = pathlib.Path(os.environ.get("MOBILENET_TF_DATA", REPO_ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data; skips the test (with the reason) when the folder is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real test data not found: set MOBILENET_TF_DATA or put shared/data beside "
                    "the repository")
    return path


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
