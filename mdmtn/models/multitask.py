"""Multi-task models: hard parameter sharing (HPS), the monitored network (MDMTN) and STL."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from mdmtn.models.backbone import BackboneSpec, Monitor, SharedNet


@runtime_checkable
class MultiTaskModel(Protocol):
    """What the trainer needs from a network.

    - ``forward(x)`` -> list of T tensors (B, n_classes_t) of log-probabilities;
    - ``task_heads``: the task-specific output layers (never sparsified);
    - ``growl_weights()``: (name, weight) pairs that GrOWL sparsifies and ties. Input layers
      and heads are excluded by the paper, so a model lists only its inner layers.
    """

    task_heads: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]: ...

    def growl_weights(self) -> list[tuple[str, nn.Parameter]]: ...


def linear_heads(spec: BackboneSpec, n_tasks: int) -> nn.ModuleList:
    """One linear classifier per task on the shared representation, (B, hidden) -> (B, classes)."""
    return nn.ModuleList(nn.Linear(spec.hidden, spec.num_classes) for _ in range(n_tasks))


class HPS(nn.Module):
    """Hard parameter sharing: one shared network S and a linear head per task."""

    def __init__(self, spec: BackboneSpec, n_tasks: int = 2) -> None:
        super().__init__()
        self.spec = spec
        self.shared = SharedNet(spec)
        self.task_heads = linear_heads(spec, n_tasks)

    def representation(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-task input of each head, (B, hidden) each; shared by all tasks in HPS."""
        z = self.shared(x)
        return [z] * len(self.task_heads)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [F.log_softmax(h(z), dim=1) for h, z in zip(self.task_heads, self.representation(x))]

    def growl_weights(self) -> list[tuple[str, nn.Parameter]]:
        return [("shared.conv2.weight", self.shared.conv2.weight), ("shared.fc.weight", self.shared.fc.weight)]


class MDMTN(HPS):
    """Monitored deep multi-task network: head_i(α_i0·S(u) + α_i1·M_i(u)).

    The fusion weights α (T, 2) are a registered parameter initialised to (1, 0) per task,
    so checkpoints restore them (the authors kept them in a plain dict; departure #15).
    """

    def __init__(self, spec: BackboneSpec, n_tasks: int = 2) -> None:
        super().__init__(spec, n_tasks)
        self.monitors = nn.ModuleList(Monitor(spec) for _ in range(n_tasks))
        self.alpha = nn.Parameter(torch.tensor([[1.0, 0.0]] * n_tasks))

    def representation(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.shared(x)
        return [a[0] * z + a[1] * m(x) for a, m in zip(self.alpha, self.monitors)]

    def growl_weights(self) -> list[tuple[str, nn.Parameter]]:
        return super().growl_weights() + [(f"monitors.{i}.fc.weight", m.fc.weight) for i, m in enumerate(self.monitors)]


class STL(HPS):
    """Single-task learning: the shared network with one head (trained once per task)."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec, n_tasks=1)


class STLSet(nn.Module):
    """One independent :class:`STL` network per task, seen as one multi-task model.

    ``forward(x)`` returns ``[nets[t](x)[0] for t]``: task t is answered by its own network, so
    :func:`mdmtn.training.trainer.evaluate` and the sparsity metrics apply unchanged. This is what the STL
    baseline trains and checkpoints (state-dict keys ``nets.<t>.…``).
    """

    def __init__(self, spec: BackboneSpec, n_tasks: int = 2) -> None:
        super().__init__()
        self.spec = spec
        self.nets = nn.ModuleList(STL(spec) for _ in range(n_tasks))

    @property
    def task_heads(self) -> nn.ModuleList:
        # a fresh, unregistered list: registering the heads twice would duplicate state-dict keys
        return nn.ModuleList(net.task_heads[0] for net in self.nets)

    def representation(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [net.representation(x)[0] for net in self.nets]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [net(x)[0] for net in self.nets]

    def growl_weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(f"nets.{t}.{n}", w) for t, net in enumerate(self.nets) for n, w in net.growl_weights()]


class ModelContractError(ValueError):
    """A network passed as ``model=`` does not satisfy :class:`MultiTaskModel`; the message says what
    it returned and what is expected."""


@torch.no_grad()
def check_model_contract(model: nn.Module, xb: torch.Tensor, n_tasks: int, n_classes: int = 10) -> None:
    """Run ``model`` once on a batch ``xb`` (B, C, H, W) in eval mode and check the
    :class:`MultiTaskModel` contract: a list or tuple of ``n_tasks`` tensors of shape
    (B, ``n_classes``) holding log-probabilities (each row's logsumexp within 1e-3 of 0, which raw
    logits almost never are); also ``task_heads`` and ``growl_weights()``. Raises
    :class:`ModelContractError` naming what was returned."""
    for member in ("task_heads", "growl_weights"):
        if not hasattr(model, member):
            raise ModelContractError(
                f"the model has no {member!r}; a multi-task model needs task_heads (a "
                "ModuleList) and growl_weights() (see mdmtn.models.MultiTaskModel)"
            )
    was_training = model.training
    model.eval()
    try:
        outs = model(xb)
    except Exception as e:  # noqa: BLE001 - a user's forward: say which input it failed on
        raise ModelContractError(
            f"the model's forward failed on a batch of shape {tuple(xb.shape)} "
            f"(batch, channels, height, width): {type(e).__name__}: {e}"
        ) from e
    finally:
        model.train(was_training)
    if isinstance(outs, torch.Tensor) or not isinstance(outs, (list, tuple)):
        got = f"one tensor of shape {tuple(outs.shape)}" if isinstance(outs, torch.Tensor) else type(outs).__name__
        raise ModelContractError(
            f"the model returned {got}; expected a list of {n_tasks} tensors (one per task) "
            f"of shape (batch, {n_classes}) with log-probabilities"
        )
    if len(outs) != n_tasks:
        raise ModelContractError(f"the model returned {len(outs)} outputs; expected {n_tasks}, one per task")
    for t, o in enumerate(outs):
        if not isinstance(o, torch.Tensor) or o.shape != (xb.shape[0], n_classes):
            shape = tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__
            raise ModelContractError(f"output {t} has shape {shape}; expected ({xb.shape[0]}, {n_classes})")
        lse = torch.logsumexp(o.double(), dim=1)
        if not bool(torch.isfinite(lse).all()) or float((lse.abs()).max()) > 1e-3:
            raise ModelContractError(
                f"output {t} is not log-probabilities (row logsumexp up to "
                f"{float(lse.abs().max()):.3g}, expected 0): end each head with log_softmax, "
                "as the losses are NLL"
            )
