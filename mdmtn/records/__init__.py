"""Layer 5, records: run records (typed, versioned, checksummed), checkpoints, the machine a run ran on.

The record's layout and checksum are :mod:`.schema`; files and folders of records :mod:`.store`.

Only the record's own names are here, so that reading a record imports neither torch nor the
models: checkpoints (:mod:`.checkpoint`, :mod:`.probe`), the machine (:mod:`.machine`) and the
mean ± std over seeds (:mod:`.aggregate`) are imported from their modules."""

from mdmtn.records.schema import (
    SCHEMA_VERSION,
    Metrics,
    NewerSchemaError,
    RecordError,
    RunRecord,
    cpu_label,
    new_record,
)
from mdmtn.records.store import (
    find_record,
    load_records,
    read_record,
    read_run,
    record_path,
    seal_record,
    write_record,
)

__all__ = [
    "RunRecord",
    "Metrics",
    "SCHEMA_VERSION",
    "RecordError",
    "NewerSchemaError",
    "new_record",
    "write_record",
    "read_record",
    "read_run",
    "load_records",
    "find_record",
    "record_path",
    "seal_record",
    "cpu_label",
]
