"""Run records: JSON results keyed by config hash, checked against their name, written atomically.

A record holds the config, its key, the metrics, the per-epoch history, the wall time, the
machine and the library version, so every number shown elsewhere says how it was made. Reading
one imports neither torch nor the models.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from mdmtn.core.config import RunConfig

SCHEMA_VERSION = 3
"""Version of the record layout. 1: records written before the layout had a version (no
``schema`` field); 2: ``schema`` added, written by :func:`new_record` for every method; 3:
``checksum`` added, the sha256 of the record's content (:func:`content_checksum`), written with
every record and checked wherever one is read. A record of version 1 or 2 has no checksum unless
it was sealed (:func:`seal_record`); the committed ones all are (a test checks it)."""

# What a record's checksum covers: everything a table, verdict or resumed sweep reads from it.
CHECKSUM_FIELDS = ("status", "key", "config", "metrics", "history", "data", "wall_time_s")


def content_checksum(rec: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``rec``'s :data:`CHECKSUM_FIELDS` (a missing field
    counts as null), so any edit of a config, a metric, the history or the data fingerprint shows."""
    fields = {k: rec.get(k) for k in CHECKSUM_FIELDS}
    if "probe" in rec:  # covered where present; records written before the probe keep their checksum
        fields["probe"] = rec["probe"]
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """A run record as stored (one JSON object per file, ``<key>.json``).

    ``status``: ``"ok"`` or ``"error"``; ``key``: the config's hash (the file name); ``config``:
    the full config (``RunConfig.to_dict()``, or the joint solver's); ``kind``: None for one
    config's run, ``"joint"`` for an MT2O-v / independent solve of several; ``metrics``: test /
    validation accuracy (fractions), losses, SR / CR / PS (percent / ratios); ``data``: what was
    trained on (sizes, inputs' sha256); ``history``: one dict per epoch; ``wall_time_s``: seconds;
    ``machine``: where and with which code (:func:`machine_info`); ``error`` / ``traceback`` for a
    failed run; ``details``: the method's own fields (phase-1 choice, compression, α, a baseline's
    facts, the joint solver's hypervolume curve, ...), stored at the top level of the JSON.
    """

    status: str
    key: str
    config: dict
    kind: str | None = None
    metrics: dict | None = None
    data: dict | None = None
    history: list | None = None
    wall_time_s: float | None = None
    machine: dict | None = None
    error: str | None = None
    traceback: str | None = None
    details: dict = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    checksum: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object: the fields that are set, then ``details`` at the top level."""
        out: dict[str, Any] = {"schema": self.schema, "status": self.status, "key": self.key, "config": self.config}
        for name in ("kind", "metrics", "data", "history", "wall_time_s", "machine", "error", "traceback", "checksum"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        clash = set(self.details) & (set(out) | set(_CORE))
        if clash:
            raise ValueError(f"record details may not reuse the fields {sorted(clash)}")
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> "RunRecord":
        """The record of a stored object of any schema version (:func:`migrate_record` first)."""
        rec = migrate_record(rec)
        return cls(**{k: rec[k] for k in _CORE if k in rec}, details={k: v for k, v in rec.items() if k not in _CORE})


_CORE = (
    "schema",
    "status",
    "key",
    "config",
    "kind",
    "metrics",
    "data",
    "history",
    "wall_time_s",
    "machine",
    "error",
    "traceback",
    "checksum",
)


def migrate_record(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` in the current layout (:data:`SCHEMA_VERSION`), as a new dict; the one place where
    older layouts are read. Version 1 -> 2 only adds ``schema``: no field was renamed, so the key,
    the config and every number stay as written. A newer version than this library knows is an
    error (:class:`RecordError`) rather than a guess."""
    out = dict(rec)
    version = out.get("schema", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"record {out.get('key')} has schema {version!r}; this mdmtn reads up to {SCHEMA_VERSION}: update mdmtn"
        )
    if version < SCHEMA_VERSION:
        # 1 -> 2 added `schema`, 2 -> 3 `checksum`: nothing was renamed, so the key, the config and
        # every number stay as written; an unsealed older record simply has no checksum
        out["schema"] = SCHEMA_VERSION
    return out


def new_record(*, status: str, key: str, config: dict, **fields: Any) -> dict[str, Any]:
    """The one function that writes a record's content, for every method, the joint solver and
    failed runs: :class:`RunRecord` fields by name, anything else into ``details``. Returns the dict
    to store (:func:`write_record` adds its checksum)."""
    core = {k: fields.pop(k) for k in list(fields) if k in _CORE}
    return RunRecord(status=status, key=key, config=config, **core, details=fields).to_dict()


def write_record(path: str | os.PathLike, rec: dict[str, Any]) -> Path:
    """Store a run (or joint) record atomically, in the current layout, with its checksum."""
    rec = dict(rec, schema=SCHEMA_VERSION)
    rec["checksum"] = content_checksum(rec)
    return write_json_atomic(path, rec)


def seal_record(path: str | os.PathLike, key_of: Callable[[dict], str] | None = None) -> bool:
    """Give a record written before checksums (schema 1 or 2) its checksum, changing nothing else;
    True if it was sealed now, False if it already had one. Sealing vouches for the content as it is:
    do it only for records you have not edited (the project sealed its committed ones once)."""
    path = Path(path)
    raw = json.loads(path.read_bytes().decode("utf-8"))
    if isinstance(raw, dict) and raw.get("checksum"):
        read_record(path, key_of or _key_of(raw))
        return False
    read_record(path, key_of or _key_of(raw))  # checked to be the record its name says first
    # the stored schema number stays as it was, so an older mdmtn still reads the sealed file
    write_json_atomic(path, dict(raw, checksum=content_checksum(raw)))
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


