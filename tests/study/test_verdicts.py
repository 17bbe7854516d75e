"""The verdict engine against independent truth: SciPy's t distribution and t tests, and hand-built
records whose verdict is known by construction."""

import math
from dataclasses import replace

import pytest
from paper_sweep import paper_sweep as _paper_sweep
from paper_sweep import record
from scipy import stats

from mdmtn.core.config import make_config
from mdmtn.study.verdicts import (
    decide,
    difference_interval,
    judge_match,
    judge_order,
    mean_interval,
    t_cdf,
    t_quantile,
)


@pytest.mark.parametrize("df", [1, 2, 2.7, 4, 9, 30, 200])
@pytest.mark.parametrize("p", [0.025, 0.5, 0.9, 0.975, 0.999])
def test_t_quantile_and_cdf_match_scipy(p, df):
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), abs=1e-7, rel=1e-7)
    assert t_cdf(1.3, df) == pytest.approx(stats.t.cdf(1.3, df), abs=1e-10)


def test_mean_interval_matches_scipy():
    v = [96.1, 96.5, 95.8, 96.9]
    iv = mean_interval(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=sum(v) / 4, scale=stats.sem(v))
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi), abs=1e-9)


def test_paired_and_welch_intervals_match_scipy_tests():
    a = {0: 96.2, 1: 96.9, 2: 96.4}
    b = {0: 95.9, 1: 96.1, 2: 96.3}
    iv = difference_interval(a, b)  # same seeds: paired
    res = stats.ttest_rel(list(a.values()), list(b.values()))
    ci = res.confidence_interval(0.95)
    assert (iv.lo, iv.hi) == pytest.approx((ci.low, ci.high), abs=1e-9) and "paired" in iv.method
    b2 = {3: 95.9, 4: 96.1, 5: 96.3, 6: 95.2}
    iv = difference_interval(a, b2)  # other seeds: Welch
    res = stats.ttest_ind(list(a.values()), list(b2.values()), equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (iv.lo, iv.hi) == pytest.approx((ci.low, ci.high), abs=1e-7) and "Welch" in iv.method


def test_decide_has_four_outcomes():
    from mdmtn.study.verdicts import Interval

    inside, outside, across = Interval(1, 0.5, 1.5, 3, ""), Interval(5, 4, 6, 3, ""), Interval(2, 1.5, 2.5, 3, "")
    assert decide(inside, 0, 2, 3, 3) == "holds"
    assert decide(outside, 0, 2, 3, 3) == "does not hold"
    assert decide(across, 0, 2, 3, 3) == "inconclusive"
    assert decide(inside, 0, 2, 3, 2) == "inconclusive"  # too few runs, however tight
    assert decide(inside, 0, 2, 3, 0) == "not yet"


def _record(cfg, seed, acc, sr=0.0):
    return record(cfg.replace(seed=seed), acc, sr)


CELL = dict(dataset="multimnist", method="wc_al", model="mdmtn", k=[0.001, 0.2, 0.799])


def _claim(**kw):
    c = dict(
        id="x",
        source="s",
        quote="q",
        statistic="s",
        rule="match",
        cell=CELL,
        metric="SR",
        target=57.26,
        tolerance=5.0,
        tolerance_kind="abs",
        preset="paper",
        post_hoc=False,
        registered="x",
    )
    c.update(kw)
    return c


def _book(ds="multimnist"):
    from mdmtn.core.config import profile_overrides
    from mdmtn.study.profiles import BOOK_PROFILE

    return profile_overrides(BOOK_PROFILE, ds)  # the profile the book judges the sparse cells under


def test_match_on_records_built_to_hold_fail_or_not_decide():
    cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "paper", **_book())
    near = [_record(cfg, s, 96.8, sr) for s, sr in enumerate((56.0, 57.5, 58.0))]
    far = [_record(cfg, s, 96.8, sr) for s, sr in enumerate((25.0, 26.0, 25.5))]
    wide = [_record(cfg, s, 96.8, sr) for s, sr in enumerate((25.0, 57.0, 79.0))]
    assert judge_match(_claim(), near).verdict == "holds"
    assert judge_match(_claim(), far).verdict == "does not hold"
    assert judge_match(_claim(), wide).verdict == "inconclusive"
    assert judge_match(_claim(), near[:2]).verdict == "inconclusive"
    assert judge_match(_claim(), []).verdict == "not yet"
    # a switch variant of the cell is not the cell: it is left out
    other = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "paper", **dict(_book(), eta1=50.0))
    assert judge_match(_claim(), [_record(other, s, 96.8, 57.0) for s in range(3)]).verdict == "not yet"


