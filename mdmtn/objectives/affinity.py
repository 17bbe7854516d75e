"""Affinity Propagation (Frey & Dueck, 2007) that gives scikit-learn's labels, several times faster.

Phase 2 clusters the rows of every GrOWL layer once (:func:`mdmtn.objectives.growl.cluster_rows`).
A layer of MDMTN's monitors has up to 7,200 rows; scikit-learn's loop makes about thirty passes over
its n × n float64 arrays per iteration, for up to 200 iterations, and was the largest piece of a
Cifar10Mnist MDMTN run outside its epochs.

Here one compiled loop (numba) does each iteration in two sweeps over the rows: the
responsibilities of a row and that row's share of the column sums in the first, the availabilities
in the second. Each element gets the same float64 operations, in the same order, as scikit-learn's
NumPy expressions give it: ``R·d + R_new·(1 − d)``, column sums added row after row as NumPy's
``sum(axis=0)`` adds them, no fused multiply-add and no reordered sum (only the row maxima, which
are exact in any order, are vectorised). The noise
scikit-learn adds to S, its convergence test and its exemplar refinement run as NumPy code copied from
it. Without numba, scikit-learn itself runs. The tests compare labels, exemplars and the iteration
count with scikit-learn on random, degenerate and trained-model matrices, and the messages after a
number of iterations bit for bit.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = ["affinity_propagation", "sklearn_affinity_propagation", "COMPILED"]

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is in requirements.txt; scikit-learn is the fallback
    njit = None

COMPILED = njit is not None  # whether the compiled loop runs (else scikit-learn's)


def _compile(f):
    """``f`` compiled with the flags below, cached on disk where numba finds a writable place. A
    cache index that does not unpickle (a killed writer, a damaged disk) is removed first, with a
    warning, so that numba compiles afresh instead of failing with a traceback at the first call."""
    try:
        compiled = njit(fastmath=_FASTMATH, cache=True)(f)
    except RuntimeError:  # no writable cache directory: compile in each process instead
        return njit(fastmath=_FASTMATH)(f)
    _drop_damaged_index(compiled)
    return compiled


def _drop_damaged_index(compiled) -> None:
    import pickle
    import warnings

    # numba's own layout (numba.core.caching.IndexDataCacheFile): a pickled version, then the
    # pickled (source stamp, overloads); read here the way numba reads it
    index = getattr(getattr(getattr(compiled, "_cache", None), "_cache_file", None), "_index_path", None)
    if index is None or not os.path.exists(index):
        return
    try:
        with open(index, "rb") as fh:
            pickle.load(fh)
            stamp, overloads = pickle.loads(fh.read())
        for name in dict(overloads).values():  # the compiled code each entry points to
            with open(os.path.join(os.path.dirname(index), name), "rb") as fh:
                pickle.loads(fh.read())
    except FileNotFoundError:
        return  # a data file gone: numba itself recompiles that entry
    except Exception as e:  # noqa: BLE001 - anything numba's reader would trip over
        warnings.warn(
            f"numba cache index {index} is damaged ({type(e).__name__}); removed, compiling afresh", stacklevel=3
        )
        try:
            os.unlink(index)
        except OSError:
            pass


def affinity_propagation(
    S: np.ndarray,
    preference: float,
    *,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    random_state: int | np.random.RandomState | None = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cluster by Affinity Propagation on a precomputed similarity matrix.

    The result of ``sklearn.cluster.AffinityPropagation(affinity="precomputed", preference=
    preference, damping=damping, max_iter=max_iter, convergence_iter=convergence_iter,
    random_state=random_state).fit(S)`` (scikit-learn 1.x), including its warnings.

    Args:
        S: ``(n, n)`` similarities (float64; not modified).
        preference: the value placed on S's diagonal (the same for every point).
        damping: in ``[0.5, 1)``.
        random_state: seed or ``RandomState`` of the tie-breaking noise added to S.

    Returns:
        ``(cluster_centers_indices (K,), labels (n,), n_iter)``; labels are ``-1`` (and K = 0)
        when no exemplar emerged.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state

    S = np.array(S, dtype=np.float64, copy=True)
    n = S.shape[0]
    if S.ndim != 2 or S.shape[1] != n:
        raise ValueError(f"S must be square, got shape {S.shape}")
    if not 0.5 <= damping < 1:
        raise ValueError(f"damping must be in [0.5, 1), got {damping}")
    if not COMPILED:  # pragma: no cover
        return sklearn_affinity_propagation(
            S,
            preference,
            damping=damping,
            max_iter=max_iter,
            convergence_iter=convergence_iter,
            random_state=random_state,
        )
    rs = check_random_state(random_state)
    pref = np.asarray(preference, dtype=np.float64)
    if n == 1 or _equal_similarities_and_preferences(S, pref):
        warnings.warn("All samples have mutually equal similarities. Returning arbitrary cluster center(s).")
        if pref.flat[0] > S.flat[n - 1]:
            return np.arange(n), np.arange(n), 0
        return np.array([0]), np.array([0] * n), 0

    S.flat[:: n + 1] = pref
    S += (np.finfo(S.dtype).eps * S + np.finfo(S.dtype).tiny * 100) * rs.standard_normal(size=(n, n))
    A = np.zeros((n, n))
    R = np.zeros((n, n))
    e = np.zeros((n, convergence_iter))
    it, never_converged = _iterate(S, A, R, float(damping), 1 - damping, int(max_iter), int(convergence_iter), e)
    E = (np.diag(A) + np.diag(R)) > 0  # the last iteration's, as scikit-learn keeps it

    I = np.flatnonzero(E)
    K = I.size
    if K == 0:
        warnings.warn(
            "Affinity propagation did not converge and this model will not have any cluster centers.",
            ConvergenceWarning,
        )
        return np.array([], dtype=np.int64), np.array([-1] * n), it + 1
    if never_converged:
        warnings.warn(
            "Affinity propagation did not converge, this model may return degenerate cluster centers and labels.",
            ConvergenceWarning,
        )
    c = np.argmax(S[:, I], axis=1)
    c[I] = np.arange(K)
    for k in range(K):  # refine each cluster's exemplar
        ii = np.asarray(c == k).nonzero()[0]
        j = np.argmax(np.sum(S[ii[:, np.newaxis], ii], axis=0))
        I[k] = ii[j]
    c = np.argmax(S[:, I], axis=1)
    c[I] = np.arange(K)
    labels = I[c]
    centers = np.unique(labels)
    return centers, np.searchsorted(centers, labels), it + 1


# ``nnan`` and ``nsz`` let LLVM vectorise the row maxima; neither ``contract`` (fused multiply-add) nor
# ``reassoc`` is given, so every product and sum is rounded as NumPy rounds it. Only the sign of a zero
# may differ from scikit-learn's, and no comparison sees a zero's sign.
_FASTMATH = {"nnan", "nsz"}


def _rowmax_py(v: np.ndarray, lo: int, hi: int) -> float:
    """max(v[lo:hi]) (−inf when empty)."""
    m = -np.inf
    for j in range(lo, hi):
        x = v[j]
        m = x if x > m else m
    return m


_rowmax = _compile(_rowmax_py) if COMPILED else _rowmax_py


def _iterate_py(
    S: np.ndarray,
    A: np.ndarray,
    R: np.ndarray,
    damping: float,
    keep: float,
    max_iter: int,
    convergence_iter: int,
    e: np.ndarray,
) -> tuple[int, bool]:
    """The message passing, in place on A and R (n × n); returns (last iteration, never converged).

    Per element, the operations of scikit-learn's loop (``keep`` = 1 − damping, the same double):
    R ← R·d + R_new·keep with R_new = S − max_{k≠j}(A + S) of the row; A ← A·d − T·keep with
    T = max(R⁺ − colsum(R⁺), 0) off the diagonal and R − colsum(R⁺) on it, R⁺ = max(R, 0) off the
    diagonal. Compiled by numba; as Python it is the readable (and very slow) reference."""
    n = S.shape[0]
    colsum = np.empty(n)
    v = np.empty(n)
    for it in range(max_iter):
        colsum[:] = 0.0
        for i in range(n):  # responsibilities, and the column sums of R⁺ row after row (as sum(axis=0))
            Ai, Si, Ri = A[i], S[i], R[i]
            for j in range(n):
                v[j] = Ai[j] + Si[j]
            best = _rowmax(v, 0, n)
            idx = 0
            while v[idx] != best:  # the first index of the maximum, as argmax
                idx += 1
            second = max(_rowmax(v, 0, idx), _rowmax(v, idx + 1, n))
            r_idx = Ri[idx] * damping + (Si[idx] - second) * keep
            for j in range(n):
                Ri[j] = Ri[j] * damping + (Si[j] - best) * keep
            Ri[idx] = r_idx
            for j in range(i):
                r = Ri[j]
                colsum[j] += r if r >= 0.0 else 0.0
            colsum[i] += Ri[i]
            for j in range(i + 1, n):
                r = Ri[j]
                colsum[j] += r if r >= 0.0 else 0.0
        for i in range(n):  # availabilities
            Ai, Ri = A[i], R[i]
            a_ii = Ai[i] * damping - (Ri[i] - colsum[i]) * keep
            for j in range(n):
                r = Ri[j]
                t = (r if r >= 0.0 else 0.0) - colsum[j]
                t = t if t >= 0.0 else 0.0
                Ai[j] = Ai[j] * damping - t * keep
            Ai[i] = a_ii
        K = 0
        for i in range(n):
            E = (A[i, i] + R[i, i]) > 0
            e[i, it % convergence_iter] = E
            K += E
        if it >= convergence_iter:
            settled = 0
            for i in range(n):
                se = 0.0
                for c in range(convergence_iter):
                    se += e[i, c]
                if se == convergence_iter or se == 0:
                    settled += 1
            if settled == n and K > 0:
                return it, False
    return max_iter - 1, True


_iterate = _compile(_iterate_py) if COMPILED else _iterate_py


def sklearn_affinity_propagation(
    S: np.ndarray,
    preference: float,
    *,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    random_state: int | np.random.RandomState | None = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """scikit-learn's own Affinity Propagation, with :func:`affinity_propagation`'s arguments and
    result: the fallback without numba, and the reference the benchmarks time it against."""
    from sklearn.cluster import AffinityPropagation

    ap = AffinityPropagation(
        affinity="precomputed",
        preference=preference,
        damping=damping,
        max_iter=max_iter,
        convergence_iter=convergence_iter,
        random_state=random_state,
    ).fit(S)
    return np.asarray(ap.cluster_centers_indices_), ap.labels_, ap.n_iter_


def _equal_similarities_and_preferences(S: np.ndarray, preference: np.ndarray) -> bool:
    """scikit-learn's degenerate case: all off-diagonal similarities equal, and all preferences equal.

    The same answer as scikit-learn's test, row by row so that the usual case (row 0 already
    differs) costs O(n) instead of two n² copies (7 s at n = 7,200 on this project's CPU)."""
    if not np.all(preference == preference.flat[0]):
        return False
    n = S.shape[0]
    first = S[0, 1]  # the first off-diagonal entry, as scikit-learn's S[mask].flat[0]
    for i in range(n):
        if not (np.all(S[i, :i] == first) and np.all(S[i, i + 1 :] == first)):
            return False
    return True
