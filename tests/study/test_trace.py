"""mdmtn.study.trace and the architecture figure: shapes traced from a forward pass against shapes
worked out by hand, and every traced layer drawn."""

from mdmtn.models import build_model


def test_trace_layers_reads_shapes_and_growl_layers_from_a_forward_pass():
    from mdmtn.study.trace import trace_layers

    model = build_model("mdmtn", (1, 28, 28))
    layers = {t.name: t for t in trace_layers(model, (1, 28, 28))}
    # by hand: 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4; 20 * 4 * 4 = 320 into shared.fc
    assert layers["shared.conv1"].in_shape == (1, 28, 28) and layers["shared.conv1"].out_shape == (10, 24, 24)
    assert layers["shared.conv2"].in_shape == (10, 12, 12) and layers["shared.conv2"].kernel == (5, 5)
    assert layers["shared.fc"].in_shape == (320,) and layers["monitors.0.fc"].in_shape == (20 * 12 * 12,)
    assert {n for n, t in layers.items() if t.growl} == {n.rsplit(".weight", 1)[0] for n, _ in model.growl_weights()}
    assert {t.branch for t in layers.values()} == {"shared", "monitors.0", "monitors.1", "task_heads.0", "task_heads.1"}
    assert sum(t.params for t in layers.values()) + model.alpha.numel() == sum(p.numel() for p in model.parameters())
    assert model.training  # the trace leaves the mode as it was


def test_architecture_figure_draws_every_layer():
    import matplotlib

    matplotlib.use("Agg")
    from mdmtn.study.plots import architecture_figure
    from mdmtn.study.trace import trace_layers

    for name in ("hps", "mdmtn", "stl"):
        model = build_model(name, (3, 32, 32))
        fig = architecture_figure(model, (3, 32, 32), name)
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        assert all(t.name in texts for t in trace_layers(model, (3, 32, 32)) if not t.branch.startswith("task_heads"))
        assert texts.count("head, task") == (1 if name == "stl" else 2)
        assert ("fusion" in texts) == (name == "mdmtn")
