"""What a model computes, layer by layer, read from the model itself (for diagrams and tables)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TracedLayer:
    """One weight layer as a forward pass met it.

    ``name``: module path (``shared.conv1``); ``branch``: the part of the model it belongs to
    (``shared``, ``monitors.0``, ``task_heads.1``, ...); ``kind``: ``Conv2d`` / ``Linear`` /
    ``BatchNorm2d``; ``in_shape`` / ``out_shape``: per-sample tensor shapes (batch dimension
    dropped); ``kernel``: conv kernel size or None; ``growl``: whether GrOWL acts on its weight;
    ``params``: its parameter count.
    """

    name: str
    branch: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, ...] | None
    growl: bool
    params: int


def trace_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[TracedLayer]:
    """Run one zero sample ``(1, *input_shape)`` through ``model`` and return its weight layers
    (Conv2d, Linear, BatchNorm2d) in call order, with the shapes they saw. The model is left as it
    was (eval mode for the pass, hooks removed)."""
    growl = {n.rsplit(".weight", 1)[0] for n, _ in model.growl_weights()} if hasattr(model, "growl_weights") else set()
    seen: list[TracedLayer] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        name = names[m]
        parts = name.split(".")
        branch = ".".join(parts[:2]) if parts[0] in ("monitors", "task_heads", "nets") else parts[0]
        seen.append(
            TracedLayer(
                name=name,
                branch=branch,
                kind=type(m).__name__,
                in_shape=tuple(inp[0].shape[1:]),
                out_shape=tuple(out.shape[1:]),
                kernel=tuple(getattr(m, "kernel_size", ())) or None,
                growl=name in growl,
                params=sum(p.numel() for p in m.parameters(recurse=False)),
            )
        )

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen
