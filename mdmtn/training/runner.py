"""The runner: hands one config to its method and returns the trained model and its record.

``method`` picks the training procedure: ``"wc_al"`` is the paper's Algorithm 1
(:func:`mdmtn.training.trainer.train_algorithm1`); ``"mgda"``, ``"stl"``, ``"mtan"`` and ``"kdmtl"`` are the
baselines (:func:`mdmtn.training.baselines.train_baseline`). Every method writes the same record layout, so a
sweep, the CLI and the book treat them alike.
"""

from __future__ import annotations

import torch
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits
from mdmtn.records.machine import code_version, resolve_device, set_precision
from mdmtn.training.baselines import train_baseline
from mdmtn.training.engine import TrainResult
from mdmtn.training.trainer import train_algorithm1

__all__ = ["train"]


def train(
    cfg: RunConfig,
    splits: Splits | None = None,
    *,
    data_dir: str | None = None,
    allow_unverified_cifar: bool = False,
    download: bool = False,
    progress: bool = True,
    model: nn.Module | None = None,
    device: str | torch.device | None = "cpu",
) -> TrainResult:
    """Train one run of ``cfg`` with its method; returns the model and its record.

    ``splits`` (already loaded data) takes precedence over ``data_dir`` and is subset to the
    config's sizes. ``model`` replaces the paper architecture ``cfg.model`` (the paper's method and
    MGDA). ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``) holds data, model and
    optimiser state; the record names it. Same seed and device give the same record. Raises
    :class:`mdmtn.training.engine.TrainingDiverged` on NaN.

    >>> from mdmtn import make_config
    >>> cfg = make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke")
    >>> result = train(cfg, data_dir="data/", progress=False)  # doctest: +SKIP
    >>> sorted(result.record["metrics"])[:2]  # doctest: +SKIP
    ['CR', 'PS']
    """
    code_version()  # pin the commit now: the record is written at the end, when HEAD may have moved
    set_precision()  # TF32 off unless MDMTN_ALLOW_TF32=1; the record's machine block says which
    dev = resolve_device(device)
    kw = dict(
        data_dir=data_dir,
        allow_unverified_cifar=allow_unverified_cifar,
        download=download,
        progress=progress,
        model=model,
        device=dev,
    )
    if cfg.method == "wc_al":
        return train_algorithm1(cfg, splits, **kw)
    return train_baseline(cfg, splits, **kw)
