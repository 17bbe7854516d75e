"""The two building blocks of every architecture: the shared network S and a task monitor M_i.

Both datasets use the same layer pattern (paper Fig. 4, the book appendix); only the channel widths,
kernel size, hidden width and the use of BatchNorm differ, so one class per block is
parameterised by a :class:`BackboneSpec` chosen from the input shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """Layer widths of the shared network and monitors for one input shape.

    ``input_shape`` is (C, H, W). Convolutions have stride 1 and no padding; every conv is
    followed by a 2x2 max-pool, optional BatchNorm, then ReLU (BN after the pool, as the
    authors' code does).
    """

    input_shape: tuple[int, int, int]
    conv_channels: tuple[int, int]
    kernel: int
    hidden: int
    monitor_channels: int
    batchnorm: bool
    num_classes: int = 10

    def feature_hw(self, n_convs: int) -> int:
        """Spatial side after ``n_convs`` (conv, pool) stages."""
        hw = self.input_shape[1]
        for _ in range(n_convs):
            hw = (hw - self.kernel + 1) // 2
        return hw


MULTIMNIST_SPEC = BackboneSpec((1, 28, 28), (10, 20), 5, 50, 20, batchnorm=False)
CIFAR10MNIST_SPEC = BackboneSpec((3, 32, 32), (16, 32), 3, 32, 32, batchnorm=True)


def spec_for_input(input_shape: tuple[int, int, int]) -> BackboneSpec:
    """The paper's layer widths for an input shape (1x28x28 MultiMNIST, 3x32x32 Cifar10Mnist)."""
    for spec in (MULTIMNIST_SPEC, CIFAR10MNIST_SPEC):
        if tuple(input_shape) == spec.input_shape:
            return spec
    raise ValueError(
        f"no paper architecture for input shape {tuple(input_shape)}; pass a BackboneSpec "
        "(e.g. BackboneSpec(input_shape, (16, 32), 3, 32, 32, batchnorm=True)) explicitly"
    )


def pool_bn_relu(x: torch.Tensor, bn: nn.Module | None) -> torch.Tensor:
    """2×2 max-pool, optional BatchNorm, ReLU: the block after each convolution, (B, C, H, W) ->
    (B, C, H/2, W/2)."""
    x = F.max_pool2d(x, 2)
    if bn is not None:
        x = bn(x)
    return F.relu(x)


def _has_hooks(m: nn.Module) -> bool:
    from torch.nn.modules import module as _module

    return bool(
        m._forward_hooks or m._forward_pre_hooks or _module._global_forward_hooks or _module._global_forward_pre_hooks
    )


def _channels_last_only(h: torch.Tensor) -> bool:
    try:
        return h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous()
    except RuntimeError:  # inside torch.func.vmap (stacked training) memory formats cannot be asked
        return False


def flatten_linear_relu(fc: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """``relu(fc(h.flatten(1)))`` for h (B, C, H, W), whatever h's memory format.

    The fc weight's columns are in (C, H, W) order (checkpoints, GrOWL rows). A channels-last
    ``h`` (the trainer's layout) is flattened in its memory order (H, W, C), a free view, and
    the small weight's columns are permuted to match, instead of copying the batch of
    activations to (C, H, W) order; the backward then stays channels-last as well. Same result
    up to float summation order; 1.03-1.15x faster steps on this project's CPU
    (benchmarks/step_variants.py). An fc with hooks (LSUV's, pruning's) is called as a module,
    on the plain flatten, so that its hooks see the call.
    """
    b, c, hh, ww = h.shape
    if c > 1 and hh * ww > 1 and _channels_last_only(h) and not _has_hooks(fc):
        w = fc.weight.view(fc.out_features, c, hh, ww).permute(0, 2, 3, 1).reshape(fc.out_features, -1)
        return F.relu(F.linear(h.permute(0, 2, 3, 1).reshape(b, -1), w, fc.bias))
    return F.relu(fc(h.flatten(1)))


class SharedNet(nn.Module):
    """Shared network S: conv-pool-(BN)-ReLU twice, flatten, Linear-ReLU.

    Input (B, C, H, W) -> output (B, spec.hidden).
    """

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        c_in = spec.input_shape[0]
        c1, c2 = spec.conv_channels
        self.conv1 = nn.Conv2d(c_in, c1, spec.kernel)
        self.bn1 = nn.BatchNorm2d(c1) if spec.batchnorm else None
        self.conv2 = nn.Conv2d(c1, c2, spec.kernel)
        self.bn2 = nn.BatchNorm2d(c2) if spec.batchnorm else None
        self.fc = nn.Linear(c2 * spec.feature_hw(2) ** 2, spec.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pool_bn_relu(self.conv1(x), self.bn1)
        return flatten_linear_relu(self.fc, pool_bn_relu(self.conv2(x), self.bn2))


class Monitor(nn.Module):
    """Task monitor M_i: one conv-pool-(BN)-ReLU stage, flatten, Linear-ReLU.

    Same input and output shape as :class:`SharedNet` so the two can be fused.
    """

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        c_in = spec.input_shape[0]
        self.conv = nn.Conv2d(c_in, spec.monitor_channels, spec.kernel)
        self.bn = nn.BatchNorm2d(spec.monitor_channels) if spec.batchnorm else None
        self.fc = nn.Linear(spec.monitor_channels * spec.feature_hw(1) ** 2, spec.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_linear_relu(self.fc, pool_bn_relu(self.conv(x), self.bn))
