"""Verdicts from the claims registry (``mdmtn/study/registry.toml``): one per claim of the paper.

Each registry entry names the paper's words, a statistic, a decision rule and tolerance, the preset
it is judged at, and the commit that fixed the rule. :func:`judge` applies the rule to run records
and returns one of four verdicts:

* ``holds`` / ``does not hold``: the 95% interval of the statistic lies wholly inside / wholly
  outside the claim's region;
* ``inconclusive``: fewer runs than the entry needs (3 unless it says ``min_n``) on a side, or the
  interval crosses the region's boundary;
* ``not yet``: no runs at the entry's preset, or no statistic registered for the claim.

Every claim is judged within one *arm* (:data:`mdmtn.study.profiles.ARMS`): every run on both sides of
a comparison comes from the same switch profile (a method's config under it, with only the switches
that method reads), so no verdict subtracts runs of two arms.

Intervals are Student t intervals on a mean, or on a mean difference by the registry's declared
method (``[methods]``): paired t on the seeds both sides share when they share at least 3, Welch t
on every seed of each side otherwise. With n = 3 a percentile bootstrap has only 10
distinct resamples and its nominal 95% is not reachable, so t is used throughout; its normality
assumption is the price, and the per-seed values are always printed beside it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mdmtn.records.schema import RunRecord
from mdmtn.study.profiles import ARMS, BASE_PROFILE, BOOK_PROFILE
from mdmtn.study.selection import is_default

REGISTRY = Path(__file__).resolve().parent / "registry.toml"
VERDICTS = ("holds", "does not hold", "inconclusive", "not yet")
RULES = (
    "match",
    "order",
    "noninferior",
    "gap_larger",
    "trade",
    "sr_spread",
    "front",
    "above",
    "qualitative",
    "decision",
)
LEVEL = 0.95
METRICS = ("acc1", "acc2", "avg", "SR", "CR", "PS")


class RegistryError(ValueError):
    """A registry entry that cannot be judged; the message names the entry."""


def load_registry(path: str | Path = REGISTRY) -> list[dict[str, Any]]:
    """The registry's entries, in file order, each checked for the fields its rule needs."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    if data.get("schema") != 1:
        raise RegistryError(f"{path}: schema {data.get('schema')!r} is not 1; update mdmtn")
    claims = data.get("claim", [])
    seen: set[str] = set()
    need = {
        "match": ("target", "tolerance"),
        "order": ("a", "b", "expect"),
        "noninferior": ("a", "b", "tolerance"),
        "gap_larger": ("a", "b"),
        "trade": ("a", "b"),
        "sr_spread": ("tolerance",),
        "front": ("measure",),  # and "front" (dataset, model), except for measures over both datasets
        "above": ("statistic_of", "above", "models"),
        "qualitative": (),
        "decision": ("decision",),
    }
    for c in claims:
        cid = c.get("id", "?")
        for k in ("id", "source", "quote", "statistic", "rule", "preset", "post_hoc", "registered"):
            if k not in c:
                raise RegistryError(f"registry entry {cid}: missing {k!r}")
        if cid in seen:
            raise RegistryError(f"registry entry {cid}: id used twice")
        seen.add(cid)
        if c["rule"] not in RULES:
            raise RegistryError(f"registry entry {cid}: unknown rule {c['rule']!r}; one of {RULES}")
        for k in need[c["rule"]]:
            if k not in c:
                raise RegistryError(f"registry entry {cid}: rule {c['rule']} needs {k!r}")
        if c["rule"] == "match" and "cell" not in c:
            raise RegistryError(f"registry entry {cid}: rule match needs 'cell'")
        if c.get("post_hoc") and not c.get("why_post_hoc"):
            raise RegistryError(f"registry entry {cid}: a post-hoc entry says why (why_post_hoc)")
        if "seen_before" in c and (not isinstance(c["seen_before"], list) or not c.get("why_seen_before")):
            raise RegistryError(f"registry entry {cid}: seen_before is a list of record keys, with why_seen_before")
        if "unseen_side" in c and (c["unseen_side"] not in ("a", "b") or c["unseen_side"] not in c):
            raise RegistryError(f"registry entry {cid}: unseen_side names a side of the entry ('a' or 'b')")
    return claims


def load_methods(path: str | Path = REGISTRY) -> dict[str, str]:
    """The registry's declared interval method per kind of rule (its ``[methods]`` table)."""
    with open(path, "rb") as f:
        return dict(tomllib.load(f).get("methods", {}))


# --- statistics --------------------------------------------------------------------------------------


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (any real df, for Welch)."""
    from scipy import stats

    return float(stats.t.cdf(t, df))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` > 0 degrees of freedom (SciPy's)."""
    from scipy import stats

    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    return float(stats.t.ppf(p, df))


@dataclass(frozen=True)
class Interval:
    """A mean (or mean difference) with its two-sided ``LEVEL`` t interval; ``lo = hi = mean`` for
    n = 1 is never used to decide (the rules need n >= 3)."""

    mean: float
    lo: float
    hi: float
    n: int
    method: str
    se: float = 0.0  # the standard error the half-width is t * se of (0 with no interval)
    df: float = 0.0


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Student t interval of the mean of ``values`` (n >= 1; n = 1 gives a zero-width interval that
    the rules never decide on)."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        raise ValueError("mean_interval of no values")
    m = sum(v) / n
    if n == 1:
        return Interval(m, m, m, 1, "t, n = 1")
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    h = t_quantile(0.5 + level / 2, n - 1) * s / math.sqrt(n)
    return Interval(m, m - h, m + h, n, f"t, df = {n - 1}", s / math.sqrt(n), n - 1)


