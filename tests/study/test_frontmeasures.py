"""mdmtn.study.frontmeasures: the dominated share against hand-counted cases."""

import numpy as np
import pytest

from mdmtn.study.frontmeasures import dominated_share


def test_dominated_share_counts_weak_dominance():
    a = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.5, 2.5]])
    assert dominated_share(a, b) == pytest.approx(1 / 3)  # [1, 1] equals a point of b: weakly dominated
    assert np.isnan(dominated_share(np.empty((0, 2)), b)) and dominated_share(a, np.empty((0, 2))) == 0.0
