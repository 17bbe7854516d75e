"""The paper's table cells at the paper's own k, ours beside them at two presets, and verdicts.

A *cell* is one row of Tables 1-2: (dataset, method, architecture[, k]). Unlike
:func:`mdmtn.study.report.table_rows`, which re-applies the paper's selection rule to our own sweep,
a cell here is trained at exactly the configuration the paper printed (its k, its method), with
several seeds, so ours and the paper's differ only by what training does, not by what was
selected. :func:`cell_tables` prints, per metric, the paper's number, ours at the ``paper``
preset (mean ± std over seeds), ours at ``quick`` and both differences; :func:`switch_study` tabulates runs of one cell that differ in the
authors'-code switches. The verdicts live in :mod:`mdmtn.study.verdicts`, from the claims registry.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from mdmtn.core.config import RunConfig, make_config, profile_overrides
from mdmtn.core.paper import PAPER_RESULTS
from mdmtn.records.schema import RunRecord
from mdmtn.records.store import load_records
from mdmtn.study.labels import METHOD_LABELS, TASK_LABELS
from mdmtn.study.profiles import ARMS, BASE_PROFILE
from mdmtn.study.report import run_label, summarize
from mdmtn.study.selection import is_default
from mdmtn.study.verdicts import phase1_best_epoch, side_runs  # noqa: F401 - phase1_best_epoch is part of this module's API


def preset_records(results_dir: str | Path, preset: str, status: str | None = "ok") -> list[RunRecord]:
    """Every record of ``preset`` under ``results_dir`` with ``status`` (None: any): ``<preset>/``,
    its ``baselines/`` and its ``seeds/`` (re-runs of selected configs), each run once."""
    base = Path(results_dir) / preset
    return load_records(
        [d for d in (base, base / "baselines", base / "seeds") if d.is_dir()], status=status, strict=True
    )


def paper_cells(dataset: str) -> list[dict[str, Any]]:
    """The cells of the paper's table for ``dataset`` in printed order: dicts with method, model,
    k (None for baselines) and the paper's numbers (acc (3,), SR, CR, PS)."""
    out = []
    for key, v in PAPER_RESULTS.items():
        if key[0] == dataset:
            out.append(dict(dataset=dataset, method=key[1], model=key[2], k=key[3] if len(key) > 3 else None, paper=v))
    return out


def cell_configs(
    preset: str,
    seeds: Sequence[int] = (0,),
    *,
    baselines: bool = False,
    datasets: Sequence[str] = ("multimnist", "cifar10mnist"),
    profile: str = "library",
    sparse_only: bool = False,
) -> list[RunConfig]:
    """The configs that train every cell of Tables 1-2 at ``preset``: the paper's method at the
    paper's k for each seed (seed-major, so every cell gets seed 0 before any gets seed 1), then,
    with ``baselines``, MGDA-UB (HPS, MDMTN) and STL for each seed. ``profile`` names a switch
    profile (:data:`mdmtn.core.config.SWITCH_PROFILES`); ``sparse_only`` keeps the k0 > 0 cells alone."""
    ours = [
        c for d in datasets for c in paper_cells(d) if c["method"] == "wc_al" and (c["k"][0] > 0 or not sparse_only)
    ]
    cfgs = [
        make_config(c["dataset"], c["model"], c["k"], preset, s, **profile_overrides(profile, c["dataset"], "wc_al"))
        for s in seeds
        for c in ours
    ]
    if baselines and not sparse_only:
        k = (0.001, 0.2, 0.799)  # stored but unused by the baselines, as the CLI's default
        for s in seeds:
            for d in datasets:
                o = profile_overrides(profile, d, "mgda")
                cfgs += [
                    make_config(d, "hps", k, preset, s, method="mgda", **o),
                    make_config(d, "mdmtn", k, preset, s, method="mgda", **o),
                    make_config(d, "stl", k, preset, s, method="stl", **profile_overrides(profile, d, "stl")),
                ]
    return cfgs


