"""The run record's schema: one typed, versioned layout and its checksum.

A record holds the config, its key, the metrics, the per-epoch history, the wall time, the
machine and the library version, so every number shown elsewhere says how it was made.
:class:`RunRecord` is the layout, :data:`SCHEMA_VERSION` its version, :func:`migrate_record` the one
place older layouts are read, :func:`content_checksum` what proves a record unedited and
:func:`check_fields` what a finished record must hold. Files and folders of records are
:mod:`mdmtn.records.store`. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mdmtn.core.config import RunConfig

SCHEMA_VERSION = 4
"""Version of the record layout. 1: records written before the layout had a version (no
``schema`` field); 2: ``schema`` added, written by :func:`new_record` for every method; 3:
``checksum`` added, the sha256 of the fields in :data:`CHECKSUM_FIELDS_V3`; 4: the checksum covers
every field of the record but itself (:func:`content_checksum`), so no field a reader reads (a
compression summary, a joint record's hypervolume curve, ...) can be edited unseen. A record of an
older version is checked by its own version's rule; ``python -m mdmtn seal`` brings it to version 4
after that check (the committed records all are: a test checks it)."""

# What a version-3 record's checksum covered (and ``probe`` where present).
CHECKSUM_FIELDS_V3 = ("status", "key", "config", "metrics", "history", "data", "wall_time_s")


def canonical_checksum(obj: Any) -> str:
    """``sha256:<hex>`` of ``obj``'s canonical JSON (sorted keys, no spaces): the one hash of
    records and of the study's derived files."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def content_checksum(rec: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of what ``rec``'s checksum covers under its stored
    ``schema``: from version 4 every field but ``checksum``; before, :data:`CHECKSUM_FIELDS_V3` (a
    missing one counts as null) and ``probe``."""
    if rec.get("schema", 1) >= 4:
        fields = {k: v for k, v in rec.items() if k != "checksum"}
    else:
        fields = {k: rec.get(k) for k in CHECKSUM_FIELDS_V3}
        if "probe" in rec:  # covered where present; records written before the probe keep their checksum
            fields["probe"] = rec["probe"]
    return canonical_checksum(fields)


def sealed(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` as it is stored: in the current layout, with its checksum (a new dict; every other
    field as it was)."""
    out = dict(rec, schema=SCHEMA_VERSION)
    out["checksum"] = content_checksum(out)
    return out


def record_checksum(rec: "dict[str, Any] | RunRecord") -> str:
    """The checksum that identifies record ``rec`` (stored JSON or typed): the stored one, or, for a
    record not yet written, the one :func:`mdmtn.records.store.write_record` will store."""
    raw = rec.to_dict() if isinstance(rec, RunRecord) else rec
    return raw.get("checksum") or sealed(raw)["checksum"]


@dataclass(frozen=True)
class Metrics:
    """A finished run's numbers, as :func:`mdmtn.training.finish.finish` measures them.

    ``test_acc`` / ``val_acc``: accuracy per task, fractions in [0, 1] (``val_*`` None when the run
    trained on train + validation); ``*_mean``: their mean; ``test_loss``: NLL per task;
    ``train_objectives``: the last epoch's training objectives; ``*_rows``: rows of the weight
    matrices (summed over layers) that are zero, non-zero, or distinct; ``SR`` (percent), ``CR`` and
    ``PS`` (ratios): the paper's sparsity, compression and parameter-sharing metrics;
    ``params_*`` and ``param_SR`` (percent): the same at the level of single parameters."""

    test_acc: list[float]
    test_acc_mean: float
    test_loss: list[float] | None = None
    val_acc: list[float] | None = None
    val_acc_mean: float | None = None
    train_objectives: list[float] | None = None
    total_rows: int | None = None
    zero_rows: int | None = None
    nonzero_rows: int | None = None
    unique_rows: int | None = None
    SR: float | None = None
    CR: float | None = None
    PS: float | None = None
    params_total: int | None = None
    params_zero: int | None = None
    param_SR: float | None = None

    @classmethod
    def from_dict(cls, m: dict[str, Any]) -> "Metrics":
        """The metrics of a stored record; :class:`RecordError` for a name this layout lacks or a
        required one missing."""
        _check_metric_names(m)
        return cls(**m)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object, every field in declaration order."""
        return {name: getattr(self, name) for name in _METRIC_ORDER}


_METRIC_ORDER = tuple(f.name for f in dataclasses.fields(Metrics))
_METRIC_NAMES = frozenset(_METRIC_ORDER)
_METRICS_REQUIRED = frozenset(f.name for f in dataclasses.fields(Metrics) if f.default is dataclasses.MISSING)


def _check_metric_names(m: dict[str, Any]) -> None:
    unknown = set(m) - _METRIC_NAMES
    if unknown:
        raise RecordError(f"unknown metric(s) {sorted(unknown)}: written by another mdmtn?")
    missing = _METRICS_REQUIRED - set(m)
    if missing:
        raise RecordError(f"metrics without {', '.join(sorted(missing))}")


@dataclass(frozen=True)
class RunRecord:
    """A run record as stored (one JSON object per file, ``<key>.json``), and as every reader gets it
    (:func:`mdmtn.records.store.load_records`).

    ``status``: ``"ok"`` or ``"error"``; ``key``: the config's hash (the file name); ``config``:
    the full config as stored (``RunConfig.to_dict()``, or the joint solver's), and :attr:`cfg` the
    same as a :class:`RunConfig`; ``kind``: None for one config's run, ``"joint"`` for an MT2O-v /
    independent solve of several; ``metrics``: :class:`Metrics`; ``data``: what was trained on
    (sizes, inputs' sha256); ``history``: one dict per epoch; ``wall_time_s``: seconds;
    ``machine``: where and with which code (:func:`machine_info`); ``error`` / ``traceback`` for a
    failed run; ``details``: the method's own fields (phase-1 choice, compression, α, a baseline's
    facts, the joint solver's hypervolume curve, ...), stored at the top level of the JSON.
    """

    status: str
    key: str
    config: dict
    kind: str | None = None
    metrics: Metrics | None = None
    data: dict | None = None
    history: list | None = None
    wall_time_s: float | None = None
    machine: dict | None = None
    error: str | None = None
    traceback: str | None = None
    details: dict = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    checksum: str | None = None

    def __post_init__(self) -> None:
        # the one place stored metrics become typed, for readers and writers alike
        if isinstance(self.metrics, dict):
            object.__setattr__(self, "metrics", Metrics.from_dict(self.metrics))

    @functools.cached_property
    def cfg(self) -> RunConfig:
        """The config as a :class:`RunConfig` (settings a record predates take their defaults); a
        joint record has none (:class:`RecordError`)."""
        if self.kind == "joint":
            raise RecordError(f"joint record {self.key} holds several configs, not one RunConfig")
        return RunConfig.from_dict(self.config)

    @property
    def ok(self) -> bool:
        """Whether the run finished (``status == "ok"``)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object: the fields that are set, then ``details`` at the top level."""
        out: dict[str, Any] = {"schema": self.schema, "status": self.status, "key": self.key, "config": self.config}
        for name in ("kind", "metrics", "data", "history", "wall_time_s", "machine", "error", "traceback", "checksum"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_dict() if isinstance(value, Metrics) else value
        clash = set(self.details) & (set(out) | set(_CORE))
        if clash:
            raise ValueError(f"record details may not reuse the fields {sorted(clash)}")
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> "RunRecord":
        """The record of a stored object of any schema version (:func:`migrate_record` first)."""
        rec = migrate_record(rec)
        core = {k: rec[k] for k in _CORE if k in rec}
        return cls(**core, details={k: v for k, v in rec.items() if k not in _CORE})


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
        # 1 -> 2 added `schema`, 2 -> 3 `checksum`, 3 -> 4 widened what it covers: nothing was
        # renamed, so the key, the config and every number stay as written
        out["schema"] = SCHEMA_VERSION
    return out


def new_record(*, status: str, key: str, config: dict, **fields: Any) -> dict[str, Any]:
    """The one function that writes a record's content, for every method, the joint solver and
    failed runs: :class:`RunRecord` fields by name, anything else into ``details``. Returns the dict
    to store (:func:`write_record` adds its checksum)."""
    core = {k: fields.pop(k) for k in list(fields) if k in _CORE}
    return RunRecord(status=status, key=key, config=config, **core, details=fields).to_dict()


def cpu_label(machine: Mapping[str, Any] | None, unknown: str = "unrecorded CPU") -> str:
    """How a page names the CPU of a record's ``machine`` block: the model name and, where the record
    has it (records written since 2026-12-08), the vector instruction set torch's CPU kernels used
    (``"AMD EPYC, AVX2"``). The same config does not train bit for bit alike under AVX2 and AVX-512
    kernels, and a VM's model name may not tell them apart. ``unknown`` stands for a missing model name."""
    m = machine or {}
    name = m.get("cpu_model") or unknown
    isa = m.get("cpu_isa")
    return f"{name}, {isa}" if isa else name


class RecordError(ValueError):
    """A file in a records folder that is not a usable record; the message says why."""


class NewerSchemaError(RecordError):
    """A record written by a newer mdmtn: left where it is (never set aside or retrained)."""


def run_key(rec: dict[str, Any]) -> str:
    """The key a run record's config hashes to."""
    return RunConfig.from_dict(rec["config"]).key()


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
        try:
            _check_metric_names(m)
        except RecordError as e:
            raise RecordError(f"{path}: {e}") from None
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
