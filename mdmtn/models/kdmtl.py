"""KDMTL (Li & Bilen 2020, "Knowledge distillation for multi-task learning") as the authors code it.

The student is HPS (shared network S plus one linear head per task) with one *adaptor* per task,
Linear(hidden->hidden)-ReLU, applied to S(u) only for the distillation term; the heads read S(u)
directly. The teachers are single-task networks (:class:`~mdmtn.models.STL`) whose feature is the
50-/32-d output of their shared network. See :mod:`mdmtn.training.baselines.kdmtl` for the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from mdmtn.models.backbone import BackboneSpec
from mdmtn.models.multitask import HPS


class KDMTL(HPS):
    """HPS student with per-task adaptors (27,450 / 44,852 parameters on MultiMNIST / Cifar10Mnist)."""

    def __init__(self, spec: BackboneSpec, n_tasks: int = 2) -> None:
        super().__init__(spec, n_tasks)
        self.adaptors = nn.ModuleList(
            nn.Sequential(nn.Linear(spec.hidden, spec.hidden), nn.ReLU()) for _ in range(n_tasks)
        )

    def adapted_features(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Adaptor outputs for the shared feature ``z`` (B, hidden): T tensors (B, hidden)."""
        return [a(z) for a in self.adaptors]
