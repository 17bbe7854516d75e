"""Command line: ``python -m mdmtn train ...`` and ``python -m mdmtn aggregate RUNS_DIR``.

``train`` maps arguments onto :func:`mdmtn.core.config.make_config` and nothing else; one run record
per (config, seed) is written to ``--out`` as ``<config key>.json`` (plus a ``.pt`` checkpoint).
A finished record is not recomputed unless ``--force`` is given, so an interrupted multi-seed
command resumes where it stopped. ``--method`` picks the paper's method (``wc_al``) or a
baseline (``mgda``, ``stl``, ``mtan``, ``kdmtl``); all write the same record layout.

``aggregate`` prints mean ± std over seeds of every configuration found in one or more run
directories, beside the paper's numbers (:mod:`mdmtn.records.aggregate`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from mdmtn.core.config import (
    DATASETS,
    GROUPS,
    METHOD_MODELS,
    METHODS,
    MODELS,
    PRESETS,
    PROFILES,
    ConfigError,
    RunConfig,
    config_fields,
    make_config,
    profile_overrides,
)
from mdmtn.core.fields import describe

# RunConfig identity fields with a flag of their own: --set would bypass the flag's checks and defaults
_OWN_FLAGS = {
    "dataset": "--dataset",
    "model": "--model",
    "k": "--k",
    "preset": "--preset",
    "seed": "--seed/--seeds",
    "method": "--method",
}
# every other setting gets an option derived from its field: --lr, --prox-mode, --mgda-variant, ...
_DERIVED = [f for f in config_fields() if f.name not in _OWN_FLAGS]


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``field=value`` strings as a dict of raw strings; :func:`mdmtn.core.config.make_config` turns each
    into its field's declared type (or a one-line ConfigError)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects field=value, got {item!r}")
        name, raw = item.split("=", 1)
        name = name.strip()
        if name in _OWN_FLAGS:
            raise ConfigError(f"give {name} with {_OWN_FLAGS[name]}, not --set {name}=...")
        if name in out and out[name].strip() != raw.strip():
            raise ConfigError(f"--set gives {name} twice ({out[name]!r} and {raw!r}); keep one")
        out[name] = raw
    return out


def seeds_from(args: argparse.Namespace) -> list[int]:
    """--seed or --seeds (not both), each seed once, in the order given."""
    if args.seeds and args.seed is not None:
        raise ConfigError("give either --seed or --seeds, not both")
    seeds = args.seeds if args.seeds else [0 if args.seed is None else args.seed]
    if any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be integers >= 0, got {seeds}")
    return list(dict.fromkeys(seeds))


def _loader(args: argparse.Namespace) -> Any:
    """Splits per distinct data setting, loaded once (picklable, for --workers)."""
    from mdmtn.data import SplitsLoader
    from mdmtn.data.sources import data_root, resolve_cache_dir

    # resolved here: worker processes (or a cluster's machines) may not share this environment
    root = data_root(args.data_dir)
    download = args.download
    if root is None:  # no data folder named: fetch the official files once, into the cache
        root, download = str(resolve_cache_dir(None) / "raw"), True
        print(
            f"note: no --data-dir or MDMTN_DATA given: using {root} (downloading the official MNIST / CIFAR-10 "
            "files there if missing)",
            file=sys.stderr,
        )
    return SplitsLoader(
        root,
        allow_unverified_cifar=args.allow_unverified_cifar,
        allow_unverified_mnist=args.allow_unverified_mnist or None,
        download=download,
    )


def derived_given(args: argparse.Namespace) -> dict[str, str]:
    """The derived per-setting options given on the command line, by flat name (raw text)."""
    return {f.name: v for f in _DERIVED if (v := getattr(args, "cfg_" + f.name, None)) is not None}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = _parse_set(args.set or [])
    for name, raw in derived_given(args).items():
        if name in overrides:
            raise ConfigError(f"{name} given twice: as --{name.replace('_', '-')} and as --set {name}=...; keep one")
        overrides[name] = raw
    profile = getattr(args, "profile", "library")
    if profile != "library":
        if getattr(args, "mu_schedule", "paper") != "paper":
            raise ConfigError(f"--profile {profile} sets the μ schedule itself; leave out --mu-schedule")
        for name, v in profile_overrides(profile, args.dataset, args.method).items():
            if name in overrides:
                raise ConfigError(f"{name} is set by --profile {profile}; give it one way")
            overrides[name] = v
    overrides["method"] = args.method
    return overrides


def run_configs(cfgs: list, args: argparse.Namespace) -> int:
    import torch

    from mdmtn.experiments.sweep import run_sweep

    _check_process_options(args)
    if args.threads and args.workers == 1:
        torch.set_num_threads(args.threads)
    if args.dask_scheduler:
        from mdmtn.experiments.cluster import run_sweep_dask

        recs = run_sweep_dask(
            cfgs,
            args.out,
            _loader(args),
            args.dask_scheduler,
            checkpoints=not args.no_checkpoint,
            threads=args.threads or 1,
            progress=not args.no_progress,
            force=args.force,
            device=args.device,
        )
    else:
        from mdmtn.experiments.sweep import check_out_dir

        check_out_dir(args.out)
        load = _loader(args)
        # every dataset still to train is read and verified first: a CIFAR-10 file that fails its check
        # stops the command before the MultiMNIST runs, not after them
        out = Path(args.out)
        for ds in sorted({c.dataset for c in cfgs if args.force or not (out / f"{c.key()}.json").is_file()}):
            load.check(ds)
        recs = run_sweep(
            cfgs,
            args.out,
            load,
            checkpoints=not args.no_checkpoint,
            progress=not args.no_progress,
            force=args.force,
            workers=args.workers,
            threads=args.threads or None,
            device=args.device,
            stack=_stack(args),
        )
    failed = [r for r in recs if not r.ok]
    for r in failed:
        print(f"error: run {r.key} diverged: {r.error}", file=sys.stderr)
    return 1 if failed else 0


STACK_ON_GPU = 8  # runs stacked per batched step on a GPU by default (--stack auto)


def _stack(args: argparse.Namespace) -> int:
    """``--stack``: an integer, or ``auto``: several runs per step on a GPU, one on a CPU, where
    worker processes are faster (benchmarks/README.md)."""
    if args.stack != "auto":
        return int(args.stack)
    from mdmtn.records.machine import resolve_device

    return STACK_ON_GPU if resolve_device(args.device).type == "cuda" and args.workers == 1 else 1


def max_workers() -> int:
    """The most worker processes a sweep starts: 4 per CPU core (each trains one run at a time)."""
    return 4 * (os.cpu_count() or 1)


MAX_THREADS = 1024  # far above any CPU this runs on; a larger count is a typo, and torch would fail on it


def _check_threads(threads: int) -> None:
    if not 0 <= threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be from 1 to {MAX_THREADS} (or 0 for torch's choice), got {threads}")


def _check_process_options(args: argparse.Namespace) -> None:
    from mdmtn.experiments.locks import lock_heartbeat_s, lock_stale_s

    lock_heartbeat_s(), lock_stale_s()  # the environment's lock timings, checked before any work
    if args.stack != "auto":
        try:
            n = int(args.stack)
        except ValueError:
            raise ConfigError(f"--stack must be auto or an integer >= 1, got {args.stack!r}") from None
        if n < 1:
            raise ConfigError(f"--stack must be auto or an integer >= 1, got {args.stack!r}")
        if n > 1 and (args.workers != 1 or args.dask_scheduler):
            raise ConfigError("--stack K > 1 trains in this process; it excludes --workers and --dask-scheduler")
    most = max_workers()
    if not 1 <= args.workers <= most:
        raise ConfigError(
            f"--workers must be from 1 to {most} (4 per CPU core here), got {args.workers}; a cluster's workers "
            "come with --dask-scheduler"
        )
    _check_threads(args.threads)
    if not args.dask_scheduler:  # a cluster's workers resolve their own device
        from mdmtn.records.machine import resolve_device

        resolve_device(args.device)
    if args.dask_scheduler and args.workers != 1:
        raise ConfigError("--workers and --dask-scheduler exclude each other (the cluster's workers train the runs)")


def cmd_train(args: argparse.Namespace) -> int:
    seeds = seeds_from(args)
    model = args.model or METHOD_MODELS[args.method][-1]  # mdmtn for wc_al / mgda, else the method's model
    overrides = _overrides(args)
    cfgs = [
        make_config(args.dataset, model, args.k, args.preset, s, mu_schedule=args.mu_schedule, **overrides)
        for s in seeds
    ]  # validate everything (k included) before any work
    return run_configs(cfgs, args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mdmtn.experiments.sweep import study_after_source, study_source, sweep_configs, sweep_vectors

    seeds = seeds_from(args)
    overrides = _overrides(args)
    _check_process_options(args)
    if args.strategy != "sequential":
        return _joint(args, seeds, overrides)
    if args.vectors.startswith("mt2o"):
        raise ConfigError("--vectors mt2o / mt2o-sparse are the sets for --strategy mt2o|independent")
    cfgs = sweep_configs(
        args.dataset,
        args.model,
        sweep_vectors(args.vectors),
        args.preset,
        seeds,
        mu_schedule=args.mu_schedule,
        **overrides,
    )
    src = None
    if args.pf_study_from:  # checked before the sweep trains anything
        src = study_source(cfgs, args.pf_study_from, seeds[0])
        _check_study_source(src, args)
    status = run_configs(cfgs, args)
    if src is not None:
        status |= run_configs(study_after_source(src, args.out, args.vectors), args)
    return status


def _check_study_source(src: RunConfig, args: argparse.Namespace) -> None:
    """:func:`mdmtn.experiments.sweep.check_study_source`, its restore hint given this sweep's data flags."""
    from mdmtn.experiments.sweep import check_study_source
    from mdmtn.records.checkpoint import CheckpointError

    try:
        check_study_source(src, args.out, args.vectors, checkpoints=not args.no_checkpoint, force=args.force)
    except CheckpointError as e:  # the restore command it names needs the same data flag as this sweep
        flags = "".join(
            f" --allow-unverified-{d}" for d in ("cifar", "mnist") if getattr(args, f"allow_unverified_{d}")
        )
        raise CheckpointError(str(e) + flags) from None


