"""Every committed run record loads into today's config classes and hashes to its own file name,
so no code change silently orphans a committed result (tables and figures select by key)."""

import json
from pathlib import Path

import pytest

from mdmtn.core.config import RunConfig
from mdmtn.training.mt2o import JointConfig

RESULTS = Path(__file__).resolve().parents[2] / "results"
RECORDS = sorted(p for p in RESULTS.rglob("*.json") if not p.name.startswith(".") and "similarity" not in p.parts)


def test_there_are_committed_records():
    assert len(RECORDS) > 50


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_record_keeps_its_key(path):
    rec = json.loads(path.read_text(encoding="utf-8"))
    assert rec["key"] == path.stem
    cls = JointConfig if rec.get("kind") == "joint" else RunConfig
    assert cls.from_dict(rec["config"]).key() == path.stem


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_record_reads_into_the_current_schema_unchanged(path):
    from mdmtn.records.schema import SCHEMA_VERSION, RunRecord

    rec = json.loads(path.read_text(encoding="utf-8"))
    typed = RunRecord.from_dict(rec)
    assert typed.schema == SCHEMA_VERSION and typed.key == path.stem
    again = typed.to_dict()
    # the migration adds the version and nothing else: every stored field comes back as it was
    assert {k: v for k, v in again.items() if k != "schema"} == {k: v for k, v in rec.items() if k != "schema"}


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_config_round_trips_through_the_grouped_config(path):
    """Every stored setting comes back unchanged from the grouped RunConfig (settings added after
    the record was written take their defaults, which its key leaves out)."""
    rec = json.loads(path.read_text(encoding="utf-8"))
    if rec.get("kind") == "joint":
        runs = rec["config"]["run"]
        assert {k: v for k, v in RunConfig.from_dict(runs).to_dict().items() if k in runs} == runs
        return
    stored = rec["config"]
    again = RunConfig.from_dict(stored).to_dict()
    assert {k: v for k, v in again.items() if k in stored} == stored


def test_every_table_selected_sparse_run_has_committed_similarity_maps():
    """Fig. 7 draws the sparse runs Tables 1-2 select; a fresh clone has no checkpoints, so each
    selected run needs its maps committed, or the chapter would silently lose its figure."""
    from mdmtn.study.report import load_all, table_rows

    quick = RESULTS / "quick"
    records = load_all([quick])
    for ds in ("multimnist", "cifar10mnist"):
        for row in table_rows(records, ds):
            if row["method"] == "ours-sparse" and row["ours"] is not None:
                key = row["ours"]["keys"][0]
                assert (quick / "similarity" / f"{key}.json").is_file(), (
                    f"no results/quick/similarity/{key}.json for the selected {row['arch']} / {ds} run: build "
                    "chapter 7 where its checkpoint is, and commit the map file"
                )


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_record_carries_a_valid_checksum(path):
    """Every committed record is sealed under the current schema, whose checksum covers every field:
    an edit of anything a page or verdict reads makes it unreadable by name (run `python -m mdmtn
    seal DIR` on new records of an older mdmtn before committing them)."""
    from mdmtn.records.schema import SCHEMA_VERSION, content_checksum

    rec = json.loads(path.read_text(encoding="utf-8"))
    assert rec.get("schema") == SCHEMA_VERSION, f"{path.name}: schema {rec.get('schema')}; seal it"
    assert rec.get("checksum") == content_checksum(rec), f"{path.name}: not sealed or edited"
