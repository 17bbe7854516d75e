"""One frozen dataclass per run: :class:`RunConfig`.

The config is the run-record key (its :meth:`RunConfig.key` hashes every field), so two
runs with equal configs are the same experiment. The CLI and the book's papermill
parameters map onto :func:`make_config`; nothing else builds configs.

Presets fix the schedule and data size; the per-dataset and per-model hyperparameters come
from the paper (book appendix) and can be overridden field by field.

``method`` selects the training procedure: ``"wc_al"`` is the paper's method (Algorithm 1);
``"mgda"``, ``"stl"``, ``"mtan"`` and ``"kdmtl"`` are the baselines of Tables 1-2 and of the
authors' code (book appendix), trained by :mod:`mdmtn.baselines`. Each method trains fixed models
(:data:`METHOD_MODELS`). The baselines ignore ``k``: it is stored as given (and still
validated) so that every record has the same fields.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from .fields import coerce

DATASETS = ("multimnist", "cifar10mnist")
INPUT_SHAPES = {"multimnist": (1, 28, 28), "cifar10mnist": (3, 32, 32)}
MODELS = ("hps", "mdmtn", "stl", "mtan", "kdmtl")
# how the book and the tables name each dataset's two tasks
TASK_LABELS = {"multimnist": ("left", "right"), "cifar10mnist": ("CIFAR-10", "MNIST")}
METHODS = ("wc_al", "mgda", "stl", "mtan", "kdmtl")
# Which models each method trains (make_config rejects other pairs).
METHOD_MODELS: dict[str, tuple[str, ...]] = {
    "wc_al": ("hps", "mdmtn"), "mgda": ("hps", "mdmtn"), "stl": ("stl",), "mtan": ("mtan",), "kdmtl": ("kdmtl",),
}
MGDA_VARIANTS = ("ub", "params")
MGDA_NORMALIZATIONS = ("none", "l2", "loss", "loss+")
MGDA_GRAD_BUGS = ("none", "2023", "head")


def _baseline(default: Any) -> Any:
    """A baseline-only field. It is left out of :meth:`RunConfig.key` while it holds its default, so
    adding these fields did not change the keys (record file names) of existing ``wc_al`` runs."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("baseline defaults must be immutable")
    return field(default=default, metadata={"key_omit_default": True})
def _added(default: Any) -> Any:
    """A field added after records were committed: left out of every key (this config's and a
    joint solve's, :meth:`RunConfig.key_fields`) while it holds its default, so no committed
    record's key changes."""
    return field(default=default, metadata={"key_omit_default": True, "joint_key_omit_default": True})


