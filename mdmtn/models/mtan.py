"""MTAN (Liu, Johns & Davison 2019) as the authors' code builds it for MultiMNIST / Cifar10Mnist.

The shared network is the paper's S, split into its three blocks (book appendix):
B1 = conv1-pool-(BN)-ReLU, B2 = conv2-pool-(BN)-ReLU, B3 = flatten-Linear-ReLU. Each task t has
two attention modules:

* A1_t: Conv1x1(c1->c1) -(BN)- ReLU - Conv(c1->c2, k) - MaxPool -(BN)- Sigmoid. It reads B1's
  output (B, c1, h1, h1) and gives a mask of B2's shape (B, c2, h2, h2);
* A2_t: Flatten - Linear(F->F) - ReLU - Linear(F->hidden) - Sigmoid, F = c2*h2*h2. It reads the
  masked B2 features and gives a mask of B3's shape (B, hidden).

Task t's head sees ``B3(x) * A2_t(B2(x) * A1_t(B1(x)))``.

The authors' code builds one A1 and one A2 and puts the *same* instances in every task's slot,
so the "task-specific" attention is shared (departure #25). The default here gives each task its
own modules; ``shared_attention=True`` reproduces the code (parameters then count once:
146,250 / 1,412,900 instead of 270,150 / 2,783,060 for MultiMNIST / Cifar10Mnist).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.models.backbone import BackboneSpec, SharedNet, pool_bn_relu
from mdmtn.models.multitask import linear_heads


def _first_attention(spec: BackboneSpec) -> nn.Sequential:
    """A1: (B, c1, h1, h1) -> mask (B, c2, h2, h2) in (0, 1)."""
    c1, c2 = spec.conv_channels
    bn = spec.batchnorm
    return nn.Sequential(
        nn.Conv2d(c1, c1, kernel_size=1),
        *([nn.BatchNorm2d(c1)] if bn else []),
        nn.ReLU(),
        nn.Conv2d(c1, c2, kernel_size=spec.kernel),
        nn.MaxPool2d(2),
        *([nn.BatchNorm2d(c2)] if bn else []),
        nn.Sigmoid(),
    )


def _second_attention(spec: BackboneSpec) -> nn.Sequential:
    """A2: (B, c2, h2, h2) -> mask (B, hidden) in (0, 1)."""
    n = spec.conv_channels[1] * spec.feature_hw(2) ** 2
    return nn.Sequential(nn.Flatten(), nn.Linear(n, n), nn.ReLU(), nn.Linear(n, spec.hidden), nn.Sigmoid())


class MTAN(nn.Module):
    """Shared network S with per-task soft-attention masks on its 2nd and 3rd blocks.

    ``forward(x)`` (B, C, H, W) -> list of T log-probability tensors (B, num_classes).
    Parameters are registered in the authors' order (shared, heads, attention), which is the
    order LSUV initialises them in.
    """

    def __init__(self, spec: BackboneSpec, n_tasks: int = 2, shared_attention: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.shared_attention = shared_attention
        self.shared = SharedNet(spec)
        self.task_heads = linear_heads(spec, n_tasks)
        if shared_attention:  # the same two modules in every task's slot, as the authors' code
            pair = nn.ModuleList([_first_attention(spec), _second_attention(spec)])
            self.attention = nn.ModuleList([pair] * n_tasks)
        else:
            self.attention = nn.ModuleList(
                nn.ModuleList([_first_attention(spec), _second_attention(spec)]) for _ in range(n_tasks)
            )

    def representation(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-task head inputs, (B, hidden) each."""
        s = self.shared
        b1 = pool_bn_relu(s.conv1(x), s.bn1)
        b2 = pool_bn_relu(s.conv2(b1), s.bn2)
        b3 = F.relu(s.fc(b2.flatten(1)))
        return [b3 * a2(b2 * a1(b1)) for a1, a2 in self.attention]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [F.log_softmax(h(z), dim=1) for h, z in zip(self.task_heads, self.representation(x))]

    def growl_weights(self) -> list[tuple[str, nn.Parameter]]:
        """The shared network's inner layers, as for HPS (MTAN is not sparsified in the paper)."""
        return [("shared.conv2.weight", self.shared.conv2.weight), ("shared.fc.weight", self.shared.fc.weight)]
