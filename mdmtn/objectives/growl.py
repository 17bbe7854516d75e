"""GrOWL sparsity objective, OWL proximal step, η2 row cap and phase-2 parameter tying.

Implements the paper's GrOWL (default = paper semantics) with switches for the authors' code, each
described in the book's appendix on the authors' code.

Vocabulary
----------
* A regularised weight tensor is reshaped to a 2-D matrix ``W`` of shape ``(n_rows, row_len)`` whose
  **rows are the groups** of GrOWL (one row per *input* neuron / input channel of the layer), see
  :func:`weight_rows`.
* ``z`` / ``r`` are the row L2 norms, shape ``(n_rows,)``.
* ``theta`` is the OWL weight vector, non-increasing, shape ``(n_rows,)``; GrOWL-Spike
  (:func:`spike_theta`) is ``theta_1 = beta1 + beta2``, ``theta_i = beta2`` for ``i >= 2``.

Compat switches
---------------
* ``conv_rows``: ``"paper"`` — conv rows are input channels (permute ``(out,in,kh,kw) -> (in,out,kh,kw)``
  and flatten); ``"code"`` — the authors' memory-order ``w.view(in, -1)`` (row ``r`` holds whole output
  filters, departure #4).
* ``order`` (penalty value): ``"paper"`` largest theta on the largest norm; ``"code"`` norms sorted
  ascending.
* ``mode`` (prox): ``"exact"`` OWL prox via isotonic regression; ``"head"`` the authors' approximate
  pooling; ``"2023"`` the same with theta permuted by the rows' ascending rank.
* ``rule`` (η2 cap): ``"head"`` / ``"2023"``.

Everything is vectorised (departure #30): no Python loops over rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ConvRows",
    "ProxMode",
    "weight_rows",
    "rows_to_weight",
    "spike_theta",
    "growl_penalty",
    "owl_prox",
    "growl_prox_",
    "apply_row_cap_",
    "cap_count",
    "similarity_matrix",
    "cluster_rows",
    "tie_rows_",
    "LayerPlan",
    "plan_tying",
    "enforce_plan_",
]

ConvRows = Literal["paper", "code"]
ProxMode = Literal["exact", "head", "2023"]

#: Rows whose norm is below this are treated as zero by the prox (the authors use float32 eps).
_F32_EPS = float(torch.finfo(torch.float32).eps)
#: The authors' pooling loop runs ``while k <= max_its`` with ``max_its = 1000``: at most 1001 passes.
_HEAD_MAX_PASSES = 1001


def _check_conv_rows(conv_rows: str) -> None:
    if conv_rows not in ("paper", "code"):
        raise ValueError(f"conv_rows must be 'paper' or 'code', got {conv_rows!r}")


# ---------------------------------------------------------------------------------------------------
# Reshaping
# ---------------------------------------------------------------------------------------------------
def weight_rows(w: Tensor, conv_rows: ConvRows = "paper") -> Tensor:
    """Reshape a weight tensor into its GrOWL row matrix.

    Args:
        w: ``Linear`` weight of shape ``(out, in)`` or conv weight of shape ``(out, in, *kernel)``.
        conv_rows: ``"paper"`` (rows = input channels) or ``"code"`` (authors' ``view(in, -1)``).

    Returns:
        2-D tensor ``(n_rows, row_len)`` with ``n_rows = in``:

        * Linear: ``w.t()`` (``(in, out)``), so row ``i`` = all outgoing weights of input neuron ``i``.
          This is a view (no copy).
        * Conv, ``"paper"``: ``w.transpose(0, 1).reshape(in, -1)`` — row ``i`` holds ``w[:, i]``
          (``out * kh * kw`` entries, ordered ``(out, kh, kw)``). A copy.
        * Conv, ``"code"``: ``w.reshape(in, -1)`` in memory order — row ``r`` holds output filters
          ``r*out/in ... (r+1)*out/in - 1``. A view when ``w`` is contiguous.

    Writes into the result are therefore not guaranteed to reach ``w``; use :func:`rows_to_weight` and
    ``w.copy_`` to write back.
    """
    _check_conv_rows(conv_rows)
    if w.ndim < 2:
        raise ValueError(f"weight_rows needs a tensor with ndim >= 2, got shape {tuple(w.shape)}")
    if w.ndim == 2:
        return w.t()
    n_in = w.shape[1]
    if conv_rows == "paper":
        return w.transpose(0, 1).reshape(n_in, -1)
    return w.reshape(n_in, -1)


def rows_to_weight(rows: Tensor, shape: Sequence[int] | torch.Size, conv_rows: ConvRows = "paper") -> Tensor:
    """Inverse of :func:`weight_rows`.

    Args:
        rows: ``(n_rows, row_len)`` row matrix.
        shape: the original weight shape ``(out, in, *kernel)`` or ``(out, in)``.
        conv_rows: the semantics used to produce ``rows``.

    Returns:
        Tensor of shape ``shape`` (possibly a view of ``rows``).
    """
    _check_conv_rows(conv_rows)
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have >= 2 dims, got {shape}")
    if len(shape) == 2:
        return rows.t()
    if conv_rows == "paper":
        out, n_in, *kernel = shape
        return rows.reshape(n_in, out, *kernel).transpose(0, 1)
    return rows.reshape(shape)


# ---------------------------------------------------------------------------------------------------
# Penalty
# ---------------------------------------------------------------------------------------------------
def spike_theta(
    n: int,
    beta1: float = 0.8,
    beta2: float = 0.2,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """GrOWL-Spike weights (paper App. A; β values from the code): shape ``(n,)``,
    ``theta[0] = beta1 + beta2`` and ``theta[i] = beta2`` for ``i >= 1`` (non-increasing when β1 >= 0)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    theta = torch.full((n,), float(beta2), dtype=dtype, device=device)
    if n > 0:
        theta[0] = float(beta1) + float(beta2)
    return theta


def growl_penalty(
    weights: Sequence[Tensor],
    beta1: float = 0.8,
    beta2: float = 0.2,
    conv_rows: ConvRows = "paper",
    order: Literal["paper", "code"] = "paper",
) -> Tensor:
    """GrOWL-Spike value L0 = Σ_layers Σ_i θ_i · r_[i] (scalar tensor).

    Args:
        weights: regularised weight tensors (any device; the result lives on the first one's device).
        beta1, beta2: spike parameters.
        conv_rows: row semantics for conv weights.
        order: ``"paper"`` sorts the row norms descending (largest θ on the largest norm, i.e.
            β2·Σr + β1·max r); ``"code"`` sorts ascending as the authors' code does (β2·Σr + β1·min r).

    Differentiable w.r.t. the weights (the L2 norm's subgradient at a zero row is 0); the caller detaches
    if it wants the authors' prox-only behaviour (departure #2).
    """
    if order not in ("paper", "code"):
        raise ValueError(f"order must be 'paper' or 'code', got {order!r}")
    total: Tensor | None = None
    for w in weights:
        r = torch.linalg.vector_norm(weight_rows(w, conv_rows), ord=2, dim=1)
        r_sorted, _ = torch.sort(r, descending=(order == "paper"))
        theta = spike_theta(r.numel(), beta1, beta2, dtype=r.dtype, device=r.device)
        term = torch.dot(theta, r_sorted)
        total = term if total is None else total + term.to(total.device)
    if total is None:
        return torch.zeros(())
    return total


# ---------------------------------------------------------------------------------------------------
# OWL prox on the row-norm vector
# ---------------------------------------------------------------------------------------------------
def _head_pool(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The authors' approximate pooling (the book appendix, HEAD), vectorised per pass.

    ``a`` = sorted-descending norms (prefix), ``b`` = thresholds aligned with ``a``. In each pass, over the
    pairs ``(i, i+1)`` where *both* ``a - b`` entries are positive: a strictly increasing pair opens a run
    (if none is open); a non-increasing pair closes the open run at ``i``. Pairs with a non-positive entry
    neither open nor close a run (so a run may span them, as in the original). A run still open at the end
    extends to the last index. Every run is replaced by its means of ``a`` and of ``b``. Repeat until no
    run is found (at most 1001 passes). Result: ``max(a - b, 0)``.
    """
    a = a.astype(np.float64, copy=True)
    b = b.astype(np.float64, copy=True)
    n = a.size
    if n >= 2:
        for _ in range(_HEAD_MAX_PASSES):
            d = a - b
            pos_pair = (d[:-1] > 0) & (d[1:] > 0)
            inc = pos_pair & (d[:-1] < d[1:])
            dec = pos_pair & ~(d[:-1] < d[1:])
            if not inc.any():
                break
            # Block id of each pair index: pairs after the (j-1)-th closing pair and up to and including
            # the j-th closing pair belong to block j. A block's run starts at its first increasing pair
            # and ends at its closing pair (or at n-1 for the last, unclosed block).
            dec_i = dec.astype(np.int64)
            block = np.cumsum(dec_i) - dec_i
            inc_idx = np.flatnonzero(inc)
            blocks_with_run, first = np.unique(block[inc_idx], return_index=True)
            starts = inc_idx[first]
            dec_idx = np.flatnonzero(dec)
            ends = np.full(starts.size, n - 1, dtype=np.int64)
            closed = blocks_with_run < dec_idx.size
            ends[closed] = dec_idx[blocks_with_run[closed]]
            # Label every element with its run (runs are disjoint, starts ascending) and average a and b
            # over each run.
            marks = np.zeros(n + 1, dtype=np.int64)
            marks[starts] += 1
            marks[ends + 1] -= 1
            in_run = np.cumsum(marks[:-1]) > 0
            is_start = np.zeros(n, dtype=np.int64)
            is_start[starts] = 1
            run_id = np.cumsum(is_start) - 1
            idx = np.flatnonzero(in_run)
            rid = run_id[idx]
            cnt = np.bincount(rid, minlength=starts.size)
            a[idx] = (np.bincount(rid, weights=a[idx], minlength=starts.size) / cnt)[rid]
            b[idx] = (np.bincount(rid, weights=b[idx], minlength=starts.size) / cnt)[rid]
    x = a - b
    x[x < 0] = 0.0
    return x


def owl_prox(z: Tensor | np.ndarray, theta: Tensor | np.ndarray, mode: ProxMode = "exact") -> Tensor | np.ndarray:
    """Proximal operator of the OWL norm, applied to a vector of non-negative row norms.

    Solves (``mode="exact"``) ``argmin_u 0.5·||u - z||² + Σ_i θ_i u_[i]`` (``u >= 0`` is then automatic),
    with ``u_[1] >= u_[2] >= ...``. No step size: the thresholds are θ itself (book appendix).

    Args:
        z: ``(n,)`` non-negative row norms (Tensor or ndarray).
        theta: ``(n,)`` non-increasing, non-negative OWL weights.
        mode:
            * ``"exact"``: sort ``z`` descending, ``v = z_s - θ``, project ``v`` onto the non-increasing
              cone (sklearn's PAV ``isotonic_regression(increasing=False)``), clip at 0, un-sort.
            * ``"head"``: the authors' approximation (book appendix): keep the prefix up to the last index with
              ``z_s - θ > 0`` (zeros after it), then repeatedly average runs of strictly increasing
              positive entries of ``z_s - θ`` (averaging ``z_s`` and ``θ`` separately). Unlike the exact
              prox it zeroes the top row whenever its norm ≤ θ_1 (= β1 + β2 for spike).
            * ``"2023"``: the 2023 code. Before the call the authors permuted θ into *row order* by each
              row's ascending-norm rank (row with the smallest norm gets ``θ[0]``, …), and the HEAD
              routine then used that row-ordered vector as if it were aligned with the sorted norms. So
              the threshold at sorted position ``p`` is ``θ[rank_asc(row p)]``: θ_1 lands on the sorted
              position equal to the *index* of the smallest-norm row — essentially arbitrary.

    Returns:
        New norms ``u`` of shape ``(n,)``, same container type as ``z`` (a Tensor keeps ``z``'s dtype and
        device; an ndarray is float64). Internally computed in float64 on CPU (n ≤ a few thousand).
    """
    is_tensor = isinstance(z, Tensor)
    z_np = z.detach().cpu().double().numpy() if is_tensor else np.asarray(z, dtype=np.float64)
    th = theta.detach().cpu().double().numpy() if isinstance(theta, Tensor) else np.asarray(theta, dtype=np.float64)
    if z_np.ndim != 1 or th.shape != z_np.shape:
        raise ValueError(f"z and theta must be 1-D of equal length, got {z_np.shape} and {th.shape}")
    if mode not in ("exact", "head", "2023"):
        raise ValueError(f"mode must be 'exact', 'head' or '2023', got {mode!r}")
    z_np = np.abs(z_np)  # norms are non-negative; abs mirrors the sign-restore of the original (no-op)
    n = z_np.size
    u = np.zeros(n, dtype=np.float64)
    if n == 0:
        return torch.as_tensor(u, dtype=z.dtype, device=z.device) if is_tensor else u

    order = np.argsort(-z_np, kind="stable")  # descending
    z_s = z_np[order]

    if mode == "exact":
        from sklearn.isotonic import isotonic_regression

        v = isotonic_regression(z_s - th, increasing=False)
        u[order] = np.maximum(v, 0.0)
    else:
        if mode == "2023":
            rank_asc = np.empty(n, dtype=np.int64)
            rank_asc[np.argsort(z_np, kind="stable")] = np.arange(n)
            mu = th[rank_asc]  # row-ordered, then (mis)used as sorted-position-ordered
        else:
            mu = th
        pos = np.flatnonzero(z_s - mu > 0)
        if pos.size:
            k = int(pos[-1]) + 1
            u[order[:k]] = _head_pool(z_s[:k], mu[:k])

    if is_tensor:
        return torch.as_tensor(u, dtype=z.dtype, device=z.device)
    return u


@torch.no_grad()
def growl_prox_(
    w: Tensor,
    beta1: float = 0.8,
    beta2: float = 0.2,
    conv_rows: ConvRows = "paper",
    mode: ProxMode = "exact",
) -> Tensor:
    """Apply the GrOWL-Spike prox to one weight tensor **in place** (book appendix).

    Each row is rescaled to its new norm: ``row_i <- row_i · u_i / z_i`` (a group soft-threshold, so row
    directions are preserved); rows with ``z_i < float32 eps`` are set to 0.

    Args:
        w: weight ``(out, in[, kh, kw])``; modified in place.
        beta1, beta2: spike parameters.
        conv_rows: row semantics.
        mode: prox algorithm, see :func:`owl_prox`.

    Returns:
        Bool tensor ``(n_rows,)`` on ``w.device``: rows that are exactly zero after the prox.
    """
    rows = weight_rows(w, conv_rows)
    z = torch.linalg.vector_norm(rows.double(), ord=2, dim=1)
    theta = spike_theta(z.numel(), beta1, beta2, dtype=torch.float64, device="cpu")
    u = owl_prox(z.cpu(), theta, mode=mode).to(z.device)
    keep = (z >= _F32_EPS) & (u > 0)
    scale = torch.where(keep, u / torch.where(keep, z, torch.ones_like(z)), torch.zeros_like(z))
    # torch.where (rather than multiplying by 0) writes +0.0, not -0.0, into removed rows.
    new_rows = torch.where(
        keep[:, None], rows.double() * scale[:, None], torch.zeros((), dtype=torch.float64, device=w.device)
    )
    w.copy_(rows_to_weight(new_rows.to(w.dtype), w.shape, conv_rows))
    return (weight_rows(w, conv_rows) == 0).all(dim=1)


# ---------------------------------------------------------------------------------------------------
# η2 cap
# ---------------------------------------------------------------------------------------------------
def cap_count(eta2: float, iteration: int, n_iterations: int, n_rows: int, ramp: bool = True) -> int:
    """Maximum number of zero rows allowed in a layer (book appendix).

    With ``ramp`` (HEAD since 2023-10): ``int((k+1)·η2/M1 · n_rows)`` for 0-based phase-1 iteration ``k``
    of ``M1 = n_iterations``; without: ``int(η2 · n_rows)``. Python ``int`` truncation as in the code.
    """
    if ramp:
        return int((iteration + 1) * eta2 / n_iterations * n_rows)
    return int(eta2 * n_rows)


@torch.no_grad()
def apply_row_cap_(
    w: Tensor,
    w_before: Tensor,
    max_zero_rows: int,
    generator: torch.Generator,
    conv_rows: ConvRows = "paper",
    rule: Literal["head", "2023"] = "head",
) -> int:
    """Limit the number of all-zero rows of ``w`` after the prox (book appendix), in place.

    If ``w`` has more than ``max_zero_rows`` all-zero rows, a uniformly random subset of them (a
    ``torch.randperm`` of the zero rows drawn from ``generator``) is restored to the pre-prox values in
    ``w_before``:

    * ``rule="head"``: restore ``#zero - max_zero_rows`` rows, so exactly ``max_zero_rows`` stay zero
      (unless restored rows were already zero before the prox).
    * ``rule="2023"``: restore ``n_rows - max_zero_rows`` rows (all zero rows if there are fewer).

    Non-restored rows keep their shrunken (post-prox) values.

    Args:
        w: post-prox weight, modified in place.
        w_before: pre-prox copy of the weight (same shape).
        max_zero_rows: cap from :func:`cap_count`.
        generator: torch RNG (CPU or on ``w``'s device) — seeded by the caller for reproducibility.

    Returns:
        Number of all-zero rows after the cap.
    """
    if rule not in ("head", "2023"):
        raise ValueError(f"rule must be 'head' or '2023', got {rule!r}")
    if w_before.shape != w.shape:
        raise ValueError("w_before must have the same shape as w")
    rows = weight_rows(w, conv_rows)
    zero_idx = torch.nonzero((rows == 0).all(dim=1)).flatten()
    n_zero = int(zero_idx.numel())
    if n_zero <= max_zero_rows:
        return n_zero
    n_restore = n_zero - max_zero_rows if rule == "head" else rows.shape[0] - max_zero_rows
    perm = torch.randperm(n_zero, generator=generator, device=generator.device).to(zero_idx.device)
    sel = zero_idx[perm[:n_restore]]
    new_rows = rows.clone()
    new_rows[sel] = weight_rows(w_before, conv_rows).to(rows.dtype)[sel]
    w.copy_(rows_to_weight(new_rows, w.shape, conv_rows))
    return int((weight_rows(w, conv_rows) == 0).all(dim=1).sum().item())


# ---------------------------------------------------------------------------------------------------
# Clustering and tying (phase 2)
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def similarity_matrix(rows: Tensor) -> np.ndarray:
    """Row similarity used for Affinity Propagation (book appendix).

    ``S_ij = <w_i, w_j> / max(||w_i||², ||w_j||²)`` in ``[-1, 1]``; zero vs zero (0/0) -> 1, zero vs
    non-zero -> 0, diagonal exactly 1.

    Args:
        rows: ``(n, d)`` row matrix (any device/dtype).

    Returns:
        ``(n, n)`` float64 ndarray. Computed in float64 on ``rows.device`` (n = 7200 needs ~0.4 GB per
        n×n buffer; two are alive at the peak).
    """
    r = rows.detach().double()
    s = r @ r.t()
    sq = torch.diagonal(s).clone()  # ||w_i||²
    denom = torch.maximum(sq[:, None], sq[None, :])
    both_zero = denom == 0  # norms are >= 0, so max == 0 <=> both rows are zero
    s.div_(denom.masked_fill_(both_zero, 1.0))
    s.masked_fill_(both_zero, 1.0)
    s.fill_diagonal_(1.0)
    del denom, both_zero
    return s.cpu().numpy()


def cluster_rows(rows: Tensor, preference: float, random_state: int | None = 0, max_iter: int = 200) -> np.ndarray:
    """Affinity Propagation on :func:`similarity_matrix` (book appendix).

    The labels of sklearn ``AffinityPropagation(affinity="precomputed", preference=preference,
    random_state=...)`` with default damping 0.5, max_iter 200, convergence_iter 15, computed by
    :func:`mdmtn.objectives.affinity.affinity_propagation` (the same operations in one compiled loop:
    the same labels, several times faster on large layers).

    Non-convergence (sklearn >= 1.x behaviour):

    * no exemplar at all -> sklearn returns labels −1. We warn and give every row its own label (no
      tying), which is what the original code ends up doing (no cluster centres -> no sharing).
    * ``max_iter`` reached but some exemplars exist -> sklearn warns and still returns (possibly
      degenerate) labels; the original code used them, so we keep them and re-issue the warning with the
      layer size.

    Note (measured, see tests): rows that are exactly equal (e.g. the zero rows, similarity 1 to each other,
    above the 0.7/0.8 preference) are a degenerate case for AP; they need not form one cluster, and can
    even be assigned to non-zero clusters (their similarity to every exemplar is 0, so the tie is broken
    by sklearn's tiny random noise).

    Returns:
        ``(n,)`` int64 labels.
    """
    from sklearn.exceptions import ConvergenceWarning

    from mdmtn.objectives.affinity import affinity_propagation

    n = rows.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    s = similarity_matrix(rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)  # re-issued below with context
        _, labels, _ = affinity_propagation(s, preference, random_state=random_state, max_iter=max_iter)
    del s
    not_converged = any(issubclass(c.category, ConvergenceWarning) for c in caught)
    labels = np.asarray(labels, dtype=np.int64)
    if (labels < 0).any():
        warnings.warn(
            f"Affinity Propagation did not converge on {n} rows (preference={preference}) and found no "
            "exemplar; no parameter tying for this layer.",
            ConvergenceWarning,
            stacklevel=2,
        )
        return np.arange(n, dtype=np.int64)
    if not_converged:
        warnings.warn(
            f"Affinity Propagation did not converge on {n} rows (preference={preference}) within max_iter; "
            f"using sklearn's possibly degenerate labels ({len(np.unique(labels))} clusters), as the "
            "original code does.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return labels


@torch.no_grad()
def tie_rows_(
    w: Tensor,
    zero_rows: Tensor,
    labels: np.ndarray,
    conv_rows: ConvRows = "paper",
    *,
    keep_zero: bool = False,
) -> None:
    """Phase-2 projection for one layer, in place (book appendix).

    1. Set the rows recorded as zero at clustering time to 0.
    2. Replace every row of each cluster by the cluster mean (computed after step 1, so a cluster mixing
       zero and non-zero rows un-zeroes its zero rows — as in the original).

    Args:
        w: weight tensor; modified in place.
        zero_rows: bool ``(n_rows,)``.
        labels: ``(n_rows,)`` integer cluster labels (any integers; −1 is treated as its own cluster).
        keep_zero: ablation, not the original behaviour. If True, recorded zero rows are left out of the
            cluster means and stay zero, so a mixed cluster cannot un-zero them.
    """
    rows = weight_rows(w, conv_rows)
    n = rows.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    zero_rows = torch.as_tensor(zero_rows, dtype=torch.bool, device=w.device)
    new_rows = rows.double().masked_fill(zero_rows[:, None], 0.0)
    _, inv = np.unique(labels, return_inverse=True)
    inv_t = torch.as_tensor(inv.reshape(-1), dtype=torch.long, device=w.device)
    k = int(inv.max()) + 1 if n else 0
    sums = torch.zeros((k, rows.shape[1]), dtype=torch.float64, device=w.device).index_add_(0, inv_t, new_rows)
    counts = torch.bincount(inv_t, minlength=k).to(torch.float64)
    if keep_zero:
        # means over the non-zero members only (an all-zero cluster gives 0/0 -> use count 1, sum 0)
        counts = counts - torch.bincount(inv_t[zero_rows], minlength=k).to(torch.float64)
        counts.clamp_(min=1.0)
    means = sums / counts[:, None]
    new = means[inv_t]
    if keep_zero:
        new.masked_fill_(zero_rows[:, None], 0.0)
    w.copy_(rows_to_weight(new.to(w.dtype), w.shape, conv_rows))


@dataclass
class LayerPlan:
    """What phase 2 enforces for one layer: the zero rows recorded at clustering time (bool ``(n_rows,)``)
    and the AP cluster labels (``(n_rows,)`` int ndarray)."""

    name: str
    zero_rows: Tensor
    labels: np.ndarray


@torch.no_grad()
def plan_tying(
    named_weights: Sequence[tuple[str, Tensor]],
    preference: float,
    conv_rows: ConvRows = "paper",
    random_state: int | None = 0,
    *,
    ap_rows: Literal["nonzero", "all"] = "nonzero",
    max_iter: int = 200,
) -> list[LayerPlan]:
    """Cluster the rows of each regularised layer once, between phase 1 and phase 2 (book appendix).

    ``ap_rows="all"`` runs Affinity Propagation on every row, zero rows included, as the authors'
    code does. ``"nonzero"`` (default) runs it on the non-zero rows only and puts all zero rows in
    one cluster of their own: the outcome the authors expected (departure #31), without AP's
    degenerate handling of identical rows (which can merge zero rows into non-zero clusters and
    so revive them in phase 2) and at a fraction of the cost, since AP is O(n²) per iteration and
    most rows of the large layers are zero after phase 1.

    Layers whose rows are all zero ("zero layers") are skipped (no plan), as in the original. Zero rows
    are recorded with an exact all-zero test (the original used ``row.sum() == 0``; the two agree except
    for a non-zero row whose entries cancel exactly, which must not be zeroed).
    """
    plans: list[LayerPlan] = []
    for name, w in named_weights:
        rows = weight_rows(w.detach(), conv_rows)
        zero = (rows == 0).all(dim=1)
        if bool(zero.all()):
            continue
        if ap_rows == "all":
            labels = cluster_rows(rows, preference, random_state=random_state, max_iter=max_iter)
        elif ap_rows == "nonzero":
            labels = np.full(rows.shape[0], -1, dtype=np.int64)
            nz = (~zero).nonzero().squeeze(1).numpy()
            sub = cluster_rows(rows[~zero], preference, random_state=random_state, max_iter=max_iter)
            labels[nz] = sub
            labels[zero.numpy()] = sub.max() + 1 if len(sub) else 0
        else:
            raise ValueError(f"ap_rows must be 'nonzero' or 'all', got {ap_rows!r}")
        plans.append(LayerPlan(name=name, zero_rows=zero.clone(), labels=labels))
    return plans


@torch.no_grad()
def enforce_plan_(
    named_weights: Sequence[tuple[str, Tensor]],
    plans: Sequence[LayerPlan],
    conv_rows: ConvRows = "paper",
    *,
    keep_zero: bool = False,
) -> None:
    """Apply :func:`tie_rows_` for every plan to the weight of the same name (in place). Weights without a
    plan (zero layers, unregularised layers) are left alone. Raises ``KeyError`` for a plan whose layer is
    missing. ``keep_zero``: see :func:`tie_rows_` (default False = original behaviour)."""
    by_name = dict(named_weights)
    for plan in plans:
        tie_rows_(by_name[plan.name], plan.zero_rows, plan.labels, conv_rows, keep_zero=keep_zero)
