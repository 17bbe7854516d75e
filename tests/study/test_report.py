import hashlib
from dataclasses import replace

import pytest

from mdmtn.core.config import make_config
from mdmtn.records.schema import RunRecord
from mdmtn.study.report import (
    cluster_table,
    markdown_table,
    pareto_runs,
    provenance,
    runs_table,
    sweep_runs,
    table_rows,
)


def rec(model, k, objectives, accs, method="wc_al", seed=0, sr=10.0, **overrides):
    cfg = (
        make_config("multimnist", model, k, "quick", seed, **overrides).to_dict()
        if method == "wc_al"
        else dict(dataset="multimnist", model=model, method=method, k=list(k), seed=seed, preset="quick")
    )
    return RunRecord.from_dict(
        dict(
            status="ok",
            key=hashlib.sha256(f"{model}{k}{seed}{method}{overrides}".encode()).hexdigest()[:16],  # a key's form
            config=cfg,
            metrics=dict(
                train_objectives=list(objectives),
                test_acc=list(accs),
                test_acc_mean=sum(accs) / 2,
                val_acc=list(accs),
                val_acc_mean=sum(accs) / 2,
                SR=sr,
                CR=1.5,
                PS=1.1,
            ),
            data=dict(n_train=10, n_val=5, n_test=5),
            wall_time_s=1.0,
            machine=dict(processor="x", cpu_count=2, device="cpu", mdmtn="0"),
        )
    )


def test_sparse_row_is_best_test_accuracy_among_pareto_optimal_runs():
    a = rec("mdmtn", (0.01, 0.5, 0.49), (1, 1, 1), (0.90, 0.90))
    b = rec("mdmtn", (0.01, 0.2, 0.79), (2, 2, 2), (0.99, 0.99))  # dominated by a: excluded although best
    c = rec("mdmtn", (0.001, 0.2, 0.799), (0.5, 3, 1), (0.95, 0.93))
    d = rec("mdmtn", (0.0, 0.5, 0.5), (0, 1, 1), (0.97, 0.97))
    assert [r.key for r in pareto_runs([a, b, c])] == [a.key, c.key]
    rows = {(r["arch"], r["method"]): r for r in table_rows([a, b, c, d], "multimnist")}
    assert rows[("mdmtn", "ours-sparse")]["ours"]["k"] == (0.001, 0.2, 0.799)
    assert rows[("mdmtn", "ours-dense")]["ours"]["k"] == (0.0, 0.5, 0.5)
    assert rows[("hps", "ours-sparse")]["ours"] is None


def test_baseline_rows_are_mean_and_std_over_seeds():
    runs = [
        rec("hps", (0.0, 0.5, 0.5), (0, 1, 1), (a, a), method="mgda", seed=s) for s, a in enumerate([0.9, 0.8, 0.7])
    ]
    row = [r for r in table_rows(runs, "multimnist") if r["method"] == "mgda" and r["arch"] == "hps"][0]
    m, s = row["ours"]["avg"]
    assert m == pytest.approx(80.0) and s == pytest.approx(10.0)
    assert row["ours"]["seeds"] == [0, 1, 2]
    text = markdown_table(table_rows(runs, "multimnist"), "multimnist")
    assert "97.26 / " in text and "96.580 / 80.000 ± 10.000" in text and "not run" in text


def test_provenance_and_runs_table():
    r = rec("hps", (0.0, 0.5, 0.5), (0, 1, 1), (0.9, 0.8))
    assert "CPU-scale" in provenance([r]) and "quick" in provenance([r])
    assert "No run records" in provenance([])
    amd = replace(r, machine=dict(r.machine, cpu_model="AMD EPYC"))
    intel = replace(r, machine=dict(r.machine, cpu_model="Intel Xeon"))
    assert "machine(s): AMD EPYC, 2 CPUs, cpu (2 runs); Intel Xeon, 2 CPUs, cpu (1 run);" in provenance(
        [amd, intel, amd]
    )
    assert "machine(s): x, 2 CPUs, cpu (1 run);" in provenance([r])  # an old record without cpu_model
    zen4 = replace(r, machine=dict(r.machine, cpu_model="AMD EPYC", cpu_isa="AVX512"))
    assert "machine(s): AMD EPYC, 2 CPUs, cpu (1 run); AMD EPYC, AVX512, 2 CPUs, cpu (1 run);" in provenance(
        [amd, zen4]
    )
    assert "90.00 / 80.00 / 85.00" in runs_table([r]) and "| ours HPS | (0, 0.5, 0.5) | default | 0 |" in runs_table(
        [r]
    )


