"""The layers import one way, cli.py -> segment -> em -> kmeans, with no cycle, read from the source with ast.

Every import counts, also one inside a function: a cycle closed that way is
still a cycle. Only the project's own modules are nodes; tests and benchmarks
sit on top and are not read.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("cli", "segment", "em", "kmeans")  # top to bottom: each may import only those after it


def module_names(root):
    """{dotted module name: path} of cli.py and every .py file in the layers' packages."""
    names = {"cli": root / "cli.py"} if (root / "cli.py").exists() else {}
    for package in LAYERS[1:]:
        for path in sorted((root / package).glob("*.py")):
            names[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return names


def imported_modules(name, path, known):
    """The modules of ``known`` that the file imports, anywhere in it (a function body included)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            # `from package import submodule` imports the submodule; `from module import name` the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a package's module: the nearest known one
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root):
    """{module: set of project modules it imports}."""
    names = module_names(root)
    return {name: imported_modules(name, path, names) for name, path in names.items()}


def layer(name):
    return LAYERS.index(name.split(".")[0])


def upward_imports(graph):
    """(importer, imported) pairs where the imported module is in a higher layer."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer(b) < layer(a))


def find_cycle(graph):
    """One import cycle as a list of modules [a, b, ..., a], or None."""
    state = {}  # module -> "open" while on the path, "done" once every path from it was followed

    def visit(name, path):
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target, path + [target])):
                return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_the_project_imports_one_way_with_no_cycle():
    graph = import_graph(ROOT)
    assert {"cli", "segment.image", "em.estimator", "em.distributed", "kmeans.shared"} <= set(graph)
    assert "kmeans.shared" in graph["em._kernels"] and "em" in graph["segment.models"]  # the reader sees imports
    assert upward_imports(graph) == []
    assert find_cycle(graph) is None


def test_only_the_application_touches_pillow():
    for name, path in module_names(ROOT).items():
        if layer(name) >= LAYERS.index("em"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
            modules += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
            assert not [m for m in modules if m.split(".")[0] == "PIL"], name


def test_the_checks_find_a_cycle_and_an_upward_import_in_a_made_up_tree(tmp_path):
    files = {
        "cli.py": "import segment.image\n",
        "segment/__init__.py": "",
        "segment/image.py": "from em import estimator\n",
        "em/__init__.py": "from .estimator import Model\n",
        "em/estimator.py": "def fit():\n    from . import distributed  # a cycle closed inside a function\n",
        "em/distributed.py": "from .estimator import fit\n",
        "kmeans/__init__.py": "",
        "kmeans/shared.py": "def f():\n    from segment.image import load  # upward\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["cli"] == {"segment.image"} and graph["segment.image"] == {"em.estimator"}
    assert upward_imports(graph) == [("kmeans.shared", "segment.image")]
    assert find_cycle(graph) == ["em.estimator", "em.distributed", "em.estimator"]
    (tmp_path / "em/distributed.py").write_text("import numpy\n")
    (tmp_path / "kmeans/shared.py").write_text("import numpy\n")
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == [] and find_cycle(graph) is None
