"""The training engine every method runs on: one run's state and its building blocks.

:class:`Run` holds a model, its data, the scalarised objective (the paper's Chebyshev augmented
Lagrangian, or a weighted sum) and GrOWL; it provides the per-batch step (with divergence
detection), an epoch, a stage with per-epoch hooks (projection, validation, keeping the best
model), the multiplier update and progress. :func:`evaluate`, :func:`seed_everything` and
:func:`lsuv_start_` are shared by all methods. :func:`run_epochs` is the plain loop of one
network with its own optimisers (an :class:`EpochLoop`: a step function, an lr schedule, model
selection), which the baselines use. Methods compose these: Algorithm 1 in
:mod:`mdmtn.training.trainer`, the baselines in :mod:`mdmtn.training.baselines`, the joint solver in
:mod:`mdmtn.training.mt2o`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mdmtn.core.config import RunConfig
from mdmtn.core.timing import PhaseTimer
from mdmtn.data import Splits, TaskTensors, iterate_batches
from mdmtn.objectives.growl import apply_row_cap_, cap_count, growl_penalty, growl_prox_, weight_rows
from mdmtn.objectives.lsuv import lsuv_
from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.objectives.scalarization import ChebyshevAL


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run is stopped rather than returning a bad model."""


@dataclass
class TrainResult:
    """A finished run: the selected model, the record (JSON-serialisable) and the tying plan."""

    model: nn.Module
    record: dict[str, Any]
    plans: list = field(default_factory=list)


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


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class Stage:
    """Optimiser state of one training stage."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    best_val: float = -math.inf
    h_best: torch.Tensor | None = None


class Run:
    """State of one training run and its building blocks: the per-batch step, an epoch, a stage
    with its per-epoch hooks (projection, validation, model keeping), the multiplier update.
    Methods (:mod:`mdmtn.training.trainer`'s Algorithm 1, :mod:`mdmtn.training.mt2o`) compose them."""

    def __init__(self, cfg: RunConfig, model: nn.Module, splits: Splits, progress: bool) -> None:
        self.cfg, self.model, self.splits = cfg, model, splits
        self.device = splits.train.x.device
        self.g_data = torch.Generator().manual_seed(cfg.seed)
        self.g_cap = torch.Generator().manual_seed(cfg.seed + 1)
        # generators stay on the CPU (batch order, cap draws, t's start): the same seed gives the same
        # draws on every device; only a (N,) index per epoch crosses to the data's device
        self.al = ChebyshevAL(
            cfg.k, cfg.objective.mu0, cfg.objective.eps_aug, generator=torch.Generator().manual_seed(cfg.seed + 2)
        ).to(self.device)
        self.growl = list(model.growl_weights()) if cfg.sparse else []
        self.timer = PhaseTimer(self.device)
        self._reset_divergence()
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, tuple[float, dict]] = {}  # slot -> (val acc, state_dict snapshot)
        self.best_epoch: dict[str, int] = {}  # slot -> index into history of that snapshot
        self.last_train_objectives: list[float] = []
        n_epochs = cfg.schedule.epochs_per_iteration * (
            cfg.schedule.phase1_iterations + cfg.schedule.phase2_iterations
            if cfg.sparse
            else cfg.schedule.single_stage_iterations
        )
        self.bar = tqdm(
            total=n_epochs,
            desc=f"{cfg.model}/{cfg.dataset} k={list(cfg.k)}",
            unit="epoch",
            disable=not progress,
            leave=False,
        )

    # -- one epoch of augmented-Lagrangian steps -------------------------------------------------
    def l0(self, model: nn.Module | None = None) -> torch.Tensor:
        """GrOWL value L0 of ``model``'s regularised layers (this run's model by default); 0 if dense."""
        if not self.growl:
            return torch.zeros((), device=self.device)
        return self.l0_of([w for _, w in (self.growl if model is None else model.growl_weights())])

    def l0_of(self, ws: list[torch.Tensor]) -> torch.Tensor:
        """GrOWL value L0 of the regularised layers' weights ``ws`` (in ``model.growl_weights()`` order)."""
        if (
            not self.cfg.switches.growl_grad
        ):  # the authors read weights through state_dict(): no gradient (book appendix)
            ws = [w.detach() for w in ws]
        return growl_penalty(
            ws,
            self.cfg.growl.beta1,
            self.cfg.growl.beta2,
            conv_rows=self.cfg.switches.conv_rows,
            order=self.cfg.switches.penalty_order,
        )

    def objectives(self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """(L0, L1, ..., Lm) of ``model`` on one batch (L0 from the model's GrOWL layers)."""
        outs = model(xb.contiguous(memory_format=torch.channels_last))
        return torch.stack([self.l0(model)] + [F.nll_loss(o, yb[:, i]) for i, o in enumerate(outs)])

    def scalarize(self, losses: torch.Tensor, t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(scalar objective, H) of one batch's objective vector: the Chebyshev AL and its constraints,
        or, with ``scalarization="linear"``, the weighted sum k·losses and H = 0. ``t`` replaces the
        AL's own t (a stacked run's slice)."""
        if self.cfg.objective.scalarization == "linear":
            return (self.al.k * losses).sum(), torch.zeros_like(losses)
        return self.al(losses, t)

    def step(self, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch; returns the batch's (losses (m+1,), H (m+1,)), detached.

        Divergence is noted on the device (:meth:`note_finite`) and raised once per epoch
        (:meth:`check_finite`): testing it here would make the host wait for the device every step."""
        losses = self.objectives(self.model, xb, yb)
        la, h = self.scalarize(losses)
        self.note_finite(la, losses)
        self.zero_grads(opt)
        la.backward()
        opt.step()
        return losses.detach(), h.detach()

    def _reset_divergence(self) -> None:
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)
        self._bad_la = torch.zeros((), device=self.device)
        self._bad_losses = torch.zeros(self.cfg.n_tasks + 1, device=self.device)

    def note_finite(self, la: torch.Tensor, losses: torch.Tensor) -> None:
        """Remember, on the device and without a host sync, whether every objective so far was
        finite, and the first non-finite one (for the message)."""
        ok = torch.isfinite(la.detach())
        first = self._finite & ~ok
        self._bad_la = torch.where(first, la.detach().to(self._bad_la.dtype), self._bad_la)
        self._bad_losses = torch.where(first, losses.detach().to(self._bad_losses.dtype), self._bad_losses)
        self._finite = self._finite & ok

    def check_finite(self) -> None:
        """Raise :class:`TrainingDiverged` if a step of this epoch had a non-finite objective
        (one host sync per epoch)."""
        if not bool(self._finite):
            la, losses = self._bad_la.item(), self._bad_losses.tolist()
            self._reset_divergence()
            raise TrainingDiverged(
                f"non-finite augmented Lagrangian {la} (losses {losses}) at epoch "
                f"{len(self.history) + 1}; try a smaller lr or mu0"
            )

    def zero_grads(self, opt: torch.optim.Optimizer) -> None:
        """Clear the gradients before a step: all of them, or, with ``accumulate_aux_grads``, all but
        those of t and α, which the authors' zero_grad skipped (book appendix)."""
        if self.cfg.switches.accumulate_aux_grads:
            model, al = self.model, self.al
            aux = {id(al.t)} | ({id(model.alpha)} if isinstance(getattr(model, "alpha", None), nn.Parameter) else set())
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) not in aux:
                        p.grad = None
        else:
            opt.zero_grad(set_to_none=True)

    def train_epoch(self, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (Σ_batches losses (m+1,), Σ_batches H (m+1,))."""
        self.model.train()
        loss_sum = torch.zeros(self.cfg.n_tasks + 1, dtype=torch.float64, device=self.device)
        h_sum = torch.zeros(self.cfg.n_tasks + 1, dtype=torch.float64, device=self.device)
        for xb, yb in iterate_batches(self.splits.train, self.cfg.data.batch_size, shuffle=True, generator=self.g_data):
            losses, h = self.step(opt, xb, yb)
            loss_sum += losses.double()
            h_sum += h.double()
        self.check_finite()
        return loss_sum, h_sum

    # -- projections applied after every epoch ---------------------------------------------------
    @torch.no_grad()
    def growl_step(self, iteration: int) -> None:
        """Phase 1: GrOWL prox on every regularised layer, then the per-layer cap η2 (ramped)."""
        with self.timer("prox"):
            self._growl_step(iteration)

    def _growl_step(self, iteration: int) -> None:
        cfg = self.cfg
        for _, w in self.growl:
            before = w.detach().clone()
            growl_prox_(
                w.data, cfg.growl.beta1, cfg.growl.beta2, conv_rows=cfg.switches.conv_rows, mode=cfg.switches.prox_mode
            )
            n_rows = weight_rows(w.data, cfg.switches.conv_rows).shape[0]
            max_zero = cap_count(
                cfg.growl.eta2, iteration, cfg.schedule.phase1_iterations, n_rows, ramp=cfg.switches.cap_ramp
            )
            apply_row_cap_(
                w.data, before, max_zero, self.g_cap, conv_rows=cfg.switches.conv_rows, rule=cfg.switches.cap_rule
            )

    # -- a training stage (Algorithm 1, lines 2-9) -------------------------------------------------
    def begin_stage(self) -> "Stage":
        """Fresh Adam + exponential lr schedule and reset multipliers, as every stage starts."""
        cfg, al = self.cfg, self.al
        al.reset_multipliers(cfg.objective.mu0)
        params = [p for n, p in self.model.named_parameters()] + ([al.t] if cfg.switches.optimise_t else [])
        opt = torch.optim.Adam(params, lr=cfg.schedule.lr)
        return Stage(
            opt,
            torch.optim.lr_scheduler.ExponentialLR(opt, cfg.schedule.lr_decay),
            h_best=torch.zeros(cfg.n_tasks + 1, dtype=torch.float64, device=self.device),
        )

    def end_epoch(
        self,
        st: "Stage",
        phase: str,
        it: int,
        ep: int,
        loss_sum: torch.Tensor,
        h_sum: torch.Tensor,
        project: Callable[[int], None],
        keep: Callable[[float, float], None],
        seconds: float | None,
    ) -> None:
        """After an epoch: projection, validation, the H of the best epoch so far, history.
        ``seconds`` is the epoch's training time (None where it is not this run's alone)."""
        cfg, model, al, timer = self.cfg, self.model, self.al, self.timer
        project(it)
        t0 = time.perf_counter()
        with timer("validation"):
            val = evaluate(model, self.splits.val, cfg.data.eval_batch_size)
        val_seconds = time.perf_counter() - t0
        val_acc = float(np.mean(val["acc"]))
        with timer("sparsity"):
            sr = sparsity_metrics(model)["SR"]
        if val_acc > st.best_val:
            st.best_val, st.h_best = val_acc, h_sum
        with timer("keep"):
            keep(val_acc, sr)
        n = len(self.splits.train)
        # the authors' objective vector: Σ over batches of batch-mean losses / N (book appendix)
        self.last_train_objectives = (loss_sum / n).tolist()
        self.history.append(
            dict(
                phase=phase,
                iteration=it,
                epoch=ep,
                train_objectives=self.last_train_objectives,
                val_acc=val["acc"],
                val_loss=val["loss"],
                SR=sr,
                t=al.t.item(),
                lam=al.lam.tolist(),
                mu=al.mu.item(),
                lr=st.opt.param_groups[0]["lr"],
                seconds=seconds,
                val_seconds=val_seconds,
            )
        )
        self.bar.update(1)
        self.bar.set_postfix(phase=phase, val=f"{val_acc:.4f}", SR=f"{sr:.1f}%")

    def end_iteration(self, st: "Stage") -> None:
        st.sched.step()
        self.al.update_multipliers(st.h_best, self.cfg.objective.mu_factor)

    def stage(
        self, phase: str, n_iterations: int, project: Callable[[int], None], keep: Callable[[float, float], None]
    ) -> None:
        st = self.begin_stage()
        for it in range(n_iterations):
            for ep in range(self.cfg.schedule.epochs_per_iteration):
                t0 = time.perf_counter()
                with self.timer("train"):
                    loss_sum, h_sum = self.train_epoch(st.opt)
                self.end_epoch(st, phase, it, ep, loss_sum, h_sum, project, keep, time.perf_counter() - t0)
            self.end_iteration(st)

    def keep_best(self, slot: str) -> Callable[[float, float], None]:
        """A callback that snapshots the model when its validation accuracy beats ``slot``'s best."""

        def keep(val_acc: float, sr: float) -> None:
            if val_acc > self.best.get(slot, (-math.inf,))[0]:
                self.best[slot] = (val_acc, copy.deepcopy(self.model.state_dict()))
                self.best_epoch[slot] = len(self.history)  # end_epoch appends this epoch after keep()

        return keep


