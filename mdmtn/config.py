"""One frozen dataclass per run: :class:`RunConfig`.

The config is the run-record key (its :meth:`RunConfig.key` hashes every field), so two
runs with equal configs are the same experiment. The CLI and the book's papermill
parameters map onto :func:`make_config`; nothing else builds configs.

Presets fix the schedule and data size; the per-dataset and per-model hyperparameters come
from the paper (spec §4 table) and can be overridden field by field.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

DATASETS = ("multimnist", "cifar10mnist")
INPUT_SHAPES = {"multimnist": (1, 28, 28), "cifar10mnist": (3, 32, 32)}
MODELS = ("hps", "mdmtn", "stl")
METHODS = ("wc_al",)
PRESETS = ("smoke", "quick", "paper")


class ConfigError(ValueError):
    """A run configuration that cannot be trained; the message says how to fix it."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a training run (but not where its data lives).

    Schedule: phase 1 has ``phase1_iterations`` outer iterations of ``epochs_per_iteration``
    epochs (GrOWL prox after every epoch); phase 2 has ``phase2_iterations`` (tying enforced
    after every epoch). Runs with k0 == 0 train one stage of ``single_stage_iterations``.
    Sizes ``n_train``/``n_val``/``n_test`` of ``None`` mean the full split.
    """

    dataset: str = "multimnist"
    model: str = "mdmtn"
    method: str = "wc_al"
    k: tuple[float, ...] = (0.001, 0.2, 0.799)
    preset: str = "quick"
    seed: int = 0
    # data
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    split_seed: int = 42
    build_seed: int = 0
    # schedule (Algorithm 1)
    epochs_per_iteration: int = 3
    phase1_iterations: int = 3
    phase2_iterations: int = 10
    single_stage_iterations: int = 12
    batch_size: int = 256
    eval_batch_size: int = 1000
    lr: float = 2.5e-3
    lr_decay: float = 0.5
    # augmented Lagrangian of the modified weighted Chebyshev problem
    mu0: float = 2.5e-5
    mu_factor: float = 0.5
    eps_aug: float = 1e-4
    # GrOWL
    beta1: float = 0.8
    beta2: float = 0.2
    eta1: float = 20.0  # minimum model SR (%) for a phase-1 model to count as sparse
    eta2: float = 0.8  # maximum fraction of zero rows per layer
    ap_preference: float = 0.7
    ap_rows: str = "nonzero"  # "all": AP over zero rows too, as the authors' code (#31)
    ap_max_iter: int = 200
    # switches for the departures of the authors' code from the paper (spec §10)
    growl_grad: bool = False  # False: L0 enters the loss detached, as in the authors' code (#2)
    penalty_order: str = "paper"  # "code": θ applied to ascending norms (#3)
    conv_rows: str = "paper"  # "code": conv rows by memory-order view (#4)
    prox_mode: str = "exact"  # "head" / "2023": the authors' approximate PAV (#6)
    cap_rule: str = "head"  # "2023": older restoration rule (#7)
    cap_ramp: bool = True
    optimise_t: bool = True  # False: HPS keeps t at its initial value, as in the code (#13)
    accumulate_aux_grads: bool = False  # True: t/α gradients never zeroed, as in the code (#14)
    lsuv_when_k0_zero: bool = False  # the code skips LSUV for k0 == 0 (#16)

    @property
    def n_tasks(self) -> int:
        return len(self.k) - 1

    @property
    def sparse(self) -> bool:
        """Whether this run uses GrOWL (k0 > 0) and the two-phase schedule."""
        return self.k[0] > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["k"] = list(self.k)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}")
        d = dict(d)
        if "k" in d:
            d["k"] = tuple(float(v) for v in d["k"])
        return cls(**d)

    def key(self) -> str:
        """Stable 16-hex-digit hash of all fields: the run-record file name."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Paper hyperparameters per dataset (spec §4) and per (dataset, model) (η1, η2).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "multimnist": dict(lr=2.5e-3, lr_decay=0.5, mu0=2.5e-5, ap_preference=0.7),
    "cifar10mnist": dict(lr=1e-4, lr_decay=0.98, mu0=1e-4, ap_preference=0.8),
}
SPARSITY_DEFAULTS: dict[tuple[str, str], dict[str, float]] = {
    ("multimnist", "mdmtn"): dict(eta1=20.0, eta2=0.8),
    ("multimnist", "hps"): dict(eta1=10.0, eta2=0.8),
    ("cifar10mnist", "mdmtn"): dict(eta1=10.0, eta2=0.3),
    ("cifar10mnist", "hps"): dict(eta1=5.0, eta2=0.15),
}
# Presets: data sizes and schedule. `paper` is the full schedule of the authors' code.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": dict(n_train=512, n_val=256, n_test=256, epochs_per_iteration=1,
                  phase1_iterations=3, phase2_iterations=1, single_stage_iterations=2,
                  ap_max_iter=10),
    "quick": dict(n_train=20000, n_val=5000, n_test=None, epochs_per_iteration=2,
                  phase1_iterations=3, phase2_iterations=3, single_stage_iterations=6),
    "paper": dict(n_train=None, n_val=None, n_test=None, epochs_per_iteration=3,
                  phase1_iterations=3, phase2_iterations=10, single_stage_iterations=12),
}
# HEAD-code μ schedule (spec §10 #1), selectable with mu_schedule="head".
HEAD_MU: dict[str, tuple[float, float]] = {"multimnist": (2.5e-8, 2.0), "cifar10mnist": (6.8e-8, 2.0)}


