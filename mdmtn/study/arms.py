"""Verdicts in both arms, side by side, and what it would take to decide the inconclusive ones.

An *arm* is one switch profile of :data:`mdmtn.study.profiles.ARMS`, and every verdict of
:func:`mdmtn.study.verdicts.judge_arms` rests on that arm's runs alone. This module lays the
arms next to each other for the page (:func:`arms_markdown`), tells the paper's claims from the
project's own entries (:func:`is_paper_claim`), and, for an inconclusive verdict decided by one
interval, finds how many seeds a side would decide it at the spread seen so far
(:func:`seeds_to_decide`) and what that costs (:func:`way_out_rows`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mdmtn.core.config import ConfigError, RunConfig
from mdmtn.records.schema import RunRecord
from mdmtn.study.git_history import descends, git, has_history
from mdmtn.study.profiles import ARMS
from mdmtn.study.verdicts import LEVEL, VERDICTS, Verdict, t_quantile

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


def side_config(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record's configuration but its seed, in today's full flat form (records written before a
    setting existed lack its field, though their key and run are the same)."""
    return {n: v for n, v in RunConfig.from_dict(rec.config).to_dict().items() if n != "seed"}


@dataclass
class _Side:
    """One side of a comparison (or a cell): one configuration but for its seed, its seeds and the
    wall time of each of its runs (seconds, by record key)."""

    config: dict[str, Any]
    seeds: set[int]
    walls: dict[str, float]


def _sides(v: Verdict, records_by_key: Mapping[str, RunRecord]) -> dict[str, _Side]:
    """The sides of ``v``'s runs, by their configuration (canonical JSON): the one grouping both the
    way out of "inconclusive" and the seeds plan read."""
    sides: dict[str, _Side] = {}
    for key in v.keys:
        r = records_by_key.get(key)
        if r is None:
            continue
        cfg = side_config(r)
        side = sides.setdefault(json.dumps(cfg, sort_keys=True), _Side(cfg, set(), {}))
        side.seeds.add(r.config["seed"])
        side.walls[key] = float(r.wall_time_s or 0.0)
    return sides


def way_out_rows(vs: Sequence[Verdict], records: Sequence[RunRecord]) -> list[WayOut]:
    """For every inconclusive paper claim in ``vs`` (one arm): the seeds a side that would decide it
    at its observed spread (:func:`seeds_to_decide`), which way it leans (:func:`lean`), the runs
    to add (per side, up to that many seeds) and their worker-hours at the mean wall time of the
    side's own runs (single-thread runs on the 2-core CPU, from the records)."""
    by_key = {r.key: r for r in records}
    out = []
    for v in vs:
        if v.verdict != "inconclusive" or not is_paper_claim(v.claim):
            continue
        need = seeds_to_decide(v)
        extra, hours = 0, 0.0
        if need is not None and need <= MAX_SEEDS:
            for side in _sides(v, by_key).values():
                missing = max(0, need - len(side.walls))
                extra += missing
                hours += missing * (sum(side.walls.values()) / len(side.walls)) / 3600
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


@dataclass(frozen=True)
class PlannedRun:
    """One run a seeds plan adds: a side's configuration (its record's config but the seed) at a new seed."""

    config: dict[str, Any]
    seed: int
    claims: tuple[str, ...]
    hours: float  # the mean wall time of the side's existing runs, in hours (single-thread, 2-core CPU)


def seeds_plan(
    vs: Sequence[Verdict], records: Sequence[RunRecord], max_seeds: int = 5
) -> tuple[list[WayOut], list[PlannedRun]]:
    """The plan that decides, at today's spread, every inconclusive paper claim of one arm needing
    at most ``max_seeds`` seeds a side: (the claims, the runs). Every side of those claims is
    brought to the claim's number of seeds, the largest over its claims, with the lowest unused
    seeds; a side is one configuration but for its seed, so a run serves every claim that reads
    it. Fixed before any of its runs: no stopping when a verdict looks decided."""
    by_key = {r.key: r for r in records}
    chosen = [w for w in way_out_rows(vs, records) if w.seeds is not None and w.seeds <= max_seeds]
    want: dict[str, tuple[_Side, int, set[str]]] = {}  # side -> (its runs, seeds it needs, claims)
    for w in chosen:
        v = next(x for x in vs if x.claim["id"] == w.claim_id)
        for name, side in _sides(v, by_key).items():
            have, need, ids = want.get(name, (_Side(side.config, set(), {}), 0, set()))
            have.seeds |= side.seeds
            have.walls.update(side.walls)
            want[name] = (have, max(need, w.seeds), ids | {w.claim_id})
    runs = []
    for side, need, ids in want.values():
        new = [s for s in range(need + len(side.seeds)) if s not in side.seeds][: max(0, need - len(side.seeds))]
        hours = sum(side.walls.values()) / len(side.walls) / 3600
        runs += [PlannedRun(side.config, s, tuple(sorted(ids)), hours) for s in new]
    runs.sort(key=lambda p: (p.seed, p.config["dataset"], p.config.get("method", ""), p.config["model"], p.config["k"]))
    return chosen, runs


