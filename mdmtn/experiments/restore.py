"""Restoring a run's lost checkpoint: retrain its config and keep the model only if it reproduces
the committed record.

Records are committed; checkpoints (``<key>.pt``, megabytes each) are not. A front study starts from
its source run's checkpoint and Fig. 7 draws from the selected run's model, so a fresh clone that
needs one must retrain that run. Training is deterministic for a given CPU kernel path, but not
bit for bit across CPU models (AVX2 against AVX-512 sum floats in other orders): a retrained
model is a slightly different model. It is therefore accepted only when its test accuracies,
validation accuracy and sparsity agree with the record within stated tolerances; the checkpoint
then carries both sets of metrics and the machine it was retrained on, so everything drawn from
it can say so. The committed record is never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from mdmtn.core.config import INPUT_SHAPES, RunConfig
from mdmtn.records.checkpoint import CheckpointError, save_checkpoint
from mdmtn.records.probe import load_verified_checkpoint, metric_gaps, model_probe
from mdmtn.records.schema import RecordError, RunRecord, record_checksum
from mdmtn.records.store import read_run
from mdmtn.training.runner import train

__all__ = ["RestoreMismatch", "restore_checkpoint"]

# default tolerances, in points. Measured gaps between the same config trained on an AMD EPYC
# and on an Intel Xeon: 0.04 (dense MultiMNIST HPS), 1.65 on CIFAR-10 (sparse Cifar10Mnist MDMTN,
# whose SR matched exactly). 0.5 accepts the first kind and refuses the second: whoever wants to
# start from such a copy must say so with a wider tolerance, and the copy then says it everywhere.
TOL_ACC_POINTS = 0.5
TOL_SR_POINTS = 1.0


class RestoreMismatch(RuntimeError):
    """A retrained model does not reproduce its record within the tolerances; nothing was saved."""


def restore_checkpoint(
    out_dir: str | Path,
    key: str,
    load: Callable[[RunConfig], Any],
    *,
    tol_acc: float = TOL_ACC_POINTS,
    tol_sr: float = TOL_SR_POINTS,
    force: bool = False,
    threads: int | None = None,
    progress: bool = False,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Recreate ``<out_dir>/<key>.pt`` by retraining the config of the committed record ``<key>.json``.

    Checks first, before any training: the record is what its name says, finished, of a method
    and config this code can rebuild, and ``load(cfg)`` (a :class:`mdmtn.data.SplitsLoader`) gives
    the very inputs the record was trained on (its ``input_sha256``). A checkpoint already there
    whose stored config is the record's is kept (``force`` retrains anyway). Trains with the
    record's thread count (``threads`` overrides), then compares :func:`metric_gaps`: accuracies
    within ``tol_acc`` points and SR within ``tol_sr`` points save the checkpoint, atomically, with
    ``extra["restored"]`` (the retrained metrics, the gaps, the tolerances, this machine);
    otherwise :class:`RestoreMismatch` says by how much, and the model is kept aside as
    ``<key>.mismatch.pt``: a later call (with wider tolerances, if the user accepts that) judges
    that copy again instead of retraining. Returns a summary: ``key``, ``status`` (``"kept"`` or
    ``"restored"``), ``gaps_points``, ``wall_time_s``.
    """
    out_dir = Path(out_dir)
    path, ckpt = out_dir / f"{key}.json", out_dir / f"{key}.pt"
    if not path.is_file():
        raise RecordError(f"no record {path}: restore-checkpoint needs the run's committed record")
    rec = read_run(path)
    if not rec.ok:
        raise RecordError(f"{path} is a failed run (status {rec.status!r}); there is no model to restore")
    cfg = rec.cfg
    if cfg.init_from is not None and not (out_dir / f"{cfg.init_from}.pt").is_file():
        raise CheckpointError(
            f"{key} started from run {cfg.init_from}, whose checkpoint is missing too: restore {cfg.init_from} first"
        )
    if not force and _model_of(ckpt, rec) is not None:
        log(f"{ckpt} is there and holds this run's config: kept (--force retrains)")
        return dict(key=key, status="kept", gaps_points=None, wall_time_s=0.0)
    if ckpt.exists() and not force:
        log(f"{ckpt} is unreadable or not this run's model: it will be replaced if the retrain agrees")
    aside = out_dir / f"{key}.mismatch.pt"
    kept_aside = None if force else _model_of(aside, rec)
    if kept_aside is not None and kept_aside[1].get("restored"):  # a retrain that missed earlier tolerances
        log(f"judging the copy retrained earlier ({aside.name}) against the tolerances (--force retrains)")
        return _judge(rec, cfg, kept_aside[0], kept_aside[1]["restored"], ckpt, aside, tol_acc, tol_sr, log)
    splits = load(cfg)
    want, got = (rec.data or {}).get("input_sha256"), splits.info.get("input_sha256")
    if want and got and want != got:
        raise RecordError(
            f"the data found (inputs sha256 {got[:12]}…) are not those run {key} was trained on "
            f"({want[:12]}…): point --data-dir at the original MNIST / CIFAR-10 files"
        )
    start = None
    if cfg.init_from is not None:
        src = read_run(out_dir / f"{cfg.init_from}.json")
        start, _, _ = load_verified_checkpoint(out_dir / f"{cfg.init_from}.pt", src)
    n = threads or (rec.machine or {}).get("torch_threads") or torch.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        log(
            f"retraining {key} ({cfg.method}/{cfg.model}/{cfg.dataset} k={list(cfg.k)} seed={cfg.seed}) "
            f"with {n} thread(s)"
        )
        result = train(cfg, splits, progress=progress, model=start, device=device)
    finally:
        torch.set_num_threads(before)
    new = result.record
    retrained = dict(
        metrics=new["metrics"],
        wall_time_s=new["wall_time_s"],
        machine=new.get("machine", {}),
        recorded_machine=rec.machine or {},
        probe=model_probe(result.model, INPUT_SHAPES[cfg.dataset]),
    )  # ties the file to this copy
    return _judge(rec, cfg, result.model, retrained, ckpt, aside, tol_acc, tol_sr, log)


