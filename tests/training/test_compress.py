"""mdmtn.training.compress: a physically smaller model with the same eval-mode outputs.

Sparsity and tying are planted by hand (zero rows, whole zero channels, partially zero channels,
tied rows via mdmtn.objectives.growl.tie_rows_) so the expected compressed shapes are known exactly.
"""

import numpy as np
import pytest
import torch
from torch import nn

import mdmtn
from mdmtn.models import CIFAR10MNIST_SPEC, HPS, MDMTN, MULTIMNIST_SPEC, STL
from mdmtn.objectives.growl import LayerPlan, enforce_plan_, growl_prox_, rows_to_weight, tie_rows_, weight_rows
from mdmtn.training.compress import CompressedMultiTask, count_parameters

SPECS = {"mm": MULTIMNIST_SPEC, "cm": CIFAR10MNIST_SPEC}


def _randomise_bn(model: nn.Module, g: torch.Generator) -> None:
    """Non-trivial eval statistics and affine parameters, so BN folding is actually exercised."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def _model(cls, spec, seed=0, alpha=((0.9, 0.3), (0.6, 0.8))):
    torch.manual_seed(seed)
    m = cls(spec)
    _randomise_bn(m, torch.Generator().manual_seed(seed + 100))
    if cls is MDMTN:
        m.alpha.data.copy_(torch.tensor(alpha))
    return m.eval()


def _x(spec, n=6, seed=1):
    return torch.randn(n, *spec.input_shape, generator=torch.Generator().manual_seed(seed))


def _assert_same_outputs(model, comp, spec):
    model.eval()
    for n in (1, 6):
        x = _x(spec, n)
        ref, out = model(x), comp(x)
        assert len(ref) == len(out)
        for a, b in zip(ref, out):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    # channels-last input (what the trainer feeds) gives the same result
    x = _x(spec, 4).contiguous(memory_format=torch.channels_last)
    for a, b in zip(model(x), comp(x)):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def _plant_shared(model, spec):
    """Zero and tied rows in the shared network; returns the expected compressed sizes.

    conv2 input channel 2 zero (drops conv1 output 2), conv2 input channels 4 and 6 tied;
    fc: the 16/36 features of conv2 channel 3 zero (drops the channel), 7 features of channel 5
    zero (gathered away), features {c0: 0, 1, 2} tied and {c1: 0, 1} tied.
    """
    s = model.shared
    c1, c2 = spec.conv_channels
    per = spec.feature_hw(2) ** 2
    with torch.no_grad():
        s.conv2.weight[:, 2] = 0
        s.conv2.weight[:, 6] = s.conv2.weight[:, 4]
        fc = s.fc.weight
        fc[:, 3 * per : 4 * per] = 0
        fc[:, 5 * per : 5 * per + 7] = 0
        n_feat = fc.shape[1]
        labels = np.arange(n_feat)
        labels[[1, 2]] = 0
        labels[per + 1] = per
        tie_rows_(fc, torch.zeros(n_feat, dtype=torch.bool), labels)
    feats = (c2 - 1) * per - 7 - 2 - 1
    return dict(c1=c1 - 1, g2=c1 - 2, c2=c2 - 1, fc_in=feats)


def _plant_monitor(mon, spec, zero_chan=(1, 4), partial=(7, 30), ties=((0, 5, 9), (20, 21))):
    """Monitor fc: whole channels zero, part of a channel zero, groups of tied features."""
    per = spec.feature_hw(1) ** 2
    with torch.no_grad():
        fc = mon.fc.weight
        for c in zero_chan:
            fc[:, c * per : (c + 1) * per] = 0
        c, k = partial
        fc[:, c * per : c * per + k] = 0
        labels = np.arange(fc.shape[1])
        for grp in ties:
            labels[list(grp)] = grp[0]
        tie_rows_(fc, torch.zeros(fc.shape[1], dtype=torch.bool), labels)
    n_merged = sum(len(g) - 1 for g in ties)
    c_kept = spec.monitor_channels - len(zero_chan)
    return dict(c=c_kept, fc_in=c_kept * per - k - n_merged)


def _shared_params(spec, e, hidden=None):
    hidden = hidden or spec.hidden
    c_in, k = spec.input_shape[0], spec.kernel
    return e["c1"] * c_in * k * k + e["c1"] + e["c2"] * e["g2"] * k * k + e["c2"] + hidden * e["fc_in"] + hidden


def _monitor_params(spec, e, hidden=None):
    hidden = hidden or spec.hidden
    c_in, k = spec.input_shape[0], spec.kernel
    return e["c"] * c_in * k * k + e["c"] + hidden * e["fc_in"] + hidden


def _heads_params(spec, n_tasks):
    return n_tasks * (spec.hidden * spec.num_classes + spec.num_classes)


# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ds", ["mm", "cm"])
def test_hps_zero_and_tied_rows(ds):
    spec = SPECS[ds]
    model = _model(HPS, spec)
    e = _plant_shared(model, spec)
    comp = mdmtn.compress_model(model, merge_tied=True)
    _assert_same_outputs(model, comp, spec)
    sh = comp.shared
    assert sh.stages[0].conv.weight.shape == (e["c1"], spec.input_shape[0], spec.kernel, spec.kernel)
    assert sh.stages[1].conv.weight.shape == (e["c2"], e["g2"], spec.kernel, spec.kernel)
    assert sh.stages[1].in_groups is not None and sh.fc.keep is not None and sh.fc.groups is not None
    assert sh.fc.linear.in_features == e["fc_in"]
    expected = _shared_params(spec, e) + _heads_params(spec, 2)  # BN folded away (all scales > 0)
    assert count_parameters(comp) == expected == comp.report["params_compressed"]
    assert comp.report["params_dense"] == count_parameters(model)
    assert comp.report["layers"]["shared.fc"]["kept_features"] == e["fc_in"] + 3


@pytest.mark.parametrize("ds", ["mm", "cm"])
def test_mdmtn_zero_and_tied_rows(ds):
    spec = SPECS[ds]
    model = _model(MDMTN, spec)
    e = _plant_shared(model, spec)
    em = [
        _plant_monitor(model.monitors[0], spec),
        _plant_monitor(model.monitors[1], spec, zero_chan=(0,), partial=(3, 100), ties=((1000, 1010),)),
    ]
    comp = mdmtn.compress_model(model, merge_tied=True)
    _assert_same_outputs(model, comp, spec)
    expected = (
        _shared_params(spec, e)
        + sum(_monitor_params(spec, x) for x in em)
        + _heads_params(spec, 2)
        + model.alpha.numel()
    )
    assert count_parameters(comp) == expected
    assert count_parameters(comp) <= count_parameters(model)
    r = comp.report
    assert r["params_dense"] - r["params_compressed"] > 0
    assert set(r["row_metrics"]) >= {"SR", "CR", "PS"} and 0 < r["one_minus_SR"] <= 1


@pytest.mark.parametrize("ds", ["mm", "cm"])
def test_auto_merging_minimises_stored_bytes(ds):
    """merge_tied="auto" merges a layer only when the weights saved outweigh its int64 group index:
    a conv input-channel tie (a whole filter slice saved) and a heavily tied fc are merged, an fc
    with three tied features is not; its stored size is never above always/never merging."""
    spec = SPECS[ds]
    model = _model(MDMTN, spec)
    _plant_shared(model, spec)  # conv2 tie + 3 tied fc features
    per = spec.feature_hw(1) ** 2
    groups = [tuple(range(c * per, c * per + 100)) for c in (0, 2, 3, 5, 6, 8, 9, 10, 11, 12)]  # 990 merged
    _plant_monitor(model.monitors[0], spec, ties=groups)
    sizes = {}
    for opt in ("auto", True, False):
        comp = mdmtn.compress_model(model, merge_tied=opt)
        _assert_same_outputs(model, comp, spec)
        sizes[opt] = comp.report["stored_bytes_compressed"]
        if opt == "auto":
            assert comp.shared.stages[1].in_groups is not None
            assert comp.shared.fc.groups is None
            assert comp.monitors["0"].fc.groups is not None and comp.monitors["1"].fc.groups is None
    assert sizes["auto"] <= min(sizes[True], sizes[False]) < comp.report["stored_bytes_dense"]


@pytest.mark.parametrize("ds", ["mm", "cm"])
@pytest.mark.parametrize("cls", [HPS, MDMTN, STL])
def test_nothing_removable_keeps_parameter_count(ds, cls):
    spec = SPECS[ds]
    model = _model(cls, spec)
    comp = mdmtn.compress_model(model, fold_bn=False)
    _assert_same_outputs(model, comp, spec)
    assert count_parameters(comp) == count_parameters(model)
    assert all(b is None for b in comp.buffers()) or sum(b.numel() for b in comp.buffers()) == 0
    if spec.batchnorm:  # folding BN removes exactly its γ and β
        n_bn = sum(2 * m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        folded = mdmtn.compress_model(model)
        _assert_same_outputs(model, folded, spec)
        assert count_parameters(folded) == count_parameters(model) - n_bn


def test_whole_channel_zero_drops_conv_channel_and_bn():
    spec = CIFAR10MNIST_SPEC
    model = _model(HPS, spec)
    per = spec.feature_hw(2) ** 2
    with torch.no_grad():
        model.shared.fc.weight[:, 0:per] = 0  # conv2 channel 0 unused
        model.shared.fc.weight[:, 10 * per : 11 * per] = 0  # conv2 channel 10 unused
    comp = mdmtn.compress_model(model, fold_bn=False, merge_tied=False)
    _assert_same_outputs(model, comp, spec)
    st = comp.shared.stages[1]
    assert st.conv.out_channels == 30 and st.scale.shape == (30,)
    assert comp.shared.fc.keep is None  # whole channels: no gather needed
    removed = 2 * (16 * 9 + 1) + 2 * 2 + 2 * per * spec.hidden  # filters+bias, BN γ/β, fc columns
    assert count_parameters(comp) == count_parameters(model) - removed


def test_negative_bn_scale_is_kept_as_affine_and_zero_scale_folds_to_constant():
    spec = CIFAR10MNIST_SPEC
    model = _model(HPS, spec)
    with torch.no_grad():
        model.shared.bn1.weight[3] = -0.7  # max-pool does not commute with a negative scale
        model.shared.bn2.weight[5] = 0.0  # channel 5 of conv2 is the constant relu(β)
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    assert comp.shared.stages[0].scale is not None  # layer 1 not folded
    assert comp.shared.stages[1].scale is None  # layer 2 folded
    assert comp.shared.stages[1].conv.out_channels == 31


@pytest.mark.parametrize("ds", ["mm", "cm"])
def test_code_layout_zero_rows_are_constant_channels(ds):
    """Under conv_rows="code" a zero row of conv2 is a pair of whole output filters: those channels
    output a constant, which is folded into the fc bias."""
    spec = SPECS[ds]
    model = _model(MDMTN, spec)
    with torch.no_grad():
        w = model.shared.conv2.weight
        rows = w.reshape(w.shape[1], -1)  # the authors' memory-order rows
        rows[[1, 4]] = 0
        model.shared.conv1.weight[7] = 0  # a constant conv1 channel, folded into conv2's bias
        model.monitors[1].conv.weight[2] = 0  # a constant monitor channel, folded into the fc bias
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    assert comp.shared.stages[1].conv.out_channels == spec.conv_channels[1] - 4
    assert comp.shared.stages[0].conv.out_channels == spec.conv_channels[0] - 1
    assert comp.monitors["1"].stages[0].conv.out_channels == spec.monitor_channels - 1


def test_head_zero_rows_drop_hidden_units():
    spec = MULTIMNIST_SPEC
    model = _model(MDMTN, spec)
    with torch.no_grad():
        model.task_heads[0].weight[:, [3, 10]] = 0  # unit 3 unused by both heads, 10 only by head 0
        model.task_heads[1].weight[:, [3, 20]] = 0
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    assert comp.shared.fc.linear.out_features == spec.hidden - 1
    assert comp.monitors["0"].fc.linear.out_features == spec.hidden - 2
    assert comp.task_heads[0].linear.in_features == spec.hidden - 2
    assert comp.shared_pos_0 is not None and comp.shared_pos_1 is not None


def test_alpha_zero_drops_monitor_and_shared():
    spec = MULTIMNIST_SPEC
    model = _model(MDMTN, spec, alpha=((1.0, 0.0), (0.0, 0.5)))
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    assert "0" not in comp.monitors and "1" in comp.monitors
    assert comp.report["layers"]["monitors.0"] == {"removed": True}
    # the untrained default α = (1, 0): the monitors never contribute, so the model is HPS-sized
    fresh = _model(MDMTN, spec, alpha=((1.0, 0.0), (1.0, 0.0)))
    c2 = mdmtn.compress_model(fresh)
    _assert_same_outputs(fresh, c2, spec)
    assert count_parameters(c2) == count_parameters(HPS(spec)) + 4


def test_all_features_zero_gives_a_constant_branch():
    spec = MULTIMNIST_SPEC
    model = _model(MDMTN, spec)
    with torch.no_grad():
        model.monitors[0].fc.weight.zero_()
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    assert len(comp.monitors["0"].stages) == 0


@pytest.mark.parametrize("ds", ["mm", "cm"])
def test_growl_prox_and_tying_pipeline(ds):
    """Zero rows from the real prox and tying from the real phase-2 projection (random cluster
    labels stand in for Affinity Propagation, which is slow), with channels-last weights as the
    trainer leaves them."""
    spec = SPECS[ds]
    model = _model(MDMTN, spec).to(memory_format=torch.channels_last)
    named = list(model.growl_weights())
    g = torch.Generator().manual_seed(5)
    plans = []
    with torch.no_grad():
        for name, w in named:
            # row norms spread around the prox threshold 0.2 (conv2 higher: its top row has
            # threshold 1.0), so part of the rows survive
            rows = weight_rows(w, "paper")
            lo = 0.6 if w.ndim == 4 else 0.1
            target = lo + 0.3 * torch.rand(rows.shape[0], generator=g)
            w.copy_(rows_to_weight(rows * (target / rows.norm(dim=1))[:, None], w.shape, "paper"))
            zero = growl_prox_(w.data, 0.8, 0.2)
            n = len(zero)
            labels = torch.randint(0, max(2, n // 4), (n,), generator=g).numpy()
            labels[zero.numpy()] = n  # zero rows in a cluster of their own, as plan_tying does
            plans.append(LayerPlan(name, zero, labels))
    enforce_plan_([(n, w.data) for n, w in named], plans)
    comp = mdmtn.compress_model(model)
    _assert_same_outputs(model, comp, spec)
    r = comp.report
    assert 0 < r["row_metrics"]["SR"] < 90
    lay = r["layers"]
    for name in ("shared.fc", "monitors.0.fc", "monitors.1.fc"):
        assert lay[name]["merged"] and 0 < lay[name]["inputs"][1] < lay[name]["kept_features"] < lay[name]["inputs"][0]
    assert r["params_compressed"] < r["params_dense"] * r["one_minus_SR"]


def test_compressed_is_plain_module_and_state_dict_roundtrips(tmp_path):
    spec = MULTIMNIST_SPEC
    model = _model(MDMTN, spec)
    _plant_shared(model, spec)
    comp = mdmtn.compress_model(model)
    assert isinstance(comp, CompressedMultiTask) and isinstance(comp, nn.Module)
    torch.save(comp.state_dict(), tmp_path / "c.pt")
    sd = torch.load(tmp_path / "c.pt", weights_only=True)
    comp.load_state_dict(sd)
    comp.train()  # its forward does not depend on the mode
    _assert_same_outputs(model, comp, spec)


def test_input_model_is_not_modified():
    spec = CIFAR10MNIST_SPEC
    model = _model(MDMTN, spec)
    _plant_shared(model, spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mdmtn.compress_model(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_unsupported_model_is_a_clear_error():
    class Mine(nn.Module):
        def forward(self, x):
            return [x]

    with pytest.raises(NotImplementedError, match="compress"):
        mdmtn.compress_model(Mine())

    class SubHPS(HPS):  # may change forward, so it is not assumed to be the paper's HPS
        pass

    with pytest.raises(NotImplementedError):
        mdmtn.compress_model(SubHPS(MULTIMNIST_SPEC))


def test_compression_summary_counts_what_compress_builds():
    """The record's summary is the compressed module's own parameter count; a model compress()
    does not handle gives None instead of failing the run."""
    from mdmtn.training.compress import compression_summary

    spec = SPECS["mm"]
    model = _model(MDMTN, spec)
    _plant_shared(model, spec)
    s = compression_summary(model)
    comp = mdmtn.compress_model(model)
    assert s["params_compressed"] == count_parameters(comp) < s["params_dense"] == count_parameters(model)
    assert s["param_ratio"] == pytest.approx(s["params_compressed"] / s["params_dense"])
    assert s["stored_bytes_compressed"] == sum(
        t.numel() * t.element_size() for t in list(comp.parameters()) + list(comp.buffers())
    )
    assert compression_summary(nn.Sequential(nn.Linear(3, 2))) is None
