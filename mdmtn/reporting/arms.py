"""Verdicts in both arms, side by side, and what it would take to decide the inconclusive ones.

An *arm* is one switch profile of :data:`mdmtn.core.config.ARMS`, and every verdict of
:func:`mdmtn.reporting.verdicts.judge_arms` rests on that arm's runs alone. This module lays the
arms next to each other for the page (:func:`arms_markdown`), tells the paper's claims from the
project's own entries (:func:`is_paper_claim`), and, for an inconclusive verdict decided by one
interval, finds how many seeds a side would decide it at the spread seen so far
(:func:`seeds_to_decide`) and what that costs (:func:`way_out_rows`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mdmtn.core.config import ARMS
from mdmtn.reporting.verdicts import LEVEL, VERDICTS, Verdict, t_quantile

# families of the registry that are the project's own apparatus, not claims of the paper
PROJECT_FAMILIES = ("root-cause study", "unitary baseline")
MAX_SEEDS = 50  # beyond this, "seeds to decide" is given as "> 50"


def is_paper_claim(claim: Mapping[str, Any]) -> bool:
    """Whether a registry entry is a claim of the paper (not the project's own question, study or
    decision)."""
    return not claim.get("project") and claim.get("family") not in PROJECT_FAMILIES and claim["rule"] != "decision"


def _cell(v: Verdict) -> str:
    mark = " †" if v.post_hoc else ""
    n = f" · n = {v.n}" if v.n else ""
    return f"**{v.verdict}**{mark}{n}<br><small>{v.summary.replace('|', '/')}</small>"


def arms_markdown(by_arm: Mapping[str, Sequence[Verdict]], family: str | None = None) -> str:
    """A markdown table of every claim (of ``family`` only, if given) with its verdict in each arm,
    the registered decision's arm first: verdict († post hoc), n, and the statistic with its
    interval and method. The per-seed values are in the downloadable verdict table."""
    arms = [a for a in ARMS if a in by_arm]
    lines = [
        "| claim (the paper's words) | source | " + " | ".join(f"{a} arm" for a in arms) + " |",
        "|---|---" + "|---" * len(arms) + "|",
    ]
    rows = zip(*(by_arm[a] for a in arms))
    for vs in rows:
        c = vs[0].claim
        if family is not None and c.get("family") != family:
            continue
        quote = c["quote"].replace("|", "\\|")
        cid = c["id"].replace(".", ".\u200b").replace("-", "-\u200b")
        lines.append(f"| {quote} <br><small>{cid}</small> | {c['source']} | " + " | ".join(_cell(v) for v in vs) + " |")
    return "\n".join(lines)


def arm_counts(vs: Sequence[Verdict], paper_only: bool = True) -> dict[str, int]:
    """Verdict counts of one arm (the paper's claims only unless ``paper_only`` is False), with
    inconclusive split by why: ``inconclusive: few`` (too few runs) and ``inconclusive: wide``."""
    xs = [v for v in vs if is_paper_claim(v.claim) or not paper_only]
    out = {name: sum(v.verdict == name for v in xs) for name in VERDICTS}
    out["inconclusive: few"] = sum(v.verdict == "inconclusive" and v.reason == "few" for v in xs)
    out["inconclusive: wide"] = out["inconclusive"] - out["inconclusive: few"]
    return out


def lean(v: Verdict) -> str | None:
    """Which way an inconclusive verdict's estimate points: "holds" if the point estimate lies in
    the claim's region, "does not hold" if outside; None where no single interval decides."""
    if v.interval is None or v.region is None or v.interval.n < 2:
        return None
    lo, hi = v.region
    return "holds" if lo <= v.interval.mean <= hi else "does not hold"


def seeds_to_decide(v: Verdict, max_seeds: int = MAX_SEEDS) -> int | None:
    """The smallest number of seeds a side at which ``v``'s 95% interval, with the spread and
    estimate seen so far, would no longer cross its region's boundary; None where one interval does
    not decide the verdict or its spread is unknown (n < 2), ``max_seeds + 1`` beyond ``max_seeds``.

    The standard error is scaled as 1/sqrt(n) from today's n and the degrees of freedom taken as
    n - 1 (for a Welch interval with n a side this is conservative: its df lies between n - 1 and
    2n - 2). A projection, not a promise: the estimate and spread will move with new seeds.
    """
    iv = v.interval
    if iv is None or v.region is None or iv.n < 2 or iv.se <= 0:
        return None
    lo, hi = v.region
    for n in range(max(iv.n, 2), max_seeds + 1):
        h = t_quantile(0.5 + LEVEL / 2, n - 1) * iv.se * math.sqrt(iv.n / n)
        a, b = iv.mean - h, iv.mean + h
        if (a >= lo and b <= hi) or b < lo or a > hi:
            return max(n, 3)
    return max_seeds + 1


@dataclass(frozen=True)
class WayOut:
    """What deciding one inconclusive verdict would take in one arm."""

    claim_id: str
    arm: str
    n_now: str
    leans: str | None
    seeds: int | None  # seeds a side (None: no single interval, or unknown spread)
    extra_runs: int
    worker_hours: float


def _side_walls(v: Verdict, records_by_key: Mapping[str, dict]) -> list[tuple[int, float]]:
    """Per side of ``v``: (seeds it has, mean wall time per run in s), from its records' configs."""
    sides: dict[str, list[float]] = {}
    for key in v.keys:
        r = records_by_key.get(key)
        if r is None:
            continue
        # a side is one configuration but for its seed
        side = json.dumps({n: v for n, v in r["config"].items() if n != "seed"}, sort_keys=True)
        sides.setdefault(side, []).append(float(r.get("wall_time_s") or 0.0))
    return [(len(w), sum(w) / len(w)) for w in sides.values()]


def way_out_rows(vs: Sequence[Verdict], records: Sequence[dict]) -> list[WayOut]:
    """For every inconclusive paper claim in ``vs`` (one arm): the seeds a side that would decide it
    at its observed spread (:func:`seeds_to_decide`), which way it leans (:func:`lean`), the runs
    to add (per side, up to that many seeds) and their worker-hours at the mean wall time of the
    side's own runs (single-thread runs on the 2-core CPU, from the records)."""
    by_key = {r["key"]: r for r in records}
    out = []
    for v in vs:
        if v.verdict != "inconclusive" or not is_paper_claim(v.claim):
            continue
        need = seeds_to_decide(v)
        extra, hours = 0, 0.0
        if need is not None and need <= MAX_SEEDS:
            for n, wall in _side_walls(v, by_key):
                extra += max(0, need - n)
                hours += max(0, need - n) * wall / 3600
        out.append(WayOut(v.claim["id"], v.arm, v.n, lean(v), need, extra, hours))
    return out


def way_out_markdown(rows: Sequence[WayOut]) -> str:
    """The inconclusive claims of one arm as a table: n now, which way the estimate leans, the seeds
    a side that would decide it at today's spread, and what the missing runs cost."""
    lines = [
        "| claim | n now | leans | seeds a side to decide | runs to add | worker-hours |",
        "|---|---|---|---|---|---|",
    ]
    for w in sorted(rows, key=lambda w: (w.seeds is None, w.seeds or 0, w.claim_id)):
        seeds = "–" if w.seeds is None else f"> {MAX_SEEDS}" if w.seeds > MAX_SEEDS else str(w.seeds)
        cost = "–" if w.seeds is None or w.seeds > MAX_SEEDS else f"{w.extra_runs} | {w.worker_hours:.1f}"
        if cost == "–":
            cost = "– | –"
        lines.append(f"| `{w.claim_id}` | {w.n_now or '–'} | {w.leans or '–'} | {seeds} | {cost} |")
    return "\n".join(lines)
