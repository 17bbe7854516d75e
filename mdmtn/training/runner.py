"""The runner: hands one config to its method and builds the run's record from what it returns.

``method`` picks the trainer (:data:`TRAINERS`): ``"wc_al"`` is the paper's Algorithm 1
(:func:`mdmtn.training.trainer.train_algorithm1`); ``"mgda"``, ``"stl"``, ``"mtan"``, ``"kdmtl"`` and
``"unitary"`` are the baselines (:mod:`mdmtn.training.baselines`). Every trainer has one signature,
``(cfg, splits, *, progress, model) -> Trained``, and returns no record: the runner prepares the
data for every method alike and builds every record with :func:`mdmtn.training.finish.finish`, so a
sweep, the CLI and the book treat them alike.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, prepare_splits
from mdmtn.records.machine import code_version, resolve_device, set_precision
from mdmtn.training.baselines import TRAINERS as BASELINES
from mdmtn.training.finish import TrainResult, finish
from mdmtn.training.trainer import train_algorithm1

__all__ = ["train", "TRAINERS"]

TRAINERS = {"wc_al": train_algorithm1, **BASELINES}


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
    config's sizes; they must have been loaded with the config's data options
    (:func:`mdmtn.data.data_options`; checked). ``model`` replaces the paper
    architecture ``cfg.model`` (the paper's method, MGDA and unitary). ``device`` (``"auto"``,
    ``"cpu"``, ``"cuda"``, ``"cuda:N"``) holds data, model and optimiser state; the record names
    it. Same seed and device give the same record. Raises
    :class:`mdmtn.training.loop.TrainingDiverged` on NaN.

    >>> from mdmtn import make_config
    >>> cfg = make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke")
    >>> result = train(cfg, data_dir="data/", progress=False)  # doctest: +SKIP
    >>> sorted(result.record["metrics"])[:2]  # doctest: +SKIP
    ['CR', 'PS']
    """
    code_version()  # pin the commit now: the record is written at the end, when HEAD may have moved
    set_precision()  # TF32 off unless MDMTN_ALLOW_TF32=1; the record's machine block says which
    dev = resolve_device(device)
    t_start = time.perf_counter()
    splits = prepare_splits(
        cfg, splits, data_dir=data_dir, allow_unverified_cifar=allow_unverified_cifar, download=download
    ).to(dev)  # each trainer builds its networks on the data's device
    data_s = time.perf_counter() - t_start
    trained = TRAINERS[cfg.method](cfg, splits, progress=progress, model=model)
    trained.timer.add("data", data_s)
    return finish(cfg, trained, splits, t_start, dev)
