"""Stacked training: several preference vectors' runs of Algorithm 1 in one process, one batched step.

The paper's networks are small; on a GPU one of them leaves the device mostly idle, waiting for
kernel launches. :func:`train_stacked` trains K runs that differ only in their preference vector
k (same architecture, data, seed, schedule, hence the same batches) in lockstep. Every run keeps
its own state exactly as :func:`mdmtn.training.trainer.train_algorithm1` would: its model, Chebyshev / augmented
Lagrangian multipliers and t, Adam, GrOWL prox and cap draws, phase-1 model keeping, clustering
and phase 2. The training steps are done for all K at once, on state that stays stacked for the
whole stage: every parameter and buffer as one (K, ...) tensor, t as one (K,) tensor and one Adam
over them (Adam is elementwise, so that is K Adams side by side); the network is evaluated with
``torch.func.functional_call`` under ``torch.func.vmap``. The runs' own models are written from
the stack once per epoch, for their per-epoch hooks, and read back once at the next epoch's
start. Results equal K separate runs up to float summation order
(``tests/training/test_stacked.py``). On the project's 2-core CPU this is slower than worker processes,
so the sweep stacks on a GPU only (``--stack``).

How: each run's Algorithm 1 runs in its own thread; when it needs an epoch of training it hands
its optimiser to a rendezvous, and whichever run completes the set trains that epoch for all.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, iterate_batches
from mdmtn.records.machine import code_version, resolve_device, set_precision
from mdmtn.training.finish import TrainResult, finish
from mdmtn.training.loop import TrainingDiverged
from mdmtn.training.trainer import Algorithm1, algorithm1_run


class StackError(ValueError):
    """Configs that cannot be trained as one stack (they differ in more than k)."""


def check_stackable(cfgs: Sequence[RunConfig]) -> None:
    """Raise :class:`StackError` unless ``cfgs`` are runs of the paper's method that differ only in k
    (and agree on whether k0 > 0, so that their schedules match epoch for epoch)."""
    if not cfgs:
        raise StackError("no configs to stack")
    first = {f: v for f, v in cfgs[0].to_dict().items() if f != "k"}
    for c in cfgs:
        if c.method != "wc_al" or c.init_from is not None:
            raise StackError("only the paper's method from scratch can be stacked (no baselines, no front study)")
        if c.switches.accumulate_aux_grads:  # gradients that outlive a step are not part of the stacked state
            raise StackError("runs with accumulate_aux_grads (the authors' never-zeroed t / α gradients) train alone")
        other = {f: v for f, v in c.to_dict().items() if f != "k"}
        if other != first or c.sparse != cfgs[0].sparse:
            diff = sorted(f for f in set(first) | set(other) if first.get(f) != other.get(f))
            raise StackError(f"stacked runs may differ only in k; these differ in {diff or ['k0 > 0 vs k0 = 0']}")


class _Member(Algorithm1):
    """One run of the stack: Algorithm 1, with its training epochs done by the rendezvous."""

    def __init__(
        self, cfg: RunConfig, model: torch.nn.Module, splits: Splits, progress: bool, rendezvous: "_Rendezvous"
    ) -> None:
        super().__init__(cfg, model, splits, progress)
        self.rendezvous = rendezvous

    def train_epoch(self, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rendezvous.epoch(self, opt)


class _Rendezvous:
    """Collects the members that want an epoch; the one completing the set trains it for all."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active: list[_Member] = []
        self.waiting: dict[_Member, torch.optim.Optimizer] = {}
        self.results: dict[_Member, Any] = {}
        self.state: _StackState | None = None  # the stacked parameters, buffers and Adam of the current stage

    def _complete(self) -> None:  # holds the lock
        if self.waiting and len(self.waiting) == len(self.active):
            batch = [(m, self.waiting[m]) for m in self.active]
            self.waiting.clear()
            try:
                self.results.update(stacked_epoch(batch))
            except BaseException as e:  # noqa: BLE001 - every waiting run gets the error
                self.results.update({m: e for m, _ in batch})
            self.cond.notify_all()

    def epoch(self, member: _Member, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        with self.cond:
            self.waiting[member] = opt
            self._complete()
            while member not in self.results:
                self.cond.wait()
            out = self.results.pop(member)
        if isinstance(out, BaseException):
            raise out
        return out

    def leave(self, member: _Member) -> None:
        with self.cond:
            if member in self.active:
                self.active.remove(member)
            self._complete()  # the others may have been waiting for this one only


class _StackState:
    """The stack's training state for one stage, kept stacked between steps: every parameter and
    buffer as one (K, ...) tensor, the K values of t as one (K,) tensor, and one Adam over them.
    Adam is elementwise, so one Adam over the stack is K runs' Adams side by side. The members'
    own models are written from the stack once at the end of each epoch (their per-epoch hooks
    — prox, cap, validation, model keeping, tying — read and change them) and read back once at
    the start of the next; no step re-stacks anything."""

    def __init__(self, members: Sequence["_Member"], opts: dict) -> None:
        lead = members[0]
        self.members = list(members)
        self.index = {m: i for i, m in enumerate(members)}
        self.opts = {m: opts[m] for m in members}  # a member's fresh optimiser marks a new stage
        self.names = [n for n, _ in lead.model.named_parameters()]
        self.buffer_names = [n for n, _ in lead.model.named_buffers()]
        by_id = {id(p): n for n, p in lead.model.named_parameters()}
        self.growl_names = [by_id[id(w)] for _, w in lead.growl]
        self.optimise_t = lead.cfg.switches.optimise_t
        with torch.no_grad():
            self.P = {
                n: torch.stack([dict(m.model.named_parameters())[n].detach() for m in members]).requires_grad_()
                for n in self.names
            }
            self.B = {
                n: torch.stack([dict(m.model.named_buffers())[n].detach() for m in members]) for n in self.buffer_names
            }
            self.T = torch.stack([m.al.t.detach() for m in members]).requires_grad_(self.optimise_t)
        self.opt = torch.optim.Adam(
            list(self.P.values()) + ([self.T] if self.optimise_t else []), lr=opts[lead].param_groups[0]["lr"]
        )

    def fits(self, batch: Sequence[tuple["_Member", torch.optim.Optimizer]]) -> bool:
        return all(self.opts.get(m) is o for m, o in batch)

    @torch.no_grad()
    def load(self, members: Sequence["_Member"], opts: dict) -> None:
        """The members' models, t and learning rate into the stack (once per epoch)."""
        lrs = {opts[m].param_groups[0]["lr"] for m in members}
        if len(lrs) != 1:
            raise RuntimeError(f"stacked runs must share their learning rate schedule, got {sorted(lrs)}")
        for g in self.opt.param_groups:
            g["lr"] = lrs.pop()
        for m in members:
            i = self.index[m]
            for n, p in m.model.named_parameters():
                self.P[n][i].copy_(p)
            for n, b in m.model.named_buffers():
                self.B[n][i].copy_(b)
            self.T[i].copy_(m.al.t)

    @torch.no_grad()
    def store(self, members: Sequence["_Member"]) -> None:
        """The stack back into the members' models and t (once per epoch)."""
        for m in members:
            i = self.index[m]
            for n, p in m.model.named_parameters():
                p.copy_(self.P[n][i])
            for n, b in m.model.named_buffers():
                b.copy_(self.B[n][i])
            m.al.t.copy_(self.T[i])


def stacked_epoch(batch: Sequence[tuple[_Member, torch.optim.Optimizer]]) -> dict[_Member, Any]:
    """One training epoch of every (run, optimiser) in ``batch`` with a batched forward and backward:
    per run, what :meth:`mdmtn.training.engine.Run.train_epoch` returns (Σ losses, Σ H), or the
    :class:`TrainingDiverged` it would have raised. The runs' state stays stacked across steps and
    epochs of a stage (:class:`_StackState`); the runs' own optimisers only mark the stage and
    carry its learning rate."""
    members = [m for m, _ in batch]
    opts = dict(batch)
    lead = members[0]
    cfg = lead.cfg
    rv = lead.rendezvous
    st = rv.state
    if st is None or not st.fits(batch):  # a new stage: fresh Adam state, as each run's begin_stage
        st = rv.state = _StackState(members, opts)
    base = copy.deepcopy(lead.model).to("meta")  # the architecture; parameters come from the stack

    def forward(params: dict, buffers: dict, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(functional_call(base, (params, buffers), (x,)))

    batched = vmap(forward, in_dims=(0, 0, None))
    sums = {
        m: (
            torch.zeros(cfg.n_tasks + 1, dtype=torch.float64, device=lead.device),
            torch.zeros(cfg.n_tasks + 1, dtype=torch.float64, device=lead.device),
        )
        for m in members
    }
    out: dict[_Member, Any] = {}
    for m in members:
        m.model.train()
    st.load(members, opts)
    idx = [st.index[m] for m in members]
    # every run draws its own permutation from its own generator, as it would alone; they agree
    iters = [iterate_batches(m.splits.train, m.cfg.data.batch_size, shuffle=True, generator=m.g_data) for m in members]
    differ = torch.zeros((), dtype=torch.bool, device=lead.device)  # checked once per epoch, not per step
    for batches in zip(*iters):
        xb, yb = batches[0]
        for _, y in batches[1:]:
            differ = differ | (y != yb).any()
        # runs that left the stack (diverged) keep their slices; only the others' losses count
        outs = batched(st.P, st.B, xb.contiguous(memory_format=torch.channels_last))
        total = None
        for m, i in zip(members, idx):
            ws = [st.P[n][i] for n in st.growl_names]
            l0 = m.l0_of(ws) if ws else torch.zeros((), device=lead.device)
            losses = torch.stack([l0] + [F.nll_loss(outs[t][i], yb[:, t]) for t in range(len(outs))])
            la, h = m.scalarize(losses, st.T[i])
            m.watch.note(la, losses)  # on the device; checked once at the epoch's end, as in a single run
            total = la if total is None else total + la  # parameters are disjoint: one backward for all
            s, hs = sums[m]
            s += losses.detach().double()
            hs += h.detach().double()
        st.opt.zero_grad(set_to_none=True)
        total.backward()
        st.opt.step()
    st.store(members)
    if bool(differ):
        raise RuntimeError("stacked runs drew different batches; they must share seed, data and batch size")
    for m in members:
        try:
            m.watch.check(f"epoch {len(m.history) + 1}")
        except TrainingDiverged as e:  # that run stops; the others' slices never mixed with its values
            out[m] = e
        out.setdefault(m, sums[m])
    return out


def prepare_stack(
    cfgs: Sequence[RunConfig], splits: Splits, dev: torch.device, progress: bool = False
) -> list[Algorithm1]:
    """The runs of a stack, set up as :func:`mdmtn.training.trainer.train_algorithm1` sets up one (``splits`` already
    subset and on ``dev``), sharing one rendezvous; :func:`stacked_epoch` trains an epoch of them."""
    rv = _Rendezvous()
    # built one after the other: each seeds the global generator and draws its initial weights
    members = [algorithm1_run(c, splits, dev, progress, run_class=_Member, rendezvous=rv) for c in cfgs]
    rv.active = list(members)
    return members


def train_stacked(
    cfgs: Sequence[RunConfig], splits: Splits, *, device: str | torch.device | None = "cpu", progress: bool = False
) -> list[TrainResult | BaseException]:
    """Train ``cfgs`` (runs of Algorithm 1 that differ only in k, :func:`check_stackable`) as one
    stack on ``device``; returns, per config in order, its :class:`TrainResult` (the same record
    :func:`mdmtn.training.trainer.train_algorithm1` writes, plus ``stacked``: the stack's size) or the exception that
    ended it (:class:`TrainingDiverged` for a run that diverged; the others go on)."""
    check_stackable(cfgs)
    code_version()
    set_precision()
    # a torch.device was resolved by the caller (mdmtn.train resolves once per run)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    t_start = time.perf_counter()
    cfg0 = cfgs[0]
    data = splits.subset(cfg0.data.n_train, cfg0.data.n_val, cfg0.data.n_test).to(dev)
    members = prepare_stack(cfgs, data, dev, progress)
    rv = members[0].rendezvous
    results: list[TrainResult | BaseException | None] = [None] * len(members)

    def work(i: int) -> None:
        m = members[i]
        try:
            plans = m.fit()
            results[i] = finish(m.cfg, m.trained(plans, stacked=dict(size=len(members))), m.splits, t_start, dev)
        except BaseException as e:  # noqa: BLE001 - reported per run; the stack goes on
            results[i] = e
        finally:
            m.bar.close()
            rv.leave(m)

    threads = [threading.Thread(target=work, args=(i,), name=f"mdmtn-stack-{i}") for i in range(len(members))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results  # type: ignore[return-value]
