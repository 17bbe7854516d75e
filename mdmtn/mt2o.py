"""MT2O-v: the scalarised subproblems of a preference sweep solved jointly, with parameter transfer.

Bai, Gupta & Ong (2024, "Multi-Task Learning with Multi-Task Optimization") decompose the
multi-objective problem into K scalarised subproblems, one per preference vector, and solve them
together by a gradient descent in which model parameters are transferred between subproblems.
Their update rule, transfer coefficients and hyper-parameters are not given in a form that can
be implemented as published, so this module implements a reconstruction and calls it
**MT2O-v**, never simply MT2O (the book's appendix *MT2O-v* explains it). The choices:

* **Subproblems.** One complete model per preference vector, all from the same initial weights
  (the same seed: averaging models that start apart breaks both). Subproblem k minimises the
  paper's Chebyshev augmented Lagrangian of (L0, L1, L2) with GrOWL prox after every epoch
  (phase 1 of Algorithm 1, no tying phase), or with ``scalarization="linear"`` the weighted sum
  k·(L0, L1, L2). Every subproblem sees the same mini-batches in the same order.
* **Gradient step.** Every iteration, each subproblem takes one Adam step on its own objective
  (:meth:`mdmtn.engine.Run.step`, the same code as a single run).
* **Transfer step** (:func:`transfer_step`), every ``period`` optimiser steps and at the end of
  every epoch, on a fresh training
  batch B' (never validation data): all receivers read one snapshot Θ. For receiver k and each of
  its ``neighbours`` nearest preference vectors j (Euclidean in k-space), the candidates are the
  convex pair mixes (1 − a)·θ_k + a·θ_j for a in ``coefficients`` with a ≤ β_t. The candidate with
  the lowest g_k(·; B') replaces θ_k *only if it beats θ_k itself* (the acceptance test that
  the convergence argument needs); otherwise θ_k is kept. So each row of the implied transfer
  matrix M^t is a convex combination of at most two models, and M^t is asymmetric.
* **Cap.** β_t = ``beta0``·max(0, 1 − t / (``decay_fraction``·total steps)): the off-diagonal
  mass vanishes, so late training is plain descent on each g_k and no fixed-point bias is left.
* **What is mixed.** Every floating-point parameter and buffer (BatchNorm running statistics, the
  MDMTN fusion weights α); the receiver keeps its own Adam moments, its Chebyshev t and its
  multipliers λ, μ, which belong to its own objective rather than to the model. The candidates
  are scored in training mode (batch statistics), i.e. on the very objective the receiver
  descends.
* **Controls.** ``transfer="none"`` is the same loop with M^t = I: K independent runs in one
  process, seeing the same batches (the ablation the comparison needs). ``transfer="fixed"``
  applies M^t = (1 − β_t)·I + β_t·W, W averaging the neighbours, without any acceptance test.

The cost of a transfer step — K·(1 + neighbours·|admissible a|) forward passes — is charged to
MT2O-v's wall clock. The hypervolume of the K current solutions (validation losses per task, and
with GrOWL the density 1 − SR) is logged over training wall-clock; the time spent computing it is
excluded and reported separately.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .config import ConfigError, RunConfig, make_config
from .data import Splits, iterate_batches
from .metrics import sparsity_metrics
from .models import build_model
from .pareto import hypervolume
from .fields import coerce
from .records import RecordError, code_version, load_records, machine_info, new_record, read_record, write_json_atomic

TRANSFERS = ("mt2o", "none", "fixed")
STRATEGIES = {"mt2o": "mt2o", "independent": "none"}  # sweep --strategy -> transfer
# Five preference vectors for MT2O comparisons (K = 5): task trade-offs spread over
# (0, 1), ends kept off 0 so no head is ignored. MT2O_VECTORS are dense (k0 = 0: the scalarised
# two-task problem MT2O was made for); MT2O_SPARSE_VECTORS add GrOWL with the quick sweep's k0.
MT2O_VECTORS: tuple[tuple[float, float, float], ...] = tuple((0.0, w, round(1 - w, 6)) for w in (0.1, 0.3, 0.5, 0.7, 0.9))
MT2O_SPARSE_VECTORS: tuple[tuple[float, float, float], ...] = tuple(
    (0.001, round(w * 0.999, 6), round((1 - w) * 0.999, 6)) for w in (0.1, 0.3, 0.5, 0.7, 0.9))
for _k in MT2O_VECTORS + MT2O_SPARSE_VECTORS:  # keep the sums exact after rounding
    assert abs(sum(_k) - 1.0) < 1e-9, _k


@dataclass(frozen=True)
class JointConfig:
    """One joint solve of K subproblems: the record key of a MT2O-v / independent run.

    ``runs`` hold one :class:`RunConfig` per preference vector and must agree on everything
    but ``k``. The schedule is ``iterations`` × ``runs[0].epochs_per_iteration`` epochs (default
    ``phase1_iterations`` when the subproblems use GrOWL, else ``single_stage_iterations``).
    """

    runs: tuple[RunConfig, ...]
    transfer: str = "mt2o"
    period: int = 50  # optimiser steps between transfer steps (τ)
    neighbours: int = 2  # sources per receiver: the nearest preference vectors
    coefficients: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    beta0: float = 0.5  # initial cap on the mixing coefficient
    decay_fraction: float = 0.75  # the cap reaches 0 at this fraction of all steps
    iterations: int | None = None
    evals_per_epoch: int = 4  # hypervolume log points per epoch
    # hypervolume reference for each task's validation loss: above ln 10 ≈ 2.30, the loss of a
    # uniform 10-class guess, so every model that has learnt anything counts
    loss_reference: float = 2.5

    def __post_init__(self) -> None:
        if not self.runs:
            raise ConfigError("a joint solve needs at least one preference vector")
        base = _without_k(self.runs[0])
        for r in self.runs[1:]:
            if _without_k(r) != base:
                raise ConfigError("the subproblems of a joint solve must differ only in k")
        if len({r.k for r in self.runs}) != len(self.runs):
            raise ConfigError("duplicate preference vectors in a joint solve")
        if len({r.sparse for r in self.runs}) > 1:
            raise ConfigError("mix of k0 = 0 and k0 > 0 vectors: their schedules differ; solve them separately")
        if self.transfer not in TRANSFERS:
            raise ConfigError(f"transfer must be one of {TRANSFERS}, got {self.transfer!r}")
        if self.period < 1 or self.neighbours < 0 or self.evals_per_epoch < 1:
            raise ConfigError("period and evals_per_epoch must be >= 1, neighbours >= 0")
        if not all(0 < a <= 1 for a in self.coefficients) or not 0 <= self.beta0 <= 1 or not 0 < self.decay_fraction:
            raise ConfigError("coefficients must lie in (0, 1], beta0 in [0, 1], decay_fraction > 0")
        if self.runs[0].method != "wc_al":
            raise ConfigError("joint solves train the paper's method (method='wc_al')")

    @property
    def n_iterations(self) -> int:
        r = self.runs[0]
        if self.iterations is not None:
            return self.iterations
        return r.phase1_iterations if r.sparse else r.single_stage_iterations

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "runs"}
        d["coefficients"] = list(self.coefficients)
        d["vectors"] = [list(r.k) for r in self.runs]
        d["run"] = _without_k(self.runs[0])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JointConfig":
        d = dict(d)
        run = d.pop("run")
        runs = tuple(RunConfig.from_dict({**run, "k": k}) for k in d.pop("vectors"))
        d["coefficients"] = tuple(d["coefficients"])
        return cls(runs=runs, **d)

    def key(self) -> str:
        """16 hex digits of the config's hash: the joint record's file name."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _without_k(r: RunConfig) -> dict[str, Any]:
    d = r.key_fields(joint=True)
    d.pop("k")
    return d


