"""MT2O-v: the joint solver against independent runs, the transfer step against its definition,
and the toy's front against the analytic one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from mt2o_toy import quadratic_toy
from synthetic import write_all

from mdmtn.core.config import ConfigError
from mdmtn.data import load_splits
from mdmtn.experiments.joint_runs import load_joint_records, run_joint
from mdmtn.objectives.pareto import hypervolume
from mdmtn.records.schema import RunRecord
from mdmtn.study.joint_report import speed_ratio, time_to_fraction
from mdmtn.training.mt2o import (
    JointConfig,
    cap,
    front_hypervolume,
    joint_config,
    nearest_neighbours,
    solve,
    transfer_step,
)

VECTORS = [(0.001, 0.2, 0.799), (0.001, 0.5, 0.499), (0.001, 0.8, 0.199)]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    write_all(root)
    return load_splits("multimnist", root)


def _params(model):
    return [p.detach().clone() for p in model.state_dict().values() if p.is_floating_point()]


@pytest.mark.parametrize("scalarization", ["chebyshev_al", "linear"])
def test_no_transfer_equals_independent_runs(splits, scalarization):
    """transfer="none" with K vectors gives, per vector, exactly what a solve with that vector alone gives."""
    together = solve(
        joint_config("multimnist", "hps", VECTORS, "smoke", 0, strategy="independent", scalarization=scalarization),
        splits,
        progress=False,
    )
    for k, model in zip(VECTORS, together.models):
        alone = solve(
            joint_config("multimnist", "hps", [k], "smoke", 0, strategy="independent", scalarization=scalarization),
            splits,
            progress=False,
        )
        for p, q in zip(_params(model), _params(alone.models[0])):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert together.record["transfers"]["n_steps"] == 0


def test_transfer_changes_the_solutions_and_records_it(splits):
    jc = joint_config("multimnist", "hps", VECTORS, "smoke", 0, strategy="mt2o", period=1, beta0=1.0)
    res = solve(jc, splits, progress=False)
    ind = solve(joint_config("multimnist", "hps", VECTORS, "smoke", 0, strategy="independent"), splits, progress=False)
    rec = res.record
    tr = rec["transfers"]
    assert tr["n_steps"] == rec["hv_curve"][-1]["steps"]  # period 1: one transfer step per optimiser step
    open_steps = sum(log["beta"] >= min(jc.coefficients) for log in tr["log"])  # the cap admits some a
    assert 0 < open_steps < tr["n_steps"] and tr["tried"] == open_steps * len(VECTORS)
    for log in tr["log"]:
        for src, a, before, after in zip(log["source"], log["coefficient"], log["before"], log["after"]):
            assert (before is None) == (after is None)
            if before is not None:
                assert after <= before  # accepted only when the receiver's objective falls
            assert (src is None) == (a == 0.0) and a <= log["beta"] + 1e-12
    if tr["accepted"]:
        assert any(
            not torch.equal(p, q) for m, n in zip(res.models, ind.models) for p, q in zip(_params(m), _params(n))
        )
    for m in res.models:
        assert all(torch.isfinite(p).all() for p in _params(m))
    times = [p["train_seconds"] for p in rec["hv_curve"]]
    assert times == sorted(times) and rec["hv_curve"][0]["steps"] == 0
    assert [p["forward_passes"] for p in rec["hv_curve"]][-1] > ind.record["hv_curve"][-1]["forward_passes"]
    # where the joint solve's time went: its phases sum to the wall time, training and the log apart
    phases = rec["timing"]["phases_s"]
    assert sum(phases.values()) == pytest.approx(rec["wall_time_s"], abs=1e-3)
    assert phases["train"] == pytest.approx(rec["train_seconds"], abs=1e-3)
    assert phases["hv_log"] == pytest.approx(rec["eval_seconds"], abs=1e-3)


def test_transfer_step_is_the_accepted_best_pair_mix():
    """Brute force over the grid: each receiver gets argmin over (j, a) of g_k, only if below g_k(θ_k)."""
    g = torch.Generator().manual_seed(0)
    K, d = 5, 4
    states = [
        [torch.randn(d, generator=g, dtype=torch.float64), torch.randn(2, 2, generator=g, dtype=torch.float64)]
        for _ in range(K)
    ]
    targets = [torch.randn(d + 4, generator=g, dtype=torch.float64) for _ in range(K)]

    def obj(k, s):
        return float(((torch.cat([s[0], s[1].flatten()]) - targets[k]) ** 2).sum())

    nbrs = nearest_neighbours([[i / (K - 1), 1 - i / (K - 1)] for i in range(K)], 2)
    assert nbrs[0] == [1, 2] and nbrs[2] == [1, 3] and nbrs[4] == [3, 2]
    grid = (0.1, 0.25, 0.5, 0.9)
    snapshot = [[t.clone() for t in s] for s in states]
    new, out = transfer_step(states, obj, nbrs, grid, beta=0.5)
    for k in range(K):
        cands = [(obj(k, states[k]), None, 0.0)] + [
            (obj(k, [(1 - a) * x + a * y for x, y in zip(states[k], states[j])]), j, a)
            for j in nbrs[k]
            for a in grid
            if a <= 0.5
        ]
        best = min(cands, key=lambda c: c[0])
        assert out.source[k] == best[1] and out.coefficient[k] == best[2]
        assert out.after[k] == pytest.approx(best[0]) and out.after[k] <= out.before[k]
        expect = (
            states[k]
            if best[1] is None
            else [(1 - best[2]) * x + best[2] * y for x, y in zip(states[k], states[best[1]])]
        )
        for t, e in zip(new[k], expect):
            torch.testing.assert_close(t, e)
    for s, s0 in zip(states, snapshot):  # inputs untouched
        assert all(torch.equal(t, t0) for t, t0 in zip(s, s0))
    assert out.forward_passes == K * (1 + 2 * 3)
    # zero cap: nothing moves; fixed rule: (1 - β) θ_k + β · mean of the neighbours, no test
    same, none = transfer_step(states, obj, nbrs, grid, beta=0.0)
    assert none.source == [None] * K and all(torch.equal(a, b) for s, t in zip(same, states) for a, b in zip(s, t))
    fixed, _ = transfer_step(states, obj, nbrs, grid, beta=0.3, rule="fixed")
    torch.testing.assert_close(fixed[0][0], 0.7 * states[0][0] + 0.3 * (states[1][0] + states[2][0]) / 2)


def test_cap_decays_to_zero():
    assert cap(0, 100, 0.5, 0.75) == 0.5
    assert cap(75, 100, 0.5, 0.75) == 0.0 and cap(100, 100, 0.5, 0.75) == 0.0
    assert cap(30, 100, 0.5, 0.75) == pytest.approx(0.5 * (1 - 30 / 75))


def test_toy_reaches_the_analytic_front_at_least_as_fast():
    """Two quadratics: g_k − g_k* = ‖θ − θ*_k‖², every step contracts it by (1 − 2η)², and a
    transfer is accepted only if it lowers g_k, so MT2O-v's distance to each subproblem's optimum
    never exceeds the independent runs'; both end on the analytic front √L1 + √L2 = ‖a − b‖."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=6), rng.normal(size=6)
    w = np.linspace(0.05, 0.95, 7)
    theta0 = rng.normal(size=6) * 3
    kw = dict(steps=400, lr=0.02, period=5)
    m = quadratic_toy(a, b, w, theta0, transfer="mt2o", **kw)
    ind = quadratic_toy(a, b, w, theta0, transfer="none", **kw)
    dist_m = np.linalg.norm(m["theta"] - m["optimum"], axis=2)
    dist_i = np.linalg.norm(ind["theta"] - ind["optimum"], axis=2)
    assert np.all(dist_m <= dist_i + 1e-12)
    assert dist_m.sum() < dist_i.sum()  # transfers did help somewhere
    assert np.isfinite(m["theta"]).all()
    for th, opt in zip(m["theta"][-1], m["optimum"]):  # each subproblem converges to its own optimum
        np.testing.assert_allclose(th, opt, atol=1e-4)
    l1 = np.linalg.norm(m["theta"][-1] - a, axis=1)
    l2 = np.linalg.norm(m["theta"][-1] - b, axis=1)
    np.testing.assert_allclose(l1 + l2, np.linalg.norm(a - b), atol=1e-4)
    # the fixed-mixing control has no such guarantee: its last iterates are pulled off the optimum
    fx = quadratic_toy(a, b, w, theta0, transfer="fixed", **{**kw, "steps": 40}, decay_fraction=10.0)
    assert np.linalg.norm(fx["theta"][-1] - fx["optimum"], axis=1).max() > 1e-3