def _joint(args: argparse.Namespace, seeds: Sequence[int], overrides: dict[str, Any]) -> int:
    """``sweep --strategy mt2o|independent``: one joint solve per seed (mdmtn.training.mt2o)."""
    import torch

    from mdmtn.experiments.joint_runs import run_joint
    from mdmtn.experiments.sweep import check_out_dir, sweep_vectors
    from mdmtn.training.mt2o import MT2O_SPARSE_VECTORS, MT2O_VECTORS, joint_config

    if args.pf_study_from:
        raise ConfigError("--pf-study-from works with --strategy sequential only")
    if args.workers != 1:
        raise ConfigError("--workers works with --strategy sequential only (a joint solve is one process)")
    if args.device != "cpu" or args.dask_scheduler:
        raise ConfigError(
            "--strategy mt2o|independent runs on the CPU in one process: leave out --device and --dask-scheduler"
        )
    check_out_dir(args.out)  # before any note or work: a bad --out is one line
    overrides.pop("method")
    vectors = {"mt2o": MT2O_VECTORS, "mt2o-sparse": MT2O_SPARSE_VECTORS}.get(args.vectors) or sweep_vectors(
        args.vectors
    )
    k0 = {v[0] > 0 for v in vectors}
    if len(k0) > 1:  # the quick set mixes dense and sparse vectors: solve the sparse ones jointly
        vectors = [v for v in vectors if v[0] > 0]
        print(f"note: joint solves need one schedule; solving the {len(vectors)} vectors with k0 > 0", file=sys.stderr)
    jcs = [
        joint_config(
            args.dataset,
            args.model,
            vectors,
            args.preset,
            s,
            strategy=args.strategy,
            mu_schedule=args.mu_schedule,
            **overrides,
        )
        for s in seeds
    ]
    if args.threads:
        torch.set_num_threads(args.threads)
    run_joint(jcs, args.out, _loader(args), progress=not args.no_progress, force=args.force)
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    """``seal DIR...``: bring records of an older schema to the current one (checksum over every field),
    each checked by its own version's rule first."""
    from mdmtn.experiments.joint_runs import joint_key
    from mdmtn.records.store import seal_folder

    existing_dirs(args.dirs)
    sealed, refused = 0, []
    for d in args.dirs:
        n, bad = seal_folder(d, joint_key)
        sealed, refused = sealed + n, refused + bad
    for msg in refused:
        print(f"not sealed: {msg}", file=sys.stderr)
    print(f"{sealed} record(s) sealed" + (f", {len(refused)} file(s) refused (see above)" if refused else ""))
    return 1 if refused else 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from mdmtn.records.aggregate import aggregate, format_table
    from mdmtn.records.store import load_records

    existing_dirs(args.runs)
    records = load_records(args.runs)  # each run once, also when a folder is given twice
    if not records:
        print(f"error: no finished run records in {' '.join(args.runs)}", file=sys.stderr)
        return 2
    if args.timing:
        from mdmtn.records.aggregate import format_timing, timing_rows

        rows = timing_rows(records)
        if not rows:
            print(
                f"error: no record in {' '.join(args.runs)} has a timing block (records written before "
                "per-phase timing existed have none)",
                file=sys.stderr,
            )
            return 2
        print(json.dumps(rows, indent=1) if args.json else format_timing(rows))
        return 0
    rows = aggregate(records)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows, paper=not args.no_paper))
    return 0