def lsuv_start_(model: nn.Module, cfg: RunConfig, train: TaskTensors) -> None:
    """Algorithm 1's starting point: LSUV on seeded training batches when the run is sparse (or
    ``lsuv_when_k0_zero``); otherwise the model keeps its default initialisation."""
    if cfg.sparse or cfg.switches.lsuv_when_k0_zero:
        g = torch.Generator().manual_seed(cfg.seed + 3)
        batches = (xb for xb, _ in _forever(train, cfg.data.batch_size, g))
        lsuv_(model, batches, generator=torch.Generator().manual_seed(cfg.seed + 4))


def _forever(data: TaskTensors, batch_size: int, g: torch.Generator):
    while True:
        yield from iterate_batches(data, batch_size, shuffle=True, generator=g)


# -- the plain epoch loop of the baselines (MGDA-UB, STL, MTAN, KDMTL) ---------------------------


def training_batches(
    data: TaskTensors, batch_size: int, generator: torch.Generator, drop_last: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (x channels-last (B, C, H, W), y (B, T)) batches.

    ``drop_last`` drops an incomplete final batch, as MGDA's fixed-batch-size models did, but
    never the only batch (tiny test data).
    """
    n_full = len(data) // batch_size
    for i, (xb, yb) in enumerate(iterate_batches(data, batch_size, shuffle=True, generator=generator)):
        if drop_last and n_full > 0 and i >= n_full:
            break
        yield xb.contiguous(memory_format=torch.channels_last), yb


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
    baselines do not have), val_acc (or None), lr, seconds (the whole epoch), train_seconds and
    val_seconds (its training and validation parts), plus ``loop.extra()``.
    Raises :class:`mdmtn.training.trainer.TrainingDiverged` on a non-finite loss.
    """
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
        loss_sum = finite = bad = None
        for xb, yb in training_batches(loop.train, loop.batch_size, loop.generator, loop.drop_last):
            losses = loop.step(xb, yb)
            # divergence is tracked on the device and checked once per epoch: no host sync per step
            ok = torch.isfinite(losses).all()
            if finite is None:
                finite, bad = ok, torch.where(ok, torch.zeros_like(losses), losses)
            else:
                bad = torch.where(finite & ~ok, losses, bad)
                finite = finite & ok
            loss_sum = losses.double() if loss_sum is None else loss_sum + losses.double()
        if finite is not None and not bool(finite):
            raise TrainingDiverged(
                f"non-finite loss {bad.tolist()} in {loop.phase} epoch {epoch + 1}; try a smaller lr"
            )
        train_seconds = time.perf_counter() - t0
        objectives = [math.nan] + (loss_sum / len(loop.train)).tolist()
        t1 = time.perf_counter()
        val = loop.evaluate(model)
        entry = dict(
            phase=loop.phase,
            epoch=epoch,
            train_objectives=objectives,
            val_acc=val,
            lr=loop.optimizers[0].param_groups[0]["lr"],
            train_seconds=train_seconds,
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
        entry["seconds"] = time.perf_counter() - t0
        loop.history.append(entry)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(phase=loop.phase, val="-" if val is None else f"{np.mean(val):.4f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return loop