def _key_of(raw: Any) -> Callable[[dict], str]:
    if isinstance(raw, dict) and raw.get("kind") == "joint":
        raise RecordError("a joint record is sealed with its own key function (mdmtn.experiments.joint_runs.joint_key)")
    return run_key


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


# mkstemp creates files 0600; records and checkpoints get the permissions any other file would
_FILE_MODE = 0o666 & ~_umask()
TMP_SUFFIX = ".tmp"


class RecordError(ValueError):
    """A file in a records folder that is not a usable record; the message says why."""


class WriteFailed(RecordError):
    """A record or checkpoint could not be written (full disk, quota, read-only file system); the
    file it would have replaced is untouched and the message says what to do."""


# errors of the storage, not of the program: one sentence, not a traceback
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Write a file by calling ``write(binary_file)`` on a temporary file beside ``path``, then
    renaming it over ``path``: readers see the old file or the new one, never half of one. A full
    disk is :class:`WriteFailed` (one sentence) and leaves ``path`` as it was."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
            raise WriteFailed(
                f"could not write {path}: {e.strerror or e} (nothing was replaced); free space or "
                "point --out elsewhere, then re-run the same command: finished runs are kept"
            ) from None
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    path = Path(path)
    data = json.dumps(obj, indent=1, sort_keys=False, allow_nan=True).encode()
    atomic_write(path, lambda f: f.write(data))
    return path


def record_path(out_dir: str | os.PathLike, cfg: RunConfig) -> Path:
    """``<out_dir>/<config key>.json``."""
    return Path(out_dir) / f"{cfg.key()}.json"


MAX_RECORD_BYTES = 64 * 2**20  # the largest committed record is about 0.1 MB; a longer history fits many times


class NewerSchemaError(RecordError):
    """A record written by a newer mdmtn: left where it is (never set aside or retrained)."""


def run_key(rec: dict[str, Any]) -> str:
    """The key a run record's config hashes to."""
    return RunConfig.from_dict(rec["config"]).key()


def read_record(path: str | os.PathLike, key_of: Callable[[dict], str] = run_key) -> dict[str, Any]:
    """The record in ``path``, checked to be what its name says: UTF-8 JSON holding an object with
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
    migrate_record(rec)
    try:
        key = key_of(rec)
    except Exception as e:  # noqa: BLE001 - a config this version cannot read is no record of it
        raise RecordError(f"{path} holds a config this version cannot read ({type(e).__name__}: {e})") from None
    if not (rec["key"] == key == path.stem):
        raise RecordError(
            f"{path} is not the record its name says: its config hashes to {key} and it "
            f"claims key {rec['key']} (copied, renamed, or from another version)"
        )
    version = rec.get("schema", 1)
    out = migrate_record(rec)  # a newer layout: "update mdmtn"
    stored = rec.get("checksum")
    if stored is not None or version >= 3:
        if stored != content_checksum(rec):
            raise RecordError(
                f"{path}: its content does not match its checksum (edited after it was written, or "
                "damaged); it is not used"
            )
    check_fields(out, path)
    return out


def check_fields(rec: dict[str, Any], path: str | os.PathLike = "record") -> None:
    """The fields every reader of a finished run needs, with the right types; :class:`RecordError`
    naming the record and the field otherwise (a missing SR must never read as 0)."""
    if rec.get("status") != "ok" or rec.get("kind") == "joint":
        return
    m = rec.get("metrics")

    def num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    problems = []
    if not isinstance(m, dict):
        problems.append("metrics")
    else:
        acc = m.get("test_acc")
        if not (isinstance(acc, list) and acc and all(num(a) for a in acc)):
            problems.append("metrics.test_acc")
        if not num(m.get("test_acc_mean")):
            problems.append("metrics.test_acc_mean")
        cfg = rec.get("config") or {}
        if cfg.get("method", "wc_al") == "wc_al" and (cfg.get("k") or [0])[0] > 0:
            problems += [f"metrics.{k}" for k in ("SR", "CR", "PS") if not num(m.get(k))]
    if not num(rec.get("wall_time_s")):
        problems.append("wall_time_s")
    if problems:
        raise RecordError(f"{path}: a finished record without usable {', '.join(problems)}; it is not used")


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
) -> list[dict[str, Any]]:
    """The valid records of one or more folders (optionally only those with ``status``), sorted by
    key, each run once however often its folder is given. A file that is not a record of its name
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
    return [out[k] for k in sorted(out)]


def find_record(
    out_dir: str | os.PathLike, cfg: RunConfig, *, set_aside: bool = False, log: Callable[[str], None] | None = _warn
) -> dict[str, Any] | None:
    """The finished record of ``cfg`` in ``out_dir``, or None (missing, failed or not a record of
    this config). With ``set_aside`` a file under the config's name that is not its record is
    renamed to ``<name>.rejected-<n>`` (kept, never used) and ``log`` says so."""
    p = record_path(out_dir, cfg)
    if not p.exists():
        return None
    try:
        rec = read_record(p)
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
    return rec if rec.get("status") == "ok" else None


def _free_name(p: Path, tag: str) -> Path:
    n = 0
    while (cand := p.with_name(f"{p.name}{tag}-{n}")).exists():
        n += 1
    return cand


def remove_stale_temporaries(out_dir: str | os.PathLike, older_than_s: float) -> list[Path]:
    """Delete the temporary files of atomic writes (``.<name>.*.tmp``) in ``out_dir`` last touched
    more than ``older_than_s`` seconds ago: a killed writer leaves them; a live one finishes its
    write in seconds. Returns the removed paths."""
    import time

    now, removed = time.time(), []
    for p in Path(out_dir).glob(f".*{TMP_SUFFIX}"):
        try:
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue
    return removed