def existing_dirs(dirs: Sequence[str]) -> None:
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"{d} is not a folder of run records")


def cmd_restore_checkpoint(args: argparse.Namespace) -> int:
    """``restore-checkpoint DIR KEY...``: retrain runs whose checkpoints are missing (mdmtn.experiments.restore)."""
    existing_dirs([args.dir])
    for key in args.keys:  # every name checked before any training
        if not re.fullmatch(r"[0-9a-f]{16}", key):
            raise ConfigError(f"{key!r} is not a record key (16 hex digits, the record's file name without .json)")
        if not (Path(args.dir) / f"{key}.json").is_file():
            raise ConfigError(f"no record {key}.json in {args.dir}: give the key of a committed run record")
    for name, v in (("--tol-acc", args.tol_acc), ("--tol-sr", args.tol_sr)):
        if v is not None and not (math.isfinite(v) and v >= 0):  # nan would accept any retrain
            raise ConfigError(f"{name} must be a finite number of percentage points >= 0, got {v}")
    _check_threads(args.threads)
    from mdmtn.experiments.restore import TOL_ACC_POINTS, TOL_SR_POINTS, RestoreMismatch, restore_checkpoint
    from mdmtn.records.schema import RecordError

    tol_acc = TOL_ACC_POINTS if args.tol_acc is None else args.tol_acc
    tol_sr = TOL_SR_POINTS if args.tol_sr is None else args.tol_sr
    load = _loader(args)
    status = 0
    for key in args.keys:
        try:
            restore_checkpoint(
                args.dir,
                key,
                load,
                tol_acc=tol_acc,
                tol_sr=tol_sr,
                force=args.force,
                threads=args.threads or None,
                progress=not args.no_progress,
            )
        except (RestoreMismatch, RecordError) as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