def test_match_reads_a_profile_arm_only_from_that_profile():
    from mdmtn.core.config import profile_overrides

    cfg = make_config(
        "multimnist", "mdmtn", (0.001, 0.2, 0.799), "paper", **profile_overrides("authors-2023", "multimnist")
    )
    recs = [_record(cfg, s, 96.8, 57.0) for s in range(5)]
    assert judge_match(_claim(profile="authors-2023", min_n=5), recs).verdict == "holds"
    assert judge_match(_claim(profile="authors-2023", min_n=5), recs[:4]).verdict == "inconclusive"
    assert judge_match(_claim(profile="library"), recs).verdict == "not yet"  # the library arm has none


def test_order_pairs_by_seed_and_respects_the_papers_direction():
    a_cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "paper", **_book())
    b_cfg = make_config("multimnist", "hps", (0.0001, 0.5, 0.4999), "paper", **_book())
    recs = [_record(a_cfg, s, 96.8 + 0.01 * s) for s in range(3)] + [
        _record(b_cfg, s, 96.0 + 0.01 * s) for s in range(3)
    ]
    a = dict(dataset="multimnist", method="wc_al", model="mdmtn", sparse=True)
    b = dict(dataset="multimnist", method="wc_al", model="hps", sparse=True)
    c = dict(_claim(rule="order"), a=a, b=b, expect="a > b")
    v = judge_order(c, recs)
    assert v.verdict == "holds" and "paired" in v.interval.method and v.interval.mean == pytest.approx(0.8)
    assert judge_order(dict(c, expect="a < b"), recs).verdict == "does not hold"
    assert math.isclose(v.interval.lo, v.interval.hi)  # identical differences: no spread


def test_a_side_with_settings_takes_only_runs_with_them():
    """cm.cap-reason: the cell with its own cap (a) against the same cell with another cap (b)."""
    cell = ("cifar10mnist", "mdmtn", (0.01, 0.8, 0.19), "paper")
    own = make_config(*cell, **_book("cifar10mnist"))
    wide = make_config(*cell, **dict(_book("cifar10mnist"), eta2=0.8))
    a = dict(dataset="cifar10mnist", method="wc_al", model="mdmtn", sparse=True)
    c = dict(_claim(rule="order"), a=a, b=dict(a, set={"eta2": 0.8}), expect="a > b")
    recs = [_record(own, s, 75.0 + 0.1 * s) for s in range(3)]
    assert judge_order(c, recs).verdict == "not yet"  # no run with the wider cap
    one = judge_order(c, recs + [_record(wide, 0, 66.0)])
    assert one.verdict == "inconclusive" and "no 95% CI" in one.summary  # one run: no interval is shown
    recs += [_record(wide, s, 74.0 + 0.12 * s) for s in range(3)]
    v = judge_order(c, recs)
    assert v.verdict == "holds" and v.n == "3 / 3" and v.interval.mean == pytest.approx(0.98)
    assert judge_order(dict(c, b=a), recs[:3]).interval.mean == 0  # without set: the cell itself


# -- the root-cause study's decision rule, on verdicts whose answer is known ---------------------------


def _decision(holds: dict):
    """judge_decision on hand-made SR verdicts for the authors' profiles and hand-made library records:
    ``holds[profile]`` is how many of the four cells hold."""
    from mdmtn.core.paper import PAPER_RESULTS
    from mdmtn.study.verdicts import Interval, Verdict, judge_decision

    done, records = [], []
    sparse = [key for key in PAPER_RESULTS if key[1] == "wc_al" and len(key) > 3 and key[3][0] > 0]
    order = [("multimnist", "mdmtn"), ("multimnist", "hps"), ("cifar10mnist", "mdmtn"), ("cifar10mnist", "hps")]
    for i, (ds, model) in enumerate(order):
        key = next(k for k in sparse if k[0] == ds and k[2] == model)
        sr = PAPER_RESULTS[key]["SR"] + (0.0 if i < holds["library"] else 20.0)
        for seed in range(3):
            cfg = make_config(ds, model, key[3], "paper", seed)
            records.append(_record(cfg, seed, PAPER_RESULTS[key]["acc"][2], sr))
    for profile, n_hold in holds.items():
        for i, (ds, model) in enumerate((("mm", "mdmtn"), ("mm", "hps"), ("cm", "mdmtn"), ("cm", "hps"))):
            cid = f"{ds}.{model}.sparse.SR" if profile == "library" else f"study.{ds}.{model}.{profile}.SR"
            cell = dict(
                dataset="multimnist" if ds == "mm" else "cifar10mnist",
                method="wc_al",
                model=model,
                k=[0.001, 0.2, 0.799]
                if (ds, model) == ("mm", "mdmtn")
                else [0.0001, 0.5, 0.4999]
                if ds == "mm"
                else [0.01, 0.8, 0.19]
                if model == "mdmtn"
                else [0.1, 0.6, 0.3],
            )
            claim = _claim(id=cid, cell=cell, min_n=5 if profile != "library" else 3, target=57.26)
            if profile == "library":
                key = next(k for k in sparse if k[0] == cell["dataset"] and k[2] == model)
                claim["target"] = PAPER_RESULTS[key]["SR"]
            done.append(
                Verdict(claim, "holds" if i < n_hold else "does not hold", "", interval=Interval(0.0, 0.0, 0.0, 5, "t"))
            )
    return judge_decision(dict(id="study.decision"), records, done).summary


