"""Modified weighted Chebyshev scalarisation solved by an augmented Lagrangian (paper eq. IV).

Objectives f = (L0, L1, ..., Lm): L0 the GrOWL sparsity value, L1..Lm the task losses.
For a preference vector k and reference point a, the constraints are

    H_i(x, t) = k_i·[(f_i − a_i) + ε·Σ_j (f_j − a_j)] − t ≤ 0,

and each mini-batch minimises L_A = t + Σ_i λ_i H_i + (μ/2)·Σ_i H_i².
As in the paper and the authors' code the penalty acts on every H_i, signed (inequalities
treated as equalities), and λ is updated without projection (the book's appendix on the authors' code).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ChebyshevAL(nn.Module):
    """Augmented-Lagrangian form of the modified weighted Chebyshev problem.

    Parameters
    ----------
    k : preference vector (m+1,), k_i ≥ 0, Σ k = 1.
    mu0 : initial penalty μ.
    eps : Kaliszewski augmentation ε (1e-4 in the paper).
    reference : reference point a (m+1,); the paper uses 0 (all losses are positive).
    generator : RNG for the initial value of t ~ N(0, 1) (the authors leave it unseeded).

    The learned scalar ``t`` is a parameter of this module; λ (``lam``) and μ (``mu``) are
    buffers updated by :meth:`update_multipliers`, never by gradient.
    """

    def __init__(
        self,
        k: Sequence[float],
        mu0: float,
        eps: float = 1e-4,
        reference: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        n = len(k)
        self.register_buffer("k", torch.tensor(k, dtype=torch.float32))
        self.register_buffer("a", torch.zeros(n) if reference is None else torch.tensor(reference, dtype=torch.float32))
        self.eps = float(eps)
        self.t = nn.Parameter(torch.randn((), generator=generator))
        self.register_buffer("lam", torch.empty(n))
        self.register_buffer("mu", torch.empty(()))
        self.reset_multipliers(mu0)

    def reset_multipliers(self, mu0: float) -> None:
        """λ = 1/(m+1) each and μ = μ0, as at the start of every training stage."""
        self.lam.fill_(1.0 / len(self.k))
        self.mu.fill_(mu0)

    def constraints(self, losses: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """H(x, t), shape (m+1,), from the objective values ``losses`` (m+1,); ``t`` replaces this
        module's t (a stacked run's slice of a shared tensor)."""
        d = losses - self.a
        return self.k * (d + self.eps * d.sum()) - (self.t if t is None else t)

    def forward(self, losses: torch.Tensor, t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (L_A, H) for objective values (m+1,); L_A is a scalar."""
        h = self.constraints(losses, t)
        return (self.t if t is None else t) + (self.lam * h).sum() + 0.5 * self.mu * (h * h).sum(), h

    @torch.no_grad()
    def update_multipliers(self, h_sum: torch.Tensor, mu_factor: float) -> None:
        """λ ← λ + μ·H_best, then μ ← factor·μ (the book appendix: H_best is the per-batch sum of H over
        the epoch with the best validation accuracy so far in this stage)."""
        self.lam.add_(self.mu * h_sum.to(self.lam))
        self.mu.mul_(mu_factor)


def weighted_sum_loss(losses: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Linear scalarisation Σ w_i f_i, for comparisons with the Chebyshev form."""
    return (losses * torch.as_tensor(weights, dtype=losses.dtype)).sum()
