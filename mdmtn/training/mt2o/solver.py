"""The joint solver: K subproblems trained side by side on the single-run engine, with or without
transfer, logging the hypervolume of their current solutions over training time."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mdmtn.core.timing import PhaseTimer
from mdmtn.data import Splits, iterate_batches
from mdmtn.models import build_model
from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.objectives.pareto import hypervolume
from mdmtn.records.machine import code_version, machine_info
from mdmtn.records.schema import new_record
from mdmtn.training.mt2o.config import JointConfig
from mdmtn.training.mt2o.transfer import cap, load_state_, model_state, nearest_neighbours, transfer_step


@dataclass
class JointResult:
    """Models (one per preference vector, the last iterates) and the JSON record."""

    models: list[nn.Module]
    record: dict[str, Any] = field(default_factory=dict)


def front_points(val_losses: Sequence[Sequence[float]], srs: Sequence[float] | None) -> np.ndarray:
    """(K, m) or (K, m+1) objective points of K solutions: per-task validation losses, and the
    density 1 − SR/100 when ``srs`` is given (all minimised)."""
    p = np.asarray(val_losses, dtype=float)
    if srs is not None:
        p = np.column_stack([p, 1.0 - np.asarray(srs, dtype=float) / 100.0])
    return p


def front_hypervolume(points: np.ndarray, loss_reference: float, sparse: bool) -> float:
    """Hypervolume (moocore) w.r.t. ``loss_reference`` per task loss and 1 for the density."""
    m = points.shape[1] - (1 if sparse else 0)
    ref = [loss_reference] * m + ([1.0] if sparse else [])
    inside = np.all(points < np.asarray(ref), axis=1)
    return hypervolume(points[inside], ref) if inside.any() else 0.0


def solve(jc: JointConfig, splits: Splits, *, progress: bool = True) -> JointResult:
    """Train the K subproblems of ``jc`` jointly (MT2O-v) or side by side (``transfer="none"``).

    ``splits`` is subset to the runs' sizes. Returns the last iterates and a record with the
    hypervolume curve ``hv_curve`` (list of dicts: ``train_seconds``, ``steps``,
    ``forward_passes``, ``hv``; ``train_cpu_seconds`` too: see :class:`_Clock`), per-subproblem final metrics, transfer statistics and timings.
    """
    from mdmtn.training.engine import Run, lsuv_start_, seed_everything  # the single-run machinery, shared
    from mdmtn.training.loop import evaluate

    code_version()  # pin the commit at the start (see runner.train)
    t_start = time.perf_counter()
    timer = PhaseTimer()  # the joint solve runs on the CPU (see mdmtn.experiments.joint_runs)
    cfg0 = jc.runs[0]
    with timer("data"):
        splits = splits.subset(cfg0.data.n_train, cfg0.data.n_val, cfg0.data.n_test)
    seed_everything(cfg0.seed)
    template = build_model(cfg0.model, splits.input_shape, n_tasks=cfg0.n_tasks)
    template.to(memory_format=torch.channels_last)
    with timer("lsuv"):
        lsuv_start_(template, cfg0, splits.train)  # the same start for all subproblems: computed once
    runs = []
    for rc in jc.runs:
        model = build_model(rc.model, splits.input_shape, n_tasks=rc.n_tasks).to(memory_format=torch.channels_last)
        model.load_state_dict(template.state_dict())
        runs.append(Run(rc, model, splits, progress=False))
    scratch = build_model(cfg0.model, splits.input_shape, n_tasks=cfg0.n_tasks).to(memory_format=torch.channels_last)
    K, sparse = len(runs), cfg0.sparse
    nbrs = nearest_neighbours([r.k for r in jc.runs], jc.neighbours)
    n_batches = math.ceil(len(splits.train) / cfg0.data.batch_size)
    n_epochs = jc.n_iterations * cfg0.schedule.epochs_per_iteration
    total_steps = n_epochs * n_batches
    # With GrOWL, rows are exactly zero only right after the epoch's prox (Adam moves them off zero
    # within the epoch), so the density objective, and the hypervolume, are logged at epoch ends.
    per_epoch = 1 if cfg0.sparse else jc.evals_per_epoch
    evals_at = {round(n_batches * (i + 1) / per_epoch) for i in range(per_epoch)}
    g_data = torch.Generator().manual_seed(cfg0.seed)  # the batch order every subproblem sees
    g_transfer = torch.Generator().manual_seed(cfg0.seed + 5)

    def objective(k: int, state: list[torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> float:
        load_state_(scratch, state)
        scratch.train()
        val, _ = runs[k].scalarize(runs[k].objectives(scratch, xb, yb))
        return float(val)

    clock = _Clock()  # optimiser steps, transfers and the per-epoch algorithm work
    eval_clock = 0.0  # seconds spent on the hypervolume log (excluded from the training clock)
    steps = passes = 0
    hv_curve: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []

    def log_hv() -> None:
        nonlocal eval_clock
        t0 = time.perf_counter()
        vals = [evaluate(r.model, splits.val, cfg0.data.eval_batch_size) for r in runs]
        srs = [sparsity_metrics(r.model)["SR"] for r in runs] if sparse else None
        pts = front_points([v["loss"] for v in vals], srs)
        hv_curve.append(
            dict(
                train_seconds=clock.wall,
                train_cpu_seconds=clock.cpu,
                steps=steps,
                forward_passes=passes,
                hv=front_hypervolume(pts, jc.loss_reference, sparse),
                points=pts.tolist(),
            )
        )
        eval_clock += time.perf_counter() - t0

    log_hv()
    stages = [r.begin_stage() for r in runs]
    phase = "phase1" if sparse else "single"
    bar = tqdm(total=n_epochs, desc=f"{jc.transfer}: {K} subproblems", unit="epoch", disable=not progress)
    for it in range(jc.n_iterations):
        for ep in range(cfg0.schedule.epochs_per_iteration):
            clock.start()
            sums = [
                (torch.zeros(cfg0.n_tasks + 1, dtype=torch.float64), torch.zeros(cfg0.n_tasks + 1, dtype=torch.float64))
                for _ in runs
            ]
            for r in runs:
                r.model.train()
            for b, (xb, yb) in enumerate(
                iterate_batches(splits.train, cfg0.data.batch_size, shuffle=True, generator=g_data), start=1
            ):
                for r, st, (ls, hs) in zip(runs, stages, sums):
                    losses, h = r.step(st.opt, xb, yb)
                    ls += losses.double()
                    hs += h.double()
                steps += 1
                passes += K
                # every `period` steps and at least once per epoch (book appendix)
                if jc.transfer != "none" and (steps % jc.period == 0 or b == n_batches):
                    beta = cap(steps, total_steps, jc.beta0, jc.decay_fraction)
                    idx = torch.randint(len(splits.train), (cfg0.data.batch_size,), generator=g_transfer)
                    xt, yt = splits.train.x[idx], splits.train.y[idx]
                    new, out = transfer_step(
                        [model_state(r.model) for r in runs],
                        lambda k, s: objective(k, s, xt, yt),
                        nbrs,
                        jc.coefficients,
                        beta,
                        rule=jc.transfer,
                    )
                    for r, s in zip(runs, new):
                        load_state_(r.model, s)
                    passes += out.forward_passes
                    transfers.append(dict(step=steps, beta=beta, **dataclasses.asdict(out)))
                if b in evals_at:
                    if b == n_batches:  # the epoch's algorithm work (prox, validation) comes first
                        for r, st, (ls, hs) in zip(runs, stages, sums):
                            project = r.growl_step if sparse else (lambda _it: None)
                            r.end_epoch(st, phase, it, ep, ls, hs, project, lambda *_: None, None)
                    clock.stop()
                    log_hv()
                    clock.start()
            clock.stop()
            bar.update(1)
            bar.set_postfix(hv=f"{hv_curve[-1]['hv']:.4f}")
        for r, st in zip(runs, stages):
            r.end_iteration(st)
    bar.close()

    finals = []
    for r in runs:
        with timer("test_eval"):
            test = evaluate(r.model, splits.test, cfg0.data.eval_batch_size)
        with timer("validation"):
            val = evaluate(r.model, splits.val, cfg0.data.eval_batch_size)
        finals.append(
            dict(
                k=list(r.cfg.k),
                test_acc=test["acc"],
                test_loss=test["loss"],
                val_acc=val["acc"],
                val_loss=val["loss"],
                **sparsity_metrics(r.model),
                history=r.history,
            )
        )
    accepted = [a for t in transfers for a, s in zip(t["coefficient"], t["source"]) if s is not None]
    n_tries = sum(b is not None for t in transfers for b in t["before"]) if jc.transfer == "mt2o" else len(accepted)
    # the training clock holds the epochs' steps, transfers and per-epoch work (prox, validation);
    # "hv_log" is the hypervolume logging, kept off that clock
    timer.add("train", clock.wall)
    timer.add("hv_log", eval_clock)
    wall = time.perf_counter() - t_start
    record = new_record(
        status="ok",
        kind="joint",
        key=jc.key(),
        config=jc.to_dict(),
        strategy=jc.transfer,
        hv_curve=hv_curve,
        final_hv=hv_curve[-1]["hv"],
        subproblems=finals,
        transfers=dict(
            n_steps=len(transfers),
            accepted=len(accepted),
            tried=n_tries,
            mean_coefficient=float(np.mean(accepted)) if accepted else None,
            log=transfers,
        ),
        data=splits.provenance(),
        train_seconds=clock.wall,
        train_cpu_seconds=clock.cpu,
        eval_seconds=eval_clock,
        wall_time_s=wall,
        machine=machine_info(),
        timing=timer.block(wall),
    )
    return JointResult([r.model for r in runs], record)


class _Clock:
    """Accumulates wall-clock and this process's CPU time over start/stop spans. The CPU time
    (all threads of the process) is a stand-in for wall-clock that other jobs on a shared
    machine barely disturb, when the run uses one thread."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._t: tuple[float, float] | None = None

    def start(self) -> None:
        self._t = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        if self._t is not None:
            self.wall += time.perf_counter() - self._t[0]
            self.cpu += time.process_time() - self._t[1]
            self._t = None