def test_the_decision_picks_a_profile_only_when_it_scores_best_alone():
    assert _decision({"library": 1, "authors-2023": 3, "authors-head": 2}).startswith("choice: authors-2023.")
    assert _decision({"library": 2, "authors-2023": 2, "authors-head": 1}).startswith("choice: library.")
    assert _decision({"library": 0, "authors-2023": 0, "authors-head": 0}).startswith("choice: library.")
    tie = _decision({"library": 1, "authors-2023": 2, "authors-head": 2})
    assert tie.startswith("choice: library.") and "tie" in tie and "post hoc" in tie


def test_above_combines_cells_built_to_hold_fail_or_not_decide():
    """fig7-style rules: per cell the t interval of a per-run statistic against a bound, then all
    cells together (not yet while a cell lacks data; one cell refuting refutes the claim)."""
    from mdmtn.core.paper import PAPER_RESULTS
    from mdmtn.study.verdicts import judge_above

    def cells(ps_by_cell, mon_minus_shared=None):
        recs = []
        for (ds, model), values in ps_by_cell.items():
            k = next(key[3] for key in PAPER_RESULTS if key[:3] == (ds, "wc_al", model) and key[3][0] > 0)
            cfg = make_config(ds, model, k, "paper", **_book(ds))
            for s, v in enumerate(values):
                r = _record(cfg, s, 90.0, 30.0)
                r = replace(r, metrics=replace(r.metrics, PS=v))
                if mon_minus_shared is not None:  # monitors 40% sparse, shared 40 - d %
                    d = mon_minus_shared[s]
                    rows = {"shared.fc.weight": [100, round(40 - d), 100], "monitors.0.fc.weight": [100, 40, 61]}
                    r.details["layer_rows"] = dict(rows=rows, growl=list(rows))
                recs.append(r)
        return recs

    claim = _claim(rule="above", statistic_of="PS", above=1.0, models=["hps", "mdmtn"])
    four = [(ds, m) for ds in ("multimnist", "cifar10mnist") for m in ("hps", "mdmtn")]
    assert judge_above(claim, cells({c: (1.2, 1.3, 1.25) for c in four})).verdict == "holds"
    one_wide = {c: (1.2, 1.3, 1.25) for c in four} | {four[0]: (0.9, 1.5, 1.1)}
    assert judge_above(claim, cells(one_wide)).verdict == "inconclusive"
    one_below = {c: (1.2, 1.3, 1.25) for c in four} | {four[1]: (0.99, 0.995, 0.993)}
    assert judge_above(claim, cells(one_below)).verdict == "does not hold"
    assert judge_above(claim, cells({c: (1.2, 1.3, 1.25) for c in four[:3]})).verdict == "not yet"
    assert judge_above(claim, cells({c: (1.2, 1.3) for c in four})).verdict == "inconclusive"  # n = 2
    # the task-specific minus shared SR, from each record's per-layer counts
    mdm = [c for c in four if c[1] == "mdmtn"]
    claim = _claim(rule="above", statistic_of="monitor_minus_shared", above=0.0, models=["mdmtn"])
    assert judge_above(claim, cells({c: (1, 1, 1) for c in mdm}, (5, 6, 7))).verdict == "holds"
    assert judge_above(claim, cells({c: (1, 1, 1) for c in mdm}, (-5, -6, -7))).verdict == "does not hold"
    assert judge_above(claim, cells({c: (1, 1, 1) for c in mdm})).verdict == "not yet"  # no layer_rows


# -- front rules decide: each verdict on constructed paper-preset sweeps ------------------------------


