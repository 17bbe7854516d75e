"""What every baseline trainer shares: the lr schedule, the epoch loop, model selection and the record.

A baseline is written as a *step* function (one mini-batch: forward, backward, optimiser
step; returns the detached per-task losses) driven by :func:`run_epochs`, which handles batching,
the lr schedule, divergence, per-epoch validation, the best-validation (or last-epoch) model and
the history. :func:`finish_record` then writes the same record layout as the paper's method
(:func:`mdmtn.trainer.train`), so one notebook reads every row of Tables 1-2.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import ConfigError, RunConfig
from ..data import Splits, TaskTensors, iterate_batches, load_splits
from ..lsuv import lsuv_
from ..metrics import sparsity_metrics
from ..records import machine_info

CHANNELS_LAST = torch.channels_last


def lr_factor(epoch: int, decay: float, first: int, step: int) -> float:
    """Multiplier of the initial lr during epoch ``epoch`` (0-based).

    The lr is multiplied by ``decay`` at the starts of epochs ``first``, ``first + step``, ...;
    e.g. MGDA (first 31, step 30) runs epochs 0-30 at lr, 31-60 at lr/2, ... (book appendix).
    """
    n = 0 if epoch < first else (epoch - first) // step + 1
    return decay ** n


def data_options(cfg: RunConfig) -> dict[str, bool]:
    """The :func:`mdmtn.data.load_splits` options a config trains on (full_train, normalize)."""
    return dict(full_train=cfg.full_train, normalize=cfg.normalize_inputs)


def prepare_splits(cfg: RunConfig, splits: Splits | None, **load_kwargs: Any) -> Splits:
    """Load (or check) the data of a baseline run and cut it to the config's sizes.

    Given ``splits`` must have been loaded with :func:`data_options` (checked when their
    ``info`` says how they were loaded); otherwise a :class:`ConfigError` says how to load them.
    """
    opts = data_options(cfg)
    if splits is None:
        splits = load_splits(cfg.dataset, load_kwargs.pop("data_dir", None), split_seed=cfg.split_seed,
                             build_seed=cfg.build_seed, **opts, **load_kwargs)
    for name, want in opts.items():
        have = splits.info.get(name)
        if have is not None and have != want:
            raise ConfigError(
                f"method {cfg.method!r} on {cfg.dataset} trains on data loaded with {name}={want}, but the given "
                f"splits have {name}={have}; load them with load_splits(..., "
                + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")")
    return splits.subset(cfg.n_train, cfg.n_val, cfg.n_test)


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


def training_batches(data: TaskTensors, batch_size: int, generator: torch.Generator,
                     drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (x channels-last (B, C, H, W), y (B, T)) batches.

    ``drop_last`` drops an incomplete final batch, as MGDA's fixed-batch-size models did, but
    never the only batch (tiny test data).
    """
    n_full = len(data) // batch_size
    for i, (xb, yb) in enumerate(iterate_batches(data, batch_size, shuffle=True, generator=generator)):
        if drop_last and n_full > 0 and i >= n_full:
            break
        yield xb.contiguous(memory_format=CHANNELS_LAST), yb


StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EpochLoop:
    """How :func:`run_epochs` trains one network.

    ``step(x, y)`` does one optimisation step and returns the detached per-task losses (T,).
    ``evaluate(model) -> list[float] | None`` gives validation accuracies (None: no validation);
    ``score`` turns them into the selection criterion (default: their mean). With validation and
    ``select_best`` the best-scoring epoch's weights are restored at the end (ties keep the earlier
    epoch, as the authors' strict ``<``); otherwise the last epoch is kept.
    """

    model: nn.Module
    step: StepFn
    optimizers: Sequence[torch.optim.Optimizer]
    train: TaskTensors
    epochs: int
    batch_size: int
    lr_schedule: Callable[[int], float]
    generator: torch.Generator
    evaluate: Callable[[nn.Module], list[float] | None] = lambda m: None
    score: Callable[[list[float]], float] = lambda accs: float(np.mean(accs))
    drop_last: bool = False
    select_best: bool = True
    phase: str = "train"
    extra: Callable[[], dict[str, Any]] = dict  # more per-epoch history fields (e.g. MGDA weights)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float = -math.inf


