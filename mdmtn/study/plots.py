"""Figures of the book (matplotlib). Each function takes library objects or run records and
returns a Figure; nothing here trains or selects runs."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from mdmtn.data.splits import DATASET_SPECS
from mdmtn.objectives.pareto import sparsity_clusters
from mdmtn.records.schema import RunRecord
from mdmtn.study import toy
from mdmtn.study.selection import objective_vectors

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _label_2d(
    fig: plt.Figure, ax: plt.Axes, xlabel: str, ylabel: str, title: str = "", legend: int = 8, suptitle: bool = False
) -> plt.Figure:
    """Axis labels, legend, title and layout shared by the 2-D loss-space figures."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend)
    fig.suptitle(title) if suptitle else ax.set_title(title)
    fig.tight_layout()
    return fig


TRAIN_L1, TRAIN_L2 = "$L_1$ (train loss / N)", "$L_2$ (train loss / N)"


def toy_figure(weights: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9)) -> plt.Figure:
    """Weighted-sum vs weighted-Chebyshev solutions on the non-convex toy front (mdmtn.study.toy)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    f = toy.front()
    ax.plot(f[:, 0], f[:, 1], color="0.6", lw=2, label="Pareto front (analytic)")
    for i, w in enumerate(weights):
        ws = toy.solve_weighted_sum((w, 1 - w))
        ch = toy.solve_chebyshev((w, 1 - w))
        ex = toy.chebyshev_solution((w, 1 - w))
        ax.scatter(*ws, marker="s", s=70, facecolors="none", edgecolors="C0", label="weighted sum" if i == 0 else None)
        ax.scatter(*ch, marker="o", color="C3", label="Chebyshev (augmented Lagrangian)" if i == 0 else None)
        ax.scatter(*ex, marker="x", color="k", label="Chebyshev optimum (closed form)" if i == 0 else None)
    ax.set_xlabel("$f_1$")
    ax.set_ylabel("$f_2$")
    ax.legend(fontsize=8)
    ax.set_title("Weights (0.1 … 0.9): only Chebyshev reaches the interior")
    fig.tight_layout()
    return fig


def sample_grid(splits: Any, n: int = 10) -> plt.Figure:
    """The first ``n`` training images with their two labels (paper Fig. 5 for Cifar10Mnist)."""
    spec = DATASET_SPECS[splits.name]
    x = splits.train.x[:n].float()
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    img = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    y = splits.train.y[:n].tolist()
    cols = min(n, 5)  # rows of 5 keep the figure within the book's content column (~750 px)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, im, (a, b) in zip(axes.flat, img, y):
        ax.imshow(im.squeeze(), cmap="gray" if im.shape[-1] == 1 else None)
        title = f"({CIFAR_CLASSES[a]}, {b})" if splits.name == "cifar10mnist" else f"({a}, {b})"
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def pareto_figure(
    sparse: Sequence[dict],
    sparse_front: Sequence[RunRecord],
    dense_front: Sequence[RunRecord],
    d: float = 0.1,
    title: str = "",
) -> plt.Figure:
    """Paper Figs. 2-3: 3-D Pareto front (L1, L2, L0) of the k0 > 0 runs coloured by sparsity
    cluster, and its 2-D projection (L1, L2) with the k0 = 0 front in black."""
    fig = plt.figure(figsize=(11, 4.5))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)
    if sparse_front:
        p = objective_vectors(sparse_front)
        sr = [r.metrics.SR for r in sparse_front]
        labels = sparsity_clusters(sr, d)
        for c in np.unique(labels):
            m = labels == c
            lab = f"SR ≈ {np.mean(np.asarray(sr)[m]):.1f}% ({m.sum()} runs)"
            ax3.scatter(p[m, 1], p[m, 2], p[m, 0], s=30, label=lab, color=f"C{c % 10}")
            ax2.scatter(p[m, 1], p[m, 2], s=30, label=lab, color=f"C{c % 10}")
    if sparse:
        q = objective_vectors(sparse)
        ax2.scatter(q[:, 1], q[:, 2], s=12, facecolors="none", edgecolors="0.6", label="dominated k0 > 0 runs")
    if dense_front:
        q = objective_vectors(dense_front)
        ax2.scatter(q[:, 1], q[:, 2], s=30, color="k", marker="D", label="k0 = 0 front")
    ax3.set_xlabel("$L_1$")
    ax3.set_ylabel("$L_2$")
    ax3.set_zlabel("$L_0$ (GrOWL)")
    return _label_2d(fig, ax2, TRAIN_L1, TRAIN_L2, title, legend=7, suptitle=True)


def similarity_figure(maps: Sequence[dict], title: str = "") -> plt.Figure:
    """Paper Fig. 7: similarity maps S_l in [-1, 1] (black = -1, white = +1) of GrOWL layers, with a
    colour bar. ``maps``: entries of :func:`mdmtn.study.similarity.similarity_summary` (rows ordered so that zero
    rows and tied groups form blocks)."""
    from mdmtn.study.similarity import similarity_map

    n = len(maps)
    cols = min(n, 2)  # two per row keep the maps within the book's content column
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.7 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    im = None
    for ax, m in zip(axes.flat, maps):
        im = ax.imshow(similarity_map(m), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        shown = m.get("shown", m["rows"])
        detail = f"{m['rows']} rows" + (f" ({shown} shown)" if shown < m["rows"] else "")
        groups = f", {m['tied_groups']} tied groups" if "tied_groups" in m else ""
        ax.set_title(f"{m['label']}\n{detail}, SR {m['SR']:.1f}%{groups}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    if im is not None:
        fig.colorbar(im, ax=list(axes.flat), shrink=0.6, label="similarity $S_{ij}$", ticks=[-1, -0.5, 0, 0.5, 1])
    return fig


def fronts_2d_figure(groups: dict[str, Sequence[dict]], title: str = "") -> plt.Figure:
    """Paper Fig. 6: 2-D fronts (L1, L2) of several groups of runs; non-dominated points of each
    group (exact dominance, moocore) joined by a line, dominated ones as faint dots."""
    from mdmtn.objectives.pareto import nondominated

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (label, runs) in enumerate(groups.items()):
        if not runs:
            continue
        p = objective_vectors(runs, dims=(1, 2))
        keep = nondominated(p)
        front = p[keep][np.argsort(p[keep][:, 0])]
        ax.plot(front[:, 0], front[:, 1], "-o", color=f"C{i}", ms=5, label=f"{label} ({keep.sum()}/{len(p)} optimal)")
        ax.scatter(p[~keep, 0], p[~keep, 1], s=12, color=f"C{i}", alpha=0.35)
    return _label_2d(fig, ax, TRAIN_L1, TRAIN_L2, title)


def hv_curves_figure(records: Sequence[RunRecord], title: str = "") -> plt.Figure:
    """Hypervolume of the current K solutions against training wall-clock (left) and optimiser
    steps (middle), one line per joint record, MT2O-v solid and independent dashed, coloured by
    seed; right: MT2O-v minus independent of the same seed, by step (both log at the same steps)."""
    fig, axes = plt.subplots(3, 1, figsize=(7.2, 10))  # stacked: each panel as wide as the content column
    by_seed: dict[int, dict[str, dict]] = {}
    for r in records:
        seed = r.config["run"]["seed"]
        by_seed.setdefault(seed, {})[r.details["strategy"]] = r
        style = dict(color=f"C{seed % 10}", ls="-" if r.details["strategy"] == "mt2o" else "--")
        name = {"mt2o": "MT2O-v", "none": "independent"}.get(r.details["strategy"], r.details["strategy"])
        for ax, clock in zip(axes, ("train_seconds", "steps")):
            ax.plot(
                [p[clock] for p in r.details["hv_curve"]],
                [p["hv"] for p in r.details["hv_curve"]],
                label=f"{name}, seed {seed}",
                **style,
            )
    for seed, pair in sorted(by_seed.items()):
        if "mt2o" in pair and "none" in pair:
            a = {p["steps"]: p["hv"] for p in pair["mt2o"].details["hv_curve"]}
            b = {p["steps"]: p["hv"] for p in pair["none"].details["hv_curve"]}
            steps = sorted(set(a) & set(b))
            axes[2].plot(steps, [a[s] - b[s] for s in steps], color=f"C{seed % 10}", label=f"seed {seed}")
    axes[2].axhline(0, color="k", lw=0.8)
    axes[0].set_xlabel("training wall-clock (s; hypervolume evaluation excluded)")
    axes[1].set_xlabel("optimiser steps (each: one step of every subproblem)")
    axes[2].set_xlabel("optimiser steps")
    axes[2].set_ylabel("hypervolume: MT2O-v − independent")
    for ax in axes[:2]:
        ax.set_ylabel("hypervolume")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def joint_fronts_figure(records: Sequence[RunRecord], title: str = "") -> plt.Figure:
    """Final solutions of joint records in (val loss task 1, val loss task 2), MT2O-v vs
    independent, all seeds; marker size grows with SR."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for r in records:
        mt = r.details["strategy"] == "mt2o"
        pts = np.asarray(r.details["hv_curve"][-1]["points"])
        size = 20 + 2 * np.asarray([s["SR"] for s in r.details["subproblems"]])
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=size,
            marker="o" if mt else "s",
            facecolors=f"C{r.config['run']['seed'] % 10}" if mt else "none",
            edgecolors=f"C{r.config['run']['seed'] % 10}",
            label=f"{'MT2O-v' if mt else 'independent'}, seed {r.config['run']['seed']}",
        )
    return _label_2d(fig, ax, "validation loss, task 1", "validation loss, task 2", title, legend=7)