def test_hypervolume_of_a_front_matches_brute_force():
    pts = np.array([[0.3, 0.9, 0.5], [0.6, 0.4, 0.7], [2.7, 0.1, 0.2]])  # the last is outside the loss ref
    ref = [2.5, 2.5, 1.0]
    g = np.stack(np.meshgrid(*[np.linspace(0, r, 161)[:-1] + r / 320 for r in ref], indexing="ij"), -1).reshape(-1, 3)
    dominated = np.zeros(len(g), bool)
    for p in pts[:2]:
        dominated |= np.all(g >= p, axis=1)
    expect = dominated.mean() * np.prod(ref)
    assert front_hypervolume(pts, 2.5, sparse=True) == pytest.approx(expect, rel=2e-2)
    assert front_hypervolume(pts, 2.5, sparse=True) == pytest.approx(hypervolume(pts[:2], ref))


def test_speed_ratio_from_curves():
    def joint(points):
        curve = [dict(train_seconds=t, hv=h) for t, h in points]
        return RunRecord(status="ok", key="k", config={}, kind="joint", details=dict(final_hv=1.0, hv_curve=curve))

    ind = joint([(0, 0), (10, 0.5), (20, 0.96), (30, 1)])
    m2o = joint([(0, 0), (5, 0.6), (12, 0.95), (30, 1)])
    r = speed_ratio(m2o, ind)
    assert (r["mt2o"], r["independent"], r["ratio"]) == (12, 20, 0.6)
    assert time_to_fraction(ind.details["hv_curve"], 2.0) == math.inf


