"""The project is self-contained: no code comment, page or README points a reader to documents
outside the repository (the reference notes the project was built from are not shipped)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for d in ("mdmtn", "book", "tests", "benchmarks")
    for p in (ROOT / d).rglob("*")
    if p.suffix in (".py", ".ipynb", ".md") and p.name != Path(__file__).name
) + [ROOT / "README.md"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_to_documents_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":  # notebooks store "§" as "\u00a7": read what the reader sees
        import json

        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
    low = text.lower()
    for bad in ("shared/reference", "shared/seeds", "mt2o-spec", "paper-the book"):
        assert bad not in low, f"{path.relative_to(ROOT)} cites {bad!r}; cite the book's appendix instead"
    # numbered sections ("§3.1", "Spec §10 row 3") belong to documents the repository does not ship
    import re

    hit = re.search(r"§|\bspec\b\s*[§#\d]", low)
    assert hit is None, (
        f"{path.relative_to(ROOT)} cites a section of an outside document: {low[hit.start() : hit.start() + 30]!r}"
    )
