"""Physically smaller inference copies of sparse, tied models: :func:`compress`.

GrOWL zeroes *rows* (input neurons / input channels) and phase 2 ties rows to equal values, but
the trained model still stores and computes every weight. :func:`compress` turns such a model
into a plain ``nn.Module`` that leaves the removed structure out, with the same outputs in eval
mode up to float32 rounding (measured: at most 8e-6 on log-probabilities of about −20, i.e.
within 1e-5 absolute + relative):

* **Zero rows removed, with what feeds them.** A zero row of a Linear weight (an input feature
  whose outgoing weights are all 0) is dropped from the layer; the flattened conv output is then
  gathered with an index buffer, and a conv output channel none of whose H·W positions are used
  is not computed at all (its filter, bias and BatchNorm entries go). A zero input-channel row of a
  conv weight drops that input channel, and so the matching output channel of the previous conv
  (and its BatchNorm); the first conv's inputs are the image channels and are always kept.
  The analysis runs backwards from the heads, so removals cascade: a channel
  dropped by the fc can make input channels of its conv unused, and so on. A task head whose
  weight column for a hidden unit is zero does not need that unit: monitor *i* (which only feeds
  head *i*) drops it, the shared network drops it when no head uses it. A monitor whose fusion
  weight α_i1 is exactly 0 is dropped whole (likewise the shared network for a task with α_i0 = 0).
* **Constant channels folded.** A conv output channel whose filter is entirely zero (what a zero
  row gives under the authors' ``conv_rows="code"`` layout, where a row is a pair of output
  filters), or whose BatchNorm scale is 0, outputs the constant ``relu(bn(bias))`` at every
  position. Its contribution is added to the next layer's bias (exact: the convolutions have no
  padding, so every output position sees the whole kernel) and the channel is dropped.
* **Tied rows merged** (``merge_tied``). Input features of a Linear with identical outgoing weight
  vectors satisfy ``W x = W_u (A x)``, ``A`` summing each group: the layer becomes a segment sum
  (``index_add_`` with a group index buffer) followed by a smaller Linear. Input channels of a conv
  with identical weight slices are summed the same way before the conv (convolution is linear in
  its input). Exact in real arithmetic; only the float summation order changes. By default
  (``"auto"``) a layer is merged only where that makes the stored model smaller, since each
  merged input costs an int64 entry in the group index.
* **BatchNorm folded** (``fold_bn``). BN (eval statistics) sits after the max-pool here; with a
  positive per-channel scale ``s``, ``s·maxpool(y) + t = maxpool(s·y + t)``, so it folds into the
  conv's weights and bias. A layer with a non-positive scale keeps a per-channel affine instead
  (max-pool does not commute with a negative scale).

Supported models: :class:`~mdmtn.models.HPS`, :class:`~mdmtn.models.MDMTN` and
:class:`~mdmtn.models.STL` with either :class:`~mdmtn.models.BackboneSpec`; other modules raise
``NotImplementedError``. The compressed module returns the same list of per-task log-probabilities
as the model in **eval** mode (BatchNorm uses its running statistics); its own forward does not
depend on train/eval mode. It is an inference artefact: it is not meant to be trained further.

The report (``compressed.report``) gives the parameter counts of both models, per-layer
sizes before/after and the paper's row metrics (SR, CR, PS) of the input model, so that the
measured ratio ``params_compressed / params_dense`` can be set against ``1 − SR``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdmtn.models.backbone import Monitor, SharedNet
from mdmtn.models.multitask import HPS, MDMTN, STL
from mdmtn.objectives.metrics import sparsity_metrics

__all__ = ["compress", "CompressedMultiTask", "count_parameters"]

_SUPPORTED = (HPS, MDMTN, STL)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar entries in ``module.parameters()`` (buffers, e.g. BN statistics and index
    buffers, are not parameters and are not counted)."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------
# Compressed building blocks (plain modules; index buffers are int64 buffers, not parameters)
# ---------------------------------------------------------------------------------------------------
def _group_sum(x: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """Sum the entries of ``x`` along dim 1 that share a group id: (B, n, ...) -> (B, n_groups, ...).

    ``index_add_`` is a single pass over ``x``; measured on this CPU it costs about as much as a
    dense Linear of 32-50 outputs over the same features, far less than multiplying by a 0/1 matrix
    (n_groups·n MACs per sample) or a CSR product.
    """
    out = x.new_zeros((x.shape[0], n_groups) + tuple(x.shape[2:]))
    return out.index_add_(1, groups, x)


class _ConvStage(nn.Module):
    """[group-sum of input channels] -> conv -> max-pool 2x2 -> [per-channel affine] -> ReLU.

    ``affine`` is the eval-mode BatchNorm as ``scale``/``shift`` when it could not be folded into
    the conv (a non-positive scale); it is kept as parameters, like BN's γ and β.
    """

    def __init__(self, conv: nn.Conv2d, in_groups: Tensor | None, scale: Tensor | None, shift: Tensor | None):
        super().__init__()
        self.conv = conv
        self.n_groups = conv.in_channels
        self.register_buffer("in_groups", in_groups)
        self.scale = None if scale is None else nn.Parameter(scale)
        self.shift = None if shift is None else nn.Parameter(shift)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_groups is not None:
            x = _group_sum(x, self.in_groups, self.n_groups)
        x = F.max_pool2d(self.conv(x), 2)
        if self.scale is not None:
            x = x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
        return F.relu(x)


class _FeatureLinear(nn.Module):
    """[gather kept features] -> [segment-sum tied features] -> Linear -> [ReLU].

    ``keep``: indices of the used input features (None: all); ``groups``: group id of each kept
    feature (None: no merging); the Linear then has one input per group.
    """

    def __init__(self, linear: nn.Linear, keep: Tensor | None, groups: Tensor | None, relu: bool):
        super().__init__()
        self.linear = linear
        self.relu = relu
        self.register_buffer("keep", keep)
        self.register_buffer("groups", groups)

    def forward(self, x: Tensor) -> Tensor:
        if self.keep is not None:
            x = x.index_select(1, self.keep)
        if self.groups is not None:
            x = _group_sum(x, self.groups, self.linear.in_features)
        x = self.linear(x)
        return F.relu(x) if self.relu else x


class _Branch(nn.Module):
    """A compressed :class:`SharedNet` or :class:`Monitor`: conv stages, flatten, fc, ReLU.

    Unlike the original it flattens in (H, W, C) order (the fc columns are permuted to match), so
    channels-last activations are not copied before the fc.

    With no stages the branch no longer depends on its input (every fc input was removed or
    folded into the bias) and outputs ``relu(bias)`` for every sample.
    """

    def __init__(self, stages: list[_ConvStage], fc: _FeatureLinear):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.fc = fc

    def forward(self, x: Tensor) -> Tensor:
        if len(self.stages) == 0:
            return F.relu(self.fc.linear.bias).expand(x.shape[0], -1)
        for s in self.stages:
            x = s(x)
        # (H, W, C) feature order: a view for channels-last activations, a copy otherwise
        return self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


class CompressedMultiTask(nn.Module):
    """The compressed counterpart of HPS / MDMTN / STL: ``forward(x)`` -> list of log-probabilities.

    Task ``i`` computes ``head_i(α_i0·S(x)[pos_i] + α_i1·M_i(x))`` over the hidden units its head
    uses (``pos_i`` picks them out of the shared network's kept units; absent when it uses all).
    For HPS/STL there is no α and no monitor. ``report`` holds what :func:`compress` measured.
    """

    def __init__(
        self,
        shared: _Branch | None,
        monitors: dict[int, _Branch],
        alpha: Tensor | None,
        heads: list[_FeatureLinear],
        shared_pos: list[Tensor | None],
        use_shared: list[bool],
        head_width: list[int],
    ):
        super().__init__()
        self.shared = shared
        self.monitors = nn.ModuleDict({str(i): m for i, m in monitors.items()})
        self.alpha = None if alpha is None else nn.Parameter(alpha)
        self.task_heads = nn.ModuleList(heads)
        for i, pos in enumerate(shared_pos):
            self.register_buffer(f"shared_pos_{i}", pos)
        self.use_shared = list(use_shared)
        self.head_width = list(head_width)
        self.report: dict[str, Any] = {}

    def forward(self, x: Tensor) -> list[Tensor]:
        z = self.shared(x) if self.shared is not None else None
        outs = []
        for i, head in enumerate(self.task_heads):
            rep = None
            if self.use_shared[i]:
                pos = getattr(self, f"shared_pos_{i}")
                rep = z if pos is None else z.index_select(1, pos)
                if self.alpha is not None:
                    rep = self.alpha[i, 0] * rep
            m = self.monitors[str(i)] if str(i) in self.monitors else None
            if m is not None:
                r = self.alpha[i, 1] * m(x)
                rep = r if rep is None else rep + r
            if rep is None:  # neither branch reaches this head: it outputs its bias
                rep = x.new_zeros((x.shape[0], self.head_width[i]))
            outs.append(F.log_softmax(head(rep), dim=1))
        return outs


# ---------------------------------------------------------------------------------------------------
# Analysis of one branch (float64 working copies; nothing of the input model is modified)
# ---------------------------------------------------------------------------------------------------
@dataclass
class _StageW:
    """Working copy of one conv stage: weight (O, I, kh, kw), bias (O,), eval-BN scale/shift or None."""

    w: Tensor
    b: Tensor
    scale: Tensor | None
    shift: Tensor | None
    out_alive: Tensor = field(default=None)  # (O,) bool
    in_alive: Tensor = field(default=None)  # (I,) bool


def _bn_affine(bn: nn.BatchNorm2d | None) -> tuple[Tensor | None, Tensor | None]:
    """Eval-mode BatchNorm as ``y·scale + shift`` (float64), or (None, None) without BN."""
    if bn is None:
        return None, None
    if not bn.track_running_stats or bn.running_mean is None:
        raise NotImplementedError("compress() needs BatchNorm with running statistics (eval-mode semantics)")
    scale = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def _unique_rows(rows: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct rows of a 2-D tensor and each row's group id (exact equality; -0.0 == +0.0)."""
    uniq, inv = torch.unique(rows + 0.0, dim=0, return_inverse=True)
    return uniq, inv


def _merge_pays(merge_tied: bool | str, n_in: int, n_groups: int, n_out: int, elem_bytes: int) -> bool:
    """Whether to merge ``n_in`` inputs into ``n_groups``: always (True), never (False), or
    ("auto") only when the weights saved outweigh the int64 group index that merging stores."""
    if merge_tied is False or n_groups >= n_in:
        return False
    if merge_tied == "auto":
        return (n_in - n_groups) * n_out * elem_bytes > n_in * 8
    return True


def _branch_stages(branch: nn.Module) -> tuple[list[tuple[nn.Conv2d, nn.BatchNorm2d | None]], nn.Linear]:
    if type(branch) is SharedNet:
        return [(branch.conv1, branch.bn1), (branch.conv2, branch.bn2)], branch.fc
    if type(branch) is Monitor:
        return [(branch.conv, branch.bn)], branch.fc
    raise NotImplementedError(f"compress() does not know the layer structure of {type(branch).__name__}")


@torch.no_grad()
def _compress_branch(
    name: str, branch: nn.Module, out_keep: Tensor, fold_bn: bool, merge_tied: bool | str, layers: dict[str, dict]
) -> _Branch:
    """Compressed copy of a SharedNet/Monitor that computes only the fc outputs ``out_keep``."""
    convs, fc = _branch_stages(branch)
    dtype, device = fc.weight.dtype, fc.weight.device
    elem = fc.weight.element_size()  # bytes per stored weight (the working copies are float64)
    st = []
    for conv, bn in convs:
        if (
            conv.stride != (1, 1)
            or conv.padding not in ((0, 0), "valid")
            or conv.dilation != (1, 1)
            or conv.groups != 1
            or conv.bias is None
        ):
            raise NotImplementedError("compress() expects stride-1, unpadded, ungrouped convs with bias")
        scale, shift = _bn_affine(bn)
        st.append(_StageW(conv.weight.detach().double().clone(), conv.bias.detach().double().clone(), scale, shift))
    wf = fc.weight.detach().double()[out_keep].clone()  # (O', F)
    bf = fc.bias.detach().double()[out_keep].clone()
    n_feat = wf.shape[1]
    c_last = st[-1].w.shape[0]
    if n_feat % c_last:
        raise NotImplementedError(f"{name}.fc has {n_feat} inputs, not a multiple of {c_last} channels")
    per_chan = n_feat // c_last  # H·W positions per channel in flatten(C, H, W) order

    # 1. Forward: fold constant channels into the next layer's bias. A channel is constant when its
    #    filter is all zero (given the constant inputs already folded) or its BN scale is 0.
    for k, s in enumerate(st):
        out_const = (s.w.flatten(1) == 0).all(1)
        if s.scale is not None:
            out_const |= s.scale == 0
        if not bool(out_const.any()):
            continue
        y = s.b[out_const]
        if s.scale is not None:
            y = y * s.scale[out_const] + s.shift[out_const]
        v = torch.relu(y)  # conv output b -> max-pool (constant) -> BN -> ReLU
        if k + 1 < len(st):
            nxt = st[k + 1]
            nxt.b += nxt.w[:, out_const].sum(dim=(2, 3)) @ v  # no padding: every position sees the whole kernel
            nxt.w[:, out_const] = 0
        else:
            cols = wf.view(wf.shape[0], c_last, per_chan)
            bf += (cols[:, out_const] * v[None, :, None]).sum(dim=(1, 2))
            cols[:, out_const] = 0
        s.w[out_const] = 0  # its output is now unused; liveness removes it

    # 2. Backward liveness: features with a non-zero column, channels with a live feature, conv
    #    input channels with a non-zero weight slice into a live output channel. The first conv's
    #    inputs are the image channels, which are always kept.
    feat_alive = (wf != 0).any(0)
    out_alive = feat_alive.view(c_last, per_chan).any(1)
    for k in range(len(st) - 1, -1, -1):
        s = st[k]
        s.out_alive = out_alive
        if k == 0:
            s.in_alive = torch.ones(s.w.shape[1], dtype=torch.bool, device=s.w.device)
        else:
            s.in_alive = (s.w[out_alive] != 0).transpose(0, 1).flatten(1).any(1)
            out_alive = s.in_alive

    info: dict[str, dict] = {}
    if not bool(feat_alive.any()):  # nothing reaches the fc: constant branch relu(bias)
        lin = nn.Linear(0, len(out_keep)).to(device=device, dtype=dtype)
        lin.bias.copy_(bf.to(dtype))
        for k, (conv, _) in enumerate(convs):
            info[_layer_name(name, branch, k)] = _sizes(conv.in_channels, 0, conv.out_channels, 0)
        info[f"{name}.fc"] = _sizes(fc.in_features, 0, fc.out_features, len(out_keep))
        layers.update(info)
        return _Branch([], _FeatureLinear(lin, None, None, relu=True))

    # 3. Build the stages.
    stages = []
    for k, s in enumerate(st):
        w = s.w[s.out_alive][:, s.in_alive]
        b = s.b[s.out_alive]
        in_groups = None
        n_in = int(s.in_alive.sum())
        if merge_tied and k > 0 and n_in > 1:
            uniq, inv = _unique_rows(w.transpose(0, 1).flatten(1))
            if _merge_pays(merge_tied, n_in, uniq.shape[0], uniq.shape[1], elem):
                w = uniq.view(uniq.shape[0], w.shape[0], *w.shape[2:]).transpose(0, 1)
                in_groups = inv.to(device)
        scale = shift = None
        if s.scale is not None:
            sc, sh = s.scale[s.out_alive], s.shift[s.out_alive]
            if fold_bn and bool((sc > 0).all()):
                w = w * sc.view(-1, 1, 1, 1)
                b = b * sc + sh
            else:
                scale, shift = sc.to(dtype).contiguous(), sh.to(dtype).contiguous()
        conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:])).to(device=device, dtype=dtype)
        conv.weight.copy_(w.to(dtype))
        conv.bias.copy_(b.to(dtype))
        stages.append(_ConvStage(conv, in_groups, scale, shift))
        info[_layer_name(name, branch, k)] = _sizes(
            s.w.shape[1],
            w.shape[1],
            s.w.shape[0],
            w.shape[0],
            merged=in_groups is not None,
            bn_folded=(s.scale is not None and scale is None),
        )

    # fc: the compressed branch flattens its last activation in memory order (H, W, C') -- a free
    # view of a channels-last tensor, and it keeps the backward/ReLU in one layout -- so every live
    # feature (channel c', position p) sits at p·C' + c' there; gather those positions in
    # ascending order (sequential reads) and order the fc columns the same way.
    kept_chan = st[-1].out_alive
    n_kept_chan = int(kept_chan.sum())
    alive2d = feat_alive.view(c_last, per_chan)[kept_chan]  # (C', P)
    cidx, pidx = alive2d.nonzero(as_tuple=True)  # live features in (C', P) order = columns of wf[:, feat_alive]
    pos = pidx * n_kept_chan + cidx
    order = torch.argsort(pos)
    pos = pos[order]
    w = wf[:, feat_alive][:, order]
    keep = None if pos.numel() == n_kept_chan * per_chan else pos.to(device)  # all kept: pos == arange
    groups = None
    n_in = w.shape[1]
    if merge_tied and n_in > 1:
        uniq, inv = _unique_rows(w.t())
        if _merge_pays(merge_tied, n_in, uniq.shape[0], w.shape[0], elem):
            w, groups = uniq.t(), inv.to(device)
    lin = nn.Linear(w.shape[1], w.shape[0]).to(device=device, dtype=dtype)
    lin.weight.copy_(w.to(dtype))
    lin.bias.copy_(bf.to(dtype))
    info[f"{name}.fc"] = _sizes(
        fc.in_features,
        w.shape[1],
        fc.out_features,
        w.shape[0],
        kept_features=int(feat_alive.sum()),
        merged=groups is not None,
    )
    layers.update(info)
    return _Branch(stages, _FeatureLinear(lin, keep, groups, relu=True))


