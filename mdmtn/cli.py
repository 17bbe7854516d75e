"""Command line: ``python -m mdmtn train ...``.

Maps arguments onto :func:`mdmtn.config.make_config` and nothing else; one run record per
(config, seed) is written to ``--out`` as ``<config key>.json`` (plus a ``.pt`` checkpoint).
A finished record is not recomputed unless ``--force`` is given, so an interrupted multi-seed
command resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from .config import DATASETS, PRESETS, ConfigError, make_config


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects field=value, got {item!r}")
        name, raw = item.split("=", 1)
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def _summary(rec: dict[str, Any]) -> str:
    m = rec["metrics"]
    acc = " / ".join(f"{100 * a:.2f}" for a in m["test_acc"])
    return (f"test acc {acc} (avg {100 * m['test_acc_mean']:.3f}%)  SR {m['SR']:.2f}%  CR {m['CR']:.3f}  "
            f"PS {m['PS']:.3f}  wall {rec['wall_time_s']:.1f}s")


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .records import find_record, record_path, save_checkpoint, write_json_atomic

    seeds = args.seeds if args.seeds else [args.seed]
    overrides = _parse_set(args.set or [])
    cfgs = [make_config(args.dataset, args.model, args.k, args.preset, s, mu_schedule=args.mu_schedule, **overrides)
            for s in seeds]  # validate everything (k included) before any work
    if args.threads:
        torch.set_num_threads(args.threads)
    from .data import load_splits
    from .trainer import TrainingDiverged, train

    out = Path(args.out)
    splits = None
    status = 0
    for cfg in cfgs:
        if not args.force and (rec := find_record(out, cfg)) is not None:
            print(f"[skip] {record_path(out, cfg)} exists: {_summary(rec)}")
            continue
        if splits is None:
            splits = load_splits(cfg.dataset, args.data_dir, allow_unverified_cifar=args.allow_unverified_cifar,
                                 download=args.download, split_seed=cfg.split_seed, build_seed=cfg.build_seed)
        try:
            result = train(cfg, splits, progress=not args.no_progress)
        except TrainingDiverged as e:
            write_json_atomic(record_path(out, cfg), dict(status="error", key=cfg.key(), config=cfg.to_dict(),
                                                          error=str(e), traceback=traceback.format_exc()))
            print(f"error: run {cfg.key()} diverged: {e}", file=sys.stderr)
            status = 1
            continue
        if not args.no_checkpoint:
            ckpt = save_checkpoint(out / f"{cfg.key()}.pt", result.model, cfg)
            result.record["checkpoint"] = ckpt.name
        path = write_json_atomic(record_path(out, cfg), result.record)
        print(f"[done] {path}: {_summary(result.record)}")
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdmtn", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one preference vector k (one record per seed)")
    t.add_argument("--dataset", choices=DATASETS, default="multimnist")
    t.add_argument("--model", choices=("hps", "mdmtn"), default="mdmtn")
    t.add_argument("--k", nargs="+", default=["0.001", "0.2", "0.799"],
                   help="preference vector k0 k1 k2 (k0: sparsity, k1/k2: tasks); non-negative, sums to 1")
    t.add_argument("--preset", choices=PRESETS, default="quick")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--seeds", type=int, nargs="+", help="several seeds, one record each")
    t.add_argument("--out", default="runs", help="directory for run records and checkpoints")
    t.add_argument("--data-dir", default=None, help="folder with MNIST/ and cifar-10-batches-py/ (default $MDMTN_DATA)")
    t.add_argument("--allow-unverified-cifar", action="store_true",
                   help="skip torchvision's md5 check of the CIFAR-10 pickles (needed for rebuilt copies)")
    t.add_argument("--download", action="store_true", help="let torchvision download missing raw data")
    t.add_argument("--mu-schedule", choices=("paper", "head"), default="paper",
                   help="paper: mu0 2.5e-5/1e-4 halved; head: the authors' later 2.5e-8/6.8e-8 doubled")
    t.add_argument("--set", nargs="*", metavar="FIELD=VALUE", help="override RunConfig fields, e.g. prox_mode=head")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--force", action="store_true", help="retrain even if a finished record exists")
    t.add_argument("--no-checkpoint", action="store_true")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DatasetError
    from .records import CheckpointError

    try:
        return args.func(args)
    except (ConfigError, DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
