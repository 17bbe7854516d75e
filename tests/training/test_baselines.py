"""The baselines (MGDA-UB, STL, MTAN, KDMTL): training steps checked by hand, and whole smoke runs
on the synthetic data through the real loading code, CLI and record layout."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdmtn.core.config import ConfigError, RunConfig, make_config
from mdmtn.data import load_splits
from mdmtn.interface.cli import main as cli_main
from mdmtn.models import HPS, KDMTL, MDMTN, MTAN, MULTIMNIST_SPEC, STL, STLSet, build_model
from mdmtn.records.checkpoint import load_checkpoint, save_checkpoint
from mdmtn.training.baselines import distillation_loss, lr_factor, mgda_step, unitary_step
from mdmtn.training.baselines.mgda_train import shared_forward
from mdmtn.training.loop import evaluate
from mdmtn.training.runner import train

RECORD_FIELDS = ("status", "key", "config", "metrics", "history", "wall_time_s", "machine", "data")
METRIC_FIELDS = (
    "test_acc",
    "test_acc_mean",
    "test_loss",
    "val_acc",
    "val_acc_mean",
    "train_objectives",
    "SR",
    "CR",
    "PS",
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    import os

    os.environ["MDMTN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def mm(synthetic_data_root, cache):
    return load_splits("multimnist", synthetic_data_root)


@pytest.fixture(scope="module")
def mm_full(synthetic_data_root, cache):
    return load_splits("multimnist", synthetic_data_root, full_train=True)


# ---- config ---------------------------------------------------------------------------------------


def test_existing_keys_unchanged_by_baseline_fields():
    # keys computed before the baseline fields existed: records of the paper's method keep their names
    assert make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "quick", 0).key() == "04bba69f07a77f43"
    assert make_config("cifar10mnist", "hps", (0.0, 0.5, 0.5), "paper", 3, prox_mode="head").key() == "02bbe17d568e88fa"
    a = make_config("multimnist", "hps", preset="smoke", method="mgda")
    assert a.key() != make_config("multimnist", "hps", preset="smoke", method="mgda", mgda_normalization="loss+").key()
    assert a.key() != make_config("multimnist", "hps", preset="smoke", method="mgda", epochs=100).key()
    assert RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    m = make_config("multimnist", "mtan", preset="smoke", method="mtan")
    assert RunConfig.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_paper_defaults_of_the_baselines():
    c = make_config("multimnist", "hps", preset="paper", method="mgda")
    assert (c.schedule.lr, c.schedule.momentum, c.schedule.epochs, c.data.batch_size, c.schedule.lr_decay) == (
        1e-2,
        0.9,
        100,
        256,
        0.5,
    )
    assert (c.data.full_train, c.data.normalize_inputs, c.data.n_train, c.mgda.variant, c.mgda.normalization) == (
        True,
        True,
        None,
        "ub",
        "none",
    )
    assert make_config("cifar10mnist", "mdmtn", preset="paper", method="mgda").data.normalize_inputs is False
    q = make_config("multimnist", "mdmtn", preset="quick", method="mgda")
    assert (q.data.n_train, q.data.n_val) == (25000, 0)  # the quick preset's train + val, as MGDA used all 60k
    s = make_config("cifar10mnist", "stl", preset="paper", method="stl")
    assert (s.schedule.lr, s.schedule.lr_decay, s.schedule.epochs, s.data.full_train) == (1e-4, 0.98, 100, False)
    k = make_config("multimnist", "kdmtl", preset="paper", method="kdmtl")
    assert (
        k.schedule.epochs,
        k.schedule.search_epochs,
        k.schedule.search_fraction,
        k.kdmtl.teacher_lr,
        k.kdmtl.detach,
    ) == (200, 50, 0.2, 1e-2, "teacher")
    t = make_config("cifar10mnist", "mtan", preset="paper", method="mtan")
    assert (len(t.mtan.lambdas), t.mtan.lrs[0], t.schedule.search_fraction, t.mtan.attention) == (
        9,
        1e-5,
        0.5,
        "per_task",
    )
    assert all(abs(sum(p) - 0.1) < 1e-12 for p in t.mtan.lambdas)


@pytest.mark.parametrize(
    "model,method,msg",
    [
        ("stl", "wc_al", "paper's method"),
        ("mtan", "mgda", "trains model 'hps' or 'mdmtn'"),
        ("hps", "stl", "use --model stl"),
        ("mdmtn", "kdmtl", "use --model kdmtl"),
        ("hps", "sgd", "unknown method"),
    ],
)
def test_model_method_combinations(model, method, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("multimnist", model, method=method)


def test_bad_baseline_settings():
    with pytest.raises(ConfigError, match="mgda_variant"):
        make_config("multimnist", "hps", method="mgda", mgda_variant="upper")
    with pytest.raises(ConfigError, match="full_train"):
        make_config("multimnist", "stl", method="stl", full_train=True)
    with pytest.raises(ConfigError, match="mtan_lambdas"):
        make_config("multimnist", "mtan", method="mtan", mtan_lambdas=[[0.1, 0.2, 0.3]])


def _authors_lrs(epochs, lr, rule):
    """lr per epoch of the authors' loops, with torch's own schedulers."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = (
        torch.optim.lr_scheduler.StepLR(opt, 25, 0.98)
        if rule == "steplr"
        else torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)
    )
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        if rule == "steplr" or (rule == "stl" and e % 30 == 0):
            sched.step()
        elif rule == "mgda" and e > 0 and e % 30 == 0:
            opt.param_groups[0]["lr"] *= 0.5
    return out


