"""Command line of the study: ``python -m mdmtn.study cells|measured|plan-seeds|run-plan|compress|maps``.

``cells`` trains every cell of Tables 1-2 at the paper's own k through the library's sweep;
``measured`` writes README's Measured block from the committed records; ``plan-seeds`` writes the
runs that would decide an arm's inconclusive claims, and ``run-plan`` trains a committed plan's runs
(resumable); ``compress`` and ``maps`` add the compressed
exports' summaries and the Fig. 7 maps from checkpoints, so that the book's pages only read. The
library's own commands (train, sweep, aggregate, seal, restore-checkpoint) are ``python -m mdmtn``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from mdmtn.core.config import ConfigError
from mdmtn.interface.cli import add_common_options, derived_given, dispatch, existing_dirs, run_configs, seeds_from


def cmd_cells(args: argparse.Namespace) -> int:
    """``cells``: train every cell of Tables 1-2 at the paper's own k (and the baselines)."""
    from mdmtn.study.cells import cell_configs

    seeds = seeds_from(args)
    if args.set or derived_given(args):
        raise ConfigError(
            "cells trains the paper's configurations as they are; use train or sweep to change "
            "settings (--set or the per-setting options)"
        )
    datasets = [args.dataset] if args.only_dataset else ["multimnist", "cifar10mnist"]
    if args.mu_schedule != "paper":
        raise ConfigError(
            "cells trains the paper's configurations; use --profile authors-head for the later μ schedule"
        )
    return run_configs(
        cell_configs(
            args.preset,
            seeds,
            baselines=args.baselines,
            datasets=datasets,
            profile=args.profile,
            sparse_only=args.sparse_only,
        ),
        args,
    )


def cmd_run_plan(args: argparse.Namespace) -> int:
    """``run-plan``: train every run of a committed seeds plan, in its order (resumable)."""
    from mdmtn.study.arms import plan_configs

    fixed = args.set or derived_given(args) or args.seeds or args.seed is not None or args.profile != "library"
    if fixed or args.dataset is not None or args.preset is not None or args.mu_schedule != "paper":
        raise ConfigError("a seeds plan fixes every run's config and seed; give only --out and how to run them")
    return run_configs(plan_configs(args.plan), args)


def cmd_measured(args: argparse.Namespace) -> int:
    """``measured``: README's Measured block from the committed records (printed, or written in place)."""
    from mdmtn.study.ledger import measured_markdown, replace_measured

    if not Path(args.results).is_dir():
        raise ConfigError(f"--results {args.results!r} is not a folder")
    body = measured_markdown(args.results)
    if args.write is None:
        print(body)
        return 0
    path = Path(args.write)
    try:
        text = path.read_text(encoding="utf-8")
        new = replace_measured(text, body)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--write {args.write}: {e}") from None
    if new != text:  # atomically: a full disk leaves the old README, never half of one
        from mdmtn.core.files import atomic_write

        data = new.encode("utf-8")
        atomic_write(path, lambda f: f.write(data))
    print(f"{path}: Measured block {'updated' if new != text else 'already up to date'}")
    return 0


def cmd_plan_seeds(args: argparse.Namespace) -> int:
    """``plan-seeds``: the runs that would decide an arm's inconclusive claims, written as a plan."""
    from mdmtn.core.files import atomic_write
    from mdmtn.records.machine import code_version
    from mdmtn.study.arms import plan_toml, seeds_plan
    from mdmtn.study.cells import preset_records
    from mdmtn.study.profiles import ARMS
    from mdmtn.study.verdicts import judge

    if args.arm not in ARMS:
        raise ConfigError(f"--arm must be one of {ARMS}, got {args.arm[:40]!r}")
    if not 3 <= args.max_seeds <= 50:
        raise ConfigError(f"--max-seeds must be from 3 to 50, got {args.max_seeds}")
    if not Path(args.results).is_dir():
        raise ConfigError(f"--results {args.results[:200]!r} is not a folder")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: a committed plan is not rewritten (give --force to replace it)")
    paper, quick = preset_records(args.results, "paper"), preset_records(args.results, "quick")
    vs = judge(paper, quick, arm=args.arm)
    chosen, runs = seeds_plan(vs, paper + quick, args.max_seeds)
    text = plan_toml(args.arm, chosen, runs, args.max_seeds, code_version())
    data = text.encode("utf-8")
    atomic_write(out, lambda f: f.write(data))
    print(f"{out}: {len(chosen)} claims, {len(runs)} runs, {sum(p.hours for p in runs):.1f} worker-hours")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    """Add ``compression`` (mdmtn.training.compress.compression_summary of the saved model) to records that lack it."""
    from mdmtn.study.compression import compress_records

    existing_dirs([args.dir])
    n, skipped = compress_records(args.dir, force=args.force)
    print(f"{n} record(s) updated" + (f", {skipped} skipped (see above)" if skipped else ""))
    return 1 if skipped else 0


