"""The device check: does the paper preset fit a GPU budget, and does stacking pay there?

    python benchmarks/gpu_check.py [--device auto] [--run] [--batches N] [--stacks 8 32]

Prints, for MultiMNIST MDMTN at the paper preset's data size and batch size:

1. one training epoch of K models, one after the other (the engine's step) and stacked (one
   vmap'd step for all K, :mod:`mdmtn.training.stacked`), for each K of ``--stacks``: seconds, one model's
   epoch and the ratio stacked / sequential (targets: one eager epoch <= 0.5 s at K = 1, the
   stacked epoch of K = 8 <= 1 s);
2. with ``--run``, one full run (paper preset unless ``--run-preset``): wall time (target <= 60 s
   at the paper preset), metrics and the record's per-phase times;
3. the projected wall time of the paper's 90-vector sweep at the paper preset: stacked epochs
   plus the CPU-side phases spread over the machine's cores (target: <= 15 min).

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

from mdmtn.core.config import make_config
from mdmtn.data import Splits, TaskTensors
from mdmtn.records.machine import machine_info, precision_info, resolve_device, set_precision
from mdmtn.training.engine import Run
from mdmtn.training.runner import train
from mdmtn.training.stacked import prepare_stack, stacked_epoch

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


TARGETS = dict(epoch_k1=0.5, epoch_k8_stacked=1.0, run=60.0, sweep_min=15.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--run", action="store_true", help="also train one full run (its per-phase times are printed)")
    ap.add_argument("--run-preset", default="paper", help="preset of that run (paper; on a CPU smoke keeps it short)")
    ap.add_argument(
        "--batches", type=int, default=None, help="batches timed per epoch (default: all on a GPU, 20 on a CPU)"
    )
    ap.add_argument("--stacks", type=int, nargs="+", default=[1, 8, 32])
    a = ap.parse_args()
    dev = resolve_device(a.device)
    set_precision()
    on_gpu = dev.type == "cuda"
    batches = a.batches if a.batches is not None else (None if on_gpu else 20)
    where = (
        torch.cuda.get_device_name(dev)
        if on_gpu
        else f"CPU ({machine_info()['cpu_model'] or platform.machine()}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    )
    print(f"# device check on {where}: {'GPU' if on_gpu else 'CPU'} figures, torch {torch.__version__}")
    print(f"# precision: {precision_info()}")
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
    splits = real.to(dev) if real is not None else random_splits(50000, 10000, 10000, dev)
    print(
        f"# data: {'MultiMNIST' if real is not None else 'random inputs'} {len(splits.train)} / {len(splits.val)} / "
        f"{len(splits.test)}; batch {cfg.data.batch_size}; epoch times from "
        f"{'full epochs' if batches is None else f'{batches} batches, scaled to the epoch'}"
    )
    epochs = cfg.schedule.epochs_per_iteration * (cfg.schedule.phase1_iterations + cfg.schedule.phase2_iterations)
    print(
        "\n| K models | K epochs one after the other (s) | one model's epoch (s) | K epochs stacked (s) | "
        "stacked / sequential | target |"
    )
    print("|---|---|---|---|---|---|")
    ratios = {}
    one_epoch = None
    for k in a.stacks:
        seq, stk = epoch_times(splits, dev, k, batches)
        ratios[k] = (seq, stk)
        one_epoch = seq / k if one_epoch is None else one_epoch
        target = {
            1: f"one model's epoch <= {TARGETS['epoch_k1']} s",
            8: f"stacked <= {TARGETS['epoch_k8_stacked']} s",
        }.get(k, "")
        print(f"| {k} | {seq:.2f} | {seq / k:.2f} | {stk:.2f} | {stk / seq:.2f} | {target} |")
    run_s = cpu_side = None
    if a.run:
        run_cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), a.run_preset, 0)
        t0 = time.perf_counter()
        rec = train(run_cfg, splits, progress=False, device=dev).record
        run_s = time.perf_counter() - t0
        m, phases = rec["metrics"], rec["timing"]["phases_s"]
        cpu_side = rec["wall_time_s"] - phases.get("train", 0.0)
        print(
            f"\none {a.run_preset}-preset run (MDMTN, k = {run_cfg.k}, seed 0): {run_s:.1f} s "
            f"(target for a paper-preset run: <= {TARGETS['run']:.0f} s); test acc "
            f"{' / '.join(f'{100 * x:.2f}' for x in m['test_acc'])} %, SR {m['SR']:.1f}%, CR {m['CR']:.2f}, PS {m['PS']:.2f}"
            + ("" if real is not None else " (random inputs: metrics meaningless)")
        )
        print("\n| phase | seconds | share of the wall time |\n|---|---|---|")
        for name, sec in sorted(phases.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {sec:.2f} | {100 * sec / rec['wall_time_s']:.1f}% |")
        print(f"| outside the training epochs | {cpu_side:.2f} | {100 * cpu_side / rec['wall_time_s']:.1f}% |")
    if run_s is None or a.run_preset != "paper":
        per_epoch_cpu = 0.1 * one_epoch  # no paper-preset run measured: assume 10% outside the epochs
        basis = "no paper-preset run measured: the CPU-side phases taken as 10% of the epochs"
    else:
        per_epoch_cpu = cpu_side / epochs
        basis = "the measured run's phases outside the training epochs"
    cores = os.cpu_count() or 1
    print(
        f"\nprojected 90-vector MultiMNIST MDMTN sweep at the paper preset ({epochs} epochs per run; CPU-side work "
        f"{per_epoch_cpu * epochs:.0f} s per run from {basis}, spread over {cores} cores):"
    )
    print(f"- one run after the other: {90 * epochs * (one_epoch + per_epoch_cpu) / 60:.1f} min")
    for k, (seq, stk) in ratios.items():
        total = math.ceil(90 / k) * epochs * stk + 90 * epochs * per_epoch_cpu / min(cores, k)
        print(f"- in stacks of {k}: {total / 60:.1f} min (target <= {TARGETS['sweep_min']:.0f} min)")


if __name__ == "__main__":
    main()