def joint_config(dataset: str, model: str, vectors: Sequence[Sequence[float]], preset: str = "quick",
                 seed: int = 0, *, strategy: str = "mt2o", **options: Any) -> JointConfig:
    """Validated :class:`JointConfig`. ``strategy`` is ``"mt2o"`` or ``"independent"`` (or a
    ``transfer`` value); ``options`` holds JointConfig fields and RunConfig overrides."""
    transfer = STRATEGIES.get(strategy, strategy)
    names = {f.name for f in dataclasses.fields(JointConfig)} - {"runs"}
    try:  # text from the CLI becomes the declared type, or a one-line error
        joint = {k: coerce(JointConfig, k, v) for k, v in options.items() if k in names}
    except ValueError as e:
        raise ConfigError(str(e)) from None
    run_over = {k: v for k, v in options.items() if k not in names}
    runs = tuple(make_config(dataset, model, k, preset, seed, **run_over) for k in vectors)
    return JointConfig(runs=runs, transfer=transfer, **joint)


# ---------------------------------------------------------------------------------------------------
# The transfer step (model-agnostic: states are lists of float tensors)
# ---------------------------------------------------------------------------------------------------
def nearest_neighbours(vectors: Sequence[Sequence[float]], n: int) -> list[list[int]]:
    """For each preference vector, the indices of the ``n`` nearest others (Euclidean, ties by index)."""
    v = np.asarray(vectors, dtype=float)
    d = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)
    out = []
    for i in range(len(v)):
        order = [j for j in np.lexsort((np.arange(len(v)), d[i])) if j != i]
        out.append([int(j) for j in order[:n]])
    return out