@pytest.mark.parametrize(
    "method,dataset,rule",
    [("mgda", "multimnist", "mgda"), ("stl", "multimnist", "stl"), ("kdmtl", "cifar10mnist", "steplr")],
)
def test_lr_schedule_matches_the_authors_loops(method, dataset, rule):
    c = make_config(dataset, method if method != "mgda" else "hps", preset="paper", method=method)
    ours = [
        c.schedule.lr * lr_factor(e, c.schedule.lr_decay, c.schedule.lr_first_decay, c.schedule.lr_step)
        for e in range(c.schedule.epochs)
    ]
    assert ours == pytest.approx(_authors_lrs(c.schedule.epochs, c.schedule.lr, rule), rel=1e-12)


# ---- MGDA-UB step -------------------------------------------------------------------------------


def _task_grads(model, x, y):
    """Per-task full parameter gradients (T, P) and z-gradients (T, B*hidden), computed separately."""
    params = list(model.parameters())
    full, zg = [], []
    for t in range(2):
        z, reps = shared_forward(model, x)
        zz = z.detach().requires_grad_()
        r = (
            zz
            if isinstance(model, HPS) and not isinstance(model, MDMTN)
            else model.alpha[t, 0] * zz + model.alpha[t, 1] * model.monitors[t](x)
        )
        F.nll_loss(F.log_softmax(model.task_heads[t](r), 1), y[:, t]).backward()
        zg.append(zz.grad.reshape(-1))
        model.zero_grad(set_to_none=True)
        loss = F.nll_loss(model(x)[t], y[:, t])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        full.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)]))
    return torch.stack(full).double(), torch.stack(zg).double()


def _two_task_min_norm(g):
    """Closed form of min_{a in [0,1]} ||a g1 + (1-a) g2||^2 (Sener's 2-task solver)."""
    d = g[0] - g[1]
    a = float(torch.clamp(((g[1] - g[0]) @ g[1]) / (d @ d), 0, 1))
    return torch.tensor([a, 1 - a], dtype=torch.float64)