def plan_toml(arm: str, chosen: Sequence[WayOut], runs: Sequence[PlannedRun], max_seeds: int, made_from: str) -> str:
    """A seeds plan as TOML text: what it decides (claims, seeds a side, which way each leans), the
    runs (config but seed, as make_config's flat fields, and the seed), and where it came from."""

    def val(x: Any) -> str:
        return json.dumps(x) if not isinstance(x, bool) else ("true" if x else "false")

    lines = [
        "# A seeds plan, generated by `python -m mdmtn.study plan-seeds` and committed before any of its runs:",
        "# every run below is trained, whatever the verdicts look like on the way (no stopping early).",
        "# Train it (resumable): python -m mdmtn.study run-plan THIS_FILE --out results/paper --workers 2",
        "schema = 1",
        f"arm = {val(arm)}",
        f"max_seeds = {max_seeds}",
        f"made_from = {val(made_from)}",
        f"runs = {len(runs)}",
        f"worker_hours = {sum(p.hours for p in runs):.1f}  # at the mean wall time of each side's existing runs",
        "",
    ]
    for w in chosen:
        lines += [
            "[[claim]]",
            f"id = {val(w.claim_id)}",
            f"n_now = {val(w.n_now)}",
            f"seeds_a_side = {w.seeds}",
            f"leans = {val(w.leans)}",
            "",
        ]
    for p in runs:
        cfg = ", ".join(
            f"{n} = {val(list(x) if isinstance(x, tuple) else x)}" for n, x in sorted(p.config.items()) if x is not None
        )
        lines += [
            "[[run]]",
            f"seed = {p.seed}",
            f"claims = {val(list(p.claims))}",
            f"hours = {p.hours:.2f}",
            f"config = {{ {cfg} }}",
            "",
        ]
    return "\n".join(lines)


def _read_plan(path: str | Path) -> dict[str, Any]:
    """The parsed seeds plan at ``path``; :class:`ConfigError` naming the file if it is not one."""
    import tomllib

    try:
        plan = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path} is not a readable seeds plan ({e})") from None
    if plan.get("schema") != 1 or not isinstance(plan.get("run"), list) or not plan["run"]:
        raise ConfigError(f"{path} is not a seeds plan of schema 1 with [[run]] entries")
    return plan