def test_joint_config_validation_and_keys():
    jc = joint_config("multimnist", "hps", VECTORS, "smoke", 0, strategy="mt2o")
    assert JointConfig.from_dict(json.loads(json.dumps(jc.to_dict()))) == jc
    assert jc.key() != joint_config("multimnist", "hps", VECTORS, "smoke", 0, strategy="independent").key()
    assert jc.key() != joint_config("multimnist", "hps", VECTORS, "smoke", 1, strategy="mt2o").key()
    with pytest.raises(ConfigError, match="only in k"):
        JointConfig(runs=(jc.runs[0], jc.runs[1].replace(lr=1.0)))
    with pytest.raises(ConfigError, match="k0 = 0"):
        joint_config("multimnist", "hps", [(0, 0.5, 0.5), (0.001, 0.5, 0.499)], "smoke")
    with pytest.raises(ConfigError, match="transfer"):
        joint_config("multimnist", "hps", VECTORS, "smoke", strategy="bogus")
    with pytest.raises(ConfigError):
        joint_config("multimnist", "hps", [(0.5, 0.6, 0.1)], "smoke")  # k does not sum to 1


def test_run_joint_resumes(splits, tmp_path):
    jcs = [joint_config("multimnist", "hps", VECTORS[:2], "smoke", 0, strategy=s) for s in ("mt2o", "independent")]
    logs = []
    first = run_joint(jcs, tmp_path, lambda cfg: splits, progress=False, log=logs.append)
    again = run_joint(jcs, tmp_path, lambda cfg: splits, progress=False, log=logs.append)
    assert [r.key for r in first] == [r.key for r in again]
    assert sum(line.startswith("[skip]") for line in logs) == 2
    assert [r.details["strategy"] for r in load_joint_records(tmp_path)] == ["mt2o", "none"]


def test_linear_scalarization_is_the_weighted_sum(splits):
    """scalarization="linear": the per-batch objective is k·(L0, L1, L2) and H is zero; the default
    is the Chebyshev augmented Lagrangian of the same losses."""
    from mdmtn.core.config import make_config
    from mdmtn.models import build_model
    from mdmtn.training.engine import Run

    losses = torch.tensor([0.3, 1.2, 0.7])
    model = build_model("hps", splits.input_shape)
    lin = Run(make_config("multimnist", "hps", (0.1, 0.6, 0.3), "smoke", scalarization="linear"), model, splits, False)
    val, h = lin.scalarize(losses)
    assert float(val) == pytest.approx(0.1 * 0.3 + 0.6 * 1.2 + 0.3 * 0.7) and not h.any()
    che = Run(make_config("multimnist", "hps", (0.1, 0.6, 0.3), "smoke"), model, splits, False)
    la, h2 = che.scalarize(losses)
    torch.testing.assert_close((la, h2), che.al(losses))