def cell_label(cell: dict[str, Any]) -> str:
    """``HPS, ours k = (0.0001, 0.5, 0.4999)`` / ``MDMTN, MGDA-UB``."""
    arch = cell["model"].upper()
    if cell["method"] != "wc_al":
        return METHOD_LABELS[cell["method"]] if cell["method"] == "stl" else f"{arch}, {METHOD_LABELS[cell['method']]}"
    return f"{arch}, ours k = ({', '.join(f'{v:g}' for v in cell['k'])})"


def cell_runs(records: Sequence[RunRecord], cell: dict[str, Any], preset: str, arm: str) -> list[RunRecord]:
    """Default-config records of ``cell`` at ``preset`` in one ``arm`` (a switch profile; all seeds,
    each seed once, in seed order); baselines at any k (they ignore it). The selection of
    :func:`mdmtn.study.verdicts.side_runs`."""
    return side_runs(
        records, dict(dataset=cell["dataset"], method=cell["method"], model=cell["model"], k=cell["k"]), preset, arm
    )


def cell_rows(
    dataset: str, paper_records: Sequence[RunRecord], quick_records: Sequence[RunRecord]
) -> list[dict[str, Any]]:
    """One dict per cell: the cell, :func:`summarize` of ours at ``paper`` in every arm of
    :data:`mdmtn.study.profiles.ARMS` (``at_paper[arm]``), and at ``quick``, where only the library's
    defaults were swept (``at_quick``)."""
    return [
        dict(
            cell=c,
            at_paper={arm: summarize(cell_runs(paper_records, c, "paper", arm)) for arm in ARMS},
            at_quick=summarize(cell_runs(quick_records, c, "quick", BASE_PROFILE)),
        )
        for c in paper_cells(dataset)
    ]


def _fmt(ms: tuple[float, float] | None, n: int, digits: int) -> str:
    if ms is None or math.isnan(ms[0]):
        return "–"
    return f"{ms[0]:.{digits}f}" + (f" ± {ms[1]:.{digits}f}" if n > 1 else "")


def _delta(ours: tuple[float, float] | None, paper: float, digits: int) -> str:
    return "–" if ours is None or math.isnan(ours[0]) else f"{ours[0] - paper:+.{digits}f}"


def cell_tables(rows: Sequence[dict], planned_seeds: int = 3) -> dict[str, str]:
    """Markdown tables, one per metric (``"avg"``, ``"tasks"``, ``"sparsity"``, ``"runs"``), each
    narrow enough for a page: the paper's number, then ours at the paper preset in each arm and at
    quick (library), each "mean ± std (n)" with its difference to the paper. A cell with fewer
    seeds than ``planned_seeds`` says so ("1 of 3")."""

    def n_of(s):
        return "" if s is None else f" ({s['n']}{'' if s['n'] >= planned_seeds else f' of {planned_seeds}'})"

    def val(s, key, digits):
        return "not run" if s is None else _fmt(s[key], s["n"], digits) + n_of(s)

    head = [f"{arm} @ paper" for arm in ARMS] + ["library @ quick"]
    avg = ["| cell | paper | " + " | ".join(f"{h} | Δ" for h in head) + " |", "|---|---" + "|---|---" * len(head) + "|"]
    tasks = [
        "| cell | task | paper | " + " | ".join(f"{h} | Δ" for h in head) + " |",
        "|---|---|---" + "|---|---" * len(head) + "|",
    ]
    sparsity = [
        "| cell | metric | paper | " + " | ".join(head) + " |",
        "|---|---|---" + "|---" * len(head) + "|",
    ]
    runs = ["| cell | arm, preset | seeds | wall per run (s) | CPU |", "|---|---|---|---|---|"]
    for row in rows:
        c, q = row["cell"], row["at_quick"]
        sides = [row["at_paper"][arm] for arm in ARMS] + [q]
        pp, lab = c["paper"], cell_label(c)
        avg.append(
            f"| {lab} | {pp['acc'][2]:.3f} | "
            + " | ".join(f"{val(s, 'avg', 3)} | {_delta(s and s['avg'], pp['acc'][2], 2)}" for s in sides)
            + " |"
        )
        for t, name in enumerate(TASK_LABELS[c["dataset"]]):
            key = "acc1" if t == 0 else "acc2"
            tasks.append(
                f"| {lab} | {name} | {pp['acc'][t]:.2f} | "
                + " | ".join(f"{val(s, key, 2)} | {_delta(s and s[key], pp['acc'][t], 2)}" for s in sides)
                + " |"
            )
        if c["k"] is not None and c["k"][0] > 0:
            for metric, digits, paper in (
                ("SR", 1, f"{pp['SR']:.2f}"),
                ("CR", 2, f"{pp['CR']:g}"),
                ("PS", 2, f"{pp['PS']:g}"),
            ):
                sparsity.append(
                    f"| {lab} | {metric} | {paper} | " + " | ".join(val(s, metric, digits) for s in sides) + " |"
                )
        for where, s in [(f"{arm}, paper", row["at_paper"][arm]) for arm in ARMS] + [("library, quick", q)]:
            if s is not None:
                runs.append(
                    f"| {lab} | {where} | {s['seeds']} | {_fmt(s['wall'], s['n'], 0)} | {', '.join(s['cpus'])} |"
                )
    return {name: "\n".join(t) for name, t in (("avg", avg), ("tasks", tasks), ("sparsity", sparsity), ("runs", runs))}