def _layer_name(prefix: str, branch: nn.Module, k: int) -> str:
    return f"{prefix}.conv{k + 1}" if type(branch) is SharedNet else f"{prefix}.conv"


def _sizes(in_before: int, in_after: int, out_before: int, out_after: int, **extra) -> dict:
    return dict(inputs=[int(in_before), int(in_after)], outputs=[int(out_before), int(out_after)], **extra)


# ---------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def compress(model: nn.Module, *, fold_bn: bool = True, merge_tied: bool | str = "auto") -> CompressedMultiTask:
    """Return a smaller module with the same eval-mode outputs as ``model`` (see the module docstring).

    Args:
        model: a trained (sparse, possibly tied) :class:`~mdmtn.models.HPS`, :class:`~mdmtn.models.MDMTN`
            or :class:`~mdmtn.models.STL`. It is not modified.
        fold_bn: fold eval-mode BatchNorm into the preceding conv where every kept scale is positive
            (removes BN's 2·C parameters and one op per stage). False keeps it as a per-channel affine,
            so the parameter count then changes only by what sparsity and tying remove.
        merge_tied: merge tied (identical) rows of Linear and conv weights into a segment sum and a
            smaller layer. ``"auto"`` (default) merges a layer only where it makes the stored model
            smaller: the weights saved must outweigh the int64 group index (one entry per merged
            input), so a layer with only a few ties is left unmerged. ``True`` merges every tie
            (fewest parameters), ``False`` none. The segment sum costs about what it saves in the
            fc, so latency stays about the same either way (see benchmarks/compress.py).

    Returns:
        :class:`CompressedMultiTask` (conv weights channels-last); ``.report`` is a dict with
        ``params_dense`` (parameters of ``model``, α included), ``params_compressed``,
        ``param_ratio``, ``index_buffer_elements`` (int64 entries of the gather/group buffers),
        ``stored_bytes_dense`` / ``stored_bytes_compressed`` (parameters, plus the index buffers
        of the compressed model; BN running statistics not counted), ``layers`` (per layer
        ``inputs``/``outputs`` as [before, after]), and the paper's row metrics of ``model``
        (``row_metrics``, conv rows as in the authors' code, i.e. comparable with the paper) with
        ``one_minus_SR = 1 − SR/100``.

    Raises:
        NotImplementedError: for any other module (bring-your-own models must be compressed by hand).
    """
    if type(model) not in _SUPPORTED:
        raise NotImplementedError(
            f"compress() supports the paper architectures {[c.__name__ for c in _SUPPORTED]}, not "
            f"{type(model).__name__}: it relies on their exact layer order (conv -> pool -> BN -> ReLU, "
            "flatten, Linear -> ReLU, fusion, heads). Compress a custom model by hand."
        )
    n_tasks = len(model.task_heads)
    is_md = type(model) is MDMTN
    alpha = model.alpha.detach().clone() if is_md else None
    layers: dict[str, dict] = {}

    used = [(h.weight.detach() != 0).any(0).nonzero().squeeze(1) for h in model.task_heads]
    a0 = [bool(alpha[i, 0] != 0) if is_md else True for i in range(n_tasks)]
    a1 = [bool(alpha[i, 1] != 0) if is_md else False for i in range(n_tasks)]
    use_shared = [a0[i] and used[i].numel() > 0 for i in range(n_tasks)]
    needed = [used[i] for i in range(n_tasks) if use_shared[i]]
    shared = None
    shared_pos: list[Tensor | None] = [None] * n_tasks
    if needed:
        u = torch.unique(torch.cat(needed))  # sorted
        shared = _compress_branch("shared", model.shared, u, fold_bn, merge_tied, layers)
        for i in range(n_tasks):
            if use_shared[i] and not torch.equal(used[i], u):
                shared_pos[i] = torch.searchsorted(u, used[i])
    else:
        layers["shared"] = dict(removed=True)
    monitors = {}
    if is_md:
        for i, mon in enumerate(model.monitors):
            if a1[i] and used[i].numel() > 0:
                monitors[i] = _compress_branch(f"monitors.{i}", mon, used[i], fold_bn, merge_tied, layers)
            else:
                layers[f"monitors.{i}"] = dict(removed=True)

    heads = []
    for i, h in enumerate(model.task_heads):
        w = h.weight.detach()[:, used[i]]
        groups = None
        if merge_tied and w.shape[1] > 1:
            uniq, inv = _unique_rows(w.t())
            if _merge_pays(merge_tied, w.shape[1], uniq.shape[0], w.shape[0], w.element_size()):
                w, groups = uniq.t(), inv
        lin = nn.Linear(w.shape[1], w.shape[0]).to(device=h.weight.device, dtype=h.weight.dtype)
        lin.weight.copy_(w)
        lin.bias.copy_(h.bias.detach())
        heads.append(_FeatureLinear(lin, None, groups, relu=False))
        layers[f"task_heads.{i}"] = _sizes(
            h.in_features, w.shape[1], h.out_features, h.out_features, merged=groups is not None
        )

    out = CompressedMultiTask(shared, monitors, alpha, heads, shared_pos, use_shared, [int(u.numel()) for u in used])
    # channels-last conv weights make the conv outputs channels-last whatever the input layout
    # (faster mkldnn convs and pooling on CPU, and the (H, W, C) flatten becomes a free view)
    out.to(memory_format=torch.channels_last)
    out.eval()
    p_dense, p_comp = count_parameters(model), count_parameters(out)
    rm = sparsity_metrics(model)
    out.report = dict(
        model=type(model).__name__,
        params_dense=p_dense,
        params_compressed=p_comp,
        param_ratio=p_comp / p_dense,
        index_buffer_elements=sum(b.numel() for b in out.buffers()),
        stored_bytes_dense=sum(p.numel() * p.element_size() for p in model.parameters()),
        stored_bytes_compressed=sum(t.numel() * t.element_size() for t in list(out.parameters()) + list(out.buffers())),
        layers=layers,
        row_metrics=rm,
        one_minus_SR=1.0 - rm["SR"] / 100.0,
        options=dict(fold_bn=fold_bn, merge_tied=merge_tied),
    )
    return out


def compression_summary(model: nn.Module) -> dict[str, Any] | None:
    """What :func:`compress` achieves on ``model``, for a run record (JSON-serialisable), or None
    for a model it does not handle. Keys: ``params_dense``, ``params_compressed``, ``param_ratio``,
    ``one_minus_SR``, ``stored_bytes_dense``, ``stored_bytes_compressed`` (parameters + index
    buffers, bytes), ``removed_layers``."""
    try:
        r = compress(model).report
    except NotImplementedError:
        return None
    keys = (
        "params_dense",
        "params_compressed",
        "param_ratio",
        "one_minus_SR",
        "stored_bytes_dense",
        "stored_bytes_compressed",
    )
    out = {k: r[k] for k in keys}
    out["removed_layers"] = sorted(k for k, v in r["layers"].items() if v.get("removed"))
    return out
