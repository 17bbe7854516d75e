import itertools

import torch
from torch import nn

from mdmtn.models import CIFAR10MNIST_SPEC, MDMTN, MULTIMNIST_SPEC
from mdmtn.objectives.lsuv import lsuv_, orthonormal_


def test_orthonormal_rows_or_columns():
    w = torch.empty(50, 320)
    orthonormal_(w, torch.Generator().manual_seed(0))
    torch.testing.assert_close(w @ w.T, torch.eye(50), atol=1e-5, rtol=0)
    w = torch.empty(20, 10, 5, 5)  # fan-in 250 > 20 -> orthonormal rows
    orthonormal_(w)
    f = w.reshape(20, -1)
    torch.testing.assert_close(f @ f.T, torch.eye(20), atol=1e-5, rtol=0)
    w = torch.empty(10, 1, 5, 5)  # fan-in 25 > 10
    orthonormal_(w)
    w = torch.empty(64, 32)  # out > in -> orthonormal columns
    orthonormal_(w)
    torch.testing.assert_close(w.T @ w, torch.eye(32), atol=1e-5, rtol=0)


def _output_stds(model, x):
    stds = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: stds.append(o.std().item()))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return stds


def test_every_layer_has_unit_output_std_after_lsuv():
    for spec in (MULTIMNIST_SPEC, CIFAR10MNIST_SPEC):
        torch.manual_seed(0)
        model = MDMTN(spec)
        x = torch.randn(256, *spec.input_shape)
        stds = lsuv_(model, itertools.repeat(x), generator=torch.Generator().manual_seed(0))
        assert len(stds) == 9
        assert all(abs(s - 1) <= 0.1 for s in stds), stds
        # an independent measurement with hooks on all layers in forward order
        measured = _output_stds(model, x)
        assert all(abs(s - 1) <= 0.1 for s in measured), measured
