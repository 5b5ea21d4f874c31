"""The package's shape: layers that import only downwards, commands that no library module
imports, no import circle (lazy imports inside functions included), no absl flags in the
library, no module over the size of one job, and a layout list in the docs that names every
module.

The graph comes from the source (ast), so an import added anywhere, at module level or in a
function, is seen without running it.
"""

import ast

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "mobilenet_tf"
# `python -m mobilenet_tf.<tool>`: parse arguments, call the library, print.
COMMANDS = {"predict", "evaluate", "convert", "costs", "write_tfrecords", "tradeoff",
            "quant_report"}
# Lower layers never import higher ones. The package's own __init__ and _api (lazy names,
# old import paths) reach every layer by name only, never by an import statement.
LAYERS = ("errors", "utils", "model", "data", "training", "export", "inference", "cli",
          "commands")
MAX_LINES = 520      # the issue's "about 500": one job per module


def _module_name(path):
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path, modules):
    """The mobilenet_tf modules `path` imports (anywhere in the file), and any absl.flags use."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found, absl_flags = set(), False

    def add(name):
        # the longest known module that `name` is or is inside of
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mobilenet_tf"):
                    add(alias.name)
                absl_flags |= alias.name == "absl.flags"
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("mobilenet_tf"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    add(full if full in modules else node.module)
            absl_flags |= node.module == "absl.flags" or (
                node.module == "absl" and any(a.name == "flags" for a in node.names))
    return found, absl_flags


def _graph():
    modules = _modules()
    graph, flag_users = {}, []
    for name, path in modules.items():
        imported, absl_flags = _imports(path, modules)
        graph[name] = {m for m in imported if m != name}
        if absl_flags:
            flag_users.append(name)
    return graph, flag_users


def layer(module):
    """The layer of a module (``mobilenet_tf.data.folder`` -> ``data``); None for the
    package's ``__init__`` and ``_api``."""
    parts = module.split(".")
    if module in ("mobilenet_tf", "mobilenet_tf._api"):
        return None
    if len(parts) == 2 and parts[1] in COMMANDS:
        return "commands"
    return parts[1]


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _upward(graph):
    """``{module: [imports of a higher layer]}``."""
    order = {name: i for i, name in enumerate(LAYERS)}
    offenders = {}
    for module, deps in graph.items():
        own = layer(module)
        if own is None:
            continue
        up = sorted(d for d in deps if layer(d) is not None and order[layer(d)] > order[own])
        if up:
            offenders[module] = up
    return offenders


def test_every_module_is_in_a_layer():
    unknown = sorted(m for m in _modules() if layer(m) is not None and layer(m) not in LAYERS)
    assert unknown == []


def test_lower_layers_never_import_higher_ones():
    graph, _ = _graph()
    assert _upward(graph) == {}


def test_the_package_init_imports_only_the_pure_architecture_and_api():
    """``import mobilenet_tf`` stays light: everything else is reached lazily by name."""
    graph, _ = _graph()
    assert graph["mobilenet_tf"] <= {"mobilenet_tf._api", "mobilenet_tf.model",
                                     "mobilenet_tf.model.architecture"}


def test_commands_import_no_other_command():
    graph, _ = _graph()
    crossings = {m: sorted(d for d in deps if layer(d) == "commands")
                 for m, deps in graph.items() if layer(m) == "commands"}
    assert {m: c for m, c in crossings.items() if c} == {}


def test_no_import_circle():
    graph, _ = _graph()
    assert _cycle(graph) is None


def test_the_library_never_imports_absl_flags():
    _, flag_users = _graph()
    assert flag_users == []


def test_no_module_is_over_the_size_of_one_job():
    sizes = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


# The modules that import TensorFlow themselves: utils.backend (every other module gets it from
# backend.tensorflow(what), which refuses on another Keras backend first) and utils.native (the
# commands' quiet start, which checks KERAS_BACKEND before it).
TENSORFLOW_IMPORTERS = {"mobilenet_tf.utils.backend", "mobilenet_tf.utils.native"}


def _tensorflow_imports(path):
    """Line numbers of `path`'s imports of tensorflow or any of its submodules, at module level
    or inside a function. (tensorflow_datasets is imported only after backend.tensorflow.)"""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] == "tensorflow" for n in names):
            lines.append(node.lineno)
    return lines


def test_tensorflow_is_imported_only_through_the_backend_check():
    """The TensorFlow-only parts refuse another Keras backend in one line, before TensorFlow is
    imported, because every module gets TensorFlow from ``utils.backend.tensorflow(what)``."""
    offenders = {name: _tensorflow_imports(path) for name, path in _modules().items()
                 if name not in TENSORFLOW_IMPORTERS}
    assert {name: lines for name, lines in offenders.items() if lines} == {}


def _documented_modules():
    """The module paths the layout list in docs/development.md names (one per line)."""
    text = (REPO_ROOT / "docs" / "development.md").read_text()
    begin, end = text.index("<!-- layout list: begin"), text.index("<!-- layout list: end")
    return [line.split()[0] for line in text[begin:end].splitlines()
            if line.startswith("mobilenet_tf/")]


def test_the_docs_layout_list_names_every_module_once():
    files = sorted(str(p.relative_to(REPO_ROOT)) for p in PACKAGE.rglob("*.py"))
    listed = _documented_modules()
    assert sorted(set(listed)) == sorted(listed), "a module is listed twice"
    assert {"missing from the list": sorted(set(files) - set(listed)),
            "listed but not there": sorted(set(listed) - set(files))} == {
        "missing from the list": [], "listed but not there": []}


def test_the_checks_can_fail(tmp_path):
    """The circle finder finds circles, the layer check finds an upward import, and the
    TensorFlow import check finds both spellings, in a function too."""
    module = tmp_path / "m.py"
    module.write_text("import os\nimport tensorflow as tf\n\n\ndef f():\n"
                      "    from tensorflow.python import keras\n")
    assert _tensorflow_imports(module) == [2, 6]
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _upward({"mobilenet_tf.model.builder": {"mobilenet_tf.training.loop"},
                    "mobilenet_tf.training.loop": {"mobilenet_tf.model.builder"}}) == {
        "mobilenet_tf.model.builder": ["mobilenet_tf.training.loop"]}