def add_data_options(t: argparse.ArgumentParser) -> None:
    """Where the raw data are and which checks of them to skip (``train``, ``sweep``, ``restore-checkpoint``)."""
    t.add_argument("--data-dir", default=None, help="folder with MNIST/ and cifar-10-batches-py/ (default $MDMTN_DATA)")
    t.add_argument(
        "--allow-unverified-cifar",
        action="store_true",
        help="skip torchvision's md5 check of the CIFAR-10 pickles (needed for rebuilt copies)",
    )
    t.add_argument(
        "--allow-unverified-mnist",
        action="store_true",
        help="use MNIST files that are not the official ones (sha256; also MDMTN_ALLOW_UNVERIFIED_MNIST=1)",
    )
    t.add_argument("--download", action="store_true", help="let torchvision download missing raw data")


def add_common_options(t: argparse.ArgumentParser) -> None:
    """Arguments shared by ``train`` and ``sweep``."""
    t.add_argument("--dataset", choices=DATASETS, default="multimnist")
    t.add_argument("--preset", choices=PRESETS, default="quick")
    t.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    t.add_argument("--seeds", type=int, nargs="+", help="several seeds, one record each")
    t.add_argument("--out", default="runs", help="directory for run records and checkpoints")
    add_data_options(t)
    t.add_argument(
        "--mu-schedule",
        choices=("paper", "head"),
        default="paper",
        help="paper: mu0 2.5e-5/1e-4 halved; head: the authors' later 2.5e-8/6.8e-8 doubled",
    )
    t.add_argument(
        "--profile",
        choices=PROFILES,
        default="library",
        help="switch profile: library (defaults); authors-2023: the authors' code before 2023-10-02, "
        "which made the paper's numbers; authors-head: their code today (book appendix)",
    )
    t.add_argument(
        "--set",
        nargs="*",
        action="extend",
        metavar="FIELD=VALUE",
        help="override RunConfig settings by flat name, e.g. prox_mode=head (each also has its own option, "
        "listed below by group)",
    )
    t.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (per worker with --workers; default: torch's choice, or the CPU "
        "count divided by --workers)",
    )
    t.add_argument(
        "--workers",
        type=int,
        default=1,
        help="train this many configs at once, one process each (sequential strategy and "
        "multi-seed train). 2 on a 2-core CPU: see benchmarks/README.md",
    )
    t.add_argument(
        "--device",
        default="cpu",
        metavar="DEVICE",
        help="auto (a GPU if present), cpu (default), cuda or cuda:N: where data, models and optimiser "
        "state live; the record names it (the MT2O-v joint solver runs on the CPU only)",
    )
    t.add_argument(
        "--allow-tf32",
        action="store_true",
        help="let CUDA matmuls and cuDNN convolutions use TF32 (default: full fp32, as on the CPU; "
        "also MDMTN_ALLOW_TF32=1); the record's machine.precision says what was in force",
    )
    t.add_argument(
        "--stack",
        default="auto",
        metavar="K",
        help="train up to K configs that differ only in k together, one batched step for all (auto: "
        f"{STACK_ON_GPU} on a GPU, 1 on a CPU, where --workers is faster)",
    )
    t.add_argument(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="submit every pending config as a task to this running Dask scheduler (tcp://HOST:PORT "
        "or a scheduler file); --out must be a folder every worker sees",
    )
    t.add_argument("--force", action="store_true", help="retrain even if a finished record exists")
    t.add_argument("--no-checkpoint", action="store_true")
    t.add_argument("--no-progress", action="store_true")
    _config_options(t)