PRESETS = ("smoke", "quick", "paper")
PHASE1_KEEP = ("best_val", "last")


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
    # switches for the departures of the authors' code from the paper (book appendix)
    growl_grad: bool = False  # False: L0 enters the loss detached, as in the authors' code (#2)
    penalty_order: str = "paper"  # "code": θ applied to ascending norms (#3)
    conv_rows: str = "paper"  # "code": conv rows by memory-order view (#4)
    prox_mode: str = "exact"  # "head" / "2023": the authors' approximate PAV (#6)
    cap_rule: str = "head"  # "2023": older restoration rule (#7)
    cap_ramp: bool = True
    optimise_t: bool = True  # False: HPS keeps t at its initial value, as in the code (#13)
    accumulate_aux_grads: bool = False  # True: t/α gradients never zeroed, as in the code (#14)
    lsuv_when_k0_zero: bool = False  # the code skips LSUV for k0 == 0 (#16)
    # which phase-1 model phase 2 starts from: "best_val", the best validation accuracy among
    # epochs with SR >= eta1 (else the best of any sparsity), as the authors' code (#9); "last",
    # the model after phase 1's final epoch, as the paper's text ("the most recent model obtained
    # in the initial stage"). Hashed only when not default, so existing keys are unchanged.
    phase1_keep: str = _added("best_val")
    # "linear": minimise k·(L0, L1, ..., Lm) instead of the Chebyshev AL (MT2O's default
    # subproblem, and the weighted sum the toy chapter contrasts); hashed only when not default
    scalarization: str = _baseline("chebyshev_al")
    # 2-D Pareto-front study (paper App. B): start from the trained sparse model of the run with
    # this record key, keep its zero rows at zero, train one stage of single_stage_iterations
    init_from: str | None = _baseline(None)
    # ---- baselines (method != "wc_al"; the book appendix). lr / lr_decay / batch_size above are shared. ----
    # data
    full_train: bool = _baseline(False)  # train on train+val, no validation, keep the last epoch (MGDA)
    normalize_inputs: bool = _baseline(True)  # False: ToTensor only, range [0, 1] (MGDA on Cifar10Mnist)
    drop_last: bool = _baseline(False)  # drop an incomplete last training batch (MGDA's fixed-batch models)
    # schedule: `epochs` epochs; lr = lr * lr_decay**n(e), n(e) = number of decays before epoch e; the
    # decays happen at the starts of epochs lr_first_decay, lr_first_decay + lr_step, ...
    epochs: int = _baseline(100)
    lr_step: int = _baseline(30)
    lr_first_decay: int = _baseline(31)
    momentum: float = _baseline(0.9)  # SGD momentum (MGDA)
    # MGDA (Sener & Koltun 2018)
    mgda_variant: str = _baseline("ub")  # "ub": grads w.r.t. the shared representation; "params": shared weights
    mgda_normalization: str = _baseline("none")  # "none" as the authors ran it; "loss+" is Sener's
    mgda_grad_bug: str = _baseline("none")  # "2023" / "head": leftover task gradients of the authors' code (#20)
    # searches on a random subset of the training split (MTAN, KDMTL), each candidate from a fresh LSUV init.
    # 50 epochs per the book appendix; the two stored versions of the authors' config.py say num_epochs_search=25.
    search_epochs: int = _baseline(50)
    search_fraction: float = _baseline(0.5)
    # MTAN (Liu et al. 2019 as coded by the authors): loss sum_t lambda_t CE_t
    mtan_lambdas: tuple[tuple[float, ...], ...] = _baseline(
        ((0.01, 0.09), (0.09, 0.01), (0.02, 0.08), (0.08, 0.02), (0.03, 0.07), (0.07, 0.03), (0.04, 0.06),
         (0.06, 0.04), (0.05, 0.05)))
    mtan_lrs: tuple[float, ...] = _baseline((1e-5, 1e-4, 1e-3, 1e-2, 1e-1))
    mtan_attention: str = _baseline("per_task")  # "shared": one attention module for all tasks, as coded (#25)
    # KDMTL (Li & Bilen 2020 as coded by the authors)
    kd_lambdas: tuple[tuple[float, ...], ...] = _baseline(
        ((0.01, 0.04), (0.04, 0.01), (0.02, 0.03), (0.03, 0.02), (0.025, 0.025)))
    kd_adaptor_lr: float = _baseline(1e-4)
    kd_adaptor_weight_decay: float = _baseline(5e-4)
    kd_detach: str = _baseline("teacher")  # "both": the distillation term has no gradient, as coded (#24)
    kd_teacher_epochs: int = _baseline(100)
    kd_teacher_lr: float = _baseline(1e-2)
    kd_teacher_lr_decay: float = _baseline(0.5)  # stepped after every epoch, as coded

    @property
    def n_tasks(self) -> int:
        return len(self.k) - 1

    @property
    def sparse(self) -> bool:
        """Whether this run uses GrOWL (k0 > 0) and the two-phase schedule."""
        return self.k[0] > 0

    @property
    def baseline(self) -> bool:
        """Whether this run is a baseline (trained by :mod:`mdmtn.baselines`)."""
        return self.method != "wc_al"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["k"] = list(self.k)
        for name in ("mtan_lambdas", "kd_lambdas"):
            d[name] = [list(v) for v in d[name]]
        d["mtan_lrs"] = list(d["mtan_lrs"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}")
        d = dict(d)
        return cls(**_canonical(d))

    def key_fields(self, joint: bool = False) -> dict[str, Any]:
        """:meth:`to_dict` without the fields a key leaves out at their default (``joint``: those
        of a joint solve's key, which hashes every field older than the solver)."""
        flag = "joint_key_omit_default" if joint else "key_omit_default"
        d = self.to_dict()
        for f in dataclasses.fields(self):
            if f.metadata.get(flag) and getattr(self, f.name) == f.default:
                del d[f.name]
        return d

    def key(self) -> str:
        """Stable 16-hex-digit hash of all fields: the run-record file name.

        Baseline-only fields are hashed only when they differ from their defaults, so configs
        of the paper's method keep the keys they had before those fields existed. Distinct
        configs still get distinct keys (while the defaults stay as they are).
        """
        blob = json.dumps(self.key_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _canonical(d: dict[str, Any]) -> dict[str, Any]:
    """Lists from JSON / the CLI back to the tuples a frozen (hashable) config holds."""
    d = dict(d)
    if "k" in d:
        d["k"] = tuple(float(v) for v in d["k"])
    for name in ("mtan_lambdas", "kd_lambdas"):
        if name in d:
            d[name] = tuple(tuple(float(x) for x in v) for v in d[name])
    if "mtan_lrs" in d:
        d["mtan_lrs"] = tuple(float(v) for v in d["mtan_lrs"])
    return d


# Paper hyperparameters per dataset (book appendix) and per (dataset, model) (η1, η2).
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
# Baselines (book appendix), per method and dataset, at the paper's full schedule. The schedule fields
# (lr_first_decay, lr_step) encode when the authors' scheduler steps:
#   MGDA: lr halved when `epoch > 0 and epoch % 30 == 0` at an epoch's end -> new lr from epochs 31, 61, 91;
#   STL MultiMNIST: ExponentialLR(0.5) stepped when `epoch % 30 == 0` -> from epochs 1, 31, 61, 91;
#   STL Cifar10Mnist, KDMTL teachers: stepped after every epoch -> from epoch 1 on;
#   KDMTL / MTAN students: StepLR(25) stepped after every epoch -> from epochs 25, 50, ...
BASELINE_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("mgda", "multimnist"): dict(lr=1e-2, momentum=0.9, lr_decay=0.5, epochs=100, lr_first_decay=31, lr_step=30,
                                 full_train=True, normalize_inputs=True, drop_last=True),
    ("mgda", "cifar10mnist"): dict(lr=1e-2, momentum=0.9, lr_decay=0.5, epochs=100, lr_first_decay=31, lr_step=30,
                                   full_train=True, normalize_inputs=False, drop_last=True),
    ("stl", "multimnist"): dict(lr=1e-2, lr_decay=0.5, epochs=100, lr_first_decay=1, lr_step=30),
    # the paper says lr_s = 5e-2 for Cifar10Mnist; every version of the code uses 1e-4 (departure #23)
    ("stl", "cifar10mnist"): dict(lr=1e-4, lr_decay=0.98, epochs=100, lr_first_decay=1, lr_step=1),
    ("kdmtl", "multimnist"): dict(lr=1e-4, lr_decay=0.98, epochs=200, lr_first_decay=25, lr_step=25,
                                  search_epochs=50, search_fraction=0.2, kd_teacher_epochs=100,
                                  kd_teacher_lr=1e-2, kd_teacher_lr_decay=0.5),
    ("kdmtl", "cifar10mnist"): dict(lr=1e-4, lr_decay=0.98, epochs=200, lr_first_decay=25, lr_step=25,
                                    search_epochs=50, search_fraction=0.2, kd_teacher_epochs=100,
                                    kd_teacher_lr=1e-4, kd_teacher_lr_decay=0.98),
    ("mtan", "multimnist"): dict(lr=1e-5, lr_decay=0.5, epochs=200, lr_first_decay=25, lr_step=25,
                                 search_epochs=50, search_fraction=0.5),
    ("mtan", "cifar10mnist"): dict(lr=1e-5, lr_decay=0.5, epochs=200, lr_first_decay=25, lr_step=25,
                                   search_epochs=50, search_fraction=0.5),
}
# Shorter baseline schedules for the CPU presets; the lr decays keep roughly the paper's relative
# positions. `quick` MGDA/STL on MultiMNIST take 1-3 minutes per seed on a 2-core CPU.
BASELINE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mgda": dict(epochs=2, lr_first_decay=2, lr_step=1),
        "stl": dict(epochs=2, lr_first_decay=1, lr_step=1),
        "kdmtl": dict(epochs=2, lr_first_decay=1, lr_step=1, search_epochs=1, kd_teacher_epochs=1,
                      kd_lambdas=((0.01, 0.04), (0.025, 0.025))),
        "mtan": dict(epochs=2, lr_first_decay=1, lr_step=1, search_epochs=1,
                     mtan_lambdas=((0.01, 0.09), (0.05, 0.05)), mtan_lrs=(1e-4, 1e-3)),
    },
    "quick": {
        "mgda": dict(epochs=10, lr_first_decay=4, lr_step=3),
        "stl": dict(epochs=10, lr_first_decay=1, lr_step=3),  # MultiMNIST; Cifar10Mnist keeps step 1
        "kdmtl": dict(epochs=12, lr_first_decay=3, lr_step=3, search_epochs=1, kd_teacher_epochs=6),
        "mtan": dict(epochs=12, lr_first_decay=3, lr_step=3, search_epochs=1),
    },
    "paper": {},
}


