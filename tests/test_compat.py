"""What users of mobilenet-tf 0.1 have keeps working after the move into sub-packages.

* Every public name of every 0.1 module (``tests/data/public_names_0_1_0.json``, read from
  the 0.1.0 sources) is reachable at its old path, ``mobilenet_tf.<module>.<name>``, and is
  the very object the new layout defines.
"""

import importlib
import json
import subprocess
import sys
import warnings

import pytest

from conftest import REPO_ROOT

OLD_NAMES = json.loads((REPO_ROOT / "tests" / "data" / "public_names_0_1_0.json").read_text())


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_every_public_name_of_0_1_resolves_at_its_old_path(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(f"mobilenet_tf.{old}")
        missing = [name for name in OLD_NAMES[old] if not hasattr(module, name)]
    assert missing == []


def test_an_old_path_gives_the_new_object_and_says_where_it_went():
    from mobilenet_tf.model import weights
    with pytest.warns(DeprecationWarning, match=r"mobilenet_tf\.weights\.load_weights is now "
                                                r"mobilenet_tf\.model\.weights\.load_weights"):
        from mobilenet_tf.weights import load_weights
    assert load_weights is weights.load_weights


def test_an_unknown_name_at_an_old_path_is_refused():
    import mobilenet_tf.datasets
    with pytest.raises(AttributeError, match="'mobilenet_tf.datasets' has no attribute 'nope'"):
        mobilenet_tf.datasets.nope
    with pytest.raises(ImportError, match="cannot import name 'nope'"):
        from mobilenet_tf.datasets import nope  # noqa: F401


def test_old_paths_need_no_tensorflow_until_a_name_that_needs_it_is_used():
    code = ("import sys, warnings; warnings.simplefilter('ignore');"
            "import mobilenet_tf.architecture, mobilenet_tf.train_options, mobilenet_tf.costs;"
            "from mobilenet_tf.train_options import parse_dataset_spec, OPTIMIZERS;"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True)
    assert out.stdout.split() == ["False"]
