"""Every verdict as one flat row a reader can take away, and where a table's numbers come from.

:func:`verdict_rows` turns the verdicts of every arm into rows (claim id, the paper's words, arm,
n, seeds, statistic, interval, method, verdict, the rule's commit, the record keys);
:func:`verdict_csv` is their CSV text. :func:`provenance` says how many records a table or figure
reads and which commits made them. Nothing here writes: :mod:`mdmtn.study.chapter` saves the files
the book links to.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

from mdmtn.records.schema import RunRecord
from mdmtn.study.arms import is_paper_claim
from mdmtn.study.verdicts import Verdict

COLUMNS = (
    "claim_id",
    "kind",
    "source",
    "quote",
    "arm",
    "verdict",
    "post_hoc",
    "n",
    "seeds",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "method",
    "summary",
    "rule_commit",
    "record_keys",
)


def verdict_rows(by_arm: Mapping[str, Sequence[Verdict]], records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (claim, arm): the columns of :data:`COLUMNS`. ``seeds`` and ``record_keys`` are
    space-separated; the interval columns are empty where no single interval decides."""
    seed_of = {r.key: r.config["seed"] for r in records}
    rows = []
    for arm, vs in by_arm.items():
        for v in vs:
            iv = v.interval
            has_iv = iv is not None and iv.n >= 2
            rows.append(
                dict(
                    claim_id=v.claim["id"],
                    kind="paper" if is_paper_claim(v.claim) else "project",
                    source=v.claim["source"],
                    quote=v.claim["quote"],
                    arm=v.arm,
                    verdict=v.verdict,
                    post_hoc=bool(v.post_hoc),
                    n=v.n,
                    seeds=" ".join(str(s) for s in sorted({seed_of[k] for k in v.keys if k in seed_of})),
                    statistic=v.claim["statistic"],
                    estimate=f"{iv.mean:.6g}" if iv is not None else "",
                    ci_low=f"{iv.lo:.6g}" if has_iv else "",
                    ci_high=f"{iv.hi:.6g}" if has_iv else "",
                    method=iv.method if iv is not None else "",
                    summary=v.summary,
                    rule_commit=v.claim["registered"],
                    record_keys=" ".join(v.keys),
                )
            )
    return rows


def verdict_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of :func:`verdict_rows` as CSV text (header first, RFC 4180 quoting)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def provenance(keys: Sequence[str], records: Sequence[RunRecord]) -> dict[str, Any]:
    """How many of ``records`` a table or figure reads (``keys``, each once) and the commits
    that made them (``mdmtn_commit`` of each record's machine block, sorted, "?" where a record
    names none)."""
    by_key = {r.key: r for r in records}
    keys = sorted(set(keys))
    commits = sorted(
        {((by_key[k].machine or {}).get("mdmtn_commit") or "?").split("+")[0][:12] for k in keys if k in by_key}
    )
    return dict(n=len(keys), keys=keys, commits=commits)
