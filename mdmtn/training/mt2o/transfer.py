"""The transfer step of MT2O-v (model-agnostic: a model's state is a list of float tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


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
def transfer_step(
    states: Sequence[Sequence[torch.Tensor]],
    objective: Callable[[int, list[torch.Tensor]], float],
    neighbours: Sequence[Sequence[int]],
    coefficients: Sequence[float],
    beta: float,
    rule: str = "mt2o",
) -> tuple[list[list[torch.Tensor]], TransferOutcome]:
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
