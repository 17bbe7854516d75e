"""The device check: does the paper preset fit a GPU budget, and does stacking pay there?

    python benchmarks/gpu_check.py [--device auto] [--run] [--batches N] [--stacks 8 32]

Prints, for MultiMNIST MDMTN at the paper preset's data size and batch size:

1. one training epoch of K models, one after the other (the engine's step) and stacked (one
   vmap'd step for all K, :mod:`mdmtn.stacked`), for each K of ``--stacks``: seconds and the ratio
   stacked / sequential (target: <= 0.5 at K = 8);
2. with ``--run``, one full paper-preset run (``python -m mdmtn train --preset paper``): wall time
   and metrics;
3. the projected wall time of the paper's 90-vector sweep at the paper preset, one run after the
   other and in stacks of K (target: <= 15 min).

Timing uses random inputs of the real shapes unless ``MDMTN_DATA`` holds the data (then the
run's metrics are real); ``--batches N`` times N batches per epoch and scales to the full epoch.
On a CPU every figure is a CPU figure and the header says so.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import torch

from mdmtn.config import make_config
from mdmtn.data import Splits, TaskTensors
from mdmtn.engine import Run
from mdmtn.records import resolve_device
from mdmtn.stacked import prepare_stack, stacked_epoch
from mdmtn.runner import train

K_SPARSE = [(0.001, 0.2, 0.799), (0.001, 0.5, 0.499), (0.01, 0.5, 0.49), (0.001, 0.7, 0.299)]


def random_splits(n_train: int, n_val: int, n_test: int, dev: torch.device) -> Splits:
    g = torch.Generator().manual_seed(0)

    def part(n: int) -> TaskTensors:
        return TaskTensors(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n, 2), generator=g))

    return Splits("multimnist", part(n_train), part(n_val), part(n_test), (1, 28, 28), ("left", "right")).to(dev)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def epoch_times(splits: Splits, dev: torch.device, k: int, batches: int | None) -> tuple[float, float]:
    """Seconds for one epoch of ``k`` models: sequential (each its own steps) and stacked."""
    cfgs = [make_config("multimnist", "mdmtn", K_SPARSE[i % len(K_SPARSE)], "paper", 0) for i in range(k)]
    n = len(splits.train) if batches is None else min(len(splits.train), batches * cfgs[0].data.batch_size)
    members = prepare_stack(cfgs, splits.subset(n, None, None), dev)
    opts = [m.begin_stage().opt for m in members]
    def same_batches() -> None:  # the stacked epoch needs every run's batch order to agree
        for m in members:
            m.g_data.manual_seed(m.cfg.seed)

    # warm-up (kernels, allocator), then the timed epochs
    Run.train_epoch(members[0], opts[0])
    same_batches()
    stacked_epoch(list(zip(members, opts)))
    sync(dev)
    t0 = time.perf_counter()
    for m, o in zip(members, opts):
        Run.train_epoch(m, o)
    sync(dev)
    seq = time.perf_counter() - t0
    same_batches()
    t0 = time.perf_counter()
    stacked_epoch(list(zip(members, opts)))
    sync(dev)
    stk = time.perf_counter() - t0
    scale = len(splits.train) / n
    for m in members:
        m.bar.close()
    return seq * scale, stk * scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--run", action="store_true", help="also train one full paper-preset run")
    ap.add_argument("--batches", type=int, default=None, help="batches timed per epoch (default: all on a GPU, 20 on a CPU)")
    ap.add_argument("--stacks", type=int, nargs="+", default=[8, 32])
    a = ap.parse_args()
    dev = resolve_device(a.device)
    on_gpu = dev.type == "cuda"
    batches = a.batches if a.batches is not None else (None if on_gpu else 20)
    where = torch.cuda.get_device_name(dev) if on_gpu else f"CPU ({platform.processor() or platform.machine()}, " \
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    print(f"# device check on {where}: {'GPU' if on_gpu else 'CPU'} figures, torch {torch.__version__}")
    if not on_gpu:
        print("# NOTE: no GPU here; these are CPU figures, not the GPU targets' measurement")
    cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "paper", 0)
    data_dir = os.environ.get("MDMTN_DATA")
    real = None
    if data_dir:
        from mdmtn.data import load_splits

        try:
            real = load_splits("multimnist", data_dir)
        except Exception as e:  # noqa: BLE001 - fall back to random inputs, and say so
            print(f"# no real data ({e}); random inputs of the real shapes")
    splits = (real.to(dev) if real is not None else random_splits(50000, 10000, 10000, dev))
    print(f"# data: {'MultiMNIST' if real is not None else 'random inputs'} {len(splits.train)} / {len(splits.val)} / "
          f"{len(splits.test)}; batch {cfg.data.batch_size}; epoch times from "
          f"{'full epochs' if batches is None else f'{batches} batches, scaled to the epoch'}")
    epochs = cfg.schedule.epochs_per_iteration * (cfg.schedule.phase1_iterations + cfg.schedule.phase2_iterations)
    print("\n| K models | sequential epoch (s) | stacked epoch (s) | stacked / sequential | target |")
    print("|---|---|---|---|---|")
    ratios = {}
    one_epoch = None
    for k in a.stacks:
        seq, stk = epoch_times(splits, dev, k, batches)
        ratios[k] = (seq, stk)
        one_epoch = seq / k if one_epoch is None else one_epoch
        print(f"| {k} | {seq:.2f} | {stk:.2f} | {stk / seq:.2f} | {'<= 0.5' if k == 8 else ''} |")
    run_s = None
    if a.run:
        t0 = time.perf_counter()
        rec = train(cfg, splits, progress=False, device=dev).record
        run_s = time.perf_counter() - t0
        m = rec["metrics"]
        print(f"\none paper-preset run (MDMTN, k = {cfg.k}, seed 0, {epochs} epochs): {run_s:.0f} s; test acc "
              f"{' / '.join(f'{100 * x:.2f}' for x in m['test_acc'])} %, SR {m['SR']:.1f}%, CR {m['CR']:.2f}, PS {m['PS']:.2f}"
              + ("" if real is not None else " (random inputs: metrics meaningless)"))
    per_run = run_s if run_s is not None else epochs * one_epoch * 1.1  # +10%: evaluation, prox, clustering
    basis = "the measured run" if run_s is not None else f"{epochs} epochs x the sequential epoch time, +10%"
    print(f"\nprojected 90-vector MultiMNIST MDMTN sweep at the paper preset (per run: {per_run:.0f} s, from {basis}):")
    print(f"- one run after the other: {90 * per_run / 60:.1f} min")
    for k, (seq, stk) in ratios.items():
        print(f"- in stacks of {k}: {math.ceil(90 / k) * k * per_run * stk / seq / 60:.1f} min (target <= 15 min)")


if __name__ == "__main__":
    main()
