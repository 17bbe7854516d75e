"""Pareto tools for sweeps: ε-nondominance, hypervolume, clusters, supported points.

Dominance and hypervolume are computed by moocore; this module only arranges the data the way
the paper does (book appendix). A run's objective vector (its last-epoch training losses L0, L1, L2,
each the sum over batches of the batch-mean loss divided by N_train) is read from its record by
:func:`mdmtn.study.selection.objective_vectors`.
"""

from __future__ import annotations

from typing import Sequence

import moocore
import numpy as np


def nondominated(points: np.ndarray, eps: float | Sequence[float] = 0.0) -> np.ndarray:
    """Boolean mask of the ε-nondominated rows of ``points`` (n, m), all objectives minimised.

    Point i is removed if some other point j satisfies p_j ≤ p_i − ε componentwise, strictly in
    at least one component (Peitz & Dellnitz's ε-test; ε = 0 is exact Pareto dominance).
    Duplicated non-dominated points are all kept. Each test is a moocore dominance query.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"points must be (n, m), got shape {p.shape}")
    eps_v = np.broadcast_to(np.asarray(eps, dtype=float), (p.shape[1],))
    if not eps_v.any():
        return np.asarray(moocore.is_nondominated(p, keep_weakly=True), dtype=bool)
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        others = np.delete(p, i, axis=0)
        # i is ε-dominated iff the shifted point p_i − ε is dominated by one of the others
        probe = np.vstack([others, p[i] - eps_v])
        keep[i] = bool(moocore.is_nondominated(probe, keep_weakly=True)[-1])
    return keep


def hypervolume(points: np.ndarray, ref: Sequence[float]) -> float:
    """Hypervolume (minimisation) of ``points`` (n, m) w.r.t. reference point ``ref`` (m,)."""
    p = np.asarray(points, dtype=float)
    return float(moocore.hypervolume(p, ref=np.asarray(ref, dtype=float))) if len(p) else 0.0


def sparsity_clusters(sr_percent: Sequence[float], d: float = 0.1) -> np.ndarray:
    """Greedy grouping of runs by sparsity rate, as the authors' ``neigh_clts`` (book appendix):
    taking runs in order, each unassigned run seeds a cluster of all unassigned runs whose
    SR/100 lies within ``d`` of its own. Returns (n,) int labels."""
    sr = np.asarray(sr_percent, dtype=float) / 100.0
    labels = np.full(len(sr), -1)
    c = 0
    for i in range(len(sr)):
        if labels[i] >= 0:
            continue
        labels[(labels < 0) & (np.abs(sr - sr[i]) <= d)] = c
        c += 1
    return labels


def supported(points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Boolean mask of the rows of ``points`` (n, m), all objectives minimised, that minimise some
    weighted sum ``w · p`` with weights ``w >= 0`` summing to 1 over the set: the points on its
    lower-left convex hull, which a weighted-sum scalarisation can reach. A front whose points are
    all supported is convex. Each point is one small feasibility LP (SciPy's HiGHS): find w in the
    simplex with ``w · (q - p) >= -tol`` for every row q."""
    from scipy.optimize import linprog

    p = np.asarray(points, dtype=float)
    n, m = p.shape
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        diff = p - p[i]  # (n, m): rows q - p_i
        res = linprog(
            np.zeros(m),
            A_ub=-diff,
            b_ub=np.full(n, tol),
            A_eq=np.ones((1, m)),
            b_eq=[1.0],
            bounds=[(0, None)] * m,
            method="highs",
        )
        out[i] = res.status == 0
    return out
