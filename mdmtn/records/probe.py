"""Is a checkpoint the model its record describes? A cheap, data-free probe.

A checkpoint file carries its config, but nothing ties its weights to the run's record: any
``.pt`` saved under the right config would be used. Two checks tie them:

* **sparsity counts** (every record, old ones included): the integer row and parameter counts of
  :func:`mdmtn.objectives.metrics.sparsity_metrics` (total / zero / unique rows, zero parameters) are a
  function of the weights alone and are stored in every record's ``metrics``; a checkpoint must
  give exactly the recorded integers;
* **output probe** (records written since the probe existed): the model's log-probabilities on
  :data:`PROBE_N` fixed standard-normal inputs (seeded, no data needed), stored in the record as
  ``probe``; a checkpoint must reproduce them within :data:`PROBE_TOL` (float summation order
  across thread counts moves them by ~1e-6).

A checkpoint retrained by ``restore-checkpoint`` is not the recorded model. It stores the retrained
model's own counts, probe and metrics in ``extra["restored"]``, with the checksum of the record it
was judged against and the tolerances it was accepted under; it is used only if that record is the
one beside it (same checksum) and its metrics are within those tolerances of the record's
(:func:`restored_mismatch`), and then checked against its own counts and probe.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch
from torch import nn

from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.records.schema import RunRecord, record_checksum

__all__ = [
    "PROBE_N",
    "PROBE_TOL",
    "model_probe",
    "checkpoint_mismatch",
    "metric_gaps",
    "restored_mismatch",
    "load_verified_checkpoint",
    "verified_checkpoints",
]

PROBE_N = 4
PROBE_SEED = 0
PROBE_TOL = 1e-3  # absolute, in log-probability units
# integer sparsity counts: exact functions of the weights
COUNTS = ("total_rows", "zero_rows", "unique_rows", "params_zero")


def _inputs(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(PROBE_SEED)
    x = torch.randn((PROBE_N, *input_shape), generator=g)
    p = next(model.parameters(), None)
    return x.to(p.device) if p is not None else x


@torch.no_grad()
def model_probe(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The record's ``probe`` of ``model``: ``{"n", "seed", "log_probs"}`` where ``log_probs[t]``
    is task t's (PROBE_N, classes) log-probabilities on the fixed inputs (shape ``input_shape``,
    C×H×W), as nested lists rounded to 6 decimals. The model's train/eval mode is kept."""
    was_training = model.training
    model.eval()
    try:
        out = model(_inputs(model, tuple(input_shape)))
    finally:
        model.train(was_training)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return dict(
        n=PROBE_N,
        seed=PROBE_SEED,
        log_probs=[[[round(float(v), 6) for v in row] for row in o.detach().cpu().tolist()] for o in outs],
    )


def metric_gaps(recorded: dict[str, Any], retrained: dict[str, Any]) -> dict[str, float]:
    """Absolute differences, in percentage points, between two records' ``metrics``: each task's
    test accuracy (``test_acc_1``, ``test_acc_2``), the mean validation accuracy and SR.

    >>> metric_gaps({"test_acc": [0.9508, 0.9319], "val_acc_mean": 0.9371, "SR": 0.0},
    ...             {"test_acc": [0.9504, 0.9315], "val_acc_mean": 0.9366, "SR": 0.0})
    {'test_acc_1': 0.04, 'test_acc_2': 0.04, 'val_acc_mean': 0.05, 'SR': 0.0}
    """
    out = {
        f"test_acc_{i + 1}": round(100 * abs(a - b), 6)
        for i, (a, b) in enumerate(zip(recorded["test_acc"], retrained["test_acc"]))
    }
    out["val_acc_mean"] = round(100 * abs(recorded["val_acc_mean"] - retrained["val_acc_mean"]), 6)
    out["SR"] = round(abs(recorded.get("SR", 0.0) - retrained.get("SR", 0.0)), 6)  # SR is stored in percent
    return out


def restored_mismatch(rec: RunRecord, restored: dict[str, Any]) -> str | None:
    """Why a retrained copy (``extra["restored"]``) does not stand for record ``rec``, or None: it
    must name ``rec``'s checksum (it was judged against this very record) and its metrics must be
    within the tolerances it states of ``rec``'s, recomputed here, not read from the copy."""
    if restored.get("record_checksum") != record_checksum(rec):
        return "it was retrained against another record (or before retrained copies named their record)"
    try:
        gaps = metric_gaps(rec.metrics.to_dict(), restored["metrics"])
        tol = restored["tolerance_points"]
        acc_gap = max(v for k, v in gaps.items() if k != "SR")
        ok = acc_gap <= float(tol["acc"]) + 1e-9 and gaps["SR"] <= float(tol["SR"]) + 1e-9
    except (KeyError, TypeError, ValueError):
        return "its retraining block is incomplete"
    if not ok:
        return (
            f"the retrained copy's metrics differ from its record's by {acc_gap:.2f} accuracy and {gaps['SR']:.2f} "
            f"SR points, beyond the tolerances it states ({tol['acc']}, {tol['SR']})"
        )
    return None


