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

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, TaskTensors
from mdmtn.models import build_model
from mdmtn.training.baselines.common import CHANNELS_LAST, begin_search_run, finish_record, lr_factor, lsuv_init_
from mdmtn.training.engine import EpochLoop, TrainResult, evaluate, run_epochs


def run_search(candidates: Sequence[Any], fit: Callable[[Any, int], EpochLoop], enabled: bool) -> tuple[Any, list]:
    """Try each candidate (``fit(candidate, index) -> EpochLoop``) and return the one with the
    best validation score (first on ties) and ``[{candidate, best_val, best_epoch}, ...]``."""
    if not enabled or len(candidates) < 2:
        return candidates[0], []
    results, best, best_score = [], candidates[0], float("-inf")
    for i, c in enumerate(candidates):
        loop = fit(c, i)
        results.append(
            dict(
                candidate=list(c) if isinstance(c, (tuple, list)) else c,
                best_val=loop.best_score,
                best_epoch=loop.best_epoch,
            )
        )
        if loop.best_score > best_score:
            best, best_score = c, loop.best_score
    return best, results


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


def train_mtan(cfg: RunConfig, splits: Splits, *, t_start: float, progress: bool = True, model=None):
    """λ search, lr search, final training; returns a :class:`mdmtn.training.trainer.TrainResult`."""
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
    search_data, do_search, bar, history, fits = run.search_data, run.do_search, run.bar, run.history, run.fits

    def fit(lambdas: Sequence[float], lr: float, data: TaskTensors, epochs: int, phase: str) -> EpochLoop:
        i = next(fits)
        net = build_model(
            "mtan", splits.input_shape, n_tasks=cfg.n_tasks, shared_attention=cfg.mtan.attention == "shared"
        )
        net.to(device=splits.train.x.device, memory_format=CHANNELS_LAST)
        lsuv_init_(net, data, cfg.data.batch_size, seed=1000 * cfg.seed + 10 * i + 3)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loop = run_epochs(
            EpochLoop(
                model=net,
                step=weighted_step(net, opt, lambdas),
                optimizers=[opt],
                train=data,
                epochs=epochs,
                batch_size=cfg.data.batch_size,
                lr_schedule=lambda e: lr_factor(
                    e, cfg.schedule.lr_decay, cfg.schedule.lr_first_decay, cfg.schedule.lr_step
                ),
                generator=torch.Generator().manual_seed(1000 * cfg.seed + 10 * i),
                evaluate=lambda m: evaluate(m, splits.val, cfg.data.eval_batch_size)["acc"],
                phase=phase,
                extra=lambda: dict(lambdas=list(lambdas), base_lr=lr),
            ),
            bar,
        )
        history.extend(loop.history)
        return loop

    try:
        lam, lam_results = run_search(
            cfg.mtan.lambdas,
            lambda c, i: fit(c, cfg.mtan.lrs[0], search_data, cfg.schedule.search_epochs, "search_lambda"),
            do_search,
        )
        lr, lr_results = run_search(
            cfg.mtan.lrs, lambda c, i: fit(lam, c, search_data, cfg.schedule.search_epochs, "search_lr"), do_search
        )
        final = fit(lam, lr, splits.train, cfg.schedule.epochs, "final")
    finally:
        bar.close()
    record = finish_record(
        cfg,
        final.model,
        splits,
        history,
        t_start,
        final.history[-1]["train_objectives"],
        dict(
            selected_epoch=final.best_epoch,
            selection="best validation mean accuracy",
            lambdas=list(lam),
            lr=lr,
            search_lambda=lam_results,
            search_lr=lr_results,
            search_samples=len(search_data) if do_search else 0,
        ),
    )
    return TrainResult(final.model, record)