def _cell_records(
    records: Sequence[RunRecord], dataset: str, model: str, k: Sequence[float], preset: str
) -> list[RunRecord]:
    """The finished paper's-method records of one (dataset, model, k, preset), front studies left
    out, with any switches."""
    out = []
    for r in records:
        c = r.config
        if (c["dataset"], c["model"], c["preset"], c.get("method", "wc_al")) != (dataset, model, preset, "wc_al"):
            continue
        if all(abs(a - b) < 1e-12 for a, b in zip(c["k"], k)) and not c.get("init_from") and r.ok:
            out.append(r)
    return out


def switch_study(records: Sequence[RunRecord], dataset: str, model: str, k: Sequence[float], preset: str) -> str:
    """Markdown: every record of one (dataset, model, k, preset), labelled by the fields in which its
    config differs from the default (the authors'-code switches), with accuracy, SR/CR/PS and the
    phase-1 epoch phase 2 started from (its SR and validation accuracy)."""
    rows = []
    for r in _cell_records(records, dataset, model, k, preset):
        cfg = RunConfig.from_dict(r.config)
        label = run_label(r)[1] or "defaults"
        h, e = r.history or [], r.details.get("phase1_epoch")
        if e is None and r.details.get("phase1_model") in (
            "sparse",
            "draft",
        ):  # older records: the rule applied to the history
            e = phase1_best_epoch(h, cfg.growl.eta1)
        kept = (
            f"{e + 1} ({h[e]['SR']:.1f}%, val {100 * sum(h[e]['val_acc']) / len(h[e]['val_acc']):.2f}%)"
            if (e is not None and e < len(h))
            else "–"
        )
        p1 = [(x["SR"], 100 * sum(x["val_acc"]) / len(x["val_acc"])) for x in h if x.get("phase") == "phase1"]
        m = r.metrics
        rows.append((label != "defaults", label, cfg.seed, m, kept, p1))
    # six columns, SR / CR / PS in one, so the table fits the page's 688 px column
    lines = [
        "| switches | seed | test acc avg % | SR % / CR / PS | phase-1 epoch kept (its SR, val acc) | "
        "phase-1 SR % / val acc % by epoch |",
        "|---|---|---|---|---|---|",
    ]
    for _, label, seed, m, kept, p1 in sorted(rows, key=lambda t: (t[0], t[1], t[2])):
        lines.append(
            f"| {label} | {seed} | {100 * m.test_acc_mean:.2f} | {m.SR:.1f} / {m.CR:.2f} / {m.PS:.2f} | "
            f"{kept} | {', '.join(f'{a:.0f}/{b:.1f}' for a, b in p1)} |"
        )
    return "\n".join(lines)