def checkpoint_mismatch(
    model: nn.Module, input_shape: tuple[int, ...], rec: RunRecord, extra: dict[str, Any] | None = None
) -> str | None:
    """Why ``model`` (loaded from a checkpoint with ``extra``) is not the model of record ``rec``,
    or None when it is. A restored checkpoint (``extra["restored"]``) is compared with the
    retrained model's own metrics and probe stored there, after that block is checked against the
    record (:func:`restored_mismatch`); an original one with the record's."""
    restored = (extra or {}).get("restored")
    if restored:
        why = restored_mismatch(rec, restored)
        if why is not None:
            return why
    if restored:
        ref_metrics, ref_probe = restored.get("metrics"), restored.get("probe")
    else:
        ref_metrics, ref_probe = rec.metrics and rec.metrics.to_dict(), rec.details.get("probe")
    whose = "the retrained copy's" if restored else "its record's"
    have = sparsity_metrics(model)
    for name in COUNTS:
        want = (ref_metrics or {}).get(name)
        if want is not None and int(have[name]) != int(want):
            return f"its weights have {name} = {have[name]}, {whose} {want}"
    if ref_probe:
        got = model_probe(model, input_shape)
        if len(got["log_probs"]) != len(ref_probe["log_probs"]):
            return f"it has {len(got['log_probs'])} task outputs, {whose} probe {len(ref_probe['log_probs'])}"
        gap = 0.0
        for a, b in zip(got["log_probs"], ref_probe["log_probs"]):
            ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
            if ta.shape != tb.shape:
                return f"its outputs have shape {tuple(ta.shape)}, {whose} probe {tuple(tb.shape)}"
            gap = max(gap, float((ta - tb).abs().max()))
        if not math.isfinite(gap) or gap > PROBE_TOL:
            return f"its outputs on the probe inputs differ from {whose} by {gap:.3g} (tolerance {PROBE_TOL})"
    return None


def load_verified_checkpoint(path, rec: RunRecord) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model, config, extra) of the checkpoint at ``path``, used only if it holds record ``rec``'s
    config and model (:func:`checkpoint_mismatch`); :class:`mdmtn.records.checkpoint.CheckpointError` names
    the file, the record and the fix otherwise."""
    from pathlib import Path

    from mdmtn.core.config import INPUT_SHAPES
    from mdmtn.records.checkpoint import CheckpointError, load_checkpoint

    model, cfg, extra = load_checkpoint(path)
    key, folder = rec.key, Path(path).parent
    if cfg.key() != key:
        raise CheckpointError(
            f"checkpoint {path} holds the model of config {cfg.key()}, not of record {key}; "
            f"recreate it: python -m mdmtn restore-checkpoint {folder} {key}"
        )
    why = checkpoint_mismatch(model, INPUT_SHAPES[cfg.dataset], rec, extra)
    if why is not None:
        raise CheckpointError(
            f"checkpoint {path} is not the model of record {key}: {why}; recreate it: "
            f"python -m mdmtn restore-checkpoint {folder} {key} --force"
        )
    return model, cfg, extra


def verified_checkpoints(
    results_dir,
    keep: Callable[[RunRecord], bool] | None = None,
    skipped: Callable[[RunRecord, Exception], None] | None = None,
) -> Iterator[tuple[RunRecord, nn.Module, Any]]:
    """(record, model, config) for each record of ``results_dir`` that ``keep`` accepts (all if
    None) and whose checkpoint is on this machine (checkpoints are not committed; the records are)
    and holds its model (:func:`load_verified_checkpoint`); a checkpoint that does not is passed to
    ``skipped(record, error)`` and left out. Lazy: ``keep`` may depend on what was yielded."""
    from pathlib import Path

    from mdmtn.records.checkpoint import CheckpointError
    from mdmtn.records.store import load_records

    for rec in load_records(results_dir):
        ckpt = Path(results_dir) / f"{rec.key}.pt"
        if (keep is not None and not keep(rec)) or not ckpt.exists():
            continue
        try:
            model, cfg, _ = load_verified_checkpoint(ckpt, rec)
        except CheckpointError as e:
            if skipped is not None:
                skipped(rec, e)
            continue
        yield rec, model, cfg