def test_sweep_runs_leave_out_switch_variants_and_front_study_runs():
    """Fronts and tables compare default-config runs only: a switch variant or an App. B run that
    dominates the sweep must not become the table's sparse row."""
    a = rec("mdmtn", (0.01, 0.5, 0.49), (1, 1, 1), (0.90, 0.90))
    variant = rec("mdmtn", (0.01, 0.5, 0.49), (0.5, 0.5, 0.5), (0.99, 0.99), prox_mode="head")
    study = rec("mdmtn", (0.01, 0.2, 0.79), (0.4, 0.4, 0.4), (0.99, 0.99), init_from="0123456789abcdef")
    base = rec("mgda", (0.0, 0.5, 0.5), (0, 1, 1), (0.9, 0.9), method="mgda")
    assert [r.key for r in sweep_runs([a, variant, study, base])] == [a.key]
    rows = {(r["arch"], r["method"]): r for r in table_rows([a, variant, study], "multimnist")}
    assert rows[("mdmtn", "ours-sparse")]["ours"]["k"] == (0.01, 0.5, 0.49)


def test_cluster_table_groups_by_sparsity():
    runs = [rec("mdmtn", (0.01, 0.5, 0.49), (1, 1, 1), (0.9, 0.9), sr=s) for s in (10.0, 10.05, 50.0)]
    text = cluster_table(runs)
    assert text.count("\n") == 3  # header, rule, two clusters
    assert "| 2 | 10.0% | 10.0–10.1% | 90.00% |" in text and "| 1 | 50.0% | 50.0–50.0% |" in text


def test_seed_check_groups_reruns_of_the_selected_config_only():
    import numpy as np

    from mdmtn.core.config import make_config
    from mdmtn.study.report import seed_check, seed_check_markdown

    def rec(seed, avg, sr, **kw):
        cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "quick", seed, **kw)
        return RunRecord.from_dict(
            dict(
                status="ok",
                key=f"{cfg.key()}",
                config=cfg.to_dict(),
                wall_time_s=1.0,
                metrics=dict(test_acc=[avg, avg], test_acc_mean=avg, SR=sr, CR=1.0, PS=1.0),
            )
        )

    chosen = rec(0, 0.95, 50.0)
    reruns = [
        rec(1, 0.93, 48.0),
        rec(2, 0.92, 47.0),
        rec(3, 0.99, 10.0, lr=5e-4),  # another config: not a re-run
        replace(rec(0, 0.10, 0.0), key="duplicate-of-seed-0"),
    ]  # the same seed again: not a re-run
    rows = [
        dict(arch="mdmtn", method="ours-sparse", ours=dict(keys=[chosen.key])),
        dict(arch="mdmtn", method="mgda", ours=dict(keys=["x"])),  # baselines are not checked
        dict(arch="hps", method="ours-dense", ours=None),
    ]  # no selected run
    (c,) = seed_check(rows, [chosen] + reruns, reruns)
    assert c["selected"]["avg"][0] == pytest.approx(95.0)
    assert c["all"]["seeds"] == [0, 1, 2]
    assert c["all"]["avg"][0] == pytest.approx(np.mean([95, 93, 92]))
    assert c["all"]["avg"][1] == pytest.approx(np.std([95, 93, 92], ddof=1))
    assert c["all"]["SR"][0] == pytest.approx(np.mean([50, 48, 47]))
    assert "± " in seed_check_markdown([c])
    old = replace(chosen, config={k: v for k, v in chosen.config.items() if k != "scalarization"})
    (c_old,) = seed_check(rows, [old] + reruns, reruns)  # a record from before a field existed still matches
    assert c_old["all"]["seeds"] == [0, 1, 2]
    (c0,) = seed_check(rows, [chosen], [])
    assert c0["all"] is None and "No re-runs" in seed_check_markdown([c0])


