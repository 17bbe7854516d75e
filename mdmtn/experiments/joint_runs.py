"""Joint solves as experiments: their records (resumable, atomic, checked against their names)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from mdmtn.core.config import RunConfig
from mdmtn.data import Splits
from mdmtn.records.schema import RecordError, RunRecord
from mdmtn.records.store import load_records, read_run, write_record
from mdmtn.training.mt2o import JointConfig, solve


def joint_key(rec: dict[str, Any]) -> str:
    """The key a joint record's config hashes to."""
    return JointConfig.from_dict(rec["config"]).key()


def find_joint_record(out_dir: str | Path, jc: JointConfig) -> RunRecord | None:
    """The record of ``jc`` in ``out_dir`` (``<key>.json``, checked to be that config's), or None."""
    path = Path(out_dir) / f"{jc.key()}.json"
    if not path.exists():
        return None
    try:
        rec = read_run(path, joint_key)
    except RecordError as e:
        print(f"warning: {e}", file=sys.stderr)
        return None
    return rec if rec.ok else None


def run_joint(
    jcs: Sequence[JointConfig],
    out_dir: str | Path,
    load: Callable[[RunConfig], Splits],
    *,
    progress: bool = True,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Solve every joint config without a record in ``out_dir`` (resumable, atomic records); returns
    the records in ``jcs`` order.
    ``out_dir`` is checked to be a writable folder first (:class:`ConfigError`), not when the first
    solve has finished."""
    from mdmtn.experiments.sweep import check_out_dir

    out_dir = check_out_dir(out_dir)
    recs = []
    for i, jc in enumerate(jcs):
        path = out_dir / f"{jc.key()}.json"
        rec = None if force else find_joint_record(out_dir, jc)
        tag = (
            f"[{i + 1}/{len(jcs)}] {jc.transfer} K={len(jc.runs)} {jc.runs[0].model}/{jc.runs[0].dataset} "
            f"seed={jc.runs[0].seed}"
        )
        if rec is not None:
            log(f"[skip] {tag}: {path} exists (final HV {rec.details['final_hv']:.4f})")
            recs.append(rec)
            continue
        rec = solve(jc, load(jc.runs[0]), progress=progress).record
        write_record(path, rec)
        log(
            f"[done] {tag}: {path}: final HV {rec['final_hv']:.4f}, train {rec['train_seconds']:.1f}s, "
            f"transfers accepted {rec['transfers']['accepted']}/{rec['transfers']['tried']}"
        )
        recs.append(RunRecord.from_dict(rec))
    return recs


def load_joint_records(out_dir: str | Path) -> list[RunRecord]:
    """All joint records (``kind == "joint"``) in ``out_dir``, sorted by strategy then seed."""
    recs = load_records(out_dir, key_of=joint_key, kind="joint")
    return sorted(recs, key=lambda r: (r.details["strategy"], r.config["run"]["seed"]))
