import numpy as np
import pytest

from mdmtn.objectives.pareto import hypervolume, nondominated, sparsity_clusters


def brute_force_nondominated(p, eps):
    keep = []
    for i, pi in enumerate(p):
        dominated = any(np.all(pj <= pi - eps) and np.any(pj < pi - eps) for j, pj in enumerate(p) if j != i)
        keep.append(not dominated)
    return np.array(keep)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_nondominance_against_brute_force(seed, eps):
    rng = np.random.default_rng(seed)
    m = 2 + seed % 2
    p = np.round(rng.random((40, m)), 1)  # rounding creates ties and duplicates
    np.testing.assert_array_equal(nondominated(p, eps), brute_force_nondominated(p, eps))


def test_hypervolume_against_grid_count():
    rng = np.random.default_rng(0)
    p = rng.random((6, 2))
    ref = np.array([1.0, 1.0])
    g = (np.arange(2000) + 0.5) / 2000
    xx, yy = np.meshgrid(g, g)
    covered = np.zeros_like(xx, dtype=bool)
    for a, b in p:
        covered |= (xx >= a) & (yy >= b)
    assert hypervolume(p, ref) == pytest.approx(covered.mean(), abs=2e-3)
    assert hypervolume(np.empty((0, 2)), ref) == 0.0


def test_sparsity_clusters_greedy():
    labels = sparsity_clusters([10, 15, 50, 55, 21, 90])
    assert list(labels) == [0, 0, 1, 1, 2, 3]


def test_supported_points_are_those_a_weighted_sum_reaches_brute_force():
    from mdmtn.objectives.pareto import supported

    rng = np.random.default_rng(3)
    for _ in range(20):
        pts = rng.random((12, 2))
        pts = pts[nondominated(pts)]
        # brute force: a point is reached if it is the argmin of w·p for some w on a fine grid
        # (ties resolved to every minimiser)
        reached = np.zeros(len(pts), dtype=bool)
        for a in np.linspace(0, 1, 20001):
            s = pts @ np.array([a, 1 - a])
            reached |= s <= s.min() + 1e-12
        assert (supported(pts) == reached).all()


def test_supported_on_a_convex_and_a_concave_front():
    from mdmtn.objectives.pareto import supported

    t = np.linspace(0, np.pi / 2, 9)
    convex = np.c_[1 - np.sin(t), 1 - np.cos(t)]  # bulging towards the origin: every point reached
    concave = np.c_[np.cos(t), np.sin(t)]  # bulging away: only the two ends
    assert supported(convex).all()
    assert supported(concave).tolist() == [True] + [False] * 7 + [True]
