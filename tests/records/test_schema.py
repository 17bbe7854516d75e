"""mdmtn.records.schema: the checksum covers every field a reader can read. Enumerated, not listed:
every field path of a committed record of each kind (a sparse run with its compression summary,
layer rows, probe and timing; each baseline; a joint MT2O-v solve with its hypervolume curve and
transfers) is edited in turn, and the record must then be refused."""

import copy
import json
from pathlib import Path

import pytest

from mdmtn.records.schema import SCHEMA_VERSION, RecordError, content_checksum

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _one_of_each_kind() -> list[Path]:
    seen: dict[tuple, Path] = {}
    for p in sorted(RESULTS.rglob("*.json")):
        if p.name.startswith(".") or "similarity" in p.parts or "smoke" in p.parts:
            continue
        rec = json.loads(p.read_text(encoding="utf-8"))
        cfg = rec["config"]
        kind = (rec.get("kind"), rec["status"], cfg.get("method"), cfg.get("preset"), (cfg.get("k") or [0])[0] > 0)
        seen.setdefault(kind, p)
    return list(seen.values())


KINDS = _one_of_each_kind()


def _paths(obj, prefix=()):
    """Every field path of a JSON value (dict keys, and the first, second and last item of a list)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i in sorted({0, 1, len(obj) - 1} & set(range(len(obj)))):
            yield from _paths(obj[i], prefix + (i,))


def _edited(rec, path):
    out = copy.deepcopy(rec)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    v = parent[path[-1]]
    if isinstance(v, bool):
        parent[path[-1]] = not v
    elif isinstance(v, (int, float)):
        parent[path[-1]] = v + 1 if v == v else 0.0  # nan becomes a number
    elif isinstance(v, str):
        parent[path[-1]] = v + "x"
    elif v is None:
        parent[path[-1]] = 0
    elif isinstance(v, list):
        parent[path[-1]] = v + [0]
    else:
        parent[path[-1]] = dict(v, extra=0)
    return out


def test_the_kinds_cover_what_the_book_reads():
    methods = {json.loads(p.read_text())["config"].get("method") for p in KINDS}
    kinds = {json.loads(p.read_text()).get("kind") for p in KINDS}
    assert {"wc_al", "mgda", "stl", "unitary"} <= methods and "joint" in kinds


@pytest.mark.parametrize("path", KINDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_field_of_a_record_is_under_its_checksum(path):
    rec = json.loads(path.read_text(encoding="utf-8"))
    assert rec["schema"] == SCHEMA_VERSION and rec["checksum"] == content_checksum(rec)
    fields = [p for p in _paths(rec) if p and p != ("checksum",)]
    assert len(fields) > 20
    missed = [p for p in fields if content_checksum(_edited(rec, p)) == rec["checksum"]]
    assert not missed, f"edits of {missed[:5]} leave the checksum unchanged"
    # deleting a field or adding one shows as well
    for k in rec:
        if k != "checksum":
            assert content_checksum({q: v for q, v in rec.items() if q != k}) != rec["checksum"], k
    assert content_checksum(dict(rec, added=1)) != rec["checksum"]


def test_an_edit_outside_the_old_fields_is_refused_by_the_reader(tmp_path):
    """Through the real reader: an edit of the compression summary (outside version 3's fields) of a
    sealed sparse record, and of a joint record's final hypervolume, are refused by name."""
    from mdmtn.experiments.joint_runs import joint_key
    from mdmtn.records.store import load_records, read_record

    sparse = next(
        p for p in KINDS if (r := json.loads(p.read_text())).get("compression") and r["config"]["preset"] == "paper"
    )
    rec = json.loads(sparse.read_text())
    rec["compression"] = dict(rec["compression"], **{k: 1 for k in rec["compression"] if k != "layers"})
    bad = tmp_path / sparse.name
    bad.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match="does not match its checksum"):
        read_record(bad)
    joint = next(p for p in KINDS if json.loads(p.read_text()).get("kind") == "joint")
    rec = json.loads(joint.read_text())
    rec["final_hv"] = rec["final_hv"] + 0.01
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / joint.name).write_text(json.dumps(rec))
    with pytest.raises(RecordError, match="does not match its checksum"):
        load_records(tmp_path / "j", kind="joint", key_of=joint_key, strict=True)
