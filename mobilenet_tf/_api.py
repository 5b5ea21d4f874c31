"""How public names are reached: lazy package exports, and the import paths of mobilenet-tf 0.1.

* :func:`attach`: a package's ``__getattr__`` / ``__dir__`` / ``__all__`` from a table of its
  public names and the sub-modules that define them, imported on first use (so ``import
  mobilenet_tf.model`` does not import TensorFlow until a name that needs it is used).
* Old paths: 0.1 had 27 flat modules (``mobilenet_tf.training``, ``mobilenet_tf.weights``, ...).
  :data:`MOVED` is the one table of each old module and the modules that now hold its public
  names (searched in order), :data:`RENAMED` the few names that changed. An old module that
  is now a package (``model``, ``export``, ``training``, ``inference``) offers its old names
  through :func:`attach`; the others (``mobilenet_tf.weights``) are made importable by
  :func:`install`. Either way an old name gives the same object, with a ``DeprecationWarning``
  naming its new place when it is not the package's own public name.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

__all__ = ["MOVED", "RENAMED", "attach", "install", "resolve"]

_M, _D, _T, _E, _I, _U, _C = ("mobilenet_tf.model.", "mobilenet_tf.data.", "mobilenet_tf.training.",
                              "mobilenet_tf.export.", "mobilenet_tf.inference.", "mobilenet_tf.utils.",
                              "mobilenet_tf.cli.")

MOVED = {
    "architecture": (_M + "architecture",),
    "validation": (_M + "validation",),
    "weights": (_M + "weights", _M + "weight_sources", _M + "weight_names"),
    "qat": (_M + "qat", _M + "qat_layers"),
    "imagenet": (_M + "imagenet", _D + "preprocessing"),
    "labels": (_M + "labels",),
    "images": (_D + "images", _D + "layout"),
    "preprocessing": (_D + "preprocessing",),
    "tfrecords": (_D + "tfrecords",),
    "datasets": ("mobilenet_tf.data",),    # the package's table: load_dataset, readers, pipelines
    "train_options": (_D + "options", _T + "config"),
    "training": (_T + "config", _T + "errors", _T + "schedule", _T + "weight_decay", _T + "recipe",
                 _T + "loop", _T + "evaluation", _T + "run_folder", _T + "tensorboard",
                 _T + "checkpoints"),
    "distillation": (_T + "distillation",),
    "distribute": (_T + "distribute",),
    "precision": (_T + "precision",),
    "tflite": (_E + "tflite", _M + "saved"),
    "metadata": (_E + "metadata",),
    "inference": (_I + "classifier", _M + "saved", _D + "labelled", _M + "convert", _M + "labels"),
    "runtime": (_C + "runner", _C + "args", _U + "native", _U + "console", _T + "stop"),
    "fileio": (_U + "fileio",),
    "model": (_M + "builder", _M + "defaults"),
    "export": (_E + "options", _E + "converter", _E + "images", _E + "classifier_metadata",
               _E + "verification", _M + "saved", _M + "labels"),
}
RENAMED = {
    ("imagenet", "CENTRAL_CROP_FRACTION"): (_D + "preprocessing", "EVAL_CENTRAL_FRACTION"),
}


def resolve(old, name):
    """``(new place, object)`` of the public name `name` of old module `old`; AttributeError
    when that module has no such name."""
    if (old, name) in RENAMED:
        module, attribute = RENAMED[(old, name)]
        return f"{module}.{attribute}", getattr(importlib.import_module(module), attribute)
    for module_name in MOVED[old]:
        module = importlib.import_module(module_name)
        public = getattr(module, "__all__", None)
        if public is None:
            public = [n for n in vars(module) if not n.startswith("_")]
        if name in public:
            return f"{module_name}.{name}", getattr(module, name)
    raise AttributeError(f"module 'mobilenet_tf.{old}' has no attribute {name!r}")


class _OldModule(types.ModuleType):
    """``mobilenet_tf.<old>``: attributes come from the new modules, with a warning."""

    def __getattr__(self, name):
        old = self.__name__.rpartition(".")[2]
        if name.startswith("__"):
            raise AttributeError(name)
        place, value = resolve(old, name)
        warnings.warn(f"mobilenet_tf.{old}.{name} is now {place}", DeprecationWarning,
                      stacklevel=2)
        return value          # not kept: every use of an old name says where it went

    def __dir__(self):
        names = set()
        for module_name in MOVED[self.__name__.rpartition(".")[2]]:
            names |= set(getattr(importlib.import_module(module_name), "__all__", ()))
        return sorted(names)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return _OldModule(spec.name)

    def exec_module(self, module):
        module.__doc__ = (f"Old import path (mobilenet-tf 0.1); its names now live in "
                          f"{', '.join(MOVED[module.__name__.rpartition('.')[2]])}.")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == "mobilenet_tf" and name in MOVED:
            return importlib.util.spec_from_loader(fullname, _Loader())
        return None


def install():
    """Makes the old module paths importable (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())


def attach(package, api, old=None):
    """``(__getattr__, __dir__, __all__)`` for `package` (its ``__name__``): `api` maps each
    public name to the sub-module defining it (relative, e.g. ``"builder"``), imported on
    first use. `old`: the 0.1 module this package replaces, whose other names still resolve
    (with a DeprecationWarning). A sub-module not imported yet is also an attribute."""
    def __getattr__(name):
        if name in api:
            value = getattr(importlib.import_module(f"{package}.{api[name]}"), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        elif old is not None and not name.startswith("__"):
            place, value = resolve(old, name)
            warnings.warn(f"mobilenet_tf.{old}.{name} is now {place}", DeprecationWarning,
                          stacklevel=2)
            return value      # not kept: every use of an old name says where it went
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(api))

    return __getattr__, __dir__, sorted(api)
