"""The per-sweep quantities the registry's front claims (Figs. 2-3, App. B) are judged on.

Each measure is computed on one sweep seed's records (as the figures draw them) and returned per
seed, so a claim can say how many independent sweeps back it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mdmtn.core.paper import paper_preference_vectors
from mdmtn.objectives.pareto import hypervolume, supported
from mdmtn.records.schema import RunRecord
from mdmtn.study.report import cluster_members, front_panel, pf_study_panel
from mdmtn.study.selection import objective_vectors


@dataclass(frozen=True)
class FrontValue:
    """One sweep's measure: ``value`` what the rule compares (a number, or (low, high) for a range;
    for ``sr53_gain`` (gain in points, the cluster's mean SR %)), ``text`` how the page shows it,
    ``keys`` the records it was computed from."""

    value: Any
    text: str
    keys: tuple[str, ...] = ()


def dominated_share(points: np.ndarray, by: np.ndarray) -> float:
    """Share of the rows of ``points`` (n, m) weakly dominated by some row of ``by`` (k, m): a row q
    of ``by`` with ``q <= p`` in every objective (minimised); nan for no points."""
    p, q = np.asarray(points, dtype=float), np.asarray(by, dtype=float)
    if len(p) == 0:
        return float("nan")
    if len(q) == 0:
        return 0.0
    return float(np.mean([(q <= x).all(axis=1).any() for x in p]))


def shared_hypervolumes(
    sweeps: Mapping[str, Sequence[RunRecord]], margin: float = 1.1
) -> tuple[np.ndarray, dict[str, float]]:
    """The hypervolume of each named sweep's runs in (L0, L1, L2), all minimised, against one
    reference point for all of them, so that sweeps compare on the same box: ``r`` (3,) is
    ``margin`` times each objective's largest value over every run of every sweep (the margin lets
    the extreme points count). Each objective is divided by its ``r`` first, so a value is the share
    (0-1) of the box [0, r] that the sweep's front dominates; dominated runs add nothing to it.
    Returns (r, {name: share}); a sweep without runs has share 0. Runs need ``train_objectives``
    with a finite L0 (sparse runs)."""
    pts = {name: objective_vectors(runs).reshape(-1, 3) for name, runs in sweeps.items()}
    both = np.vstack(list(pts.values()))
    if not len(both):
        raise ValueError("no runs to take a reference point from")
    if not np.isfinite(both).all() or (both <= 0).any():
        # a non-positive objective would make its axis of the box empty or reversed
        raise ValueError("hypervolume needs finite, positive objective values (L0 of a sparse run)")
    ref = margin * both.max(axis=0)
    return ref, {name: hypervolume(p / ref, np.ones(3)) for name, p in pts.items()}


def _acc(runs: Sequence[RunRecord]) -> list[float]:
    return [100 * r.metrics.test_acc_mean for r in runs]


def front_measure(records: Sequence[RunRecord], claim: dict[str, Any]) -> tuple[dict[int, FrontValue], str]:
    """({sweep seed: the measure}, note) for a registry entry with rule ``front``, on the sweep of
    the entry's arm (``claim["profile"]``, the library's defaults if it names none); an empty dict
    while no sweep of the entry's (dataset, model) covers the paper's 90 vectors."""
    measure = claim["measure"]
    profile = claim.get("profile", "library")
    if measure == "mdmtn_dominates":
        return _mdmtn_dominates(records)
    ds, arch = claim["front"]["dataset"], claim["front"]["model"]
    if measure == "study_best":
        panel = pf_study_panel(records, ds, arch)
        if not panel["study"]:
            return {}, "no front-study runs"
        best = max(panel["study"], key=lambda r: r.metrics.test_acc_mean)
        seed = panel["source"].config["seed"]
        acc = 100 * best.metrics.test_acc_mean
        text = f"{acc:.2f}% at k = {tuple(best.config['k'])} ({len(panel['study'])} of {panel['planned']} study runs)"
        return {seed: FrontValue(acc, text, _keys([panel["source"], *panel["study"]]))}, ""
    p = front_panel(records, ds, arch, profile)
    paper_k = set(paper_preference_vectors())
    covered = len({tuple(r.config["k"]) for r in p["runs"]} & paper_k)
    if covered < len(paper_k):
        return {}, f"sweep covers {covered} of the paper's 90 vectors"
    seed = p["seeds"][0]
    front = p["paper_front"]
    if measure == "pareto_count":
        value = FrontValue(len(front), f"{len(front)} of {len(p['paper_sparse'])}")
    elif measure == "sr53_gain":
        groups = cluster_members(front)
        near = min(groups, key=lambda g: abs(np.mean([r.metrics.SR for r in g]) - 53.0))
        sr = float(np.mean([r.metrics.SR for r in near]))
        gain = float(np.mean(_acc(near)) - np.mean(_acc(p["dense"])))
        value = FrontValue(
            (gain, sr),
            f"cluster at SR {sr:.1f}% ({len(near)} points) {np.mean(_acc(near)):.2f}% vs k0 = 0 runs "
            f"{np.mean(_acc(p['dense'])):.2f}%: {gain:+.2f} points",
        )
    elif measure == "share_sr29":
        near = sum(abs(r.metrics.SR - 29.0) <= 5 for r in front)
        value = FrontValue(near / len(front), f"{near} of {len(front)} within 5 points of 29%")
    elif measure == "supported_share":
        on_hull = int(supported(objective_vectors(front)).sum())
        value = FrontValue(
            on_hull / len(front), f"{on_hull} of {len(front)} Pareto points supported (on the lower convex hull)"
        )
    elif measure in ("acc_range", "dense_acc_range"):
        pts = front if measure == "acc_range" else p["dense_front"]
        a, d = _acc(pts), _acc(p["dense"])
        text = f"{min(a):.2f}-{max(a):.2f}%" + (
            f" (k0 = 0: {min(d):.2f}-{max(d):.2f}%)" if measure == "acc_range" else ""
        )
        value = FrontValue((min(a), max(a)), text)
    else:
        raise ValueError(f"unknown front measure {measure!r}")
    # every measure reads the sweep's runs at the paper's 90 vectors (k0 = 0 ones included)
    used = _keys(r for r in p["runs"] if tuple(r.config["k"]) in paper_k)
    return {seed: replace(value, keys=used)}, f"{p['presets'][0]} preset"


def _keys(runs: Iterable[RunRecord]) -> tuple[str, ...]:
    return tuple(sorted({r.key for r in runs}))


def _mdmtn_dominates(records: Sequence[RunRecord]) -> tuple[dict[int, FrontValue], str]:
    """Fig. 6: per dataset and front (the study from the sparse model, the k0 = 0 runs), the share of
    HPS front points weakly dominated in (L1, L2) by an MDMTN front point; one value per study seed
    (the source run's seed, which both architectures' studies must share)."""
    parts, seeds, missing, shares, used = [], set(), [], [], []
    for ds in ("multimnist", "cifar10mnist"):
        panels = {arch: pf_study_panel(records, ds, arch) for arch in ("hps", "mdmtn")}
        if any(not p["study"] for p in panels.values()):
            missing.append(ds)
            continue
        seeds |= {p["source"].config["seed"] for p in panels.values()}
        used += [r for a in ("hps", "mdmtn") for r in (*panels[a]["study"], *panels[a]["dense"])]
        for front in ("study_front", "dense_front"):
            h, m = (objective_vectors(panels[a][front], (1, 2)) for a in ("hps", "mdmtn"))
            share = dominated_share(h, m)
            shares.append(share)
            parts.append(f"{ds} {'study' if front == 'study_front' else 'k0 = 0'}: {share:.2f} of {len(h)}")
    if missing:
        return {}, f"no front-study runs of both architectures on {', '.join(missing)}" + (
            f" ({'; '.join(parts)})" if parts else ""
        )
    if len(seeds) != 1:
        return {}, f"the HPS and MDMTN studies start from runs of different seeds {sorted(seeds)}"
    return {seeds.pop(): FrontValue(min(shares), "; ".join(parts), _keys(used))}, ""
