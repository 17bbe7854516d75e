"""The package's layers import downward only: no import cycle between mdmtn modules (function-level
imports included) and no module importing another module's underscore names."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mdmtn"


def _graph():
    mods = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    edges, private = {m: set() for m in mods}, []
    for name, f in mods.items():
        pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mdmtn"):
                continue
            for a in node.names:
                full = f"{target}.{a.name}"
                dest = full if full in mods else target
                if dest != name:
                    edges[name].add(dest)
                if a.name.startswith("_") and not a.name.startswith("__") and dest != name:
                    private.append(f"{name} imports {full}")
    return mods, edges, private


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    mods, edges, _ = _graph()
    # importing a submodule runs its package's __init__; a package re-exporting its own
    # submodules is not a cycle, so edges from a package to its children are left out
    graph = {m: {d for d in ds if d in mods and m not in _ancestors(d)} for m, ds in edges.items()}
    state, cycles = {}, []

    def visit(u, path):
        state[u] = 1
        for v in graph[u]:
            if state.get(v) == 1:
                cycles.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_names_across_modules():
    assert not _graph()[2]
