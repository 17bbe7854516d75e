"""The baselines of Tables 1-2 and of the authors' code, trained like the paper's method.

=============  ============================================  ==============================
method         what                                          module
=============  ============================================  ==============================
``mgda``       MGDA-UB (Sener & Koltun 2018), HPS / MDMTN    :mod:`.mgda_train`
``stl``        one single-task network per task              :mod:`.stl`
``mtan``       MTAN with the authors' λ / lr searches        :mod:`.mtan`
``kdmtl``      KDMTL: STL teachers, distilled HPS student    :mod:`.kdmtl`
``unitary``    the mean task loss, trained like MGDA-UB      :mod:`.unitary`
=============  ============================================  ==============================

:func:`train_baseline` is what :func:`mdmtn.training.runner.train` calls for ``cfg.method != "wc_al"``,
so ``python -m mdmtn train --method mgda ...`` writes the same run record as the paper's method.
Settings follow the book appendix (see each module); :func:`data_options` says which data a run trains on.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits
from mdmtn.training.baselines.common import data_options, lr_factor, prepare_splits
from mdmtn.training.baselines.kdmtl import distillation_loss, train_kdmtl
from mdmtn.training.baselines.mgda_train import mgda_step, train_mgda
from mdmtn.training.baselines.mtan import train_mtan
from mdmtn.training.baselines.stl import train_stl
from mdmtn.training.baselines.unitary import train_unitary, unitary_step

__all__ = [
    "train_baseline",
    "data_options",
    "lr_factor",
    "mgda_step",
    "distillation_loss",
    "train_mgda",
    "train_stl",
    "train_mtan",
    "train_kdmtl",
    "train_unitary",
    "unitary_step",
]

TRAINERS = {"mgda": train_mgda, "stl": train_stl, "mtan": train_mtan, "kdmtl": train_kdmtl, "unitary": train_unitary}


def train_baseline(
    cfg: RunConfig,
    splits: Splits | None = None,
    *,
    data_dir: str | None = None,
    allow_unverified_cifar: bool = False,
    download: bool = False,
    progress: bool = True,
    model: nn.Module | None = None,
    device: str | torch.device = "cpu",
):
    """Train the baseline ``cfg.method`` and return a :class:`mdmtn.training.trainer.TrainResult`.

    ``splits`` must have been loaded with ``load_splits(..., **data_options(cfg))`` (MGDA: the
    full training set; on Cifar10Mnist unnormalised); without them the data are loaded from
    ``data_dir``. ``model`` (MGDA and unitary only) replaces the paper architecture; it needs ``shared``,
    ``representation(x)`` and ``task_heads`` like HPS / MDMTN.
    """
    t_start = time.perf_counter()
    if cfg.method not in TRAINERS:
        raise ValueError(f"{cfg.method!r} is not a baseline; choose one of {tuple(TRAINERS)}")
    splits = prepare_splits(
        cfg, splits, data_dir=data_dir, allow_unverified_cifar=allow_unverified_cifar, download=download
    ).to(device)  # each trainer builds its networks on the data's device
    return TRAINERS[cfg.method](cfg, splits, t_start=t_start, progress=progress, model=model)
