"""Layer 8, reporting: tables, fronts, verdicts, the compute ledger and plots, read from run records only."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "group_records": "aggregate",
    "load_all": "report",
    "table_rows": "report",
    "cell_rows": "cells",
    "cell_tables": "cells",
    "judge": "verdicts",
    "judge_arms": "verdicts",
    "summary_facts": "summary",
    "verdict_rows": "verdict_table",
    "ledger_rows": "ledger",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