# Affinity propagation on Cifar10Mnist's ~5,000 non-zero monitor rows costs minutes per layer on
# a 2-core CPU at 200 iterations; the quick preset caps it (it rarely converges either way).
PRESET_DATASET_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {("quick", "cifar10mnist"): dict(ap_max_iter=50)}
# HEAD-code μ schedule (departure #1), selectable with mu_schedule="head".
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

    ``mu_schedule="head"`` selects the authors' later μ0/μ-update (departure #1).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    method = overrides.get("method", "wc_al")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {METHODS}")
    allowed = METHOD_MODELS[method]
    if model not in allowed:
        if method == "wc_al":
            raise ConfigError(f"model {model!r} cannot be trained with the paper's method; choose 'hps' or 'mdmtn'")
        raise ConfigError(f"method {method!r} trains model {' or '.join(map(repr, allowed))}, got model {model!r}"
                          + (f" (use --model {allowed[0]})" if len(allowed) == 1 else ""))
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    if mu_schedule not in ("paper", "head"):
        raise ConfigError("mu_schedule must be 'paper' or 'head'")
    values: dict[str, Any] = dict(dataset=dataset, model=model, k=validate_k(k), preset=preset, seed=int(seed))
    values.update(DATASET_DEFAULTS[dataset])
    values.update(SPARSITY_DEFAULTS.get((dataset, model), {}))
    values.update(PRESET_DEFAULTS[preset])
    values.update(PRESET_DATASET_DEFAULTS.get((preset, dataset), {}))
    if dataset == "cifar10mnist":
        values["eval_batch_size"] = 1000
    if method != "wc_al":
        values.update(BASELINE_DEFAULTS[(method, dataset)])
        scaled = dict(BASELINE_PRESETS[preset].get(method, {}))
        if method == "stl" and dataset == "cifar10mnist":  # ExponentialLR after every epoch at every preset
            scaled.pop("lr_step", None)
        values.update(scaled)
        if values.get("full_train"):
            # train on train+val, as MGDA used all 60k / 50k training images: same total as the preset
            n_train, n_val = values["n_train"], values["n_val"]
            values["n_train"] = None if n_train is None or n_val is None else n_train + n_val
            values["n_val"] = 0
    if mu_schedule == "head":
        values["mu0"], values["mu_factor"] = HEAD_MU[dataset]
    names = {f.name for f in dataclasses.fields(RunConfig)}
    bad = set(overrides) - names
    if bad:
        raise ConfigError(f"unknown config fields {sorted(bad)}; valid fields: {sorted(names)}")
    try:  # text from the CLI / papermill becomes the declared type, or a one-line error
        values.update({name: coerce(RunConfig, name, v) for name, v in overrides.items()})
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = RunConfig(**_canonical(values))
    _check_switches(cfg)
    return cfg