@pytest.mark.parametrize(
    "n_front, verdict",
    [(39, "holds"), (33, "holds"), (29, "inconclusive"), (20, "does not hold"), (60, "does not hold")],
)
def test_the_paper_pareto_count_rule_gives_each_verdict_from_one_sweep(n_front, verdict):
    from mdmtn.study.verdicts import judge_front, load_registry

    c = next(x for x in load_registry() if x["id"] == "fig2.paper.pareto-count")
    recs = _paper_sweep(n_front)
    v = judge_front(dict(c, profile="authors-2023"), recs)
    assert v.verdict == verdict and f"{n_front} of 71" in v.summary and "n = 1 sweep seed" in v.summary
    # the same sweep is no run of the library arm: not yet there
    assert judge_front(dict(c, profile="library"), recs).verdict == "not yet"
    assert judge_front(dict(c, profile="authors-2023"), recs[:60]).verdict == "not yet"  # a partial sweep


@pytest.mark.parametrize(
    "sr, front_acc, verdict",
    [
        (53.0, 0.975, "holds"),
        (53.0, 0.9605, "inconclusive"),
        (53.0, 0.95, "does not hold"),
        (30.0, 0.975, "does not hold"),
    ],
)
def test_the_sr53_rule_needs_the_cluster_near_53_and_a_gain(sr, front_acc, verdict):
    from mdmtn.study.verdicts import judge_front, load_registry

    c = next(x for x in load_registry() if x["id"] == "fig2.paper.sr53-increases-performance")
    v = judge_front(dict(c, profile="authors-2023"), _paper_sweep(39, sr=sr, front_acc=front_acc))
    assert v.verdict == verdict, v.summary


@pytest.mark.parametrize("dataset, fig", [("multimnist", "fig2"), ("cifar10mnist", "fig3")])
def test_every_paper_preset_front_claim_decides_on_a_complete_sweep(dataset, fig):
    """Issue 30's condition: once a figure's 90 paper-preset runs exist, each of its registered
    claims gets holds, does not hold or inconclusive from its rule, never 'not yet' or 'too few'."""
    from mdmtn.study.verdicts import judge_front, load_registry

    claims = [c for c in load_registry() if c["id"].startswith(f"{fig}.paper.")]
    assert claims
    recs = _paper_sweep(35, sr=29.0, dataset=dataset)
    for c in claims:
        v = judge_front(dict(c, profile="authors-2023"), recs)
        assert v.verdict in ("holds", "does not hold", "inconclusive"), (c["id"], v.summary)
        assert "too few" not in v.summary, (c["id"], v.summary)
        assert v.keys == sorted(r.key for r in recs)  # the verdict names the 90 records it read


def test_a_front_verdict_says_which_of_its_runs_were_seen_before_its_rule():
    """Issue 30: Table 1's seed-0 sparse cell and the authors-2023 dense cell are points of the
    Fig. 2 sweep, trained before its rules; the verdict says so, in the arm whose sweep holds them."""
    from mdmtn.study.verdicts import judge_front, load_registry

    (c,) = [c for c in load_registry() if c["id"] == "fig2.paper.pareto-count"]
    assert c["seen_before"] == ["6868558f15a2111a", "ce26149167cf3a45"]
    recs = _paper_sweep(39)
    assert set(c["seen_before"]) <= {r.key for r in recs}  # the constructed sweep has the real configs
    v = judge_front(dict(c, profile="authors-2023"), recs)
    assert "; 2 of its 90 runs (6868558f, ce261491) were trained and seen before the rule was registered: " in v.summary
    assert v.summary.endswith(c["why_seen_before"])
    # the library arm's sweep is other configs: none of its runs was seen before
    lib = judge_front(dict(c, profile="library"), _paper_sweep(39, profile="library"))
    assert lib.verdict == "holds" and "seen before" not in lib.summary


def test_front_status_bands_by_hand():
    from mdmtn.study.verdicts import front_status

    count = dict(measure="pareto_count", target=39, tolerance=0.2, fail_tolerance=0.4, tolerance_kind="rel")
    assert [front_status(count, v) for v in (39, 31.2, 31, 24, 23, 55)] == ["in", "in", "near", "near", "out", "out"]
    old = dict(measure="pareto_count", target=39, tolerance=0.25, tolerance_kind="rel")  # no fail band: in or out
    assert [front_status(old, v) for v in (30, 29)] == ["in", "out"]
    rng = dict(measure="acc_range", target=[74.46, 77.65], tolerance=1.0, fail_tolerance=2.0)
    assert front_status(rng, (74.0, 77.0)) == "in" and front_status(rng, (72.9, 77.6)) == "near"
    assert front_status(rng, (74.4, 80.0)) == "out"
    share = dict(measure="supported_share")  # threshold from the entry's text (0.8), no fail band
    assert front_status(share, 0.8) == "in" and front_status(share, 0.79) == "out"
