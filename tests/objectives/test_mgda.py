"""Tests for mdmtn.objectives.mgda. Ground truth is independent of the solver under test: scipy NNLS on
an augmented system and multi-start SLSQP, plus closed-form degenerate cases."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, nnls

from mdmtn.objectives.mgda import min_norm_coefficients, normalize_gradients, shared_representation_grads


def _obj(G: np.ndarray, a: np.ndarray) -> float:
    return float(np.sum((G.T @ a) ** 2))


def _reference_min_norm(G: np.ndarray, seed: int) -> float:
    """Best objective over two independent solvers. G: (T, D) float64."""
    T = G.shape[0]
    cands = []
    # NNLS: min ||G^T a||^2 + w^2 (1^T a - 1)^2, a >= 0. A large w enforces sum(a) = 1; the
    # result is renormalised onto the simplex and scored by the true objective.
    for w in (1e2, 1e4):
        A = np.vstack([G.T, w * np.ones((1, T))])
        b = np.concatenate([np.zeros(G.shape[1]), [w]])
        a, _ = nnls(A, b, maxiter=50 * T)
        cands.append(_obj(G, a / a.sum()))
    # SLSQP from several starts (barycentre plus random simplex points).
    M = G @ G.T
    rng = np.random.default_rng(seed)
    starts = [np.full(T, 1.0 / T)] + list(rng.dirichlet(np.ones(T), size=4))
    for x0 in starts:
        r = minimize(
            lambda x: x @ M @ x,
            x0,
            jac=lambda x: 2 * M @ x,
            method="SLSQP",
            bounds=[(0, 1)] * T,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
            options={"ftol": 1e-16, "maxiter": 2000},
        )
        x = np.clip(r.x, 0, None)
        cands.append(_obj(G, x / x.sum()))
    return min(cands)


def _check_simplex(a: torch.Tensor, T: int):
    assert a.shape == (T,)
    assert (a >= -1e-9).all()
    assert abs(float(a.sum()) - 1.0) < 1e-9


def _random_grads(kind: str, T: int, D: int, seed: int) -> torch.Tensor:
    """(T, D) float64 gradients. The three kinds give optima with different supports."""
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(T, D, generator=gen, dtype=torch.float64)
    if kind == "shared":  # partly aligned tasks: the optimum is on a face, away from 0
        G = G + torch.randn(1, D, generator=gen, dtype=torch.float64)
    elif kind == "scaled":  # plus unequal gradient lengths
        G = G * (0.5 + torch.rand(T, 1, generator=gen, dtype=torch.float64))
        G = G + 0.5 * torch.randn(1, D, generator=gen, dtype=torch.float64)
    return G


CASES = [(k, T, D) for k in ("iso", "shared", "scaled") for T in range(2, 11) for D in (3, 20, 500)]


@pytest.mark.parametrize("kind,T,D", CASES)
def test_matches_independent_solver(kind, T, D):
    seed = 1000 * T + D
    G = _random_grads(kind, T, D, seed)
    a = min_norm_coefficients(G)
    _check_simplex(a, T)
    Gn, an = G.numpy(), a.numpy()
    ours, ref = _obj(Gn, an), _reference_min_norm(Gn, seed)
    scale = float((Gn**2).sum(1).max())
    atol = 1e-10 * scale  # for f* = 0 (D < T: the origin can lie in the hull)
    assert abs(ours - ref) <= 1e-6 * ref + atol, (ours, ref)
    # KKT certificate: no vertex e_i is a descent direction, i.e. (M a)_i >= a^T M a.
    Ma = Gn @ (Gn.T @ an)
    assert Ma.min() >= ours - 1e-6 * ours - atol


def test_float32_input_and_dtype():
    G = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    a = min_norm_coefficients(G)
    assert a.dtype == torch.float32
    ref = _reference_min_norm(G.double().numpy(), 0)
    assert abs(_obj(G.double().numpy(), a.double().numpy()) - ref) <= 1e-5 * ref


@pytest.mark.parametrize("T", [2, 3, 5])
def test_identical_gradients(T):
    g = torch.randn(1, 30, dtype=torch.float64)
    a = min_norm_coefficients(g.repeat(T, 1))
    _check_simplex(a, T)
    assert _obj(g.repeat(T, 1).numpy(), a.numpy()) == pytest.approx(float(g.pow(2).sum()), rel=1e-9)


@pytest.mark.parametrize("T,k", [(2, 0), (2, 1), (4, 2)])
def test_zero_gradient_gets_all_weight(T, k):
    G = torch.randn(T, 10, dtype=torch.float64)
    G[k] = 0
    a = min_norm_coefficients(G)
    assert float(a[k]) == pytest.approx(1.0, abs=1e-9)
    assert _obj(G.numpy(), a.numpy()) <= 1e-20


def test_opposite_gradients():
    g = torch.randn(1, 17, dtype=torch.float64)
    a = min_norm_coefficients(torch.cat([g, -g]))
    assert torch.allclose(a, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("scales", [(1.0, 2.0), (3.0, 0.5), (2.0, 1.5, 0.25, 4.0)])
def test_collinear_same_direction_picks_shortest(scales):
    g = torch.randn(1, 9, dtype=torch.float64)
    a = min_norm_coefficients(torch.cat([s * g for s in scales]))
    k = int(np.argmin(scales))
    assert float(a[k]) == pytest.approx(1.0, abs=1e-9)


def test_single_task_and_bad_input():
    assert torch.equal(min_norm_coefficients(torch.randn(1, 5)), torch.ones(1))
    with pytest.raises(ValueError):
        min_norm_coefficients(torch.randn(5))
    with pytest.raises(ValueError):
        min_norm_coefficients(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


def test_normalize_gradients():
    G = torch.tensor([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]])
    L = torch.tensor([2.0, 0.5, 1.0])
    assert torch.equal(normalize_gradients(G, L, "none"), G)
    # A zero divisor (the zero third row) leaves the row unchanged.
    assert torch.allclose(normalize_gradients(G, L, "l2"), torch.tensor([[0.6, 0.8], [0, 1], [0, 0]]))
    assert torch.allclose(normalize_gradients(G, L, "loss"), torch.tensor([[1.5, 2], [0, 4], [0, 0]]))
    assert torch.allclose(normalize_gradients(G, L, "loss+"), torch.tensor([[0.3, 0.4], [0, 2], [0, 0]]))
    with pytest.raises(ValueError):
        normalize_gradients(G, L, "bogus")


def test_shared_representation_grads():
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    enc, h1, h2 = torch.nn.Linear(6, 5), torch.nn.Linear(5, 1), torch.nn.Linear(5, 3)
    heads = [lambda z: h1(z).pow(2).mean(), lambda z: h2(z).sin().sum()]
    z = torch.relu(enc(x))  # (B=4, 5)
    unused = torch.ones((), requires_grad=True) * 2.0  # a loss that does not depend on z
    losses = [heads[0](z), heads[1](z), unused]
    G = shared_representation_grads(losses, z)
    assert G.shape == (3, 20) and not G.requires_grad
    for t, head in enumerate(heads):  # manual: one backward per task on a leaf copy of z
        zz = z.detach().clone().requires_grad_()
        head(zz).backward()
        assert torch.allclose(G[t], zz.grad.reshape(-1))
    assert torch.equal(G[2], torch.zeros(20))
    # The graph is retained: the weighted loss can still be backpropagated to the encoder.
    (losses[0] + losses[1]).backward()
    assert enc.weight.grad is not None


def test_the_two_task_solve_on_the_device_gives_the_host_formulas_bits():
    """The closed form is evaluated with tensor operations (no host round trip per step); a
    second implementation in Python floats, the pre-device formula, gives the same bits."""

    def host(g):
        g = g.double()
        d = g[0] - g[1]
        den = float(d @ d)
        if den <= 1e-24 * float((g * g).sum()):
            return torch.tensor([0.5, 0.5], dtype=torch.float64)
        gamma = min(max(float(-(d @ g[1])) / den, 0.0), 1.0)
        return torch.tensor([gamma, 1.0 - gamma], dtype=torch.float64)

    gen = torch.Generator().manual_seed(0)
    cases = [torch.randn(2, 50, generator=gen, dtype=torch.float32) for _ in range(200)]
    base = torch.randn(50, generator=gen)
    cases += [torch.stack([base, base]), torch.stack([base, 3 * base]), torch.stack([base, -base]), torch.zeros(2, 5)]
    for g in cases + [c.double() for c in cases]:
        a = min_norm_coefficients(g, check_finite=False)
        assert a.dtype == g.dtype and a.tolist() == host(g).to(g.dtype).tolist()


def test_without_the_finite_check_a_nan_gradient_gives_nan_weights():
    g = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    assert torch.isnan(min_norm_coefficients(g, check_finite=False)).all()
    with pytest.raises(ValueError, match="non-finite"):
        min_norm_coefficients(g)
