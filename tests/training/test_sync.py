"""No host synchronisation per training step: every aten call that makes the host wait for the
device's values (``.item()``, ``bool(t)``, ``.tolist()``, ``nonzero``, boolean-mask indexing,
``unique``, ...) is recorded by a dispatch mode while steps run, and none may come from this
project's code. Adam's own ``step`` counter is a CPU tensor when parameters live on a GPU (torch's
non-capturable path), so its ``.item()`` waits for nothing; calls from inside ``torch.optim`` are
therefore not counted. A diverged run is still caught, once per epoch."""

import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mdmtn.core.config import make_config
from mdmtn.data import load_splits
from mdmtn.training.loop import TrainingDiverged
from mdmtn.training.trainer import algorithm1_run

aten = torch.ops.aten
SYNCING = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.equal.default,
    aten.is_nonzero.default,
    aten.repeat_interleave.Tensor,
}


class SyncRecorder(TorchDispatchMode):
    """Records (op, the innermost project frame) of every host-synchronising aten call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        syncing = func in SYNCING or (
            func is aten.index.Tensor
            and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else []) or []
            )
        )
        if syncing:
            stack = traceback.extract_stack()
            if not any("torch/optim" in f.filename for f in stack):
                ours = [f for f in stack if "/mdmtn/" in f.filename and "/tests/" not in f.filename]
                self.calls.append(
                    (str(func), f"{ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno}" if ours else "?")
                )
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def splits(synthetic_data_root, tmp_path_factory):
    return load_splits("multimnist", synthetic_data_root, cache_dir=tmp_path_factory.mktemp("c"))


def _run(splits, model="mdmtn", k=(0.01, 0.5, 0.49)):
    cfg = make_config("multimnist", model, k, "smoke", 0)
    data = splits.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test)
    return algorithm1_run(cfg, data, torch.device("cpu"), False)


@pytest.mark.parametrize("model", ["hps", "mdmtn"])
def test_a_training_step_asks_the_device_for_nothing(splits, model):
    run = _run(splits, model)
    st = run.begin_stage()
    batches = [(splits.train.x[i : i + 16], splits.train.y[i : i + 16]) for i in range(0, 64, 16)]
    run.step(st.opt, *batches[0])  # Adam's lazy state is created on the first step
    with SyncRecorder() as rec:
        for xb, yb in batches[1:]:
            run.step(st.opt, xb, yb)
    assert rec.calls == [], rec.calls


def test_an_epoch_synchronises_once_whatever_its_number_of_steps(splits):
    counts = []
    for n_train in (32, 96):
        cfg = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", 0)
        run = algorithm1_run(cfg, splits.subset(n_train, cfg.data.n_val, cfg.data.n_test), torch.device("cpu"), False)
        st = run.begin_stage()
        run.train_epoch(st.opt)
        with SyncRecorder() as rec:
            run.train_epoch(st.opt)
        counts.append(len(rec.calls))
    assert counts == [1, 1], counts  # the one divergence check at the epoch's end


def test_a_diverged_step_is_still_caught_at_the_epochs_end(splits):
    run = _run(splits)
    st = run.begin_stage()
    with torch.no_grad():
        next(run.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="non-finite augmented Lagrangian nan .* at epoch 1"):
        run.train_epoch(st.opt)


def test_the_recorder_sees_a_sync_when_there_is_one():
    # the check is not vacuous: an .item() and a boolean mask are recorded
    with SyncRecorder() as rec:
        t = torch.arange(4.0)
        _ = t.sum().item()
        _ = t[t > 1]
    assert len(rec.calls) >= 2


def test_a_stacked_epoch_synchronises_a_fixed_number_of_times(splits):
    """Per epoch, not per step: the batch-agreement check and each member's divergence check."""
    from mdmtn.training.stacked import prepare_stack, stacked_epoch

    counts = []
    for n_train in (32, 96):
        cfgs = [make_config("multimnist", "hps", k, "smoke", 0) for k in ((0.01, 0.5, 0.49), (0.01, 0.2, 0.79))]
        data = splits.subset(n_train, cfgs[0].data.n_val, cfgs[0].data.n_test)
        members = prepare_stack(cfgs, data, torch.device("cpu"))
        opts = [m.begin_stage().opt for m in members]
        stacked_epoch(list(zip(members, opts)))
        with SyncRecorder() as rec:
            stacked_epoch(list(zip(members, opts)))
        counts.append(len(rec.calls))
    assert counts[0] == counts[1] <= 3, counts


# -- precision: chosen, and recorded ----------------------------------------------------------------


