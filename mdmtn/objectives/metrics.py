"""Sparsity metrics SR / CR / PS (defined in the book's appendix on the authors' code) and accuracy.

The paper's unit is the **row** of the reshaped weight matrix (an input neuron / input channel), not the
scalar parameter, counted over *all* weight tensors with ``ndim > 1`` — regularised layers, input convs and
task heads alike. Biases, BatchNorm affine parameters, α and t are 1-D or scalars and therefore excluded
automatically. Per layer:

* ``total``   = number of rows;
* ``zero``    = rows whose **sum** is 0 (the authors' test);
* ``nonzero`` = total − zero;
* ``unique``  = number of distinct rows, so all zero rows of a layer count as one unique row.

Summed over layers: ``SR = 100·zero/total`` (percent), ``CR = total/unique``, ``PS = nonzero/unique``
(PS can be slightly < 1 without any sharing because of the one "zero" unique row).

Conv rows default to the authors' memory-order ``view(in, -1)`` (``conv_rows="code"``) so that the numbers
are comparable with the paper; zero-row counts differ between the two semantics only in conv layers.

Parameter-level sparsity (``params_*``, ``param_SR``) is *not* what the paper reports; it is provided
additionally, over the same weight tensors.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from mdmtn.objectives.growl import ConvRows, weight_rows

__all__ = ["row_stats", "sparsity_metrics", "layer_row_stats", "layer_rows_block", "part_sr", "accuracy"]


@torch.no_grad()
def row_stats(w: Tensor, conv_rows: ConvRows = "code") -> tuple[int, int, int]:
    """Row statistics of one weight tensor (``ndim >= 2``).

    Returns:
        ``(total, zero, unique)``: number of rows, rows with ``sum == 0``, distinct rows (exact equality;
        ``-0.0`` and ``+0.0`` are the same value).
    """
    rows = weight_rows(w.detach(), conv_rows)
    total = int(rows.shape[0])
    zero = int((rows.sum(dim=1) == 0).sum().item())
    # "+ 0.0" maps -0.0 to +0.0 so that a zero row produced by scaling a negative entry by 0 is not counted
    # as distinct from an all-+0 row.
    unique = int(torch.unique(rows + 0.0, dim=0).shape[0]) if total else 0
    return total, zero, unique


def _matrices(model: nn.Module, exclude: Iterable[str]) -> list[tuple[str, Tensor]]:
    """Weights of the model's Linear and conv layers (the paper's "weight tensors"); other
    multi-dimensional parameters, such as MDMTN's fusion weights α (T, 2), are not layers."""
    excl = set(exclude)
    return [
        (f"{name}.weight" if name else "weight", m.weight)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) and m.weight.ndim > 1 and f"{name}.weight" not in excl
    ]


@torch.no_grad()
def layer_row_stats(
    model: nn.Module, conv_rows: ConvRows = "code", exclude: Iterable[str] = ()
) -> dict[str, tuple[int, int, int]]:
    """Per-tensor :func:`row_stats` (``{name: (total, zero, unique)}``) over the tensors that
    :func:`sparsity_metrics` counts."""
    return {name: row_stats(p, conv_rows) for name, p in _matrices(model, exclude)}


@torch.no_grad()
def layer_rows_block(model: nn.Module, conv_rows: ConvRows = "code") -> dict:
    """A record's ``layer_rows``: ``rows`` ``{tensor name: [total, zero, unique]}`` over the tensors
    :func:`sparsity_metrics` counts (so the per-layer counts add up to the record's SR), and
    ``growl``: the names of the layers GrOWL regularises (``model.growl_weights()``; in MDMTN
    ``shared.*`` and the task-specific ``monitors.*``), which Fig. 7's claims compare."""
    rows = {name: list(stats) for name, stats in layer_row_stats(model, conv_rows).items()}
    growl = [name for name, _ in model.growl_weights()] if hasattr(model, "growl_weights") else []
    return dict(rows=rows, growl=growl)


def part_sr(block: dict, prefix: str) -> float | None:
    """SR (percent of zero rows) of the GrOWL layers of a ``layer_rows`` block whose names start
    with ``prefix`` (``"monitors."``, ``"shared."``); None if there are none."""
    names = [n for n in block["growl"] if n.startswith(prefix) and n in block["rows"]]
    total = sum(block["rows"][n][0] for n in names)
    return 100.0 * sum(block["rows"][n][1] for n in names) / total if total else None


@torch.no_grad()
def sparsity_metrics(model: nn.Module, conv_rows: ConvRows = "code", exclude: Iterable[str] = ()) -> dict:
    """Row-based SR / CR / PS of a model (book appendix) plus labelled parameter-level sparsity.

    Args:
        model: any module; the weight of every Linear/conv layer whose name is not in ``exclude`` is counted.
        conv_rows: conv row semantics (``"code"`` reproduces the paper's numbers).
        exclude: parameter names (as in ``named_parameters()``) to leave out.

    Returns:
        dict with
            * ``total_rows``, ``zero_rows``, ``nonzero_rows``, ``unique_rows`` (ints, summed over tensors);
            * ``SR`` (percent) ``= 100·zero_rows/total_rows``; ``CR = total_rows/unique_rows``;
              ``PS = nonzero_rows/unique_rows`` — the paper's metrics;
            * ``params_total``, ``params_zero`` (ints: scalar entries of the same tensors, exact zeros) and
              ``param_SR`` (percent) — parameter-level sparsity, *not* reported by the paper.
        Ratios are ``nan`` when their denominator is 0 (no matrices).
    """
    total = zero = unique = 0
    p_total = p_zero = 0
    for _, p in _matrices(model, exclude):
        t, z, u = row_stats(p, conv_rows)
        total += t
        zero += z
        unique += u
        p_total += p.numel()
        p_zero += int((p.detach() == 0).sum().item())
    nan = float("nan")
    return {
        "total_rows": total,
        "zero_rows": zero,
        "nonzero_rows": total - zero,
        "unique_rows": unique,
        "SR": 100.0 * zero / total if total else nan,
        "CR": total / unique if unique else nan,
        "PS": (total - zero) / unique if unique else nan,
        "params_total": p_total,
        "params_zero": p_zero,
        "param_SR": 100.0 * p_zero / p_total if p_total else nan,
    }


@torch.no_grad()
def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction (in ``[0, 1]``) of samples whose arg-max class ``logits.argmax(1)`` (``(N, C)``) equals the
    label ``y`` (``(N,)``). ``nan`` for ``N = 0``."""
    if logits.shape[0] == 0:
        return float("nan")
    return float((logits.argmax(dim=1) == y.to(logits.device)).double().mean().item())