def test_runs_table_labels_methods_variants_and_front_studies():
    from mdmtn.core.config import make_config
    from mdmtn.study.report import run_label

    base = rec("mdmtn", (0.001, 0.2, 0.799), (1, 1, 1), (0.9, 0.9))
    cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "quick", 0, cap_ramp=False)
    variant = replace(base, config=cfg.to_dict(), key=cfg.key())
    study = replace(base, config=dict(base.config, init_from="04bba69f07a77f43"))
    mg = rec("hps", (0.001, 0.2, 0.799), (0, 1, 1), (0.9, 0.8), method="mgda", seed=2)
    mg = replace(mg, config=make_config("multimnist", "hps", (0.001, 0.2, 0.799), "quick", 2, method="mgda").to_dict())
    assert run_label(base) == ("ours", "") and run_label(variant) == ("ours", "cap_ramp=False")
    assert run_label(study) == ("ours", "front study from 04bba69f") and run_label(mg) == ("MGDA-UB", "")
    table = runs_table([mg, variant, base])
    assert "| MGDA-UB HPS | – | default | 2 |" in table  # baselines carry no k
    assert table.index("| ours MDMTN | (0.001, 0.2, 0.799) | cap_ramp=False") > table.index(
        "| ours MDMTN | (0.001, 0.2, 0.799) | default"
    )


def test_front_panel_counts_the_pareto_set_beside_the_papers():
    from mdmtn.study.report import front_caption, front_panel

    a = rec("mdmtn", (0.01, 0.5, 0.49), (1, 1, 1), (0.90, 0.90))
    b = rec("mdmtn", (0.01, 0.2, 0.79), (2, 2, 2), (0.99, 0.99))  # dominated by a
    c = rec("mdmtn", (0.001, 0.2, 0.799), (0.5, 3, 1), (0.95, 0.93))
    d = rec("mdmtn", (0.0, 0.5, 0.5), (0, 1, 1), (0.97, 0.97))
    e = rec("mdmtn", (0.0, 0.4, 0.6), (0, 2, 2), (0.97, 0.97))  # dominated in (L1, L2) by d
    v = rec("mdmtn", (0.01, 0.5, 0.49), (0, 0, 0), (0.9, 0.9), cap_ramp=False)  # a switch variant: not in a sweep
    p = front_panel([a, b, c, d, e, v], "multimnist", "mdmtn")
    assert [r.key for r in p["front"]] == [a.key, c.key] and len(p["sparse"]) == 3
    assert [r.key for r in p["dense_front"]] == [d.key] and p["vectors"] == 5 and p["paper_count"] == 39
    cap = front_caption(p, "multimnist", "mdmtn")
    assert "shows 39 Pareto-optimal" in cap and "SR ≈ 53%" in cap
    assert (
        "Ours: 2 Pareto-optimal of 3 k0 > 0 runs, SR clusters at 10%, accuracies 90.00–94.00% (k0 = 0 runs: 97.00–97.00%)"
        in cap
    )
    assert "from 5 preference vectors" in cap and "kind of CPU" not in cap
    # one model name, two vector ISAs: the caption tells the runs apart
    a2, c2 = (replace(x, machine=dict(x.machine, cpu_model="AMD EPYC", cpu_isa="AVX2")) for x in (a, c))
    b2 = replace(b, machine=dict(b.machine, cpu_model="AMD EPYC", cpu_isa="AVX512"))
    cap = front_caption(front_panel([a2, b2, c2, d, e], "multimnist", "mdmtn"), "multimnist", "mdmtn")
    assert "more than one kind of CPU" in cap and "AMD EPYC, AVX2 (2 runs), AMD EPYC, AVX512 (1 run)" in cap
    assert front_panel([a], "multimnist", "hps")["paper_count"] is None
    # a vector outside the paper's set: in the figure, and the paper-only count beside it
    x = rec("mdmtn", (0.005, 0.6, 0.395), (0.1, 0.1, 0.1), (0.9, 0.9))
    p = front_panel([a, b, c, d, e, x], "multimnist", "mdmtn")
    assert len(p["front"]) == 1 and len(p["paper_front"]) == 2
    assert "Ours: 1 Pareto-optimal of 4 k0 > 0 runs (2 of 3 among the paper's vectors alone" in front_caption(
        p, "multimnist", "mdmtn"
    )


