"""Tables 1-2 from run records, beside the numbers printed in the paper.

The paper's numbers (quoted in :data:`mdmtn.core.paper.PAPER_RESULTS`, the book appendix) are shown for
comparison only; every "ours" number is computed from a run record.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mdmtn.core.config import RunConfig, make_config
from mdmtn.core.paper import PAPER_RESULTS, paper_preference_vectors
from mdmtn.objectives.pareto import nondominated, sparsity_clusters
from mdmtn.records.aggregate import mean_std
from mdmtn.records.schema import RunRecord, cpu_label
from mdmtn.records.store import load_records
from mdmtn.study.labels import METHOD_LABELS, TASK_LABELS
from mdmtn.study.paper_fronts import PAPER_FRONT_ACC, PAPER_FRONT_CLAIMS, PAPER_FRONT_FACTS, PAPER_PARETO_COUNTS
from mdmtn.study.selection import best_run, is_default, objective_vectors


def summarize(runs: Sequence[RunRecord]) -> dict[str, Any] | None:
    """The one summary of a group of runs (seeds) of one configuration, None for no runs: ``n``,
    ``seeds`` (sorted), (mean, std with ddof 1) of test accuracy in % (``acc1``, ``acc2``: first and
    last task; ``avg``: their mean), ``SR`` (%), ``CR``, ``PS`` and ``wall`` (seconds); ``cpus`` (the
    CPU models), and the first run's ``preset``, ``k`` and every run's ``keys``."""
    if not runs:
        return None
    m = [r.metrics for r in runs]
    return dict(
        n=len(runs),
        seeds=sorted(r.cfg.seed for r in runs),
        acc1=mean_std([100 * x.test_acc[0] for x in m]),
        acc2=mean_std([100 * x.test_acc[-1] for x in m]),
        avg=mean_std([100 * x.test_acc_mean for x in m]),
        SR=mean_std([x.SR for x in m]),
        CR=mean_std([x.CR for x in m]),
        PS=mean_std([x.PS for x in m]),
        wall=mean_std([r.wall_time_s for r in runs]),
        cpus=sorted({cpu_label(r.machine, "?") for r in runs}),
        preset=runs[0].cfg.preset,
        k=runs[0].cfg.k,
        keys=[r.key for r in runs],
    )


def paper_rows(dataset: str) -> list[tuple]:
    """The paper's Table 1 or 2 rows in printed order, from :data:`mdmtn.core.paper.PAPER_RESULTS`:
    (arch, row kind, k, SR %, CR, PS, acc task 1 %, acc task 2 %, avg %)."""
    rows = []
    for key, v in PAPER_RESULTS.items():
        if key[0] != dataset:
            continue
        method, model = key[1], key[2]
        k = key[3] if len(key) > 3 else None
        kind = method if method != "wc_al" else ("ours-dense" if k[0] == 0 else "ours-sparse")
        rows.append((model, kind, k, v["SR"], v["CR"], v["PS"], *v["acc"]))
    return rows


def load_all(dirs: Iterable[str | Path]) -> list[RunRecord]:
    """Finished records from several directories (missing directories are skipped)."""
    out: list[RunRecord] = []
    for d in dirs:
        if Path(d).is_dir():
            out += load_records(d, strict=True)  # a page never shows another run in place of a bad one
    return out


def select(records: Sequence[RunRecord], **conds: Any) -> list[RunRecord]:
    """Records whose config matches every condition (e.g. dataset="multimnist", model="hps")."""
    return [r for r in records if all(r.config.get(k) == v for k, v in conds.items())]


def sweep_runs(records: Sequence[RunRecord], profile: str = "library") -> list[RunRecord]:
    """The paper's-method records whose config is the preset's default for their (dataset,
    model, k, seed) under switch ``profile``: what a sweep of that arm produces. Leaves out
    front-study runs (``init_from``), switch variants (chapter 9) and any other overridden field,
    so fronts and tables compare like with like."""
    return [r for r in records if r.config.get("method", "wc_al") == "wc_al" and is_default(r, profile)]


def cluster_table(front: Sequence[RunRecord], d: float = 0.1) -> str:
    """Markdown: the sparsity clusters of Pareto-optimal runs (paper's greedy SR rule, gap ``d``)
    with their size, mean and range of SR, and mean test accuracy."""
    if not front:
        return ""
    # the SR range: a cluster may hold distinct levels up to d apart, which its mean hides
    lines = ["| cluster | runs | mean SR | SR range | mean test acc (avg) |", "|---|---|---|---|---|"]
    for c, members in enumerate(cluster_members(front, d)):
        srs = [r.metrics.SR for r in members]
        lines.append(
            f"| {c} | {len(members)} | {np.mean(srs):.1f}% | {min(srs):.1f}–{max(srs):.1f}% | "
            f"{100 * np.mean([r.metrics.test_acc_mean for r in members]):.2f}% |"
        )
    return "\n".join(lines)


def pareto_runs(records: Sequence[RunRecord], dims: Sequence[int] = (0, 1, 2), eps: float = 0.0) -> list[RunRecord]:
    """The ε-nondominated runs (objective vectors = last-epoch training losses, the book appendix)."""
    if not records:
        return []
    mask = nondominated(objective_vectors(records, dims), eps)
    return [r for r, keep in zip(records, mask) if keep]


def table_rows(records: Sequence[RunRecord], dataset: str, select_on: str = "test") -> list[dict[str, Any]]:
    """Rows of Table 1 (MultiMNIST) or 2 (Cifar10Mnist): for each paper row, ours beside it.

    "Ours" rows follow the paper's rule (book appendix): among the Pareto-optimal k0 > 0 runs (3-D
    exact non-dominance), the one with the best mean test accuracy (``select_on="val"`` uses
    validation accuracy instead); for k0 = 0 the best of all k0 = 0 runs. Baseline rows are the
    mean ± std over the seeds of their records. A row without records has ``ours=None``.
    """
    recs = select(records, dataset=dataset)
    rows = []
    for arch, method, k, sr, cr, ps, a1, a2, avg in paper_rows(dataset):
        if method in ("mgda", "stl"):
            runs = select(recs, method=method, model=arch)
        else:
            ours = select(sweep_runs(recs), model=arch)
            candidates = [r for r in ours if (r.config["k"][0] == 0) == (method == "ours-dense")]
            pool = candidates if method == "ours-dense" else pareto_runs(candidates)
            best = best_run(pool, select_on)
            runs = [] if best is None else [best]
        summary = summarize(runs) if runs else None
        if summary is not None and method not in ("mgda", "stl"):  # how many vectors the selection saw
            summary["from_vectors"] = len({tuple(r.config["k"]) for r in candidates})
            summary["from_pareto"] = len(pool)
        rows.append(
            dict(
                arch=arch, method=method, paper=dict(k=k, SR=sr, CR=cr, PS=ps, acc1=a1, acc2=a2, avg=avg), ours=summary
            )
        )
    return rows


def _pm(ms: tuple[float, float], n: int, fmt: str = "{:.2f}") -> str:
    m, s = ms
    return fmt.format(m) if n < 2 else f"{fmt.format(m)} ± {fmt.format(s)}"


def markdown_table(rows: Sequence[dict], dataset: str) -> str:
    """Two Markdown tables, each narrow enough for a book page: per-task and mean test accuracy
    (paper / ours), then SR, CR, PS (paper / ours) with how ours was produced."""
    t1, t2 = TASK_LABELS[dataset]
    acc = [
        f"| arch | method | k of ours | {t1}: paper / ours | {t2}: paper / ours | avg: paper / ours |",
        "|---|---|---|---|---|---|",
    ]
    spars = [
        "| arch | method | (SR; CR; PS) paper | (SR; CR; PS) ours | ours: preset, seeds, wall per run; selected from |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        p, o = r["paper"], r["ours"]
        head = f"| {r['arch'].upper()} | {METHOD_LABELS[r['method']]} |"
        sr_p = f"({p['SR']:.2f}%; {p['CR']:g}; {p['PS']:g})"
        if o is None:
            k = "–" if p["k"] is None else f"not run (paper: {tuple(p['k'])})"
            acc.append(f"{head} {k} | {p['acc1']:.2f} / – | {p['acc2']:.2f} / – | {p['avg']:.3f} / – |")
            spars.append(f"{head} {sr_p} | not run | – |")
            continue
        k = "–" if r["method"] in ("mgda", "stl") else str(tuple(round(v, 6) for v in o["k"]))
        acc.append(
            f"{head} {k} | {p['acc1']:.2f} / {_pm(o['acc1'], o['n'])} | {p['acc2']:.2f} / {_pm(o['acc2'], o['n'])} "
            f"| {p['avg']:.3f} / {_pm(o['avg'], o['n'], '{:.3f}')} |"
        )
        pool = ""
        if "from_vectors" in o:
            nv = f"{o['from_vectors']} vector{'s' if o['from_vectors'] != 1 else ''}"
            pool = (
                f"; best of {nv}"
                if r["method"] == "ours-dense"
                else f"; best of {o['from_pareto']} Pareto-optimal of {nv}"
            )
        spars.append(
            f"{head} {sr_p} | ({o['SR'][0]:.2f}%; {o['CR'][0]:.2f}; {o['PS'][0]:.2f}) | "
            f"{o['preset']}, {o['seeds']}, {o['wall'][0]:.0f} s{pool} |"
        )
    return "\n".join(acc) + "\n\n" + "\n".join(spars)


def layer_table(model: "torch.nn.Module") -> str:  # noqa: F821 - string annotation, torch imported lazily
    """Markdown table of a model's layers (paper Fig. 4): type, weight shape, parameters,
    rows (the unit of SR/CR/PS) and whether GrOWL acts on it."""
    import torch.nn as nn

    growl = {n for n, _ in model.growl_weights()} if hasattr(model, "growl_weights") else set()
    lines = ["| layer | type | weight shape | parameters | rows | GrOWL |", "|---|---|---|---|---|---|"]
    total = 0
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            n = sum(p.numel() for p in m.parameters(recurse=False))
            total += n
            rows = m.weight.shape[1] if m.weight.dim() > 1 else "–"
            lines.append(
                f"| `{name}` | {type(m).__name__} | {tuple(m.weight.shape)} | {n:,} | {rows} | "
                f"{'yes' if name + '.weight' in growl else ''} |"
            )
    extra = sum(p.numel() for n, p in model.named_parameters(recurse=False))
    if extra:
        lines.append(f"| (fusion α) | Parameter | – | {extra} | – | |")
    lines.append(f"| **total** | | | **{total + extra:,}** | | |")
    return "\n".join(lines)


def run_label(rec: RunRecord) -> tuple[str, str]:
    """(method as a reader names it, what sets the run apart from its preset's default config):
    e.g. ("MGDA-UB", ""), ("ours", "cap_ramp=False"), ("ours", "front study from 04bba69f")."""
    c = rec.config
    method = METHOD_LABELS.get(c.get("method", "wc_al"), c.get("method", "?"))
    try:
        cfg = RunConfig.from_dict(c)
        default = make_config(c["dataset"], c["model"], c["k"], c["preset"], c["seed"], method=cfg.method)
    except Exception:  # noqa: BLE001 - a record of an older layout: no variant label
        return method, ""
    mine, base = cfg.to_dict(), default.to_dict()
    diff = {f: v for f, v in mine.items() if v != base[f]}
    head = make_config(c["dataset"], c["model"], c["k"], c["preset"], c["seed"], method=cfg.method, mu_schedule="head")
    if diff and cfg == head:
        diff = {"mu_schedule": "head"}
    source = diff.pop("init_from", None)
    parts = [f"{f}={v}" for f, v in sorted(diff.items())] + ([f"front study from {source[:8]}"] if source else [])
    return method, ", ".join(parts)


def variant_means_table(rows: Sequence[tuple[str, Sequence[RunRecord]]]) -> str:
    """Markdown: one row per switch variant (its label, its runs): the number of runs and the means
    over them of the mean test accuracy (%), SR (%), CR and PS; "not run at this preset" for a
    variant without runs (chapter 9)."""
    lines = ["| variant | runs | avg test acc | SR | CR | PS |", "|---|---|---|---|---|---|"]
    for label, recs in rows:
        if not recs:
            lines.append(f"| {label} | not run at this preset | | | | |")
            continue

        def mean(name: str) -> float:
            return sum(getattr(r.metrics, name) for r in recs) / len(recs)

        lines.append(
            f"| {label} | {len(recs)} | {100 * mean('test_acc_mean'):.2f}% | {mean('SR'):.2f}% | "
            f"{mean('CR'):.2f} | {mean('PS'):.2f} |"
        )
    return "\n".join(lines)


def runs_table(records: Sequence[RunRecord]) -> str:
    """Markdown table, one line per run record: method and architecture, k (paper's method only),
    variant, seed, accuracies, SR/CR/PS, wall time; sorted by method, architecture, k, variant, seed.
    Seven columns, so that it fits a book page (tests/book_in_browser.py)."""
    lines = [
        "| method | k | variant | seed | test acc % (1 / 2 / avg) | SR % / CR / PS | wall |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for r in records:
        c, m = r.config, r.metrics
        method, variant = run_label(r)
        k = "–" if c.get("method", "wc_al") != "wc_al" else "(" + ", ".join(f"{v:g}" for v in c["k"]) + ")"
        rows.append(
            ((method, c["model"], tuple(c["k"]) if k != "–" else (), variant, c["seed"]), method, c, m, k, variant, r)
        )
    for _, method, c, m, k, variant, r in sorted(rows, key=lambda t: t[0]):
        accs = " / ".join(f"{100 * a:.2f}" for a in m.test_acc) + f" / {100 * m.test_acc_mean:.2f}"
        lines.append(
            f"| {method} {c['model'].upper()} | {k} | {variant or 'default'} | {c['seed']} | {accs} | "
            f"{m.SR:.1f} / {m.CR:.2f} / {m.PS:.2f} | {r.wall_time_s:.0f} s |"
        )
    return "\n".join(lines)


def provenance(records: Sequence[RunRecord]) -> str:
    """One paragraph saying how the numbers on a page were produced."""
    if not records:
        return (
            "**No run records found for this page yet** — run the chapter with a `k` (or `python -m mdmtn train ...`)."
        )
    presets = sorted({r.config["preset"] for r in records})
    sizes = sorted({(r.data["n_train"], r.data["n_val"], r.data["n_test"]) for r in records if r.data is not None})
    # the CPU model as well: the same config does not train bit for bit alike on AVX2 and AVX-512 CPUs
    per_machine = Counter(
        f"{cpu_label(r.machine, r.machine.get('processor', '?'))}, "
        f"{r.machine.get('cpu_count')} CPUs, {r.machine.get('device', 'cpu')}"
        for r in records
        if r.machine is not None
    )
    machines = [f"{m} ({n} run{'s' if n > 1 else ''})" for m, n in sorted(per_machine.items())]
    versions = sorted({r.machine.get("mdmtn", "?") for r in records if r.machine is not None})
    wall = sum(r.wall_time_s or 0 for r in records)
    scale = "**CPU-scale results, not the paper's**" if presets != ["paper"] else "full paper schedule"
    return (
        f"{scale}: {len(records)} run records, preset(s) {', '.join(presets)}; "
        f"data sizes (train, val, test) {', '.join(map(str, sizes))}; machine(s): {'; '.join(machines)}; "
        f"mdmtn {', '.join(versions)}; total training wall time {wall / 60:.1f} min."
    )


def joint_provenance(records: Sequence[RunRecord]) -> str:
    """:func:`provenance` for joint (MT2O-v / independent) records: preset, seeds, epochs, machine."""
    flat = [dataclasses.replace(r, config=r.config["run"]) for r in records]

    def epochs(c: dict) -> int:
        run = c["run"]
        its = c["iterations"] or (
            run["phase1_iterations"] if c["vectors"][0][0] > 0 else run["single_stage_iterations"]
        )
        return its * run["epochs_per_iteration"]

    seeds = sorted({r.config["run"]["seed"] for r in records})
    loads = [r.machine.get("load_avg_1min") for r in records]
    loads = [x for x in loads if x is not None]
    return (
        provenance(flat) + f" {len(records[0].config['vectors'])} subproblems per record, seeds {seeds}, "
        f"{', '.join(map(str, sorted({epochs(r.config) for r in records})))} epochs each"
        + (f"; 1-min load average at the end of the runs {min(loads):.1f}–{max(loads):.1f} (2 cores)" if loads else "")
        + "."
    )


def compression_table(records: Sequence[RunRecord]) -> str:
    """Markdown table of the compressed export (``record.details["compression"]``) of the sparse runs:
    SR beside the parameter and stored-size reduction that :func:`mdmtn.training.compress` turns it into."""
    rows = [r for r in records if r.details.get("compression")]
    if not rows:
        return "No sparse run record carries a compression summary yet (`python -m mdmtn.study compress DIR`)."
    lines = [
        "| model | k | SR % | 1 − SR | params dense → compressed | ratio | stored KiB dense → compressed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.config["model"], r.config["k"], r.config.get("init_from") or "")):
        c, m = r.details["compression"], r.metrics
        k = "(" + ", ".join(f"{v:g}" for v in r.config["k"]) + ")" + (" PF study" if r.config.get("init_from") else "")
        lines.append(
            f"| {r.config['model'].upper()} | {k} | {m.SR:.1f} | {c['one_minus_SR']:.3f} | "
            f"{c['params_dense']:,} → {c['params_compressed']:,} | {c['param_ratio']:.3f} | "
            f"{c['stored_bytes_dense'] / 1024:,.0f} → {c['stored_bytes_compressed'] / 1024:,.0f} |"
        )
    return "\n".join(lines)


def seed_check(
    rows: Sequence[dict], all_records: Sequence[RunRecord], reruns: Sequence[RunRecord]
) -> list[dict[str, Any]]:
    """The table's selected "ours" runs beside re-runs of the same config with other seeds.

    The paper's rule keeps the best of many runs (by test accuracy), so the selected number is
    an optimistic draw; training the same config again with new seeds shows its spread. For
    each ours row of ``table_rows`` output, ``reruns`` records whose config equals the selected
    run's in every field but ``seed`` are collected with it. Returns one dict per ours row:
    arch, method, k, selected (the selected run's summary), all (summary over the selected run
    and its re-runs, ``None`` without re-runs).
    """

    def but_seed(r: dict) -> RunConfig | None:  # older records lack newer fields: compare with defaults filled in
        try:
            return RunConfig.from_dict({**r.config, "seed": 0})
        except Exception:
            return None

    by_key = {r.key: r for r in all_records}
    out = []
    for row in rows:
        if row["method"] not in ("ours-dense", "ours-sparse") or row["ours"] is None:
            continue
        chosen = by_key[row["ours"]["keys"][0]]
        same = but_seed(chosen)
        mates = [
            r
            for r in reruns
            if r.key != chosen.key
            and r.config["seed"] != chosen.config["seed"]
            and same is not None
            and but_seed(r) == same
        ]
        out.append(
            dict(
                arch=row["arch"],
                method=row["method"],
                k=tuple(chosen.config["k"]),
                selected=summarize([chosen]),
                all=summarize([chosen] + mates) if mates else None,
            )
        )
    return out


def seed_check_markdown(
    checks: Sequence[dict], rerun_dir: str = "results/<preset>/seeds", reruns: Sequence[RunRecord] = ()
) -> str:
    """Markdown table of :func:`seed_check`: selected run vs mean ± std over seeds. ``reruns``
    (all re-run records) lets the page say when re-runs exist but of configurations the table no
    longer selects."""
    if not checks or all(c["all"] is None for c in checks):
        how = f"`python -m mdmtn train --model M --k K0 K1 K2 --seeds 1 2 --out {rerun_dir} --workers 2` adds them."
        if reruns:
            ks = sorted({(r.config["model"].upper(), tuple(r.config["k"])) for r in reruns})
            return (
                f"{len(reruns)} re-runs with other seeds are in `{rerun_dir}`, but of configurations this table "
                f"does not select ({'; '.join(f'{m} k = {k}' for m, k in ks)}). Re-runs of the configurations it "
                f"selects: none yet; {how}"
            )
        return f"No re-runs with other seeds in `{rerun_dir}` yet: {how}"
    lines = [
        "| arch | method | k | selected run: avg acc % (seed) | SR % | same config over seeds: avg acc % | SR % | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        s, a = c["selected"], c["all"]
        left = f"| {c['arch'].upper()} | {METHOD_LABELS[c['method']]} | {c['k']} | {s['avg'][0]:.2f} ({s['seeds'][0]}) | {s['SR'][0]:.1f} |"
        if a is None:
            lines.append(left + " – | – | – |")
        else:
            lines.append(
                left + f" {a['avg'][0]:.2f} ± {a['avg'][1]:.2f} | {a['SR'][0]:.1f} ± {a['SR'][1]:.1f} | {a['seeds']} |"
            )
    return "\n".join(lines)


def _stored_maps(cache: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(maps, None), (None, None) when there are none, or (None, why) for a damaged file."""
    from mdmtn.study.maps import MapsDamaged, read_maps

    try:
        return read_maps(cache), None
    except MapsDamaged as e:
        return None, str(e)


def _similarity_runs(records: Sequence[RunRecord], records_dir: str | Path):
    for ds in ("multimnist", "cifar10mnist"):
        for row in table_rows(records, ds):
            if row["method"] != "ours-sparse" or row["ours"] is None:
                continue
            key = row["ours"]["keys"][0]
            yield ds, row, key, Path(records_dir) / "similarity" / f"{key}.json", Path(records_dir) / f"{key}.pt"


MAPS_COMMAND = "python -m mdmtn.study maps"


def similarity_sources(records: Sequence[RunRecord], records_dir: str | Path) -> list[dict[str, Any]]:
    """The Fig. 7 runs (the sparse "ours" row of Tables 1-2 each) whose maps are missing, or stored in
    the older block-averaged format, while the run's checkpoint ``<key>.pt`` is there: dicts with
    ``record``, ``cache`` (``<records_dir>/similarity/<key>.json``) and ``checkpoint``. Only reads;
    ``python -m mdmtn.study maps`` (:func:`mdmtn.study.maps.write_missing_maps`) makes them."""
    out = []
    for _, _, key, cache, ckpt in _similarity_runs(records, records_dir):
        stored, _ = _stored_maps(cache)  # a damaged file is rebuilt like a missing one
        if (stored is None or "S_u8" not in stored["maps"][0]) and ckpt.exists():
            out.append(dict(record=next(r for r in records if r.key == key), cache=cache, checkpoint=ckpt))
    return out


def similarity_panels(records: Sequence[RunRecord], records_dir: str | Path) -> list[dict[str, Any]]:
    """One Fig. 7 panel per sparse "ours" row of Tables 1-2 (the table's selected run): ``dataset``,
    ``arch``, ``k``, ``SR``, ``key``, ``maps`` and ``source`` (None when no maps are stored) and
    ``checkpoint`` (whether ``<key>.pt`` is there, so ``python -m mdmtn.study maps`` could make them);
    ``damaged``: why a stored maps file is not used (:func:`mdmtn.study.maps.read_maps`), else None.
    Maps are read from ``<records_dir>/similarity/<key>.json``; nothing is computed or written."""
    out = []
    for ds, row, key, cache, ckpt in _similarity_runs(records, records_dir):
        stored, damaged = _stored_maps(cache)
        out.append(
            dict(
                dataset=ds,
                arch=row["arch"],
                k=row["ours"]["k"],
                SR=row["ours"]["SR"][0],
                key=key,
                maps=stored["maps"] if stored else None,
                source=stored["source"] if stored else None,
                damaged=damaged,
                checkpoint=ckpt.exists(),
            )
        )
    return out


def similarity_caption(panel: dict[str, Any], preset: str) -> str:
    """The caption under one Fig. 7 panel of :func:`similarity_panels`: what the paper's figure
    shows and which of our runs (and which model file) the maps come from."""
    table = 1 if panel["dataset"] == "multimnist" else 2
    arch = panel["arch"].upper()
    return (
        f"*The paper's Fig. 7 shows these maps for its sparse {arch} model. Ours: the sparse {arch} run that "
        f"Table {table} selects at the `{preset}` preset (run {panel['key']}, k = {tuple(panel['k'])}, "
        f"SR {panel['SR']:.1f}%); maps from {panel['source']}.*"
    )


def front_panel(records: Sequence[RunRecord], dataset: str, arch: str, profile: str = "library") -> dict[str, Any]:
    """What one Fig. 2/3 panel shows, from the sweep's default-config records of (dataset, arch),
    of one seed (the one with the most runs: records of a few configs re-run with other seeds
    would otherwise dominate or join the front):
    ``sparse`` (k0 > 0 runs), ``front`` (their 3-D Pareto set), ``paper_sparse`` and
    ``paper_front`` (the same for the paper's 90 vectors alone), ``dense`` (k0 = 0 runs),
    ``dense_front`` (the 2-D front of those), ``vectors`` (distinct k swept), ``presets``, ``seeds``
    and ``paper_count`` (the paper's Pareto count, None where it gives none)."""
    runs = select(sweep_runs(records, profile), dataset=dataset, model=arch)
    if runs:  # one sweep, one seed: re-runs of a few selected configs with other seeds are not part of its front
        per_seed = Counter(r.config["seed"] for r in runs)
        seed = max(sorted(per_seed), key=per_seed.__getitem__)  # the seed with most runs; the lowest on a tie
        runs = [r for r in runs if r.config["seed"] == seed]
    sparse = [r for r in runs if r.config["k"][0] > 0]
    dense = [r for r in runs if r.config["k"][0] == 0]
    # the paper counts its front among its own 90 vectors: another vector swept too (a reader's, the
    # quick set's) can join or shrink the front, so the comparison uses the paper's vectors alone
    paper_k = set(paper_preference_vectors())
    paper_sparse = [r for r in sparse if tuple(r.config["k"]) in paper_k]
    return dict(
        runs=runs,
        sparse=sparse,
        front=pareto_runs(sparse),
        dense=dense,
        paper_sparse=paper_sparse,
        paper_front=pareto_runs(paper_sparse),
        dense_front=pareto_runs(dense, dims=(1, 2)),
        vectors=len({tuple(r.config["k"]) for r in runs}),
        presets=sorted({r.config["preset"] for r in runs}),
        seeds=sorted({r.config["seed"] for r in runs}),
        paper_count=PAPER_PARETO_COUNTS.get((dataset, arch)),
    )


def paper_sweep_runs(
    records: Sequence[RunRecord], dataset: str, arch: str, profile: str, seed: int = 0
) -> list[RunRecord]:
    """The runs of the ``seed`` sweep of (dataset, arch) under ``profile`` at the paper's 90 vectors,
    one per vector (the first record of a vector trained twice)."""
    paper_k, out = set(paper_preference_vectors()), {}
    for r in select(sweep_runs(records, profile), dataset=dataset, model=arch, seed=seed):
        k = tuple(r.config["k"])
        if k in paper_k:
            out.setdefault(k, r)
    return list(out.values())


def paper_vectors_done(records: Sequence[RunRecord], dataset: str, arch: str, profile: str, seed: int = 0) -> int:
    """How many of the paper's 90 vectors the ``seed`` sweep of (dataset, arch) holds under ``profile``."""
    return len(paper_sweep_runs(records, dataset, arch, profile, seed))


def sr_clusters(runs: Sequence[RunRecord]) -> list[tuple[float, int]]:
    """(mean SR %, number of runs) of each sparsity cluster of ``runs`` (the authors' grouping,
    :func:`mdmtn.objectives.pareto.sparsity_clusters`, d = 0.1), by increasing SR."""
    return [(float(np.mean(c)), len(c)) for c in _clusters(runs)]


def front_verdicts(records: Sequence[RunRecord]) -> list[dict[str, str]]:
    """One verdict per claim of :data:`PAPER_FRONT_CLAIMS`, from the sweeps in ``records``: "holds",
    "does not hold", or "not yet" while the sweep lacks some of the paper's 90 vectors (the numbers
    so far are still given). Fronts are 3-D exact non-dominance of the k0 > 0 runs of the paper's
    vectors (other vectors swept too are left out, as the paper's count has none); SR clusters
    use the authors' grouping (``sparsity_clusters``, d = 0.1)."""
    paper_k = set(paper_preference_vectors())
    out = []
    for ds, arch, what, value in PAPER_FRONT_CLAIMS:
        p = front_panel(records, ds, arch)
        covered = len({tuple(r.config["k"]) for r in p["runs"]} & paper_k)
        fig = {"multimnist": "Fig. 2", "cifar10mnist": "Fig. 3"}[ds]
        front = p["paper_front"]
        srs = [r.metrics.SR for r in front]
        where = f"{covered} of the paper's {len(paper_k)} vectors, {', '.join(p['presets']) or '–'} preset"
        if what == "count":
            claim = f"{fig}: {value:g} Pareto-optimal {arch.upper()} models (within 25%)"
            ok = abs(len(front) - value) <= 0.25 * value
            numbers = f"ours {len(front)} of {len(p['paper_sparse'])} k0 > 0 runs ({where})"
        else:
            clusters = sr_clusters(front)
            levels = ", ".join(f"{m:.1f}% ({n})" for m, n in clusters) or "none"
            numbers = f"ours: SR clusters {levels} ({where})"
            if what == "largest_cluster_sr":
                claim = f"{fig}: the largest SR cluster of the {arch.upper()} front at ≈ {value:g}% (within 5 points)"
                ok = bool(clusters) and abs(max(clusters, key=lambda c: c[1])[0] - value) <= 5
            else:
                claim = f"{fig}: all Pareto-optimal {arch.upper()} models at SR ≈ {value:g}% (within 5 points)"
                ok = bool(srs) and all(abs(x - value) <= 5 for x in srs)
                if srs:  # the grouping can merge distinct levels: say how many points are near the claim
                    near = sum(abs(x - value) <= 5 for x in srs)
                    numbers = (
                        numbers[:-1] + f"; {near} of {len(srs)} within 5 points of {value:g}%, SR "
                        f"{min(srs):.1f}–{max(srs):.1f}%)"
                    )
        verdict = "not yet" if covered < len(paper_k) else "holds" if ok else "does not hold"
        out.append(dict(claim=claim, verdict=verdict, numbers=numbers))
    return out


def front_caption(panel: dict[str, Any], dataset: str, arch: str) -> str:
    """The caption under one Fig. 2/3 panel: what the paper's figure shows and what ours does."""
    fig = {"multimnist": "Fig. 2", "cifar10mnist": "Fig. 3"}[dataset]
    paper = (
        f"The paper's {fig} shows {panel['paper_count']} Pareto-optimal {arch.upper()} models from its 90 "
        "preference vectors. "
        if panel["paper_count"]
        else f"The paper draws no front for {arch.upper()}; its Table rows for {arch.upper()} select from such a sweep. "
    )
    fact = PAPER_FRONT_FACTS.get((dataset, arch))
    if fact:
        paper = paper.rstrip(". ") + f", {fact}. "

    def span(runs: Sequence[RunRecord]) -> str:
        accs = [100 * r.metrics.test_acc_mean for r in runs]
        return f"{min(accs):.2f}–{max(accs):.2f}%" if accs else "–"

    levels = ""
    if panel["front"]:
        levels = f", SR clusters at {', '.join(_cluster_level(c) for c in _clusters(panel['front']))}"
    extra = len(panel["sparse"]) - len(panel["paper_sparse"])
    alone = (
        f" ({len(panel['paper_front'])} of {len(panel['paper_sparse'])} among the paper's vectors alone, the "
        "count the verdicts compare)"
        if extra
        else ""
    )
    return (
        f"*{paper}Ours: {len(panel['front'])} Pareto-optimal of {len(panel['sparse'])} k0 > 0 runs{alone}{levels}, "
        f"accuracies {span(panel['front'])} (k0 = 0 runs: {span(panel['dense'])}), "
        f"from {panel['vectors']} preference vectors ({len(panel['dense'])} with k0 = 0), preset "
        f"{', '.join(panel['presets']) or '–'}, seed {', '.join(map(str, panel['seeds'])) or '–'}."
        + _front_differences(panel, dataset, arch)
        + _cpu_mix(panel["runs"])
        + "*"
    )


def _cpu_mix(runs: Sequence[RunRecord]) -> str:
    """Which kinds of CPU trained the drawn runs (the same config does not train bit for bit alike on
    different CPUs), said when there is more than one: the model name, and the vector ISA of torch's
    kernels where the record has it (:func:`mdmtn.records.cpu_label`)."""
    mix = Counter(cpu_label(r.machine) for r in runs)
    if len(mix) < 2:
        return ""
    return (
        " Trained on more than one kind of CPU (model name, and the vector ISA torch's kernels used where "
        "recorded): " + ", ".join(f"{m} ({n} run{'s' if n > 1 else ''})" for m, n in sorted(mix.items())) + "."
    )


def cluster_members(runs: Sequence[RunRecord], d: float = 0.1) -> list[list[RunRecord]]:
    """The runs of each sparsity cluster (:func:`mdmtn.objectives.pareto.sparsity_clusters`, gap ``d``), in
    label order (the order in which the grouping found them)."""
    labels = sparsity_clusters([r.metrics.SR for r in runs], d) if runs else np.array([], dtype=int)
    return [[r for r, lab in zip(runs, labels) if lab == c] for c in sorted(set(labels.tolist()))]


def _clusters(runs: Sequence[RunRecord]) -> list[list[float]]:
    """The SR values (%) of each sparsity cluster of ``runs`` (d = 0.1), by increasing mean."""
    return sorted(([r.metrics.SR for r in c] for c in cluster_members(runs)), key=np.mean)


def _cluster_level(srs: Sequence[float]) -> str:
    """ "26%", or "26% (19.9–29.8%)" when the cluster holds levels more than a point apart."""
    return f"{np.mean(srs):.0f}%" + (f" ({min(srs):.1f}–{max(srs):.1f}%)" if max(srs) - min(srs) > 1 else "")


def _front_differences(panel: dict[str, Any], dataset: str, arch: str) -> str:
    """A sentence with where our front differs from the paper's, in numbers (count, accuracy
    range where the paper gives one) and under which schedule each was trained."""
    if not panel["front"] or panel["paper_count"] is None:
        return ""
    n, ref = len(panel["paper_front"]), panel["paper_count"]
    parts = [f"{n} Pareto points against the paper's {ref} ({n - ref:+d})"] if n != ref else []
    acc = PAPER_FRONT_ACC.get((dataset, arch))
    if acc:
        for name, runs, (lo, hi) in (
            ("Pareto", panel["paper_front"], acc["front"]),
            ("k0 = 0", panel["dense"], acc["dense"]),
        ):
            if runs:
                ours = [100 * r.metrics.test_acc_mean for r in runs]
                parts.append(
                    f"{name} accuracies {lo - min(ours):.2f} (lowest) to {hi - max(ours):.2f} (highest) "
                    "points below the paper's"
                )
    r = panel["front"][0]
    c, paper = r.config, make_config(dataset, arch, tuple(r.config["k"]), "paper", 0)
    epochs = c["epochs_per_iteration"] * (c["phase1_iterations"] + c["phase2_iterations"])
    paper_epochs = paper.schedule.epochs_per_iteration * (
        paper.schedule.phase1_iterations + paper.schedule.phase2_iterations
    )
    return (
        (f" The same Pareto count as the paper's ({ref})." if n == ref else "")
        + (f" Where ours differs: {'; '.join(parts)}." if parts else "")
        + f" Ours trained {epochs} epochs on "
        f"{r.data['n_train']:,} training images, the paper's schedule {paper_epochs} epochs on all of them."
    )


def pf_study_panel(records: Sequence[RunRecord], dataset: str, arch: str) -> dict[str, Any]:
    """What one panel of Fig. 6 (the App. B front study) shows for (dataset, arch): ``source`` (the
    best sparse run, as Tables 1-2 select it; None if there is none), ``study`` (the finished runs
    started from its model), ``planned`` (how many vectors the paper's study has at its k0: 18, or 17
    for k0 = 0.1), ``dense`` (the sweep's k0 = 0 runs of the source's seed) and the two fronts' runs (``study_front``,
    ``dense_front``, exact non-dominance in (L1, L2))."""
    rows = [r for r in table_rows(records, dataset) if r["arch"] == arch and r["method"] == "ours-sparse"]
    source = None
    if rows and rows[0]["ours"] is not None:
        source = next(r for r in records if r.key == rows[0]["ours"]["keys"][0])
    study = [] if source is None else [r for r in records if r.config.get("init_from") == source.key and r.ok]
    dense = [
        r
        for r in select(sweep_runs(records), dataset=dataset, model=arch)
        if r.config["k"][0] == 0 and (source is None or r.config["seed"] == source.config["seed"])
    ]
    planned = None if source is None else sum(1 for k in paper_preference_vectors() if k[0] == source.config["k"][0])
    return dict(
        source=source,
        study=study,
        planned=planned,
        dense=dense,
        study_front=pareto_runs(study, dims=(1, 2)),
        dense_front=pareto_runs(dense, dims=(1, 2)),
    )


def pf_study_caption(panel: dict[str, Any], dataset: str, arch: str, letter: str) -> str:
    """The caption under one of Fig. 6's panels (a)-(d)."""
    s = panel["source"]
    if s is None:
        return f"*No sparse {arch.upper()} run on {dataset} to start the study from yet.*"
    k = tuple(s.config["k"])
    return (
        f"*The paper's Fig. 6{letter} shows the front of the study started from its best sparse {arch.upper()} "
        f"model, over all {panel['planned']} vectors with that model's k0, against the k0 = 0 front. Ours: "
        f"{len(panel['study'])} of the {panel['planned']} vectors "
        f"({len(panel['study_front'])} on the front), started from run {s.key} (k = {k}, SR "
        f"{s.metrics.SR:.1f}%, {s.config['preset']} preset, seed {s.config['seed']}); "
        f"{len(panel['dense'])} k0 = 0 runs ({len(panel['dense_front'])} on their front)."
        + _restored_start(panel)
        + _study_vs_dense(panel)
        + "*"
    )


def _restored_start(panel: dict[str, Any]) -> str:
    """A sentence when the study started from a retrained copy of its source (mdmtn.experiments.restore)."""
    restored = [
        r.details["source_checkpoint"] for r in panel["study"] if r.details.get("source_checkpoint", {}).get("restored")
    ]
    if not restored:
        return ""
    gaps = restored[0]["gaps_points"]
    acc = max(v for k, v in gaps.items() if k != "SR")
    return (
        f" {len(restored)} of these runs started from a retrained copy of the source (its checkpoint was not "
        f"kept), accepted because it reproduces the source's record within {acc:.2f} accuracy and "
        f"{gaps['SR']:.2f} SR points."
    )


def _study_vs_dense(panel: dict[str, Any]) -> str:
    """How far the study's training losses sit below the k0 = 0 runs', and why (one more stage)."""
    if not panel["study"] or not panel["dense"]:
        return ""
    study, dense = (float(np.median(objective_vectors(panel[k], dims=(1, 2)).sum(axis=1))) for k in ("study", "dense"))
    return (
        f" Median L1 + L2 (last-epoch training loss): {study:.2e} for the study, {dense:.2e} for the k0 = 0 "
        "runs; the study continues training an already trained model for one more stage, the k0 = 0 runs "
        "start from scratch, so the two fronts differ in training time as well as in sparsity."
    )


def samples_caption(splits: Any, synthetic: bool = False) -> str:
    """The caption under a Fig. 5 grid: what the paper's figure shows and what ours does."""
    what = (
        "tiny SYNTHETIC stand-in data (no real data was found), not MNIST / CIFAR-10"
        if synthetic
        else f"the real data (inputs sha256 {splits.info.get('input_sha256', '?')[:12]}…)"
    )
    paper = (
        "The paper's Fig. 5 shows the first ten Cifar10Mnist training images with their (CIFAR-10 class, digit) "
        "labels. "
        if splits.name == "cifar10mnist"
        else "The paper shows no MultiMNIST samples. "
    )
    return (
        f"*{paper}Ours: the first ten training images of our {splits.name} build, titled (task 1, task 2); "
        f"train {len(splits.train):,}, validation {len(splits.val):,}, test {len(splits.test):,} images of shape "
        f"{tuple(splits.input_shape)}, built from {what}.*"
    )