PAIRED_MIN = 3  # shared seeds from which a difference is paired (the registry's declared method)


def difference_interval(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> Interval:
    """Interval of mean(a) - mean(b) for per-seed values ``{seed: value}``, by the registry's
    declared method: paired t on the seeds both sides share when they share at least
    :data:`PAIRED_MIN`; otherwise Welch's t on every seed of each side, with Welch-Satterthwaite
    degrees of freedom. ``n`` is the number of pairs, or the smaller side."""
    shared = sorted(set(a) & set(b))
    if len(shared) >= PAIRED_MIN:
        iv = mean_interval([a[s] - b[s] for s in shared], level)
        return Interval(iv.mean, iv.lo, iv.hi, iv.n, f"paired t on {iv.n} shared seeds, df = {iv.n - 1}", iv.se, iv.df)
    va, vb = list(a.values()), list(b.values())
    ma, mb = sum(va) / len(va), sum(vb) / len(vb)
    d = ma - mb
    if len(va) < 2 or len(vb) < 2:
        return Interval(d, d, d, min(len(va), len(vb)), "Welch t, a side with n = 1")
    sa = sum((x - ma) ** 2 for x in va) / (len(va) - 1) / len(va)
    sb = sum((x - mb) ** 2 for x in vb) / (len(vb) - 1) / len(vb)
    se = math.sqrt(sa + sb)
    if se == 0:
        return Interval(d, d, d, min(len(va), len(vb)), "Welch t, no spread")
    df = (sa + sb) ** 2 / (sa**2 / (len(va) - 1) + sb**2 / (len(vb) - 1))
    h = t_quantile(0.5 + level / 2, df) * se
    return Interval(d, d - h, d + h, min(len(va), len(vb)), f"Welch t, df = {df:.1f}", se, df)


def ci_text(iv: Interval, spec: str) -> str:
    """ "95% CI [lo, hi] (method)" with ``spec`` the number format, or, where a side has one run and
    there is no interval to give, "no 95% CI (method)" instead of a zero-width one."""
    if iv.n < 2:
        return f"no 95% CI ({iv.method})"
    return f"95% CI [{iv.lo:{spec}}, {iv.hi:{spec}}] ({iv.method})"


def decide(iv: Interval, lo: float, hi: float, n_min: int, n: int) -> str:
    """The verdict of "the statistic lies in [lo, hi]" from its interval: holds if the interval
    is inside, does not hold if it is wholly outside, inconclusive otherwise or with n < n_min."""
    if n == 0:
        return "not yet"
    if n < n_min:
        return "inconclusive"
    if iv.lo >= lo and iv.hi <= hi:
        return "holds"
    if iv.hi < lo or iv.lo > hi:
        return "does not hold"
    return "inconclusive"


# --- which runs a claim is judged on ------------------------------------------------------------------


def metric_value(rec: RunRecord, metric: str) -> float:
    """One metric of a record in the paper's units (accuracies in %); AttributeError for a metric the
    record's layout lacks, TypeError for one it did not measure."""
    m = rec.metrics
    if metric == "acc1":
        return 100.0 * m.test_acc[0]
    if metric == "acc2":
        return 100.0 * m.test_acc[-1]
    if metric == "avg":
        return 100.0 * m.test_acc_mean
    return float(getattr(m, metric))


def side_runs(
    records: Sequence[RunRecord], side: dict[str, Any], preset: str, profile: str | None = BOOK_PROFILE
) -> list[RunRecord]:
    """The ok records of one side of a claim at ``preset``, each seed once (in seed order): configs
    equal to the library's for (dataset, model, method, k, seed) under switch ``profile`` (one arm;
    the book's decision arm unless named), with only the switches the method reads. ``side`` holds dataset, method, model and either k or ``sparse``
    (the paper's cell of that sparsity), and optionally ``set``: settings that differ from the
    profile's (flat field names, as ``--set``), which the runs must have."""
    from mdmtn.core.paper import PAPER_RESULTS

    method = side.get("method", "wc_al")
    k = side.get("k")
    if method == "wc_al" and k is None:
        ks = [
            key[3]
            for key in PAPER_RESULTS
            if key[:3] == (side["dataset"], "wc_al", side["model"]) and (key[3][0] > 0) == bool(side["sparse"])
        ]
        k = ks[0]
    profile = profile or BOOK_PROFILE
    out: dict[int, dict] = {}
    for r in records:
        c = r.config
        if not r.ok or c.get("preset") != preset or c.get("dataset") != side["dataset"]:
            continue
        if c.get("method", "wc_al") != method or c.get("model") != side["model"]:
            continue
        if method == "wc_al" and not all(abs(a - b) < 1e-12 for a, b in zip(c["k"], k)):
            continue
        if is_default(r, profile, side.get("set")):
            out.setdefault(c["seed"], r)
    return [out[s] for s in sorted(out)]


def _values(runs: Sequence[RunRecord], metric: str) -> tuple[dict[int, float], list[str]]:
    vals, missing = {}, []
    for r in runs:
        try:
            vals[r.config["seed"]] = metric_value(r, metric)
        except (AttributeError, KeyError, IndexError, TypeError):
            missing.append(r.key)
    return vals, missing


# --- the verdicts --------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One claim judged: the verdict, the numbers behind it, and the records it used."""

    claim: dict[str, Any]
    verdict: str
    summary: str
    n: str = ""
    interval: Interval | None = None
    per_seed: str = ""
    keys: list[str] = field(default_factory=list)
    # why an "inconclusive" is one: "few" (fewer runs than the rule needs) or "wide" (the interval
    # crosses the decision boundary); "" otherwise
    reason: str = ""
    # the difference and its interval alone, for verdicts built from several (judge_trade)
    core: str = ""
    # the arm (switch profile) whose runs judged it; an entry that names its own profile keeps it
    arm: str = BOOK_PROFILE
    # the decision region of the interval (lo, hi), where one interval decides the verdict
    region: tuple[float, float] | None = None

    @property
    def post_hoc(self) -> bool:
        return bool(self.claim.get("post_hoc"))


def _fmt_seeds(vals: dict[int, float], digits: int = 2) -> str:
    return ", ".join(f"s{s}: {v:.{digits}f}" for s, v in sorted(vals.items()))


def _band(c: dict[str, Any]) -> tuple[float, float]:
    tol = float(c["tolerance"]) * (abs(float(c["target"])) if c.get("tolerance_kind") == "rel" else 1.0)
    return float(c["target"]) - tol, float(c["target"]) + tol


def _reason(verdict: str, few: bool) -> str:
    """Why ``verdict`` is inconclusive: too few runs, else an interval that crosses the boundary."""
    return "" if verdict != "inconclusive" else "few" if few else "wide"


def judge_match(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    runs = side_runs(records, c["cell"], c["preset"], c.get("profile"))
    vals, missing = _values(runs, c["metric"])
    lo, hi = _band(c)
    n_min = int(c.get("min_n", 3))
    if not vals:
        return Verdict(
            c, "not yet", "no runs" + (f" (left out, metric missing: {', '.join(missing)})" if missing else ""), n="0"
        )
    iv = mean_interval(list(vals.values()))
    v = decide(iv, lo, hi, n_min, iv.n)
    digits = 1 if c["metric"] == "SR" else 2
    summary = (
        f"mean {iv.mean:.{digits + 1}f}, {ci_text(iv, f'.{digits + 1}f')}; "
        f"region [{lo:.{digits + 1}f}, {hi:.{digits + 1}f}]"
    )
    if iv.n < n_min:
        summary += f"; needs n >= {n_min}"
    if missing:
        summary += f"; left out (metric missing): {', '.join(missing)}"
    return Verdict(
        c,
        v,
        summary,
        n=str(iv.n),
        interval=iv,
        per_seed=_fmt_seeds(vals, digits),
        keys=[r.key for r in runs],
        reason=_reason(v, iv.n < n_min),
        region=(lo, hi),
    )


def _two_sides(
    c: dict[str, Any], records: Sequence[RunRecord], metric: str = "avg"
) -> tuple[dict[int, float], dict[int, float], list[str]]:
    ra = side_runs(records, c["a"], c["preset"], c.get("profile"))
    rb = side_runs(records, c["b"], c["preset"], c.get("profile"))
    va, _ = _values(ra, metric)
    vb, _ = _values(rb, metric)
    return va, vb, [r.key for r in ra + rb]


def _judge_difference(
    c: dict[str, Any], va: dict[int, float], vb: dict[int, float], lo: float, hi: float, keys: list[str], what: str
) -> Verdict:
    if not va or not vb:
        return Verdict(c, "not yet", f"no runs on side {'a' if not va else 'b'}", n=f"{len(va)} / {len(vb)}", keys=keys)
    iv = difference_interval(va, vb)
    v = decide(iv, lo, hi, 3, min(len(va), len(vb)))
    core = f"{what} {iv.mean:+.2f} points, {ci_text(iv, '+.2f')}"
    summary = f"{core}; a {sum(va.values()) / len(va):.2f}%, b {sum(vb.values()) / len(vb):.2f}%"
    few = min(len(va), len(vb)) < 3
    if few:
        summary += "; needs n >= 3 on both sides"
    return Verdict(
        c,
        v,
        summary,
        n=f"{len(va)} / {len(vb)}",
        interval=iv,
        per_seed=f"a: {_fmt_seeds(va)}; b: {_fmt_seeds(vb)}",
        keys=keys,
        reason=_reason(v, few),
        core=core,
        region=(lo, hi),
    )


def judge_order(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    va, vb, keys = _two_sides(c, records)
    if c["expect"] == "a > b":
        return _judge_difference(c, va, vb, 0.0, math.inf, keys, "a - b")
    # "a < b": the region is a - b < 0
    return _judge_difference(c, va, vb, -math.inf, 0.0, keys, "a - b")


def judge_noninferior(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    va, vb, keys = _two_sides(c, records)
    return _judge_difference(c, va, vb, -float(c["tolerance"]), math.inf, keys, "a - b")


def judge_trade(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    a2, b2, keys = _two_sides(c, records, "acc2")
    a1, b1, _ = _two_sides(c, records, "acc1")
    mnist = _judge_difference(c, a2, b2, 0.0, math.inf, keys, "MNIST a - b")
    cifar = _judge_difference(c, a1, b1, -math.inf, 0.0, keys, "CIFAR-10 a - b")
    v = _cells_verdict([mnist.verdict, cifar.verdict])
    reason = "few" if "few" in (mnist.reason, cifar.reason) else "wide" if v == "inconclusive" else ""
    return Verdict(
        c,
        v,
        f"{mnist.core or mnist.summary}; {cifar.core or cifar.summary}",
        n=mnist.n,
        per_seed=f"MNIST {mnist.per_seed}; CIFAR-10 {cifar.per_seed}",
        keys=keys,
        reason=reason,
    )


def judge_gap_larger(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    gaps, keys = [], []
    for ds in (c["a"]["dataset"], c["b"]["dataset"]):
        va, vb, k = _two_sides(
            dict(
                c,
                a=dict(dataset=ds, method="wc_al", model="mdmtn", sparse=True),
                b=dict(dataset=ds, method="wc_al", model="hps", sparse=True),
            ),
            records,
        )
        keys += k
        if len(va) < 2 or len(vb) < 2:
            return Verdict(
                c,
                "not yet" if not va or not vb else "inconclusive",
                f"{ds}: {len(va)} / {len(vb)} runs",
                n=f"{len(va)} / {len(vb)}",
                keys=keys,
                reason="few" if va and vb else "",
            )
        gaps.append(difference_interval(va, vb))
    ga, gb = gaps
    # each gap's standard error from its own interval; df: the smaller of the two (conservative)
    se = [(g.hi - g.mean) / t_quantile(0.5 + LEVEL / 2, max(g.n - 1, 1)) for g in gaps]
    d = ga.mean - gb.mean
    h = t_quantile(0.5 + LEVEL / 2, max(min(ga.n, gb.n) - 1, 1)) * math.sqrt(se[0] ** 2 + se[1] ** 2)
    iv = Interval(d, d - h, d + h, min(ga.n, gb.n), "t on the two gaps' standard errors, df = min n - 1")
    v = decide(iv, 0.0, math.inf, 3, iv.n)
    return Verdict(
        c,
        v,
        f"gap {c['a']['dataset']} {ga.mean:+.2f} vs {c['b']['dataset']} {gb.mean:+.2f} points; "
        f"difference {d:+.2f}, 95% CI [{iv.lo:+.2f}, {iv.hi:+.2f}]",
        n=str(iv.n),
        interval=iv,
        keys=keys,
        reason=_reason(v, iv.n < 3),
    )


def judge_sr_spread(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    from mdmtn.core.paper import PAPER_RESULTS

    spreads, keys, per = {}, [], []
    for key in PAPER_RESULTS:
        if key[1] != "wc_al" or key[3][0] == 0:
            continue
        runs = side_runs(
            records, dict(dataset=key[0], method="wc_al", model=key[2], k=key[3]), c["preset"], c.get("profile")
        )
        vals, _ = _values(runs, "SR")
        keys += [r.key for r in runs]
        if vals:
            spreads[(key[0], key[2])] = (max(vals.values()) - min(vals.values()), len(vals))
            per.append(f"{key[0]} {key[2].upper()}: {_fmt_seeds(vals, 1)}")
    if len(spreads) < 4:
        return Verdict(c, "not yet", "not every sparse cell has runs", keys=keys)
    n = min(m for _, m in spreads.values())
    mm = max(s for (ds, _), (s, _) in spreads.items() if ds == "multimnist")
    cm = min(s for (ds, _), (s, _) in spreads.items() if ds == "cifar10mnist")
    tol = float(c["tolerance"])
    v = "inconclusive" if n < 3 else "holds" if mm >= tol and cm < mm else "does not hold"
    return Verdict(
        c,
        v,
        f"widest SR range over seeds: MultiMNIST {mm:.1f} points, narrowest Cifar10Mnist {cm:.1f}",
        n=str(n),
        per_seed="; ".join(per),
        keys=keys,
        reason=_reason(v, n < 3),
    )


# How a front measure is compared with its registered target, where the registry's text gives the
# direction (and, for two entries registered before targets were fields, the threshold itself):
# "band": |value - target| <= tolerance; "at least": value >= target - tolerance; "above":
# value > target + tolerance. A range (low, high) is a band on each end.
FRONT_DIRECTION = {
    "pareto_count": "band",
    "study_best": "band",
    "acc_range": "band",
    "dense_acc_range": "band",
    "sr53_gain": "above",
    "share_sr29": "at least",
    "supported_share": "at least",
    "mdmtn_dominates": "at least",
}
# thresholds stated in an entry's statistic text, for entries registered without a target field
FRONT_TEXT_TARGET = {"supported_share": 0.8, "mdmtn_dominates": 1.0}


def _tol(c: dict[str, Any], name: str, target: float) -> float:
    t = float(c.get(name, 0.0))
    return t * abs(target) if c.get("tolerance_kind") == "rel" else t


def front_status(c: dict[str, Any], value: Any) -> str:
    """Where one sweep's measure lies for entry ``c``: "in" (the claim's region), "out", or "near"
    (between the region and the entry's ``fail_tolerance`` band, where one sweep cannot tell a near
    miss from sweep-to-sweep noise; only entries that register a ``fail_tolerance`` have it).
    ``sr53_gain`` also needs its cluster within ``sr_band`` points of 53% (where registered)."""
    measure = c["measure"]
    direction = FRONT_DIRECTION[measure]
    target = c.get("target", FRONT_TEXT_TARGET.get(measure))
    if isinstance(target, list):  # a range: each end on its own band; the worst end decides
        ends = [front_status(dict(c, target=t), v) for t, v in zip(target, value)]
        return "out" if "out" in ends else "near" if "near" in ends else "in"
    if measure == "sr53_gain":
        value, sr = value
        if "sr_band" in c and abs(sr - 53.0) > float(c["sr_band"]):
            return "out"
    target = float(target)
    tol = _tol(c, "tolerance", target)
    has_fail = "fail_tolerance" in c
    fail = _tol(c, "fail_tolerance", target)
    if direction == "band":
        d = abs(float(value) - target)
        return "in" if d <= tol else "out" if not has_fail or d > fail else "near"
    if direction == "at least":
        v = float(value)
        return "in" if v >= target - tol else "out" if not has_fail or v < target - fail else "near"
    v = float(value)  # "above"
    return "in" if v > target + tol else "out" if not has_fail or v <= target - fail else "near"


def judge_front(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    """A front claim from its registered rule: each sweep seed's measure is "in" the claim's region,
    "out", or "near" (:func:`front_status`). With fewer sweep seeds than the entry needs (``min_n``,
    3 unless it says): inconclusive. Otherwise holds if every seed is in, does not hold if every seed
    is out, inconclusive else (a near value, or seeds that disagree). An entry with no target, in a
    field or its text, stays "not yet"."""
    from mdmtn.study.frontmeasures import front_measure

    vals, note = front_measure(records, c)
    if not vals:
        return Verdict(c, "not yet", note or "no complete sweep at this preset")
    if "target" not in c and c["measure"] not in FRONT_TEXT_TARGET:
        return Verdict(c, "not yet", "no target registered")
    n = len(vals)
    status = {s: front_status(c, v.value) for s, v in vals.items()}
    shown = "; ".join(f"seed {s}: {v.text} ({status[s]})" for s, v in sorted(vals.items()))
    n_min = int(c.get("min_n", 3))
    parts = set(status.values())
    if n < n_min:
        verdict, reason = "inconclusive", "few"
        tail = f"needs {n_min} sweep seeds"
    elif parts == {"in"}:
        verdict, reason, tail = "holds", "", "every sweep in the region"
    elif parts == {"out"}:
        verdict, reason, tail = "does not hold", "", "every sweep outside the region"
    else:
        verdict, reason = "inconclusive", "wide"
        tail = "near the boundary" if "near" in parts else "the sweeps disagree"
    keys = sorted({k for v in vals.values() for k in v.keys})
    return Verdict(
        c,
        verdict,
        f"{shown}{'; ' + note if note else ''}; {tail} (n = {n} sweep seed{'s' if n > 1 else ''})"
        + seen_before_note(c, keys),
        n=str(n),
        per_seed=shown,
        reason=reason,
        keys=keys,
    )


def seen_before_note(c: dict[str, Any], keys: Sequence[str]) -> str:
    """What a rule registered before its runs says of those of ``keys`` that were trained, and their
    numbers seen, before it (the registry's ``seen_before``, with ``why_seen_before``): "" if none."""
    have = set(keys)
    seen = [k for k in c.get("seen_before", []) if k in have]
    if not seen:
        return ""
    return (
        f"; {len(seen)} of its {len(keys)} runs ({', '.join(k[:8] for k in seen)}) were trained and seen "
        f"before the rule was registered: {c['why_seen_before']}"
    )


def seen_before_line(runs: Sequence[RunRecord], dataset: str, arch: str = "mdmtn") -> str:
    """Which of a paper-preset sweep's ``runs`` were trained, and their numbers seen, before the
    registry's paper-preset front rules for (dataset, arch) were written (their ``seen_before``),
    with the registry's reason; "" when none of them is among ``runs``."""
    have = {r.key for r in runs}
    seen: dict[str, str] = {}
    commits = set()
    for c in load_registry():
        if c["rule"] != "front" or c["preset"] != "paper" or c.get("front") != dict(dataset=dataset, model=arch):
            continue
        for k in c.get("seen_before", []):
            if k in have:
                seen.setdefault(k, c["why_seen_before"])
                commits.add(c["registered"][:8])
    if not seen:
        return ""
    why = "; ".join(sorted(set(seen.values())))
    return (
        f"{len(seen)} of these runs ({', '.join(k[:8] for k in sorted(seen))}) were trained, and their numbers "
        f"seen, before this figure's rules were registered (at {', '.join(sorted(commits))}): {why}. Every other "
        "run of the sweep was trained after."
    )


def _cells_verdict(parts: Sequence[str]) -> str:
    """A claim over several parts (cells, or a trade's two tasks): not yet while one lacks data, does not hold if one does not,
    holds if all hold, inconclusive otherwise."""
    if "not yet" in parts:
        return "not yet"
    if "does not hold" in parts:
        return "does not hold"
    return "holds" if all(v == "holds" for v in parts) else "inconclusive"


def _cell_intervals(c, records, cells, value_of) -> tuple[list[str], list[str], list[str], list[str], int]:
    """Per cell of ``cells`` ((dataset, model) of the paper's sparse cells): ``value_of(record)`` per
    seed, its t interval and the verdict of "above ``c['above']``"; returns (verdicts, summaries,
    per-seed texts, record keys, smallest n)."""
    verdicts, summaries, per, keys, ns = [], [], [], [], []
    above = float(c["above"])
    for ds, model in cells:
        runs = side_runs(
            records, dict(dataset=ds, method="wc_al", model=model, sparse=True), c["preset"], c.get("profile")
        )
        vals = {r.config["seed"]: v for r in runs if (v := value_of(r)) is not None}
        keys += [r.key for r in runs]
        name = f"{ds} {model.upper()}"
        if not vals:
            verdicts.append("not yet")
            summaries.append(f"{name}: no runs with the data" + (f" ({len(runs)} runs lack it)" if runs else ""))
            ns.append(0)
            continue
        iv = mean_interval(list(vals.values()))
        verdicts.append(decide(iv, above + 1e-12, math.inf, int(c.get("min_n", 3)), iv.n))
        summaries.append(f"{name}: mean {iv.mean:.3f}, {ci_text(iv, '.3f')}")
        per.append(f"{name}: {_fmt_seeds(vals, 3)}")
        ns.append(iv.n)
    return verdicts, summaries, per, keys, min(ns) if ns else 0


def judge_above(c: dict[str, Any], records: Sequence[RunRecord]) -> Verdict:
    """A per-run statistic of the paper's sparse cells (``statistic_of``: ``PS``, or ``monitor_minus_shared``
    from the record's ``layer_rows``) lies above ``above`` in every cell of ``models``: per cell the
    95% t interval over seeds decides (:func:`decide`), and :func:`_cells_verdict` combines the cells."""
    from mdmtn.objectives.metrics import part_sr

    def ps(r):
        return r.metrics.PS

    def monitor_minus_shared(r):
        block = r.details.get("layer_rows")
        if not block:
            return None
        mon, sh = part_sr(block, "monitors."), part_sr(block, "shared.")
        return None if mon is None or sh is None else mon - sh

    value_of = {"PS": ps, "monitor_minus_shared": monitor_minus_shared}[c["statistic_of"]]
    cells = [(ds, m) for ds in ("multimnist", "cifar10mnist") for m in c["models"]]
    parts, summaries, per, keys, n = _cell_intervals(c, records, cells, value_of)
    v = _cells_verdict(parts)
    few = v == "inconclusive" and 0 < n < int(c.get("min_n", 3))
    return Verdict(
        c,
        v,
        "; ".join(f"{s} -> {p}" for s, p in zip(summaries, parts)),
        n=str(n),
        per_seed="; ".join(per),
        keys=keys,
        reason=_reason(v, few),
    )


def judge_decision(c: dict[str, Any], records: Sequence[RunRecord], done: Sequence[Verdict]) -> Verdict:
    """Score each profile on the four sparse cells by the registered rule (study entries; the
    library's own by the Table 1-2 SR and average-accuracy entries)."""
    by_id = {v.claim["id"]: v for v in done}
    scores: dict[str, tuple[int, int]] = {}
    pending = []
    for profile in ("library", "authors-2023", "authors-head"):
        sr_hold = acc_ok = 0
        for ds, model in (("mm", "mdmtn"), ("mm", "hps"), ("cm", "mdmtn"), ("cm", "hps")):
            if profile == "library":  # the table's SR entry, judged on the library's own runs
                table = by_id.get(f"{ds}.{model}.sparse.SR")
                sr = None if table is None else judge_match(dict(table.claim, profile="library"), records)
            else:
                sr = by_id.get(f"study.{ds}.{model}.{profile}.SR")
            if sr is None or sr.interval is None or sr.interval.n < int(sr.claim.get("min_n", 3)):
                pending.append(f"{profile} {ds} {model.upper()}")
                continue
            sr_hold += sr.verdict == "holds"
            acc = _profile_accuracy(records, ds, model, profile, sr.claim)
            acc_ok += acc != "does not hold"
        scores[profile] = (sr_hold, acc_ok)
    table = "; ".join(f"{p}: SR holds on {s} of 4, accuracy not refuted on {a}" for p, (s, a) in scores.items())
    if pending:
        return Verdict(c, "not yet", f"runs missing: {', '.join(pending)}. So far: {table}")
    best = max(scores, key=lambda p: (scores[p], p == "library"))
    top = sorted(p for p in scores if scores[p] == scores[best])
    note = ""
    if len(top) > 1 and "library" not in top:
        # the registered text settles a tie with the library, not one between the authors' two profiles;
        # read (post hoc) in its spirit: the default changes only for a profile that scores best alone
        note = (
            f" {' and '.join(top)} tie: the registered rule names no winner for a tie without the library's "
            "defaults; read post hoc in its spirit (a default changes only for a profile that scores best "
            "alone), the library's defaults stay."
        )
        best = "library"
    if scores[best][0] == 0 or scores[best] == scores["library"]:
        best = "library"
    return Verdict(c, "holds", f"choice: {best}. {table}.{note}")


def _profile_accuracy(records: Sequence[RunRecord], ds: str, model: str, profile: str, sr_claim: dict) -> str:
    from mdmtn.core.paper import PAPER_RESULTS

    cell = sr_claim["cell"]
    target = next(
        v
        for key, v in PAPER_RESULTS.items()
        if key[:3] == (cell["dataset"], "wc_al", model) and len(key) > 3 and key[3][0] > 0
    )["acc"][2]
    entry = dict(sr_claim, metric="avg", target=target, tolerance=0.3, tolerance_kind="abs", min_n=3, profile=profile)
    return judge_match(entry, records).verdict


def judge(
    records: Sequence[RunRecord],
    quick_records: Sequence[RunRecord] = (),
    claims: Sequence[dict] | None = None,
    arm: str = BOOK_PROFILE,
) -> list[Verdict]:
    """Every registry claim judged within one ``arm`` (a switch profile of :data:`ARMS`): both
    sides of every comparison are that arm's runs. Paper-preset claims on ``records``, quick-preset
    ones on ``quick_records``; the decision entry last, from the others. An entry that names its
    own ``profile`` (the root-cause study's) is judged under it in every arm."""
    claims = load_registry() if claims is None else claims
    out: list[Verdict] = []
    deferred = []
    for c in claims:
        recs = quick_records if c["preset"] == "quick" else records
        rule = c["rule"]
        if rule == "decision":
            deferred.append(c)
            continue
        if rule == "qualitative":
            out.append(Verdict(c, "not yet", "no statistic registered yet", arm=arm))
            continue
        fn = {
            "match": judge_match,
            "order": judge_order,
            "noninferior": judge_noninferior,
            "trade": judge_trade,
            "gap_larger": judge_gap_larger,
            "sr_spread": judge_sr_spread,
            "front": judge_front,
            "above": judge_above,
        }[rule]
        v = fn(dict(c, profile=c.get("profile", arm)), recs)
        v.claim, v.arm = c, c.get("profile", arm)
        out.append(v)
    for c in deferred:
        out.append(judge_decision(c, records, out))
    return out


def judge_arms(records: Sequence[RunRecord], quick_records: Sequence[RunRecord] = ()) -> dict[str, list[Verdict]]:
    """:func:`judge` in every arm of :data:`ARMS`, the registered decision's arm first."""
    return {arm: judge(records, quick_records, arm=arm) for arm in ARMS}


def counts(vs: Sequence[Verdict]) -> dict[str, int]:
    """How many claims got each verdict, in :data:`VERDICTS` order."""
    return {v: sum(x.verdict == v for x in vs) for v in VERDICTS}


def verdict_markdown(vs: Sequence[Verdict], family: str | None = None) -> str:
    """A markdown table of verdicts (those of ``family`` only, if given): the paper's words, the
    verdict (with †post hoc where the rule came after the data), n, per-seed values and interval."""
    lines = ["| claim (the paper's words) | source | verdict | n | per seed | statistic |", "|---|---|---|---|---|---|"]
    for v in vs:
        if family is not None and v.claim.get("family") != family:
            continue
        mark = " †" if v.post_hoc else ""
        quote = v.claim["quote"].replace("|", "\\|")
        # the id may break after its dots and hyphens (a zero-width space), so a narrow column still fits
        cid = v.claim["id"].replace(".", ".\u200b").replace("-", "-\u200b")
        lines.append(
            f"| {quote} <br><small>{cid}</small> | {v.claim['source']} | **{v.verdict}**{mark} | {v.n or '–'} | "
            f"{v.per_seed or '–'} | {v.summary.replace('|', '/')} |"
        )
    return "\n".join(lines)


# --- the root-cause study and the page's opening answer -------------------------------------------------

STUDY_CELLS = (
    ("multimnist", "mdmtn", (0.001, 0.2, 0.799)),
    ("multimnist", "hps", (0.0001, 0.5, 0.4999)),
    ("cifar10mnist", "mdmtn", (0.01, 0.8, 0.19)),
    ("cifar10mnist", "hps", (0.1, 0.6, 0.3)),
)


def phase1_best_epoch(history: Sequence[dict], eta1: float) -> int | None:
    """Index into ``history`` of the phase-1 epoch the default rule keeps: the best mean validation
    accuracy among epochs with SR >= eta1, else among all phase-1 epochs (the first of equals)."""
    p1 = [i for i, x in enumerate(history) if x.get("phase") == "phase1"]
    pool = [i for i in p1 if history[i]["SR"] >= eta1] or p1
    if not pool:
        return None
    return max(pool, key=lambda i: (sum(history[i]["val_acc"]) / len(history[i]["val_acc"]), -i))


def kept_epoch_sr(rec: RunRecord) -> float | None:
    """SR (%) of the phase-1 epoch phase 2 started from: the record's ``phase1_epoch`` where it has
    one, else the saving rule applied to its history (older records)."""
    h = rec.history or []
    e = rec.details.get("phase1_epoch")
    if e is None:
        eta1 = rec.config.get("eta1")
        e = phase1_best_epoch(h, eta1) if eta1 is not None else None
    try:
        return float(h[e]["SR"]) if e is not None else None
    except (IndexError, KeyError, TypeError):
        return None


def root_cause_rows(records: Sequence[RunRecord], preset: str = "paper") -> list[dict[str, Any]]:
    """One row per (switch profile, sparse cell): seeds, per-seed kept-epoch SR and final SR / CR /
    PS, and mean ± std of the final SR and of mean test accuracy."""
    from mdmtn.records.aggregate import mean_std

    rows = []
    for profile in ("library", "authors-2023", "authors-head"):
        for ds, model, k in STUDY_CELLS:
            runs = side_runs(records, dict(dataset=ds, method="wc_al", model=model, k=list(k)), preset, profile)
            runs = [r for r in runs if r.metrics.SR is not None]
            rows.append(
                dict(
                    profile=profile,
                    dataset=ds,
                    model=model,
                    runs=runs,
                    kept=[kept_epoch_sr(r) for r in runs],
                    SR=mean_std([r.metrics.SR for r in runs]),
                    acc=mean_std([100 * r.metrics.test_acc_mean for r in runs]),
                )
            )
    return rows


def decision_markdown(vs: Sequence[Verdict], records: Sequence[RunRecord], preset: str = "paper") -> str:
    """The study's decision in words, generated from its verdict (``study.decision``) and the records:
    which profile the registered rule chose, by what score, what that changes in the book and what
    it does not, and what the chosen profile's sparse cells show."""
    d = next((v for v in vs if v.claim["id"] == "study.decision"), None)
    if d is None or d.verdict == "not yet":
        return (
            "**The decision.** Not yet: the registered rule (`study.decision`) needs every study cell's runs "
            f"({d.summary if d else 'no decision entry'})."
        )
    choice = d.summary.split(".", 1)[0].removeprefix("choice: ")
    scores = d.summary.split(".", 1)[1].strip()
    rows = [r for r in root_cause_rows(records, preset) if r["profile"] == choice]
    cells = "; ".join(
        f"{'MultiMNIST' if r['dataset'] == 'multimnist' else 'Cifar10Mnist'} {r['model'].upper()} "
        f"SR {r['SR'][0]:.1f} ± {r['SR'][1]:.1f}% over {len(r['runs'])} seeds"
        for r in rows
    )
    if choice == BASE_PROFILE:
        change = "so the book keeps the library's defaults for every cell."
    else:
        change = (
            f"so the book's paper-preset tables and verdicts judge the four sparse cells on their "
            f"**{choice}** runs, trained for this study at the paper preset ({cells}): that is the "
            "re-training the rule asks for, with 5 seeds where it asks for 3. The rule names the sparse cells "
            "only, so the dense cells, the baselines and the CPU-scale fronts keep the library's defaults, "
            "and the library's own sparse runs stay on this page in the study table."
        )
    return (
        f"**The decision.** The rule registered before the study's runs (`study.decision`) scores each profile "
        f"by the number of sparse cells whose SR lies within tolerance, ties broken by the number whose mean "
        f"accuracy is not refuted. Scores: {scores} The rule's choice is **{choice}**, {change}"
    )


def root_cause_markdown(records: Sequence[RunRecord], preset: str = "paper") -> str:
    """The study's table: profile × cell, every seed's SR where phase 1 kept its model and at the
    end (with CR / PS), and the accuracy; the paper's value in the cell column."""
    from mdmtn.core.paper import PAPER_RESULTS

    lines = [
        "| profile | cell (paper SR, avg acc) | n | seeds: kept-epoch SR → final SR / CR / PS | final SR mean ± std | "
        "avg acc mean ± std (%) |",
        "|---|---|---|---|---|---|",
    ]
    for r in root_cause_rows(records, preset):
        key = next(
            key
            for key in PAPER_RESULTS
            if key[:3] == (r["dataset"], "wc_al", r["model"]) and len(key) > 3 and key[3][0] > 0
        )
        p = PAPER_RESULTS[key]
        name = {"multimnist": "MultiMNIST", "cifar10mnist": "Cifar10Mnist"}[r["dataset"]]
        per = (
            "<br>".join(
                f"s{x.config['seed']}: {'–' if kept is None else f'{kept:.1f}'} → {x.metrics.SR:.1f} / "
                f"{x.metrics.CR:.2f} / {x.metrics.PS:.2f}"
                for x, kept in zip(r["runs"], r["kept"])
            )
            or "not yet run"
        )
        n = len(r["runs"])
        sr = f"{r['SR'][0]:.1f} ± {r['SR'][1]:.1f}" if n else "–"
        acc = f"{r['acc'][0]:.2f} ± {r['acc'][1]:.2f}" if n else "–"
        lines.append(
            f"| {r['profile']} | {name} {r['model'].upper()} ({p['SR']:g}%, {p['acc'][2]:g}%) | {n} | {per} | "
            f"{sr} | {acc} |"
        )
    return "\n".join(lines)
