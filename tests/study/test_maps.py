"""mdmtn.study.maps: a stored Fig. 7 maps file is drawn only if it is the maps of its run; a damaged one
is named (with the command that rebuilds it), never a traceback and never drawn."""

import json
import shutil
from pathlib import Path

import pytest

from mdmtn.study.maps import MapsDamaged, maps_checksum, read_maps

RESULTS = Path(__file__).resolve().parents[2] / "results"
COMMITTED = sorted((RESULTS / "quick" / "similarity").glob("*.json"))


def test_the_committed_maps_are_sealed_and_read():
    assert COMMITTED
    for p in COMMITTED:
        stored = read_maps(p)
        assert stored["key"] == p.stem and stored["checksum"] == maps_checksum(stored)


def _damage(path: Path, how: str) -> None:
    stored = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[:1000])
    elif how == "edited":
        stored["maps"][0]["zero_rows"] += 1
        path.write_text(json.dumps(stored))
    elif how == "field":
        del stored["maps"][0]["S_u8"]
        stored["maps"][0]["x"] = 1
        path.write_text(json.dumps(stored))
    elif how == "other run":
        path.write_text(json.dumps(dict(stored, key="0" * 16)))
    elif how == "not maps":
        path.write_text(json.dumps({"maps": "nothing"}))


@pytest.mark.parametrize("how", ["truncated", "edited", "field", "other run", "not maps"])
def test_a_damaged_maps_file_is_named_with_its_fix(tmp_path, how):
    src = COMMITTED[0]
    dst = tmp_path / "quick" / "similarity" / src.name
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    _damage(dst, how)
    with pytest.raises(MapsDamaged) as e:
        read_maps(dst)
    msg = str(e.value)
    assert str(dst) in msg and "python -m mdmtn.study maps" in msg and "\n" not in msg


def test_the_fig7_panel_says_a_file_is_damaged_instead_of_drawing_it(tmp_path):
    """Through the book's reader: the panel of the damaged run carries the reason and no maps."""
    from mdmtn.study.report import load_all, similarity_panels

    quick = tmp_path / "quick"
    shutil.copytree(RESULTS / "quick", quick, ignore=shutil.ignore_patterns("*.pt"))
    records = load_all([quick])
    panels = similarity_panels(records, quick)
    assert panels and all(p["maps"] is not None and p["damaged"] is None for p in panels)
    target = quick / "similarity" / f"{panels[0]['key']}.json"
    _damage(target, "edited")
    after = {p["key"]: p for p in similarity_panels(records, quick)}[panels[0]["key"]]
    assert after["maps"] is None and "does not match its checksum" in after["damaged"]