def test_pf_study_panel_starts_from_the_table_selection_and_counts_the_papers_vectors():
    from mdmtn.study.report import pf_study_caption, pf_study_panel

    src = rec("mdmtn", (0.001, 0.2, 0.799), (0.5, 1, 1), (0.95, 0.95), sr=50.0)
    other = rec("mdmtn", (0.01, 0.5, 0.49), (0.4, 2, 2), (0.90, 0.90))
    dense = rec("mdmtn", (0.0, 0.5, 0.5), (0, 1, 1), (0.97, 0.97))
    study = [
        rec("mdmtn", k, (0.5, l1, l2), (0.9, 0.9), init_from=src.key)
        for k, l1, l2 in (
            ((0.001, 0.5, 0.499), 1.0, 2.0),
            ((0.001, 0.7, 0.299), 2.0, 1.0),
            ((0.001, 0.9, 0.099), 2.5, 2.5),
        )
    ]
    foreign = rec(
        "mdmtn", (0.001, 0.5, 0.499), (0.5, 0.1, 0.1), (0.9, 0.9), init_from="fedcba9876543210"
    )  # another source run
    p = pf_study_panel([src, other, dense, *study, foreign], "multimnist", "mdmtn")
    assert p["source"].key == src.key  # best test accuracy among the Pareto-optimal sparse runs
    assert [r.key for r in p["study"]] == [r.key for r in study] and p["planned"] == 18
    assert len(p["study_front"]) == 2 and [r.key for r in p["dense"]] == [dense.key]
    cap = pf_study_caption(p, "multimnist", "mdmtn", "b")
    assert "Ours: 3 of the 18 vectors (2 on the front)" in cap
    # medians of L1 + L2: study (3, 3, 5) -> 3, dense (2) -> 2
    assert "Median L1 + L2 (last-epoch training loss): 3.00e+00 for the study, 2.00e+00 for the k0 = 0 runs" in cap
    assert pf_study_panel([dense], "multimnist", "mdmtn")["source"] is None


def test_table_says_from_how_many_vectors_each_selection_was_made():
    a = rec("mdmtn", (0.01, 0.5, 0.49), (1, 1, 1), (0.90, 0.90))
    b = rec("mdmtn", (0.01, 0.2, 0.79), (2, 2, 2), (0.99, 0.99))  # dominated by a
    c = rec("mdmtn", (0.001, 0.2, 0.799), (0.5, 3, 1), (0.95, 0.93))
    d = rec("mdmtn", (0.0, 0.5, 0.5), (0, 1, 1), (0.97, 0.97))
    rows = {(r["arch"], r["method"]): r for r in table_rows([a, b, c, d], "multimnist")}
    assert (
        rows[("mdmtn", "ours-sparse")]["ours"]["from_vectors"],
        rows[("mdmtn", "ours-sparse")]["ours"]["from_pareto"],
    ) == (3, 2)
    assert rows[("mdmtn", "ours-dense")]["ours"]["from_vectors"] == 1
    text = markdown_table(list(rows.values()), "multimnist")
    assert "best of 2 Pareto-optimal of 3 vectors" in text and "best of 1 vector |" in text


def _front_claim(cid):
    from mdmtn.study.verdicts import load_registry

    return next(c for c in load_registry() if c["id"] == cid)