def cap(step: int, total_steps: int, beta0: float, decay_fraction: float) -> float:
    """β_t = β0 · max(0, 1 − t / (decay_fraction · total_steps))."""
    return beta0 * max(0.0, 1.0 - step / max(decay_fraction * total_steps, 1e-12))


@dataclass
class TransferOutcome:
    """What one transfer step did: per receiver the chosen source (or None) and coefficient a,
    the objective before and after on the transfer batch, and the forward passes spent."""

    source: list[int | None]
    coefficient: list[float]
    before: list[float | None]  # None: receiver not tried (cap closed, no neighbours, or not "mt2o")
    after: list[float | None]
    forward_passes: int


@torch.no_grad()
def transfer_step(states: Sequence[Sequence[torch.Tensor]], objective: Callable[[int, list[torch.Tensor]], float],
                  neighbours: Sequence[Sequence[int]], coefficients: Sequence[float], beta: float,
                  rule: str = "mt2o") -> tuple[list[list[torch.Tensor]], TransferOutcome]:
    """One transfer step over K subproblem states (every receiver reads the same snapshot).

    Args:
        states: K lists of float tensors (the same shapes across subproblems).
        objective: ``objective(k, state)`` → g_k of that state on the transfer batch (float).
        neighbours: per receiver, the candidate sources.
        coefficients: the grid A of mixing coefficients; only a ≤ ``beta`` are tried.
        rule: ``"mt2o"`` (best pair mix, accepted only if g_k decreases), ``"fixed"``
            ((1 − β)·θ_k + β·mean of the neighbours, no test) or ``"none"``.

    Returns:
        (new states — fresh tensors, inputs untouched —, :class:`TransferOutcome`).
    """
    K = len(states)
    new = [[t.clone() for t in s] for s in states]
    src: list[int | None] = [None] * K
    coef = [0.0] * K
    before: list[float | None] = [None] * K
    after: list[float | None] = [None] * K
    passes = 0
    admissible = [a for a in coefficients if a <= beta + 1e-12]
    for k in range(K):
        if rule == "none" or not neighbours[k] or beta <= 0:
            continue
        if rule == "fixed":
            for i, t in enumerate(new[k]):
                mean = torch.stack([states[j][i] for j in neighbours[k]]).mean(0)
                t.copy_((1 - beta) * states[k][i] + beta * mean)
            src[k], coef[k] = -1, beta
            continue
        if rule != "mt2o":
            raise ValueError(f"unknown transfer rule {rule!r}")
        if not admissible:
            continue
        base = objective(k, list(states[k]))
        passes += 1
        best = (base, None, 0.0)
        for j in neighbours[k]:
            for a in admissible:
                cand = [(1 - a) * tk + a * tj for tk, tj in zip(states[k], states[j])]
                v = objective(k, cand)
                passes += 1
                if v < best[0]:
                    best = (v, j, a)
        before[k], after[k] = base, best[0]
        if best[1] is not None:
            src[k], coef[k] = best[1], best[2]
            for t, tk, tj in zip(new[k], states[k], states[best[1]]):
                t.copy_((1 - best[2]) * tk + best[2] * tj)
    return new, TransferOutcome(src, coef, before, after, passes)


