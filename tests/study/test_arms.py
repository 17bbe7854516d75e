"""Both arms side by side, and the way out of "inconclusive": the seeds that would decide a claim
are checked against a brute-force search with SciPy's t quantiles, and a seeds plan on hand-built
records adds exactly the runs its claims need."""

import math

import pytest
from scipy import stats

from mdmtn.core.config import make_config
from mdmtn.records.schema import RunRecord
from mdmtn.study.arms import is_paper_claim, lean, seeds_plan, seeds_to_decide, way_out_rows
from mdmtn.study.verdicts import Interval, Verdict, judge_match


def _verdict(mean, se, n, region, verdict="inconclusive"):
    claim = dict(id="x", rule="match", family="table cell", quote="q", source="s", statistic="s", registered="r")
    iv = Interval(mean, mean - 1, mean + 1, n, "t", se, n - 1)
    return Verdict(claim, verdict, "", n=str(n), interval=iv, region=region)


def _brute(mean, se, n0, lo, hi, cap=50):
    for n in range(n0, cap + 1):
        h = stats.t.ppf(0.975, n - 1) * se * math.sqrt(n0 / n)
        if (mean - h >= lo and mean + h <= hi) or mean + h < lo or mean - h > hi:
            return max(n, 3)
    return cap + 1


@pytest.mark.parametrize("mean", [0.05, 0.3, 1.0, 2.5, -0.4])
@pytest.mark.parametrize("se, n0", [(0.5, 3), (0.2, 5), (1.5, 3), (0.05, 2)])
def test_seeds_to_decide_agrees_with_a_brute_force_search(mean, se, n0):
    v = _verdict(mean, se, n0, (0.0, math.inf))
    assert seeds_to_decide(v) == _brute(mean, se, n0, 0.0, math.inf)
    band = _verdict(mean, se, n0, (-0.5, 0.5))
    assert seeds_to_decide(band) == _brute(mean, se, n0, -0.5, 0.5)


def test_lean_is_the_side_of_the_boundary_the_estimate_is_on():
    assert lean(_verdict(0.2, 1, 3, (0.0, math.inf))) == "holds"
    assert lean(_verdict(-0.2, 1, 3, (0.0, math.inf))) == "does not hold"
    assert lean(_verdict(0.2, 1, 1, (0.0, math.inf))) is None  # one run: no spread, nothing to lean on


def _rec(seed, acc, wall=100.0, k=(0.0, 0.35, 0.65)):
    cfg = make_config("multimnist", "mdmtn", k, "paper", seed)
    return RunRecord.from_dict(
        dict(
            status="ok",
            key=cfg.key(),
            config=cfg.to_dict(),
            metrics=dict(test_acc=[acc / 100] * 2, test_acc_mean=acc / 100, SR=0.0),
            wall_time_s=wall,
        )
    )


def test_a_seeds_plan_adds_the_lowest_unused_seeds_up_to_what_its_claims_need():
    claim = _claim_dense_avg()
    recs = [_rec(0, 96.70, 90.0), _rec(1, 96.95, 110.0), _rec(4, 96.60, 100.0)]  # seeds 0, 1, 4
    v = judge_match(claim, recs)
    assert v.verdict == "inconclusive" and is_paper_claim(claim)
    need = seeds_to_decide(v)
    assert need == _brute(v.interval.mean, v.interval.se, 3, *v.region)
    chosen, runs = seeds_plan([v], recs, max_seeds=max(need, 3))
    assert [w.claim_id for w in chosen] == ["mm.mdmtn.dense.avg"]
    # seeds 2, 3, 5, ... fill the gaps first; each run costs the side's mean wall time (100 s)
    assert [r.seed for r in runs] == [s for s in (2, 3, 5, 6, 7, 8, 9, 10) if True][: need - 3]
    assert all(r.hours == pytest.approx(100 / 3600) for r in runs)
    assert runs and runs[0].config["k"] == [0.0, 0.35, 0.65] and "seed" not in runs[0].config
    assert way_out_rows([v], recs)[0].extra_runs == need - 3
    # beyond the plan's limit: no runs
    assert seeds_plan([v], recs, max_seeds=need - 1) == ([], [])


