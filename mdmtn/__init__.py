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
``read_record``        a run record's stored JSON, checked against its file name
``read_run``           the same record typed (:class:`~mdmtn.records.RunRecord`)
=====================  ======================================================================

The library is the layer packages ``core``, ``data``, ``models``, ``objectives``, ``records``,
``training``, ``experiments`` and ``interface`` (the command line), each importing only from the
layers below it (README.md, "The layers"; tests/system/test_imports.py). ``mdmtn.study`` is the
reproduction study of the paper built on it (claims registry, verdicts, tables, the book's
helpers, ``python -m mdmtn.study``); the library never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

from mdmtn.core.version import __version__

# the public names, each imported from its module on first use: most of them need torch
_API = {
    "make_config": ("core.config", "make_config"),
    "RunConfig": ("core.config", "RunConfig"),
    "load_splits": ("data", "load_splits"),
    "build_model": ("models", "build_model"),
    "train": ("training.runner", "train"),
    "run_sweep": ("experiments.sweep", "run_sweep"),
    "compress_model": ("training.compress", "compress"),
    "load_checkpoint": ("records.checkpoint", "load_checkpoint"),
    "read_record": ("records.store", "read_record"),
    "read_run": ("records.store", "read_run"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    try:  # ``mdmtn.objectives`` and the other packages, without an explicit import
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
