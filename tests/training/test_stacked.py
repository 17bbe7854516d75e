"""Stacked training (mdmtn.training.stacked) against its independent truth: the same configs trained one by
one with mdmtn.training.trainer.train_algorithm1. Same batches, same per-run state: equal results up to float summation
order, in phase 1 (prox, cap), phase 2 (tying) and single-stage runs, Chebyshev and linear."""

import math

import pytest
import torch

from mdmtn.core.config import make_config
from mdmtn.data import load_splits
from mdmtn.training.runner import train
from mdmtn.training.stacked import StackError, check_stackable, train_stacked


@pytest.fixture(scope="module")
def splits(synthetic_data_root, tmp_path_factory):
    return {
        d: load_splits(d, synthetic_data_root, cache_dir=tmp_path_factory.mktemp("cache"), allow_unverified_cifar=True)
        for d in ("multimnist", "cifar10mnist")
    }


def _close(a, b, tol):
    return all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a, b))


CASES = [
    ("multimnist", "mdmtn", [(0.01, 0.5, 0.49), (0.001, 0.2, 0.799), (0.05, 0.3, 0.65)], {}),
    ("multimnist", "hps", [(0.0, 0.5, 0.5), (0.0, 0.2, 0.8)], {}),
    ("cifar10mnist", "mdmtn", [(0.01, 0.5, 0.49), (0.01, 0.8, 0.19)], {}),  # batch norm's running statistics
    ("multimnist", "hps", [(0.01, 0.5, 0.49), (0.01, 0.2, 0.79)], {"scalarization": "linear"}),
]


@pytest.mark.parametrize("dataset,model,ks,over", CASES, ids=["mdmtn-sparse", "hps-dense", "cifar-bn", "linear"])
def test_stack_equals_separate_runs(splits, dataset, model, ks, over):
    torch.set_num_threads(1)
    cfgs = [make_config(dataset, model, k, "smoke", 0, **over) for k in ks]
    stacked = train_stacked(cfgs, splits[dataset])
    for cfg, res in zip(cfgs, stacked):
        assert not isinstance(res, BaseException), res
        alone = train(cfg, splits[dataset], progress=False)
        ref, got = alone.record, res.record
        assert got["key"] == ref["key"] == cfg.key() and got["stacked"] == {"size": len(cfgs)}
        assert len(got["history"]) == len(ref["history"])
        for a, b in zip(got["history"], ref["history"]):
            assert a["phase"] == b["phase"] and a["SR"] == pytest.approx(b["SR"], abs=1e-9)
            assert _close(a["train_objectives"], b["train_objectives"], 1e-4), (
                a["train_objectives"],
                b["train_objectives"],
            )
        m, r = got["metrics"], ref["metrics"]
        assert _close(m["test_acc"], r["test_acc"], 1e-6) and m["SR"] == pytest.approx(r["SR"])
        assert got["phase1_epoch"] == ref["phase1_epoch"]
        # weights: the prox, the cap and the clustering are not smooth, so the batched step's float-level
        # differences (~1e-7) can move a few weights of a sparse run (107 of 311,494 in one run here)
        sd, ref_sd = res.model.state_dict(), alone.model.state_dict()
        moved = sum(int(((sd[n].float() - q.float()).abs() > 1e-4).sum()) for n, q in ref_sd.items())
        assert moved <= 1e-3 * sum(q.numel() for q in ref_sd.values()), moved


def test_only_configs_that_differ_in_k_stack():
    a = make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", 0)
    check_stackable([a, make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0)])
    for other in (
        make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", 1),
        make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", 0),
        make_config("multimnist", "mdmtn", (0.0, 0.5, 0.5), "smoke", 0),
        make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", 0, method="mgda"),
    ):
        with pytest.raises(StackError):
            check_stackable([a, other])


def test_a_diverging_run_ends_alone(splits, monkeypatch):
    from mdmtn.training.engine import Run
    from mdmtn.training.loop import TrainingDiverged

    cfgs = [
        make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke", 0),
        make_config("multimnist", "hps", (0.0, 0.2, 0.8), "smoke", 0),
    ]
    scalarize = Run.scalarize

    def poisoned(self, losses, t=None):  # the second run's objective turns NaN in its second epoch
        la, h = scalarize(self, losses, t)
        return (la * float("nan"), h) if self.cfg.k[1] == 0.2 and len(self.history) >= 1 else (la, h)

    monkeypatch.setattr(Run, "scalarize", poisoned)
    ok, bad = train_stacked(cfgs, splits["multimnist"])
    assert isinstance(bad, TrainingDiverged) and "epoch 2" in str(bad)
    monkeypatch.setattr(Run, "scalarize", scalarize)
    alone = train(cfgs[0], splits["multimnist"], progress=False).record
    assert ok.record["metrics"]["test_acc"] == pytest.approx(alone["metrics"]["test_acc"], abs=1e-6)
    assert len(ok.record["history"]) == len(alone["history"])


