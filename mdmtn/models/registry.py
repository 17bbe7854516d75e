"""Paper architectures by name: :func:`build_model` (the one place that knows every model class)."""

from __future__ import annotations

from torch import nn

from mdmtn.core.config import MODELS
from mdmtn.models.backbone import spec_for_input
from mdmtn.models.kdmtl import KDMTL
from mdmtn.models.mtan import MTAN
from mdmtn.models.multitask import HPS, MDMTN, STL, STLSet


def build_model(name: str, input_shape: tuple[int, int, int], n_tasks: int | None = None, **options) -> nn.Module:
    """Instantiate a paper architecture by name for an input shape (C, H, W).

    ``n_tasks`` defaults to 2. For ``"stl"`` it counts networks instead: ``None`` gives one
    single-task network (:class:`STL`), an integer gives :class:`STLSet` with that many (what the
    STL baseline trains and :func:`mdmtn.records.checkpoint.load_checkpoint` rebuilds). ``options`` go to the
    model class (``shared_attention`` for MTAN).
    """
    spec = spec_for_input(input_shape)
    if name == "stl":
        return STL(spec) if n_tasks is None else STLSet(spec, n_tasks)
    classes = {"hps": HPS, "mdmtn": MDMTN, "mtan": MTAN, "kdmtl": KDMTL}
    if name not in classes:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
    return classes[name](spec, 2 if n_tasks is None else n_tasks, **options)
