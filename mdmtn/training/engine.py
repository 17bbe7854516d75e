"""Algorithm 1's run state and its building blocks, on the one epoch loop of :mod:`mdmtn.training.loop`.

:class:`Run` holds a model, its data, the scalarised objective (the paper's Chebyshev augmented
Lagrangian, or a weighted sum) and GrOWL; it provides the per-batch step, a stage with per-epoch
hooks (projection, validation, keeping the best model), the multiplier update and progress.
:func:`seed_everything` and :func:`lsuv_start_` are shared by all methods. Methods compose these:
Algorithm 1 in :mod:`mdmtn.training.trainer`, stacked runs in :mod:`mdmtn.training.stacked`, the
joint solver in :mod:`mdmtn.training.mt2o`; the baselines train on :func:`mdmtn.training.loop.run_epochs`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.core.timing import PhaseTimer
from mdmtn.data import Splits, TaskTensors, iterate_batches
from mdmtn.objectives.growl import apply_row_cap_, cap_count, growl_penalty, growl_prox_, weight_rows
from mdmtn.objectives.lsuv import lsuv_
from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.objectives.scalarization import ChebyshevAL
from mdmtn.training.loop import Divergence, evaluate, progress_bar, train_epoch, training_batches


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
        self.watch = Divergence("augmented Lagrangian", "try a smaller lr or mu0")
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, tuple[float, dict]] = {}  # slot -> (val acc, state_dict snapshot)
        self.best_epoch: dict[str, int] = {}  # slot -> index into history of that snapshot
        self.last_train_objectives: list[float] = []
        n_epochs = cfg.schedule.epochs_per_iteration * (
            cfg.schedule.phase1_iterations + cfg.schedule.phase2_iterations
            if cfg.sparse
            else cfg.schedule.single_stage_iterations
        )
        self.bar = progress_bar(cfg, n_epochs, progress)

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
        The objective's finiteness is noted in ``self.watch``, checked once per epoch."""
        losses = self.objectives(self.model, xb, yb)
        la, h = self.scalarize(losses)
        self.watch.note(la, losses)
        self.zero_grads(opt)
        la.backward()
        opt.step()
        return losses.detach(), h.detach()

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
        """One epoch of :func:`mdmtn.training.loop.train_epoch`; returns (Σ_batches losses (m+1,),
        Σ_batches H (m+1,)), float64."""
        self.model.train()
        batches = training_batches(self.splits.train, self.cfg.data.batch_size, self.g_data)
        loss_sum, h_sum = train_epoch(
            batches, lambda x, y: self.step(opt, x, y), self.watch, f"epoch {len(self.history) + 1}"
        )
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