def run_epochs(loop: EpochLoop, bar: tqdm | None = None) -> EpochLoop:
    """Train ``loop.model`` for ``loop.epochs`` epochs; returns the loop with history and selection.

    History entries: phase, epoch, train_objectives ``[nan, L1, ..., LT]`` (Σ over batches of the
    batch-mean loss / N, the paper's convention; index 0 is the sparsity objective, which
    baselines do not have), val_acc (or None), lr, seconds, plus ``loop.extra()``.
    Raises :class:`mdmtn.trainer.TrainingDiverged` on a non-finite loss.
    """
    from ..engine import TrainingDiverged

    model = loop.model
    base_lrs = [[g["lr"] for g in opt.param_groups] for opt in loop.optimizers]
    best_state = None
    for epoch in range(loop.epochs):
        t0 = time.perf_counter()
        f = loop.lr_schedule(epoch)
        for opt, lrs in zip(loop.optimizers, base_lrs):
            for g, lr in zip(opt.param_groups, lrs):
                g["lr"] = lr * f
        model.train()
        loss_sum = None
        for xb, yb in training_batches(loop.train, loop.batch_size, loop.generator, loop.drop_last):
            losses = loop.step(xb, yb)
            if not bool(torch.isfinite(losses).all()):
                raise TrainingDiverged(
                    f"non-finite loss {losses.tolist()} in {loop.phase} epoch {epoch + 1}; try a smaller lr")
            loss_sum = losses.double() if loss_sum is None else loss_sum + losses.double()
        objectives = [math.nan] + (loss_sum / len(loop.train)).tolist()
        val = loop.evaluate(model)
        entry = dict(phase=loop.phase, epoch=epoch, train_objectives=objectives, val_acc=val,
                     lr=loop.optimizers[0].param_groups[0]["lr"], **loop.extra())
        if val is not None and loop.select_best:
            s = loop.score(val)
            if s > loop.best_score:
                loop.best_score, loop.best_epoch = s, epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            loop.best_epoch = epoch
        entry["seconds"] = time.perf_counter() - t0
        loop.history.append(entry)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(phase=loop.phase, val="-" if val is None else f"{np.mean(val):.4f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return loop


def progress_bar(cfg: RunConfig, total: int, progress: bool) -> tqdm:
    return tqdm(total=total, desc=f"{cfg.method}/{cfg.model}/{cfg.dataset} seed={cfg.seed}", unit="epoch",
                disable=not progress, leave=False)


def finish_record(cfg: RunConfig, model: nn.Module, splits: Splits, history: list[dict[str, Any]],
                  t_start: float, train_objectives: list[float], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run record, in the layout of :func:`mdmtn.trainer.train` (val_* are None without a
    validation split); ``train_objectives`` are the last training epoch's ``[nan, L1, ..., LT]``;
    baseline-specific facts go under ``"baseline"``."""
    from ..engine import evaluate

    test = evaluate(model, splits.test, cfg.eval_batch_size)
    val = evaluate(model, splits.val, cfg.eval_batch_size) if len(splits.val) else None
    sm = sparsity_metrics(model)
    return dict(
        status="ok", key=cfg.key(), config=cfg.to_dict(),
        metrics=dict(test_acc=test["acc"], test_acc_mean=float(np.mean(test["acc"])), test_loss=test["loss"],
                     val_acc=None if val is None else val["acc"],
                     val_acc_mean=None if val is None else float(np.mean(val["acc"])),
                     train_objectives=list(train_objectives), **sm),
        phase1_model=None,
        alpha=model.alpha.detach().tolist() if isinstance(getattr(model, "alpha", None), torch.Tensor) else None,
        data=dict(splits.provenance(), **data_options(cfg)),
        history=history, wall_time_s=time.perf_counter() - t_start, machine=machine_info(splits.train.x.device),
        baseline=extra or {},
    )


@dataclass
class SearchRun:
    """What a searched baseline (MTAN, KDMTL) sets up before its fits: the search subset, the
    progress bar, the history list and a counter of fits."""

    search_data: TaskTensors
    do_search: bool
    bar: tqdm
    history: list[dict] = field(default_factory=list)
    fits: Iterator[int] = field(default_factory=lambda: iter(range(10**6)))


def begin_search_run(cfg: RunConfig, splits: Splits, name: str, model: nn.Module | None, progress: bool,
                     total_epochs: Callable[[bool], int]) -> SearchRun:
    """Seed, draw the search subset and open a progress bar of ``total_epochs(do_search)`` epochs;
    a bring-your-own ``model`` is refused (these baselines build their own networks)."""
    from ..engine import seed_everything

    if model is not None:
        raise ValueError(f"the {name} baseline builds its own networks; bring-your-own models work with method 'mgda'")
    seed_everything(cfg.seed)
    search_data = random_subset(splits.train, cfg.search_fraction, torch.Generator().manual_seed(cfg.seed + 5))
    do_search = cfg.search_epochs > 0
    return SearchRun(search_data, do_search, progress_bar(cfg, total_epochs(do_search), progress))