def _check_switches(cfg: RunConfig) -> None:
    choices = dict(penalty_order=("paper", "code"), conv_rows=("paper", "code"),
                   prox_mode=("exact", "head", "2023"), cap_rule=("head", "2023"), method=METHODS,
                   ap_rows=("nonzero", "all"), mgda_variant=MGDA_VARIANTS, mgda_normalization=MGDA_NORMALIZATIONS,
                   mgda_grad_bug=MGDA_GRAD_BUGS, mtan_attention=("per_task", "shared"), kd_detach=("teacher", "both"),
                   scalarization=("chebyshev_al", "linear"), phase1_keep=PHASE1_KEEP)
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
    if cfg.model not in METHOD_MODELS[cfg.method]:
        raise ConfigError(f"method {cfg.method!r} trains model {' or '.join(METHOD_MODELS[cfg.method])}, "
                          f"got {cfg.model!r}")
    _check_ranges(cfg)
    if cfg.epochs_per_iteration < 1 or cfg.phase1_iterations < 1 or cfg.single_stage_iterations < 1:
        raise ConfigError("epochs_per_iteration, phase1_iterations and single_stage_iterations must be >= 1")
    if cfg.baseline:
        if cfg.epochs < 1 or cfg.lr_step < 1 or cfg.lr_first_decay < 1 or cfg.kd_teacher_epochs < 1:
            raise ConfigError("epochs, lr_step, lr_first_decay and kd_teacher_epochs must be >= 1")
        if cfg.search_epochs < 0 or not 0 < cfg.search_fraction <= 1:
            raise ConfigError("search_epochs must be >= 0 and search_fraction in (0, 1]")
        for name in ("mtan_lambdas", "kd_lambdas"):
            pairs = getattr(cfg, name)
            if not pairs or any(len(p) != cfg.n_tasks or min(p) < 0 for p in pairs):
                raise ConfigError(f"{name} must be a non-empty list of non-negative {cfg.n_tasks}-vectors")
        if not cfg.mtan_lrs or min(cfg.mtan_lrs) <= 0:
            raise ConfigError("mtan_lrs must be a non-empty list of positive learning rates")
        if cfg.full_train and cfg.method != "mgda":
            raise ConfigError(f"full_train (no validation split) is only meaningful for MGDA, which keeps the "
                              f"last epoch; {cfg.method!r} selects its model on the validation split")


