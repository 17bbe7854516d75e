"""Fig. 7's similarity maps computed from checkpoints and stored beside the records, so that a book
page only reads them (``python -m mdmtn.study maps <records dir>``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from mdmtn.core.files import write_json_atomic
from mdmtn.records.schema import RunRecord, canonical_checksum, cpu_label
from mdmtn.study.similarity import similarity_summary

# what each stored map must hold for a page to draw it
MAP_FIELDS = ("name", "label", "rows", "shown", "zero_rows", "tied_groups", "SR", "order", "S_u8")


def maps_checksum(stored: dict[str, Any]) -> str:
    """The checksum of a maps file: over its content but the checksum itself."""
    return canonical_checksum({k: v for k, v in stored.items() if k != "checksum"})


def restored_note(extra: dict[str, Any]) -> str | None:
    """One sentence on a checkpoint's provenance if it was restored (``extra`` from
    :func:`load_checkpoint`), else None."""
    r = extra.get("restored")
    if not r:
        return None
    gaps = ", ".join(f"{k} {v:.2f}" for k, v in r["gaps_points"].items())
    return (
        f"a retrained copy of the run (on {cpu_label(r['machine'], '?')}, commit "
        f"{r['machine'].get('mdmtn_commit', '?')}), accepted because it reproduces the record within "
        f"{r['tolerance_points']['acc']} accuracy / {r['tolerance_points']['SR']} SR points (gaps: {gaps})"
    )


class MapsDamaged(ValueError):
    """A stored maps file that is not the maps of its run; the message names it and the fix."""


def read_maps(cache: str | Path) -> dict[str, Any] | None:
    """The maps stored at ``cache`` (``<records>/similarity/<key>.json``), or None when there are none.
    Checked to be what the page draws: JSON holding ``maps`` (each with :data:`MAP_FIELDS`) and a
    ``source``, of run ``<key>`` and matching its checksum where it has one (files written before
    map files carried them have none). :class:`MapsDamaged` names the file and how to rebuild it."""
    cache = Path(cache)
    if not cache.exists():
        return None
    fix = f"rebuild it from the run's checkpoint: python -m mdmtn.study maps {cache.parent.parent}"
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MapsDamaged(f"{cache} is not readable JSON ({type(e).__name__}); {fix}") from None
    if isinstance(stored, list):  # the first format: a bare list of block-averaged maps
        stored = dict(
            maps=stored,
            source="stored maps of the run's own model, block-averaged, rows in layer order (an older format)",
        )
    maps = stored.get("maps") if isinstance(stored, dict) else None
    if not (isinstance(maps, list) and maps and all(isinstance(m, dict) for m in maps)):
        raise MapsDamaged(f"{cache} holds no list of maps; {fix}")
    if "S_u8" in maps[0]:
        missing = sorted({f for m in maps for f in MAP_FIELDS if f not in m})
        if missing:
            raise MapsDamaged(f"{cache} lacks the map field(s) {', '.join(missing)}; {fix}")
    if not isinstance(stored.get("source"), str):
        raise MapsDamaged(f"{cache} does not say which model its maps come from; {fix}")
    if stored.get("key", cache.stem) != cache.stem:
        raise MapsDamaged(f"{cache} holds the maps of run {stored['key']}, not of {cache.stem}; {fix}")
    if "checksum" in stored and stored["checksum"] != maps_checksum(stored):
        raise MapsDamaged(f"{cache}: its content does not match its checksum (edited or damaged); {fix}")
    return stored


def write_similarity_maps(cache: str | Path, checkpoint: str | Path, rec: RunRecord) -> dict[str, Any]:
    """Compute the Fig. 7 maps of run record ``rec``'s saved model (:func:`mdmtn.study.similarity.similarity_summary`)
    and store them at ``cache``, atomically, with ``source``: which model they were drawn from
    (the run's own, or a retrained copy, :func:`restored_note`). The checkpoint must
    be that run's model (:func:`mdmtn.records.probe.load_verified_checkpoint`), else CheckpointError."""
    from mdmtn.records.probe import load_verified_checkpoint

    key = rec.key
    model, _, extra = load_verified_checkpoint(checkpoint, rec)
    note = restored_note(extra)
    source = f"the run's own checkpoint ({key})" if note is None else f"a checkpoint of run {key}: {note}"
    out = dict(key=key, maps=similarity_summary(model), source=source)
    out["checksum"] = maps_checksum(out)
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
