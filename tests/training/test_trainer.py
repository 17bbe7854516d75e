"""End-to-end behaviour of the trainer on tiny synthetic data (through the real loading code)."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mdmtn
from mdmtn.core.config import make_config
from mdmtn.data import TaskTensors, load_splits
from mdmtn.interface.cli import main as cli_main
from mdmtn.objectives.growl import weight_rows
from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.records.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mdmtn.training.compress import count_parameters
from mdmtn.training.loop import TrainingDiverged, evaluate
from mdmtn.training.runner import train


@pytest.fixture(scope="module")
def mm(synthetic_data_root, tmp_path_factory):
    import os

    os.environ["MDMTN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return load_splits("multimnist", synthetic_data_root)


@pytest.fixture(scope="module")
def sparse_run(mm):
    cfg = make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", seed=0)
    return cfg, train(cfg, mm, progress=False)


def test_two_phase_run_is_sparse_capped_and_tied(sparse_run, mm):
    cfg, res = sparse_run
    rec = res.record
    assert rec["status"] == "ok" and rec["key"] == cfg.key()
    assert [h["phase"] for h in rec["history"]] == ["phase1"] * 3 + ["phase2"]
    m = rec["metrics"]
    assert m["SR"] > 0 and m["CR"] > 1
    # per-layer cap: never more than int(eta2 * rows) zero rows in a regularised layer
    for name, w in res.model.growl_weights():
        rows = weight_rows(w.detach(), cfg.switches.conv_rows)
        assert (rows == 0).all(1).sum() <= int(cfg.growl.eta2 * rows.shape[0])
    # phase 2 leaves exactly one distinct row per cluster and the planned zero rows at zero
    weights = dict(res.model.growl_weights())
    assert res.plans
    for plan in res.plans:
        rows = weight_rows(weights[plan.name].detach(), cfg.switches.conv_rows)
        assert (rows[plan.zero_rows] == 0).all()
        for c in np.unique(plan.labels):
            members = rows[torch.from_numpy(plan.labels == c)]
            assert torch.unique(members, dim=0).shape[0] == 1
    # the record's metrics are those of the returned model
    assert sparsity_metrics(res.model)["SR"] == pytest.approx(m["SR"])
    assert (
        evaluate(res.model, mm.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test).test)["acc"] == m["test_acc"]
    )
    # the compressed export's size is recorded for the book, and is that of the returned model
    assert rec["compression"]["params_compressed"] == count_parameters(mdmtn.compress_model(res.model))
    json.dumps(rec)  # serialisable


def test_same_seed_gives_identical_results(mm, sparse_run):
    cfg, res = sparse_run
    again = train(cfg, mm, progress=False).record
    assert again["metrics"] == res.record["metrics"]
    assert [h["train_objectives"] for h in again["history"]] == [h["train_objectives"] for h in res.record["history"]]
    other = train(make_config("multimnist", "mdmtn", cfg.k, "smoke", seed=1), mm, progress=False).record
    assert other["history"][0]["train_objectives"] != res.record["history"][0]["train_objectives"]


def test_k0_zero_is_one_dense_stage(mm):
    cfg = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", seed=0)
    rec = train(cfg, mm, progress=False).record
    assert [h["phase"] for h in rec["history"]] == ["single"] * cfg.schedule.single_stage_iterations
    assert rec["metrics"]["SR"] == 0 and rec["metrics"]["CR"] == 1


def test_lambda_and_mu_follow_the_schedule(sparse_run):
    cfg, res = sparse_run
    h = res.record["history"]
    mus = [e["mu"] for e in h if e["phase"] == "phase1"]
    assert mus == pytest.approx([cfg.objective.mu0 * cfg.objective.mu_factor**i for i in range(3)])
    assert h[-1]["mu"] == pytest.approx(cfg.objective.mu0)  # reset at the start of phase 2
    lrs = [e["lr"] for e in h if e["phase"] == "phase1"]
    assert lrs == pytest.approx([cfg.schedule.lr * cfg.schedule.lr_decay**i for i in range(3)])


def test_nan_loss_stops_the_run(mm):
    bad = TaskTensors(mm.train.x.clone(), mm.train.y)
    bad.x[0] = math.nan
    splits = dataclasses.replace(mm, train=bad)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", batch_size=1024), splits, progress=False)


class TinyTwoTask(nn.Module):
    """A user's own network: any module exposing task_heads and growl_weights()."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(28 * 28, 64)
        self.mid = nn.Linear(64, 32)
        self.task_heads = nn.ModuleList([nn.Linear(32, 10), nn.Linear(32, 10)])

    def forward(self, x):
        z = F.relu(self.mid(F.relu(self.body(x.flatten(1)))))
        return [F.log_softmax(h(z), 1) for h in self.task_heads]

    def growl_weights(self):
        return [("mid.weight", self.mid.weight)]


