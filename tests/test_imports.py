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


def test_help_and_the_package_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys\nsys.argv = ['mdmtn', '--help']\nimport runpy\ntry:\n    runpy.run_module('mdmtn', run_name='__main__')\n"
            "except SystemExit:\n    pass\nimport mdmtn\nprint('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage:" in out and "TORCH False" in out


def test_curated_api_resolves_and_does_not_shadow_submodules():
    import types

    import mdmtn

    for name in mdmtn.__all__:
        assert getattr(mdmtn, name) is not None
    import mdmtn.compress

    assert isinstance(mdmtn.compress, types.ModuleType)  # the submodule, not a function of the same name
    assert mdmtn.compress_model is mdmtn.compress.compress
    assert mdmtn.train is __import__("mdmtn.runner", fromlist=["train"]).train


# The layers of README.md's map, top (imported by everything below) to bottom. A module may import
# from its own layer and the layers above it, never from a layer below.
LAYERS = [
    ("foundation", ["mdmtn", "mdmtn.fields", "mdmtn.config", "mdmtn.claims", "mdmtn.timing"]),
    ("data", ["mdmtn.data"]),
    ("models", ["mdmtn.models"]),
    ("objectives", ["mdmtn.growl", "mdmtn.scalarization", "mdmtn.mgda", "mdmtn.lsuv", "mdmtn.metrics", "mdmtn.pareto",
                    "mdmtn.toy"]),
    ("records", ["mdmtn.records", "mdmtn.probe"]),
    ("engine", ["mdmtn.engine"]),
    ("methods", ["mdmtn.trainer", "mdmtn.baselines", "mdmtn.mt2o", "mdmtn.compress", "mdmtn.stacked"]),
    ("experiments", ["mdmtn.runner", "mdmtn.sweep", "mdmtn.cluster", "mdmtn.joint_runs", "mdmtn.restore"]),
    ("reporting", ["mdmtn.aggregate", "mdmtn.report", "mdmtn.cells", "mdmtn.verdicts", "mdmtn.frontmeasures", "mdmtn.ledger", "mdmtn.plots", "mdmtn.chapter", "mdmtn.sections",
                   "mdmtn.joint_report"]),
    ("interface", ["mdmtn.cli", "mdmtn.__main__"]),
]


def _layer(module):
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            # the package itself ("mdmtn") is its __init__ only, not a prefix of every module
            if (module == p or (p != "mdmtn" and module.startswith(p + "."))) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    return best[0] if best else None


def test_modules_import_only_from_their_own_layer_and_above():
    mods, edges, _ = _graph()
    unplaced = sorted(m for m in mods if _layer(m) is None)
    assert not unplaced, f"place these modules in a layer (here and in README.md): {unplaced}"
    upward = sorted(f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
                    for m, ds in edges.items() for d in ds if d in mods and _layer(d) > _layer(m))
    assert not upward, "imports from a lower layer:\n" + "\n".join(upward)
