"""mdmtn.records (schema and store): a record round-trips, any edit is caught by its checksum, a newer layout is
refused, and reading records imports neither torch nor the models (checked in a fresh process)."""

import json
import subprocess
import sys

import pytest

from mdmtn.core.config import make_config
from mdmtn.records.schema import SCHEMA_VERSION, NewerSchemaError, RecordError, RunRecord, content_checksum, new_record
from mdmtn.records.store import find_record, load_records, read_record, read_run, record_path, write_record


def _record(tmp_path, seed=0):
    cfg = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", seed)
    rec = new_record(
        status="ok",
        key=cfg.key(),
        config=cfg.to_dict(),
        wall_time_s=1.5,
        history=[],
        metrics=dict(test_acc=[0.5, 0.6], test_acc_mean=0.55, val_acc_mean=0.5, SR=10.0, CR=1.0, PS=2.0),
        data=dict(input_sha256="0" * 64),
    )
    return write_record(record_path(tmp_path, cfg), rec), rec


def test_a_written_record_reads_back_as_written_with_its_checksum(tmp_path):
    path, rec = _record(tmp_path)
    back = read_record(path)
    assert back["schema"] == SCHEMA_VERSION and back["checksum"] == content_checksum(back)
    assert {k: back[k] for k in rec} == rec


def test_read_run_is_the_checked_file_typed_and_every_reader_agrees(tmp_path):
    path, rec = _record(tmp_path)
    run = read_run(path)
    assert run.to_dict() == read_record(path)
    assert run.metrics.test_acc == [0.5, 0.6] and run.metrics.SR == 10.0 and run.ok
    assert run == find_record(tmp_path, run.cfg) == load_records(tmp_path)[0]


def test_metrics_become_typed_once_whichever_way_a_record_is_made(tmp_path):
    _, rec = _record(tmp_path)
    assert (
        RunRecord.from_dict(rec).metrics
        == RunRecord(**{k: rec[k] for k in ("status", "key", "config", "metrics")}).metrics
    )
    for bad, why in ((dict(test_acc_mean=0.5), "without test_acc"), (dict(rec["metrics"], mAP=1.0), "unknown metric")):
        with pytest.raises(RecordError, match=why):
            RunRecord.from_dict(dict(rec, metrics=bad))


def test_any_edit_of_what_the_checksum_covers_is_refused(tmp_path):
    path, _ = _record(tmp_path)
    raw = json.loads(path.read_text())
    raw["metrics"]["SR"] = 11.0
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="checksum"):
        read_record(path)
    assert load_records(tmp_path, on_problem=None) == []


def test_a_newer_layout_is_refused_and_not_guessed(tmp_path):
    path, _ = _record(tmp_path)
    raw = json.loads(path.read_text())
    raw["schema"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(NewerSchemaError, match="update mdmtn"):
        read_record(path)


def test_reading_records_imports_neither_torch_nor_the_models(tmp_path):
    _record(tmp_path, 0)
    _record(tmp_path, 1)
    code = (
        "import sys\nfrom mdmtn.records.store import load_records\n"
        f"recs = load_records({str(tmp_path)!r})\n"
        "print(len(recs), 'torch' in sys.modules, 'mdmtn.models' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2", "False", "False"]
