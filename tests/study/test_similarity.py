"""mdmtn.study.similarity: Fig. 7's row order against a hand-worked example, and the stored map
against the similarity matrix of the rows it samples."""

from __future__ import annotations

import numpy as np
import torch

from mdmtn.objectives.growl import similarity_matrix, weight_rows
from mdmtn.study.similarity import row_order, similarity_map, similarity_summary


def test_row_order_puts_zero_rows_then_tied_groups_largest_first():
    g = torch.Generator().manual_seed(1)
    a, b, c, d = (torch.randn(5, generator=g) for _ in range(4))
    z = torch.zeros(5)
    rows = torch.stack([a, z, b, a, c, z, b, a, d])  # a x3, b x2, zero x2, c and d alone
    order, n_zero, n_groups = row_order(rows)
    assert sorted(order.tolist()) == list(range(9))
    assert order.tolist() == [1, 5, 0, 3, 7, 2, 6, 4, 8]
    assert (n_zero, n_groups) == (2, 2)
    dense = torch.randn(6, 3, generator=g)  # nothing tied, nothing zero: the original order
    assert row_order(dense)[0].tolist() == list(range(6))


def test_similarity_summary_samples_the_ordered_rows_without_averaging():
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(40, 64, bias=False)  # GrOWL rows of a Linear weight: its 40 input columns

        def growl_weights(self):
            return [("fc", self.fc.weight)]

    net = Net()
    with torch.no_grad():
        w = net.fc.weight
        w[:, :10] = 0.0  # 10 zero rows
        w[:, 10:25] = w[:, 10:11].clone()  # 15 tied rows
    (m,) = similarity_summary(net, size=16)
    rows = weight_rows(net.fc.weight.detach())
    order, _, _ = row_order(rows)
    picked = order[np.round(np.linspace(0, 39, 16)).astype(int)]
    ref = similarity_matrix(rows[torch.from_numpy(picked)])
    s = similarity_map(m)
    assert s.shape == (16, 16) and m["shown"] == 16 and m["rows"] == 40
    np.testing.assert_allclose(s, ref, atol=0.5 / 127.5 + 1e-12)  # 8-bit storage
    assert (m["zero_rows"], m["tied_groups"], m["SR"]) == (10, 1, 25.0)
    # the zero block and the tied block are pure white (1) in the sampled map, not averaged to grey
    k0 = int(np.sum(np.isin(picked, np.arange(10))))
    assert k0 >= 3 and np.all(s[:k0, :k0] == 1.0)