@pytest.mark.parametrize("cls", [HPS, MDMTN])
@pytest.mark.parametrize("variant", ["ub", "params"])
@pytest.mark.parametrize("bug", ["none", "2023"])
def test_mgda_update_is_min_norm_combination(cls, variant, bug):
    torch.manual_seed(0)
    model = cls(MULTIMNIST_SPEC).double()
    if cls is MDMTN:
        with torch.no_grad():
            model.alpha.copy_(torch.tensor([[0.8, 0.3], [1.1, -0.2]]))  # make the monitors matter
    x, y = torch.randn(6, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (6, 2))
    full, zg = _task_grads(model, x, y)
    if variant == "params":
        shared = torch.cat(
            [
                torch.ones(p.numel()) if n.startswith("shared.") else torch.zeros(p.numel())
                for n, p in model.named_parameters()
            ]
        ).bool()
        basis = full[:, shared]
    else:
        basis = zg
    expected_alpha = _two_task_min_norm(basis)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)  # Δθ = -(update direction)
    losses, alpha = mgda_step(model, opt, x, y, variant=variant, grad_bug=bug)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert alpha.shape == (2,) and (alpha >= 0).all() and float(alpha.sum()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(alpha.double(), expected_alpha, rtol=1e-6, atol=1e-9)
    direction = expected_alpha @ full + (full[1] if bug == "2023" else 0)
    torch.testing.assert_close(before - after, direction, rtol=1e-6, atol=1e-10)
    assert losses.shape == (2,)


@pytest.mark.parametrize("cls", [HPS, MDMTN])
def test_unitary_update_is_the_mean_of_the_task_gradients(cls):
    """Δθ of one plain SGD step is (g1 + g2) / 2 over every parameter, the task gradients taken
    one task at a time (a second computation), and equals MGDA's update with α fixed at (1/2, 1/2)."""
    torch.manual_seed(0)
    model = cls(MULTIMNIST_SPEC).double()
    if cls is MDMTN:
        with torch.no_grad():
            model.alpha.copy_(torch.tensor([[0.8, 0.3], [1.1, -0.2]]))
    x, y = torch.randn(6, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (6, 2))
    full, _ = _task_grads(model, x, y)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    losses = unitary_step(model, torch.optim.SGD(model.parameters(), lr=1.0), x, y)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(before - after, full.mean(0), rtol=1e-6, atol=1e-10)
    assert losses.shape == (2,) and not losses.requires_grad


@pytest.mark.parametrize("model", ["hps", "mdmtn"])
def test_unitary_run_is_mgdas_run_but_for_the_step(mm_full, model):
    """The same data, schedule, optimiser and last-epoch model as MGDA; a different update."""
    u_cfg = make_config("multimnist", model, preset="smoke", method="unitary")
    m_cfg = make_config("multimnist", model, preset="smoke", method="mgda")
    ur, mr = train(u_cfg, mm_full, progress=False), train(m_cfg, mm_full, progress=False)
    u, m = ur.record, mr.record
    _check_record(u, u_cfg)
    for name in ("lr", "momentum", "epochs", "lr_first_decay", "lr_step", "full_train", "batch_size", "n_train"):
        assert u["config"][name] == m["config"][name], name
    assert u["data"] == m["data"]
    assert [h["phase"] for h in u["history"]] == ["unitary"] * u_cfg.schedule.epochs
    assert u["baseline"]["selected_epoch"] == u_cfg.schedule.epochs - 1 and u["baseline"]["selection"] == "last epoch"
    w_u, w_m = ur.model.state_dict(), mr.model.state_dict()
    assert any(not torch.equal(w_u[n], w_m[n]) for n in w_u)  # MGDA's weights are not (1/2, 1/2)


def test_unitary_refuses_the_wrong_data(mm):
    with pytest.raises(ConfigError, match="full_train=True"):
        train(make_config("multimnist", "hps", preset="smoke", method="unitary"), mm, progress=False)


def test_mgda_normalisation_changes_the_weights_as_sener():
    torch.manual_seed(1)
    model = HPS(MULTIMNIST_SPEC).double()
    x, y = torch.randn(5, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (5, 2))
    _, zg = _task_grads(model, x, y)
    losses = torch.stack([F.nll_loss(o, y[:, t]) for t, o in enumerate(model(x))]).detach()
    scaled = zg / (losses * zg.norm(dim=1))[:, None]  # "loss+": divide by L_t * ||g_t||
    _, alpha = mgda_step(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y, normalization="loss+")
    torch.testing.assert_close(alpha.double(), _two_task_min_norm(scaled), rtol=1e-6, atol=1e-9)


# ---- whole runs on synthetic data ----------------------------------------------------------------


def _check_record(rec, cfg, n_tasks=2):
    for f in RECORD_FIELDS:
        assert f in rec
    for f in METRIC_FIELDS:
        assert f in rec["metrics"]
    assert rec["status"] == "ok" and rec["key"] == cfg.key() and rec["config"]["method"] == cfg.method
    acc = rec["metrics"]["test_acc"]
    assert len(acc) == n_tasks and all(0 <= a <= 1 for a in acc)
    assert rec["metrics"]["test_acc_mean"] == pytest.approx(np.mean(acc))
    assert rec["metrics"]["SR"] == 0 and rec["metrics"]["CR"] == 1
    obj = rec["metrics"]["train_objectives"]
    assert len(obj) == n_tasks + 1 and math.isnan(obj[0]) and all(v > 0 for v in obj[1:])
    json.dumps(rec)


@pytest.mark.parametrize("model", ["hps", "mdmtn"])
def test_mgda_run_uses_full_train_and_last_epoch(mm_full, model):
    cfg = make_config("multimnist", model, preset="smoke", method="mgda")
    res = train(cfg, mm_full, progress=False)
    rec = res.record
    _check_record(rec, cfg)
    assert rec["data"]["n_val"] == 0 and rec["data"]["full_train"] and rec["metrics"]["val_acc"] is None
    assert [h["phase"] for h in rec["history"]] == ["mgda"] * cfg.schedule.epochs
    assert rec["baseline"]["selected_epoch"] == cfg.schedule.epochs - 1
    w = rec["history"][-1]["mgda_weights_mean"]
    assert sum(w) == pytest.approx(1.0) and min(w) >= 0
    assert (
        evaluate(res.model, mm_full.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test).test)["acc"]
        == rec["metrics"]["test_acc"]
    )
    if model == "mdmtn":
        assert rec["alpha"] is not None and rec["alpha"] != [[1.0, 0.0], [1.0, 0.0]]  # α is learned


