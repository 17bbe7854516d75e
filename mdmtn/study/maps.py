"""Fig. 7's similarity maps computed from checkpoints and stored beside the records, so that a book
page only reads them (``python -m mdmtn.study maps <records dir>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mdmtn.core.files import write_json_atomic
from mdmtn.objectives.growl import similarity_summary
from mdmtn.records.checkpoint import restored_note


def write_similarity_maps(cache: str | Path, checkpoint: str | Path, rec: dict[str, Any]) -> dict[str, Any]:
    """Compute the Fig. 7 maps of run record ``rec``'s saved model (:func:`mdmtn.objectives.growl.similarity_summary`)
    and store them at ``cache``, atomically, with ``source``: which model they were drawn from
    (the run's own, or a retrained copy, :func:`mdmtn.records.checkpoint.restored_note`). The checkpoint must
    be that run's model (:func:`mdmtn.records.probe.load_verified_checkpoint`), else CheckpointError."""
    from mdmtn.records.probe import load_verified_checkpoint

    key = rec["key"]
    model, _, extra = load_verified_checkpoint(checkpoint, rec)
    note = restored_note(extra)
    source = f"the run's own checkpoint ({key})" if note is None else f"a checkpoint of run {key}: {note}"
    out = dict(maps=similarity_summary(model), source=source)
    write_json_atomic(Path(cache), out)
    return out


def write_missing_maps(sources: Iterable[dict[str, Any]]) -> list[Path]:
    """Write the maps of each ``sources`` item (``record``, ``cache``, ``checkpoint``, as
    :func:`mdmtn.study.report.similarity_sources` lists them); returns the files written."""
    out = []
    for s in sources:
        write_similarity_maps(s["cache"], s["checkpoint"], s["record"])
        out.append(Path(s["cache"]))
    return out
