"""Tests for mdmtn.objectives.metrics against brute-force Python counting (no use of weight_rows)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mdmtn.objectives.metrics import accuracy, layer_row_stats, row_stats, sparsity_metrics


def _brute_rows(w: torch.Tensor, conv_rows: str) -> list[tuple[float, ...]]:
    """Rows built element by element from the definitions in the book appendix"""
    a = w.detach().numpy()
    if a.ndim == 2:  # Linear (out, in): row i = outgoing weights of input neuron i
        out, n_in = a.shape
        return [tuple(float(a[o, i]) for o in range(out)) for i in range(n_in)]
    out, n_in = a.shape[:2]
    if conv_rows == "paper":  # row i = all weights reading input channel i
        return [tuple(float(x) for o in range(out) for x in a[o, i].flatten()) for i in range(n_in)]
    flat = [float(x) for x in a.flatten()]  # memory order, chunked into n_in rows
    L = len(flat) // n_in
    return [tuple(flat[r * L : (r + 1) * L]) for r in range(n_in)]


def _brute_metrics(model: nn.Module, conv_rows: str, exclude=()) -> dict:
    total = zero = unique = 0
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name in exclude:
            continue
        rows = _brute_rows(p, conv_rows)
        total += len(rows)
        zero += sum(1 for r in rows if sum(r) == 0)
        seen = set()
        for r in rows:
            seen.add(tuple(0.0 if x == 0 else x for x in r))  # -0.0 == 0.0
        unique += len(seen)
    return {"total": total, "zero": zero, "unique": unique}


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 12, 3)
        self.fc = nn.Linear(48, 10)
        self.head = nn.Linear(10, 4)
        self.alpha = nn.Parameter(torch.tensor([1.0, 0.0]))
        self.t = nn.Parameter(torch.tensor(0.3))


def _planted_model(seed=0) -> _Tiny:
    torch.manual_seed(seed)
    m = _Tiny()
    with torch.no_grad():
        # Linear rows = input neurons (columns): zero rows and duplicated rows
        m.fc.weight[:, [0, 5, 9, 30]] = 0
        m.fc.weight[:, 7] = -0.0 * m.fc.weight[:, 7]  # a zero row with sign bits (-0.0 entries)
        m.fc.weight[:, 11] = m.fc.weight[:, 12]
        m.fc.weight[:, 13] = m.fc.weight[:, 12]
        m.fc.weight[:, 20] = m.fc.weight[:, 21]
        m.head.weight[:, 3] = 0
        # conv2: paper rows = input channels; zero channel 2, duplicate channel 4 := 5
        m.conv2.weight[:, 2] = 0
        m.conv2.weight[:, 4] = m.conv2.weight[:, 5]
        # conv2: zero output filters 0 and 1 (= code row 0, since out = 2·in)
        m.conv2.weight[0:2] = 0
        # a non-zero row whose entries sum to 0 (authors' sum test counts it as zero)
        m.head.weight[:, 5] = 0
        m.head.weight[0, 5], m.head.weight[1, 5] = 0.5, -0.5
    return m


@pytest.mark.parametrize("conv_rows", ["code", "paper"])
def test_sparsity_metrics_vs_brute_force(conv_rows):
    m = _planted_model()
    got = sparsity_metrics(m, conv_rows=conv_rows)
    ref = _brute_metrics(m, conv_rows)
    assert got["total_rows"] == ref["total"] == 3 + 6 + 48 + 10
    assert got["zero_rows"] == ref["zero"]
    assert got["unique_rows"] == ref["unique"]
    assert got["nonzero_rows"] == ref["total"] - ref["zero"]
    assert got["SR"] == pytest.approx(100 * ref["zero"] / ref["total"])
    assert got["CR"] == pytest.approx(ref["total"] / ref["unique"])
    assert got["PS"] == pytest.approx((ref["total"] - ref["zero"]) / ref["unique"])


def test_planted_counts_explicit():
    m = _planted_model()
    # fc: 48 rows; zero rows 0,5,9,30,7 -> 5 zero; unique = 48 - 5 + 1 (one zero row) - 2 (11,13 dup 12)
    #     - 1 (20 dup 21) = 41
    assert row_stats(m.fc.weight) == (48, 5, 41)
    # head: 10 rows; row 3 zero, row 5 sums to 0 (counted zero by the sum test) but is distinct
    assert row_stats(m.head.weight) == (10, 2, 10)
    # conv2 paper: channel 2 zero, channel 4 duplicates 5 (filters 0,1 zeroed in every channel row)
    assert row_stats(m.conv2.weight, "paper") == (6, 1, 5)
    # conv2 code: row 0 = filters 0,1 (zero); other rows distinct
    assert row_stats(m.conv2.weight, "code") == (6, 1, 6)


def test_sparsity_metrics_excludes_vectors_and_names():
    m = _planted_model()
    names = set(layer_row_stats(m))
    assert names == {"conv1.weight", "conv2.weight", "fc.weight", "head.weight"}
    got = sparsity_metrics(m, exclude={"head.weight"})
    ref = _brute_metrics(m, "code", exclude={"head.weight"})
    assert (got["total_rows"], got["zero_rows"], got["unique_rows"]) == (ref["total"], ref["zero"], ref["unique"])


def test_parameter_level_metrics():
    m = _planted_model()
    got = sparsity_metrics(m)
    mats = [p for p in m.parameters() if p.ndim > 1]
    total = sum(p.numel() for p in mats)
    zero = sum(int(x == 0) for p in mats for x in p.detach().flatten().tolist())
    assert got["params_total"] == total
    assert got["params_zero"] == zero
    assert got["param_SR"] == pytest.approx(100 * zero / total)


def test_metrics_no_sharing_ps_slightly_below_one():
    lin = nn.Linear(6, 4)
    with torch.no_grad():
        lin.weight[:, [1, 3]] = 0
    got = sparsity_metrics(nn.Sequential(lin))
    # 6 rows, 2 zero, unique = 4 nonzero + 1 zero row = 5
    assert (got["total_rows"], got["zero_rows"], got["unique_rows"]) == (6, 2, 5)
    assert got["SR"] == pytest.approx(100 * 2 / 6)
    assert got["CR"] == pytest.approx(6 / 5)
    assert got["PS"] == pytest.approx(4 / 5)


def test_metrics_empty_model():
    got = sparsity_metrics(nn.Sequential(nn.BatchNorm1d(3)))
    assert got["total_rows"] == 0 and math.isnan(got["SR"]) and math.isnan(got["CR"])


def test_paper_row_totals_mdmtn_mm_shapes():
    """Row totals of the book appendix from the MultiMNIST MDMTN layer shapes (stand-in module)."""

    class MM(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.fc = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5), nn.Linear(320, 50)
            self.h1, self.h2 = nn.Linear(50, 10), nn.Linear(50, 10)
            self.mc1, self.mf1 = nn.Conv2d(1, 20, 5), nn.Linear(2880, 50)
            self.mc2, self.mf2 = nn.Conv2d(1, 20, 5), nn.Linear(2880, 50)
            self.alpha = nn.ParameterList([nn.Parameter(torch.tensor([1.0, 0.0])) for _ in range(2)])

    got = sparsity_metrics(MM())
    assert got["total_rows"] == 6193
    assert got["zero_rows"] == 0 and got["unique_rows"] == 6193 and got["CR"] == 1.0


def test_accuracy():
    logits = torch.tensor([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0], [5.0, 4.0]])
    y = torch.tensor([1, 0, 0, 1])
    assert accuracy(logits, y) == pytest.approx(0.5)
    assert isinstance(accuracy(logits, y), float)
    assert math.isnan(accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)))