def test_front_measures_use_one_full_sweep_of_the_papers_vectors():
    from mdmtn.core.paper import paper_preference_vectors
    from mdmtn.study.frontmeasures import front_measure
    from mdmtn.study.verdicts import judge_front

    vs = paper_preference_vectors()
    sparse = [k for k in vs if k[0] > 0]

    def sweep(large_sr, small_sr, n_front):
        out = [rec("mdmtn", k, (0, 1 + i, 1 + i), (0.9, 0.9)) for i, k in enumerate(k for k in vs if k[0] == 0)]
        for i, k in enumerate(sparse):
            if i < n_front:  # on the L1 + L2 = 1 trade-off: mutually non-dominated
                t = (i + 1) / (n_front + 1)
                out.append(rec("mdmtn", k, (0.5, t, 1 - t), (0.9, 0.9), sr=large_sr if i % 2 else small_sr))
            else:  # dominated by every front point
                out.append(rec("mdmtn", k, (0.9, 2, 2), (0.9, 0.9), sr=10.0))
        return out

    count = _front_claim("fig2.pareto-count")
    text = lambda vals: {s: v.text for s, v in vals.items()}  # noqa: E731
    assert text(front_measure(sweep(53.0, 25.0, 39), count)[0]) == {0: "39 of 71"}
    assert front_measure(sweep(53.0, 25.0, 39), count)[0][0].value == 39
    assert text(front_measure(sweep(25.0, 53.0, 21), count)[0]) == {0: "21 of 71"}
    partial, note = front_measure(sweep(53.0, 25.0, 39)[:50], count)
    assert partial == {} and "50 of the paper's 90 vectors" in note
    assert judge_front(count, []).verdict == "not yet"
    # one sweep seed is one draw: inconclusive whatever the count
    assert judge_front(count, sweep(53.0, 25.0, 39)).verdict == "inconclusive"
    # re-runs of a few configs with other seeds (results/quick/seeds/) are not part of the seed-0 sweep's front
    reruns = [rec("mdmtn", k, (0.1, 0.1, 0.1), (0.9, 0.9), seed=s, sr=40.0) for s in (1, 2) for k in sparse[:2]]
    assert text(front_measure(sweep(53.0, 25.0, 39) + reruns, count)[0]) == {0: "39 of 71"}
    # a vector outside the paper's 90 that dominates the whole front is drawn but not counted
    intruder = rec("mdmtn", (0.005, 0.6, 0.395), (0, 0, 0), (0.9, 0.9), sr=53.0)
    assert text(front_measure(sweep(53.0, 25.0, 39) + [intruder], count)[0]) == {0: "39 of 71"}
    gain = front_measure(sweep(53.0, 25.0, 39), _front_claim("fig2.sr53-increases-performance"))[0][0].text
    assert gain.startswith("cluster at SR 53.0% (19 points)") and gain.endswith("+0.00 points")


def test_all_at_sr_claim_counts_points_near_the_level_although_the_grouping_merges_levels():
    from mdmtn.core.paper import paper_preference_vectors
    from mdmtn.objectives.pareto import sparsity_clusters
    from mdmtn.study.frontmeasures import front_measure

    out = []
    for i, k in enumerate(paper_preference_vectors()):
        r = rec(
            "mdmtn", k, (0.5 if k[0] else 0, 1 + i, 100 - i), (0.7, 0.7), sr=(29.83 if i % 3 else 19.87) if k[0] else 0
        )
        r = replace(r, config=make_config("cifar10mnist", "mdmtn", k, "quick", 0).to_dict())
        out.append(r)
    srs = [r.metrics.SR for r in out if r.config["k"][0] > 0]
    assert len(set(sparsity_clusters(srs, 0.1).tolist())) == 1  # the authors' grouping: one cluster of both levels
    near = sum(abs(x - 29) <= 5 for x in srs)
    (value,) = front_measure(out, _front_claim("fig3.all-sr29"))[0].values()
    assert value.text == f"{near} of {len(srs)} within 5 points of 29%" and value.value == near / len(
        srs
    )  # every k0 > 0 point is on this front
    from mdmtn.study.report import front_caption, front_panel

    p = front_panel(out, "cifar10mnist", "mdmtn")
    cap = front_caption(p, "cifar10mnist", "mdmtn")
    assert "(19.9–29.8%)" in cap and f"{len(srs)} Pareto points against the paper's 35 (+{len(srs) - 35})" in cap
    # every synthetic run has 70% mean accuracy: 74.46 - 70 below the paper's lowest, 77.65 - 70 below its highest
    assert "Pareto accuracies 4.46 (lowest) to 7.65 (highest) points below the paper's" in cap
    assert "k0 = 0 accuracies 5.69 (lowest) to 7.22 (highest)" in cap
    assert "Ours trained 12 epochs on 10 training images, the paper's schedule 39 epochs on all of them." in cap


def test_variant_means_table_averages_each_variants_runs_and_marks_the_missing():
    from mdmtn.study.report import variant_means_table

    a = rec("mdmtn", (0.001, 0.2, 0.799), (1, 1, 1), (0.9, 0.8), sr=40.0)
    b = rec("mdmtn", (0.001, 0.2, 0.799), (1, 1, 1), (0.7, 0.6), sr=60.0, seed=1)
    table = variant_means_table([("defaults", [a, b]), ("prox_mode=head", [])])
    # by hand: mean accuracies 85% and 65% -> 75.00%; SR (40 + 60) / 2 = 50.00%; CR 1.5, PS 1.1
    assert "| defaults | 2 | 75.00% | 50.00% | 1.50 | 1.10 |" in table
    assert "| prox_mode=head | not run at this preset | | | | |" in table