def test_run_plan_trains_a_written_plan_as_its_configs_and_resumes(synthetic_data_root, tmp_path, capsys, monkeypatch):
    """A plan as plan-seeds writes it, read back: run-plan trains exactly its (config, seed) pairs, in
    its order; a second call skips them; a plan file that is not one is refused before any work."""
    from mdmtn.study.arms import PlannedRun, plan_configs, plan_toml
    from mdmtn.study.cli import main

    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    want = [
        make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke", 3),
        make_config("multimnist", "stl", (0.0, 0.5, 0.5), "smoke", 4, method="stl"),
    ]
    runs = [PlannedRun({k: v for k, v in c.to_dict().items() if k != "seed"}, c.seed, ("x",), 0.1) for c in want]
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml("library", [], runs, 5, "abc"), encoding="utf-8")
    assert [c.key() for c in plan_configs(plan)] == [c.key() for c in want]
    args = ["run-plan", str(plan), "--no-progress", "--no-checkpoint", "--data-dir", str(synthetic_data_root)]
    out = tmp_path / "o"
    assert main([*args, "--out", str(out)]) == 0 and capsys.readouterr().out.count("[done]") == 2
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(c.key() for c in want)
    assert main([*args, "--out", str(out)]) == 0 and capsys.readouterr().out.count("[skip]") == 2
    # what a plan fixes cannot be given again, and a file that is no plan is one line, exit 2
    assert main([*args, "--out", str(out), "--preset", "paper"]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 2\n", encoding="utf-8")
    assert main(["run-plan", str(bad), "--out", str(out)]) == 2
    assert "not a seeds plan" in capsys.readouterr().err


def test_plan_progress_counts_the_plans_runs_and_checks_they_came_after_it_in_git(tmp_path):
    """A plan committed in a real git repository: its progress counts only its own runs, reads the
    commit that added it, and flags a trained run whose code does not descend from that commit."""
    import subprocess

    from mdmtn.study.arms import PlannedRun, PlanProgress, WayOut, plan_progress, plan_toml, plans_markdown

    def git(*a):
        return subprocess.run(
            ["git", "-C", str(tmp_path), *a], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@t"), git("config", "user.name", "t")
    (tmp_path / "a").write_text("before the plan\n")
    git("add", "a"), git("commit", "-qm", "before")
    older = git("rev-parse", "--short=12", "HEAD")
    side = {k: v for k, v in _rec(0, 96.7).cfg.to_dict().items() if k != "seed"}
    runs = [PlannedRun(side, s, ("mm.mdmtn.dense.avg",), 0.5) for s in (3, 4)]
    chosen = [WayOut("mm.mdmtn.dense.avg", "library", "3", "holds", 5, 2, 1.0)]
    plan = tmp_path / "plans" / "p.toml"
    plan.parent.mkdir()
    plan.write_text(plan_toml("library", chosen, runs, 5, "abc"), encoding="utf-8")
    git("add", "plans"), git("commit", "-qm", "plan")
    after = git("rev-parse", "--short=12", "HEAD")

    def made_at(rec, commit):
        return RunRecord.from_dict(dict(rec.to_dict(), machine=dict(mdmtn_commit=commit)))

    others = [_rec(0, 96.7), _rec(5, 96.9)]  # not the plan's seeds: not counted
    v = judge_match(_claim_dense_avg(), others)
    p = plan_progress(plan, [*others, made_at(_rec(3, 96.8, wall=1800.0), after)], {"library": [v]}, tmp_path)
    assert isinstance(p, PlanProgress) and (p.runs, p.trained, p.before_plan, p.complete) == (2, 1, 0, False)
    assert p.commit == after[:7] or after.startswith(p.commit)
    assert p.hours_spent == pytest.approx(0.5) and p.hours_planned == pytest.approx(1.0)
    assert [(c.claim_id, c.n_then, c.seeds_a_side, c.leaned) for c in p.claims] == [
        ("mm.mdmtn.dense.avg", "3", 5, "holds")
    ]
    assert "1 of 2 runs trained" in plans_markdown([p]) and "not its outcome" in plans_markdown([p])
    done = [made_at(_rec(3, 96.8), after), made_at(_rec(4, 96.6), older)]
    p = plan_progress(plan, done, {"library": [v]}, tmp_path)
    assert (p.trained, p.before_plan, p.complete) == (2, 1, True)
    assert "older than the plan" in plans_markdown([p]) and "are its outcome" in plans_markdown([p])
    assert plan_progress(plan, done, {"library": [v]}, None).commit is None  # no history to read: not guessed


def _claim_dense_avg():
    return dict(
        id="mm.mdmtn.dense.avg",
        rule="match",
        family="table cell",
        quote="q",
        source="Table 1",
        statistic="s",
        registered="r",
        cell=dict(dataset="multimnist", method="wc_al", model="mdmtn", k=[0.0, 0.35, 0.65]),
        metric="avg",
        target=96.744,
        tolerance=0.3,
        tolerance_kind="abs",
        preset="paper",
        profile="library",
    )
