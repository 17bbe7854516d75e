"""Batched preference sweeps: is training 8 preference vectors at once faster than one by one?

Prints, for one dataset / architecture and 8 preference vectors (same seed, so same initial
weights and batch order), side by side in one process:

* ``sequential``: 8 separate solves, one vector each (``mdmtn.training.mt2o.solve`` with K = 1 and no
  transfer: exactly the single-run step, per-epoch GrOWL prox and validation);
* ``joint loop``: one solve with all 8 vectors and no transfer (``transfer="none"``): every batch
  is indexed once and fed to the 8 models in turn, the LSUV start is computed once. Its result
  equals the sequential one (printed: the largest parameter difference; tested in
  ``tests/test_mt2o.py::test_no_transfer_equals_independent_runs``);
* ``process-parallel``: the sweep runner itself (``mdmtn.experiments.sweep.run_sweep``, Algorithm 1 per
  vector: phase 1, tying, phase 2, records written) for the 8 vectors, sequentially with torch's
  default thread count, sequentially with 1 thread, and with ``workers=2`` processes of 1
  thread each (``python -m mdmtn sweep --workers 2``) — printed as ratios to both sequential
  baselines;
* ``raw step, vmap``: the stacked-parameter alternative the issue names — one
  ``torch.func.vmap`` over ``functional_call`` with the 8 models' parameters stacked, against 8
  ordinary steps on the same batch (forward + backward + Adam, no GrOWL) — printed as a ratio.

Usage::

    MDMTN_DATA=../shared/data python benchmarks/sweep.py [--dataset multimnist] [--model mdmtn] \\
        [--n-train 4096] [--threads N] [--repeats 2] [--what joint,workers,vmap]

Without ``MDMTN_DATA`` synthetic data written through the library's loaders is used.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from mdmtn.data import load_splits
from mdmtn.data.synthetic import write_all
from mdmtn.models import build_model
from mdmtn.records.machine import machine_info
from mdmtn.training.mt2o import joint_config, solve

VECTORS = [(0.001, w, round(0.999 - w, 6)) for w in (0.05, 0.15, 0.3, 0.45, 0.55, 0.7, 0.85, 0.949)]


def splits_for(dataset: str):
    root = os.environ.get("MDMTN_DATA")
    if root is None:
        root = os.environ["MDMTN_DATA"] = str(write_all(tempfile.mkdtemp(prefix="mdmtn-bench-")))
        print("MDMTN_DATA not set: synthetic data (throughput does not depend on pixel values)")
    return load_splits(dataset, root, allow_unverified_cifar=True)


def time_sweeps(args, splits) -> None:
    opts = dict(
        n_train=args.n_train,
        n_val=args.n_train // 4,
        n_test=args.n_train // 4,
        epochs_per_iteration=1,
        iterations=args.epochs,
    )
    seq_t, joint_t = [], []
    for rep in range(args.repeats):  # alternate so load spells hit both alike
        t0 = time.perf_counter()
        seq_models = [
            solve(
                joint_config(args.dataset, args.model, [k], "quick", 0, strategy="independent", **opts),
                splits,
                progress=False,
            ).models[0]
            for k in VECTORS
        ]
        seq_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        joint = solve(
            joint_config(args.dataset, args.model, VECTORS, "quick", 0, strategy="independent", **opts),
            splits,
            progress=False,
        )
        joint_t.append(time.perf_counter() - t0)
        diff = max(
            (a - b).abs().max().item()
            for m1, m2 in zip(seq_models, joint.models)
            for a, b in zip(m1.state_dict().values(), m2.state_dict().values())
            if a.is_floating_point()
        )
        print(
            f"  repeat {rep + 1}: sequential {seq_t[-1]:.1f} s, joint loop {joint_t[-1]:.1f} s, "
            f"max |param difference| {diff:.2e}"
        )
    s, j = statistics.median(seq_t), statistics.median(joint_t)
    n = args.n_train * args.epochs * len(VECTORS)
    print(
        f"8-vector sweep, {args.epochs} epoch(s) of {args.n_train} samples each (GrOWL prox and validation "
        f"included): sequential {s:.1f} s ({n / s:,.0f} samples/s), joint loop {j:.1f} s ({n / j:,.0f} samples/s); "
        f"ratio joint / sequential = {j / s:.2f} (target <= 0.5)"
    )


def time_workers(args, splits) -> None:
    """Wall time of the same 8-run sweep through run_sweep: sequential (default and 1 thread) vs 2 workers."""
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.sweep import run_sweep, sweep_configs

    cfgs = sweep_configs(
        args.dataset,
        args.model,
        VECTORS,
        "quick",
        n_train=args.n_train,
        n_val=args.n_train // 4,
        n_test=args.n_train // 4,
        epochs_per_iteration=1,
        phase1_iterations=2,
        phase2_iterations=1,
    )
    loader = SplitsLoader(os.environ["MDMTN_DATA"], allow_unverified_cifar=True)
    loader(cfgs[0])  # in-process arms start with the data loaded; the workers load it themselves (timed)
    default_threads = torch.get_num_threads()
    arms = {
        f"sequential, {default_threads} threads": dict(threads=default_threads, workers=1),
        "sequential, 1 thread": dict(threads=1, workers=1),
        "2 workers x 1 thread": dict(threads=1, workers=2),
    }
    times: dict[str, list[float]] = {a: [] for a in arms}
    for rep in range(args.repeats):
        for arm, o in arms.items():
            with tempfile.TemporaryDirectory() as out:
                torch.set_num_threads(o["threads"] if o["workers"] == 1 else default_threads)
                t0 = time.perf_counter()
                recs = run_sweep(cfgs, out, loader, progress=False, log=lambda s: None, **o)
                times[arm].append(time.perf_counter() - t0)
                assert all(r["status"] == "ok" for r in recs)
        torch.set_num_threads(default_threads)
        print("  repeat " + str(rep + 1) + ": " + ", ".join(f"{a} {t[-1]:.1f} s" for a, t in times.items()))
    med = {a: statistics.median(t) for a, t in times.items()}
    par, seq_default, seq1 = med["2 workers x 1 thread"], *[med[a] for a in list(arms)[:2]]
    s = cfgs[0].schedule
    epochs = s.epochs_per_iteration * (s.phase1_iterations + s.phase2_iterations)
    print(
        f"8-run sweep through run_sweep (Algorithm 1: {epochs} epochs of {args.n_train} samples per run, tying, "
        f"validation, records): " + ", ".join(f"{a} {t:.1f} s" for a, t in med.items())
    )
    print(
        f"ratio 2 workers / sequential: {par / seq_default:.2f} against {default_threads} threads, "
        f"{par / seq1:.2f} against 1 thread (target <= 0.5)"
    )


def time_vmap(args, splits) -> None:
    from torch.func import functional_call, stack_module_state, vmap

    K = len(VECTORS)
    shape = splits.input_shape
    torch.manual_seed(0)
    models = [build_model(args.model, shape, n_tasks=2).to(memory_format=torch.channels_last) for _ in range(K)]
    x = splits.train.x[:256].contiguous(memory_format=torch.channels_last)
    y = splits.train.y[:256]
    opts = [torch.optim.Adam(m.parameters(), 1e-3) for m in models]

    def seq_step():
        for m, o in zip(models, opts):
            loss = sum(F.nll_loss(out, y[:, i]) for i, out in enumerate(m(x)))
            o.zero_grad()
            loss.backward()
            o.step()

    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    template = copy.deepcopy(models[0]).to("meta")

    def loss_of(p, b, xb, yb):
        return sum(F.nll_loss(out, yb[:, i]) for i, out in enumerate(functional_call(template, (p, b), (xb,))))

    batched = vmap(loss_of, in_dims=(0, 0, None, None))
    opt = torch.optim.Adam(params.values(), 1e-3)

    def vmap_step():
        loss = batched(params, buffers, x, y).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    res = {"8 sequential steps": [], "one vmap step": []}
    for fn in (seq_step, vmap_step):
        fn()  # warm-up
    for _ in range(args.repeats * 3):
        for name, fn in zip(res, (seq_step, vmap_step)):
            t0 = time.perf_counter()
            for _ in range(3):
                fn()
            res[name].append((time.perf_counter() - t0) / 3)
    a, b = (statistics.median(v) for v in res.values())
    print(
        f"raw training step of 8 models on one batch of 256: sequential {a * 1e3:.0f} ms "
        f"({8 * 256 / a:,.0f} samples/s), vmap over stacked parameters {b * 1e3:.0f} ms "
        f"({8 * 256 / b:,.0f} samples/s); ratio vmap / sequential = {b / a:.2f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="multimnist", choices=("multimnist", "cifar10mnist"))
    p.add_argument("--model", default="mdmtn", choices=("hps", "mdmtn"))
    p.add_argument("--n-train", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--what", default="joint,workers,vmap", help="comma-separated sections to time")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mi = machine_info()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {mi.get('processor')}, "
        f"load average {mi.get('load_avg_1min')}"
    )
    splits = splits_for(args.dataset)
    print(f"=== {args.dataset} / {args.model}, 8 preference vectors")
    what = set(args.what.split(","))
    if "joint" in what:
        time_sweeps(args, splits)
    if "workers" in what:
        time_workers(args, splits)
    if "vmap" in what:
        time_vmap(args, splits)


if __name__ == "__main__":
    main()
