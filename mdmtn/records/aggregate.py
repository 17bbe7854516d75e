"""Mean ± std over seeds of run records, and the paper's Table 1-2 numbers to set beside them.

Runs that differ only in ``seed`` form one group. Each group reports, per metric, the mean and the
sample standard deviation (``ddof=1``; 0 for a single seed) over its seeds::

    rows = aggregate(load_records("results/quick/baselines"))
    print(format_table(rows))

Vector metrics (``test_acc`` = per-task accuracies) are aggregated per task and named
``test_acc[<task>]`` with the dataset's task names (left/right, cifar10/mnist).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from mdmtn.core.paper import PAPER_RESULTS
from mdmtn.data import cifar10mnist, multimnist
from mdmtn.records.schema import RunRecord

TASK_NAMES = {"multimnist": multimnist.TASK_NAMES, "cifar10mnist": cifar10mnist.TASK_NAMES}
DEFAULT_METRICS = ("test_acc", "test_acc_mean", "SR", "CR", "PS", "wall_time_s")
LABEL_FIELDS = ("dataset", "method", "model", "preset")


def paper_result(dataset: str, method: str, model: str, k: Sequence[float] | None = None) -> dict[str, Any] | None:
    """The paper's row for a run, or None (MTAN / KDMTL are not in the seed text's tables)."""
    if method == "wc_al":
        if k is None:
            return None
        for key, row in PAPER_RESULTS.items():
            if key[:3] == (dataset, method, model) and np.allclose(key[3], k, rtol=0, atol=1e-9):
                return row
        return None
    return PAPER_RESULTS.get((dataset, method, model))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample std with ddof=1) ignoring None; std is 0.0 for one value, nan for none."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _value(rec: RunRecord, name: str) -> Any:
    return rec.wall_time_s if name == "wall_time_s" else getattr(rec.metrics, name)


def group_records(records: Iterable[RunRecord]) -> list[list[RunRecord]]:
    """Records grouped by their config without ``seed``, in first-seen order."""
    groups: dict[str, list[RunRecord]] = {}
    for rec in records:
        cfg = {k: v for k, v in rec.config.items() if k != "seed"}
        groups.setdefault(repr(sorted(cfg.items())), []).append(rec)
    return list(groups.values())


def aggregate(records: Iterable[RunRecord], metrics: Sequence[str] = DEFAULT_METRICS) -> list[dict[str, Any]]:
    """One row per group of seeds.

    Each row: ``dataset``, ``method``, ``model``, ``preset``, ``k``, ``seeds`` (sorted), ``n``,
    ``differs`` (the config fields, other than those, that set this group apart from the others
    in ``records``), ``stats`` {metric: (mean, std)}, and ``paper`` (the paper's row or None).
    Records with ``status != "ok"`` are skipped.
    """
    groups = group_records(r for r in records if r.ok)
    configs = [g[0].config for g in groups]
    shown = set(LABEL_FIELDS) | {"seed", "k"}
    rows = []
    for g in groups:
        c = g[0].config
        peers = [o for o in configs if _same_label(o, c)]  # same dataset/method/model/preset
        varying = sorted(k for k in c if k not in shown and len({repr(o.get(k)) for o in peers}) > 1)
        stats: dict[str, tuple[float, float]] = {}
        for name in metrics:
            vals = [_value(r, name) for r in g]
            if vals and isinstance(vals[0], (list, tuple)):
                tasks = TASK_NAMES.get(c["dataset"], ())
                for t in range(len(vals[0])):
                    label = tasks[t] if t < len(tasks) else str(t)
                    stats[f"{name}[{label}]"] = mean_std([v[t] for v in vals])
            else:
                stats[name] = mean_std(vals)
        rows.append(
            dict(
                **{f: c.get(f) for f in LABEL_FIELDS},
                k=c.get("k"),
                seeds=sorted(r.cfg.seed for r in g),
                n=len(g),
                differs={k: c.get(k) for k in varying},
                stats=stats,
                paper=paper_result(c["dataset"], c["method"], c["model"], c.get("k")),
            )
        )
    return rows


def _same_label(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(f) == b.get(f) for f in LABEL_FIELDS)


def _fmt(ms: tuple[float, float], scale: float, digits: int) -> str:
    m, s = ms
    return "–" if math.isnan(m) else f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"


def format_table(rows: Sequence[dict[str, Any]], paper: bool = True) -> str:
    """Markdown table: accuracies in % (mean ± std over seeds), SR %, CR, PS, wall time (s), and
    the paper's accuracies where it reports the configuration."""
    head = [
        "dataset",
        "method",
        "model",
        "preset",
        "seeds",
        "task 1 acc %",
        "task 2 acc %",
        "mean acc %",
        "SR %",
        "CR",
        "PS",
        "wall s / run",
    ]
    if paper:
        head.append("paper (task 1 / task 2 / mean)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        st = r["stats"]
        accs = [v for k, v in st.items() if k.startswith("test_acc[")]
        label = r["method"] + (
            "" if not r["differs"] else " (" + ", ".join(f"{k}={v}" for k, v in r["differs"].items()) + ")"
        )
        if r["method"] == "wc_al":
            label += f" k={r['k']}"
        nan = (math.nan, math.nan)
        cells = [
            r["dataset"],
            label,
            r["model"],
            r["preset"],
            ",".join(map(str, r["seeds"])),
            _fmt(accs[0] if accs else nan, 100, 2),
            _fmt(accs[1] if len(accs) > 1 else nan, 100, 2),
            _fmt(st.get("test_acc_mean", nan), 100, 3),
            _fmt(st.get("SR", nan), 1, 2),
            _fmt(st.get("CR", nan), 1, 3),
            _fmt(st.get("PS", nan), 1, 3),
            _fmt(st.get("wall_time_s", nan), 1, 1),
        ]
        if paper:
            p = r["paper"]
            cells.append("–" if p is None else " / ".join(f"{a:.2f}" for a in p["acc"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def non_epoch_share(rec: RunRecord) -> float | None:
    """Fraction of a record's wall time spent outside the training epochs (``1 - train /
    wall_time_s``), from its ``timing`` block; None for a record without one."""
    t = (rec.details.get("timing") or {}).get("phases_s")
    if not t or not rec.wall_time_s:
        return None
    return 1.0 - t.get("train", 0.0) / rec.wall_time_s


def timing_rows(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """Where the wall time of each group of seeds went (records with a ``timing`` block only;
    :mod:`mdmtn.core.timing`): ``dataset``, ``method``, ``model``, ``k``, ``n``, ``wall`` (mean s),
    ``phases`` {phase: mean s} (``other`` last), ``after`` {write phase: mean s} and
    ``outside_epochs`` (mean share of the wall time not spent in training epochs, 0-1)."""
    rows = []
    for g in group_records(r for r in records if r.ok and r.details.get("timing")):
        c, timing = g[0].config, [r.details["timing"] for r in g]
        names = sorted({p for t in timing for p in t["phases_s"]}, key=lambda p: (p == "other", p))
        after = sorted({p for t in timing for p in t.get("after_wall_s", {})})
        rows.append(
            dict(
                dataset=c["dataset"],
                method=c["method"],
                model=c["model"],
                k=c.get("k"),
                n=len(g),
                wall=float(np.mean([r.wall_time_s for r in g])),
                phases={p: float(np.mean([t["phases_s"].get(p, 0.0) for t in timing])) for p in names},
                after={p: float(np.mean([t["after_wall_s"].get(p, 0.0) for t in timing])) for p in after},
                outside_epochs=float(np.mean([non_epoch_share(r) for r in g])),
            )
        )
    return rows


def format_timing(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: per group of runs (dataset, method, model and, for the paper's method, k: the
    baselines do not use it), mean wall time, the share outside training epochs, each phase's mean
    seconds (phases ordered by time spent) and the writes after the wall time (probe, checkpoint,
    record; their sum). Six columns, so the table fits a book page."""
    lines = [
        "| runs of | n | wall s | outside epochs | phases (mean s) | writes after (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ph = ", ".join(f"{p} {v:.2f}" for p, v in sorted(r["phases"].items(), key=lambda kv: -kv[1]))
        af = f"{sum(r['after'].values()):.3f}" if r["after"] else "–"
        k = f" k = ({', '.join(f'{v:g}' for v in r['k'])})" if r["method"] == "wc_al" and r["k"] else ""
        lines.append(
            f"| {r['dataset']} {r['method']} {r['model']}{k} | {r['n']} | {r['wall']:.1f} | "
            f"{100 * r['outside_epochs']:.1f}% | {ph} | {af} |"
        )
    return "\n".join(lines)
