"""The compute ledger and the figures quoted in prose, generated from the committed run records.

Nothing here is typed by hand: README's *Measured* section (:func:`measured_markdown`, kept in
sync by ``python -m mdmtn.study measured --write README.md`` and checked by a test) and the book's
reproducibility checklist (:func:`checklist_sections`) read every record under ``results/``,
failed and diverged runs and files rejected by the record check included.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from mdmtn.core.config import RunConfig
from mdmtn.core.paper import PAPER_RESULTS
from mdmtn.records.schema import RunRecord, cpu_label
from mdmtn.study.profiles import profile_of

MEASURED_START, MEASURED_END = "<!-- measured:start -->", "<!-- measured:end -->"
DATASET_NAMES = {"multimnist": "MultiMNIST", "cifar10mnist": "Cifar10Mnist"}


def all_records(results: str | Path, preset: str, status: str | None = None) -> list[RunRecord]:
    """Every run record of ``preset`` under ``results`` (any status unless ``status`` is given), from
    the folders the tables read (:func:`mdmtn.study.cells.preset_records`)."""
    from mdmtn.study.cells import preset_records

    return preset_records(results, preset, status=status)


def rejected_files(results: str | Path) -> list[Path]:
    """Files the record check moved aside (``<key>.json.rejected-<n>``) or would refuse."""
    return sorted(p for p in Path(results).rglob("*.rejected-*"))


def cpu(rec: RunRecord) -> str:
    return cpu_label(rec.machine)


def _minutes(xs: Sequence[float]) -> str:
    if not xs:
        return "–"
    lo, hi = min(xs) / 60, max(xs) / 60
    return f"{lo:.1f} min" if abs(hi - lo) < 0.05 else f"{lo:.1f}–{hi:.1f} min"


def _span(xs: Sequence[float], unit: str = "%") -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:.2f}{unit}" if len(xs) == 1 or abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f}{unit}"


def group_label(rec: RunRecord, coarse: bool = False) -> str:
    """``MultiMNIST MDMTN, ours k = (...)`` / ``Cifar10Mnist MGDA-UB on HPS`` / ``MultiMNIST STL``, plus
    the switch profile or ``switch variant`` where the config is not the library's default."""
    c = rec.config
    ds = DATASET_NAMES.get(c["dataset"], c["dataset"])
    method = c.get("method", "wc_al")
    if method == "wc_al":
        if c.get("init_from"):
            what = f"{c['model'].upper()}, ours, front study" + ("" if coarse else f" from {c['init_from']}")
        elif coarse:
            what = f"{c['model'].upper()}, ours, {'k0 > 0' if c['k'][0] > 0 else 'k0 = 0'}"
        else:
            what = f"{c['model'].upper()}, ours k = ({', '.join(f'{x:g}' for x in c['k'])})"
    elif method == "mgda":
        what = f"MGDA-UB on {c['model'].upper()}" + (
            f" ({c.get('mgda_variant')})" if c.get("mgda_variant") != "ub" else ""
        )
    elif method == "unitary":
        what = f"unitary on {c['model'].upper()}"
    else:
        what = method.upper()
    try:
        prof = profile_of(RunConfig.from_dict(c).replace(init_from=None))
    except Exception:  # noqa: BLE001 - an old config today's library cannot rebuild
        prof = None
    tag = "" if prof == "library" else f" [{prof}]" if prof else " [switch variant]"
    return f"{ds} {what}{tag}"


