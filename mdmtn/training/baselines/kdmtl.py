"""KDMTL baseline (Li & Bilen 2020) as the authors run it (book appendix).

1. Teachers: one :class:`~mdmtn.models.STL` network per task, Adam, ``kd_teacher_epochs`` (100)
   epochs, lr ``kd_teacher_lr`` × ``kd_teacher_lr_decay`` after *every* epoch (so on MultiMNIST,
   1e-2 × 0.5 per epoch, the lr is below 1e-8 by epoch 20: as coded), best validation epoch.
2. Student :class:`~mdmtn.models.KDMTL` (HPS + per-task adaptors), loss
   ``Σ_t CE_t + Σ_t λ_t · mean_b || n(adaptor_t(S(u))) − n(f_t(u)) ||²``, n = per-sample L2
   normalisation, f_t = teacher t's 50-/32-d feature. Two Adam optimisers as coded: one over all
   student parameters (lr ``lr``, StepLR(``lr_step``, ``lr_decay``)), one over the adaptors (lr
   ``kd_adaptor_lr``, weight decay ``kd_adaptor_weight_decay``, no schedule); both step every batch.
3. λ search over ``kd_lambdas`` (``search_epochs`` epochs on a random ``search_fraction`` (20%) of
   the training split each), then ``epochs`` (200) epochs on the whole split; LSUV before each
   (adaptors: orthonormal only, since they are not part of the forward pass LSUV measures); the
   best-validation epoch is tested.

The teachers are frozen and run in eval mode. (The authors' teachers stayed in train mode, which
changes nothing on MultiMNIST but lets Cifar10Mnist's BatchNorm use batch statistics.)

The authors' loss detached *both* sides of the distillation term, so it had no gradient and
KDMTL reduced to an equal-weight sum (departure #24). The default detaches only the teacher side
(the student's shared network and adaptors learn from it); ``kd_detach="both"`` reproduces the code.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, TaskTensors
from mdmtn.models import build_model
from mdmtn.objectives.lsuv import orthonormal_
from mdmtn.training.baselines.common import CHANNELS_LAST, begin_search_run, lsuv_init_
from mdmtn.training.baselines.stl import train_stl_set
from mdmtn.training.loop import EpochLoop, evaluate


def distillation_loss(
    student_feats: Sequence[torch.Tensor],
    teacher_feats: Sequence[torch.Tensor],
    lambdas: Sequence[float],
    detach: str = "teacher",
) -> torch.Tensor:
    """``Σ_t λ_t · mean_b || n(s_t) − n(f_t) ||²`` for features (B, d) per task.

    The teacher side never carries a gradient. ``detach="both"`` also detaches the student side
    (the authors' code: the term is then a constant). n(v) = v / max(||v||, 1e-12): the authors
    divided by the plain norm, which is NaN for an all-zero ReLU feature.
    """
    total = torch.zeros((), device=student_feats[0].device)
    for s, f, lam in zip(student_feats, teacher_feats, lambdas):
        if detach == "both":
            s = s.detach()
        d = F.normalize(s, dim=1) - F.normalize(f.detach(), dim=1)
        total = total + lam * d.pow(2).sum(1).mean()
    return total


class _ForwardLayers(nn.Module):
    """The student's shared network and heads only: what LSUV may measure (the adaptors are not
    run by ``forward``, so a forward hook on them never fires)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.shared, self.task_heads = student.shared, student.task_heads
        self._forward = student.forward

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._forward(x)


def kdmtl_step(
    student: nn.Module,
    teachers: Sequence[nn.Module],
    opt: torch.optim.Optimizer,
    adaptor_opt: torch.optim.Optimizer,
    lambdas: Sequence[float],
    detach: str,
):
    """Step function: task losses + distillation; returns the task losses (T,)."""

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = student.shared(x)
        losses = torch.stack(
            [F.nll_loss(F.log_softmax(h(z), dim=1), y[:, t]) for t, h in enumerate(student.task_heads)]
        )
        with torch.no_grad():
            feats = [teacher.representation(x)[0] for teacher in teachers]
        loss = losses.sum() + distillation_loss(student.adapted_features(z), feats, lambdas, detach)
        opt.zero_grad(set_to_none=True)
        adaptor_opt.zero_grad(set_to_none=True)
        loss.backward()
        adaptor_opt.step()
        opt.step()
        return losses.detach()

    return step


def train_kdmtl(cfg: RunConfig, splits: Splits, *, progress: bool = True, model=None):
    """Teachers, λ search, final student; returns a :class:`mdmtn.training.finish.Trained` (the student)."""
    run = begin_search_run(
        cfg,
        splits,
        "KDMTL",
        model,
        progress,
        lambda s: (
            cfg.n_tasks * cfg.kdmtl.teacher_epochs
            + (len(cfg.kdmtl.lambdas) * cfg.schedule.search_epochs if s else 0)
            + cfg.schedule.epochs
        ),
    )
    search_data, bar, history, fits = run.search_data, run.bar, run.history, run.fits
    try:
        teachers, loops = train_stl_set(
            cfg,
            splits,
            seed=cfg.seed + 7,
            epochs=cfg.kdmtl.teacher_epochs,
            lr=cfg.kdmtl.teacher_lr,
            lr_decay=cfg.kdmtl.teacher_lr_decay,
            lr_first_decay=1,
            lr_step=1,
            phase="teacher_task",
            bar=bar,
        )
        history += [h for loop in loops for h in loop.history]
        teacher_epochs = [loop.best_epoch for loop in loops]
        teachers.eval()
        for p in teachers.parameters():
            p.requires_grad_(False)
        teacher_test = evaluate(teachers, splits.test, cfg.data.eval_batch_size)["acc"]

        def fit(lambdas: Sequence[float], data: TaskTensors, epochs: int, phase: str) -> EpochLoop:
            i = next(fits)
            student = build_model("kdmtl", splits.input_shape, n_tasks=cfg.n_tasks)
            student.to(device=splits.train.x.device, memory_format=CHANNELS_LAST)
            lsuv_init_(_ForwardLayers(student), data, cfg.data.batch_size, seed=1000 * cfg.seed + 10 * i + 3)
            gen = torch.Generator().manual_seed(1000 * cfg.seed + 10 * i + 4)
            with torch.no_grad():
                for a in student.adaptors:
                    orthonormal_(a[0].weight, gen)
                    a[0].bias.zero_()
            opt = torch.optim.Adam(student.parameters(), lr=cfg.schedule.lr)
            adaptor_opt = torch.optim.Adam(
                student.adaptors.parameters(), lr=cfg.kdmtl.adaptor_lr, weight_decay=cfg.kdmtl.adaptor_weight_decay
            )
            step = kdmtl_step(student, teachers.nets, opt, adaptor_opt, lambdas, cfg.kdmtl.detach)
            return run.fit(cfg, splits, i, student, step, opt, data, epochs, phase, lambda: dict(lambdas=list(lambdas)))

        lam, lam_results = run.search(
            cfg.kdmtl.lambdas, lambda c: fit(c, search_data, cfg.schedule.search_epochs, "search_lambda")
        )
        final = fit(lam, splits.train, cfg.schedule.epochs, "final")
    finally:
        bar.close()
    return run.result(
        cfg,
        splits,
        final,
        lambdas=list(lam),
        search_lambda=lam_results,
        teacher_test_acc=teacher_test,
        teacher_selected_epoch=teacher_epochs,
    )