def validate_k(k: Sequence[float], n_tasks: int = 2) -> tuple[float, ...]:
    """Check a preference vector k = (k0, k1, ..., km) and return it as a tuple of floats.

    k0 weighs the sparsity objective, k1..km the task losses. Raises :class:`ConfigError`
    with a fix-it message if k has the wrong length, is not finite, is negative or does not
    sum to 1 within 1e-6.
    """
    try:
        k = tuple(float(v) for v in k)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"k must be a list of numbers, got {k!r}") from e
    if len(k) != n_tasks + 1:
        raise ConfigError(
            f"k must have {n_tasks + 1} entries (k0 for sparsity, then one per task), got {len(k)}: {k}"
        )
    if not all(math.isfinite(v) for v in k):
        raise ConfigError(f"k must be finite, got {k}")
    if any(v < 0 for v in k):
        raise ConfigError(f"k must be non-negative, got {k}")
    if abs(sum(k) - 1.0) > 1e-6:
        raise ConfigError(f"k must sum to 1 (within 1e-6), got sum {sum(k):.9g} for {k}")
    if sum(k[1:]) == 0:
        raise ConfigError(f"at least one task weight k1..k{n_tasks} must be positive, got {k}")
    return k


def make_config(dataset: str = "multimnist", model: str = "mdmtn", k: Sequence[float] = (0.001, 0.2, 0.799),
                preset: str = "quick", seed: int = 0, mu_schedule: str = "paper", **overrides: Any) -> RunConfig:
    """Build a validated :class:`RunConfig` from the paper's defaults, a preset and overrides.

    ``mu_schedule="head"`` selects the authors' later μ0/μ-update (spec §10 #1).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if model not in ("hps", "mdmtn"):
        raise ConfigError(f"model {model!r} cannot be trained with the paper's method; choose 'hps' or 'mdmtn'")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    if mu_schedule not in ("paper", "head"):
        raise ConfigError("mu_schedule must be 'paper' or 'head'")
    values: dict[str, Any] = dict(dataset=dataset, model=model, k=validate_k(k), preset=preset, seed=int(seed))
    values.update(DATASET_DEFAULTS[dataset])
    values.update(SPARSITY_DEFAULTS[(dataset, model)])
    values.update(PRESET_DEFAULTS[preset])
    if dataset == "cifar10mnist":
        values["eval_batch_size"] = 1000
    if mu_schedule == "head":
        values["mu0"], values["mu_factor"] = HEAD_MU[dataset]
    names = {f.name for f in dataclasses.fields(RunConfig)}
    bad = set(overrides) - names
    if bad:
        raise ConfigError(f"unknown config fields {sorted(bad)}; valid fields: {sorted(names)}")
    values.update(overrides)
    cfg = RunConfig(**values)
    _check_switches(cfg)
    return cfg


def _check_switches(cfg: RunConfig) -> None:
    choices = dict(penalty_order=("paper", "code"), conv_rows=("paper", "code"),
                   prox_mode=("exact", "head", "2023"), cap_rule=("head", "2023"), method=METHODS,
                   ap_rows=("nonzero", "all"))
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
    if cfg.epochs_per_iteration < 1 or cfg.phase1_iterations < 1 or cfg.single_stage_iterations < 1:
        raise ConfigError("epochs_per_iteration, phase1_iterations and single_stage_iterations must be >= 1")
