"""The package's shape: library modules import no command-line module, there is no import
circle (lazy imports inside functions included), and the library never reads absl flags.

The graph comes from the source (ast), so an import added anywhere, at module level or in a
function, is seen without running it.
"""

import ast

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "mobilenet_tf"
# `python -m mobilenet_tf.<tool>`: parse arguments, call the library, print.
COMMANDS = {"predict", "evaluate", "convert", "costs", "write_tfrecords"}


def _imports(path):
    """The mobilenet_tf modules `path` imports (anywhere in the file), and any absl.flags use."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found, absl_flags = set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mobilenet_tf."):
                    found.add(alias.name.split(".")[1])
                absl_flags |= alias.name == "absl.flags"
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mobilenet_tf":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("mobilenet_tf."):
                found.add(node.module.split(".")[1])
            absl_flags |= node.module == "absl.flags" or (
                node.module == "absl" and any(a.name == "flags" for a in node.names))
    return found, absl_flags


def _graph():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph, flag_users = {}, []
    for name, path in modules.items():
        imported, absl_flags = _imports(path)
        graph[name] = {m for m in imported if m in modules and m != name}
        if absl_flags:
            flag_users.append(name)
    return graph, flag_users


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


def test_library_modules_import_no_command_module():
    graph, _ = _graph()
    offenders = {m: sorted(deps & COMMANDS) for m, deps in graph.items()
                 if m not in COMMANDS and deps & COMMANDS}
    assert offenders == {}


def test_commands_import_no_other_command_but_the_shared_model_options():
    """predict defines the model options evaluate reuses; nothing else crosses commands."""
    graph, _ = _graph()
    crossings = {m: sorted(graph[m] & COMMANDS) for m in COMMANDS if graph[m] & COMMANDS}
    assert crossings == {"evaluate": ["predict"]}


def test_no_import_circle():
    graph, _ = _graph()
    assert _cycle(graph) is None


def test_the_library_never_imports_absl_flags():
    _, flag_users = _graph()
    assert flag_users == []


def test_the_circle_finder_finds_circles():
    """The check above can fail: a two-module and a three-module circle are found."""
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
