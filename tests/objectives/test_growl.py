"""Tests for mdmtn.objectives.growl against independent truth (generic solvers, brute-force loops, spec values)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.metrics import adjusted_rand_score

from mdmtn.objectives.growl import (
    LayerPlan,
    apply_row_cap_,
    cap_count,
    cluster_rows,
    enforce_plan_,
    growl_penalty,
    growl_prox_,
    owl_prox,
    plan_tying,
    rows_to_weight,
    similarity_matrix,
    spike_theta,
    tie_rows_,
    weight_rows,
)


# ---------------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------------
def _owl_prox_qp_topk(z: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """OWL prox by a generic QP solver (SLSQP), no sorting/PAV involved.

    For non-increasing θ >= 0, Σ_i θ_i u_[i] = Σ_k c_k T_k(u) with c_k = θ_k − θ_{k+1} >= 0 (θ_{n+1} = 0)
    and T_k(u) = sum of the k largest entries = min_t k·t + Σ_i max(u_i − t, 0). Epigraph variables
    s_ki >= max(u_i − t_k, 0) turn the prox into a smooth QP over (u, t, s).
    """
    n = z.size
    c = theta - np.append(theta[1:], 0.0)
    nu, nt, ns = n, n, n * n

    def unpack(x):
        return x[:nu], x[nu : nu + nt], x[nu + nt :].reshape(n, n)

    kk = np.arange(1, n + 1, dtype=float)

    def fun(x):
        u, t, s = unpack(x)
        return 0.5 * np.sum((u - z) ** 2) + np.sum(c * (kk * t + s.sum(axis=1)))

    def jac(x):
        u, t, s = unpack(x)
        g = np.empty_like(x)
        g[:nu] = u - z
        g[nu : nu + nt] = c * kk
        g[nu + nt :] = np.repeat(c, n)
        return g

    # s_ki - u_i + t_k >= 0 (linear)
    a = np.zeros((n * n, nu + nt + ns))
    for k in range(n):
        for i in range(n):
            r = k * n + i
            a[r, nu + nt + r] = 1.0
            a[r, i] = -1.0
            a[r, nu + k] = 1.0
    cons = [{"type": "ineq", "fun": lambda x: a @ x, "jac": lambda x: a}]
    bounds = [(0, None)] * nu + [(None, None)] * nt + [(0, None)] * ns
    x0 = np.concatenate([z, np.zeros(nt), np.tile(z, n)])
    res = minimize(
        fun, x0, jac=jac, constraints=cons, bounds=bounds, method="SLSQP", options={"ftol": 1e-13, "maxiter": 2000}
    )
    # status 8 ("positive directional derivative") = stalled at machine precision; accuracy is asserted
    # by the callers (value and objective comparison).
    assert res.status in (0, 8), res.message
    return unpack(res.x)[0]


def _owl_prox_qp_perm(z: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """OWL prox as min 0.5||u−z||² + s  s.t. s >= θ·(P u) for every permutation P, u >= 0 (small n)."""
    n = z.size
    perms = np.array(list(itertools.permutations(range(n))))
    # row p: coefficients of u in θ·(u[perm]) : coef[perm[j]] += θ_j
    coef = np.zeros((len(perms), n))
    for p, perm in enumerate(perms):
        coef[p, perm] = theta
    a = np.hstack([-coef, np.ones((len(perms), 1))])  # s - coef·u >= 0
    cons = [{"type": "ineq", "fun": lambda x: a @ x, "jac": lambda x: a}]
    fun = lambda x: 0.5 * np.sum((x[:n] - z) ** 2) + x[n]
    jac = lambda x: np.append(x[:n] - z, 1.0)
    x0 = np.append(z, coef.dot(z).max())
    res = minimize(
        fun,
        x0,
        jac=jac,
        constraints=cons,
        bounds=[(0, None)] * n + [(None, None)],
        method="SLSQP",
        options={"ftol": 1e-13, "maxiter": 2000},
    )
    assert res.status in (0, 8), res.message
    return res.x[:n]


def _owl_objective(u: np.ndarray, z: np.ndarray, theta: np.ndarray) -> float:
    return 0.5 * float(np.sum((u - z) ** 2)) + float(theta @ np.sort(u)[::-1])


def _head_loop_reference(z: np.ndarray, mu_sorted_positions: np.ndarray) -> np.ndarray:
    """Scalar, loop-by-loop transcription of the authors' HEAD prox behaviour (book appendix), for
    cross-checking the vectorised implementation. ``mu_sorted_positions[p]`` is the threshold used at
    sorted (descending) position ``p``."""
    order = np.argsort(-z, kind="stable")
    zs = z[order].astype(float)
    n = zs.size
    out = np.zeros(n)
    last = -1
    for i in range(n):
        if zs[i] - mu_sorted_positions[i] > 0:
            last = i
    if last < 0:
        return out
    A = zs[: last + 1].copy()
    B = np.asarray(mu_sorted_positions[: last + 1], dtype=float).copy()
    for _ in range(1001):
        segs = []
        start = None
        for i in range(len(A) - 1):
            di, dj = A[i] - B[i], A[i + 1] - B[i + 1]
            if di > 0 and dj > 0:
                if di < dj:
                    if start is None:
                        start = i
                elif start is not None:
                    segs.append((start, i))
                    start = None
        if start is not None:
            segs.append((start, len(A) - 1))
        if not segs:
            break
        for s, e in segs:
            A[s : e + 1] = A[s : e + 1].mean()
            B[s : e + 1] = B[s : e + 1].mean()
    x = np.maximum(A - B, 0.0)
    out[order[: last + 1]] = x
    return out


def _random_theta(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.sort(rng.uniform(0.0, 1.0, n))[::-1].copy()


# ---------------------------------------------------------------------------------------------------
# owl_prox
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(2, 9))
def test_owl_prox_exact_matches_generic_qp(n):
    rng = np.random.default_rng(100 + n)
    for trial in range(6):
        z = rng.uniform(0.0, 2.0, n)
        if trial % 2:
            z[rng.integers(n)] = z[rng.integers(n)]  # ties
        theta = _random_theta(rng, n) if trial < 4 else spike_theta(n, dtype=torch.float64).numpy()
        u = owl_prox(z, theta, mode="exact")
        ref = _owl_prox_qp_topk(z, theta)
        np.testing.assert_allclose(u, ref, atol=1e-5)
        # the prox is the minimiser: no generic-solver point does better
        assert _owl_objective(u, z, theta) <= _owl_objective(ref, z, theta) + 1e-10


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_owl_prox_exact_matches_permutation_qp(n):
    rng = np.random.default_rng(7 * n)
    for _ in range(4):
        z = rng.uniform(0.0, 1.5, n)
        theta = _random_theta(rng, n)
        np.testing.assert_allclose(owl_prox(z, theta), _owl_prox_qp_perm(z, theta), atol=1e-5)


def test_owl_prox_spec_example():
    z = np.array([0.9, 0.85, 0.5, 0.1])
    theta = spike_theta(4, 0.8, 0.2, dtype=torch.float64).numpy()
    np.testing.assert_allclose(owl_prox(z, theta, "exact"), [0.85 / 3, 0.85 / 3, 0.85 / 3, 0.0], atol=1e-12)
    np.testing.assert_allclose(owl_prox(z, theta, "head"), [0.0, 0.65, 0.3, 0.0], atol=1e-12)
    # the exact value also solves the QP
    np.testing.assert_allclose(_owl_prox_qp_topk(z, theta), [0.2833333, 0.2833333, 0.2833333, 0.0], atol=1e-5)


def test_owl_prox_head_equals_exact_without_violations():
    # top norm > θ_1 and z_s − θ already non-increasing: both algorithms reduce to soft-thresholding
    z = np.array([0.3, 2.0, 0.5, 0.1])
    theta = spike_theta(4, dtype=torch.float64).numpy()
    expected = [0.1, 1.0, 0.3, 0.0]
    np.testing.assert_allclose(owl_prox(z, theta, "exact"), expected, atol=1e-12)
    np.testing.assert_allclose(owl_prox(z, theta, "head"), expected, atol=1e-12)


def test_owl_prox_head_zeroes_top_row_when_below_theta1():
    rng = np.random.default_rng(3)
    z = rng.uniform(0.25, 0.99, 30)
    theta = spike_theta(30, dtype=torch.float64).numpy()
    u_head = owl_prox(z, theta, "head")
    u_exact = owl_prox(z, theta, "exact")
    assert u_head[np.argmax(z)] == 0.0
    assert u_exact[np.argmax(z)] > 0.0


@pytest.mark.parametrize("seed", range(12))
def test_owl_prox_head_and_2023_match_loop_transcription(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    z = rng.uniform(0.0, 1.5, n) * rng.choice([0.3, 1.0, 3.0])
    theta = _random_theta(rng, n) if seed % 3 else spike_theta(n, dtype=torch.float64).numpy()
    np.testing.assert_allclose(owl_prox(z, theta, "head"), _head_loop_reference(z, theta), atol=1e-12)
    # 2023: θ permuted into row order by ascending rank, then (mis)aligned with sorted positions
    rank_asc = np.empty(n, dtype=int)
    rank_asc[np.argsort(z, kind="stable")] = np.arange(n)
    mu = theta[rank_asc]
    np.testing.assert_allclose(owl_prox(z, theta, "2023"), _head_loop_reference(z, mu), atol=1e-12)


def test_owl_prox_2023_spec_style_example():
    z = np.array([0.9, 0.85, 0.5, 0.1])
    theta = spike_theta(4, dtype=torch.float64).numpy()
    # ascending ranks (3,2,1,0) -> row-ordered θ (0.2,0.2,0.2,1.0); rows are already sorted descending,
    # so the 1.0 threshold lands on the smallest row.
    np.testing.assert_allclose(owl_prox(z, theta, "2023"), [0.7, 0.65, 0.3, 0.0], atol=1e-12)


def test_owl_prox_tensor_io_and_edge_cases():
    z = torch.tensor([0.9, 0.85, 0.5, 0.1], dtype=torch.float32)
    u = owl_prox(z, spike_theta(4))
    assert isinstance(u, torch.Tensor) and u.dtype == torch.float32 and u.shape == (4,)
    assert isinstance(owl_prox(z.numpy(), spike_theta(4).numpy()), np.ndarray)
    assert owl_prox(np.zeros(0), np.zeros(0)).shape == (0,)
    np.testing.assert_allclose(owl_prox(np.array([0.5]), np.array([1.0])), [0.0])
    np.testing.assert_allclose(owl_prox(np.array([1.5]), np.array([1.0])), [0.5])
    for mode in ("exact", "head", "2023"):
        assert np.all(owl_prox(np.zeros(5), spike_theta(5).numpy(), mode) == 0)
    with pytest.raises(ValueError):
        owl_prox(z, spike_theta(4), mode="bogus")


# ---------------------------------------------------------------------------------------------------
# growl_prox_
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,conv_rows",
    [((40, 25), "paper"), ((20, 10, 5, 5), "paper"), ((20, 10, 5, 5), "code"), ((32, 16, 3, 3), "paper")],
)
@pytest.mark.parametrize("mode", ["exact", "head", "2023"])
def test_growl_prox_matches_norm_level_prox(shape, conv_rows, mode):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(shape, generator=g)
    rows0 = weight_rows(w, conv_rows).clone()
    # spread the row norms around the thresholds
    rows0 *= torch.rand(rows0.shape[0], 1, generator=g) * 0.6 / rows0.norm(dim=1, keepdim=True).mean()
    rows0[3] *= 10.0  # one row above θ_1
    rows0[5] = 0.0  # an exactly zero row
    w = rows_to_weight(rows0, shape, conv_rows).contiguous().clone()  # no storage shared with rows0
    z = rows0.double().norm(dim=1)
    u = owl_prox(z.numpy(), spike_theta(z.numel(), dtype=torch.float64).numpy(), mode)
    zero = growl_prox_(w, 0.8, 0.2, conv_rows=conv_rows, mode=mode)
    rows1 = weight_rows(w, conv_rows).double()
    np.testing.assert_allclose(rows1.norm(dim=1).numpy(), u, rtol=1e-5, atol=1e-6)
    # directions preserved
    nz = u > 0
    dirs0 = rows0.double()[nz] / z[nz, None]
    dirs1 = rows1[nz] / rows1[nz].norm(dim=1, keepdim=True)
    torch.testing.assert_close(dirs1, dirs0, atol=1e-5, rtol=0)
    assert torch.equal(zero, torch.as_tensor(u == 0))
    assert zero[5]
    # removed rows are +0.0 (no sign bit)
    assert not torch.signbit(rows1[zero]).any()


def test_growl_prox_tiny_rows_become_zero():
    w = torch.randn(8, 6)
    w[:, 2] = 1e-9  # row 2 (input neuron 2) has norm < float32 eps
    zero = growl_prox_(w, 0.0, 0.0)  # θ = 0: nothing else changes
    assert zero[2] and zero.sum() == 1
    assert torch.all(w[:, 2] == 0)


# ---------------------------------------------------------------------------------------------------
# growl_penalty
# ---------------------------------------------------------------------------------------------------
def test_growl_penalty_paper_vs_code_order():
    # Linear weight (out=2, in=3); rows = input neurons = columns: norms 5, 1, 0
    w = torch.tensor([[3.0, 0.0, 0.0], [4.0, 1.0, 0.0]], requires_grad=True)
    paper = growl_penalty([w], 0.8, 0.2, order="paper")
    code = growl_penalty([w], 0.8, 0.2, order="code")
    assert paper.item() == pytest.approx(1.0 * 5 + 0.2 * 1 + 0.2 * 0)
    assert code.item() == pytest.approx(1.0 * 0 + 0.2 * 1 + 0.2 * 5)
    # second layer adds up
    v = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    assert growl_penalty([w, v]).item() == pytest.approx(5.2 + 1.0 * 2 + 0.2 * 0.5)
    paper.backward()
    expected = torch.zeros(2, 3)
    expected[:, 0] = torch.tensor([3.0, 4.0]) / 5.0 * 1.0
    expected[:, 1] = torch.tensor([0.0, 1.0]) * 0.2
    assert torch.isfinite(w.grad).all()
    torch.testing.assert_close(w.grad, expected)


def test_growl_penalty_conv_semantics_and_grad():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(20, 10, 5, 5, generator=g, requires_grad=True)
    for cr in ("paper", "code"):
        r = weight_rows(w.detach(), cr).norm(dim=1)
        expected = 0.2 * r.sum() + 0.8 * r.max()
        assert growl_penalty([w], conv_rows=cr).item() == pytest.approx(expected.item(), rel=1e-5)
    growl_penalty([w]).backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------
# weight_rows / rows_to_weight
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 5), (20, 10, 5, 5), (6, 3, 3, 3), (4, 3, 5)])
@pytest.mark.parametrize("conv_rows", ["paper", "code"])
def test_rows_round_trip(shape, conv_rows):
    w = torch.randn(shape)
    rows = weight_rows(w, conv_rows)
    assert rows.shape[0] == shape[1] and rows.numel() == w.numel()
    torch.testing.assert_close(rows_to_weight(rows, shape, conv_rows), w, rtol=0, atol=0)


def test_paper_rows_are_input_channels():
    w = torch.randn(20, 10, 5, 5)
    rows = weight_rows(w, "paper").clone()
    rows[4] = 0
    w2 = rows_to_weight(rows, w.shape, "paper")
    assert torch.all(w2[:, 4] == 0)
    assert torch.equal(w2[:, [i for i in range(10) if i != 4]], w[:, [i for i in range(10) if i != 4]])
    # linear: rows = input neurons
    lin = torch.randn(7, 5)
    r = weight_rows(lin).clone()
    r[2] = 0
    assert torch.all(rows_to_weight(r, lin.shape)[:, 2] == 0)


def test_code_rows_are_output_filter_pairs():
    w = torch.randn(20, 10, 5, 5)
    rows = weight_rows(w, "code")
    for r in range(10):
        torch.testing.assert_close(rows[r], torch.cat([w[2 * r].flatten(), w[2 * r + 1].flatten()]))


# ---------------------------------------------------------------------------------------------------
# η2 cap
# ---------------------------------------------------------------------------------------------------
def _capped_setup(n_rows=20, n_zero=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    before = torch.randn(9, n_rows, generator=g)  # Linear (out=9, in=n_rows)
    after = before * 0.5
    zero_idx = torch.randperm(n_rows, generator=g)[:n_zero]
    after[:, zero_idx] = 0
    return before, after, set(zero_idx.tolist())


def test_apply_row_cap_head_rule():
    before, after, zero_idx = _capped_setup()
    w = after.clone()
    n_after = apply_row_cap_(w, before, 5, torch.Generator().manual_seed(1), rule="head")
    assert n_after == 5
    zero_now = {i for i in range(20) if torch.all(w[:, i] == 0)}
    assert len(zero_now) == 5 and zero_now <= zero_idx
    for i in range(20):
        if i in zero_now:
            continue
        if i in zero_idx:  # restored: exactly the pre-prox values
            assert torch.equal(w[:, i], before[:, i])
        else:  # never zero: keeps its shrunken value
            assert torch.equal(w[:, i], after[:, i])
    # reproducible with the same seed, different with another
    w2 = after.clone()
    apply_row_cap_(w2, before, 5, torch.Generator().manual_seed(1), rule="head")
    assert torch.equal(w, w2)


def test_apply_row_cap_under_cap_is_noop():
    before, after, _ = _capped_setup(n_zero=4)
    w = after.clone()
    assert apply_row_cap_(w, before, 5, torch.Generator().manual_seed(0)) == 4
    assert torch.equal(w, after)


def test_apply_row_cap_2023_rule():
    before, after, zero_idx = _capped_setup(n_rows=20, n_zero=12)
    # restore n_rows - max = 15 >= 12 zero rows: all restored
    w = after.clone()
    assert apply_row_cap_(w, before, 5, torch.Generator().manual_seed(0), rule="2023") == 0
    for i in zero_idx:
        assert torch.equal(w[:, i], before[:, i])
    # restore n_rows - max = 20 - 10 = 10 of 12 -> 2 remain zero
    w = after.clone()
    assert apply_row_cap_(w, before, 10, torch.Generator().manual_seed(0), rule="2023") == 2


def test_apply_row_cap_conv_paper_rows():
    g = torch.Generator().manual_seed(3)
    before = torch.randn(20, 10, 5, 5, generator=g)
    after = before.clone()
    after[:, :7] = 0  # 7 zero input channels
    w = after.clone()
    assert apply_row_cap_(w, before, 3, torch.Generator().manual_seed(0), conv_rows="paper") == 3
    assert sum(bool(torch.all(w[:, i] == 0)) for i in range(10)) == 3


@pytest.mark.parametrize(
    "n_rows,eta2,expected",
    [
        (2880, 0.8, [768, 1536, 2304]),
        (10, 0.8, [2, 5, 8]),
        (320, 0.8, [85, 170, 256]),
        (16, 0.15, [0, 1, 2]),
        (1152, 0.15, [57, 115, 172]),
        (16, 0.3, [1, 3, 4]),
        (1152, 0.3, [115, 230, 345]),
        (7200, 0.3, [719, 1439, 2160]),
    ],
)
def test_cap_count_spec_table(n_rows, eta2, expected):
    assert [cap_count(eta2, k, 3, n_rows) for k in range(3)] == expected
    assert cap_count(eta2, 0, 3, n_rows, ramp=False) == int(eta2 * n_rows)


def test_cap_count_max_sr_table():
    # the book appendix "max SR" column, MDMTN-MM (rows 10, 320, 2880, 2880; total 6193)
    caps = [sum(cap_count(0.8, k, 3, n) for n in (10, 320, 2880, 2880)) for k in range(3)]
    assert [round(100 * c / 6193, 2) for c in caps] == [26.21, 52.43, 78.67]


# ---------------------------------------------------------------------------------------------------
# similarity / clustering / tying
# ---------------------------------------------------------------------------------------------------
def test_similarity_matrix_vs_double_loop():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(12, 7, generator=g)
    rows[[2, 8]] = 0
    rows[5] = rows[1] * 2.0
    s = similarity_matrix(rows)
    r = rows.double().numpy()
    ref = np.empty((12, 12))
    for i in range(12):
        for j in range(12):
            ni, nj = r[i] @ r[i], r[j] @ r[j]
            m = max(ni, nj)
            ref[i, j] = 1.0 if m == 0 else (r[i] @ r[j]) / m
    np.testing.assert_allclose(s, ref, atol=1e-12)
    assert s.dtype == np.float64
    assert np.all(np.diag(s) == 1.0)
    assert s[2, 8] == 1.0 and s[2, 3] == 0.0
    assert s[1, 5] == pytest.approx(0.5)
    assert np.all(np.abs(s) <= 1.0 + 1e-12)


def test_cluster_rows_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.linalg.qr(rng.normal(size=(16, 4)))[0].T  # 4 orthonormal directions
    truth = rng.integers(0, 4, 60)
    rows = centers[truth] * (1 + 0.02 * rng.normal(size=(60, 1))) + 0.01 * rng.normal(size=(60, 16))
    labels = cluster_rows(torch.tensor(rows, dtype=torch.float32), preference=0.7)
    assert labels.shape == (60,)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_cluster_rows_zero_rows_form_one_cluster():
    rng = np.random.default_rng(1)
    rows = torch.tensor(rng.normal(size=(30, 8)), dtype=torch.float32)
    rows[[0, 4, 9, 17]] = 0
    labels = cluster_rows(rows, preference=0.7)
    assert len({labels[i] for i in (0, 4, 9, 17)}) == 1
    assert not set(labels[[i for i in range(30) if i not in (0, 4, 9, 17)]]) & {labels[0]}


def test_cluster_rows_nonconvergence_gives_identity(monkeypatch):
    import mdmtn.objectives.affinity

    def no_exemplar(s, preference, **kw):
        return np.array([], dtype=np.int64), np.full(s.shape[0], -1), kw.get("max_iter", 200)

    monkeypatch.setattr(mdmtn.objectives.affinity, "affinity_propagation", no_exemplar)
    with pytest.warns(Warning, match="did not converge"):
        labels = cluster_rows(torch.randn(6, 3), preference=0.7)
    assert labels.tolist() == list(range(6))


def _tie_reference(rows: np.ndarray, zero_rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    r = rows.astype(float).copy()
    for i in range(len(r)):
        if zero_rows[i]:
            r[i] = 0
    out = r.copy()
    for c in set(labels.tolist()):
        members = [i for i in range(len(r)) if labels[i] == c]
        m = np.mean([r[i] for i in members], axis=0)
        for i in members:
            out[i] = m
    return out


@pytest.mark.parametrize("shape,conv_rows", [((9, 15), "paper"), ((20, 10, 5, 5), "paper"), ((20, 10, 5, 5), "code")])
def test_tie_rows_matches_loop(shape, conv_rows):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(shape, generator=g)
    n = shape[1]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n) * 3 + 7  # arbitrary non-contiguous labels
    zero_rows = torch.zeros(n, dtype=torch.bool)
    zero_rows[[0, 1]] = True
    # make a pure-zero cluster: rows 2,3 zero and alone in label 99
    zero_rows[[2, 3]] = True
    labels[[2, 3]] = 99
    ref = _tie_reference(weight_rows(w, conv_rows).numpy(), zero_rows.numpy(), labels)
    tie_rows_(w, zero_rows, labels, conv_rows)
    rows = weight_rows(w, conv_rows)
    np.testing.assert_allclose(rows.numpy(), ref, atol=1e-6)
    # exactly one unique row per cluster; the all-zero cluster stays zero
    for c in set(labels.tolist()):
        assert torch.unique(rows[torch.as_tensor(labels == c)], dim=0).shape[0] == 1
    assert torch.all(rows[[2, 3]] == 0)


def _planted_layer():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 12, generator=g)  # 4 distinct directions, 12 features each
    w_lin = torch.zeros(12, 40)  # Linear(40 -> 12): 40 rows of length 12
    truth = torch.arange(40) % 4
    w_lin[:, :] = (base[truth] * (1 + 0.01 * torch.randn(40, 1, generator=g))).t()
    w_lin[:, 36:] = 0  # 4 zero rows
    return w_lin, truth, g


def test_plan_tying_and_enforce():
    w_lin, truth, g = _planted_layer()
    w_zero = torch.zeros(5, 6)  # zero layer: skipped
    plans = plan_tying([("a", w_lin), ("z", w_zero)], preference=0.7)
    assert [p.name for p in plans] == ["a"]
    assert isinstance(plans[0], LayerPlan)
    assert plans[0].zero_rows.tolist() == [False] * 36 + [True] * 4
    labels = plans[0].labels
    assert adjusted_rand_score(truth[:36].numpy(), labels[:36]) == 1.0
    # Adam-like perturbation during phase 2, then the end-of-epoch projection
    w_lin += 0.05 * torch.randn(w_lin.shape, generator=g)
    zero = plans[0].zero_rows.numpy()
    ref = _tie_reference(weight_rows(w_lin).numpy(), zero, labels)
    w_keep = w_lin.clone()
    pert = weight_rows(w_lin).clone()
    enforce_plan_([("a", w_lin), ("z", w_zero)], plans)
    np.testing.assert_allclose(weight_rows(w_lin).numpy(), ref, atol=1e-6)
    assert torch.unique(weight_rows(w_lin), dim=0).shape[0] == len(set(labels.tolist()))
    # keep_zero ablation: recorded zero rows stay zero, non-zero rows get the mean of non-zero members
    enforce_plan_([("a", w_keep)], plans, keep_zero=True)
    rows = weight_rows(w_keep)
    assert torch.all(rows[36:] == 0)
    for c in set(labels.tolist()):
        nz_members = np.flatnonzero((labels == c) & ~zero)
        if nz_members.size:
            expected = pert[nz_members].mean(dim=0)
            for i in nz_members:
                torch.testing.assert_close(rows[i], expected)


def test_ap_duplicate_rows_are_degenerate():
    """Documents a measured fact behind departure #31 (book appendix): identical rows (similarity 1 > the
    0.7 preference) do not reliably form their own cluster. Here the 4 zero rows get no exemplar of their
    own and are assigned to non-zero clusters, so the original phase-2 projection un-zeroes them."""
    w_lin, _, _ = _planted_layer()
    labels = cluster_rows(weight_rows(w_lin), preference=0.7, random_state=0)
    zero_labels = set(labels[36:].tolist())
    assert zero_labels & set(labels[:36].tolist())
    w = w_lin.clone()
    tie_rows_(w, torch.arange(40) >= 36, labels)
    assert not torch.all(weight_rows(w)[36:] == 0)
    w = w_lin.clone()
    tie_rows_(w, torch.arange(40) >= 36, labels, keep_zero=True)
    assert torch.all(weight_rows(w)[36:] == 0)


def test_cluster_rows_unconverged_with_exemplars_keeps_labels():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(320, 50, generator=g) * 0.1
    rows[:100] = 0
    with pytest.warns(Warning, match="did not converge"):
        labels = cluster_rows(rows, preference=0.7)
    assert labels.shape == (320,) and labels.min() >= 0


def test_vectorised_no_python_row_loop_at_real_size():
    # smoke test at the real MDMTN-MM monitor size: all operations complete quickly
    w = torch.randn(50, 2880) * 0.004
    before = w.clone()
    growl_prox_(w)
    n_zero = apply_row_cap_(w, before, cap_count(0.8, 0, 3, 2880), torch.Generator().manual_seed(0))
    assert n_zero == 768


def test_plan_tying_nonzero_mode_keeps_zero_rows_in_their_own_cluster():
    from mdmtn.objectives.growl import cluster_rows, plan_tying

    g = torch.Generator().manual_seed(3)
    centres = torch.randn(4, 12, generator=g)
    rows = centres.repeat_interleave(9, 0) + 0.01 * torch.randn(36, 12, generator=g)
    rows = torch.cat([rows, torch.zeros(14, 12)])[torch.randperm(50, generator=g)]
    w = rows.t().contiguous()  # Linear weight (out, in): rows are input neurons
    (plan,) = plan_tying([("fc", w)], 0.7, ap_rows="nonzero")
    zero = (rows == 0).all(1)
    assert torch.equal(plan.zero_rows, zero)
    assert len(set(plan.labels[zero.numpy()])) == 1
    assert set(plan.labels[zero.numpy()]).isdisjoint(plan.labels[~zero.numpy()])
    np.testing.assert_array_equal(plan.labels[~zero.numpy()], cluster_rows(rows[~zero], 0.7))