def plan_configs(path: str | Path, plan: dict[str, Any] | None = None) -> list[RunConfig]:
    """The run configs of the seeds plan at ``path`` (as :func:`plan_toml` writes it), in its order
    (``plan``: the file already parsed); :class:`ConfigError` naming the file and the fault for
    anything else (no runs trained)."""
    plan = _read_plan(path) if plan is None else plan
    out = []
    for i, run in enumerate(plan["run"]):
        try:
            out.append(RunConfig.from_dict(dict(run["config"], seed=run["seed"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: run {i + 1} is not a config this mdmtn can train ({e})") from None
    return out


@dataclass(frozen=True)
class PlanClaim:
    """One claim of a committed seeds plan: what the plan saw and what the records say now."""

    claim_id: str
    n_then: str  # n when the plan was made ("3", or "5 / 3" for a comparison)
    seeds_a_side: int  # the seeds a side the plan brings it to
    leaned: str  # which way its estimate leaned then
    n_now: str
    verdict_now: str


@dataclass(frozen=True)
class PlanProgress:
    """Where one committed seeds plan stands: its runs trained so far and its claims' verdicts now."""

    name: str  # the plan's file name
    arm: str
    commit: str | None  # the commit that added the plan; None without the git history to read it
    runs: int  # runs the plan trains
    before_plan: int | None  # trained runs made by code that does not descend from ``commit`` (None: unknown)
    hours_planned: float  # worker-hours, as the plan estimated them
    hours_spent: float  # worker-hours of the trained runs (their records' wall times)
    claims: tuple[PlanClaim, ...]
    keys: tuple[str, ...]  # the record keys of the trained runs

    @property
    def trained(self) -> int:
        """How many of the plan's runs have a finished record."""
        return len(self.keys)

    @property
    def complete(self) -> bool:
        """Whether every run of the plan has a finished record (then the verdicts are its outcome)."""
        return self.trained == self.runs


def plan_progress(
    path: str | Path,
    records: Sequence[RunRecord],
    by_arm: Mapping[str, Sequence[Verdict]],
    root: str | Path | None = None,
) -> PlanProgress:
    """The progress of the seeds plan at ``path`` (written by :func:`plan_toml`) on ``records``, with
    its claims' verdicts from ``by_arm`` (:func:`mdmtn.study.verdicts.judge_arms`) in the plan's
    arm. ``root``: the git checkout that holds the plan, to read the commit that added it and to
    check that every trained run's code descends from it (the plan was fixed before its runs);
    without a full history both are None."""
    path = Path(path)
    plan = _read_plan(path)
    keys = [c.key() for c in plan_configs(path, plan)]
    have = {r.key: r for r in records if r.ok}
    done = [have[k] for k in keys if k in have]
    commit = before = None
    if root is not None and has_history(root):
        rel = path.resolve().relative_to(Path(root).resolve())
        commit = git(root, "log", "--diff-filter=A", "--format=%h", "-1", "--", str(rel)).stdout.strip() or None
        if commit is not None:
            before = sum(not descends(root, commit, (r.machine or {}).get("mdmtn_commit")) for r in done)
    by_id = {v.claim["id"]: v for v in by_arm.get(str(plan.get("arm")), ())}
    claims = tuple(
        PlanClaim(
            c["id"],
            str(c["n_now"]),
            int(c["seeds_a_side"]),
            str(c["leans"]),
            by_id[c["id"]].n if c["id"] in by_id else "–",
            by_id[c["id"]].verdict if c["id"] in by_id else "not registered",
        )
        for c in plan.get("claim", [])
    )
    return PlanProgress(
        name=path.name,
        arm=str(plan.get("arm")),
        commit=commit,
        runs=len(keys),
        before_plan=before,
        hours_planned=float(plan.get("worker_hours", 0.0)),
        hours_spent=sum(float(r.wall_time_s or 0.0) for r in done) / 3600,
        claims=claims,
        keys=tuple(r.key for r in done),
    )


def committed_plans(
    results_dir: str | Path, records: Sequence[RunRecord], by_arm: Mapping[str, Sequence[Verdict]]
) -> list[PlanProgress]:
    """:func:`plan_progress` of every plan in ``<results_dir>/plans/``, by file name, read against
    the git history of the checkout that holds ``results_dir``."""
    results_dir = Path(results_dir)
    return [
        plan_progress(p, records, by_arm, results_dir.parent) for p in sorted((results_dir / "plans").glob("*.toml"))
    ]


def plans_markdown(progress: Sequence[PlanProgress]) -> str:
    """Each committed seeds plan as a heading line (arm, commit, runs trained, worker-hours) and a
    table of its claims: n and lean when it was made, the seeds a side it brings, n and verdict now
    (the plan's outcome once it is complete; until then, the verdicts on the way)."""
    if not progress:
        return "No seeds plan is committed."
    out = []
    for p in progress:
        made = f"committed at {p.commit}" if p.commit else "commit not readable here (no git history)"
        order = (
            ""
            if p.before_plan is None or p.trained == 0
            else " Every trained run's code descends from the plan's commit."
            if p.before_plan == 0
            else f" **{p.before_plan} trained run(s) were made by code older than the plan.**"
        )
        state = (
            "complete: the verdicts below are its outcome"
            if p.complete
            else f"{p.trained} of {p.runs} runs trained: the verdicts below are on the way, not its outcome"
        )
        out += [
            f"**`{p.name}`** ({p.arm} arm, {made}): {state}; {p.hours_spent:.1f} of about "
            f"{p.hours_planned:.1f} planned worker-hours spent.{order}",
            "",
            "| claim | n then | leaned then | seeds a side | n now | verdict now |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| `{c.claim_id}` | {c.n_then} | {c.leaned} | {c.seeds_a_side} | {c.n_now or '–'} | {c.verdict_now} |"
            for c in p.claims
        ]
        out.append("")
    return "\n".join(out).rstrip("\n")
