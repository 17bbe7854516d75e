"""The per-sweep quantities the registry's front claims (Figs. 2-3, App. B) are judged on.

Each measure is computed on one sweep seed's records (as the figures draw them) and returned per
seed, so a claim can say how many independent sweeps back it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mdmtn.core.paper import paper_preference_vectors
from mdmtn.reporting.report import cluster_members, front_panel, pf_study_panel


def _acc(runs: Sequence[dict]) -> list[float]:
    return [100 * r["metrics"]["test_acc_mean"] for r in runs]


def front_measure(records: Sequence[dict], claim: dict[str, Any]) -> tuple[dict[int, str], str]:
    """({sweep seed: the measure, formatted}, note) for a registry entry with rule ``front``; an
    empty dict while no sweep of the entry's (dataset, model) covers the paper's 90 vectors."""
    ds, arch = claim["front"]["dataset"], claim["front"]["model"]
    measure = claim["measure"]
    if measure == "study_best":
        panel = pf_study_panel(records, ds, arch)
        if not panel["study"]:
            return {}, "no front-study runs"
        best = max(panel["study"], key=lambda r: r["metrics"]["test_acc_mean"])
        seed = panel["source"]["config"]["seed"]
        return (
            {
                seed: f"{100 * best['metrics']['test_acc_mean']:.2f}% at k = {tuple(best['config']['k'])} "
                f"({len(panel['study'])} of {panel['planned']} study runs)"
            },
            "",
        )
    p = front_panel(records, ds, arch)
    covered = len({tuple(r["config"]["k"]) for r in p["runs"]} & set(paper_preference_vectors()))
    if covered < len(paper_preference_vectors()):
        return {}, f"sweep covers {covered} of the paper's 90 vectors"
    seed = p["seeds"][0]
    front = p["paper_front"]
    if measure == "pareto_count":
        value = f"{len(front)} of {len(p['paper_sparse'])}"
    elif measure == "sr53_gain":
        groups = cluster_members(front)
        near = min(groups, key=lambda g: abs(np.mean([r["metrics"]["SR"] for r in g]) - 53.0))
        gain = np.mean(_acc(near)) - np.mean(_acc(p["dense"]))
        value = (
            f"cluster at SR {np.mean([r['metrics']['SR'] for r in near]):.1f}% ({len(near)} points) "
            f"{np.mean(_acc(near)):.2f}% vs k0 = 0 runs {np.mean(_acc(p['dense'])):.2f}%: {gain:+.2f} points"
        )
    elif measure == "share_sr29":
        near = sum(abs(r["metrics"]["SR"] - 29.0) <= 5 for r in front)
        value = f"{near} of {len(front)} within 5 points of 29%"
    elif measure == "acc_range":
        a, d = _acc(front), _acc(p["dense"])
        value = f"{min(a):.2f}-{max(a):.2f}% (k0 = 0: {min(d):.2f}-{max(d):.2f}%)"
    else:
        raise ValueError(f"unknown front measure {measure!r}")
    return {seed: value}, f"{p['presets'][0]} preset"
