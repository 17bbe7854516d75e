"""The book's figure sections: each puts one figure under its heading, then its caption (what the
paper's figure shows, what ours shows and from which runs), so that a chapter is narrative plus
one call per section. Every number comes from :mod:`mdmtn.study.report`; this module only displays."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mdmtn.records.schema import RunRecord
from mdmtn.study.chapter import show
from mdmtn.study.selection import selection_line


def _md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def samples(ch: Any, name: str) -> None:
    """Fig. 5: the first ten training images of ``name`` and their caption."""
    from mdmtn.study.plots import sample_grid
    from mdmtn.study.report import samples_caption

    sp = ch.splits(name)
    show(sample_grid(sp, 10))
    _md(samples_caption(sp, synthetic=ch.synthetic))


def architecture(arch: str, dataset: str) -> None:
    """Fig. 4: the diagram of one architecture, then its layer table."""
    from mdmtn.core.config import INPUT_SHAPES
    from mdmtn.models import build_model
    from mdmtn.study.plots import architecture_figure
    from mdmtn.study.report import layer_table

    shape = INPUT_SHAPES[dataset]
    model = build_model(arch, shape)
    show(architecture_figure(model, shape, f"{arch.upper()} on {dataset}, input {shape}"))
    _md(layer_table(model))


def paper_front(results_dir: str | Path, dataset: str, profile: str = "authors-2023") -> None:
    """Figs. 2-3 at the paper's schedule: the MDMTN sweep of the paper's 90 vectors at seed 0 under
    ``profile`` (the registered fronts' arm), drawn once complete; until then one line says how
    many of the 90 exist, and nothing is judged from it."""
    from mdmtn.study.cells import preset_records
    from mdmtn.study.report import paper_sweep_runs
    from mdmtn.study.verdicts import seen_before_line

    records = preset_records(results_dir, "paper")
    runs = paper_sweep_runs(records, dataset, "mdmtn", profile)
    have = len(runs)
    seen = seen_before_line(runs, dataset)
    seen = " " + seen if seen else ""
    if have < 90:
        walls = [r.wall_time_s or 0.0 for r in runs]
        hours, left = sum(walls) / 3600, 90 - have
        # wall times differ severalfold between the VMs a sweep spans: give the range beside the mean
        spread = (
            f" ({min(walls) * left / 3600:.1f} at the fastest run's wall time, {max(walls) * left / 3600:.1f} at the slowest's)"
            if have and max(walls) > 1.05 * min(walls)
            else ""
        )
        cost = (
            f" The trained runs took {hours:.1f} worker-hours; at their mean wall time the {left} left "
            f"{'take' if left > 1 else 'takes'} about {hours / have * left:.1f} more{spread}."
            if have
            else ""
        )
        _md(
            f"**At the paper's schedule ({profile} arm, seed 0): {have} of 90 trained.**{cost}{seen} The "
            "paper-preset front is drawn here, and its registered claims judged, once all 90 exist; nothing is "
            "judged from a partial sweep. The figure below is the CPU-scale sketch from the `quick` preset."
        )
        return
    _md(f"**At the paper's schedule** (`--preset paper`, {profile} arm, seed 0, all 90 vectors).{seen}")
    front(records, dataset, "mdmtn", profile)
    _md(hypervolume_line(records, preset_records(results_dir, "quick"), dataset, profile))
    _md("**The CPU-scale sketch** (`quick` preset, the library's defaults), for comparison:")


def hypervolume_line(paper: Sequence[RunRecord], quick: Sequence[RunRecord], dataset: str, profile: str) -> str:
    """The hypervolumes of the paper-preset MDMTN sweep (``profile``) and the quick one (the library's
    defaults) on one box, with its reference point (:func:`mdmtn.study.frontmeasures.shared_hypervolumes`)."""
    from mdmtn.study.frontmeasures import shared_hypervolumes
    from mdmtn.study.report import front_panel

    sweeps = {"paper": front_panel(paper, dataset, "mdmtn", profile)["paper_sparse"]}
    sketch = front_panel(quick, dataset, "mdmtn", "library")["paper_sparse"]
    if sketch:
        sweeps["quick"] = sketch
    ref, hv = shared_hypervolumes(sweeps)
    told = "; ".join(f"{name} preset {v:.3f}" for name, v in hv.items())
    return (
        f"*Hypervolume of the k0 > 0 runs of the paper's vectors in (L0, L1, L2), as the share of the box from 0 to "
        f"the reference point r = ({', '.join(f'{x:.3g}' for x in ref)}) that they dominate: {told}. r is 1.1 times "
        "each objective's largest value over the runs of "
        + ("both sweeps, so the two shares compare on one box." if len(hv) > 1 else "this sweep.")
        + "*"
    )


def front(records: Sequence[RunRecord], dataset: str, arch: str, profile: str = "library") -> None:
    """Figs. 2-3: the 3-D front and its 2-D projection, the caption, the cluster table, provenance,
    from the sweep of ``profile`` in ``records``."""
    from mdmtn.study.plots import pareto_figure
    from mdmtn.study.report import cluster_table, front_caption, front_panel, provenance

    p = front_panel(records, dataset, arch, profile)
    if not p["runs"]:
        _md("No records for this combination yet.")
        return
    _md(selection_line(f"This front ({arch.upper()} / {dataset})", p["runs"]))
    show(pareto_figure(p["sparse"], p["front"], p["dense_front"], title=f"{arch.upper()} / {dataset}"))
    _md(front_caption(p, dataset, arch))
    _md("**Sparsity clusters of the Pareto-optimal runs**")
    _md(cluster_table(p["front"]))
    _md(provenance(p["runs"]))


def similarity(
    records: Sequence[RunRecord],
    records_dir: str | Path,
    dataset: str,
    arch: str,
    preset: str,
    make_missing: bool = False,
) -> None:
    """Fig. 7: the similarity maps of the sparse run Table 1 or 2 selects, then their caption. With
    ``make_missing`` (a chapter that trains its own runs) maps missing beside a checkpoint are made
    first (:func:`mdmtn.study.maps.write_missing_maps`); otherwise the page only reads them."""
    from mdmtn.study.plots import similarity_figure
    from mdmtn.study.report import MAPS_COMMAND, similarity_caption, similarity_panels, similarity_sources

    if make_missing:
        from mdmtn.study.maps import write_missing_maps

        write_missing_maps(similarity_sources(records, records_dir))
    p = next((x for x in similarity_panels(records, records_dir) if (x["dataset"], x["arch"]) == (dataset, arch)), None)
    if p is None or p["maps"] is None:
        if p is not None and p["damaged"]:
            _md(f"Fig. 7 for {arch.upper()} on {dataset} is not drawn: {p['damaged']}.")
            return
        if p is not None and p["checkpoint"]:
            _md(
                f"The maps of run {p['key']} ({arch.upper()} on {dataset}) are not made yet; "
                f"`{MAPS_COMMAND} {records_dir}` makes them from its checkpoint."
            )
            return
        _md(f"No selected sparse run with a checkpoint or stored maps for {arch.upper()} on {dataset}.")
        return
    _md(selection_line(f"Fig. 7 ({arch.upper()} / {dataset})", [r for r in records if r.key == p["key"]]))
    show(similarity_figure(p["maps"], title=f"{arch.upper()}, k = {tuple(p['k'])}, SR {p['SR']:.1f}%"))
    _md(similarity_caption(p, preset))


def pf_study(records: Sequence[RunRecord], dataset: str, arch: str, letter: str, preset: str) -> None:
    """Fig. 6 (a)-(d): the front study from one sparse run against the k0 = 0 front, caption, provenance."""
    from mdmtn.study.plots import fronts_2d_figure
    from mdmtn.study.report import pf_study_caption, pf_study_panel, provenance

    p = pf_study_panel(records, dataset, arch)
    if p["source"] is None or not p["study"]:
        _md(
            pf_study_caption(p, dataset, arch, letter)
            if p["source"] is None
            else f"*The study from run {p['source'].key} has not been run at the {preset} preset yet.*"
        )
        return
    s = p["source"]
    _md(selection_line(f"Fig. 6({letter})", [s] + p["study"] + p["dense"]))
    show(
        fronts_2d_figure(
            {
                f"from sparse model k = {tuple(s.config['k'])} (SR {s.metrics.SR:.1f}%)": p["study"],
                "dense runs, k0 = 0": p["dense"],
            },
            title=f"({letter}) {arch.upper()} / {dataset}",
        )
    )
    _md(pf_study_caption(p, dataset, arch, letter))
    _md(provenance([s] + p["study"] + p["dense"]))


def pf_overlay(records: Sequence[RunRecord], dataset: str, letter: str, preset: str) -> None:
    """Fig. 6 (e)/(f): both architectures' study and k0 = 0 fronts of one dataset, then the caption."""
    from mdmtn.study.plots import fronts_2d_figure
    from mdmtn.study.report import pf_study_panel

    panels = {arch: pf_study_panel(records, dataset, arch) for arch in ("hps", "mdmtn")}
    groups = {}
    for arch, p in panels.items():
        if p["study"]:
            groups[f"{arch.upper()}, from its sparse model"] = p["study"]
        if p["dense"]:
            groups[f"{arch.upper()}, k0 = 0"] = p["dense"]
    if not groups:
        _md("No records for this overlay yet.")
        return
    _md(selection_line(f"Fig. 6({letter})", [r for g in groups.values() for r in g]))
    show(fronts_2d_figure(groups, title=f"({letter}) {dataset}: both architectures"))
    counts = "; ".join(
        f"{a.upper()}: {len(p['study'])} study runs, {len(p['dense'])} k0 = 0 runs" for a, p in panels.items()
    )
    _md(
        f"*The paper's Fig. 6{letter} overlays the four fronts of {dataset}, where the MDMTN fronts lie below (better "
        f"than) the HPS ones. Ours ({preset} preset): {counts}.*"
    )


def pf_best(records: Sequence[RunRecord]) -> None:
    """The best run of each front study (test-selected, as the paper), beside the paper's."""
    from mdmtn.study.report import pf_study_panel

    for ds in ("multimnist", "cifar10mnist"):
        for arch in ("hps", "mdmtn"):
            p = pf_study_panel(records, ds, arch)
            if p["study"]:
                best = max(p["study"], key=lambda r: r.metrics.test_acc_mean)
                _md(
                    f"**{arch.upper()} / {ds}**: best study run (test-selected, as the paper) k = "
                    f"{tuple(best.config['k'])}, avg test accuracy {100 * best.metrics.test_acc_mean:.2f}%"
                )
    _md(
        "The paper's best study runs, at its full schedule: MultiMNIST MDMTN k = (1e-3, 0.199, 0.8), 97.075%; "
        "Cifar10Mnist MDMTN k = (1e-2, 0.4, 0.59), 78.354%."
    )