def model_state(model: nn.Module) -> list[torch.Tensor]:
    """The tensors a transfer mixes: every floating-point parameter and buffer, in a fixed order."""
    return [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]


@torch.no_grad()
def load_state_(model: nn.Module, state: Sequence[torch.Tensor]) -> None:
    """Copy ``state`` (as from :func:`model_state`) into ``model`` in place (keeps optimiser refs)."""
    for t, s in zip(model_state(model), state):
        t.copy_(s)


# ---------------------------------------------------------------------------------------------------
# The joint solver
# ---------------------------------------------------------------------------------------------------
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
    from .engine import Run, evaluate, lsuv_start_, seed_everything  # the single-run machinery, shared

    code_version()  # pin the commit at the start (see trainer.train)
    t_start = time.perf_counter()
    cfg0 = jc.runs[0]
    splits = splits.subset(cfg0.n_train, cfg0.n_val, cfg0.n_test)
    seed_everything(cfg0.seed)
    template = build_model(cfg0.model, splits.input_shape, n_tasks=cfg0.n_tasks)
    template.to(memory_format=torch.channels_last)
    lsuv_start_(template, cfg0, splits.train)  # the same start for all subproblems: computed once
    runs = []
    for rc in jc.runs:
        model = build_model(rc.model, splits.input_shape, n_tasks=rc.n_tasks).to(memory_format=torch.channels_last)
        model.load_state_dict(template.state_dict())
        runs.append(Run(rc, model, splits, progress=False))
    scratch = build_model(cfg0.model, splits.input_shape, n_tasks=cfg0.n_tasks).to(memory_format=torch.channels_last)
    K, sparse = len(runs), cfg0.sparse
    nbrs = nearest_neighbours([r.k for r in jc.runs], jc.neighbours)
    n_batches = math.ceil(len(splits.train) / cfg0.batch_size)
    n_epochs = jc.n_iterations * cfg0.epochs_per_iteration
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
        vals = [evaluate(r.model, splits.val, cfg0.eval_batch_size) for r in runs]
        srs = [sparsity_metrics(r.model)["SR"] for r in runs] if sparse else None
        pts = front_points([v["loss"] for v in vals], srs)
        hv_curve.append(dict(train_seconds=clock.wall, train_cpu_seconds=clock.cpu, steps=steps, forward_passes=passes,
                             hv=front_hypervolume(pts, jc.loss_reference, sparse), points=pts.tolist()))
        eval_clock += time.perf_counter() - t0

    log_hv()
    stages = [r.begin_stage() for r in runs]
    phase = "phase1" if sparse else "single"
    bar = tqdm(total=n_epochs, desc=f"{jc.transfer}: {K} subproblems", unit="epoch", disable=not progress)
    for it in range(jc.n_iterations):
        for ep in range(cfg0.epochs_per_iteration):
            clock.start()
            sums = [(torch.zeros(cfg0.n_tasks + 1, dtype=torch.float64),
                     torch.zeros(cfg0.n_tasks + 1, dtype=torch.float64)) for _ in runs]
            for r in runs:
                r.model.train()
            for b, (xb, yb) in enumerate(iterate_batches(splits.train, cfg0.batch_size, shuffle=True,
                                                         generator=g_data), start=1):
                for r, st, (ls, hs) in zip(runs, stages, sums):
                    losses, h = r.step(st.opt, xb, yb)
                    ls += losses.double()
                    hs += h.double()
                steps += 1
                passes += K
                # every `period` steps and at least once per epoch (book appendix)
                if jc.transfer != "none" and (steps % jc.period == 0 or b == n_batches):
                    beta = cap(steps, total_steps, jc.beta0, jc.decay_fraction)
                    idx = torch.randint(len(splits.train), (cfg0.batch_size,), generator=g_transfer)
                    xt, yt = splits.train.x[idx], splits.train.y[idx]
                    new, out = transfer_step([model_state(r.model) for r in runs],
                                             lambda k, s: objective(k, s, xt, yt), nbrs, jc.coefficients, beta,
                                             rule=jc.transfer)
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
        test = evaluate(r.model, splits.test, cfg0.eval_batch_size)
        val = evaluate(r.model, splits.val, cfg0.eval_batch_size)
        finals.append(dict(k=list(r.cfg.k), test_acc=test["acc"], test_loss=test["loss"], val_acc=val["acc"],
                           val_loss=val["loss"], **sparsity_metrics(r.model), history=r.history))
    accepted = [a for t in transfers for a, s in zip(t["coefficient"], t["source"]) if s is not None]
    n_tries = sum(b is not None for t in transfers for b in t["before"]) if jc.transfer == "mt2o" else len(accepted)
    record = new_record(
        status="ok", kind="joint", key=jc.key(), config=jc.to_dict(), strategy=jc.transfer,
        hv_curve=hv_curve, final_hv=hv_curve[-1]["hv"], subproblems=finals,
        transfers=dict(n_steps=len(transfers), accepted=len(accepted), tried=n_tries,
                       mean_coefficient=float(np.mean(accepted)) if accepted else None, log=transfers),
        data=splits.provenance(),
        train_seconds=clock.wall, train_cpu_seconds=clock.cpu, eval_seconds=eval_clock, wall_time_s=time.perf_counter() - t_start,
        machine=machine_info(),
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


# ---------------------------------------------------------------------------------------------------
# A toy with a known front: two quadratics
# ---------------------------------------------------------------------------------------------------
def quadratic_toy(a: Sequence[float], b: Sequence[float], weights: Sequence[float], theta0: Sequence[float], *,
                  steps: int = 100, lr: float = 0.05, transfer: str = "mt2o", period: int = 5,
                  neighbours: int = 2, coefficients: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5),
                  beta0: float = 0.5, decay_fraction: float = 0.75) -> dict[str, np.ndarray]:
    """MT2O-v's loop on L1 = ‖θ − a‖², L2 = ‖θ − b‖² with linear scalarisation.

    Subproblem k (weight w_k ∈ [0, 1]) minimises g_k = w_k·L1 + (1 − w_k)·L2, whose minimiser
    is θ*_k = w_k·a + (1 − w_k)·b and whose front is √L1 + √L2 = ‖a − b‖. All subproblems start at
    ``theta0`` and take plain gradient steps; the transfer step is :func:`transfer_step` with the
    exact g_k. Returns ``theta`` (steps+1, K, d) and ``g`` (steps+1, K) trajectories, and
    ``optimum`` (K, d).
    """
    a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    K = len(w)

    def g(k: int, th: torch.Tensor) -> float:
        return float(w[k] * ((th - a_t) ** 2).sum() + (1 - w[k]) * ((th - b_t) ** 2).sum())

    theta = torch.tensor(theta0, dtype=torch.float64).repeat(K, 1)
    nbrs = nearest_neighbours([[float(x), 1 - float(x)] for x in w], neighbours)
    traj, vals = [theta.clone()], [[g(k, theta[k]) for k in range(K)]]
    for t in range(1, steps + 1):
        grad = 2 * w[:, None] * (theta - a_t) + 2 * (1 - w[:, None]) * (theta - b_t)
        theta = theta - lr * grad
        if transfer != "none" and t % period == 0:
            beta = cap(t, steps, beta0, decay_fraction)
            new, _ = transfer_step([[theta[k]] for k in range(K)], lambda k, s: g(k, s[0]), nbrs, coefficients,
                                   beta, rule=transfer)
            theta = torch.stack([s[0] for s in new])
        traj.append(theta.clone())
        vals.append([g(k, theta[k]) for k in range(K)])
    optimum = w[:, None] * a_t + (1 - w[:, None]) * b_t
    return dict(theta=torch.stack(traj).numpy(), g=np.asarray(vals), optimum=optimum.numpy())


