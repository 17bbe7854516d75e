"""Layer-sequential unit-variance initialisation (Mishkin & Matas 2016), as the paper uses it.

LSUV, the paper's initialisation: every Conv2d/Linear weight becomes an orthonormal matrix (SVD of a Gaussian), biases
0; then, with the model in eval mode, each layer in registration order is rescaled until the
std of its raw output on a training batch is within ``tol`` of 1 (at most ``max_attempts``).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn


@torch.no_grad()
def orthonormal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Fill ``weight`` (out, in, ...) with the SVD factor of a N(0,1) matrix of shape
    (out, in·kh·kw) whose shape matches (orthonormal rows when out < fan-in)."""
    rows, cols = weight.shape[0], weight[0].numel()
    a = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    q = u if u.shape == (rows, cols) else vh
    weight.copy_(q.reshape(weight.shape).to(weight.dtype))


@torch.no_grad()
def lsuv_(
    model: nn.Module,
    batches: Iterator[torch.Tensor],
    tol: float = 0.1,
    max_attempts: int = 11,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Initialise ``model`` in place with LSUV; ``batches`` yields input tensors (B, C, H, W),
    a fresh one per layer. Returns the final output std of each layer (for logging/tests)."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in layers:
        orthonormal_(m.weight, generator)
        if m.bias is not None:
            m.bias.zero_()
    was_training = model.training
    model.eval()  # BN uses its initial running statistics, as in the authors' code
    stds: list[float] = []
    for layer in layers:
        captured: dict[str, torch.Tensor] = {}
        hook = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
        x = next(batches)
        std = 0.0
        for _ in range(max_attempts):
            model(x)
            std = captured["out"].std().item()
            if abs(std - 1.0) <= tol or std == 0.0:
                break
            layer.weight.mul_(1.0 / std)
        hook.remove()
        stds.append(std)
    model.train(was_training)
    return stds
