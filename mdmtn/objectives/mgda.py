"""Min-norm solver for MGDA / MGDA-UB (Sener & Koltun, NeurIPS 2018).

MGDA picks task weights ``a`` on the probability simplex that minimise the norm of the
combined gradient, ``min_a || sum_t a_t g_t ||^2`` (the "min-norm element of the convex
hull" of the task gradients). If the minimum is 0 the point is Pareto-stationary;
otherwise ``-sum_t a_t g_t`` is a descent direction for every task.

* ``T == 2``: exact closed form (Sener's line solver, clipped to [0, 1]).
* ``T > 2``: Frank-Wolfe with exact line search on the Gram matrix ``M = G G^T`` (float64,
  computed once), started at Sener's best-pair solution as in his ``MinNormSolver``. We add
  *away steps* (Lacoste-Julien & Jaggi 2015). Plain FW, as in Sener's code, zig-zags and
  converges only as O(1/k) when the optimum lies on a face of the simplex, which is the
  usual case. The away-step variant converges linearly for ``||G^T a||^2``. When no away
  step is better it takes the same steps as plain FW. Linear convergence can still be very
  slow when ``G`` is rank-deficient (``D < T``). Each iteration therefore ends with a
  fully-corrective step: an exact solve on the current face, clipped to the simplex.

The paper's MGDA baseline (book appendix) uses plain MGDA on shared-*parameter* gradients with no
normalisation. Its solver starts FW at (1/2, 1/2) and stops after 10 iterations or when the
step is <= 1e-4. For its 2 tasks that gives the same exact solution as the closed form here.
The MGDA-UB representation gradients and the normalisations below are Sener's options.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor

__all__ = ["min_norm_coefficients", "normalize_gradients", "shared_representation_grads"]


def _line_min(aa: float, ab: float, bb: float) -> tuple[float, float]:
    """Return ``gamma`` in [0, 1] minimising ``||gamma x + (1-gamma) y||^2``, and the minimum.

    Arguments are the inner products ``aa = x.x``, ``ab = x.y``, ``bb = y.y``.
    """
    den = aa + bb - 2.0 * ab  # = ||x - y||^2
    # If x == y (up to round-off) every gamma is optimal. Take 1/2 (symmetric) rather than
    # dividing by ~0.
    if den <= 1e-12 * max(aa + bb, 1e-300):
        return 0.5, max(0.25 * (aa + bb + 2.0 * ab), 0.0)
    gamma = min(max((bb - ab) / den, 0.0), 1.0)
    val = gamma * gamma * aa + 2.0 * gamma * (1.0 - gamma) * ab + (1.0 - gamma) ** 2 * bb
    return gamma, max(val, 0.0)


def min_norm_coefficients(
    grads: Tensor, max_iter: int = 250, tol: float = 1e-6, *, check_finite: bool = True
) -> Tensor:
    """Simplex weights ``a`` that minimise ``|| grads^T a ||^2``.

    Args:
        grads: ``(T, D)`` task gradients, one row per task. Any float dtype. The solve is
            done in float64.
        max_iter: maximum number of Frank-Wolfe iterations (used only when ``T > 2``).
        tol: stop when the Frank-Wolfe duality gap ``2 (f(a) - min_i (M a)_i)``, an upper
            bound on ``f(a) - f*``, is ``<= tol * f(a)``. The absolute floor is
            ``1e-14 * max_i M_ii``, so that a zero optimum also stops.
        check_finite: raise ``ValueError`` on a non-finite gradient. That test reads a value
            back from the device; a training step passes False and flags divergence itself.
            With ``T == 2`` and ``check_finite=False`` the solve never waits for the device
            (non-finite gradients then give NaN weights); ``T > 2`` runs Frank-Wolfe on the host.

    Returns:
        ``(T,)`` tensor with ``a >= 0`` and ``sum(a) == 1``, on ``grads``' device with its
        dtype (float64 if ``grads`` is not floating).
    """
    if grads.dim() != 2 or grads.shape[0] == 0:
        raise ValueError(f"grads must have shape (T>=1, D), got {tuple(grads.shape)}")
    T = grads.shape[0]
    out_dtype = grads.dtype if grads.is_floating_point() else torch.float64
    if T == 1:
        return torch.ones(1, dtype=out_dtype, device=grads.device)

    G = grads.detach().to(torch.float64)
    # A NaN or inf in row t makes ||g_t||^2 non-finite. Checking these T numbers is much
    # cheaper than scanning all T*D entries.
    sq = (G * G).sum(dim=1)
    if check_finite and not bool(torch.isfinite(sq).all()):
        raise ValueError("grads contain non-finite values")

    def _out(a: Tensor) -> Tensor:
        return a.to(device=grads.device, dtype=out_dtype)

    if T == 2:
        # Use the difference vector directly instead of Gram entries. This avoids the
        # cancellation in M11 + M22 - 2 M12 when g1 ~ g2.
        # Kept on the device (no host round trip per step); the float64 operations are the
        # ones a host computation of the same formula performs, so the weights are the same bits.
        d = G[0] - G[1]
        den = d @ d
        gamma = (-(d @ G[1]) / den).clamp(0.0, 1.0)
        identical = den <= 1e-24 * sq.sum()  # identical gradients: every point is optimal
        gamma = torch.where(identical, torch.full_like(gamma, 0.5), gamma)
        return _out(torch.stack([gamma, 1.0 - gamma]))

    # From here on only the Gram matrix is needed, and it is (T, T) and small: do it on CPU.
    M = (G @ G.T).cpu()
    diag = M.diagonal()
    abs_floor = 1e-14 * float(diag.max()) + 1e-300

    # Sener's initialisation: the best solution over all pairs (i, j).
    best = (float("inf"), 0, 1, 0.5)
    for i in range(T):
        for j in range(i + 1, T):
            g, v = _line_min(float(M[i, i]), float(M[i, j]), float(M[j, j]))
            if v < best[0]:
                best = (v, i, j, g)
    _, i, j, g = best
    a = torch.zeros(T, dtype=torch.float64)
    a[i], a[j] = g, 1.0 - g

    for _ in range(max_iter):
        Ma = M @ a
        f = float(a @ Ma)
        s = int(torch.argmin(Ma))  # Frank-Wolfe vertex (the linear minimiser over the simplex).
        gap_fw = f - float(Ma[s])  # = (1/2) <grad f, a - e_s> >= (f - f*) / 2
        if 2.0 * gap_fw <= tol * f + abs_floor:
            break
        support = a > 0
        Ma_sup = torch.where(support, Ma, torch.tensor(-float("inf"), dtype=torch.float64))
        v = int(torch.argmax(Ma_sup))  # away vertex (the worst vertex in the active set)
        gap_aw = float(Ma[v]) - f
        if gap_fw >= gap_aw:
            d = -a.clone()
            d[s] += 1.0
            gmax = 1.0
        else:
            d = a.clone()
            d[v] -= 1.0
            gmax = float(a[v] / (1.0 - a[v])) if a[v] < 1.0 else 0.0
        # Exact line search for the quadratic: f(a + g d) = f + 2 g d.Ma + g^2 d.Md.
        dMa, dMd = float(d @ Ma), float(d @ (M @ d))
        if dMd > 0.0:
            step = min(max(-dMa / dMd, 0.0), gmax)
        else:
            step = gmax if dMa < 0.0 else 0.0
        if step <= 0.0:
            break
        a = a + step * d
        if step == gmax and gap_fw < gap_aw:
            a[v] = 0.0  # a "drop step": remove the away vertex exactly, not up to round-off.
        a.clamp_(min=0.0)
        a /= a.sum()  # undo drift off the simplex from floating-point error
        a = _face_step(M, a)
    return _out(a)


def _face_step(M: Tensor, a: Tensor) -> Tensor:
    """Move ``a`` toward the minimiser of ``x^T M x`` on the affine hull of its support.

    This is a fully-corrective step: an active-set step, as in the active-set QP method.
    Frank-Wolfe steps, even with away steps, can take thousands of iterations when ``M`` is
    rank-deficient (``D < T``; the optimum is 0 or near it). Once FW has found the optimal
    face, this step solves it exactly. The step is clipped to stay on the simplex, and the
    coordinate that hits zero is dropped. It is kept only if the objective does not increase.

    Args:
        M: ``(T, T)`` float64 Gram matrix.
        a: ``(T,)`` current simplex point.
    """
    S = torch.nonzero(a > 0).flatten()
    k = S.numel()
    if k < 2:
        return a
    # KKT of min x^T M_SS x s.t. 1^T x = 1:  [M_SS 1; 1^T 0] [x; mu] = [0; 1].
    # gelsd handles a singular M_SS (it returns one minimiser among many).
    K = torch.zeros(k + 1, k + 1, dtype=torch.float64)
    K[:k, :k] = M[S][:, S]
    K[:k, k] = K[k, :k] = 1.0
    rhs = torch.zeros(k + 1, 1, dtype=torch.float64)
    rhs[k] = 1.0
    b = torch.linalg.lstsq(K, rhs, driver="gelsd").solution[:k, 0]
    d = b - a[S]
    neg = d < 0
    # Ratio test: the largest step along d that stays nonnegative, capped at 1 (the minimiser).
    step = min(1.0, float((a[S][neg] / -d[neg]).min())) if bool(neg.any()) else 1.0
    new = a.clone()
    new[S] = a[S] + step * d
    if step < 1.0:
        new[S[neg][torch.argmin(a[S][neg] / -d[neg])]] = 0.0  # the blocking coordinate
    new.clamp_(min=0.0)
    new /= new.sum()
    return new if float(new @ M @ new) <= float(a @ M @ a) else a


def normalize_gradients(grads: Tensor, losses: Tensor, kind: Literal["none", "l2", "loss", "loss+"]) -> Tensor:
    """Sener & Koltun's gradient normalisation, applied before the min-norm solve.

    Row ``t`` is divided by ``n_t``:
    ``none`` -> 1, ``l2`` -> ``||g_t||``, ``loss`` -> ``L_t``, ``loss+`` -> ``L_t ||g_t||``.

    Args:
        grads: ``(T, D)``.
        losses: ``(T,)`` loss values (detached; only the values are used).
        kind: one of the four options above.

    Returns:
        ``(T, D)`` normalised gradients. Where ``n_t == 0`` (a zero gradient or zero loss), the
        row is left unchanged. Sener's code would produce NaN there.
    """
    if kind == "none":
        return grads
    losses = losses.detach().to(device=grads.device, dtype=grads.dtype).reshape(-1)
    if losses.numel() != grads.shape[0]:
        raise ValueError("losses must have one entry per gradient row")
    norms = grads.detach().norm(dim=1)
    if kind == "l2":
        n = norms
    elif kind == "loss":
        n = losses
    elif kind == "loss+":
        n = losses * norms
    else:
        raise ValueError(f"unknown normalisation {kind!r}")
    n = torch.where(n == 0, torch.ones_like(n), n)
    return grads / n[:, None]


def shared_representation_grads(losses: Sequence[Tensor], rep: Tensor) -> Tensor:
    """Per-task gradients w.r.t. the shared representation ``z`` (MGDA-UB).

    Args:
        losses: ``T`` scalar losses, each depending on ``rep`` through the graph.
        rep: the shared representation, e.g. ``(B, ...)``. It is flattened over the batch.

    Returns:
        ``(T, rep.numel())`` detached gradients. A task that does not use ``rep`` gets a zero
        row. The graph is retained, so the weighted loss can still be backpropagated.
    """
    rows = []
    for loss in losses:
        (g,) = torch.autograd.grad(loss, rep, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(rep).reshape(-1) if g is None else g.detach().reshape(-1))
    return torch.stack(rows)
