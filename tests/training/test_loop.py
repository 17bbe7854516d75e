"""The one epoch loop (mdmtn.training.loop): its divergence check against values written by hand,
and every method of the library training through it, with one trainer signature and one meaning
per history key."""

import inspect
import math

import pytest
import torch

from mdmtn.core.config import METHOD_MODELS, make_config
from mdmtn.data import SplitsLoader
from mdmtn.training import loop
from mdmtn.training.loop import Divergence, TrainingDiverged, train_epoch
from mdmtn.training.runner import TRAINERS, train


def test_divergence_names_the_first_non_finite_value_and_starts_afresh():
    w = Divergence("augmented Lagrangian", "try a smaller lr or mu0")
    w.note(torch.tensor(1.0), torch.tensor([0.1, 0.2, 0.3]))
    w.check("epoch 1")  # all finite: nothing raised
    w.note(torch.tensor(2.0), torch.tensor([0.1, 0.2, 0.3]))
    w.note(torch.tensor(math.inf), torch.tensor([0.0, math.inf, 0.5]))  # the first bad one
    w.note(torch.tensor(math.nan), torch.tensor([math.nan, 1.0, 1.0]))
    w.note(torch.tensor(3.0), torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(TrainingDiverged) as e:
        w.check("epoch 2")
    assert str(e.value) == (
        "non-finite augmented Lagrangian inf (losses [0.0, inf, 0.5]) at epoch 2; try a smaller lr or mu0"
    )
    w.check("epoch 3")  # the next epoch starts afresh
    v = Divergence()
    v.note(torch.tensor([1.0, math.nan]))
    with pytest.raises(TrainingDiverged, match=r"^non-finite loss \[1.0, nan\] at final epoch 4; try a smaller lr$"):
        v.check("final epoch 4")


def test_train_epoch_sums_in_float64_and_checks_once():
    checks = []

    class Counting(Divergence):
        def check(self, where):
            checks.append(where)
            super().check(where)

    values = [torch.tensor([0.1, 0.2], dtype=torch.float32) * (i + 1) for i in range(5)]
    batches = [(torch.zeros(1), torch.zeros(1)) for _ in values]
    it = iter(values)
    w = Counting()
    (s,) = train_epoch(batches, lambda x, y: (next(it),), w, "epoch 1")
    assert s.dtype == torch.float64
    assert s.tolist() == pytest.approx([sum(float(v[0]) for v in values), sum(float(v[1]) for v in values)], abs=0)
    assert checks == ["epoch 1"]
    assert train_epoch([], lambda x, y: (), w, "epoch 2") == []


def test_every_trainer_has_one_signature():
    want = inspect.signature(TRAINERS["wc_al"])
    assert list(want.parameters) == ["cfg", "splits", "progress", "model"]
    for method, fn in TRAINERS.items():
        got = inspect.signature(fn)
        assert [(p.name, p.kind) for p in got.parameters.values()] == [
            (p.name, p.kind) for p in want.parameters.values()
        ], method


@pytest.fixture(scope="module")
def load(synthetic_data_root, tmp_path_factory):
    import os

    os.environ["MDMTN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return SplitsLoader(str(synthetic_data_root), allow_unverified_cifar=True)


CASES = [("wc_al", (0.01, 0.5, 0.49)), ("wc_al", (0.0, 0.5, 0.5))] + [
    (m, (0.0, 0.5, 0.5)) for m in METHOD_MODELS if m != "wc_al"
]


@pytest.mark.parametrize("method,k", CASES, ids=[f"{m}-k0={k[0]}" for m, k in CASES])
def test_every_method_trains_on_the_one_epoch_loop(load, monkeypatch, method, k):
    """Each history row is one epoch of the shared loop (one divergence check each); ``seconds`` is
    the epoch's training time in every method, and the record's train phase is their sum."""
    calls = []
    check = loop.Divergence.check
    monkeypatch.setattr(loop.Divergence, "check", lambda self, where: (calls.append(where), check(self, where))[1])
    cfg = make_config("multimnist", METHOD_MODELS[method][0], k, "smoke", 0, method=method)
    rec = train(cfg, load(cfg), progress=False).record
    hist = rec["history"]
    assert len(calls) == len(hist) > 0
    for row in hist:
        assert row["seconds"] >= 0 and row["val_seconds"] >= 0 and "train_seconds" not in row
        # [L0, L1, ..., LT] over the tasks the epoch's network trains: one for a single-task network
        single = row["phase"].startswith(("stl_task", "teacher_task"))
        assert len(row["train_objectives"]) == (2 if single else cfg.n_tasks + 1)
    phases = rec["timing"]["phases_s"]
    assert phases["train"] == pytest.approx(sum(h["seconds"] for h in hist), abs=1e-3)
    assert phases["data"] >= 0
