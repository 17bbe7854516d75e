"""Layer 5, records: run records (typed, versioned, checksummed), checkpoints, the machine a run ran on."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "RunRecord": "record",
    "SCHEMA_VERSION": "record",
    "RecordError": "record",
    "NewerSchemaError": "record",
    "WriteFailed": "record",
    "new_record": "record",
    "write_record": "record",
    "read_record": "record",
    "load_records": "record",
    "find_record": "record",
    "record_path": "record",
    "seal_record": "record",
    "write_json_atomic": "record",
    "CheckpointError": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "restored_note": "checkpoint",
    "machine_info": "machine",
    "resolve_device": "machine",
    "code_version": "machine",
    "load_verified_checkpoint": "probe",
    "model_probe": "probe",
}
__all__ = list(_EXPORTS)
# the rest of the old flat ``mdmtn.records`` module's names, still importable from here for one release
_EXPORTS.update(
    {
        n: "record"
        for n in (
            "CHECKSUM_FIELDS",
            "content_checksum",
            "migrate_record",
            "TMP_SUFFIX",
            "run_key",
            "check_fields",
            "remove_stale_temporaries",
        )
    }
)
_EXPORTS.update({n: "machine" for n in ("ENV_ALLOW_TF32", "allow_tf32", "set_precision", "precision_info")})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
