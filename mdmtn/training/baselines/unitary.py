"""Unitary scalarisation: the equal-weight sum of the task losses, the skeptic's baseline.

Kurin et al. ("In defense of the unitary scalarization for deep multi-task learning", NeurIPS
2022) found that many multi-task optimisers do not beat plain minimisation of Σ_t L_t when both
are trained and regularised alike. Here it is trained exactly like MGDA-UB
(:mod:`.mgda_train`): the same SGD with momentum, lr schedule, batches, full training set and
last-epoch model, on HPS or MDMTN. The only difference is the step: the update follows
(1/T) Σ_t L_t, that is MGDA's update with its weights fixed at the simplex's centre, so the
learning rate means the same for both (the sum Σ_t L_t would double the step size for T = 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits
from mdmtn.training.baselines.common import train_last_epoch


def unitary_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One update of ``model`` along the mean task loss on a batch x (B, C, H, W), y (B, T);
    returns the detached task losses (T,). A non-finite loss reaches the epoch loop's NaN check
    through the returned values, without a host synchronisation here."""
    losses = torch.stack([F.nll_loss(out, y[:, t]) for t, out in enumerate(model(x))])
    opt.zero_grad(set_to_none=True)
    losses.mean().backward()
    opt.step()
    return losses.detach()


def train_unitary(cfg: RunConfig, splits: Splits, *, progress: bool = True, model: nn.Module | None = None):
    """Train HPS or MDMTN (``cfg.model``, or a user's ``model``) on the mean of the task losses;
    returns a :class:`mdmtn.training.finish.Trained` whose model is the last epoch's."""
    return train_last_epoch(cfg, splits, unitary_step, progress=progress, model=model, phase="unitary")
