"""What training returns, and the one builder of a finished run's record from it.

Every trainer (the paper's method, each baseline, a member of a stack) returns a :class:`Trained`:
the selected model and what its record needs, no record. :func:`finish` then builds the record
outside training, for every method alike: test and validation evaluation, sparsity, the optional
compressed-export summary, provenance and timing; it returns the :class:`TrainResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from mdmtn.core.config import RunConfig
from mdmtn.core.timing import PhaseTimer
from mdmtn.data import Splits
from mdmtn.objectives.metrics import layer_rows_block, sparsity_metrics
from mdmtn.records.machine import machine_info
from mdmtn.records.schema import RunRecord, new_record
from mdmtn.training.compress import compression_summary
from mdmtn.training.loop import evaluate


@dataclass
class Trained:
    """What a trainer returns: the selected ``model``; the per-epoch ``history``
    (:mod:`mdmtn.training.loop`'s meanings); ``train_objectives``, the last epoch's
    ``[L0, L1, ..., LT]``; the ``timer`` of its phases; ``fields``, the method's own record fields
    (top level, in order); ``compression`` (True: the compressed export's size, False: null,
    None: no field, the baselines); ``data_extra`` (more data provenance); the tying ``plans``."""

    model: nn.Module
    history: list[dict[str, Any]]
    train_objectives: Sequence[float]
    timer: PhaseTimer
    fields: dict[str, Any] = field(default_factory=dict)
    compression: bool | None = None
    data_extra: dict[str, Any] | None = None
    plans: list = field(default_factory=list)


@dataclass
class TrainResult:
    """A finished run: the selected model, the record as it is stored (``record``, JSON-serialisable)
    and the tying plan; :attr:`run_record` is the same record typed, as readers get it."""

    model: nn.Module
    record: dict[str, Any]
    plans: list = field(default_factory=list)

    @property
    def run_record(self) -> RunRecord:
        """The record as a :class:`mdmtn.records.RunRecord` (``result.run_record.metrics.SR``)."""
        return RunRecord.from_dict(self.record)


def finish(cfg: RunConfig, trained: Trained, splits: Splits, t_start: float, device: torch.device | str) -> TrainResult:
    """The :class:`TrainResult` of a trained run: its model, the record :func:`finished_record`
    builds from ``trained`` (``t_start``: ``time.perf_counter()`` when the run began) and its plans."""
    record = finished_record(
        cfg,
        trained.model,
        splits,
        history=trained.history,
        t_start=t_start,
        timer=trained.timer,
        device=device,
        train_objectives=trained.train_objectives,
        compression=trained.compression,
        data_extra=trained.data_extra,
        **trained.fields,
    )
    return TrainResult(trained.model, record, trained.plans)


def finished_record(
    cfg: RunConfig,
    model: nn.Module,
    splits: Splits,
    *,
    history: list[dict[str, Any]],
    t_start: float,
    timer: PhaseTimer,
    device: torch.device | str,
    train_objectives: Sequence[float],
    compression: bool | None = None,
    data_extra: dict[str, Any] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The ``status: ok`` record of a trained ``model``: per-task test and validation accuracy
    (fractions; val_* are None without a validation split) and NLL, ``train_objectives`` (the last
    epoch's ``[L0, L1, ..., LT]``), SR / CR / PS; ``compression``: the compressed export's size if
    True, null if False, no field if None (the baselines); with True also ``layer_rows``
    (:func:`mdmtn.objectives.metrics.layer_rows_block`);
    the data's provenance (plus ``data_extra``), ``history``, the wall time since ``t_start``
    (``time.perf_counter()`` seconds), the machine and ``timer``'s per-phase block. ``details`` are
    the method's own fields, stored at the top level in the order given."""
    with timer("test_eval"):
        test = evaluate(model, splits.test, cfg.data.eval_batch_size)
    with timer("validation"):
        val = evaluate(model, splits.val, cfg.data.eval_batch_size) if len(splits.val) else None
    with timer("sparsity"):
        sm = sparsity_metrics(model)
    summary = layers = None
    if compression is not None:
        with timer("compression"):
            summary = compression_summary(model) if compression else None
    if compression:
        with timer("sparsity"):
            layers = layer_rows_block(model)
    wall = time.perf_counter() - t_start
    alpha = model.alpha.detach().tolist() if isinstance(getattr(model, "alpha", None), torch.Tensor) else None
    details = dict(details)
    head = {k: details.pop(k) for k in ("phase1_model", "phase1_epoch") if k in details}
    tail = {} if compression is None else dict(compression=summary)
    if layers is not None:  # per-layer counts of a sparse run (Fig. 7's claims compare its parts)
        details = dict(details, layer_rows=layers)
    return new_record(
        status="ok",
        key=cfg.key(),
        config=cfg.to_dict(),
        metrics=dict(
            test_acc=test["acc"],
            test_acc_mean=float(np.mean(test["acc"])),
            test_loss=test["loss"],
            val_acc=None if val is None else val["acc"],
            val_acc_mean=None if val is None else float(np.mean(val["acc"])),
            train_objectives=list(train_objectives),
            **sm,
        ),
        **head,
        **tail,
        alpha=alpha,
        data=dict(splits.provenance(), **(data_extra or {})),
        history=history,
        wall_time_s=wall,
        machine=machine_info(device),
        timing=timer.block(wall),
        **details,
    )