# ---------------------------------------------------------------------------------------------------
# Comparing strategies
# ---------------------------------------------------------------------------------------------------
def time_to_fraction(curve: Sequence[dict[str, Any]], target: float, clock: str = "train_seconds") -> float:
    """First ``clock`` value at which the curve's hypervolume reaches ``target`` (inf if never)."""
    for p in curve:
        if p["hv"] >= target:
            return float(p[clock])
    return math.inf


def speed_ratio(mt2o_rec: dict[str, Any], indep_rec: dict[str, Any], fraction: float = 0.95,
                clock: str = "train_seconds") -> dict[str, float]:
    """Time for each strategy to reach ``fraction`` of the *independent* run's final hypervolume,
    and the ratio MT2O-v / independent (< 1: MT2O-v is faster)."""
    target = fraction * indep_rec["final_hv"]
    t_m = time_to_fraction(mt2o_rec["hv_curve"], target, clock)
    t_i = time_to_fraction(indep_rec["hv_curve"], target, clock)
    return dict(target=target, mt2o=t_m, independent=t_i, ratio=t_m / t_i if t_i > 0 else math.nan)


def joint_key(rec: dict[str, Any]) -> str:
    """The key a joint record's config hashes to."""
    return JointConfig.from_dict(rec["config"]).key()