def _model_of(path: Path, rec: RunRecord) -> tuple[torch.nn.Module, dict[str, Any]] | None:
    """(model, extra) of the checkpoint at ``path`` if it is readable and holds record ``rec``'s
    config and model (:func:`mdmtn.records.probe.load_verified_checkpoint`)."""
    if not path.exists():
        return None
    try:
        model, _, extra = load_verified_checkpoint(path, rec)
    except CheckpointError:
        return None
    return model, extra


def _judge(
    rec: RunRecord,
    cfg: RunConfig,
    model: torch.nn.Module,
    retrained: dict[str, Any],
    ckpt: Path,
    aside: Path,
    tol_acc: float,
    tol_sr: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Save ``model`` as the run's checkpoint if its metrics reproduce the record within the
    tolerances; else keep it aside (``<key>.mismatch.pt``, never loaded as the run's model) and raise."""
    key = rec.key
    gaps = metric_gaps(rec.metrics.to_dict(), retrained["metrics"])
    acc_gap = max(v for k, v in gaps.items() if k != "SR")
    # plain JSON types only: weights_only loading refuses e.g. torch's TorchVersion strings
    block = dict(
        retrained,
        gaps_points=gaps,
        tolerance_points=dict(acc=tol_acc, SR=tol_sr),
        record_checksum=record_checksum(rec),  # the record it was judged against: a copy stands for that one only
    )
    extra = json.loads(json.dumps(dict(restored=block)))
    if acc_gap > tol_acc or gaps["SR"] > tol_sr:
        save_checkpoint(aside, model, cfg, extra)
        raise RestoreMismatch(
            f"the retrained {key} differs from its record by {acc_gap:.2f} accuracy points (tolerance {tol_acc}) "
            f"and {gaps['SR']:.2f} SR points (tolerance {tol_sr}); gaps: {gaps}. Not saved as {ckpt.name}; kept "
            f"aside as {aside.name}. Only if a model this far from the recorded one will do, accept it without "
            f"retraining: restore-checkpoint again with --tol-acc {acc_gap:.2f} --tol-sr {max(gaps['SR'], tol_sr):.2f} "
            "(everything started from it will say so)"
        )
    save_checkpoint(ckpt, model, cfg, extra)
    aside.unlink(missing_ok=True)
    log(f"{ckpt}: restored (gaps in points: {gaps})")
    return dict(key=key, status="restored", gaps_points=gaps, wall_time_s=retrained["wall_time_s"])
