"""MT2O-v against independent solves: time to a share of the final hypervolume, per seed, the
verdict rule, the book's tables, and the configs of its comparison."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from mdmtn.records.schema import RunRecord

if TYPE_CHECKING:
    from mdmtn.training.mt2o import JointConfig


def time_to_fraction(curve: Sequence[dict[str, Any]], target: float, clock: str = "train_seconds") -> float:
    """First ``clock`` value at which the curve's hypervolume reaches ``target`` (inf if never)."""
    for p in curve:
        if p["hv"] >= target:
            return float(p[clock])
    return math.inf


def speed_ratio(
    mt2o_rec: RunRecord, indep_rec: RunRecord, fraction: float = 0.95, clock: str = "train_seconds"
) -> dict[str, float]:
    """Time for each strategy to reach ``fraction`` of the *independent* run's final hypervolume,
    and the ratio MT2O-v / independent (< 1: MT2O-v is faster)."""
    target = fraction * indep_rec.details["final_hv"]
    t_m = time_to_fraction(mt2o_rec.details["hv_curve"], target, clock)
    t_i = time_to_fraction(indep_rec.details["hv_curve"], target, clock)
    return dict(target=target, mt2o=t_m, independent=t_i, ratio=t_m / t_i if t_i > 0 else math.nan)


def compare(records: Sequence[RunRecord], fraction: float = 0.95) -> dict[str, Any]:
    """Pair MT2O-v and independent records by seed (same vectors and run settings) and summarise.

    Returns ``rows`` (one per seed: final HV of each arm, training seconds of each arm, time of
    each to reach ``fraction`` of the independent arm's final HV, and the ratio MT2O-v /
    independent) and ``ratio_mean`` / ``ratio_std`` / ``n`` over the seeds where both reached it.
    """
    by = {}
    for r in records:
        cfg = r.config
        group = json.dumps(
            {k: v for k, v in cfg.items() if k not in ("transfer",)}
            | {"run": {k: v for k, v in cfg["run"].items() if k != "seed"}},
            sort_keys=True,
        )
        by.setdefault((group, cfg["run"]["seed"]), {})[r.details["strategy"]] = r
    rows = []
    for (_, seed), pair in sorted(by.items(), key=lambda x: x[0][1]):
        if "mt2o" not in pair or "none" not in pair:
            continue
        m, i = pair["mt2o"], pair["none"]
        sr = speed_ratio(m, i, fraction)
        rows.append(
            dict(
                seed=seed,
                hv_mt2o=m.details["final_hv"],
                hv_independent=i.details["final_hv"],
                train_s_mt2o=m.details["train_seconds"],
                train_s_independent=i.details["train_seconds"],
                t_mt2o=sr["mt2o"],
                t_independent=sr["independent"],
                ratio=sr["ratio"],
                steps_ratio=speed_ratio(m, i, fraction, clock="steps")["ratio"],
                passes_ratio=speed_ratio(m, i, fraction, clock="forward_passes")["ratio"],
                cpu_ratio=(
                    speed_ratio(m, i, fraction, clock="train_cpu_seconds")["ratio"]
                    if "train_cpu_seconds" in m.details["hv_curve"][-1]
                    and "train_cpu_seconds" in i.details["hv_curve"][-1]
                    else math.nan
                ),
                accepted=m.details["transfers"]["accepted"],
                tried=m.details["transfers"]["tried"],
                machine_load=((m.machine or {}).get("load_avg_1min"), (i.machine or {}).get("load_avg_1min")),
            )
        )
    out = dict(rows=rows, fraction=fraction)
    for name in ("ratio", "cpu_ratio", "steps_ratio", "passes_ratio"):
        ok = [r[name] for r in rows if math.isfinite(r[name])]
        out[f"{name}_n"] = len(ok)
        out[f"{name}_mean"] = float(np.mean(ok)) if ok else math.nan
        out[f"{name}_std"] = float(np.std(ok, ddof=1)) if len(ok) > 1 else math.nan
    out["n"] = out["ratio_n"]
    return out


