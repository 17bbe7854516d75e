"""How much of a paper-preset run is spent outside its training epochs, before and after the
evaluation chunking (mdmtn.training.loop.CPU_EVAL_CHUNK) and the compiled Affinity Propagation
(mdmtn.objectives.affinity; "before" runs scikit-learn's), for the sparse MDMTN cell of each dataset.

A full paper-preset run takes 10-30 minutes per run on this project's CPU, so this benchmark
composes a run from its phases, on the cell's real data, with one torch thread (as a sweep worker
has): a validation pass, the final test and validation passes, LSUV, the sparsity count and model
snapshot, the GrOWL prox, the clustering and tying (on the committed run's checkpoint when it is on
this machine, else on the freshly initialised model) and the compression summary. Each is timed
between two bursts of 10 training steps and divided by the epoch time those steps give at that
moment, so the shares hold on a machine whose load drifts; "before" and "after" alternate. The
share of the paper schedule's run outside its epochs is printed beside the share measured in the
committed records of the same cell (wall time minus the epochs' training seconds).

    MDMTN_DATA=../shared/data python benchmarks/cpu_side.py [--allow-unverified-cifar]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import mdmtn.objectives.affinity as affinity
from mdmtn.core.config import make_config
from mdmtn.data import iterate_batches, load_splits
from mdmtn.objectives.growl import plan_tying
from mdmtn.objectives.metrics import sparsity_metrics
from mdmtn.records.checkpoint import load_checkpoint
from mdmtn.records.machine import machine_info
from mdmtn.records.store import find_record, load_records
from mdmtn.training.compress import compression_summary
from mdmtn.training.engine import lsuv_start_
from mdmtn.training.loop import CPU_EVAL_CHUNK, evaluate
from mdmtn.training.trainer import algorithm1_run

CELLS = {"multimnist": (0.001, 0.2, 0.799), "cifar10mnist": (0.01, 0.8, 0.19)}


def recorded_share(results: Path, cfg) -> tuple[float, int]:
    """Mean share of wall time outside the training epochs in the committed records of ``cfg``'s cell
    (library profile, any seed)."""
    shares = []
    for r in load_records(results):
        c = r["config"]
        if (
            (c["dataset"], c["model"], c["method"], tuple(c["k"])) == (cfg.dataset, cfg.model, "wc_al", cfg.k)
            and all(c.get(f) == v for f, v in cfg.to_dict().items() if f not in ("seed",))
            and r.get("history")
        ):
            train = sum(h.get("seconds") or 0.0 for h in r["history"])
            shares.append(1 - train / r["wall_time_s"])
    return (statistics.mean(shares) if shares else float("nan")), len(shares)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allow-unverified-cifar", action="store_true")
    ap.add_argument("--results", default="results/paper")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(
        f"# {machine_info()['cpu_model']}, 1 torch thread; every phase timed between two bursts of 10 "
        "training steps and expressed in training epochs of that moment, so a load that drifts cancels"
    )
    print(
        "| cell | train epoch (s) | validation pass (epochs) before / after | final test + val (epochs) "
        "before / after | clustering and tying (epochs) before / after | same tying plan | other CPU-side "
        "per run (epochs) | outside the epochs: before | after | records (n) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ds, k in CELLS.items():
        cfg = make_config(ds, "mdmtn", k, "paper", 0)
        splits = load_splits(ds, None, allow_unverified_cifar=a.allow_unverified_cifar)
        data = splits.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test)
        run = algorithm1_run(cfg, data, torch.device("cpu"), False)
        st = run.begin_stage()
        it = iterate_batches(data.train, cfg.data.batch_size, shuffle=True, generator=run.g_data)
        batches = [next(it) for _ in range(10)]
        run.step(st.opt, *batches[0])
        steps = -(-len(data.train) // cfg.data.batch_size)
        epochs_s: list[float] = []

        def epoch_now() -> float:
            t0 = time.perf_counter()
            for xb, yb in batches:
                run.step(st.opt, xb, yb)
            epochs_s.append((time.perf_counter() - t0) / len(batches) * steps)
            return epochs_s[-1]

        def in_epochs(f, rounds: int = 1) -> float:
            """Median over ``rounds`` of f's time divided by the epoch time measured around it."""
            out = []
            for _ in range(rounds):
                e0 = epoch_now()
                t0 = time.perf_counter()
                f()
                t = time.perf_counter() - t0
                out.append(t / ((e0 + epoch_now()) / 2))
            return statistics.median(out)

        bs = cfg.data.eval_batch_size
        val, final = {}, {}
        for c, chunk in (("before", None), ("after", CPU_EVAL_CHUNK), ("before", None), ("after", CPU_EVAL_CHUNK)):
            val.setdefault(c, []).append(in_epochs(lambda: evaluate(run.model, data.val, bs, cpu_chunk=chunk)))
            final.setdefault(c, []).append(
                in_epochs(
                    lambda: (
                        evaluate(run.model, data.test, bs, cpu_chunk=chunk),
                        evaluate(run.model, data.val, bs, cpu_chunk=chunk),
                    )
                )
            )
        val = {c: statistics.median(v) for c, v in val.items()}
        final = {c: statistics.median(v) for c, v in final.items()}
        lsuv = in_epochs(lambda: lsuv_start_(copy.deepcopy(run.model), cfg, data.train))
        per_epoch = in_epochs(lambda: (sparsity_metrics(run.model), copy.deepcopy(run.model.state_dict())), 3)
        prox = in_epochs(lambda: run.growl_step(0), 3)
        rec = find_record(a.results, cfg, log=None)
        ckpt = Path(a.results) / f"{cfg.key()}.pt"
        model = load_checkpoint(ckpt)[0] if rec is not None and ckpt.exists() else run.model
        compiled = affinity.affinity_propagation
        compiled(np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.3], [0.1, 0.3, 1.0]]), 0.5)  # compile first
        # a frozen copy: the training steps around each timing go on changing run.model
        weights = [(n, w.detach().clone()) for n, w in model.growl_weights()]
        plans = {}

        def tie_with(ap_impl, name):
            affinity.affinity_propagation = ap_impl  # cluster_rows looks it up at each call
            try:
                return in_epochs(
                    lambda: plans.__setitem__(
                        name,
                        plan_tying(
                            weights,
                            cfg.growl.ap_preference,
                            conv_rows=cfg.switches.conv_rows,
                            random_state=0,
                            ap_rows=cfg.growl.ap_rows,
                            max_iter=cfg.growl.ap_max_iter,
                        ),
                    )
                )
            finally:
                affinity.affinity_propagation = compiled

        tie = {
            "before": tie_with(affinity.sklearn_affinity_propagation, "before"),
            "after": tie_with(compiled, "after"),
        }
        same_plan = all(
            a.name == b.name and np.array_equal(a.labels, b.labels) and bool((a.zero_rows == b.zero_rows).all())
            for a, b in zip(plans["before"], plans["after"], strict=True)
        )
        comp = in_epochs(lambda: compression_summary(model))
        sch = cfg.schedule
        n_epochs = sch.epochs_per_iteration * (sch.phase1_iterations + sch.phase2_iterations)
        other = lsuv + n_epochs * (per_epoch + prox) + comp  # prox ~ the phase-2 projection
        outside = {c: n_epochs * val[c] + final[c] + tie[c] + other for c in ("before", "after")}
        share = {c: outside[c] / (outside[c] + n_epochs) for c in ("before", "after")}
        rs, n = recorded_share(Path(a.results), cfg)
        print(
            f"| {ds} MDMTN k={k} | {statistics.median(epochs_s):.2f} | {val['before']:.3f} / {val['after']:.3f} | "
            f"{final['before']:.3f} / {final['after']:.3f} | {tie['before']:.2f} / {tie['after']:.2f} | "
            f"{'yes' if same_plan else '**no**'} ({sum(len(p.labels) for p in plans['after'])} rows) | "
            f"{other:.2f} | {100 * share['before']:.1f}% | {100 * share['after']:.1f}% | {100 * rs:.1f}% ({n}) |"
        )


if __name__ == "__main__":
    main()
