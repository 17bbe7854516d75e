"""MT2O-v's loop on a toy with a known front (two quadratics, linear scalarisation): the tests check
the transfer step against the analytic front here."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mdmtn.training.mt2o.transfer import cap, nearest_neighbours, transfer_step


def quadratic_toy(
    a: Sequence[float],
    b: Sequence[float],
    weights: Sequence[float],
    theta0: Sequence[float],
    *,
    steps: int = 100,
    lr: float = 0.05,
    transfer: str = "mt2o",
    period: int = 5,
    neighbours: int = 2,
    coefficients: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5),
    beta0: float = 0.5,
    decay_fraction: float = 0.75,
) -> dict[str, np.ndarray]:
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
            new, _ = transfer_step(
                [[theta[k]] for k in range(K)], lambda k, s: g(k, s[0]), nbrs, coefficients, beta, rule=transfer
            )
            theta = torch.stack([s[0] for s in new])
        traj.append(theta.clone())
        vals.append([g(k, theta[k]) for k in range(K)])
    optimum = w[:, None] * a_t + (1 - w[:, None]) * b_t
    return dict(theta=torch.stack(traj).numpy(), g=np.asarray(vals), optimum=optimum.numpy())
