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

The modules form layers that import only upward (README.md, "The layers"; tests/test_imports.py).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "make_config": ("config", "make_config"),
    "RunConfig": ("config", "RunConfig"),
    "load_splits": ("data", "load_splits"),
    "build_model": ("models", "build_model"),
    "train": ("runner", "train"),
    "run_sweep": ("sweep", "run_sweep"),
    "compress_model": ("compress", "compress"),
    "load_checkpoint": ("records", "load_checkpoint"),
    "read_record": ("records", "read_record"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    try:  # ``mdmtn.growl`` and the other submodules, without an explicit import
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