def cmd_maps(args: argparse.Namespace) -> int:
    """``maps DIR``: the Fig. 7 similarity maps of the runs Tables 1-2 select, from their checkpoints."""
    from mdmtn.records.store import load_records
    from mdmtn.study.maps import write_missing_maps
    from mdmtn.study.report import similarity_sources

    existing_dirs([args.dir])
    written = write_missing_maps(similarity_sources(load_records(args.dir), args.dir))
    for w in written:
        print(f"wrote {w}")
    print(f"{len(written)} map file(s) written")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdmtn.study", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("cells", help="train every cell of Tables 1-2 at the paper's own k, seed-major (resumable)")
    e.add_argument("--baselines", action="store_true", help="also MGDA-UB (HPS, MDMTN) and STL")
    e.add_argument("--only-dataset", action="store_true", help="only --dataset's table (default: both)")
    e.add_argument("--sparse-only", action="store_true", help="only the sparse cells (k0 > 0) of the paper's method")
    add_common_options(e)
    e.set_defaults(func=cmd_cells, method="wc_al")
    c = sub.add_parser(
        "compress", help="add the compressed-export summary to sparse run records from their checkpoints"
    )
    c.add_argument("dir", help="directory with <key>.json records and <key>.pt checkpoints")
    c.add_argument("--force", action="store_true", help="recompute where a summary exists")
    c.set_defaults(func=cmd_compress)
    mp = sub.add_parser(
        "maps",
        help="make the Fig. 7 similarity maps of the runs Tables 1-2 select, from their "
        "checkpoints (book pages only read them)",
    )
    mp.add_argument("dir", help="directory with <key>.json records and <key>.pt checkpoints")
    mp.set_defaults(func=cmd_maps)
    m = sub.add_parser("measured", help="README's Measured block, generated from the run records")
    m.add_argument("--results", default="results", help="folder with paper/ and quick/ record folders")
    m.add_argument("--write", default=None, metavar="README", help="replace the block in this file instead of printing")
    m.set_defaults(func=cmd_measured)
    ps = sub.add_parser("plan-seeds", help="write the runs that would decide an arm's inconclusive claims (a plan)")
    ps.add_argument("--arm", default="library", help="the arm (switch profile) whose claims to plan for")
    ps.add_argument(
        "--max-seeds", type=int, default=5, help="plan for claims decided by at most this many seeds a side"
    )
    ps.add_argument("--results", default="results", help="folder with paper/ and quick/ record folders")
    ps.add_argument("--out", required=True, help="the plan file to write (TOML)")
    ps.add_argument("--force", action="store_true", help="replace an existing plan file")
    ps.set_defaults(func=cmd_plan_seeds)
    rp = sub.add_parser("run-plan", help="train every run of a committed seeds plan, in its order (resumable)")
    rp.add_argument("plan", help="the plan file (TOML, from plan-seeds)")
    add_common_options(rp)
    rp.set_defaults(func=cmd_run_plan, method="wc_al", dataset=None, preset=None)  # None: not given
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mdmtn.study``: the study's commands (bad input: one line, exit code 2)."""
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