# (field, test, what is allowed): checked before any data are loaded
_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("seed", lambda v: v >= 0, "an integer >= 0"),
    ("split_seed", lambda v: v >= 0, "an integer >= 0"),
    ("build_seed", lambda v: v >= 0, "an integer >= 0"),
    ("n_train", lambda v: v is None or v >= 1, "an integer >= 1, or none for the full split"),
    ("n_test", lambda v: v is None or v >= 1, "an integer >= 1, or none for the full split"),
    ("batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("eval_batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("lr", lambda v: v > 0, "a finite number > 0"),
    ("lr_decay", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("mu0", lambda v: v > 0, "a finite number > 0"),
    ("mu_factor", lambda v: v > 0, "a finite number > 0"),
    ("eps_aug", lambda v: v > 0, "a finite number > 0"),
    ("beta1", lambda v: v >= 0, "a number >= 0"),
    ("beta2", lambda v: v >= 0, "a number >= 0"),
    ("eta1", lambda v: 0 <= v <= 100, "a percentage in [0, 100]"),
    ("eta2", lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    ("ap_max_iter", lambda v: v >= 1, "an integer >= 1"),
    ("phase2_iterations", lambda v: v >= 0, "an integer >= 0"),
    ("momentum", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("kd_adaptor_lr", lambda v: v > 0, "a finite number > 0"),
    ("kd_teacher_lr", lambda v: v > 0, "a finite number > 0"),
    ("kd_teacher_lr_decay", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("kd_adaptor_weight_decay", lambda v: v >= 0, "a number >= 0"),
)


def _check_ranges(cfg: RunConfig) -> None:
    for name, ok, allowed in _RANGES:
        v = getattr(cfg, name)
        if isinstance(v, float) and not math.isfinite(v) or not ok(v):
            raise ConfigError(f"{name}={v!r} is out of range: must be {allowed}")
    if cfg.n_val is None or cfg.n_val >= 1:
        return
    if not (cfg.n_val == 0 and cfg.full_train):  # only MGDA's full_train trains without validation
        raise ConfigError(f"n_val={cfg.n_val!r} is out of range: must be an integer >= 1, or none for the full "
                          "split (the model is selected on the validation split)")
