"""MTAN baseline as the authors run it (book appendix): weighted loss, two searches, then a long final run.

Loss Σ_t λ_t·CE_t with λ pairs summing to 0.1 (``mtan_lambdas``); Adam; lr × ``lr_decay`` (0.5)
every ``lr_step`` (25) epochs (StepLR); LSUV initialisation before every training; the
best-validation (mean accuracy) epoch is kept.

1. λ search: each λ for ``search_epochs`` epochs on a random ``search_fraction`` (50%) of the
   training split, at the first lr of ``mtan_lrs``;
2. lr search over ``mtan_lrs`` with the best λ, same data;
3. final: ``epochs`` (200) epochs on the whole training split with the best (λ, lr).

Candidates are compared by best validation mean accuracy; ties keep the earlier candidate (the
authors' strict ``<``). A list with one candidate, or ``search_epochs=0``, skips that search and
takes the first candidate. The authors re-initialised one model object by LSUV for each
candidate; here each candidate gets a fresh model (LSUV overwrites every conv/linear weight
anyway; only BatchNorm running statistics differed).

The architecture (per-task or, with ``mtan_attention="shared"``, the code's shared attention)
is :class:`mdmtn.models.MTAN`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, TaskTensors
from mdmtn.models import build_model
from mdmtn.training.baselines.common import CHANNELS_LAST, begin_search_run, lsuv_init_
from mdmtn.training.loop import EpochLoop


def weighted_step(model: torch.nn.Module, opt: torch.optim.Optimizer, weights: Sequence[float]) -> Callable:
    """Step on Σ_t weights[t]·NLL_t; returns the unweighted task losses (T,)."""
    w = torch.tensor(weights, dtype=torch.float32, device=next(model.parameters()).device)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses = torch.stack([F.nll_loss(o, y[:, t]) for t, o in enumerate(model(x))])
        opt.zero_grad(set_to_none=True)
        (w * losses).sum().backward()
        opt.step()
        return losses.detach()

    return step


def train_mtan(cfg: RunConfig, splits: Splits, *, progress: bool = True, model=None):
    """λ search, lr search, final training; returns a :class:`mdmtn.training.finish.Trained`."""
    run = begin_search_run(
        cfg,
        splits,
        "MTAN",
        model,
        progress,
        lambda s: (
            (len(cfg.mtan.lambdas) + len(cfg.mtan.lrs) if s else 0) * cfg.schedule.search_epochs + cfg.schedule.epochs
        ),
    )
    search_data, fits = run.search_data, run.fits

    def fit(lambdas: Sequence[float], lr: float, data: TaskTensors, epochs: int, phase: str) -> EpochLoop:
        i = next(fits)
        net = build_model(
            "mtan", splits.input_shape, n_tasks=cfg.n_tasks, shared_attention=cfg.mtan.attention == "shared"
        )
        net.to(device=splits.train.x.device, memory_format=CHANNELS_LAST)
        lsuv_init_(net, data, cfg.data.batch_size, seed=1000 * cfg.seed + 10 * i + 3)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        step = weighted_step(net, opt, lambdas)
        return run.fit(
            cfg, splits, i, net, step, opt, data, epochs, phase, lambda: dict(lambdas=list(lambdas), base_lr=lr)
        )

    try:
        lam, lam_results = run.search(
            cfg.mtan.lambdas,
            lambda c: fit(c, cfg.mtan.lrs[0], search_data, cfg.schedule.search_epochs, "search_lambda"),
        )
        lr, lr_results = run.search(
            cfg.mtan.lrs, lambda c: fit(lam, c, search_data, cfg.schedule.search_epochs, "search_lr")
        )
        final = fit(lam, lr, splits.train, cfg.schedule.epochs, "final")
    finally:
        run.bar.close()
    return run.result(cfg, splits, final, lambdas=list(lam), lr=lr, search_lambda=lam_results, search_lr=lr_results)