def test_mgda_refuses_the_wrong_data(mm):
    with pytest.raises(ConfigError, match="full_train=True"):
        train(make_config("multimnist", "hps", preset="smoke", method="mgda"), mm, progress=False)


def test_same_seed_same_record_other_seed_differs(mm_full):
    cfg = make_config("multimnist", "hps", preset="smoke", method="mgda")
    a, b = (train(cfg, mm_full, progress=False).record for _ in range(2))
    assert json.dumps(a["metrics"]) == json.dumps(b["metrics"])  # (NaN-safe equality)
    assert [h["train_objectives"][1:] for h in a["history"]] == [h["train_objectives"][1:] for h in b["history"]]
    c = train(make_config("multimnist", "hps", preset="smoke", method="mgda", seed=1), mm_full, progress=False).record
    assert c["history"][0]["train_objectives"][1:] != a["history"][0]["train_objectives"][1:]


def test_stl_trains_one_network_per_task(mm, tmp_path):
    cfg = make_config("multimnist", "stl", preset="smoke", method="stl")
    res = train(cfg, mm, progress=False)
    rec = res.record
    _check_record(rec, cfg)
    assert isinstance(res.model, STLSet) and len(res.model.nets) == 2
    assert [h["phase"] for h in rec["history"]] == ["stl_task1"] * cfg.schedule.epochs + [
        "stl_task2"
    ] * cfg.schedule.epochs
    assert all(len(h["val_acc"]) == 1 for h in rec["history"])  # each network is validated on its own task
    assert len(rec["baseline"]["selected_epoch"]) == 2
    # task t's accuracy comes from network t alone
    test = mm.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test).test
    for t, net in enumerate(res.model.nets):
        pred = net.eval()(test.x)[0].argmax(1)
        assert rec["metrics"]["test_acc"][t] == pytest.approx(float((pred == test.y[:, t]).double().mean()))
    assert rec["metrics"]["total_rows"] == 2 * 381
    model, cfg2, _ = load_checkpoint(save_checkpoint(tmp_path / "stl.pt", res.model, cfg))
    assert cfg2 == cfg and isinstance(model, STLSet)
    for p, q in zip(model.parameters(), res.model.parameters()):
        assert torch.equal(p, q)