def find_joint_record(out_dir: str | Path, jc: JointConfig) -> dict[str, Any] | None:
    """The record of ``jc`` in ``out_dir`` (``<key>.json``, checked to be that config's), or None."""
    path = Path(out_dir) / f"{jc.key()}.json"
    if not path.exists():
        return None
    try:
        rec = read_record(path, joint_key)
    except RecordError as e:
        print(f"warning: {e}", file=sys.stderr)
        return None
    return rec if rec.get("status") == "ok" else None


def run_joint(jcs: Sequence[JointConfig], out_dir: str | Path, load: Callable[[RunConfig], Splits], *,
              progress: bool = True, force: bool = False, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Solve every joint config without a record in ``out_dir`` (resumable, atomic records)."""
    out_dir = Path(out_dir)
    recs = []
    for i, jc in enumerate(jcs):
        path = out_dir / f"{jc.key()}.json"
        rec = None if force else find_joint_record(out_dir, jc)
        tag = f"[{i + 1}/{len(jcs)}] {jc.transfer} K={len(jc.runs)} {jc.runs[0].model}/{jc.runs[0].dataset} " \
              f"seed={jc.runs[0].seed}"
        if rec is not None:
            log(f"[skip] {tag}: {path} exists (final HV {rec['final_hv']:.4f})")
            recs.append(rec)
            continue
        rec = solve(jc, load(jc.runs[0]), progress=progress).record
        write_json_atomic(path, rec)
        log(f"[done] {tag}: {path}: final HV {rec['final_hv']:.4f}, train {rec['train_seconds']:.1f}s, "
            f"transfers accepted {rec['transfers']['accepted']}/{rec['transfers']['tried']}")
        recs.append(rec)
    return recs


def load_joint_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """All joint records (``kind == "joint"``) in ``out_dir``, sorted by strategy then seed."""
    recs = load_records(out_dir, key_of=joint_key, kind="joint")
    return sorted(recs, key=lambda r: (r["strategy"], r["config"]["run"]["seed"]))


def compare(records: Sequence[dict[str, Any]], fraction: float = 0.95) -> dict[str, Any]:
    """Pair MT2O-v and independent records by seed (same vectors and run settings) and summarise.

    Returns ``rows`` (one per seed: final HV of each arm, training seconds of each arm, time of
    each to reach ``fraction`` of the independent arm's final HV, and the ratio MT2O-v /
    independent) and ``ratio_mean`` / ``ratio_std`` / ``n`` over the seeds where both reached it.
    """
    by = {}
    for r in records:
        cfg = r["config"]
        group = json.dumps({k: v for k, v in cfg.items() if k not in ("transfer",)} | {"run": {
            k: v for k, v in cfg["run"].items() if k != "seed"}}, sort_keys=True)
        by.setdefault((group, cfg["run"]["seed"]), {})[r["strategy"]] = r
    rows = []
    for (_, seed), pair in sorted(by.items(), key=lambda x: x[0][1]):
        if "mt2o" not in pair or "none" not in pair:
            continue
        m, i = pair["mt2o"], pair["none"]
        sr = speed_ratio(m, i, fraction)
        rows.append(dict(seed=seed, hv_mt2o=m["final_hv"], hv_independent=i["final_hv"],
                         train_s_mt2o=m["train_seconds"], train_s_independent=i["train_seconds"],
                         t_mt2o=sr["mt2o"], t_independent=sr["independent"], ratio=sr["ratio"],
                         steps_ratio=speed_ratio(m, i, fraction, clock="steps")["ratio"],
                         passes_ratio=speed_ratio(m, i, fraction, clock="forward_passes")["ratio"],
                         cpu_ratio=(speed_ratio(m, i, fraction, clock="train_cpu_seconds")["ratio"]
                                    if "train_cpu_seconds" in m["hv_curve"][-1] and "train_cpu_seconds" in i["hv_curve"][-1]
                                    else math.nan),
                         accepted=m["transfers"]["accepted"], tried=m["transfers"]["tried"],
                         machine_load=(m["machine"].get("load_avg_1min"), i["machine"].get("load_avg_1min"))))
    out = dict(rows=rows, fraction=fraction)
    for name in ("ratio", "cpu_ratio", "steps_ratio", "passes_ratio"):
        ok = [r[name] for r in rows if math.isfinite(r[name])]
        out[f"{name}_n"] = len(ok)
        out[f"{name}_mean"] = float(np.mean(ok)) if ok else math.nan
        out[f"{name}_std"] = float(np.std(ok, ddof=1)) if len(ok) > 1 else math.nan
    out["n"] = out["ratio_n"]
    return out


def comparison_markdown(summary: dict[str, Any]) -> str:
    """A markdown table of :func:`compare`'s rows and the mean ratio."""
    f = int(round(100 * summary["fraction"]))
    # two tables (times, then ratios) so that each fits a book page's content column
    lines = [f"| seed | final HV: MT2O-v / independent | train s: MT2O-v / independent | "
             f"time to {f}% (s): MT2O-v / independent |", "|---|---|---|---|"]
    for r in summary["rows"]:
        lines.append(f"| {r['seed']} | {r['hv_mt2o']:.4f} / {r['hv_independent']:.4f} | {r['train_s_mt2o']:.0f} / "
                     f"{r['train_s_independent']:.0f} | {r['t_mt2o']:.0f} / {r['t_independent']:.0f} |")
    lines += ["", "| seed | ratio: wall-clock | ratio: CPU time | ratio: steps | ratio: forward passes | "
              "transfers accepted |", "|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        lines.append(f"| {r['seed']} | {r['ratio']:.2f} | {_fmt(r['cpu_ratio'])} | {r['steps_ratio']:.2f} | "
                     f"{r['passes_ratio']:.2f} | {r['accepted']}/{r['tried']} |")
    lines.append("")
    lines.append(" ".join(f"Mean {label}: {_fmt(summary[f'{name}_mean'])}"
                          + (f" ± {summary[f'{name}_std']:.2f}" if summary[f"{name}_n"] > 1 else "")
                          + f" ({summary[f'{name}_n']} seed(s))."
                          for label, name in (("wall-clock ratio", "ratio"), ("CPU-time ratio", "cpu_ratio"),
                                              ("step ratio", "steps_ratio"), ("forward-pass ratio", "passes_ratio"))))
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "–"


def chapter_configs(dataset: str, preset: str, seeds: Sequence[int], extra_k: Sequence[float] | None = None,
                    model: str = "hps", iterations: int | None = 3) -> list[JointConfig]:
    """The book's comparison: MT2O-v and independent on :data:`MT2O_VECTORS` (plus ``extra_k``), per
    seed, alternating which strategy comes first (so slow spells of a shared CPU hit both).
    ``iterations=3`` is half the quick preset's single stage (6 of 12 epochs), so that 3 seeds ×
    2 strategies × 5 subproblems fit a 2-core CPU's afternoon."""
    vectors = list(MT2O_VECTORS) + ([tuple(extra_k)] if extra_k is not None and tuple(extra_k) not in MT2O_VECTORS
                                    else [])
    out = []
    for i, s in enumerate(seeds):
        order = ("mt2o", "independent") if i % 2 == 0 else ("independent", "mt2o")
        out += [joint_config(dataset, model, vectors, preset, s, strategy=st, iterations=iterations) for st in order]
    return out


def subproblems_markdown(records: Sequence[dict[str, Any]]) -> str:
    """Per record and subproblem: k, final test accuracy per task, validation losses and SR."""
    lines = ["| strategy | seed | k | test acc % | val loss | SR % |", "|---|---|---|---|---|---|"]
    for r in records:
        name = "MT2O-v" if r["strategy"] == "mt2o" else "independent" if r["strategy"] == "none" else r["strategy"]
        for s in r["subproblems"]:
            lines.append(f"| {name} | {r['config']['run']['seed']} | ({', '.join(f'{v:g}' for v in s['k'])}) | "
                         f"{' / '.join(f'{100 * a:.1f}' for a in s['test_acc'])} | "
                         f"{' / '.join(f'{v:.3f}' for v in s['val_loss'])} | {s['SR']:.1f} |")
    return "\n".join(lines)


def verdict(summary: dict[str, Any]) -> str:
    """The verdict rule, fixed before the runs: transfer "helps" only if MT2O-v reached the target sooner
    with every seed, by the load-independent clocks as well as wall-clock, and its final
    hypervolume is not below the independent arm's."""
    rows = summary["rows"]
    if not rows:
        return "No MT2O-v / independent pair to judge."
    cpu = [r["cpu_ratio"] for r in rows if math.isfinite(r["cpu_ratio"])]
    faster_wall = all(r["ratio"] < 1 for r in rows)
    faster_steps = all(r["steps_ratio"] < 1 for r in rows)
    faster_cpu = bool(cpu) and all(c < 1 for c in cpu)
    hv_ok = all(r["hv_mt2o"] >= r["hv_independent"] - 0.01 * abs(r["hv_independent"]) for r in rows)
    if faster_wall and faster_steps and (faster_cpu or not cpu) and hv_ok:
        return f"Transfer helped: MT2O-v reached the target sooner with all {len(rows)} seed(s), by every clock."
    parts = [f"wall-clock faster with {sum(r['ratio'] < 1 for r in rows)}/{len(rows)} seeds",
             f"fewer steps with {sum(r['steps_ratio'] < 1 for r in rows)}/{len(rows)}"]
    if cpu:
        parts.append(f"less CPU time with {sum(c < 1 for c in cpu)}/{len(cpu)}")
    parts.append("final HV not lower with all seeds" if hv_ok else "final HV lower with some seed")
    return "No evidence that transfer helps here (" + "; ".join(parts) + ")."
