"""mdmtn: sparse deep multi-task learning via multi-objective optimisation.

The public API, importable from the package itself (each name is loaded on first use, so
``import mdmtn`` and ``python -m mdmtn --help`` do not import torch):

=====================  ======================================================================
``make_config``        a validated, frozen :class:`RunConfig` from the paper's defaults
``RunConfig``          one run's configuration; its hash is the run's record key
``load_splits``        MultiMNIST / Cifar10Mnist train/val/test tensors from torchvision's files
``build_model``        HPS, MDMTN, STL, MTAN or KDMTL by name
``train``              one run of a config (Algorithm 1 or a baseline) -> model and record
``run_sweep``          many configs, resumable, in worker processes or on a Dask cluster
``compress_model``     a sparse, tied model rebuilt physically smaller
``load_checkpoint``    a saved model with its config
``read_record``        a run record, checked against its file name
=====================  ======================================================================

The sub-packages are the layers (README.md, "The layers"; tests/system/test_imports.py), each importing
only from the layers above it: ``core``, ``data``, ``models``, ``objectives``, ``records``, ``training``,
``experiments`` and ``reporting`` (which only reads records), ``book`` (what a chapter calls) and
``interface`` (the command line).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

__version__ = "0.1.0"

_API = {
    "make_config": ("core.config", "make_config"),
    "RunConfig": ("core.config", "RunConfig"),
    "load_splits": ("data", "load_splits"),
    "build_model": ("models", "build_model"),
    "train": ("training.runner", "train"),
    "run_sweep": ("experiments.sweep", "run_sweep"),
    "compress_model": ("training.compress", "compress"),
    "load_checkpoint": ("records.checkpoint", "load_checkpoint"),
    "read_record": ("records.record", "read_record"),
}

# Where the modules of the flat layout (mdmtn 0.1.0 before the layer packages) live now. The old
# names keep working for one release, with a DeprecationWarning: ``import mdmtn.growl``,
# ``from mdmtn.sweep import run_sweep`` and ``mdmtn.growl`` give the new module itself.
MOVED = {
    "fields": "core.fields",
    "config": "core.config",
    "timing": "core.timing",
    "growl": "objectives.growl",
    "scalarization": "objectives.scalarization",
    "mgda": "objectives.mgda",
    "lsuv": "objectives.lsuv",
    "metrics": "objectives.metrics",
    "pareto": "objectives.pareto",
    "toy": "objectives.toy",
    "probe": "records.probe",
    "engine": "training.engine",
    "trainer": "training.trainer",
    "stacked": "training.stacked",
    "compress": "training.compress",
    "runner": "training.runner",
    "baselines": "training.baselines",
    "mt2o": "training.mt2o",
    "sweep": "experiments.sweep",
    "cluster": "experiments.cluster",
    "claims": "experiments.claims",
    "joint_runs": "experiments.joint_runs",
    "restore": "experiments.restore",
    "aggregate": "reporting.aggregate",
    "report": "reporting.report",
    "cells": "reporting.cells",
    "verdicts": "reporting.verdicts",
    "frontmeasures": "reporting.frontmeasures",
    "ledger": "reporting.ledger",
    "plots": "reporting.plots",
    "joint_report": "reporting.joint_report",
    "chapter": "book.chapter",
    "sections": "book.sections",
    "cli": "interface.cli",
}

__all__ = ["__version__", *_API]


def _new_name(fullname: str) -> str | None:
    """``mdmtn.growl`` -> ``mdmtn.objectives.growl`` (sub-modules of moved packages included)."""
    head, _, rest = fullname.partition(".")[2].partition(".")
    if fullname.partition(".")[0] != __name__ or head not in MOVED:
        return None
    return f"{__name__}.{MOVED[head]}" + (f".{rest}" if rest else "")


def _warn_moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old name goes in the next release", DeprecationWarning, stacklevel=3)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and hands out the new module under it (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        new = _new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec):
        new = _new_name(spec.name)
        _warn_moved(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the new module ran when it was imported


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())  # before the path finder, which would load a moved sub-module twice


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in MOVED:
        _warn_moved(f"{__name__}.{name}", f"{__name__}.{MOVED[name]}")
        return importlib.import_module(f"{__name__}.{MOVED[name]}")
    try:  # ``mdmtn.objectives`` and the other layer packages, without an explicit import
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