def _config_options(t: argparse.ArgumentParser) -> None:
    """One option per RunConfig setting, grouped as the config is, with the field's type and help
    text: the same settings ``--set FIELD=VALUE`` takes (both go through make_config's checks)."""
    from mdmtn.core.config import preset_dependent

    varies = preset_dependent()
    # the usage line lists the command's own options; the ~60 settings are summarised, not spelled out
    head = t.format_usage().removeprefix("usage: ").rstrip()
    t.usage = head + "\n" + " " * (len(t.prog) + 8) + "[--SETTING VALUE ...]   (one per RunConfig setting: see below)"
    for group, cls, _ in (("run", RunConfig, ""), *GROUPS):
        fs = [f for f in _DERIVED if (f.group or "run") == group]
        title = f"{group} settings ({cls.__name__})" if group != "run" else "run settings (RunConfig)"
        g = t.add_argument_group(title, (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "))
        for f in fs:
            default = "per dataset / preset / method" if f.name in varies else _show(f.default)
            kind = describe(f.type)
            metavar = "{" + kind.replace(" | ", ",") + "}" if "|" in kind else kind.upper().replace(" ", "_")
            g.add_argument(
                "--" + f.name.replace("_", "-"),
                dest="cfg_" + f.name,
                default=None,
                metavar=metavar,
                help=f"{f.doc} (default: {default})".replace("%", "%%"),
            )


def _show(v: Any) -> str:
    return (
        "none" if v is None else str(v).lower() if isinstance(v, bool) else str(list(v) if isinstance(v, tuple) else v)
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdmtn", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one preference vector k (one record per seed)")
    t.add_argument(
        "--method",
        choices=METHODS,
        default="wc_al",
        help="wc_al: the paper's method; mgda (MGDA-UB), stl, mtan, kdmtl: baselines (book appendix); unitary: the mean "
        "task loss trained like MGDA-UB (the skeptic's baseline)",
    )
    t.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="wc_al / mgda: hps or mdmtn (default mdmtn); stl / mtan / kdmtl: the method's own model",
    )
    t.add_argument(
        "--k",
        nargs="+",
        default=["0.001", "0.2", "0.799"],
        help="preference vector k0 k1 k2 (k0: sparsity, k1/k2: tasks); non-negative, sums to 1 "
        "(stored but unused by the baselines)",
    )
    add_common_options(t)
    t.set_defaults(func=cmd_train)
    w = sub.add_parser("sweep", help="train a set of preference vectors (resumable), optionally a PF study")
    w.add_argument(
        "--vectors",
        choices=("quick", "paper", "mt2o", "mt2o-sparse"),
        default="quick",
        help="quick: 14 vectors (mdmtn.experiments.sweep.QUICK_VECTORS); paper: the paper's 90; mt2o: 5 "
        "vectors with k0 = 0 (mdmtn.training.mt2o.MT2O_VECTORS); mt2o-sparse: the same with k0 = 0.001",
    )
    w.add_argument(
        "--strategy",
        choices=("sequential", "mt2o", "independent"),
        default="sequential",
        help="sequential: Algorithm 1 per vector, one record each; mt2o: the subproblems solved "
        "jointly with parameter transfer (MT2O-v, phase 1 only), one record per seed; "
        "independent: the same joint loop without transfer (the control). --set takes "
        "JointConfig fields too (period=, neighbours=, beta0=, iterations=, ...)",
    )
    w.add_argument(
        "--pf-study-from",
        nargs=3,
        metavar="K",
        default=None,
        help="after the sweep, run the 2-D Pareto-front study (App. B) from this vector's model",
    )
    w.add_argument("--model", choices=("hps", "mdmtn"), default="mdmtn")
    add_common_options(w)
    w.set_defaults(func=cmd_sweep, method="wc_al")
    r = sub.add_parser(
        "restore-checkpoint",
        help="recreate missing <key>.pt checkpoints by retraining their runs; "
        "kept only if they reproduce the committed records",
    )
    r.add_argument("dir", help="directory with the <key>.json run records")
    r.add_argument("keys", nargs="+", metavar="KEY", help="record keys (file names without .json)")
    # defaults live in mdmtn.experiments.restore (TOL_ACC_POINTS, TOL_SR_POINTS), which imports torch; --help must not
    r.add_argument(
        "--tol-acc",
        type=float,
        default=None,
        help="largest accepted gap of a test or validation accuracy, in points (default 0.5)",
    )
    r.add_argument("--tol-sr", type=float, default=None, help="largest accepted gap of SR, in points (default 1.0)")
    r.add_argument("--threads", type=int, default=0, help="torch threads (default: the record's own count)")
    r.add_argument("--force", action="store_true", help="retrain even if a checkpoint of the run is there")
    add_data_options(r)
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=cmd_restore_checkpoint)
    sl = sub.add_parser("seal", help="bring older records to the current schema, with the checksum over every field")
    sl.add_argument("dirs", nargs="+", help="folders of <key>.json run records")
    sl.set_defaults(func=cmd_seal)
    a = sub.add_parser("aggregate", help="mean ± std over seeds of the run records in one or more directories")
    a.add_argument("runs", nargs="+", help="directories with <config key>.json run records")
    a.add_argument("--json", action="store_true", help="print the aggregated rows as JSON")
    a.add_argument("--no-paper", action="store_true", help="leave out the paper's numbers")
    a.add_argument(
        "--timing",
        action="store_true",
        help="where the wall time went: mean seconds per phase and the share outside training epochs",
    )
    a.set_defaults(func=cmd_aggregate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mdmtn``: the library's commands."""
    return dispatch(build_parser(), argv)


def _terminate_as_interrupt() -> None:
    """SIGTERM (a timeout, ``docker stop``, a cluster's pre-kill) ends a command as Ctrl-C does:
    one sentence, the finished runs kept, the resume command. Only in the main thread of the
    main interpreter, where Python delivers signals."""
    import signal
    import threading

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run its command; a bad input is one line and exit code 2,
    an interrupt one line and 130 (also for ``python -m mdmtn.study``)."""
    args = parser.parse_args(argv)
    _terminate_as_interrupt()
    from mdmtn.core.files import WriteFailed
    from mdmtn.data import DatasetError
    from mdmtn.experiments.sweep import SweepInterrupted
    from mdmtn.records.checkpoint import CheckpointError
    from mdmtn.records.schema import RecordError

    try:
        if getattr(args, "allow_tf32", None) is not None:  # the training commands
            if args.allow_tf32:
                os.environ["MDMTN_ALLOW_TF32"] = "1"  # worker processes inherit the choice
            from mdmtn.records.machine import allow_tf32

            allow_tf32()  # a bad MDMTN_ALLOW_TF32 is one line here, before any work
        return args.func(args)
    except (ConfigError, DatasetError, CheckpointError, RecordError, WriteFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SweepInterrupted as e:
        print(e, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