def mgda_variants(records: Sequence[RunRecord], preset: str = "paper") -> str:
    """Markdown: MGDA-UB as the paper describes it (gradients w.r.t. the shared representation)
    beside the variant of the authors' code (gradients w.r.t. the shared weights, with the leftover
    task gradients of their loop), per dataset and architecture, at ``preset``, against the paper's
    MGDA-UB row. Mean test accuracy in %, mean ± std over seeds where there are several; the
    authors' column names the version of their gradient loop each cell ran (``mgda_grad_bug``:
    "2023", the code when the paper's numbers were made; "head", today's)."""
    names = {"multimnist": "MultiMNIST", "cifar10mnist": "Cifar10Mnist"}
    lines = [
        "| dataset | arch | paper | MGDA-UB as described (n) | Δ | authors' variant (n) | Δ |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds in ("multimnist", "cifar10mnist"):
        for model in ("hps", "mdmtn"):
            paper = PAPER_RESULTS[(ds, "mgda", model)]["acc"][2]
            cols = []
            for variant in ("ub", "authors"):
                seen: dict[int, dict] = {}
                for r in records:
                    c = r.config
                    if (c["dataset"], c.get("method"), c["model"], c["preset"]) != (ds, "mgda", model, preset) or (
                        not r.ok
                    ):
                        continue
                    if variant == "ub" and is_default(r):
                        seen.setdefault(c["seed"], r)
                    elif (
                        variant == "authors" and c.get("mgda_variant") == "params" and c.get("mgda_grad_bug") != "none"
                    ):
                        seen.setdefault(c["seed"], r)
                s = summarize([seen[k] for k in sorted(seen)])
                code = ""
                if variant == "authors" and seen:
                    code = "; " + ", ".join(sorted({r.config["mgda_grad_bug"] for r in seen.values()}))
                cols += [
                    f"{_fmt(s['avg'], s['n'], 2)} ({s['n']}{code})" if s else "not run",
                    _delta(s["avg"] if s else None, paper, 2),
                ]
            lines.append(f"| {names[ds]} | {model.upper()} | {paper:.2f} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def unitary_table(records: Sequence[RunRecord], preset: str = "paper") -> str:
    """Markdown: unitary scalarisation per (dataset, architecture) at ``preset`` beside the paper's
    method's dense and sparse cells in each arm; mean test accuracy in %, "mean ± std (n)"."""

    def cell(method: str, ds: str, model: str, k: Any, arm: str) -> str:
        s = summarize(side_runs(records, dict(dataset=ds, method=method, model=model, k=k), preset, arm))
        return "not run" if s is None else f"{_fmt(s['avg'], s['n'], 2)} ({s['n']})"

    names = {"multimnist": "MultiMNIST", "cifar10mnist": "Cifar10Mnist"}
    head = [f"ours {kind}, {arm}" for kind in ("dense", "sparse") for arm in ARMS]
    lines = ["| dataset | arch | unitary | " + " | ".join(head) + " |", "|---|---|---" + "|---" * len(head) + "|"]
    for ds in ("multimnist", "cifar10mnist"):
        for model in ("hps", "mdmtn"):
            ks = {
                ("dense" if c["k"][0] == 0 else "sparse"): c["k"]
                for c in paper_cells(ds)
                if c["method"] == "wc_al" and c["model"] == model
            }
            ours = [cell("wc_al", ds, model, ks[kind], arm) for kind in ("dense", "sparse") for arm in ARMS]
            lines.append(
                f"| {names[ds]} | {model.upper()} | {cell('unitary', ds, model, None, ARMS[0])} | "
                + " | ".join(ours)
                + " |"
            )
    return "\n".join(lines)
