"""The record key of a joint solve: :class:`JointConfig` (K run configs that differ only in k,
plus the transfer settings), and the preference vectors of the MT2O-v comparisons."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from mdmtn.core.config import ConfigError, RunConfig, make_config
from mdmtn.core.fields import coerce

TRANSFERS = ("mt2o", "none", "fixed")
STRATEGIES = {"mt2o": "mt2o", "independent": "none"}  # sweep --strategy -> transfer
# Five preference vectors for MT2O comparisons (K = 5): task trade-offs spread over
# (0, 1), ends kept off 0 so no head is ignored. MT2O_VECTORS are dense (k0 = 0: the scalarised
# two-task problem MT2O was made for); MT2O_SPARSE_VECTORS add GrOWL with the quick sweep's k0.
MT2O_VECTORS: tuple[tuple[float, float, float], ...] = tuple(
    (0.0, w, round(1 - w, 6)) for w in (0.1, 0.3, 0.5, 0.7, 0.9)
)
MT2O_SPARSE_VECTORS: tuple[tuple[float, float, float], ...] = tuple(
    (0.001, round(w * 0.999, 6), round((1 - w) * 0.999, 6)) for w in (0.1, 0.3, 0.5, 0.7, 0.9)
)
for _k in MT2O_VECTORS + MT2O_SPARSE_VECTORS:  # keep the sums exact after rounding
    assert abs(sum(_k) - 1.0) < 1e-9, _k


@dataclass(frozen=True)
class JointConfig:
    """One joint solve of K subproblems: the record key of a MT2O-v / independent run.

    ``runs`` hold one :class:`RunConfig` per preference vector and must agree on everything
    but ``k``. The schedule is ``iterations`` × ``runs[0].schedule.epochs_per_iteration`` epochs (default
    ``phase1_iterations`` when the subproblems use GrOWL, else ``single_stage_iterations``).
    """

    runs: tuple[RunConfig, ...]
    transfer: str = "mt2o"
    period: int = 50  # optimiser steps between transfer steps (τ)
    neighbours: int = 2  # sources per receiver: the nearest preference vectors
    coefficients: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    beta0: float = 0.5  # initial cap on the mixing coefficient
    decay_fraction: float = 0.75  # the cap reaches 0 at this fraction of all steps
    iterations: int | None = None
    evals_per_epoch: int = 4  # hypervolume log points per epoch
    # hypervolume reference for each task's validation loss: above ln 10 ≈ 2.30, the loss of a
    # uniform 10-class guess, so every model that has learnt anything counts
    loss_reference: float = 2.5

    def __post_init__(self) -> None:
        if not self.runs:
            raise ConfigError("a joint solve needs at least one preference vector")
        base = _without_k(self.runs[0])
        for r in self.runs[1:]:
            if _without_k(r) != base:
                raise ConfigError("the subproblems of a joint solve must differ only in k")
        if len({r.k for r in self.runs}) != len(self.runs):
            raise ConfigError("duplicate preference vectors in a joint solve")
        if len({r.sparse for r in self.runs}) > 1:
            raise ConfigError("mix of k0 = 0 and k0 > 0 vectors: their schedules differ; solve them separately")
        if self.transfer not in TRANSFERS:
            raise ConfigError(f"transfer must be one of {TRANSFERS}, got {self.transfer!r}")
        if self.period < 1 or self.neighbours < 0 or self.evals_per_epoch < 1:
            raise ConfigError("period and evals_per_epoch must be >= 1, neighbours >= 0")
        if not all(0 < a <= 1 for a in self.coefficients) or not 0 <= self.beta0 <= 1 or not 0 < self.decay_fraction:
            raise ConfigError("coefficients must lie in (0, 1], beta0 in [0, 1], decay_fraction > 0")
        if self.runs[0].method != "wc_al":
            raise ConfigError("joint solves train the paper's method (method='wc_al')")

    @property
    def n_iterations(self) -> int:
        r = self.runs[0]
        if self.iterations is not None:
            return self.iterations
        return r.schedule.phase1_iterations if r.sparse else r.schedule.single_stage_iterations

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "runs"}
        d["coefficients"] = list(self.coefficients)
        d["vectors"] = [list(r.k) for r in self.runs]
        d["run"] = _without_k(self.runs[0])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JointConfig":
        d = dict(d)
        run = d.pop("run")
        runs = tuple(RunConfig.from_dict({**run, "k": k}) for k in d.pop("vectors"))
        d["coefficients"] = tuple(d["coefficients"])
        return cls(runs=runs, **d)

    def key(self) -> str:
        """16 hex digits of the config's hash: the joint record's file name."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _without_k(r: RunConfig) -> dict[str, Any]:
    d = r.key_fields(joint=True)
    d.pop("k")
    return d


def joint_config(
    dataset: str,
    model: str,
    vectors: Sequence[Sequence[float]],
    preset: str = "quick",
    seed: int = 0,
    *,
    strategy: str = "mt2o",
    **options: Any,
) -> JointConfig:
    """Validated :class:`JointConfig`. ``strategy`` is ``"mt2o"`` or ``"independent"`` (or a
    ``transfer`` value); ``options`` holds JointConfig fields and RunConfig overrides."""
    transfer = STRATEGIES.get(strategy, strategy)
    names = {f.name for f in dataclasses.fields(JointConfig)} - {"runs"}
    try:  # text from the CLI becomes the declared type, or a one-line error
        joint = {k: coerce(JointConfig, k, v) for k, v in options.items() if k in names}
    except ValueError as e:
        raise ConfigError(str(e)) from None
    run_over = {k: v for k, v in options.items() if k not in names}
    runs = tuple(make_config(dataset, model, k, preset, seed, **run_over) for k in vectors)
    return JointConfig(runs=runs, transfer=transfer, **joint)
