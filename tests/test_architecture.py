"""The package's shape, read from its source with ``ast``: the modules of constellations/ import each
other without a cycle, and none of them imports another's private (``_underscore``) names.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING``; relative
imports are resolved against the importing module's package.
"""

import ast
from pathlib import Path

PACKAGE = "constellations"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _package_of(name: str, path: Path) -> list[str]:
    """The package a relative import in this module starts from."""
    return name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]


def _resolve(node: ast.ImportFrom, here: list[str]) -> str:
    if node.level:
        base = here[: len(here) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def _imports(name: str, path: Path, modules, tree=None) -> list[tuple[str, list[str], int]]:
    """(imported module of the package, names taken from it, line) for every import statement in the file."""
    here = _package_of(name, path)
    out = []
    for node in ast.walk(tree or ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    out.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, here)
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:  # "from . import bounds": the module bounds itself
                    out.append((sub, [], node.lineno))
                else:
                    out.append((target, [alias.name], node.lineno))
    return out


def _graph():
    modules = _modules()
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _, _ in _imports(name, path, modules):
            # importing a.b.c runs a and a.b first: an edge to the deepest module of the package that exists
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def _find_cycle(graph):
    """A cycle as a list of modules [a, b, ..., a], or None (iterative depth-first search)."""
    state = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_scan_sees_every_module_and_resolves_relative_imports():
    graph = _graph()
    assert {"constellations.loss", "constellations.siglip.losses", "constellations.synthetic.engine"} <= set(graph)
    assert "constellations.geometry" in graph["constellations.analysis"]      # from .geometry import ...
    assert "constellations.loss" in graph["constellations.siglip.losses"]     # from ..loss import ...
    assert "constellations.bounds" in graph["constellations.dimension"]       # from . import bounds


def test_no_import_cycle_in_the_package():
    """The import graph between the modules of constellations/ (function-level imports and the
    ``__init__`` files included, subpackages too) is acyclic.

    Only written imports count: the implicit import of a module's parent package by Python is no
    edge (otherwise every package whose ``__init__`` gathers its modules would be a cycle).
    """
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_aliases(tree, name, path, modules) -> dict[str, str]:
    """Local names bound to modules of the package (``from . import loss as _loss``, ``import constellations.loss as L``)."""
    here, aliases = _package_of(name, path), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in modules})
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, here)
            for a in node.names:
                if f"{target}.{a.name}" in modules:
                    aliases[a.asname or a.name] = f"{target}.{a.name}"
    return aliases


def test_no_private_name_imported_across_modules():
    """No module uses a ``_private`` name of another module of the package: neither ``from .loss import _x``
    nor ``from . import loss`` followed by ``loss._x``.

    Importing the private module ``_validation`` itself is fine; its names are its public interface.
    """
    modules = _modules()
    bad = []
    for name, path in modules.items():
        where = path.relative_to(ROOT.parent)
        tree = ast.parse(path.read_text(), filename=str(path))
        for target, names, line in _imports(name, path, modules, tree):
            if target != name:
                bad += [f"{where}:{line}: {imported} from {target}" for imported in names if _private(imported)]
        aliases = _module_aliases(tree, name, path, modules)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and aliases[node.value.id] != name and _private(node.attr)):
                bad.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr} ({aliases[node.value.id]})")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)
