"""The book's figure sections on record folders built by hand: what a page shows before and after
the paper-preset sweep of Fig. 2 is complete."""

from dataclasses import replace

import pytest
from paper_sweep import paper_sweep

from mdmtn.records.store import write_record
from mdmtn.study import sections


@pytest.fixture
def shown(monkeypatch):
    """What a section displays, in order: ("md", text) or ("figure", title)."""
    out = []
    monkeypatch.setattr(sections, "_md", lambda text: out.append(("md", text)))
    monkeypatch.setattr(sections, "show", lambda fig: out.append(("figure", fig.get_suptitle())))
    return out


def _write(root, records, preset="paper", wall_time_s=800.0):
    """Store ``records`` as the runner would: with the wall time (a finished record without one is
    refused on reading), the data it saw and the machine it ran on."""
    data = dict(dataset="multimnist", n_train=50000, n_val=10000, n_test=10000, full_train=False, normalize=True)
    machine = dict(cpu_model="AMD EPYC", cpu_count=2, torch_threads=1, device="cpu", mdmtn_commit="0123456789ab")
    for r in records:
        r = replace(r, wall_time_s=wall_time_s, data=data, machine=machine)
        write_record(root / preset / f"{r.key}.json", r.to_dict())


def test_a_partial_paper_sweep_is_counted_and_neither_drawn_nor_judged(tmp_path, shown):
    _write(tmp_path, paper_sweep(39)[:89])
    sections.paper_front(tmp_path, "cifar10mnist")  # no run of that figure yet: no cost to extrapolate
    assert "0 of 90 trained." in shown.pop()[1]
    sections.paper_front(tmp_path, "multimnist")
    assert [kind for kind, _ in shown] == ["md"]
    assert "89 of 90 trained" in shown[0][1] and "nothing is judged from a partial sweep" in shown[0][1]
    # 89 runs of 800 s each: 19.8 worker-hours so far, about 0.2 for the one left
    assert "took 19.8 worker-hours; at their mean wall time the 1 left takes about 0.2 more." in shown[0][1]
    # two of the 89 are Table 1's seed-0 sparse cell and the authors-2023 dense cell, trained before the rules
    assert (
        "2 of these runs (6868558f, ce261491) were trained, and their numbers seen, before this figure's rules "
        "were registered (at d1359753): " in shown[0][1]
    )


def test_a_sweep_without_the_runs_seen_before_its_rules_says_nothing_of_them(tmp_path, shown):
    seen = {"6868558f15a2111a", "ce26149167cf3a45"}
    _write(tmp_path, [r for r in paper_sweep(39) if r.key not in seen])
    sections.paper_front(tmp_path, "multimnist")
    assert "88 of 90 trained" in shown[0][1] and "seen" not in shown[0][1]


def test_a_partial_sweeps_cost_gives_the_range_of_its_runs_wall_times(tmp_path, shown):
    runs = paper_sweep(39)[:10]
    _write(tmp_path, runs[0::2], wall_time_s=600.0)
    _write(tmp_path, runs[1::2], wall_time_s=1800.0)
    sections.paper_front(tmp_path, "multimnist")
    # 10 runs averaging 1,200 s: 3.3 worker-hours; the 80 left take 26.7 at the mean, 13.3 at 600 s, 40.0 at 1,800 s
    assert (
        "took 3.3 worker-hours; at their mean wall time the 80 left take about 26.7 more (13.3 at the fastest "
        "run's wall time, 40.0 at the slowest's)." in shown[0][1]
    )


def test_the_complete_paper_sweep_is_drawn_with_its_front_and_clusters(tmp_path, shown):
    _write(tmp_path, paper_sweep(39))
    sections.paper_front(tmp_path, "multimnist")
    text = "\n".join(t for kind, t in shown if kind == "md")
    assert ("figure", "MDMTN / multimnist") in shown
    assert "all 90 vectors" in text and "authors-2023 (90)" in text
    assert "2 of these runs (6868558f, ce261491) were trained, and their numbers seen, before" in text
    assert "39 Pareto-optimal of 71 k0 > 0 runs" in text and "The same Pareto count as the paper's (39)" in text
    assert "| 0 | 39 | 53.0% |" in text  # the one SR cluster of the constructed front
    # no quick sweep in the folder: the hypervolume's box is this sweep's own, and says so
    assert "Hypervolume of the k0 > 0 runs" in text and "over the runs of this sweep" in text
    assert text.index("Hypervolume") < text.index("CPU-scale sketch")
    # the library arm's sweep is another experiment: the same records count none of its 90
    shown.clear()
    sections.paper_front(tmp_path, "multimnist", profile="library")
    assert "0 of 90 trained" in shown[0][1]


def test_the_hypervolumes_of_the_paper_and_quick_sweeps_share_one_box(tmp_path, shown):
    _write(tmp_path, paper_sweep(39))
    # a quick sweep whose front is the paper one's, every objective doubled: it dominates less of the box
    quick = paper_sweep(39, profile="library", preset="quick")
    quick = [
        replace(r, metrics=replace(r.metrics, train_objectives=[2 * x for x in r.metrics.train_objectives]))
        for r in quick
    ]
    _write(tmp_path, quick, "quick")
    sections.paper_front(tmp_path, "multimnist")
    line = next(t for kind, t in shown if kind == "md" and "Hypervolume" in t)
    assert "runs of both sweeps" in line
    paper, sketch = (float(line.split(f"{p} preset ")[1][:5]) for p in ("paper", "quick"))
    assert 0 < sketch < paper < 1
