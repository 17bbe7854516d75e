"""A two-objective toy problem with a non-convex Pareto front (book chapter "Why Chebyshev").

Decision variable θ ∈ R, s = sigmoid(θ) ∈ (0, 1); objectives f1 = s and f2 = 1 − s².
The front {(s, 1 − s²)} lies above the chord between its end points, so every weighted sum
w1·f1 + w2·f2 is minimised at an end point (s → 0 or s → 1): the weighted sum cannot reach
the interior of the front. The weighted Chebyshev problem min max_i k_i f_i can: its solution
equalises k1·f1 = k2·f2, i.e. s* solves k2·s² + k1·s − k2 = 0.

Both are solved here by gradient steps, the Chebyshev one through the same
:class:`mdmtn.objectives.scalarization.ChebyshevAL` used for the networks (ε = 0, no sparsity objective).
"""

from __future__ import annotations

import math

import torch

from mdmtn.objectives.scalarization import ChebyshevAL


def objectives(theta: torch.Tensor) -> torch.Tensor:
    """(f1, f2) at θ, shape (2,)."""
    s = torch.sigmoid(theta)
    return torch.stack([s, 1 - s * s])


def front(n: int = 200) -> torch.Tensor:
    """(n, 2) points of the analytic Pareto front."""
    s = torch.linspace(0, 1, n)
    return torch.stack([s, 1 - s * s], dim=1)


def chebyshev_solution(k: tuple[float, float]) -> tuple[float, float]:
    """Analytic minimiser of max(k1 f1, k2 f2) on the front."""
    k1, k2 = k
    s = (-k1 + math.sqrt(k1 * k1 + 4 * k2 * k2)) / (2 * k2)
    return s, 1 - s * s


def solve_weighted_sum(
    w: tuple[float, float], theta0: float = 0.3, steps: int = 400, lr: float = 0.1
) -> tuple[float, float]:
    """Minimise w1·f1 + w2·f2 by Adam from θ0; returns the final (f1, f2)."""
    theta = torch.tensor(theta0, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    for _ in range(steps):
        f = objectives(theta)
        loss = w[0] * f[0] + w[1] * f[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tuple(objectives(theta).tolist())


def solve_chebyshev(
    k: tuple[float, float],
    theta0: float = 0.3,
    outer: int = 15,
    inner: int = 60,
    lr: float = 0.05,
    mu0: float = 10.0,
    mu_factor: float = 1.0,
) -> tuple[float, float]:
    """Minimise t s.t. k_i f_i ≤ t by the augmented Lagrangian of :class:`ChebyshevAL`
    (Adam on θ and t for ``inner`` steps, then λ ← λ + μ·H); returns the final (f1, f2)."""
    theta = torch.tensor(theta0, requires_grad=True)
    al = ChebyshevAL(k, mu0=mu0, eps=0.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        al.t.fill_(0.5)
    opt = torch.optim.Adam([theta, al.t], lr=lr)
    for _ in range(outer):
        for _ in range(inner):
            la, h = al(objectives(theta))
            opt.zero_grad()
            la.backward()
            opt.step()
        with torch.no_grad():
            al.update_multipliers(al.constraints(objectives(theta)), mu_factor)
    return tuple(objectives(theta).tolist())
