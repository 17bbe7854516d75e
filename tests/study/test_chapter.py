import os
from pathlib import Path

import pytest

from mdmtn.core.config import ConfigError
from mdmtn.study.chapter import setup

REPO = Path(__file__).resolve().parents[2]


def test_chapter_trains_with_workers_beyond_smoke(monkeypatch, tmp_path):
    monkeypatch.delenv("MDMTN_BOOK_PRESET", raising=False)
    monkeypatch.delenv("MDMTN_BOOK_WORKERS", raising=False)
    assert setup(preset="smoke", results_dir=tmp_path).workers == 1  # start-up would outweigh smoke runs
    assert setup(preset="quick", results_dir=tmp_path).workers == min(2, os.cpu_count() or 1)
    monkeypatch.setenv("MDMTN_BOOK_WORKERS", "3")
    assert setup(preset="smoke", results_dir=tmp_path).workers == 3


def test_chapter_rejects_a_bad_k_with_what_to_write(tmp_path):
    with pytest.raises(ConfigError, match=r"\[0.01, 0.8, 0.19\]"):
        setup(k="0.2 0.8", results_dir=tmp_path)
    with pytest.raises(ConfigError):
        setup(k=[0.5, 0.6, 0.1], results_dir=tmp_path)  # does not sum to 1


def test_chapter_with_workers_on_synthetic_data_trains_in_process(monkeypatch, tmp_path):
    """Worker processes load real data only; when the chapter fell back to synthetic data, it trains itself."""
    monkeypatch.delenv("MDMTN_DATA", raising=False)
    monkeypatch.setenv("MDMTN_BOOK_PRESET", "smoke")
    monkeypatch.setenv("MDMTN_BOOK_WORKERS", "2")
    monkeypatch.setenv("MDMTN_BOOK_ALLOW_SYNTHETIC", "1")
    ch = setup(data_dir=str(tmp_path / "nowhere"), results_dir=tmp_path / "results")
    assert ch.workers == 2
    recs = ch.ensure([ch.config("hps", (0.0, 0.5, 0.5), s) for s in (0, 1)])
    assert [r.status for r in recs] == ["ok", "ok"]
    assert any("SYNTHETIC" in n for n in ch.notes)


def test_a_page_without_real_data_fails_loudly_unless_synthetic_is_asked_for(monkeypatch, tmp_path):
    from mdmtn.data import DatasetError

    monkeypatch.delenv("MDMTN_BOOK_ALLOW_SYNTHETIC", raising=False)
    ch = setup(data_dir=str(tmp_path / "nowhere"), preset="smoke", results_dir=tmp_path)
    with pytest.raises(DatasetError, match="MDMTN_BOOK_ALLOW_SYNTHETIC=1"):
        ch.splits("multimnist", allow_synthetic=True)
    monkeypatch.setenv("MDMTN_BOOK_ALLOW_SYNTHETIC", "1")
    ch.splits("multimnist")
    ch.splits("cifar10mnist")
    assert len([n for n in ch.notes if "SYNTHETIC" in n]) == 1  # said once per page


def test_relative_data_dir_is_relative_to_where_the_command_ran(monkeypatch, tmp_path):
    run_here = tmp_path / "repo"
    (run_here / "book").mkdir(parents=True)
    monkeypatch.chdir(run_here / "book")  # where the notebook executes
    monkeypatch.setenv("PWD", str(run_here))  # where the user typed the command
    monkeypatch.setenv("MDMTN_DATA", "../shared/data")
    assert setup(results_dir=tmp_path).data_dir == str((tmp_path / "shared" / "data").resolve())
    assert setup(data_dir="/abs/path", results_dir=tmp_path).data_dir == "/abs/path"


@pytest.mark.parametrize(
    "var, value, words",
    [
        ("MDMTN_BOOK_PRESET", "quik", "MDMTN_BOOK_PRESET"),
        ("MDMTN_BOOK_ALLOW_SYNTHETIC", "ture", "MDMTN_BOOK_ALLOW_SYNTHETIC"),
        ("MDMTN_DEVICE", "cuda:7", "MDMTN_DEVICE"),
        ("MDMTN_DEVICE", "cpu:5", "MDMTN_DEVICE"),
    ],
)
def test_the_books_environment_is_checked_where_a_chapter_starts(monkeypatch, var, value, words):
    """A typo in the book's environment is named where a chapter starts, not silently "off" nor
    blamed on the chapter's own parameter."""
    from mdmtn.core.config import ConfigError
    from mdmtn.study.chapter import setup

    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=words):
        setup(preset="quick")


def test_papermill_numbers_python_floats_cannot_hold_are_refused_in_one_line():
    from mdmtn.core.config import ConfigError
    from mdmtn.study.chapter import setup

    with pytest.raises(ConfigError, match="seeds must be"):
        setup(seeds=[float("inf")])
    with pytest.raises(ConfigError) as e:
        setup(k=[0.00002] * 50_000)
    assert len(str(e.value)) <= 400 and "\n" not in str(e.value)


def _suggested_k(nb_path):
    """The k a chapter's parameters cell suggests ("e.g. [...]"), and whether the page asks for a dense k."""
    import json
    import re

    cells = json.loads(nb_path.read_text())["cells"]
    params = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    m = re.search(r"^k = .*e\.g\. (\[[^\]]*\])", "".join(params["source"]), re.M)
    text = "".join("".join(c["source"]) for c in cells)
    return (json.loads(m.group(1)) if m else None), "dense_k=True" in text


@pytest.mark.parametrize("nb", sorted((REPO / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_the_k_a_chapter_suggests_is_accepted_by_that_chapter(nb):
    """A reader who copies the suggested k into papermill must not get an error (chapter 10's joint set
    is dense, and it once suggested a sparse k that its configs refused)."""
    from mdmtn.core.config import ConfigError
    from mdmtn.study import joint_report
    from mdmtn.study.chapter import setup

    k, dense = _suggested_k(nb)
    if k is None:
        pytest.skip("no suggested k")
    ch = setup(preset="quick", k=k, dense_k=dense)
    if nb.stem == "10_mt2o":
        assert joint_report.chapter_configs(ch.dataset, ch.preset, ch.seeds, ch.k)
        with pytest.raises(ConfigError, match="k0 = 0"):
            setup(preset="quick", k=[0.001, 0.6, 0.399], dense_k=True)
