"""MGDA-UB (Sener & Koltun, NeurIPS 2018) for HPS and MDMTN: the training step and loop.

Per mini-batch (:func:`mgda_step`):

1. one forward pass; ``z`` = output of the shared network S, (B, hidden), and the task losses
   L_t (batch-mean NLL of the log-softmax outputs = cross-entropy);
2. task gradients, one row each, (T, D):
   * ``mgda_variant="ub"`` (default; Sener's "upper bound"): g_t = ∂L_t/∂z, D = B·hidden. Only
     the heads (and, for MDMTN, the fusion weight α_t0) are back-propagated per task, not S;
   * ``"params"``: g_t = ∂L_t/∂θ_S over the shared network's parameters (plain MGDA, as the
     authors' code did);
3. optional normalisation of each row (``mgda_normalization``: "none" as the authors ran it,
   or Sener's "l2" / "loss" / "loss+");
4. α = argmin_{α ∈ simplex} ||Σ α_t g_t||² (:func:`mdmtn.objectives.mgda.min_norm_coefficients`; for two
   tasks this is the exact solution that one Frank-Wolfe step from (1/2, 1/2) also reaches);
5. all gradients are cleared, then Σ_t α_t L_t is back-propagated through everything (S, heads,
   MDMTN monitors and α) and SGD with momentum takes one step.

For MDMTN the "shared representation" is S(u) itself, before the fusion
head_t(α_t0·S(u) + α_t1·M_t(u)): it is the only tensor that all tasks share. The monitors, α and
heads are task-specific and get their gradients from the α-weighted loss, as in Sener's
formulation where only the shared parameters are balanced.

The authors' code did not clear the gradients between the per-task passes and the update
(the book's appendix on the authors' code); ``mgda_grad_bug`` reproduces it: "2023" adds the last task's full gradient
to the update; "head" makes the solver see cumulative gradients [g1, g1+g2] and adds g1+g2.
(That is the same as back-propagating the extra losses, which is how it is done here.)

Schedule (paper appendix): SGD lr 1e-2, momentum 0.9, batch 256, 100 epochs, lr halved after
epochs 30, 60 and 90; the full training set (train+val, ``full_train``), no validation, the last
epoch is tested; MultiMNIST normalised, Cifar10Mnist in [0, 1] (book appendix). Incomplete training
batches are dropped (``drop_last``); the test set is evaluated in full for every method.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits
from mdmtn.objectives.mgda import min_norm_coefficients, normalize_gradients, shared_representation_grads
from mdmtn.training.baselines.common import train_last_epoch


def shared_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(z, task_inputs)``: the shared network's output z (B, hidden) and each head's input.

    z is captured with a forward hook on ``model.shared`` while ``model.representation(x)`` runs,
    so it is exactly the tensor the heads (and MDMTN's fusion) consume.
    """
    captured: list[torch.Tensor] = []
    handle = model.shared.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        reps = model.representation(x)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(f"model.shared ran {len(captured)} times in one forward pass; MGDA needs exactly one")
    return captured[0], reps


def task_gradients(
    losses: Sequence[torch.Tensor], z: torch.Tensor, shared_params: Sequence[torch.Tensor], variant: str
) -> torch.Tensor:
    """(T, D) detached task gradients: w.r.t. ``z`` ("ub", D = z.numel()) or the shared
    parameters ("params", D = their total size). The graph is kept for the weighted loss."""
    if variant == "ub":
        return shared_representation_grads(losses, z)
    rows = []
    for loss in losses:
        gs = torch.autograd.grad(loss, shared_params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, shared_params)])
        )
    return torch.stack(rows)


def mgda_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    variant: str = "ub",
    normalization: str = "none",
    grad_bug: str = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One MGDA(-UB) update of ``model`` on a batch x (B, C, H, W), y (B, T).

    Returns (task losses (T,), task weights α (T,)), both detached. ``model`` needs ``shared``,
    ``representation(x)`` and ``task_heads`` (HPS, MDMTN).
    """
    z, reps = shared_forward(model, x)
    losses = [F.nll_loss(F.log_softmax(h(r), dim=1), y[:, t]) for t, (h, r) in enumerate(zip(model.task_heads, reps))]
    shared_params = [p for p in model.shared.parameters() if p.requires_grad]
    grads = task_gradients(losses, z, shared_params, variant)
    if grad_bug == "head":  # no zero_grad between the task passes: the solver saw running sums
        grads = grads.cumsum(0)
    loss_values = torch.stack(losses).detach()
    # A non-finite gradient is flagged on the device by returning NaN losses, which the epoch
    # loop checks once per epoch: no host synchronisation per step (the run still ends in error).
    finite = torch.isfinite(grads).all()
    loss_values = torch.where(finite, loss_values, torch.full_like(loss_values, math.nan))
    alpha = min_norm_coefficients(normalize_gradients(grads, loss_values, normalization), check_finite=False).detach()
    total = sum(a * loss for a, loss in zip(alpha, losses))
    if grad_bug == "2023":  # the last task's gradient was still in .grad when the update was added
        total = total + losses[-1]
    elif grad_bug == "head":  # all task gradients were still in .grad
        total = total + sum(losses)
    opt.zero_grad(set_to_none=True)  # clears everything, α and monitors included (departure #14, #20)
    total.backward()
    opt.step()
    return loss_values, alpha


def train_mgda(cfg: RunConfig, splits: Splits, *, progress: bool = True, model: nn.Module | None = None):
    """Train HPS or MDMTN (``cfg.model``) with MGDA-UB; returns a :class:`mdmtn.training.finish.Trained`.

    ``splits`` are already prepared (:func:`mdmtn.data.prepare_splits`). The
    returned model is the last epoch's (``full_train``: there is no validation split).
    """
    weights: list[torch.Tensor] = []

    def step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses, alpha = mgda_step(model, opt, x, y, cfg.mgda.variant, cfg.mgda.normalization, cfg.mgda.grad_bug)
        weights.append(alpha.double())
        return losses

    def extra() -> dict:
        w = torch.stack(weights)
        weights.clear()
        return dict(
            mgda_weights_mean=w.mean(0).tolist(),
            mgda_weights_min=w.min(0).values.tolist(),
            mgda_weights_max=w.max(0).values.tolist(),
        )

    return train_last_epoch(
        cfg,
        splits,
        step,
        progress=progress,
        model=model,
        phase="mgda",
        extra=extra,
        record_extra=lambda last: dict(final_mgda_weights_mean=last["mgda_weights_mean"]),
    )
