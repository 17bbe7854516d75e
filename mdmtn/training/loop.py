"""The one epoch loop every method trains on, with its one divergence check.

An epoch is :func:`train_epoch`: seeded, shuffled batches (:func:`training_batches`) go through a
*step* (one optimiser update; it returns the batch's detached vectors to sum, and notes the values
that must stay finite in a :class:`Divergence`), their sums are accumulated in float64, and the
divergence is checked once, at the epoch's end. Algorithm 1 (:class:`mdmtn.training.engine.Run`,
which adds its per-epoch projections, multipliers and model keeping) and every baseline
(:func:`run_epochs`, which adds an lr schedule and best-epoch selection) train through it. A stack's
batched epoch (:mod:`mdmtn.training.stacked`) steps K runs at once and checks each with the run's own
:class:`Divergence`.

History rows mean the same in every method: ``seconds`` is an epoch's training time (its batches),
``val_seconds`` its validation time; ``train_objectives`` is ``[L0, L1, ..., LT]``, each Σ over
batches of the batch-mean loss / N (the paper's convention; L0 is nan for methods without a
sparsity objective).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mdmtn.core.config import RunConfig
from mdmtn.data import TaskTensors, iterate_batches

__all__ = [
    "TrainingDiverged",
    "Divergence",
    "training_batches",
    "train_epoch",
    "evaluate",
    "EpochLoop",
    "run_epochs",
    "CPU_EVAL_CHUNK",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run is stopped rather than returning a bad model."""


class Divergence:
    """Whether every watched value of an epoch was finite, kept on the device: testing it at every
    step would make the host wait for the device each time, so :meth:`note` only updates device
    tensors and :meth:`check` synchronises once per epoch.

    ``what`` names the watched value in the message (``"loss"``, ``"augmented Lagrangian"``);
    ``hint`` is the advice appended to it."""

    def __init__(self, what: str = "loss", hint: str = "try a smaller lr") -> None:
        self.what, self.hint = what, hint
        self._ok: torch.Tensor | None = None
        self._bad: tuple[torch.Tensor, torch.Tensor] | None = None
        self._show_losses = False

    def note(self, watched: torch.Tensor, losses: torch.Tensor | None = None) -> None:
        """Remember whether ``watched`` (any shape) is finite, and the first non-finite one with
        its batch's ``losses`` (T,) or (T + 1,) for the message (None: ``watched`` is the losses)."""
        self._show_losses = losses is not None
        watched = watched.detach()
        losses = watched if losses is None else losses.detach()
        ok = torch.isfinite(watched).all()
        if self._ok is None:
            self._ok = ok
            self._bad = (torch.where(ok, torch.zeros_like(watched), watched), losses.clone())
            return
        first = self._ok & ~ok
        bad_w, bad_l = self._bad
        self._bad = (
            torch.where(first, watched.to(bad_w.dtype), bad_w),
            torch.where(first, losses.to(bad_l.dtype), bad_l),
        )
        self._ok = self._ok & ok

    def check(self, where: str) -> None:
        """Raise :class:`TrainingDiverged` (naming ``where``, e.g. ``"epoch 3"``) if a noted value was
        not finite since the last check; start afresh either way."""
        ok, bad = self._ok, self._bad
        self._ok = self._bad = None
        if ok is not None and not bool(ok):
            value, losses = bad
            shown = value.item() if value.dim() == 0 else value.tolist()
            extra = f" (losses {losses.tolist()})" if self._show_losses else ""
            raise TrainingDiverged(f"non-finite {self.what} {shown}{extra} at {where}; {self.hint}")


