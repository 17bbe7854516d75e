"""The paper's training procedure (Algorithm 1): two phases around one Chebyshev/AL objective.

Phase 1 (k0 > 0) trains with the augmented Lagrangian of :mod:`mdmtn.objectives.scalarization` and,
after every epoch, applies the GrOWL proximal step with the per-layer sparsity cap; the model
kept is the best-validation one whose SR reaches η1 (else the best of any sparsity). Rows are
then clustered by affinity propagation and phase 2 retrains the frozen sparse architecture,
re-zeroing and re-tying rows after every epoch. Runs with k0 == 0 train one stage without
GrOWL. Deviations of the authors' code are switches of :class:`mdmtn.core.config.RunConfig`.

Works with any model satisfying :class:`mdmtn.models.MultiTaskModel`.
"""

from __future__ import annotations

import torch
from torch import nn

from mdmtn.core.config import ConfigError, RunConfig
from mdmtn.data import Splits
from mdmtn.models import build_model, check_model_contract
from mdmtn.objectives.growl import enforce_plan_, plan_tying, rows_to_weight, weight_rows
from mdmtn.training.engine import Run, lsuv_start_, seed_everything
from mdmtn.training.finish import Trained

__all__ = ["train_algorithm1", "Algorithm1", "algorithm1_run"]


class Algorithm1(Run):
    """The paper's Algorithm 1 on the engine's :class:`Run`: phase 1 with prox and cap, the kept
    sparse model, clustering, phase 2 with tying; k0 = 0 as one stage; App. B's retraining."""

    def trained(self, plans: list, **fields) -> Trained:
        """This run's :class:`Trained` (after :meth:`fit`): its record names the phase-1 model and
        the history index phase 2 started from (None where there was none); ``fields``: more."""
        return Trained(
            self.model,
            self.history,
            self.last_train_objectives,
            self.timer,
            fields=dict(
                phase1_model=getattr(self, "phase1_choice", None),
                phase1_epoch=getattr(self, "phase1_epoch", None),
                **fields,
            ),
            compression=self.cfg.sparse,
            plans=plans,
        )

    def fit_from_sparse(self) -> list:
        """Paper App. B: retrain a trained sparse model for a new k in one stage, re-zeroing its
        zero rows after every epoch; no prox, no LSUV, no enforced tying (it may dissolve)."""
        masks = _zero_row_masks(self.model)

        @torch.no_grad()
        def rezero(_it: int) -> None:
            with self.timer("projection"):
                for w, mask in masks:
                    w.data.masked_fill_(mask, 0.0)

        self.stage("pf_study", self.cfg.schedule.single_stage_iterations, rezero, self.keep_best("final"))
        self.model.load_state_dict(self.best["final"][1])
        return []

    def fit(self) -> list:
        """Run Algorithm 1 and leave the selected model in ``self.model``; returns the tying plan."""
        cfg, model = self.cfg, self.model
        best, keep_best = self.best, self.keep_best
        if cfg.init_from is not None:
            return self.fit_from_sparse()
        with self.timer("lsuv"):
            lsuv_start_(model, cfg, self.splits.train)
        if not cfg.sparse:
            self.stage("single", cfg.schedule.single_stage_iterations, lambda it: None, keep_best("final"))
            model.load_state_dict(best["final"][1])
            return []

        def keep_phase1(val_acc: float, sr: float) -> None:
            keep_best("draft")(val_acc, sr)
            if sr >= cfg.growl.eta1:
                keep_best("sparse")(val_acc, sr)

        self.stage("phase1", cfg.schedule.phase1_iterations, self.growl_step, keep_phase1)
        if cfg.schedule.phase1_keep == "last":  # the model is already the last epoch's
            self.phase1_choice, self.phase1_epoch = "last", len(self.history) - 1
        else:
            self.phase1_choice = "sparse" if "sparse" in best else "draft"
            model.load_state_dict(best[self.phase1_choice][1])
            self.phase1_epoch = self.best_epoch[self.phase1_choice]
        with self.timer("cluster_tie"):
            plans = plan_tying(
                [(n, w.detach()) for n, w in self.growl],
                cfg.growl.ap_preference,
                conv_rows=cfg.switches.conv_rows,
                random_state=0,
                ap_rows=cfg.growl.ap_rows,
                max_iter=cfg.growl.ap_max_iter,
            )
        if cfg.schedule.phase2_iterations > 0:

            def project(it: int) -> None:
                with self.timer("projection"):
                    enforce_plan_([(n, w.data) for n, w in self.growl], plans, conv_rows=cfg.switches.conv_rows)

            project(0)  # the phase-2 starting point is already sparse and tied
            self.stage("phase2", cfg.schedule.phase2_iterations, project, keep_best("final"))
            model.load_state_dict(best["final"][1])
        return plans


def _zero_row_masks(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, boolean mask of its zero rows in weight shape) for every Linear/conv weight,
    rows as the paper's metrics count them and zero by the authors' test (row sum == 0)."""
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            rows = weight_rows(m.weight.detach(), "code")
            zero = (rows.sum(dim=1) == 0).to(rows.dtype)[:, None].expand_as(rows)
            out.append((m.weight, rows_to_weight(zero, m.weight.shape, "code") > 0))
    return out


def train_algorithm1(
    cfg: RunConfig, splits: Splits, *, progress: bool = True, model: nn.Module | None = None
) -> Trained:
    """Train one run of the paper's method on ``splits`` (already cut to the config's sizes and on
    the device that trains, as :func:`mdmtn.training.runner.train` prepares them); returns the
    :class:`Trained` model, without a record (:func:`mdmtn.train` builds it).

    ``model`` lets a user bring their own :class:`MultiTaskModel`; by default the paper
    architecture ``cfg.model`` is built. Raises :class:`TrainingDiverged` on NaN."""
    if cfg.method != "wc_al":
        raise ConfigError(f"train_algorithm1 trains the paper's method, not {cfg.method!r}: use mdmtn.train")
    run = algorithm1_run(cfg, splits, splits.train.x.device, progress, model)
    try:
        plans = run.fit()
    finally:
        run.bar.close()
    return run.trained(plans)


def algorithm1_run(
    cfg: RunConfig,
    splits: Splits,
    dev: torch.device,
    progress: bool,
    model: nn.Module | None = None,
    run_class: type[Algorithm1] | None = None,
    **kw,
) -> Algorithm1:
    """Seed, build (or take) the model on ``dev`` and set up Algorithm 1 for ``cfg`` on ``splits``
    (already subset and on ``dev``): everything :func:`train_algorithm1` does before training."""
    seed_everything(cfg.seed)
    if model is None:
        model = build_model(cfg.model, splits.input_shape, n_tasks=cfg.n_tasks)
    else:  # a user's network: its outputs are checked on one batch before anything trains
        check_model_contract(model.to(dev), splits.train.x[: cfg.data.batch_size], cfg.n_tasks)
    # channels-last makes mkldnn convolutions and max-pooling ~1.8x faster on CPU (benchmarks/)
    model.to(device=dev, memory_format=torch.channels_last)
    return (run_class or Algorithm1)(cfg, model, splits, progress, **kw)
