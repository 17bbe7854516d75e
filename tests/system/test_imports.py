"""The package's layers import downward only: no import cycle between mdmtn modules (function-level
imports included) and no module importing another module's underscore names."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "mdmtn"


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
                cycles.append(path[path.index(v) :] + [v])
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

    code = (
        "import sys\nsys.argv = ['mdmtn', '--help']\nimport runpy\ntry:\n    runpy.run_module('mdmtn', run_name='__main__')\n"
        "except SystemExit:\n    pass\nimport mdmtn\nprint('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage:" in out and "TORCH False" in out


def test_curated_api_resolves_and_does_not_shadow_submodules():
    import types

    import mdmtn

    for name in mdmtn.__all__:
        assert getattr(mdmtn, name) is not None
    import mdmtn.training.compress

    assert isinstance(mdmtn.training.compress, types.ModuleType)  # the submodule, not a function of the same name
    assert mdmtn.compress_model is mdmtn.training.compress.compress
    assert mdmtn.train is __import__("mdmtn.training.runner", fromlist=["train"]).train


# The layers of README.md's map: each package and the packages it may import (besides itself and
# the top-level ``mdmtn``, whose lazy names import nothing at import time). The library is every
# layer but ``study``; the study may import the whole library, and the library never imports it.
LIBRARY = ["core", "data", "models", "objectives", "records", "training", "experiments", "interface"]
ALLOWED = {
    "core": [],
    "data": LIBRARY[:1],
    "models": LIBRARY[:2],
    "objectives": LIBRARY[:3],
    "records": LIBRARY[:4],
    "training": LIBRARY[:5],
    "experiments": LIBRARY[:6],
    "interface": LIBRARY[:7],
    "study": LIBRARY,
}
TOP_LEVEL = {"mdmtn", "mdmtn.__main__"}  # the only modules beside the layer packages
# the study's modules that only read records (a page never trains, loads a model or writes)
STUDY_WRITERS = {"cli", "maps", "compression", "chapter", "sections", "__main__"}  # the book helpers train a reader's k


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_the_tree_is_the_layer_table():
    mods, _, _ = _graph()
    stray = sorted(m for m in mods if _layer(m) is None and m not in TOP_LEVEL)
    assert not stray, f"place these modules in a layer package (here and in README.md): {stray}"
    readme = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    for layer in ALLOWED:
        assert f"| `{layer}` |" in readme, f"README.md's layer table lacks {layer}"


def test_modules_import_only_from_the_layers_they_may():
    mods, edges, _ = _graph()
    bad = sorted(
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, ds in edges.items()
        for d in ds
        if d in mods and _layer(m) and _layer(d) and _layer(d) != _layer(m) and _layer(d) not in ALLOWED[_layer(m)]
    )
    assert not bad, "imports a layer may not make:\n" + "\n".join(bad)


def test_every_layer_package_has_a_docstring_and_a_curated_api():
    import importlib

    for layer in ALLOWED:
        pkg = importlib.import_module(f"mdmtn.{layer}")
        assert pkg.__doc__ and pkg.__doc__.strip(), layer
        assert pkg.__all__, layer
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None, f"mdmtn.{layer}.{name}"


def test_the_library_never_imports_the_study():
    """Neither at module level nor inside a function: a researcher's use of the trainer never
    loads the reproduction study."""
    mods, edges, _ = _graph()
    bad = sorted(
        f"{m} imports {d}"
        for m, ds in edges.items()
        for d in ds
        if _layer(m) != "study" and d.startswith("mdmtn.study")
    )
    assert not bad, bad
    import mdmtn

    assert not any(name.startswith("study") for name in mdmtn.__all__)  # the public API names the library only


def test_no_import_hook_and_no_lazy_tables_in_the_layer_packages():
    """Each layer package imports its public names (no ``__getattr__`` table); only the top
    package keeps its names lazy, so that ``import mdmtn`` does not import torch."""
    import sys

    import mdmtn

    assert not any(type(f).__module__.startswith("mdmtn") for f in sys.meta_path)
    for layer in ALLOWED:
        src = (ROOT / layer / "__init__.py").read_text(encoding="utf-8")
        assert "__getattr__" not in src and "lazy" not in src.lower(), layer
    assert not hasattr(mdmtn, "MOVED")


def test_the_studys_readers_import_nothing_that_writes_or_loads_a_checkpoint():
    """The study's reading modules only read records: no writer, sealer or checkpoint loader of the records layer,
    and no ``open(..., "w")``-style write in its source (a page never trains, loads a model or writes)."""
    import re

    banned = re.compile(r"^(write_|save_|seal_|atomic_write|load_checkpoint|load_verified_checkpoint)")
    bad = []
    for f in (ROOT / "study").rglob("*.py"):
        if f.stem in STUDY_WRITERS:
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mdmtn"):
                bad += [f"{f.name} imports {a.name}" for a in node.names if banned.match(a.name)]
            if isinstance(node, ast.Attribute) and node.attr in ("write_text", "write_bytes", "unlink", "mkdir"):
                bad.append(f"{f.name} calls .{node.attr}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                mode = (
                    node.args[1]
                    if len(node.args) > 1
                    else next((k.value for k in node.keywords if k.arg == "mode"), None)
                )
                if mode is not None and not (isinstance(mode, ast.Constant) and set(str(mode.value)) <= set("rbt")):
                    bad.append(f"{f.name} opens a file for writing (line {node.lineno})")
    assert not bad, bad
