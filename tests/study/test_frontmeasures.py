"""mdmtn.study.frontmeasures: the dominated share against hand-counted cases."""

import numpy as np
import pytest

from mdmtn.study.frontmeasures import dominated_share


def test_dominated_share_counts_weak_dominance():
    a = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.5, 2.5]])
    assert dominated_share(a, b) == pytest.approx(1 / 3)  # [1, 1] equals a point of b: weakly dominated
    assert np.isnan(dominated_share(np.empty((0, 2)), b)) and dominated_share(a, np.empty((0, 2))) == 0.0


def _runs(points):
    from mdmtn.records.schema import Metrics, RunRecord

    return [
        RunRecord(key=f"r{i}", status="ok", config={}, metrics=Metrics([0.9], 0.9, train_objectives=list(p)))
        for i, p in enumerate(points)
    ]


def _grid_share(points, ref, n=60):
    """Brute force: the share of the cells of an n³ grid over [0, ref] whose centre some point
    weakly dominates (a second implementation, independent of moocore)."""
    c = (np.arange(n) + 0.5) / n
    cells = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3) * ref
    p = np.asarray(points, dtype=float)
    return float(((p[None, :, :] <= cells[:, None, :]).all(-1).any(-1)).mean())


def test_shared_hypervolumes_use_one_box_and_match_a_closed_form_and_a_grid():
    from mdmtn.study.frontmeasures import shared_hypervolumes

    a, b = [[1.0, 2.0, 3.0], [2.0, 1.0, 3.0]], [[4.0, 4.0, 4.0]]
    ref, hv = shared_hypervolumes({"a": _runs(a), "b": _runs(b)}, margin=1.25)
    np.testing.assert_allclose(ref, [5.0, 5.0, 5.0])  # 1.25 x the largest value of each objective over both
    # closed form: one point's box (1 - p/r) per axis; two boxes by inclusion-exclusion
    assert hv["b"] == pytest.approx(0.2**3)
    box = lambda p: np.prod(1 - np.asarray(p) / 5.0)  # noqa: E731
    assert hv["a"] == pytest.approx(box(a[0]) + box(a[1]) - box([2.0, 2.0, 3.0]))
    assert hv["a"] == pytest.approx(_grid_share(a, ref), abs=0.02)
    # a dominated run adds nothing; a sweep alone gets its own box (so only one call's values compare)
    _, with_dominated = shared_hypervolumes({"a": _runs(a + [[3.0, 3.0, 3.0]]), "b": _runs(b)}, margin=1.25)
    assert with_dominated["a"] == pytest.approx(hv["a"])


def test_shared_hypervolumes_refuse_what_has_no_box():
    from mdmtn.study.frontmeasures import shared_hypervolumes

    with pytest.raises(ValueError, match="no runs"):
        shared_hypervolumes({"a": []})
    with pytest.raises(ValueError, match="finite, positive"):
        shared_hypervolumes({"a": _runs([[float("nan"), 1.0, 1.0]])})
