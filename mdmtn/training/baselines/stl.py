"""Single-task learning (STL): the shared network S plus one head, one network per task.

Each network is trained on its own task with Adam for ``epochs`` epochs and the epoch with the
best validation accuracy *on that task* is kept (book appendix). Schedules as the authors' code:
MultiMNIST lr 1e-2 halved from epochs 1, 31, 61, 91 (their ExponentialLR stepped when
``epoch % 30 == 0``, epoch 0 included); Cifar10Mnist lr 1e-4 × 0.98 after every epoch. (The paper
text says lr_s = 5e-2 for Cifar10Mnist; the code used 1e-4, departure #23.) Default PyTorch
initialisation, no LSUV.

The record's model is an :class:`~mdmtn.models.STLSet`: task t is answered by network t, so
``test_acc`` holds both tasks' accuracies and SR/CR/PS count both networks.
:func:`train_single_task` is reused for the KDMTL teachers.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # not tqdm.auto: in a notebook without ipywidgets it prints a warning into the page

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits, TaskTensors
from mdmtn.models import STLSet, build_model
from mdmtn.training.baselines.common import CHANNELS_LAST, baseline_trained, column, lr_factor
from mdmtn.training.engine import seed_everything
from mdmtn.training.loop import EpochLoop, evaluate, progress_bar, run_epochs


def single_task_step(net: nn.Module, opt: torch.optim.Optimizer, task: int) -> Callable:
    """Step function for a single-task network (``net(x)`` -> [log-probs (B, C)]) on label column
    ``task`` of y (B, T); returns the loss as a (1,) tensor."""

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.nll_loss(net(x)[0], y[:, task])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()[None]

    return step


def train_single_task(
    net: nn.Module,
    task: int,
    train: TaskTensors,
    val: TaskTensors,
    *,
    epochs: int,
    lr: float,
    lr_decay: float,
    lr_first_decay: int,
    lr_step: int,
    batch_size: int,
    eval_batch_size: int,
    generator: torch.Generator,
    phase: str,
    bar: tqdm | None = None,
) -> EpochLoop:
    """Train one single-task network on task ``task`` with Adam; keeps its best-validation epoch
    (accuracy on that task). Returns the finished :class:`EpochLoop` (history, best epoch)."""
    net.to(device=train.x.device, memory_format=CHANNELS_LAST)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    val_t = column(val, task)
    return run_epochs(
        EpochLoop(
            model=net,
            step=single_task_step(net, opt, task),
            optimizers=[opt],
            train=train,
            epochs=epochs,
            batch_size=batch_size,
            lr_schedule=lambda e: lr_factor(e, lr_decay, lr_first_decay, lr_step),
            generator=generator,
            evaluate=lambda m: evaluate(m, val_t, eval_batch_size)["acc"],
            phase=phase,
        ),
        bar,
    )


def train_stl_set(
    cfg: RunConfig,
    splits: Splits,
    *,
    seed: int,
    epochs: int,
    lr: float,
    lr_decay: float,
    lr_first_decay: int,
    lr_step: int,
    phase: str,
    bar: tqdm | None,
) -> tuple[STLSet, list[EpochLoop]]:
    """Build an :class:`~mdmtn.models.STLSet` and train its network t on task t
    (:func:`train_single_task`, batches drawn from one generator seeded with ``seed``, phases
    ``<phase>1``, ``<phase>2``, ...): the STL baseline and KDMTL's teachers. Returns the set and
    each network's finished loop."""
    nets = build_model("stl", splits.input_shape, n_tasks=cfg.n_tasks)
    g = torch.Generator().manual_seed(seed)
    loops = [
        train_single_task(
            net,
            t,
            splits.train,
            splits.val,
            epochs=epochs,
            lr=lr,
            lr_decay=lr_decay,
            lr_first_decay=lr_first_decay,
            lr_step=lr_step,
            batch_size=cfg.data.batch_size,
            eval_batch_size=cfg.data.eval_batch_size,
            generator=g,
            phase=f"{phase}{t + 1}",
            bar=bar,
        )
        for t, net in enumerate(nets.nets)
    ]
    return nets, loops


def train_stl(cfg: RunConfig, splits: Splits, *, progress: bool = True, model=None):
    """Train one STL network per task; returns a :class:`mdmtn.training.finish.Trained` whose model is
    the :class:`~mdmtn.models.STLSet` of the selected networks."""
    if model is not None:
        raise ValueError("the STL baseline builds its own networks; bring-your-own models work with method 'mgda'")
    seed_everything(cfg.seed)
    bar = progress_bar(cfg, cfg.n_tasks * cfg.schedule.epochs, progress)
    try:
        sch = cfg.schedule
        stl, loops = train_stl_set(
            cfg,
            splits,
            seed=cfg.seed,
            epochs=sch.epochs,
            lr=sch.lr,
            lr_decay=sch.lr_decay,
            lr_first_decay=sch.lr_first_decay,
            lr_step=sch.lr_step,
            phase="stl_task",
            bar=bar,
        )
    finally:
        bar.close()
    history = [h for loop in loops for h in loop.history]
    objectives = [float("nan")] + [loop.history[-1]["train_objectives"][1] for loop in loops]
    selected = [loop.best_epoch for loop in loops]
    return baseline_trained(
        cfg,
        stl,
        splits,
        history,
        objectives,
        dict(selected_epoch=selected, selection="best validation accuracy per task"),
    )
