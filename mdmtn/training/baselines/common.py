"""What every baseline trainer shares: the lr schedule, data preparation, model selection and the record.

A baseline is written as a *step* function (one mini-batch: forward, backward, optimiser
step; returns the detached per-task losses) driven by :func:`mdmtn.training.loop.run_epochs`, the
epoch loop every method shares, which handles batching, the lr schedule, divergence, per-epoch
validation, the best-validation (or last-epoch) model and the history. A baseline returns
:func:`baseline_trained`; :func:`mdmtn.training.runner.train` builds its record in the same layout
as the paper's method's, so one notebook reads every row of Tables 1-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from tqdm import tqdm  # not tqdm.auto: in a notebook without ipywidgets it prints a warning into the page

from mdmtn.core.config import RunConfig
from mdmtn.core.timing import PhaseTimer
from mdmtn.data import Splits, TaskTensors, data_options, iterate_batches
from mdmtn.models import build_model, check_model_contract
from mdmtn.objectives.lsuv import lsuv_
from mdmtn.training.engine import seed_everything
from mdmtn.training.finish import Trained
from mdmtn.training.loop import EpochLoop, evaluate, progress_bar, run_epochs

CHANNELS_LAST = torch.channels_last


def lr_factor(epoch: int, decay: float, first: int, step: int) -> float:
    """Multiplier of the initial lr during epoch ``epoch`` (0-based).

    The lr is multiplied by ``decay`` at the starts of epochs ``first``, ``first + step``, ...;
    e.g. MGDA (first 31, step 30) runs epochs 0-30 at lr, 31-60 at lr/2, ... (book appendix).
    """
    n = 0 if epoch < first else (epoch - first) // step + 1
    return decay**n


def column(data: TaskTensors, t: int) -> TaskTensors:
    """The split with only task ``t``'s labels, y (N, 1): how a single-task network is evaluated."""
    return TaskTensors(data.x, data.y[:, t : t + 1])


def random_subset(data: TaskTensors, fraction: float, generator: torch.Generator) -> TaskTensors:
    """A random ``int(fraction * N)``-sample subset (the authors' ``random_split`` for searches)."""
    n = max(1, int(fraction * len(data)))
    idx = torch.randperm(len(data), generator=generator)[:n]
    return TaskTensors(data.x.index_select(0, idx), data.y.index_select(0, idx))


def lsuv_init_(model: nn.Module, data: TaskTensors, batch_size: int, seed: int) -> None:
    """LSUV (book appendix) from a seeded stream of training batches, as MTAN and KDMTL use it."""
    g = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[torch.Tensor]:
        while True:
            for xb, _ in iterate_batches(data, batch_size, shuffle=True, generator=g):
                yield xb.contiguous(memory_format=CHANNELS_LAST)

    lsuv_(model, batches(), generator=torch.Generator().manual_seed(seed + 1))


def baseline_trained(
    cfg: RunConfig,
    model: nn.Module,
    splits: Splits,
    history: list[dict[str, Any]],
    train_objectives: list[float],
    extra: dict[str, Any] | None = None,
) -> Trained:
    """A baseline's :class:`Trained`: ``train_objectives`` are the last training epoch's
    ``[nan, L1, ..., LT]``; baseline-specific facts go under the record's ``"baseline"``; the
    timer's train and validation phases are the history's sums."""
    timer = PhaseTimer(splits.train.x.device)
    timer.add("train", sum(h.get("seconds") or 0.0 for h in history))
    timer.add("validation", sum(h.get("val_seconds") or 0.0 for h in history))
    return Trained(
        model,
        history,
        train_objectives,
        timer,
        fields=dict(phase1_model=None, baseline=extra or {}),
        data_extra=data_options(cfg),
    )


