"""The study: this paper's claims judged on the library's runs.

Built on the library and never imported by it (tests/system/test_imports.py): the claims registry
(``registry.toml``) and its verdicts in two arms, the tables of Tables 1-2 and the fronts of
Figs. 2-3, the reproducibility report, the compute ledger, the book's helpers and Fig. 7's maps,
and its own command line (``python -m mdmtn.study``). Everything here reads run records; only
``cli``, ``maps``, ``compression`` and the book's ``chapter.publish`` write.
"""

from mdmtn.study.cells import cell_rows, cell_tables, preset_records
from mdmtn.study.chapter import setup
from mdmtn.study.summary import summary_facts, summary_markdown
from mdmtn.study.verdict_table import verdict_csv, verdict_rows
from mdmtn.study.verdicts import judge, judge_arms, load_registry

__all__ = [
    "judge",
    "judge_arms",
    "load_registry",
    "cell_rows",
    "cell_tables",
    "preset_records",
    "summary_facts",
    "summary_markdown",
    "verdict_rows",
    "verdict_csv",
    "setup",
]
