import pytest

from mdmtn.study.toy import chebyshev_solution, solve_chebyshev, solve_weighted_sum


@pytest.mark.parametrize("k", [(0.3, 0.7), (0.5, 0.5), (0.7, 0.3)])
def test_chebyshev_reaches_interior_front_points(k):
    f1, f2 = solve_chebyshev(k)
    s, g = chebyshev_solution(k)
    assert f1 == pytest.approx(s, abs=2e-3) and f2 == pytest.approx(g, abs=2e-3)
    assert 0.05 < f1 < 0.95  # an interior point of the front


@pytest.mark.parametrize("w", [(0.3, 0.7), (0.5, 0.5), (0.7, 0.3)])
def test_weighted_sum_ends_at_an_end_point(w):
    f1, f2 = solve_weighted_sum(w)
    assert min(f1, 1 - f1) < 0.05
