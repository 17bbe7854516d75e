"""The Measured block and the compute ledger are generated from the records (on the ledger page, at
every build), and the ledger counts every record."""

import json
from pathlib import Path

from mdmtn.core.config import make_config
from mdmtn.study.cli import main
from mdmtn.study.ledger import MEASURED_END, MEASURED_START, compute_summary, measured_markdown, replace_measured

ROOT = Path(__file__).resolve().parents[2]


def test_the_measured_block_is_generated_on_the_ledger_page_and_nowhere_typed():
    """The Measured block lives on the compute-ledger page, generated at every build from the
    committed records (so it cannot go stale); README holds no copy of it."""
    page = json.loads((ROOT / "book" / "appendix_checklist.ipynb").read_text(encoding="utf-8"))
    source = "\n".join("".join(c["source"]) for c in page["cells"] if c["cell_type"] == "code")
    assert "measured_markdown(" in source
    assert MEASURED_START not in (ROOT / "README.md").read_text(encoding="utf-8")
    assert measured_markdown(ROOT / "results")  # the committed records give one


def _write(d: Path, cfg, status="ok", wall=60.0, acc=0.9):
    d.mkdir(parents=True, exist_ok=True)
    rec = dict(
        schema=1,
        status=status,
        key=cfg.key(),
        config=cfg.to_dict(),
        wall_time_s=wall,
        machine=dict(cpu_model="Test CPU"),
        metrics=dict(test_acc=[acc, acc], test_acc_mean=acc, SR=0.0, CR=1.0, PS=1.0),
    )
    (d / f"{cfg.key()}.json").write_text(json.dumps(rec))


def test_compute_summary_counts_failed_runs_and_rejected_files(tmp_path):
    res = tmp_path / "results"
    _write(res / "paper", make_config("multimnist", "hps", (0.0, 0.4, 0.6), "paper", 0), wall=3600)
    _write(res / "paper", make_config("multimnist", "hps", (0.0, 0.4, 0.6), "paper", 1), status="error", wall=1800)
    (res / "paper" / "0123456789abcdef.json.rejected-1").write_text("{}")
    s = compute_summary(res)
    assert s["paper"]["runs"] == 2 and s["paper"]["status"] == {"ok": 1, "error": 1}
    assert abs(s["paper"]["hours"] - 1.5) < 1e-9 and len(s["rejected"]) == 1


def test_measured_command_rewrites_only_the_block(tmp_path, capsys):
    res = tmp_path / "results"
    _write(res / "paper", make_config("multimnist", "hps", (0.0, 0.4, 0.6), "paper", 0), acc=0.9612)
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{MEASURED_START}\nold\n{MEASURED_END}\nafter\n")
    assert main(["measured", "--results", str(res), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "96.12%" in text and "old" not in text
    assert replace_measured(text, measured_markdown(res)) == text


def test_pages_print_the_registrys_interval_methods_instead_of_typing_them():
    """The interval methods are declared once, in the registry: the two pages that describe the
    statistics print them with ``load_methods``, and no page keeps the method that preceded the
    declaration (paired only when the seeds happened to match, Welch otherwise) in its prose."""
    for name in ("appendix_checklist.ipynb", "11_what_reproduces.ipynb"):
        page = json.loads((ROOT / "book" / name).read_text(encoding="utf-8"))
        code = "\n".join("".join(c["source"]) for c in page["cells"] if c["cell_type"] == "code")
        assert "load_methods()" in code, name
    for path in sorted((ROOT / "book").glob("*.*")):
        if path.suffix not in (".ipynb", ".md"):
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "markdown")
        assert "Welch otherwise" not in " ".join(text.split()), path.name
