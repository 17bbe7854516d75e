"""Fig. 7's picture of a GrOWL layer: its rows ordered so that sparsity and tying show as blocks,
and their similarity matrix, sampled and stored in 8 bits beside the records
(:mod:`mdmtn.study.maps`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mdmtn.objectives.growl import ConvRows, similarity_matrix, weight_rows


def row_order(rows: Tensor) -> tuple[np.ndarray, int, int]:
    """An order of a layer's rows that shows its sparsity and tying as blocks (paper Fig. 7).

    Zero rows first, then groups of identical non-zero rows (the clusters that parameter tying
    made equal), largest group first, then the remaining rows; within each part the rows keep
    their original order.

    Args:
        rows: ``(n, d)`` row matrix.

    Returns:
        ``(order, n_zero, n_groups)``: a permutation of ``range(n)`` (int64 ndarray), the number of
        zero rows, and the number of groups of >= 2 identical non-zero rows.
    """
    r = rows.detach().cpu().double().numpy()
    n = r.shape[0]
    zero = ~r.any(axis=1)
    _, inverse, counts = np.unique(r, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    size = counts[inverse]  # how many rows share each row's values
    first = np.full(len(counts), n)
    np.minimum.at(first, inverse, np.arange(n))  # a group's place: its first row
    part = np.where(zero, 0, np.where(size >= 2, 1, 2))
    order = np.lexsort((np.arange(n), first[inverse], -np.where(part == 1, size, 0), part))
    return order.astype(np.int64), int(zero.sum()), int(len({g for g in inverse[(part == 1)]}))


def similarity_summary(model: torch.nn.Module, size: int = 256, conv_rows: ConvRows = "paper") -> list[dict]:
    """Similarity maps of every GrOWL layer of ``model`` for display (paper Fig. 7).

    Each map is :func:`similarity_matrix` of the layer's rows in :func:`row_order` (zero rows, then
    tied groups), and for a layer of more than ``size`` rows, of ``size`` rows taken at even
    spacing in that order: sampling instead of averaging keeps each block's contrast, and a block
    keeps its share of the picture. Values are stored quantised to 8 bits: ``S_u8`` (base64 of a
    ``(shown, shown)`` uint8 array, ``S = u8 / 127.5 - 1``).

    Returns:
        JSON-serialisable dicts: ``name``, ``label``, ``rows`` (n), ``shown``, ``zero_rows``,
        ``tied_groups``, ``SR`` (percent of zero rows), ``order`` (how rows were ordered), ``S_u8``.
    """
    import base64

    out = []
    for name, w in model.growl_weights():
        rows = weight_rows(w.detach().float().cpu(), conv_rows)
        n = rows.shape[0]
        order, zero, groups = row_order(rows)
        if n > size:
            order = order[np.round(np.linspace(0, n - 1, size)).astype(np.int64)]
        s = similarity_matrix(rows[torch.from_numpy(order)])  # S_ij depends on rows i and j only
        u8 = np.round((np.clip(s, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        part = "Monitor" if name.startswith("monitors") else "Shared Network"
        kind = "Convolutional" if w.dim() == 4 else "Linear"
        out.append(
            dict(
                name=name,
                label=f"{part} | {kind} | {name}",
                rows=n,
                shown=len(order),
                zero_rows=zero,
                tied_groups=groups,
                SR=100.0 * zero / n,
                order="zero rows, then groups of tied rows (largest first), then the rest"
                + (f"; {len(order)} of {n} rows at even spacing" if n > size else ""),
                S_u8=base64.b64encode(u8.tobytes()).decode("ascii"),
            )
        )
    return out


def similarity_map(entry: dict) -> np.ndarray:
    """The ``(shown, shown)`` float map in ``[-1, 1]`` of one :func:`similarity_summary` entry (also of
    the older format, whose ``S`` held the block-averaged map as nested lists)."""
    import base64

    if "S_u8" in entry:
        k = entry["shown"]
        return np.frombuffer(base64.b64decode(entry["S_u8"]), dtype=np.uint8).reshape(k, k) / 127.5 - 1.0
    return np.asarray(entry["S"], dtype=float)
