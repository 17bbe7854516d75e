"""The compressed export's size added to the sparse run records of a folder, from their checkpoints."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from mdmtn.objectives.metrics import layer_rows_block
from mdmtn.records.checkpoint import CheckpointError, load_checkpoint
from mdmtn.records.probe import load_verified_checkpoint
from mdmtn.records.store import load_records, write_record
from mdmtn.training.compress import compression_summary


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def compress_records(
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = _stderr,
) -> tuple[int, int]:
    """Add ``compression`` (:func:`mdmtn.training.compress.compression_summary` of the saved model)
    and ``layer_rows`` (:func:`mdmtn.objectives.metrics.layer_rows_block`) to each sparse
    Algorithm-1 record of ``out_dir`` that lacks either (all of them with ``force``).
    A checkpoint is used only if its config and weights are its record's model; any other is
    skipped with a message to ``warn``. Returns (records updated, records skipped)."""
    n = skipped = 0
    for rec in load_records(out_dir):
        path = Path(out_dir) / f"{rec.key}.json"
        if rec.config.get("method", "wc_al") != "wc_al" or rec.config["k"][0] == 0:
            continue
        if rec.details.get("compression") and rec.details.get("layer_rows") and not force:
            continue
        ckpt = Path(out_dir) / f"{rec.key}.pt"
        if not ckpt.exists():
            warn(f"skip {path.name}: no checkpoint {ckpt.name} (retrain to get one)")
            skipped += 1
            continue
        try:
            model, ckpt_cfg, _ = load_checkpoint(ckpt)
        except CheckpointError as e:
            warn(f"skip {path.name}: {e}")
            skipped += 1
            continue
        if ckpt_cfg.key() != rec.key or ckpt_cfg.to_dict() != rec.cfg.to_dict():
            warn(
                f"skip {path.name}: refusing checkpoint {ckpt.name}, whose stored config (key {ckpt_cfg.key()}) "
                f"is not this record's; retrain the run to get its own checkpoint"
            )
            skipped += 1
            continue
        try:  # the weights too: a summary of another model would contradict the record
            model, _, _ = load_verified_checkpoint(ckpt, rec)
        except CheckpointError as e:
            warn(f"skip {path.name}: {e}")
            skipped += 1
            continue
        c = compression_summary(model)
        write_record(path, dict(rec.to_dict(), compression=c, layer_rows=layer_rows_block(model)))
        log(
            f"{path.name}: params {c['params_dense']:,} -> {c['params_compressed']:,} "
            f"(ratio {c['param_ratio']:.3f}, 1 - SR = {c['one_minus_SR']:.3f})"
        )
        n += 1
    return n, skipped