def ledger_rows(records: Sequence[RunRecord], coarse: bool = False) -> list[dict[str, Any]]:
    """Per group of records (:func:`group_label`; ``coarse``: one group per architecture, k0 > 0 or
    = 0, and front study): statuses, seeds, wall times, CPUs."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[group_label(r, coarse)].append(r)
    rows = []
    for label in sorted(groups):
        rs = groups[label]
        rows.append(
            dict(
                label=label,
                n=len(rs),
                ok=sum(r.ok for r in rs),
                seeds=sorted({r.config["seed"] for r in rs}),
                wall=[r.wall_time_s or 0.0 for r in rs],
                cpus=Counter(cpu(r) for r in rs),
            )
        )
    return rows


def ledger_markdown(records: Sequence[RunRecord], coarse: bool = False) -> str:
    """Table: group, runs (ok / all), seeds, wall time per run, total, CPU models."""
    lines = ["| runs of | ok / all | seeds | wall time per run | total | CPU (runs) |", "|---|---|---|---|---|---|"]
    for row in ledger_rows(records, coarse):
        cpus = "; ".join(f"{m} ({n})" for m, n in sorted(row["cpus"].items()))
        lines.append(
            f"| {row['label']} | {row['ok']} / {row['n']} | {', '.join(map(str, row['seeds']))} | "
            f"{_minutes(row['wall'])} | {sum(row['wall']) / 3600:.2f} h | {cpus} |"
        )
    return "\n".join(lines)


def compute_summary(results: str | Path) -> dict[str, Any]:
    """Totals per preset: runs by status, worker-hours, CPU models; plus rejected files."""
    out: dict[str, Any] = {}
    for preset in ("paper", "quick"):
        recs = all_records(results, preset)
        out[preset] = dict(
            runs=len(recs),
            status=Counter(r.status for r in recs),
            hours=sum(r.wall_time_s or 0.0 for r in recs) / 3600,
            cpus=Counter(cpu(r) for r in recs),
        )
    out["rejected"] = [str(p.relative_to(results)) for p in rejected_files(results)]
    return out


def compute_markdown(results: str | Path) -> str:
    s = compute_summary(results)
    lines = []
    for preset in ("paper", "quick"):
        p = s[preset]
        status = ", ".join(f"{n} {k}" for k, n in sorted(p["status"].items()))
        cpus = "; ".join(f"{m} ({n})" for m, n in sorted(p["cpus"].items()))
        lines.append(
            f"- `{preset}` preset: {p['runs']} run records ({status}), {p['hours']:.1f} worker-hours of "
            f"training wall time; CPUs: {cpus}."
        )
    rej = s["rejected"]
    lines.append(f"- Files set aside by the record check: {len(rej)}" + (f" ({', '.join(rej)})." if rej else "."))
    return "\n".join(lines)


def _cell_line(recs: Sequence[RunRecord], ds: str, model: str, k: tuple) -> str | None:
    from mdmtn.study.verdicts import side_runs

    runs = side_runs(recs, dict(dataset=ds, method="wc_al", model=model, k=list(k)), "paper", "library")
    if not runs:
        return None
    p = PAPER_RESULTS[(ds, "wc_al", model, k)]
    accs = [100 * r.metrics.test_acc_mean for r in runs]
    srs = [r.metrics.SR for r in runs]
    sr = "" if k[0] == 0 else f", SR {_span(srs)} (the paper {p['SR']:g}%)"
    return (
        f"{DATASET_NAMES[ds]} {model.upper()} at k = ({', '.join(f'{x:g}' for x in k)}), seeds "
        f"{', '.join(str(r.config['seed']) for r in runs)}: mean accuracy {_span(accs)} "
        f"(the paper {p['acc'][2]:g}%){sr}; {_minutes([r.wall_time_s for r in runs])} per run"
    )


def measured_markdown(results: str | Path) -> str:
    """README's *Measured* section body, from the records under ``results`` (paper and quick)."""
    results = Path(results)
    paper = all_records(results, "paper", status="ok")
    lines = [
        "At the paper's full schedule (`--preset paper`, records in `results/paper/`, 2-core CPUs, two "
        "1-thread worker processes; chapter 11 of the book judges every claim):",
        "",
    ]
    for key in PAPER_RESULTS:
        if key[1] == "wc_al":
            line = _cell_line(paper, key[0], key[2], key[3])
            if line:
                lines.append(f"- {line}.")
    from mdmtn.study.profiles import BASE_PROFILE, BOOK_PROFILE

    if BOOK_PROFILE != BASE_PROFILE:
        lines.append(
            f"- These are the `{BASE_PROFILE}` arm's runs (the paper as described). The book judges every claim "
            f"in this arm and in the `{BOOK_PROFILE}` arm (the authors' code of the paper's date, which the "
            "root-cause study's rule, registered before its runs, chose), each on its own runs (chapter 11)."
        )
    base = defaultdict(list)
    for r in paper:
        c = r.config
        if c.get("method") in ("mgda", "stl", "unitary") and group_label(r).endswith(("HPS", "MDMTN", "STL")):
            base[group_label(r)].append(r)
    for label in sorted(base):
        rs = sorted(base[label], key=lambda r: r.config["seed"])
        accs = [100 * r.metrics.test_acc_mean for r in rs]
        lines.append(
            f"- {label}, seeds {', '.join(str(r.config['seed']) for r in rs)}: mean accuracy "
            f"{_span(accs)}; {_minutes([r.wall_time_s for r in rs])} per run."
        )
    lines += ["", "Compute spent, all records (failed and diverged runs included):", "", compute_markdown(results), ""]
    quick = all_records(results, "quick", status="ok")
    one = [
        r
        for r in quick
        if r.config["dataset"] == "multimnist"
        and r.config["model"] == "mdmtn"
        and r.config["k"] == [0.001, 0.2, 0.799]
        and r.config["seed"] == 0
        and group_label(r).startswith("MultiMNIST MDMTN, ours k = (0.001, 0.2, 0.799)")
        and "[" not in group_label(r)
    ]
    if one:
        r, m = one[0], one[0].metrics
        lines.append(
            f"The one-command run above (`--preset quick`, seed 0, {cpu(r)}): {r.wall_time_s:.0f} s; test "
            f"accuracy {100 * m.test_acc[0]:.2f} / {100 * m.test_acc[1]:.2f} (avg "
            f"{100 * m.test_acc_mean:.2f}%), SR {m.SR:.1f}%, CR {m.CR:.2f}, PS {m.PS:.2f}. "
            "CPU-scale: 20,000 training images and 12 epochs against the paper's full schedule."
        )
    return "\n".join(lines)


def replace_measured(readme_text: str, body: str) -> str:
    """``readme_text`` with the block between the measured markers replaced by ``body``."""
    try:
        head, rest = readme_text.split(MEASURED_START, 1)
        _, tail = rest.split(MEASURED_END, 1)
    except ValueError:
        raise ValueError(f"README has no {MEASURED_START} ... {MEASURED_END} block") from None
    return f"{head}{MEASURED_START}\n{body}\n{MEASURED_END}{tail}"


def checklist_sections(results: str | Path) -> dict[str, str]:
    """The reproducibility checklist's generated parts: ``runs`` (every record group of each preset),
    ``compute`` (totals and rejected files), ``hardware`` (CPU models per preset), ``timing`` (where
    the wall time went, for records with a per-phase block)."""
    results = Path(results)
    out = {}
    for preset in ("paper", "quick"):
        out[f"runs_{preset}"] = ledger_markdown(all_records(results, preset), coarse=preset == "quick")
    out["compute"] = compute_markdown(results)
    from mdmtn.records.aggregate import format_timing, timing_rows

    timed = timing_rows(r for preset in ("paper", "quick") for r in all_records(results, preset))
    out["timing"] = (
        format_timing(timed)
        if timed
        else "No committed record has a per-phase `timing` block yet: it exists for records written since "
        "per-phase timing was added; `python -m mdmtn aggregate DIR --timing` shows it for those."
    )
    return out