def test_runs_default_to_full_fp32_and_the_record_says_so(splits, monkeypatch):
    from mdmtn.training.runner import train

    monkeypatch.delenv("MDMTN_ALLOW_TF32", raising=False)
    torch.backends.cudnn.allow_tf32 = True  # torch's own default on a GPU machine
    cfg = make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke", 0)
    rec = train(cfg, splits, progress=False).record
    p = rec["machine"]["precision"]
    assert p["tf32_cudnn"] is False and p["tf32_matmul"] is False and p["float32_matmul_precision"] == "highest"
    assert {"cudnn_benchmark", "cudnn_deterministic", "deterministic_algorithms"} <= set(p)
    assert "cuda" in rec["machine"] and "cudnn" in rec["machine"]
    t = rec["timing"]["phases_s"]
    assert {"train", "validation", "test_eval", "other"} <= set(t)
    assert abs(sum(t.values()) - rec["wall_time_s"]) < 1e-2  # the phases add up to the wall time


def test_the_tf32_switch_is_recorded(splits, monkeypatch):
    from mdmtn.training.runner import train

    monkeypatch.setenv("MDMTN_ALLOW_TF32", "1")
    try:
        rec = train(make_config("multimnist", "hps", (0.0, 0.5, 0.5), "smoke", 0), splits, progress=False).record
    finally:
        monkeypatch.delenv("MDMTN_ALLOW_TF32")
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    assert rec["machine"]["precision"]["tf32_cudnn"] is True


def test_a_bad_tf32_variable_is_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, MDMTN_ALLOW_TF32="perhaps", MDMTN_DATA="/nonexistent")
    p = subprocess.run(
        [sys.executable, "-m", "mdmtn", "train", "--preset", "smoke", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and p.stderr.strip() == "error: MDMTN_ALLOW_TF32='perhaps': expected 1 or 0", p.stderr


def test_aggregate_reports_where_the_time_went(splits, tmp_path, capsys):
    from mdmtn.experiments.sweep import run_sweep
    from mdmtn.interface.cli import main

    cfgs = [make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", s) for s in (0, 1)]
    run_sweep(cfgs, tmp_path, lambda c: splits, progress=False, log=lambda s: None)
    assert main(["aggregate", str(tmp_path), "--timing"]) == 0
    out = capsys.readouterr().out
    assert "outside epochs" in out and "cluster_tie" in out and "| 2 |" in out
    rec = next(iter(__import__("mdmtn.records", fromlist=["load_records"]).load_records(tmp_path)))
    assert set(rec.details["timing"]["after_wall_s"]) == {"probe", "checkpoint_write", "record_write"}


# -- the baselines: one trainer loop, the same rule ----------------------------------------------------


@pytest.fixture(scope="module")
def splits_full(synthetic_data_root, tmp_path_factory):
    return load_splits("multimnist", synthetic_data_root, full_train=True, cache_dir=tmp_path_factory.mktemp("c"))


@pytest.mark.parametrize(
    "method, model, extra",
    [
        ("mgda", "hps", {}),
        ("mgda", "mdmtn", {"mgda_variant": "params", "mgda_grad_bug": "2023"}),
        ("mgda", "hps", {"mgda_normalization": "loss+"}),
        ("stl", "stl", {}),
        ("mtan", "mtan", {}),
        ("kdmtl", "kdmtl", {}),
        ("unitary", "mdmtn", {}),
    ],
)
def test_a_baseline_run_synchronises_as_often_whatever_its_number_of_steps(splits, splits_full, method, model, extra):
    """Three times the training steps, the same synchronising calls: none of them is per step."""
    from mdmtn.training.runner import train

    counts = []
    for n_train in (32, 96):
        cfg = make_config("multimnist", model, preset="smoke", method=method, n_train=n_train, batch_size=16, **extra)
        with SyncRecorder() as rec:
            train(cfg, splits_full if method in ("mgda", "unitary") else splits, progress=False)
        counts.append(sorted(rec.calls))
    assert counts[0] == counts[1], set(counts[1]) ^ set(counts[0])


def test_a_diverged_mgda_step_is_caught_at_the_epochs_end(splits_full):
    from mdmtn.models import build_model
    from mdmtn.training.baselines import mgda_step

    cfg = make_config("multimnist", "hps", preset="smoke", method="mgda")
    model = build_model("hps", splits_full.input_shape, n_tasks=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with torch.no_grad():
        next(model.shared.parameters()).fill_(float("nan"))
    x, y = splits_full.train.x[:16], splits_full.train.y[:16]
    with SyncRecorder() as rec:
        losses, alpha = mgda_step(model, opt, x, y, cfg.mgda.variant, cfg.mgda.normalization, cfg.mgda.grad_bug)
    assert rec.calls == [] and torch.isnan(losses).all()  # flagged on the device, for the epoch's check