def training_batches(
    data: TaskTensors, batch_size: int, generator: torch.Generator, drop_last: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (x channels-last (B, C, H, W), y (B, T)) batches.

    ``drop_last`` drops an incomplete final batch, as MGDA's fixed-batch-size models did, but
    never the only batch (tiny test data).
    """
    n_full = len(data) // batch_size
    for i, (xb, yb) in enumerate(iterate_batches(data, batch_size, shuffle=True, generator=generator)):
        if drop_last and n_full > 0 and i >= n_full:
            break
        # channels-last makes mkldnn convolutions and max-pooling ~1.8x faster on CPU (benchmarks/)
        yield xb.contiguous(memory_format=torch.channels_last), yb


def train_epoch(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    step: Callable[[torch.Tensor, torch.Tensor], Sequence[torch.Tensor]],
    watch: Divergence,
    where: str,
) -> list[torch.Tensor]:
    """One epoch: ``step(x, y)`` on every batch, returning the Σ over batches (float64) of each
    vector ``step`` returns; ``watch`` is checked once at the end (:class:`TrainingDiverged`).
    An epoch without batches returns an empty list."""
    sums: list[torch.Tensor] | None = None
    for xb, yb in batches:
        out = step(xb, yb)
        if sums is None:
            sums = [torch.zeros_like(o, dtype=torch.float64) for o in out]
        for s, o in zip(sums, out):
            s += o.double()
    watch.check(where)
    return sums or []


# On a CPU, evaluation in chunks of at most this many samples is ~2.5x faster than in batches of
# 1000 (the activations stay in cache; benchmarks/cpu_side.py). In eval mode a sample's outputs do not
# depend on its batch, so the chunk changes no prediction: benchmarks/eval_chunks.py checks that on
# every committed paper-preset checkpoint (identical per-task correct counts on validation and test).
CPU_EVAL_CHUNK = 256


@torch.inference_mode()
def evaluate(
    model: nn.Module, data: TaskTensors, batch_size: int = 1000, *, cpu_chunk: int | None = CPU_EVAL_CHUNK
) -> dict[str, list[float]]:
    """Per-task accuracy (fraction) and mean NLL loss of ``model`` on ``data``. ``batch_size`` is the
    evaluation batch (the config's ``eval_batch_size``); on a CPU it is split into chunks of at most
    ``cpu_chunk`` samples (None: not split), which changes speed, not predictions."""
    was_training = model.training
    model.eval()
    correct = loss = None
    if cpu_chunk is not None and data.x.device.type == "cpu":
        batch_size = min(batch_size, cpu_chunk)
    for xb, yb in iterate_batches(data, batch_size, shuffle=False):
        outs = model(xb.contiguous(memory_format=torch.channels_last))
        c = torch.stack([(o.argmax(1) == yb[:, i]).sum() for i, o in enumerate(outs)])
        l = torch.stack([F.nll_loss(o, yb[:, i], reduction="sum") for i, o in enumerate(outs)])
        correct = c if correct is None else correct + c
        loss = l if loss is None else loss + l
    model.train(was_training)
    n = len(data)
    return {"acc": (correct.double() / n).tolist(), "loss": (loss.double() / n).tolist()}


StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EpochLoop:
    """How :func:`run_epochs` trains one network of a baseline.

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


def progress_bar(cfg: RunConfig, total: int, progress: bool) -> tqdm:
    """The one progress bar of a training run: ``total`` epochs, named by method, model, dataset,
    ``k`` (the paper's method) and seed; silent unless ``progress``."""
    k = f" k={list(cfg.k)}" if cfg.method == "wc_al" else ""
    return tqdm(
        total=total,
        desc=f"{cfg.method}/{cfg.model}/{cfg.dataset}{k} seed={cfg.seed}",
        unit="epoch",
        disable=not progress,
        leave=False,
    )


def run_epochs(loop: EpochLoop, bar: tqdm | None = None) -> EpochLoop:
    """Train ``loop.model`` for ``loop.epochs`` epochs of :func:`train_epoch`; returns the loop with
    history and selection.

    History rows (the module's meanings): phase, epoch, train_objectives ``[nan, L1, ..., LT]``,
    val_acc (or None), lr, seconds, val_seconds, plus ``loop.extra()``.
    Raises :class:`TrainingDiverged` on a non-finite loss.
    """
    model = loop.model
    base_lrs = [[g["lr"] for g in opt.param_groups] for opt in loop.optimizers]
    best_state = None
    watch = Divergence()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor]:
        losses = loop.step(xb, yb)
        watch.note(losses)
        return (losses,)

    for epoch in range(loop.epochs):
        t0 = time.perf_counter()
        f = loop.lr_schedule(epoch)
        for opt, lrs in zip(loop.optimizers, base_lrs):
            for g, lr in zip(opt.param_groups, lrs):
                g["lr"] = lr * f
        model.train()
        batches = training_batches(loop.train, loop.batch_size, loop.generator, loop.drop_last)
        (loss_sum,) = train_epoch(batches, step, watch, f"{loop.phase} epoch {epoch + 1}")
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        val = loop.evaluate(model)
        entry = dict(
            phase=loop.phase,
            epoch=epoch,
            train_objectives=[math.nan] + (loss_sum / len(loop.train)).tolist(),
            val_acc=val,
            lr=loop.optimizers[0].param_groups[0]["lr"],
            seconds=seconds,
            val_seconds=time.perf_counter() - t1,
            **loop.extra(),
        )
        if val is not None and loop.select_best:
            s = loop.score(val)
            if s > loop.best_score:
                loop.best_score, loop.best_epoch = s, epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            loop.best_epoch = epoch
        loop.history.append(entry)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(phase=loop.phase, val="-" if val is None else f"{np.mean(val):.4f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return loop