def test_mtan_attention_is_per_task_with_spec_counts():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    per, shared = MTAN(MULTIMNIST_SPEC), MTAN(MULTIMNIST_SPEC, shared_attention=True)
    assert (count(per), count(shared)) == (270_150, 146_250)
    assert (
        count(build_model("mtan", (3, 32, 32))),
        count(build_model("mtan", (3, 32, 32), shared_attention=True)),
    ) == (2_783_060, 1_412_900)
    ids = [{id(p) for p in a.parameters()} for a in per.attention]
    assert not ids[0] & ids[1]
    assert shared.attention[0] is shared.attention[1]
    # the per-task masks really differ: change task 1's attention, task 2's output stays
    x = torch.randn(3, 1, 28, 28)
    before = per(x)
    with torch.no_grad():
        per.attention[0][1][-2].bias.add_(5.0)
    after = per(x)
    assert not torch.allclose(before[0], after[0]) and torch.equal(before[1], after[1])


def test_mtan_run(mm):
    cfg = make_config("multimnist", "mtan", preset="smoke", method="mtan")
    rec = train(cfg, mm, progress=False).record
    _check_record(rec, cfg)
    b = rec["baseline"]
    assert len(b["search_lambda"]) == len(cfg.mtan.lambdas) and len(b["search_lr"]) == len(cfg.mtan.lrs)
    assert tuple(b["lambdas"]) in cfg.mtan.lambdas and b["lr"] in cfg.mtan.lrs
    phases = [h["phase"] for h in rec["history"]]
    assert (
        phases.count("final") == cfg.schedule.epochs and phases.count("search_lambda") == 2 * cfg.schedule.search_epochs
    )


def test_kdmtl_student_and_distillation_gradients():
    assert sum(p.numel() for p in KDMTL(MULTIMNIST_SPEC).parameters()) == 27_450
    assert sum(p.numel() for p in build_model("kdmtl", (3, 32, 32)).parameters()) == 44_852
    torch.manual_seed(0)
    student, teacher = KDMTL(MULTIMNIST_SPEC), STL(MULTIMNIST_SPEC)
    x = torch.randn(4, 1, 28, 28)
    feats = student.adapted_features(student.shared(x))
    teacher_feat = teacher.representation(x)[0]  # deliberately not detached by the caller
    distillation_loss(feats, [teacher_feat, teacher_feat], (0.01, 0.04)).backward()
    assert all(p.grad is None for p in teacher.parameters())  # teacher side: no gradient
    assert student.adaptors[1][0].weight.grad.abs().sum() > 0 and student.shared.fc.weight.grad.abs().sum() > 0
    student.zero_grad(set_to_none=True)
    loss = distillation_loss(student.adapted_features(student.shared(x)), [teacher_feat] * 2, (0.01, 0.04), "both")
    assert not loss.requires_grad and loss > 0  # the authors' code: a constant


def test_kdmtl_run(mm):
    cfg = make_config("multimnist", "kdmtl", preset="smoke", method="kdmtl")
    res = train(cfg, mm, progress=False)
    _check_record(res.record, cfg)
    b = res.record["baseline"]
    assert isinstance(res.model, KDMTL) and len(b["teacher_test_acc"]) == 2 and len(b["search_lambda"]) == 2
    phases = [h["phase"] for h in res.record["history"]]
    assert phases[:2] == ["teacher_task1", "teacher_task2"] and phases[-1] == "final"


# ---- CLI -----------------------------------------------------------------------------------------


def test_cli_baselines_and_aggregate(synthetic_data_root, tmp_path, capsys):
    common = [
        "--preset",
        "smoke",
        "--seeds",
        "0",
        "1",
        "--data-dir",
        str(synthetic_data_root),
        "--out",
        str(tmp_path),
        "--no-progress",
        "--no-checkpoint",
    ]
    assert cli_main(["train", "--method", "mgda", "--model", "hps", *common]) == 0
    assert cli_main(["train", "--method", "stl", *common]) == 0  # --model inferred
    recs = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert sorted((r["config"]["method"], r["config"]["seed"]) for r in recs) == [
        ("mgda", 0),
        ("mgda", 1),
        ("stl", 0),
        ("stl", 1),
    ]
    assert not list(tmp_path.glob("*.pt"))
    capsys.readouterr()
    assert cli_main(["aggregate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| multimnist | mgda | hps | smoke | 0,1 |" in out and "| multimnist | stl | stl | smoke | 0,1 |" in out
    assert "97.26 / 95.90 / 96.58" in out  # the paper's MGDA-HPS row beside ours
    assert cli_main(["train", "--method", "mtan", "--model", "hps", *common]) == 2
    assert "use --model mtan" in capsys.readouterr().err
