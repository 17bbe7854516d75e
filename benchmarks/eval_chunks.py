"""Does evaluating in chunks of 256 (mdmtn.training.loop.CPU_EVAL_CHUNK) change any prediction? Checked on
every paper-preset run whose checkpoint is on this machine (checkpoints are not committed; the
records are), against evaluation in the config's batches of 1000, on the run's own validation and
test data. Prints one row per checkpoint and the time of both ways, side by side.

    MDMTN_DATA=../shared/data python benchmarks/eval_chunks.py results/paper [--allow-unverified-cifar]
"""

from __future__ import annotations

import argparse
import time

import torch

from mdmtn.data import SplitsLoader
from mdmtn.records.machine import machine_info
from mdmtn.records.probe import verified_checkpoints
from mdmtn.training.loop import CPU_EVAL_CHUNK, evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--allow-unverified-cifar", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    load = SplitsLoader(None, allow_unverified_cifar=a.allow_unverified_cifar)
    print(f"# {machine_info()['cpu_model']}, 1 torch thread; chunk {CPU_EVAL_CHUNK} vs the config's eval batch")
    print(
        "| run | dataset / model / method | split | correct (batch) | correct (chunk) | equal | "
        "max loss rel. diff | s (batch) | s (chunk) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    n_ok = n_all = 0
    t_batch = t_chunk = 0.0

    def skipped(rec: dict, e: Exception) -> None:
        print(f"| {rec['key']} | skipped: {e} |")

    for rec, model, cfg in verified_checkpoints(a.dir, skipped=skipped):
        splits = load(cfg).subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test)
        for split in ("val", "test"):
            data = getattr(splits, split)
            if not len(data):
                continue
            rounds = []
            for chunk in (None, CPU_EVAL_CHUNK, None, CPU_EVAL_CHUNK):  # interleaved, each way twice
                t0 = time.perf_counter()
                r = evaluate(model, data, cfg.data.eval_batch_size, cpu_chunk=chunk)
                rounds.append((chunk, time.perf_counter() - t0, r))
            (_, sb, rb), (_, sc, rc) = rounds[2], rounds[3]
            t_batch += rounds[0][1] + sb
            t_chunk += rounds[1][1] + sc
            cb = [round(x * len(data)) for x in rb["acc"]]
            cc = [round(x * len(data)) for x in rc["acc"]]
            rel = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(rb["loss"], rc["loss"]))
            n_all += 1
            n_ok += cb == cc
            print(
                f"| {rec['key']} | {cfg.dataset} / {cfg.model} / {cfg.method} | {split} | {cb} | {cc} | "
                f"{'yes' if cb == cc else 'NO'} | {rel:.1e} | {rounds[0][1] + sb:.2f} | {rounds[1][1] + sc:.2f} |"
            )
    print(
        f"\n{n_ok} of {n_all} evaluations give identical per-task correct counts; evaluation time "
        f"{t_batch:.1f} s in batches of the config vs {t_chunk:.1f} s in chunks of {CPU_EVAL_CHUNK} "
        f"({t_chunk / t_batch:.2f}x)"
        if n_all
        else "no checkpoint found"
    )


if __name__ == "__main__":
    main()
