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
  (:meth:`mdmtn.training.engine.Run.step`, the same code as a single run).
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

The package holds the method (``config``: :class:`JointConfig`; ``transfer``: the transfer step;
``solver``: :func:`solve`). Its records live in
:mod:`mdmtn.experiments.joint_runs` and its comparison tables in :mod:`mdmtn.study.joint_report`.
"""

from mdmtn.training.mt2o.config import (
    MT2O_SPARSE_VECTORS,
    MT2O_VECTORS,
    STRATEGIES,
    TRANSFERS,
    JointConfig,
    joint_config,
)
from mdmtn.training.mt2o.solver import JointResult, front_hypervolume, front_points, solve
from mdmtn.training.mt2o.transfer import (
    TransferOutcome,
    cap,
    load_state_,
    model_state,
    nearest_neighbours,
    transfer_step,
)

__all__ = [
    "JointConfig",
    "joint_config",
    "MT2O_VECTORS",
    "MT2O_SPARSE_VECTORS",
    "STRATEGIES",
    "TRANSFERS",
    "solve",
    "JointResult",
    "front_points",
    "front_hypervolume",
    "transfer_step",
    "TransferOutcome",
    "cap",
    "nearest_neighbours",
    "model_state",
    "load_state_",
]
