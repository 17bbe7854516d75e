import pytest
import torch

from mdmtn.models import CIFAR10MNIST_SPEC, HPS, MDMTN, MULTIMNIST_SPEC, STL, build_model, spec_for_input

# Parameter counts computed by hand from the layer shapes of the authors' code: weights + biases + BN affine.
COUNTS = {
    ((1, 28, 28), "hps"): 22_350,
    ((1, 28, 28), "mdmtn"): 311_490,
    ((1, 28, 28), "stl"): 21_840,
    ((3, 32, 32), "hps"): 42_740,
    ((3, 32, 32), "mdmtn"): 505_524,
    ((3, 32, 32), "stl"): 42_410,
}


@pytest.mark.parametrize("shape,name", list(COUNTS))
def test_parameter_counts_match_spec(shape, name):
    m = build_model(name, shape)
    n = sum(p.numel() for k, p in m.named_parameters() if k != "alpha")
    assert n == COUNTS[(shape, name)]
    if name == "mdmtn":
        assert m.alpha.shape == (2, 2) and "alpha" in m.state_dict()


def test_monitor_count():
    m = MDMTN(MULTIMNIST_SPEC)
    assert sum(p.numel() for p in m.monitors[0].parameters()) == 144_570
    m = MDMTN(CIFAR10MNIST_SPEC)
    assert sum(p.numel() for p in m.monitors[0].parameters()) == 231_392


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", ["hps", "mdmtn", "stl"])
def test_forward_gives_log_probabilities(shape, name):
    m = build_model(name, shape)
    outs = m(torch.randn(5, *shape))
    assert len(outs) == (1 if name == "stl" else 2)
    for o in outs:
        assert o.shape == (5, 10)
        torch.testing.assert_close(o.exp().sum(1), torch.ones(5))


def test_mdmtn_with_alpha_10_equals_hps_on_shared_weights():
    torch.manual_seed(0)
    md = MDMTN(MULTIMNIST_SPEC)
    hps = HPS(MULTIMNIST_SPEC)
    hps.load_state_dict({k: v for k, v in md.state_dict().items() if k in hps.state_dict()})
    x = torch.randn(4, 1, 28, 28)
    for a, b in zip(md(x), hps(x)):
        torch.testing.assert_close(a, b)


def test_growl_weights_exclude_input_layers_and_heads():
    names = [n for n, _ in MDMTN(MULTIMNIST_SPEC).growl_weights()]
    assert names == ["shared.conv2.weight", "shared.fc.weight", "monitors.0.fc.weight", "monitors.1.fc.weight"]
    params = dict(MDMTN(MULTIMNIST_SPEC).named_parameters())
    assert all(n in params for n in names)
    assert [n for n, _ in STL(MULTIMNIST_SPEC).growl_weights()] == ["shared.conv2.weight", "shared.fc.weight"]


def test_unknown_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="BackboneSpec"):
        spec_for_input((1, 30, 30))
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", (1, 28, 28))


# Row totals of the paper's metrics (book appendix): every Linear/conv weight, α excluded.
ROWS = {
    ((1, 28, 28), "hps"): 431,
    ((1, 28, 28), "mdmtn"): 6193,
    ((1, 28, 28), "stl"): 381,
    ((3, 32, 32), "hps"): 1235,
    ((3, 32, 32), "mdmtn"): 15641,
    ((3, 32, 32), "stl"): 1203,
}


@pytest.mark.parametrize("shape,name", list(ROWS))
def test_row_totals_match_spec(shape, name):
    from mdmtn.objectives.metrics import sparsity_metrics

    m = sparsity_metrics(build_model(name, shape))
    assert m["total_rows"] == ROWS[(shape, name)]
    assert m["SR"] == 0 and m["unique_rows"] == m["total_rows"]


def test_channels_last_flatten_equals_chw_flatten():
    """The (H, W, C)-order flatten with permuted fc columns is the (C, H, W) flatten, forward and backward."""
    from mdmtn.models.backbone import flatten_linear_relu

    torch.manual_seed(0)
    fc = torch.nn.Linear(20 * 4 * 4, 7)
    h = torch.randn(5, 20, 4, 4)
    h_cl = h.contiguous(memory_format=torch.channels_last)
    assert not h_cl.is_contiguous()  # the permuted path is the one taken
    ref = torch.relu(fc(h.flatten(1)))
    assert torch.allclose(flatten_linear_relu(fc, h_cl), ref, atol=1e-6)
    assert torch.allclose(flatten_linear_relu(fc, h), ref, atol=0)
    seen = []
    handle = fc.register_forward_hook(lambda m, i, o: seen.append(o))
    assert torch.allclose(flatten_linear_relu(fc, h_cl), ref, atol=1e-6)
    handle.remove()
    assert len(seen) == 1  # a hooked fc (LSUV, pruning) is called as a module


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_channels_last_model_equals_nchw_model(shape):
    """What the trainer runs (channels-last) gives the NCHW model's outputs and gradients."""
    torch.manual_seed(0)
    a = build_model("mdmtn", shape)
    a.alpha.data = torch.tensor([[0.7, 0.3], [0.4, 0.6]])  # both branches reach the output
    b = build_model("mdmtn", shape)
    b.load_state_dict(a.state_dict())
    b.to(memory_format=torch.channels_last)
    x = torch.randn(8, *shape)
    y = torch.randint(0, 10, (8,))
    outs = [a(x), b(x.contiguous(memory_format=torch.channels_last))]
    for o1, o2 in zip(*outs):
        assert torch.allclose(o1, o2, atol=1e-5)
    for m, o in zip((a, b), outs):
        sum(torch.nn.functional.nll_loss(t, y) for t in o).backward()
    for (name, p1), p2 in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p1.grad, p2.grad, rtol=1e-4, atol=1e-6), name