def test_bring_your_own_model(mm):
    cfg = make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", seed=0)
    res = train(cfg, mm, progress=False, model=TinyTwoTask())
    assert isinstance(res.model, TinyTwoTask) and len(res.record["metrics"]["test_acc"]) == 2
    assert res.record["compression"] is None  # compress() handles the paper's architectures only


def test_checkpoint_round_trip_and_corruption(tmp_path, sparse_run, mm):
    cfg, res = sparse_run
    p = save_checkpoint(tmp_path / "m.pt", res.model, cfg)
    model, cfg2, _ = load_checkpoint(p)
    assert cfg2 == cfg
    x = mm.test.x[:8]
    for a, b in zip(model.eval()(x), res.model.eval()(x)):
        torch.testing.assert_close(a, b)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_cli_rejects_bad_k_before_any_work(capsys, tmp_path):
    for k in (["0.5", "0.5"], ["-0.1", "0.6", "0.5"], ["nan", "0.5", "0.5"], ["0.2", "0.2", "0.2"]):
        assert cli_main(["train", "--k", *k, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
        assert "error: k must" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_bad_workers(capsys, tmp_path):
    assert cli_main(["train", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "--workers must be from 1 to" in capsys.readouterr().err
    assert cli_main(["sweep", "--strategy", "mt2o", "--workers", "2", "--out", str(tmp_path)]) == 2
    assert "sequential only" in capsys.readouterr().err


def test_cli_missing_data_is_one_clear_error(capsys, tmp_path):
    assert (
        cli_main(["train", "--preset", "smoke", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert "MDMTN_DATA" in err and "Traceback" not in err


def test_cli_trains_writes_record_and_resumes(synthetic_data_root, tmp_path, capsys):
    args = [
        "train",
        "--dataset",
        "cifar10mnist",
        "--model",
        "hps",
        "--k",
        "0.1",
        "0.6",
        "0.3",
        "--preset",
        "smoke",
        "--seeds",
        "0",
        "1",
        "--data-dir",
        str(synthetic_data_root),
        "--allow-unverified-cifar",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--workers",
        "2",
    ]  # one process per seed
    assert cli_main(args) == 0
    recs = sorted(tmp_path.glob("*.json"))
    assert len(recs) == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    rec = json.loads(recs[0].read_text())
    for field in ("config", "key", "metrics", "history", "wall_time_s", "machine"):
        assert field in rec
    import subprocess  # the record names the commit that ran, as git itself reports it

    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    if head:
        assert rec["machine"]["mdmtn_commit"].split("+")[0] == head
    capsys.readouterr()
    assert cli_main(args) == 0
    assert capsys.readouterr().out.count("[skip]") == 2


def test_cli_sweep_with_pf_study(synthetic_data_root, tmp_path, capsys, monkeypatch):
    import mdmtn.experiments.sweep as sweep

    monkeypatch.setattr(sweep, "QUICK_VECTORS", [(0.0, 0.5, 0.5), (0.01, 0.5, 0.49)])
    args = [
        "sweep",
        "--model",
        "hps",
        "--preset",
        "smoke",
        "--data-dir",
        str(synthetic_data_root),
        "--out",
        str(tmp_path),
        "--no-progress",
        "--pf-study-from",
        "0.01",
        "0.5",
        "0.49",
    ]
    assert cli_main(args) == 0
    recs = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(recs) == 2 + 5
    assert sum(1 for r in recs if r["config"].get("init_from")) == 5
    capsys.readouterr()
    assert cli_main(args) == 0
    assert capsys.readouterr().out.count("[skip]") == 7


@pytest.mark.parametrize("keep", ["best_val", "last"])
def test_phase1_keep_selects_the_model_phase2_starts_from(mm, keep):
    # no phase 2, so the returned model is phase 1's choice; the expected epoch comes from the history
    cfg = make_config(
        "multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke", seed=1, eta1=1.0, phase2_iterations=0, phase1_keep=keep
    )
    res = train(cfg, mm, progress=False)
    hist = res.record["history"]
    if keep == "last":
        expected = len(hist) - 1
    else:
        sparse = [i for i, h in enumerate(hist) if h["SR"] >= cfg.growl.eta1]
        pool = sparse or range(len(hist))
        expected = max(pool, key=lambda i: (np.mean(hist[i]["val_acc"]), -i))  # first of equal bests
        assert expected != len(hist) - 1  # seed 1 peaks early, so the two rules pick different models
    assert res.record["phase1_epoch"] == expected
    assert res.record["phase1_model"] == ("last" if keep == "last" else ("sparse" if sparse else "draft"))
    assert res.record["metrics"]["SR"] == pytest.approx(hist[expected]["SR"])


def test_phase1_keep_default_keeps_record_keys():
    base = make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "paper")
    assert base.key() == make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "paper", phase1_keep="best_val").key()
    assert base.key() != make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "paper", phase1_keep="last").key()
