"""The reproducibility report at the top of chapter 11 agrees with the verdicts it summarises: its
numbers are recounted here from the verdict lists by another route (a brute-force walk over claims),
on the committed records and on verdicts built to say the opposite."""

import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from mdmtn.core.config import RunConfig
from mdmtn.study.cells import preset_records
from mdmtn.study.profiles import ARMS
from mdmtn.study.summary import summary_facts, summary_markdown
from mdmtn.study.verdicts import judge_arms

ROOT = Path(__file__).resolve().parents[2]

OWN = {"root-cause study", "unitary baseline"}


@pytest.fixture(scope="module")
def committed():
    paper = preset_records(ROOT / "results", "paper")
    quick = preset_records(ROOT / "results", "quick")
    return judge_arms(paper, quick), paper


def _is_paper(c):
    return c.get("family") not in OWN and c["rule"] != "decision" and not c.get("project")


def _check(text, by_arm, records=(), results=None):
    """Every statement of the report against a recount from ``by_arm``."""
    first = by_arm[ARMS[0]]
    n_paper = sum(_is_paper(v.claim) for v in first)
    assert f"**{n_paper} claims of the paper**" in text
    assert f"The registry holds {len(first)} entries" in text
    for arm, vs in by_arm.items():
        mine = [v for v in vs if _is_paper(v.claim)]
        row = re.search(rf"^\| {re.escape(arm)} \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", text, re.M)
        assert row, arm
        want = (
            sum(v.verdict == "holds" for v in mine),
            sum(v.verdict == "does not hold" for v in mine),
            sum(v.verdict == "inconclusive" and v.reason == "few" for v in mine),
            sum(v.verdict == "inconclusive" and v.reason != "few" for v in mine),
            sum(v.verdict == "not yet" for v in mine),
        )
        assert tuple(int(x) for x in row.groups()) == want, arm
    both = sorted(
        v.claim["id"]
        for v in first
        if _is_paper(v.claim)
        and all(next(x for x in by_arm[a] if x.claim["id"] == v.claim["id"]).verdict == "holds" for a in by_arm)
    )
    line = text.split("**What reproduces.** In both arms: ", 1)[1].split(". In the", 1)[0]
    assert re.findall(r"`([^`]+)`", line) == both
    sr = {a: next(x for x in by_arm[a] if x.claim["id"] == "mm.mdmtn.sparse.SR").verdict for a in by_arm}
    study = next(x for x in first if x.claim["id"] == "study.mm.mdmtn.authors-head.SR").verdict
    none_holds = "holds" not in list(sr.values()) + [study]
    assert ("No switch profile reproduces the SR" in text) == none_holds
    if results is not None:  # the plans, recounted from their files: [[run]] entries whose record exists
        keys = {r.key for r in records}
        for plan in sorted((results / "plans").glob("*.toml")):
            spec = tomllib.loads(plan.read_text())
            runs = [RunConfig.from_dict(dict(r["config"], seed=r["seed"])).key() for r in spec["run"]]
            have = sum(k in keys for k in runs)
            said = f"Seeds plan `{plan.name}` ({spec['arm']} arm) has {have} of its {len(runs)} runs"
            assert (said in text) == (have < len(runs)), plan.name
            vs = {v.claim["id"]: v.verdict for v in by_arm[spec["arm"]]}
            outcome = "; ".join(
                f"{verdict}: {len(ids)} ({', '.join(f'`{c}`' for c in ids) or 'none'})"
                for verdict in ("holds", "does not hold", "inconclusive")
                for ids in [sorted(c["id"] for c in spec["claim"] if vs.get(c["id"]) == verdict)]
            )
            done = f"({spec['arm']} arm, committed at "
            assert (
                f"Seeds plan `{plan.name}` {done}" in text
                and f"is complete, all {len(runs)} runs trained: of its {len(spec['claim'])} claims, {outcome}." in text
            ) == (have == len(runs)), plan.name
            if have < len(runs):
                open_ = sorted(c["id"] for c in spec["claim"] if vs.get(c["id"]) == "inconclusive")
                assert (
                    f"{said}; {len(open_)} of its claims are inconclusive so far ({', '.join(f'`{c}`' for c in open_) or 'none'})"
                    in text
                )


def test_the_report_agrees_with_the_committed_verdicts(committed):
    by_arm, paper = committed
    _check(summary_markdown(summary_facts(by_arm, paper, ROOT / "results")), by_arm, paper, ROOT / "results")


def test_the_check_catches_a_report_that_disagrees(committed):
    """Turned verdicts change the report, and the old report then fails the check."""
    by_arm, paper = committed
    old = summary_markdown(summary_facts(by_arm, paper))
    arm = ARMS[0]
    turned = [
        replace(v, verdict="holds") if v.claim["id"] in ("mm.mdmtn.sparse.SR", "mm.hps.sparse.acc1") else v
        for v in by_arm[arm]
    ]
    other = dict(by_arm, **{arm: turned})
    new = summary_markdown(summary_facts(other, paper))
    _check(new, other)
    with pytest.raises(AssertionError):
        _check(old, other)
    assert "No switch profile reproduces" not in new


def test_an_incomplete_plan_is_reported_as_still_being_decided(committed):
    """With every committed plan complete, the incomplete-plan paragraph is checked on the committed
    records less one planned run: the plan then reads as still being decided, not as an outcome."""
    plan = sorted((ROOT / "results" / "plans").glob("*.toml"))[-1]
    spec = tomllib.loads(plan.read_text())
    drop = RunConfig.from_dict(dict(spec["run"][0]["config"], seed=spec["run"][0]["seed"])).key()
    paper = [r for r in committed[1] if r.key != drop]
    by_arm = judge_arms(paper, preset_records(ROOT / "results", "quick"))
    text = summary_markdown(summary_facts(by_arm, paper, ROOT / "results"))
    assert f"Seeds plan `{plan.name}` ({spec['arm']} arm) has {len(spec['run']) - 1} of its" in text
    _check(text, by_arm, paper, ROOT / "results")
