"""Preference-vector sweeps: the paper's 90 vectors, preset-sized subsets, a resumable runner.

The runner trains each missing configuration and writes its record atomically as
``<out_dir>/<config key>.json``; a finished record is never recomputed, so killing a sweep and
starting it again redoes no finished run and loses none (at most the run in progress).
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .config import RunConfig, make_config
from .records import find_record, record_path, save_checkpoint, write_json_atomic


def paper_preference_vectors() -> list[tuple[float, float, float]]:
    """The paper's 90 preference vectors (k0, k1, k2) in the authors' file order (spec §9.1).

    k0 = 0: 19 vectors; k0 = 0.1: 17; k0 ∈ {0.01, 0.001, 0.0001}: 18 each. Values are rounded
    to 10 decimals so that k sums to 1 exactly as written in the authors' files.
    """
    def r(v: float) -> float:
        return round(v, 10)

    out: list[tuple[float, float, float]] = []
    a0 = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.55, 0.45, 0.65, 0.35, 0.75, 0.25, 0.85, 0.15, 0.95, 0.05]
    out += [(0.0, a, r(1 - a)) for a in a0]
    a1 = [0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85, 0.05]
    out += [(0.1, a, r(0.9 - a)) for a in a1]
    for k0 in (0.01, 0.001, 0.0001):
        for j in range(1, 10):
            out.append((k0, r(j / 10 - k0), r(1 - j / 10)))
            out.append((k0, r(1 - j / 10), r(j / 10 - k0)))
    return out


# A CPU-sized subset: three sparsity weights x three task trade-offs, plus the paper's best
# vectors of Tables 1-2 so the tables can be regenerated at the same k.
QUICK_VECTORS: list[tuple[float, float, float]] = [
    (0.0, 0.2, 0.8), (0.0, 0.5, 0.5), (0.0, 0.8, 0.2),
    (0.001, 0.2, 0.799), (0.001, 0.5, 0.499), (0.001, 0.8, 0.199),
    (0.01, 0.2, 0.79), (0.01, 0.5, 0.49), (0.01, 0.8, 0.19),
]


def sweep_vectors(name: str) -> list[tuple[float, float, float]]:
    """``"paper"``: the 90 vectors; ``"quick"``: :data:`QUICK_VECTORS`."""
    if name == "paper":
        return paper_preference_vectors()
    if name == "quick":
        return list(QUICK_VECTORS)
    raise ValueError(f"unknown vector set {name!r}; choose 'paper' or 'quick'")


def sweep_configs(dataset: str, model: str, vectors: Iterable[Sequence[float]], preset: str,
                  seeds: Sequence[int] = (0,), **overrides: Any) -> list[RunConfig]:
    """One validated config per (vector, seed)."""
    return [make_config(dataset, model, k, preset, s, **overrides) for k in vectors for s in seeds]


def pf_study_configs(source: RunConfig, source_key: str, vectors: str = "quick") -> list[RunConfig]:
    """Configs of the 2-D Pareto-front study (paper App. B, spec §9.5) around a trained sparse
    run: the paper's vectors with the source's k0 (all 18, or 5 spread over k1 for ``"quick"``),
    each retrained from the source model for one stage with its zero rows kept at zero."""
    same = sorted((k for k in paper_preference_vectors() if k[0] == source.k[0]), key=lambda k: k[1])
    if not same:
        raise ValueError(f"no paper preference vector has k0 = {source.k[0]}")
    if vectors == "quick":
        idx = sorted({round(i * (len(same) - 1) / 4) for i in range(5)})
        same = [same[i] for i in idx]
    fields = source.to_dict()
    fields.update(init_from=source_key)
    return [RunConfig.from_dict({**fields, "k": list(k)}) for k in same]


def run_sweep(cfgs: Sequence[RunConfig], out_dir: str | Path, load: Callable[[RunConfig], Any], *,
              checkpoints: bool = False, progress: bool = True, force: bool = False,
              log: Callable[[str], None] = print, workers: int = 1, threads: int | None = None) -> list[dict[str, Any]]:
    """Train every config of ``cfgs`` that has no finished record in ``out_dir`` (all with ``force``).

    ``load(cfg)`` returns the :class:`mdmtn.data.Splits` for a config (called lazily, only if
    something must be trained; :class:`mdmtn.data.SplitsLoader` caches per data setting). Configs
    with ``init_from`` start from the checkpoint ``<out_dir>/<init_from>.pt``. A diverged run is
    recorded with ``status="error"`` and the sweep goes on. Returns the records, in ``cfgs``
    order (error records included).

    ``workers > 1`` trains that many configs at once, each in its own process with ``threads``
    torch threads (default: the CPU count divided by ``workers``, at least 1). ``load`` must then
    be picklable (``SplitsLoader`` is). Each run is the same computation as in a sequential sweep;
    only the thread count can change float summation order. On a 2-core CPU two 1-thread
    workers use the cores better than one 2-thread run (``benchmarks/sweep.py``). Configs with
    ``init_from`` are trained after the others, so their source checkpoint exists.
    """
    out_dir = Path(out_dir)
    records: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    for i, cfg in enumerate(cfgs):
        rec = None if force else find_record(out_dir, cfg)
        if rec is not None:
            log(f"[skip] {_tag(i, cfgs)}: {record_path(out_dir, cfg)} exists: {summary(rec)}")
            records[i] = rec
        else:
            todo.append(i)

    def report(i: int, rec: dict[str, Any]) -> None:
        records[i] = rec
        if rec.get("status") == "ok":
            log(f"[done] {_tag(i, cfgs)}: {record_path(out_dir, cfgs[i])}: {summary(rec)}")
        else:
            log(f"[error] {_tag(i, cfgs)}: diverged ({rec.get('error')})")

    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            report(i, train_one(cfgs[i], out_dir, load(cfgs[i]), checkpoints=checkpoints, progress=progress))
    else:
        _run_parallel(cfgs, todo, out_dir, load, checkpoints, progress, workers, threads, report)
    return [records[i] for i in range(len(cfgs))]


def train_one(cfg: RunConfig, out_dir: str | Path, splits: Any, *, checkpoints: bool = False,
              progress: bool = False) -> dict[str, Any]:
    """Train one config and write its record (and checkpoint) atomically; returns the record.

    A diverged run writes an error record instead of raising."""
    from .records import load_checkpoint
    from .trainer import TrainingDiverged, train

    out_dir = Path(out_dir)
    start = None
    if cfg.init_from is not None:  # PF study: start from the source run's saved model
        start = load_checkpoint(out_dir / f"{cfg.init_from}.pt")[0]
    try:
        result = train(cfg, splits, progress=progress, model=start)
    except TrainingDiverged as e:
        rec = dict(status="error", key=cfg.key(), config=cfg.to_dict(), error=str(e),
                   traceback=traceback.format_exc())
        write_json_atomic(record_path(out_dir, cfg), rec)
        return rec
    rec = result.record
    if checkpoints:
        rec["checkpoint"] = save_checkpoint(out_dir / f"{cfg.key()}.pt", result.model, cfg).name
    write_json_atomic(record_path(out_dir, cfg), rec)
    return rec


def _tag(i: int, cfgs: Sequence[RunConfig]) -> str:
    cfg = cfgs[i]
    return f"[{i + 1}/{len(cfgs)}] {cfg.method}/{cfg.model}/{cfg.dataset} k={list(cfg.k)} seed={cfg.seed}"


def _worker_start(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker_run(cfg: RunConfig, out_dir: str, load: Callable[[RunConfig], Any], checkpoints: bool) -> dict[str, Any]:
    return train_one(cfg, out_dir, load(cfg), checkpoints=checkpoints, progress=False)


def _run_parallel(cfgs, todo, out_dir, load, checkpoints, progress, workers, threads, report) -> None:
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # fork would copy torch's thread pools into the children; spawn starts clean interpreters
    ctx = mp.get_context("spawn")
    later = {i for i in todo if cfgs[i].init_from is not None}  # they need their source's checkpoint
    queue = [i for i in todo if i not in later] + [i for i in todo if i in later]
    bar = tqdm(total=len(todo), desc=f"sweep ({workers} workers x {threads} threads)", unit="run",
               disable=not progress)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                             initargs=(threads,)) as pool:
        running: dict[Any, int] = {}
        try:
            while queue or running:
                # a PF-study config waits until no run it could start from is still training
                while queue and len(running) < workers and not (
                        queue[0] in later and any(j not in later for j in running.values())):
                    i = queue.pop(0)
                    running[pool.submit(_worker_run, cfgs[i], str(out_dir), load, checkpoints)] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    report(running.pop(fut), fut.result())
                    bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()


def summary(rec: dict[str, Any]) -> str:
    """One line: per-task test accuracy, SR/CR/PS and wall time of a record."""
    m = rec["metrics"]
    acc = " / ".join(f"{100 * a:.2f}" for a in m["test_acc"])
    return (f"test acc {acc} (avg {100 * m['test_acc_mean']:.3f}%)  SR {m['SR']:.2f}%  CR {m['CR']:.3f}  "
            f"PS {m['PS']:.3f}  wall {rec['wall_time_s']:.1f}s")
