"""Sweeps on a Dask cluster: every pending configuration becomes one task on a running scheduler.

The user starts the cluster (``dask scheduler`` and ``dask worker``\\ s, or dask-jobqueue on a
batch system); :func:`run_sweep_dask` connects to it and submits one task per configuration
that has no finished record in ``out_dir``, which every worker must see (a shared file system).
Each task locks its configuration (:mod:`mdmtn.experiments.locks`), so two sweeps, or a sweep and a retry,
never train the same one at once; it writes the record atomically and releases the lock. A
worker that dies mid-run loses only that run: Dask re-runs the task elsewhere, and the retry
takes over the dead worker's lock (its pid is gone, or its heartbeat stops). Front-study
configurations are submitted once their source's record exists.

From the command line::

    python -m mdmtn sweep ... --dask-scheduler tcp://HOST:8786 --out /shared/runs
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from mdmtn.core.config import ConfigError, RunConfig
from mdmtn.experiments.locks import Locks
from mdmtn.experiments.sweep import check_out_dir, check_same_inputs, in_order, pending, run_tag, summary, train_one
from mdmtn.records.schema import RecordError
from mdmtn.records.store import find_record, read_run, record_path

_LOADERS: dict[bytes, Any] = {}  # per worker process: one loader (and its cached splits) per data setting


def _worker_loader(load: Any) -> Any:
    import pickle

    key = pickle.dumps(load)
    return _LOADERS.setdefault(key, load)


def train_locked(
    cfg: RunConfig,
    out_dir: str,
    load: Callable[[RunConfig], Any],
    checkpoints: bool = False,
    threads: int | None = 1,
    poll_s: float = 5.0,
    device: str = "auto",
) -> dict[str, Any]:
    """One cluster task: the record of ``cfg`` in ``out_dir``, trained here unless another live
    holder is training it (then its record is waited for) or it already exists."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    locks = Locks(out_dir, log=lambda s: None)
    try:
        while True:
            path = record_path(out_dir, cfg)
            if locks.acquire(cfg.key()):
                try:
                    rec = find_record(out_dir, cfg, set_aside=True, log=None)
                    if rec is None:
                        rec = train_one(cfg, out_dir, _worker_loader(load)(cfg), checkpoints=checkpoints, device=device)
                    return rec
                finally:
                    locks.release(cfg.key())
            if path.exists():  # written by the holder, which is releasing its lock
                try:
                    return read_run(path)
                except RecordError:
                    pass
            time.sleep(poll_s)
    finally:
        locks.close()


# How long connecting to a scheduler may take before the sweep gives up with a message.
CONNECT_TIMEOUT_S = 20.0


def connect(scheduler: str, client_cls: Any = None, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A Dask ``Client`` for ``scheduler`` (``tcp://HOST:PORT`` or an existing scheduler file), or a
    :class:`ConfigError` naming the address and what to check: a file path that does not exist, or no
    scheduler answering within ``timeout_s`` seconds (a refused port, a port that is not a scheduler)."""
    if client_cls is None:
        from distributed import Client as client_cls
    looks_like_file = not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")) and (
        "/" in scheduler or scheduler.endswith(".json")
    )
    if looks_like_file and not Path(scheduler).is_file():
        raise ConfigError(
            f"--dask-scheduler {scheduler!r}: no such scheduler file (start one with "
            "`dask scheduler --scheduler-file PATH`, or give tcp://HOST:PORT)"
        )
    kw = dict(scheduler_file=scheduler) if Path(scheduler).is_file() else dict(address=scheduler)
    # Client's own timeout does not cover a port that accepts TCP but never speaks Dask's protocol:
    # the handshake then waits forever. The attempt runs in a daemon thread and is given up after
    # timeout_s (the thread dies with the process, which ends on the error).
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["client"] = client_cls(timeout=f"{timeout_s:g}s", **kw)
        except BaseException as e:  # noqa: BLE001 - reported below, in the caller's thread
            box["error"] = e

    th = threading.Thread(target=attempt, name="mdmtn-dask-connect", daemon=True)
    th.start()
    th.join(timeout_s + 2.0)
    if "client" in box:
        return box["client"]
    why = type(box["error"]).__name__ if "error" in box else "no answer"
    raise ConfigError(
        f"--dask-scheduler {scheduler!r}: no Dask scheduler answered within {timeout_s:g} s ({why}); "
        "check that `dask scheduler` runs there and that the address and port are the scheduler's"
    )


def run_sweep_dask(
    cfgs: Sequence[RunConfig],
    out_dir: str | Path,
    load: Callable[[RunConfig], Any],
    scheduler: str,
    *,
    checkpoints: bool = False,
    threads: int | None = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
    force: bool = False,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Train the configs of ``cfgs`` without a finished record in ``out_dir`` on the Dask cluster at
    ``scheduler`` (``tcp://HOST:PORT``, or a scheduler file path); returns the records in ``cfgs``
    order. ``load`` must be picklable (:class:`mdmtn.data.SplitsLoader`) and find the data on every
    worker; ``threads`` torch threads per task; ``device`` is resolved on each worker (``auto``:
    its GPU if it has one)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError(
            "--dask-scheduler needs Dask's distributed package: pip install -e .[cluster] (or pip install distributed)"
        ) from None

    # absolute before it travels: a worker resolves a relative path in its own working directory,
    # so records would land where the user never looks while this prints a path that is empty
    out_dir = check_out_dir(Path(out_dir).expanduser().resolve())
    by_key, records, todo = pending(cfgs, out_dir, force, log)
    check_same_inputs(cfgs, records, out_dir, load)
    with connect(scheduler, Client) as client:
        later = [i for i in todo if cfgs[i].init_from is not None]
        futures = {}

        def submit(i: int) -> None:
            fut = client.submit(
                train_locked,
                cfgs[i],
                str(out_dir),
                load,
                checkpoints,
                threads,
                5.0,
                device,
                key=f"mdmtn-{cfgs[i].key()}-{time.time_ns()}",
                pure=False,
                retries=2,
            )
            futures[fut] = i

        ac = as_completed()
        waiting = list(later)

        def release_ready() -> None:  # front-study configs whose source is no longer being trained
            running = {cfgs[x].key() for x in futures.values()}
            for j in [j for j in waiting if cfgs[j].init_from not in running]:
                waiting.remove(j)
                submit(j)
                ac.add(next(f for f, x in futures.items() if x == j))

        for i in todo:
            if i not in later:
                submit(i)
                ac.add(next(f for f, x in futures.items() if x == i))
        release_ready()
        for fut in ac:
            i = futures.pop(fut)
            rec = fut.result()
            records[i] = rec
            log(
                f"[done] {run_tag(i, cfgs)}: {record_path(out_dir, cfgs[i])}: "
                + (summary(rec) if rec.ok else f"diverged ({rec.error})")
            )
            release_ready()
    return in_order(cfgs, by_key, records)
