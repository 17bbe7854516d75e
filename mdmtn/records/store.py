"""Records on disk: one ``<key>.json`` per run, written atomically, read only if it is what its
name says, folders scanned and files that are not records set aside.

:func:`read_record` checks a file against its name, schema and checksum
(:mod:`mdmtn.records.schema`) and :func:`read_run` gives it typed; :func:`load_records` reads a folder; :func:`find_record` a
config's record, setting a foreign file aside; :func:`write_record` and :func:`seal_record` write.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from mdmtn.core.config import RunConfig
from mdmtn.core.files import write_json_atomic
from mdmtn.records.schema import (
    SCHEMA_VERSION,
    NewerSchemaError,
    RecordError,
    RunRecord,
    check_fields,
    content_checksum,
    migrate_record,
    run_key,
    sealed,
)


def write_record(path: str | os.PathLike, rec: dict[str, Any]) -> Path:
    """Store a run (or joint) record atomically, in the current layout, with its checksum."""
    return write_json_atomic(path, sealed(rec), OUT_ADVICE)


def seal_record(path: str | os.PathLike, key_of: Callable[[dict], str] | None = None) -> bool:
    """Bring a record of an older schema to the current one, with the checksum over every field
    (:func:`mdmtn.records.schema.content_checksum`), changing no other field; True if it was sealed
    now, False if it already was. It is first read by its own version's rule
    (:func:`read_record`: a version-3 record's checksum must hold). A record written before checksums
    (schema 1 or 2) has nothing to check: sealing vouches for its content as it is, so do it only
    for records you have not edited (the project sealed its committed ones once)."""
    path = Path(path)
    raw = json.loads(path.read_bytes().decode("utf-8"))
    read_record(path, key_of or _key_of(raw))  # checked to be the record its name says first
    if raw.get("schema", 1) >= SCHEMA_VERSION and raw.get("checksum"):
        return False
    write_json_atomic(path, sealed(raw))
    return True


def seal_folder(out_dir: str | os.PathLike, joint_key_of: Callable[[dict], str] | None = None) -> tuple[int, list[str]]:
    """:func:`seal_record` on every ``*.json`` of ``out_dir`` (joint records with ``joint_key_of``);
    returns (records sealed now, one message per file refused, naming it and why)."""
    sealed, refused = 0, []
    for p in sorted(Path(out_dir).glob("*.json")):
        try:
            kind = json.loads(p.read_text(encoding="utf-8")).get("kind")
            sealed += seal_record(p, joint_key_of if kind == "joint" else None)
        except (RecordError, ValueError, AttributeError, OSError) as e:
            refused.append(f"{p}: {e}")
    return sealed, refused


OUT_ADVICE = "free space or point --out elsewhere, then re-run the same command: finished runs are kept"


def _key_of(raw: Any) -> Callable[[dict], str]:
    if isinstance(raw, dict) and raw.get("kind") == "joint":
        raise RecordError("a joint record is sealed with its own key function (mdmtn.experiments.joint_runs.joint_key)")
    return run_key


def record_path(out_dir: str | os.PathLike, cfg: RunConfig) -> Path:
    """``<out_dir>/<config key>.json``."""
    return Path(out_dir) / f"{cfg.key()}.json"


MAX_RECORD_BYTES = 64 * 2**20  # the largest committed record is about 0.1 MB; a longer history fits many times


def read_record(path: str | os.PathLike, key_of: Callable[[dict], str] = run_key) -> dict[str, Any]:
    """The stored JSON object in ``path`` (what the file holds: readers get it typed through
    :func:`load_records` and :func:`find_record`), checked to be what its name says: UTF-8 JSON holding an object with
    ``status``, ``key`` and ``config``, whose key and config both hash to the file name (``key_of``
    computes the key from a record). Raises :class:`RecordError` otherwise."""
    path = Path(path)
    try:
        st = path.stat()
        # a FIFO would block every reader forever, a device or a huge file exhaust memory: named, not opened
        if not stat.S_ISREG(st.st_mode):
            raise RecordError(f"{path} is not a regular file (a folder, pipe or device); it is not read")
        if st.st_size > MAX_RECORD_BYTES:
            raise RecordError(f"{path} is {st.st_size:,} bytes, more than a record can be ({MAX_RECORD_BYTES:,})")
        rec = json.loads(path.read_bytes().decode("utf-8"))
    except RecordError:
        raise
    except OSError as e:
        raise RecordError(f"{path} cannot be read as a file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"{path} is not valid JSON ({e})") from None
    except (RecursionError, ValueError) as e:  # nesting deeper than the parser's stack, an integer of 5,000 digits
        raise RecordError(f"{path} is JSON no record can be ({type(e).__name__})") from None
    if not isinstance(rec, dict):
        raise RecordError(f"{path} holds a JSON {type(rec).__name__}, not a record object")
    missing = [f for f in ("status", "key", "config") if f not in rec]
    if missing:
        raise RecordError(f"{path} lacks the record field(s) {', '.join(missing)}")
    # the layout first: a newer mdmtn's record (with a setting this version lacks) asks for an update
    # instead of failing the config check and being moved aside as foreign
    version = rec.get("schema", 1)
    out = migrate_record(rec)
    try:
        key = key_of(rec)
    except Exception as e:  # noqa: BLE001 - a config this version cannot read is no record of it
        raise RecordError(f"{path} holds a config this version cannot read ({type(e).__name__}: {e})") from None
    if not (rec["key"] == key == path.stem):
        raise RecordError(
            f"{path} is not the record its name says: its config hashes to {key} and it "
            f"claims key {rec['key']} (copied, renamed, or from another version)"
        )
    stored = rec.get("checksum")
    if stored is not None or version >= 3:
        if stored != content_checksum(rec):
            raise RecordError(
                f"{path}: its content does not match its checksum (edited after it was written, or "
                "damaged); it is not used"
            )
    check_fields(out, path)
    return out


def read_run(path: str | os.PathLike, key_of: Callable[[dict], str] = run_key) -> RunRecord:
    """The record in ``path`` as a :class:`RunRecord`, checked as :func:`read_record` checks it
    (:class:`RecordError` if it is not what its name says); a failed run too (see ``ok``)."""
    return RunRecord.from_dict(read_record(path, key_of))


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def load_records(
    dirs: str | os.PathLike | Iterable[str | os.PathLike],
    status: str | None = "ok",
    *,
    key_of: Callable[[dict], str] = run_key,
    on_problem: Callable[[str], None] | None = _warn,
    kind: str | None = None,
    strict: bool = False,
) -> list[RunRecord]:
    """The valid records of one or more folders as :class:`RunRecord` (optionally only those with
    ``status``), sorted by key, each run once however often its folder is given. A file that is not a record of its name
    (:func:`read_record`) is reported to ``on_problem`` and skipped, or, with ``strict`` (a book page,
    which must not show another run in its place), raises :class:`RecordError` naming it. The same
    run found twice is read once; two different records under one key raise :class:`RecordError`
    naming both files.
    ``kind="joint"`` reads joint records, the default reads run records (each skips the other
    silently)."""
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    seen_dirs: set[Path] = set()
    out: dict[str, dict[str, Any]] = {}
    where: dict[str, Path] = {}
    for d in dirs:
        d = Path(d).resolve()
        if d in seen_dirs:
            continue
        seen_dirs.add(d)
        for p in sorted(d.glob("*.json")):
            if p.name.startswith("."):
                continue
            try:
                rec = read_record(p, lambda r: key_of(r) if r.get("kind") == kind else r["key"])
            except RecordError as e:
                if strict:
                    raise
                if on_problem is not None:
                    on_problem(f"skipping {e}")
                continue
            if rec.get("kind") != kind or (status is not None and rec.get("status") != status):
                continue
            first = out.setdefault(rec["key"], rec)
            if first is not rec and content_checksum(first) != content_checksum(rec):
                # one key, two different runs (another machine, other input files): never pick one silently
                raise RecordError(
                    f"two different records of run {rec['key']}: {where[rec['key']]} and {p} (trained apart: "
                    "other data, machine or code); keep one of them"
                )
            where.setdefault(rec["key"], p)
    return [RunRecord.from_dict(out[k]) for k in sorted(out)]


def find_record(
    out_dir: str | os.PathLike, cfg: RunConfig, *, set_aside: bool = False, log: Callable[[str], None] | None = _warn
) -> RunRecord | None:
    """The finished record of ``cfg`` in ``out_dir`` (typed), or None (missing, failed or not a record of
    this config). With ``set_aside`` a file under the config's name that is not its record is
    renamed to ``<name>.rejected-<n>`` (kept, never used) and ``log`` says so."""
    p = record_path(out_dir, cfg)
    if not p.exists():
        return None
    try:
        rec = read_run(p)
    except NewerSchemaError:
        raise  # left in place: a newer mdmtn wrote it, and retraining would overwrite its result
    except RecordError as e:
        if set_aside:
            aside = _free_name(p, ".rejected")
            os.replace(p, aside)
            if log is not None:
                log(f"{e}; moved it to {aside.name} and training the config again")
        elif log is not None:
            log(str(e))
        return None
    return rec if rec.ok else None


def _free_name(p: Path, tag: str) -> Path:
    n = 0
    while (cand := p.with_name(f"{p.name}{tag}-{n}")).exists():
        n += 1
    return cand