def test_sweep_with_stack_writes_the_records_a_plain_sweep_writes(synthetic_data_root, tmp_path, monkeypatch, capsys):
    from mdmtn.interface.cli import main

    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    base = [
        "train",
        "--preset",
        "smoke",
        "--model",
        "hps",
        "--seeds",
        "0",
        "--data-dir",
        str(synthetic_data_root),
        "--no-progress",
        "--no-checkpoint",
    ]
    ks = [["--k", "0.01", "0.5", "0.49"], ["--k", "0.01", "0.2", "0.79"], ["--k", "0.0", "0.5", "0.5"]]
    # one sweep over the three vectors through --stack 3: the two k0 > 0 runs stack, k0 = 0 trains alone
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.sweep import run_sweep

    cfgs = [make_config("multimnist", "hps", tuple(float(v) for v in k[1:]), "smoke", 0) for k in ks]
    stacked = run_sweep(
        cfgs, tmp_path / "s", SplitsLoader(str(synthetic_data_root)), progress=False, log=lambda s: None, stack=3
    )
    plain = run_sweep(cfgs, tmp_path / "p", SplitsLoader(str(synthetic_data_root)), progress=False, log=lambda s: None)
    assert [r.key for r in stacked] == [r.key for r in plain] == [c.key() for c in cfgs]
    assert [r.details.get("stacked") for r in stacked] == [{"size": 2}, {"size": 2}, None]
    for a, b in zip(stacked, plain):
        assert a.metrics.test_acc == pytest.approx(b.metrics.test_acc, abs=1e-6)
    assert sorted(p.name for p in (tmp_path / "s").glob("*.json")) == sorted(
        p.name for p in (tmp_path / "p").glob("*.json")
    )
    # the CLI checks --stack before any work
    assert main([*base, *ks[0], "--out", str(tmp_path / "c"), "--stack", "0"]) == 2
    assert main([*base, *ks[0], "--out", str(tmp_path / "c"), "--stack", "2", "--workers", "2"]) == 2
    assert "excludes --workers" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.json"))


def test_the_device_check_runs_on_a_cpu_and_says_so():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--batches", "1", "--stacks", "2"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "MDMTN_DATA": ""},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CPU figures" in out.stdout and "no GPU here" in out.stdout
    assert "| 2 |" in out.stdout and "projected 90-vector" in out.stdout and "in stacks of 2" in out.stdout


def test_the_stack_keeps_its_state_stacked_between_steps(splits, monkeypatch):
    """One Adam over (K, ...) tensors that live for the whole stage, and nothing stacked per step
    but each run's loss vector: the count of torch.stack calls grows by K per step, not by the
    number of parameters and buffers."""
    import mdmtn.training.stacked as stacked_mod
    from mdmtn.training.stacked import prepare_stack, stacked_epoch

    calls = []
    real_stack = torch.stack
    monkeypatch.setattr(stacked_mod.torch, "stack", lambda *a, **k: calls.append(1) or real_stack(*a, **k))
    cfgs = [
        make_config("multimnist", "mdmtn", k, "smoke", 0, batch_size=16) for k in ((0.01, 0.5, 0.49), (0.01, 0.2, 0.79))
    ]
    per_epoch = {}
    for n_train in (32, 96):
        members = prepare_stack(
            cfgs, splits["multimnist"].subset(n_train, cfgs[0].data.n_val, cfgs[0].data.n_test), torch.device("cpu")
        )
        opts = [m.begin_stage().opt for m in members]
        stacked_epoch(list(zip(members, opts)))
        state = members[0].rendezvous.state
        tensors = dict(state.P)
        calls.clear()
        stacked_epoch(list(zip(members, opts)))
        per_epoch[n_train] = len(calls)
        assert members[0].rendezvous.state is state and all(state.P[n] is t for n, t in tensors.items())
        assert len(state.opt.param_groups[0]["params"]) == len(state.P) + 1  # one Adam: every stacked tensor and t
    steps = {n: -(-n // cfgs[0].data.batch_size) for n in per_epoch}
    assert steps[96] - steps[32] == 4
    assert (per_epoch[96] - per_epoch[32]) == len(cfgs) * (steps[96] - steps[32]), (per_epoch, steps)
