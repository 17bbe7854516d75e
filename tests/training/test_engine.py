"""mdmtn.training.engine: evaluation against a hand-written loop, chunking that changes no
prediction, and seeding that makes two runs draw the same numbers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdmtn.data.splits import TaskTensors
from mdmtn.models import build_model
from mdmtn.training.engine import seed_everything
from mdmtn.training.loop import evaluate


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = build_model("hps", (1, 28, 28), n_tasks=2)
    x = torch.randn(300, 1, 28, 28)
    y = torch.randint(0, 10, (300, 2))
    return model, TaskTensors(x, y)


def test_evaluate_matches_a_plain_loop_over_the_samples(model_and_data):
    model, data = model_and_data
    got = evaluate(model, data, batch_size=1000, cpu_chunk=None)
    model.eval()
    with torch.no_grad():
        outs = [model(data.x[i : i + 1]) for i in range(len(data))]
    for t in range(2):
        logp = torch.cat([o[t] for o in outs])
        acc = (logp.argmax(1) == data.y[:, t]).double().mean().item()
        loss = F.nll_loss(logp.double(), data.y[:, t]).item()
        assert got["acc"][t] == pytest.approx(acc, abs=1e-12)
        assert got["loss"][t] == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_evaluating_in_chunks_changes_no_prediction(model_and_data, chunk):
    model, data = model_and_data
    whole = evaluate(model, data, batch_size=1000, cpu_chunk=None)
    parts = evaluate(model, data, batch_size=1000, cpu_chunk=chunk)
    assert parts["acc"] == whole["acc"]
    assert parts["loss"] == pytest.approx(whole["loss"], rel=1e-5)


def test_evaluate_leaves_the_model_in_the_mode_it_found(model_and_data):
    model, data = model_and_data
    model.train()
    evaluate(model, data)
    assert model.training


def test_seed_everything_makes_torch_and_numpy_repeat():
    seed_everything(7)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(7)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