@dataclass
class SearchRun:
    """A searched baseline (MTAN, KDMTL): the search subset, the progress bar, the history of every
    fit and a counter of fits; :meth:`search` tries candidates, :meth:`result` is the tail every
    searched baseline ends with."""

    search_data: TaskTensors
    do_search: bool
    bar: tqdm
    history: list[dict] = field(default_factory=list)
    fits: Iterator[int] = field(default_factory=lambda: iter(range(10**6)))

    def search(self, candidates: Sequence[Any], fit: Callable[[Any], EpochLoop]) -> tuple[Any, list]:
        """Fit each candidate (``fit(candidate) -> EpochLoop``, on the search subset) and return the
        one with the best validation score (first on ties) and ``[{candidate, best_val, best_epoch}, ...]``;
        without a search (or with one candidate), the first candidate and ``[]``."""
        if not self.do_search or len(candidates) < 2:
            return candidates[0], []
        results, best, best_score = [], candidates[0], float("-inf")
        for c in candidates:
            loop = fit(c)
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

    def fit(
        self,
        cfg: RunConfig,
        splits: Splits,
        fit_index: int,
        net: nn.Module,
        step: Callable,
        opt: torch.optim.Optimizer,
        data: TaskTensors,
        epochs: int,
        phase: str,
        extra: Callable[[], dict],
    ) -> EpochLoop:
        """Train ``net`` (fit number ``fit_index`` of the run, which seeds its batch order) for ``epochs``
        epochs on ``data`` at the config's lr schedule, keeping its best validation mean accuracy; the
        epochs join the run's history."""
        sch = cfg.schedule
        loop = run_epochs(
            EpochLoop(
                model=net,
                step=step,
                optimizers=[opt],
                train=data,
                epochs=epochs,
                batch_size=cfg.data.batch_size,
                lr_schedule=lambda e: lr_factor(e, sch.lr_decay, sch.lr_first_decay, sch.lr_step),
                generator=torch.Generator().manual_seed(1000 * cfg.seed + 10 * fit_index),
                evaluate=lambda m: evaluate(m, splits.val, cfg.data.eval_batch_size)["acc"],
                phase=phase,
                extra=extra,
            ),
            self.bar,
        )
        self.history.extend(loop.history)
        return loop

    def result(self, cfg: RunConfig, splits: Splits, final: EpochLoop, **fields: Any) -> Trained:
        """The :class:`Trained` of the final fit: its best-validation model, every fit's history, and
        the record's ``baseline`` block (the selected epoch, ``fields``, the search's sample count)."""
        return baseline_trained(
            cfg,
            final.model,
            splits,
            self.history,
            final.history[-1]["train_objectives"],
            dict(
                selected_epoch=final.best_epoch,
                selection="best validation mean accuracy",
                **fields,
                search_samples=len(self.search_data) if self.do_search else 0,
            ),
        )


def begin_search_run(
    cfg: RunConfig,
    splits: Splits,
    name: str,
    model: nn.Module | None,
    progress: bool,
    total_epochs: Callable[[bool], int],
) -> SearchRun:
    """Seed, draw the search subset and open a progress bar of ``total_epochs(do_search)`` epochs;
    a bring-your-own ``model`` is refused (these baselines build their own networks)."""
    if model is not None:
        raise ValueError(f"the {name} baseline builds its own networks; bring-your-own models work with method 'mgda'")
    seed_everything(cfg.seed)
    search_data = random_subset(splits.train, cfg.schedule.search_fraction, torch.Generator().manual_seed(cfg.seed + 5))
    do_search = cfg.schedule.search_epochs > 0
    return SearchRun(search_data, do_search, progress_bar(cfg, total_epochs(do_search), progress))


Step = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor], torch.Tensor]


def train_last_epoch(
    cfg: RunConfig,
    splits: Splits,
    step: Step,
    *,
    progress: bool,
    model: nn.Module | None,
    phase: str,
    extra: Callable[[], dict] | None = None,
    record_extra: Callable[[Mapping[str, Any]], dict] | None = None,
) -> Trained:
    """Train HPS or MDMTN (``cfg.model``, or a user's ``model``) with one SGD-with-momentum
    optimiser and the baseline lr schedule, keeping the last epoch: MGDA and unitary
    scalarisation, which differ only in ``step(model, opt, x, y) -> task losses (T,)``.

    ``extra()`` adds per-epoch facts to the history, ``record_extra(last history row)`` to the
    record's ``baseline`` block. Validation, if the split has one, is logged, never selects.
    """
    seed_everything(cfg.seed)
    if model is None:
        model = build_model(cfg.model, splits.input_shape, n_tasks=cfg.n_tasks)
    else:  # a user's network: its outputs are checked on one batch before anything trains
        check_model_contract(model.to(splits.train.x.device), splits.train.x[: cfg.data.batch_size], cfg.n_tasks)
    model.to(device=splits.train.x.device, memory_format=CHANNELS_LAST)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.schedule.lr, momentum=cfg.schedule.momentum)
    has_val = len(splits.val) > 0
    bar = progress_bar(cfg, cfg.schedule.epochs, progress)
    try:
        loop = run_epochs(
            EpochLoop(
                model=model,
                step=lambda x, y: step(model, opt, x, y),
                optimizers=[opt],
                train=splits.train,
                epochs=cfg.schedule.epochs,
                batch_size=cfg.data.batch_size,
                lr_schedule=lambda e: lr_factor(
                    e, cfg.schedule.lr_decay, cfg.schedule.lr_first_decay, cfg.schedule.lr_step
                ),
                generator=torch.Generator().manual_seed(cfg.seed),
                drop_last=cfg.data.drop_last,
                phase=phase,
                evaluate=(lambda m: evaluate(m, splits.val, cfg.data.eval_batch_size)["acc"])
                if has_val
                else (lambda m: None),
                select_best=False,
                extra=extra or dict,
            ),
            bar,
        )
    finally:
        bar.close()
    last = loop.history[-1]
    return baseline_trained(
        cfg,
        model,
        splits,
        loop.history,
        last["train_objectives"],
        dict(selected_epoch=loop.best_epoch, selection="last epoch", **(record_extra(last) if record_extra else {})),
    )