def comparison_markdown(summary: dict[str, Any]) -> str:
    """A markdown table of :func:`compare`'s rows and the mean ratio."""
    f = int(round(100 * summary["fraction"]))
    # two tables (times, then ratios) so that each fits a book page's content column
    lines = [
        f"| seed | final HV: MT2O-v / independent | train s: MT2O-v / independent | "
        f"time to {f}% (s): MT2O-v / independent |",
        "|---|---|---|---|",
    ]
    for r in summary["rows"]:
        lines.append(
            f"| {r['seed']} | {r['hv_mt2o']:.4f} / {r['hv_independent']:.4f} | {r['train_s_mt2o']:.0f} / "
            f"{r['train_s_independent']:.0f} | {r['t_mt2o']:.0f} / {r['t_independent']:.0f} |"
        )
    lines += [
        "",
        "| seed | ratio: wall-clock | ratio: CPU time | ratio: steps | ratio: forward passes | transfers accepted |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        lines.append(
            f"| {r['seed']} | {r['ratio']:.2f} | {_fmt(r['cpu_ratio'])} | {r['steps_ratio']:.2f} | "
            f"{r['passes_ratio']:.2f} | {r['accepted']}/{r['tried']} |"
        )
    lines.append("")
    lines.append(
        " ".join(
            f"Mean {label}: {_fmt(summary[f'{name}_mean'])}"
            + (f" ± {summary[f'{name}_std']:.2f}" if summary[f"{name}_n"] > 1 else "")
            + f" ({summary[f'{name}_n']} seed(s))."
            for label, name in (
                ("wall-clock ratio", "ratio"),
                ("CPU-time ratio", "cpu_ratio"),
                ("step ratio", "steps_ratio"),
                ("forward-pass ratio", "passes_ratio"),
            )
        )
    )
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "–"


def subproblems_markdown(records: Sequence[RunRecord]) -> str:
    """Per record and subproblem: k, final test accuracy per task, validation losses and SR."""
    lines = ["| strategy | seed | k | test acc % | val loss | SR % |", "|---|---|---|---|---|---|"]
    for r in records:
        name = (
            "MT2O-v"
            if r.details["strategy"] == "mt2o"
            else "independent"
            if r.details["strategy"] == "none"
            else r.details["strategy"]
        )
        for s in r.details["subproblems"]:
            lines.append(
                f"| {name} | {r.config['run']['seed']} | ({', '.join(f'{v:g}' for v in s['k'])}) | "
                f"{' / '.join(f'{100 * a:.1f}' for a in s['test_acc'])} | "
                f"{' / '.join(f'{v:.3f}' for v in s['val_loss'])} | {s['SR']:.1f} |"
            )
    return "\n".join(lines)


def verdict(summary: dict[str, Any]) -> str:
    """The verdict rule, fixed before the runs: transfer "helps" only if MT2O-v reached the target sooner
    with every seed, by the load-independent clocks as well as wall-clock, and its final
    hypervolume is not below the independent arm's."""
    rows = summary["rows"]
    if not rows:
        return "No MT2O-v / independent pair to judge."
    cpu = [r["cpu_ratio"] for r in rows if math.isfinite(r["cpu_ratio"])]
    faster_wall = all(r["ratio"] < 1 for r in rows)
    faster_steps = all(r["steps_ratio"] < 1 for r in rows)
    faster_cpu = bool(cpu) and all(c < 1 for c in cpu)
    hv_ok = all(r["hv_mt2o"] >= r["hv_independent"] - 0.01 * abs(r["hv_independent"]) for r in rows)
    if faster_wall and faster_steps and (faster_cpu or not cpu) and hv_ok:
        return f"Transfer helped: MT2O-v reached the target sooner with all {len(rows)} seed(s), by every clock."
    parts = [
        f"wall-clock faster with {sum(r['ratio'] < 1 for r in rows)}/{len(rows)} seeds",
        f"fewer steps with {sum(r['steps_ratio'] < 1 for r in rows)}/{len(rows)}",
    ]
    if cpu:
        parts.append(f"less CPU time with {sum(c < 1 for c in cpu)}/{len(cpu)}")
    parts.append("final HV not lower with all seeds" if hv_ok else "final HV lower with some seed")
    return "No evidence that transfer helps here (" + "; ".join(parts) + ")."


def chapter_configs(
    dataset: str,
    preset: str,
    seeds: Sequence[int],
    extra_k: Sequence[float] | None = None,
    model: str = "hps",
    iterations: int | None = 3,
) -> list[JointConfig]:
    """The book's comparison: MT2O-v and independent on :data:`MT2O_VECTORS` (plus ``extra_k``), per
    seed, alternating which strategy comes first (so slow spells of a shared CPU hit both).
    ``iterations=3`` is half the quick preset's single stage (6 of 12 epochs), so that 3 seeds ×
    2 strategies × 5 subproblems fit a 2-core CPU's afternoon."""
    from mdmtn.training.mt2o import MT2O_VECTORS, joint_config  # torch: only when configs are made

    vectors = list(MT2O_VECTORS) + (
        [tuple(extra_k)] if extra_k is not None and tuple(extra_k) not in MT2O_VECTORS else []
    )
    out = []
    for i, s in enumerate(seeds):
        order = ("mt2o", "independent") if i % 2 == 0 else ("independent", "mt2o")
        out += [joint_config(dataset, model, vectors, preset, s, strategy=st, iterations=iterations) for st in order]
    return out