def architecture_figure(model: torch.nn.Module, input_shape: tuple[int, int, int], title: str = "") -> plt.Figure:
    """Paper Fig. 4: a diagram of ``model`` drawn from a forward pass (:func:`mdmtn.study.trace.trace_layers`):
    the shared network in the middle, each task's monitor beside it (MDMTN), the α fusion and the
    task heads below; GrOWL layers filled orange. Each box names the layer, its shape and its rows;
    each arrow the tensor that flows (pooling and ReLU happen between boxes)."""
    from matplotlib.patches import FancyBboxPatch

    from mdmtn.study.trace import trace_layers

    layers = trace_layers(model, input_shape)
    branches: dict[str, list] = {}
    for lay in layers:
        branches.setdefault(lay.branch, []).append(lay)
    heads = sorted(b for b in branches if b.startswith("task_heads"))
    monitors = sorted(b for b in branches if b.startswith("monitors"))
    n_tasks = len(heads)
    # columns: monitors of the first half of the tasks on the left, the rest on the right
    xs = {"shared": 0.0}
    for i, b in enumerate(monitors):
        xs[b] = -1.0 if i < (len(monitors) + 1) // 2 else 1.0
    head_x = np.linspace(-1.0, 1.0, n_tasks) if n_tasks > 1 else np.zeros(1)
    depth = max(len(v) for k, v in branches.items() if not k.startswith("task_heads"))
    height = depth + (3 if monitors else 2) + 1
    fig, ax = plt.subplots(figsize=(7.2, 0.62 * height + 0.6))
    bw, bh = 0.78, 0.52

    def fmt(shape: tuple[int, ...]) -> str:
        return "×".join(str(s) for s in shape)

    def box(x: float, y: float, text: str, colour: str) -> None:
        ax.add_patch(
            FancyBboxPatch((x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0.02", fc=colour, ec="0.3", lw=0.8)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=7)

    def arrow(x0: float, y0: float, x1: float, y1: float, text: str = "") -> None:
        ax.annotate("", (x1, y1 + bh / 2), (x0, y0 - bh / 2), arrowprops=dict(arrowstyle="->", color="0.35", lw=0.8))
        if text:
            ax.text((x0 + x1) / 2 + 0.03, (y0 + y1) / 2, text, fontsize=6, color="0.3", va="center")

    def describe(lay) -> str:
        if lay.kind == "Conv2d":
            core = f"Conv {lay.kernel[0]}×{lay.kernel[1]}, {lay.in_shape[0]}→{lay.out_shape[0]}"
        elif lay.kind == "Linear":
            core = f"Linear {lay.in_shape[-1]}→{lay.out_shape[-1]}"
        else:
            core = f"BatchNorm {lay.out_shape[0]}"
        rows = (
            f"\nrows: {lay.in_shape[0] if lay.kind == 'Conv2d' else lay.in_shape[-1]}"
            if lay.kind != "BatchNorm2d"
            else ""
        )
        return f"{lay.name}\n{core}{rows}"

    top = height - 1
    box(0.0, top, f"input\n{fmt(tuple(input_shape))}", "0.93")
    ends = {}
    for b in ["shared", *monitors]:
        x, y_prev, prev = xs[b], top, None
        for j, lay in enumerate(branches[b]):
            y = top - 1 - j
            flow = fmt(tuple(input_shape)) if prev is None else fmt(lay.in_shape)
            arrow(x if prev is not None else 0.0, y_prev, x, y, flow if prev is not None else "")
            box(x, y, describe(lay), "#f6b26b" if lay.growl else "#dde7f3")
            y_prev, prev = y, lay
        ends[b] = (x, y_prev, prev)
    y_fuse = top - 1 - depth
    y_head = y_fuse - (1 if monitors else 0)
    alpha = getattr(model, "alpha", None)
    for t, hb in enumerate(heads):
        hx = float(head_x[t])
        sx, sy, slay = ends["shared"]
        if monitors:
            box(hx, y_fuse, f"fusion, task {t + 1}\nα{t + 1},0·S + α{t + 1},1·M{t + 1}", "#e6f2e6")
            arrow(sx, sy, hx, y_fuse, fmt(slay.out_shape))
            mx, my, mlay = ends[monitors[t]]
            arrow(mx, my, hx, y_fuse)
            src = (hx, y_fuse)
        else:
            arrow(sx, sy, hx, y_head, fmt(slay.out_shape))
            src = None
        lay = branches[hb][0]
        if src is not None:
            arrow(src[0], src[1], hx, y_head, fmt(lay.in_shape))
        box(hx, y_head, f"head, task {t + 1}\nLinear {lay.in_shape[-1]}→{lay.out_shape[-1]}\nlog-softmax", "0.93")
    total = sum(p.numel() for p in model.parameters())
    note = f"{total:,} parameters" + (f"; α ({tuple(alpha.shape)[0]}×2) learned" if alpha is not None else "")
    ax.text(-1.45, top, note, fontsize=7, va="center")
    ax.add_patch(
        FancyBboxPatch((0.98, top - 0.18), 0.12, 0.28, boxstyle="round,pad=0.01", fc="#f6b26b", ec="0.3", lw=0.6)
    )
    ax.text(1.14, top - 0.04, "GrOWL", fontsize=7, va="center")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(y_head - 0.6, top + 0.6)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
