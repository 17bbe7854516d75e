"""Preference-vector sweeps: the paper's 90 vectors, preset-sized subsets, a resumable runner.

The runner trains each missing configuration and writes its record atomically as
``<out_dir>/<config key>.json``; a finished record is never recomputed, so killing a sweep and
starting it again redoes no finished run and loses none (at most the run in progress).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from mdmtn.core.config import ConfigError, RunConfig, make_config
from mdmtn.core.files import remove_stale_temporaries
from mdmtn.core.paper import paper_preference_vectors
from mdmtn.experiments.locks import Locks, lock_stale_s
from mdmtn.records.checkpoint import CheckpointError, save_checkpoint
from mdmtn.records.schema import RecordError, RunRecord, new_record
from mdmtn.records.store import find_record, read_run, record_path, write_record

# A CPU-sized subset: three sparsity weights x three task trade-offs, plus every vector of
# Tables 1-2 so the tables can be regenerated at the same k.
QUICK_VECTORS: list[tuple[float, float, float]] = [
    (0.0, 0.2, 0.8),
    (0.0, 0.5, 0.5),
    (0.0, 0.8, 0.2),
    (0.001, 0.2, 0.799),
    (0.001, 0.5, 0.499),
    (0.001, 0.8, 0.199),
    (0.01, 0.2, 0.79),
    (0.01, 0.5, 0.49),
    (0.01, 0.8, 0.19),
    # the other vectors Tables 1-2 print (the three above that they use are (0, .5, .5),
    # (.001, .2, .799) and (.01, .8, .19)), so the quick tables can compare the paper's own k
    (0.0, 0.4, 0.6),
    (0.0001, 0.5, 0.4999),
    (0.0, 0.35, 0.65),
    (0.1, 0.6, 0.3),
    (0.0, 0.55, 0.45),
]


def sweep_vectors(name: str) -> list[tuple[float, float, float]]:
    """``"paper"``: the 90 vectors; ``"quick"``: :data:`QUICK_VECTORS`."""
    if name == "paper":
        return paper_preference_vectors()
    if name == "quick":
        return list(QUICK_VECTORS)
    raise ValueError(f"unknown vector set {name!r}; choose 'paper' or 'quick'")


def sweep_configs(
    dataset: str,
    model: str,
    vectors: Iterable[Sequence[float]],
    preset: str,
    seeds: Sequence[int] = (0,),
    **overrides: Any,
) -> list[RunConfig]:
    """One validated config per (vector, seed)."""
    return [make_config(dataset, model, k, preset, s, **overrides) for k in vectors for s in seeds]


def pf_study_configs(source: RunConfig, source_key: str, vectors: str = "quick") -> list[RunConfig]:
    """Configs of the 2-D Pareto-front study (paper App. B, the book appendix) around a trained sparse
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


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or a dead worker process during a sweep: ``done`` runs finished (their
    records are written), the rest resume when the same command is run again."""

    def __init__(self, done: int, why: str = "interrupted") -> None:
        super().__init__(f"{why}; {done} runs done, re-run the same command to resume")
        self.done = done


class WorkerDied(KeyboardInterrupt):
    """A worker process of a sweep ended without finishing its run (killed by the system's
    out-of-memory killer, or by hand): the sweep stops as it does on Ctrl-C."""


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a writable folder (created if missing), or :class:`ConfigError` saying why
    not, so a sweep fails before training rather than when its first record is due."""
    if not str(out_dir).strip():
        raise ConfigError("--out is empty; pass --out a folder (it is created if missing)")
    out = Path(out_dir)
    for p in [out, *out.parents]:
        if p.exists() and not p.is_dir():
            what = "is a file" if p == out else f"is under {p}, which is a file"
            raise ConfigError(f"output folder {out} {what}; pass --out a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"output folder {out} is not writable ({e.strerror or e}); pass --out a folder you can write to"
        ) from None
    return out


def run_sweep(
    cfgs: Sequence[RunConfig],
    out_dir: str | Path,
    load: Callable[[RunConfig], Any],
    *,
    checkpoints: bool = False,
    progress: bool = True,
    force: bool = False,
    log: Callable[[str], None] = print,
    workers: int = 1,
    threads: int | None = None,
    poll_s: float = 5.0,
    device: str = "cpu",
    stack: int = 1,
) -> list[RunRecord]:
    """Train every config of ``cfgs`` that has no finished record in ``out_dir`` (all with ``force``).

    ``load(cfg)`` returns the :class:`mdmtn.data.Splits` for a config (called lazily, only if
    something must be trained; :class:`mdmtn.data.SplitsLoader` caches per data setting). Configs
    with ``init_from`` start from the checkpoint ``<out_dir>/<init_from>.pt``, once that run is
    done. A diverged run is recorded with ``status="error"`` and the sweep goes on. Returns the
    records, in ``cfgs`` order (error records included; a config given twice is trained once).

    A file under a config's name that is not its record (:func:`mdmtn.records.read_record`) is
    set aside and the config retrained. Sweeps sharing ``out_dir`` split the work through lock
    files (:mod:`mdmtn.experiments.locks`): a config another live sweep is training is waited for (polling
    every ``poll_s`` seconds), not trained twice. Ctrl-C raises :class:`SweepInterrupted`.
    ``device`` (``auto``, ``cpu``, ``cuda[:N]``) is where every run trains (checked first).

    ``workers > 1`` trains that many configs at once, each in its own process with ``threads``
    torch threads (default: the CPU count divided by ``workers``, at least 1). ``load`` must then
    be picklable (``SplitsLoader`` is). Each run is the same computation as in a sequential sweep;
    only the thread count can change float summation order. On a 2-core CPU two 1-thread
    workers use the cores better than one 2-thread run (``benchmarks/sweep.py``). Workers die
    with the sweep's process, even when it is killed with SIGKILL.

    ``stack > 1`` trains up to that many configs that differ only in k together in this process,
    with one batched step (:mod:`mdmtn.training.stacked`; for a GPU, where one small network leaves the
    device idle); other configs train one by one. ``workers`` is then not used.
    """
    from mdmtn.records.machine import pin_code_version, resolve_device

    if stack < 1:
        raise ConfigError(f"--stack must be >= 1, got {stack}")

    device = str(resolve_device(device))
    pin_code_version()  # every run of the sweep names the commit it started with, workers included
    out_dir = check_out_dir(out_dir)
    for p in remove_stale_temporaries(out_dir, lock_stale_s()):
        log(f"[clean] removed {p.name}, the temporary file of a write that was killed")
    by_key, records, todo = pending(cfgs, out_dir, force, log)
    check_same_inputs(cfgs, records, out_dir, load)
    check_study_sources(cfgs, todo, out_dir, checkpoints)

    def report(i: int, rec: RunRecord, elsewhere: bool = False) -> None:
        records[i] = rec
        if elsewhere:
            log(f"[skip] {run_tag(i, cfgs)}: another sweep wrote {record_path(out_dir, cfgs[i])}")
        elif rec.ok:
            # a background sweep's log is read with tail: say how far the whole sweep has got
            log(
                f"[done] {run_tag(i, cfgs)}: {record_path(out_dir, cfgs[i])}: {summary(rec)}; {len(records)} of {len(cfgs)} recorded"
            )
        else:
            log(f"[error] {run_tag(i, cfgs)}: diverged ({rec.error})")

    locks = Locks(out_dir, log=log)
    plan = _Plan(cfgs, todo, out_dir, locks, log, force)
    n_before = len(records)
    try:
        if stack > 1:
            _run_stacked(cfgs, plan, out_dir, load, checkpoints, progress, report, poll_s, device, stack)
        elif workers <= 1 or len(todo) <= 1:
            _run_inline(cfgs, plan, out_dir, load, checkpoints, progress, report, poll_s, device)
        else:
            _run_parallel(cfgs, plan, out_dir, load, checkpoints, progress, workers, threads, report, poll_s, device)
    except WorkerDied as e:
        raise SweepInterrupted(len(records) - n_before, str(e)) from None
    except KeyboardInterrupt:
        raise SweepInterrupted(len(records) - n_before) from None
    finally:
        locks.close()
    return in_order(cfgs, by_key, records)


def check_same_inputs(
    cfgs: Sequence[RunConfig], records: dict[int, RunRecord], out_dir: Path, load: Callable[[RunConfig], Any]
) -> None:
    """Before any training: every finished record found (``records``, index -> record) was trained
    on the very input files ``load`` reads now (the sha256 of the raw inputs, ``data.input_sha256``).
    A record made from other files is not a finished run of its config on these files, and is not
    overwritten either: :class:`ConfigError` names it and the way out. Records that predate the
    fingerprint are taken as they are. ``load`` is called once per data setting (it caches)."""
    for i, rec in records.items():
        want = (rec.data or {}).get("input_sha256")
        if not want:
            continue
        got = (getattr(load(cfgs[i]), "info", None) or {}).get("input_sha256")
        if got and got != want:
            raise ConfigError(
                f"{record_path(out_dir, cfgs[i])} was trained on other input files (inputs sha256 "
                f"{want[:12]}…) than the data found now ({got[:12]}…), so it is not a finished run on "
                "these files; move it away or use another --out (or --force to retrain it over it)"
            )


def study_source(cfgs: Sequence[RunConfig], k: Sequence[float], seed: int) -> RunConfig:
    """The config of a sweep that a front study starts from: the one with preference vector ``k``
    and ``seed``; :class:`mdmtn.core.config.ConfigError` if the sweep has none."""
    k = tuple(float(v) for v in k)
    src = [c for c in cfgs if c.k == k and c.seed == seed]
    if not src:
        raise ConfigError(f"--pf-study-from {list(k)} is not one of the sweep's vectors")
    return src[0]


def check_study_source(
    src: RunConfig, out_dir: str | Path, vectors: str, *, checkpoints: bool, force: bool = False
) -> None:
    """Before a sweep with a front study trains anything: when the sweep will train the source
    ``src``, it must save its checkpoint (``checkpoints``); when the source is already trained and
    the study still has runs to do, that checkpoint must be in ``out_dir`` (a fresh clone has the
    records but not the .pt files). Raises ConfigError / CheckpointError saying what to do."""
    if find_record(out_dir, src, log=None) is None:
        if not checkpoints:
            raise ConfigError("--pf-study-from needs the source run's checkpoint: leave out --no-checkpoint")
        return
    study = pf_study_configs(src, src.key(), vectors)
    todo = [i for i, c in enumerate(study) if force or find_record(out_dir, c, log=None) is None]
    check_study_sources(study, todo, Path(out_dir), checkpoints=False)


def study_after_source(src: RunConfig, out_dir: str | Path, vectors: str) -> list[RunConfig]:
    """The front study's configs once its source has trained (:func:`pf_study_configs` of the
    source's finished record in ``out_dir``); ConfigError if the source has no finished record."""
    rec = find_record(out_dir, src)
    if rec is None:
        raise ConfigError(f"the source run k={list(src.k)} has no finished record in {out_dir}")
    return pf_study_configs(src, rec.key, vectors)


def check_study_sources(cfgs: Sequence[RunConfig], todo: Sequence[int], out_dir: Path, checkpoints: bool) -> None:
    """Before any training: every pending front-study run (``cfgs[i]`` for ``i`` in ``todo``) can
    get its source's checkpoint, from ``out_dir`` or from a source this sweep trains with
    checkpoints on. Raises :class:`mdmtn.records.checkpoint.CheckpointError` naming the fix otherwise."""
    trained_here = {cfgs[i].key() for i in todo} if checkpoints else set()
    for i in todo:
        src = cfgs[i].init_from
        if src is None or src in trained_here or (out_dir / f"{src}.pt").is_file():
            continue
        if (out_dir / f"{src}.json").is_file():
            raise CheckpointError(
                f"the front-study run {cfgs[i].key()} starts from run {src}, whose record is in "
                f"{out_dir} but whose checkpoint {src}.pt is not (checkpoints are not committed). "
                f"Recreate it first: python -m mdmtn restore-checkpoint {out_dir} {src}"
            )
        raise CheckpointError(
            f"the front-study run {cfgs[i].key()} starts from run {src}, which is neither in {out_dir} "
            "nor trained (with checkpoints) by this sweep: train the source first"
        )


def pending(
    cfgs: Sequence[RunConfig], out_dir: Path, force: bool, log: Callable[[str], None]
) -> tuple[dict[str, int], dict[int, RunRecord], list[int]]:
    """What a sweep of ``cfgs`` finds in ``out_dir``: (key -> index of its first config, index ->
    finished record, indices to train). A config given twice is listed once; a file under a
    config's name that is not its record is set aside (:func:`mdmtn.records.find_record`)."""
    by_key: dict[str, int] = {}
    records: dict[int, RunRecord] = {}
    todo: list[int] = []
    for i, cfg in enumerate(cfgs):
        if cfg.key() in by_key:
            continue
        by_key[cfg.key()] = i
        rec = None if force else find_record(out_dir, cfg, set_aside=True, log=log)
        if rec is not None:
            log(f"[skip] {run_tag(i, cfgs)}: {record_path(out_dir, cfg)} exists: {summary(rec)}")
            records[i] = rec
        else:
            todo.append(i)
    return by_key, records, todo


def in_order(cfgs: Sequence[RunConfig], by_key: dict[str, int], records: dict[int, RunRecord]) -> list[RunRecord]:
    """The records in ``cfgs`` order; a duplicate config shares its first occurrence's record."""
    return [records.get(i, records[by_key[cfg.key()]]) for i, cfg in enumerate(cfgs)]


class _Plan:
    """Which configs of a sweep are left, and which one to train next.

    A config is handed out only once this process holds its lock; one that another live sweep
    holds is deferred and resolved when its record appears (or retried if its holder dies)."""

    def __init__(
        self,
        cfgs: Sequence[RunConfig],
        todo: list[int],
        out_dir: Path,
        locks: Locks,
        log: Callable[[str], None],
        force: bool = False,
    ) -> None:
        self.cfgs, self.out_dir, self.locks, self.log, self.force = cfgs, out_dir, locks, log, force
        self.finished_elsewhere: dict[int, RunRecord] = {}
        # front-study configs go last: they start from their source's checkpoint
        self.queue = [i for i in todo if cfgs[i].init_from is None] + [i for i in todo if cfgs[i].init_from]
        self.running: set[int] = set()
        self.deferred: dict[int, str] = {}

    @property
    def finished(self) -> bool:
        return not (self.queue or self.running or self.deferred or self.finished_elsewhere)

    def _source_pending(self, i: int) -> bool:
        src = self.cfgs[i].init_from
        if src is None or (self.out_dir / f"{src}.pt").exists():
            return False
        others = {self.cfgs[j].key() for j in self.queue + list(self.running) + list(self.deferred) if j != i}
        return src in others or self.locks.holder(src) is not None

    def next(self) -> int | None:
        """A locked config to train now, or None if none can start yet."""
        for i in list(self.queue):
            if self._source_pending(i):
                continue
            self.queue.remove(i)
            if self.locks.acquire(self.cfgs[i].key()):
                # another sweep may have finished it since this one looked: its record is the result
                rec = None if self.force else find_record(self.out_dir, self.cfgs[i], log=None)
                if rec is not None:
                    self.locks.release(self.cfgs[i].key())
                    self.finished_elsewhere[i] = rec
                    continue
                self.running.add(i)
                return i
            holder = self.locks.holder(self.cfgs[i].key()) or "another sweep"
            self.log(f"[wait] {run_tag(i, self.cfgs)}: {holder} is training it")
            self.deferred[i] = holder
        return None

    def done(self, i: int) -> None:
        self.running.discard(i)
        self.locks.release(self.cfgs[i].key())

    def resolve_deferred(self) -> dict[int, RunRecord]:
        """Records that other sweeps finished meanwhile; configs whose holder vanished requeued."""
        found, self.finished_elsewhere = self.finished_elsewhere, {}
        for i in list(self.deferred):
            path = record_path(self.out_dir, self.cfgs[i])
            try:
                rec = read_run(path) if path.exists() else None
            except RecordError:
                rec = None
            if self.locks.holder(self.cfgs[i].key()) is not None:
                continue  # still being trained elsewhere
            del self.deferred[i]
            if rec is not None:
                found[i] = rec
            else:  # its holder vanished without a record: train it here
                self.queue.append(i)
        return found


def _await_others(plan: _Plan, report, poll_s: float) -> None:
    """Nothing of ours to start: report the configs other sweeps finished, then wait a poll."""
    for j, rec in plan.resolve_deferred().items():
        report(j, rec, elsewhere=True)
    if plan.queue or plan.deferred:
        time.sleep(poll_s)


def _run_stacked(cfgs, plan: _Plan, out_dir, load, checkpoints, progress, report, poll_s, device, stack) -> None:
    """Take up to ``stack`` pending configs that differ only in k and train them as one stack; a config
    that cannot join the current stack starts the next one; a stack of one trains alone."""
    from mdmtn.training.stacked import StackError, check_stackable

    carry: int | None = None
    while not plan.finished or carry is not None:
        group = [carry] if carry is not None else []
        carry = None
        while len(group) < stack:
            i = plan.next()
            if i is None:
                break
            try:
                check_stackable([cfgs[j] for j in group + [i]])
            except StackError:
                if not group:  # cannot be stacked at all (a baseline, a front study): alone
                    group = [i]
                    break
                carry = i
                break
            group.append(i)
        if not group:
            _await_others(plan, report, poll_s)
            continue
        try:
            recs = train_stack(
                [cfgs[i] for i in group],
                out_dir,
                load(cfgs[group[0]]),
                checkpoints=checkpoints,
                progress=progress,
                device=device,
            )
        finally:
            for i in group:
                plan.done(i)
        for i, rec in zip(group, recs):
            report(i, rec)


def _run_inline(cfgs, plan: _Plan, out_dir, load, checkpoints, progress, report, poll_s, device) -> None:
    while not plan.finished:
        i = plan.next()
        if i is None:
            _await_others(plan, report, poll_s)
            continue
        try:
            rec = train_one(cfgs[i], out_dir, load(cfgs[i]), checkpoints=checkpoints, progress=progress, device=device)
        finally:
            plan.done(i)
        report(i, rec)


def train_one(
    cfg: RunConfig,
    out_dir: str | Path,
    splits: Any,
    *,
    checkpoints: bool = False,
    progress: bool = False,
    device: str = "cpu",
) -> RunRecord:
    """Train one config and write its record (and checkpoint) atomically; returns the record.

    A diverged run (any method) writes an error record instead of raising."""
    from mdmtn.records.checkpoint import load_checkpoint
    from mdmtn.records.probe import load_verified_checkpoint
    from mdmtn.training.loop import TrainingDiverged
    from mdmtn.training.runner import train

    out_dir = Path(out_dir)
    start = None
    if cfg.init_from is not None:  # PF study: start from the source run's saved model
        start, src_cfg, src_extra = load_checkpoint(out_dir / f"{cfg.init_from}.pt")
        if src_cfg.key() != cfg.init_from:
            raise CheckpointError(
                f"checkpoint {cfg.init_from}.pt in {out_dir} holds the model of config "
                f"{src_cfg.key()}, not of the front study's source {cfg.init_from}; retrain the source"
            )
        src_path = out_dir / f"{cfg.init_from}.json"
        if not src_path.is_file():
            raise CheckpointError(
                f"the front study's source checkpoint {cfg.init_from}.pt in {out_dir} has no record "
                f"{src_path.name} to be checked against; train the source there first"
            )
        src_rec = read_run(src_path)
        start, _, src_extra = load_verified_checkpoint(out_dir / f"{cfg.init_from}.pt", src_rec)
    try:
        result = train(cfg, splits, progress=progress, model=start, device=device)
    except TrainingDiverged as e:
        return _write_result(cfg, out_dir, e, checkpoints)
    if start is not None and src_extra.get("restored"):  # say that the start was a retrained copy of the source
        r = src_extra["restored"]
        result.record["source_checkpoint"] = dict(
            restored=True,
            gaps_points=r["gaps_points"],
            tolerance_points=r["tolerance_points"],
            cpu_model=r["machine"].get("cpu_model"),
        )
    return _write_result(cfg, out_dir, result, checkpoints)


def _write_result(cfg: RunConfig, out_dir: Path, result: Any, checkpoints: bool) -> RunRecord:
    """Write a run's record (and checkpoint), or an error record for a diverged run; returns it."""
    from mdmtn.training.loop import TrainingDiverged

    if isinstance(result, TrainingDiverged):
        tb = "".join(traceback.format_exception(type(result), result, result.__traceback__))
        rec = new_record(status="error", key=cfg.key(), config=cfg.to_dict(), error=str(result), traceback=tb)
    elif isinstance(result, BaseException):
        raise result
    else:
        from mdmtn.core.config import INPUT_SHAPES
        from mdmtn.records.probe import model_probe

        rec = result.record
        after = (rec.get("timing") or {}).get("after_wall_s")
        t0 = time.perf_counter()
        rec["probe"] = model_probe(result.model, INPUT_SHAPES[cfg.dataset])  # ties a checkpoint to this record
        t1 = time.perf_counter()
        if checkpoints:
            rec["checkpoint"] = save_checkpoint(out_dir / f"{cfg.key()}.pt", result.model, cfg).name
        if after is not None:
            after.update(probe=round(t1 - t0, 4), checkpoint_write=round(time.perf_counter() - t1, 4))
            t2 = time.perf_counter()
            write_record(record_path(out_dir, cfg), rec)
            # the record's own write is timed by writing it once more with that time (a few ms)
            after["record_write"] = round(time.perf_counter() - t2, 4)
    write_record(record_path(out_dir, cfg), rec)
    return RunRecord.from_dict(rec)


def train_stack(
    group: Sequence[RunConfig],
    out_dir: str | Path,
    splits: Any,
    *,
    checkpoints: bool = False,
    progress: bool = False,
    device: str = "cpu",
) -> list[RunRecord]:
    """Train configs that differ only in k as one stack (:func:`mdmtn.training.stacked.train_stacked`) and
    write each one's record as :func:`train_one` would; returns the records in ``group`` order. A
    group of one is :func:`train_one` (a config that cannot be stacked trains alone)."""
    from mdmtn.training.stacked import train_stacked

    if len(group) == 1:
        return [train_one(group[0], out_dir, splits, checkpoints=checkpoints, progress=progress, device=device)]

    results = train_stacked(group, splits, device=device, progress=progress)
    return [_write_result(cfg, Path(out_dir), res, checkpoints) for cfg, res in zip(group, results)]


def run_tag(i: int, cfgs: Sequence[RunConfig]) -> str:
    """``[i/N] method/model/dataset k=[..] seed=s``: how a sweep names config ``i`` in its log."""
    cfg = cfgs[i]
    return f"[{i + 1}/{len(cfgs)}] {cfg.method}/{cfg.model}/{cfg.dataset} k={list(cfg.k)} seed={cfg.seed}"


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when the sweep's process does, however that ends: the kernel
    sends SIGKILL when the parent exits (Linux), and a watchdog thread covers other systems."""
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect (e.g. while this one started)
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="mdmtn-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold back SIGINT in this thread while it starts worker processes. The children inherit the
    blocked mask, so a Ctrl-C that arrives while one is still booting (importing torch, seconds on a
    cold disk) stays pending instead of printing its KeyboardInterrupt traceback; the worker then
    ignores it and unblocks (:func:`_worker_start`). Here it is delivered on exit."""
    import signal

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_start(threads: int, parent: int) -> None:
    import signal

    import torch

    # Ctrl-C reaches the whole process group: the parent handles it and ends the workers. Ignoring
    # SIGINT discards one that arrived while this process started with it blocked (_sigint_held).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(parent)
    torch.set_num_threads(threads)


def _worker_run(
    cfg: RunConfig, out_dir: str, load: Callable[[RunConfig], Any], checkpoints: bool, device: str = "cpu"
) -> RunRecord:
    return train_one(cfg, out_dir, load(cfg), checkpoints=checkpoints, progress=False, device=device)


def _run_parallel(
    cfgs, plan: _Plan, out_dir, load, checkpoints, progress, workers, threads, report, poll_s, device
) -> None:
    """Train the plan's runs in ``workers`` processes. Each process is its own one-worker pool, so a
    process that dies (the out-of-memory killer, kill -9) breaks its own run only: no new run
    starts, the others in progress finish and are recorded, then :class:`WorkerDied` says which run
    was lost (resumed by the same command)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # fork would copy torch's thread pools into the children; spawn starts clean interpreters
    ctx = mp.get_context("spawn")
    bar = tqdm(
        total=len(plan.queue), desc=f"sweep ({workers} workers x {threads} threads)", unit="run", disable=not progress
    )
    pools = [
        ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_worker_start, initargs=(threads, os.getpid()))
        for _ in range(workers)
    ]
    free = list(pools)
    running: dict[Any, tuple[int, Any]] = {}
    lost: list[int] = []  # runs whose worker process died
    try:
        while not plan.finished:
            while not lost and free and (i := plan.next()) is not None:
                pool = free.pop()
                with _sigint_held():  # submit starts the worker process
                    running[pool.submit(_worker_run, cfgs[i], str(out_dir), load, checkpoints, device)] = (i, pool)
            for j, rec in plan.resolve_deferred().items():
                report(j, rec, elsewhere=True)
                bar.update(1)
            if not running:
                if lost:  # what was in progress has finished; nothing new was started
                    break
                if plan.queue or plan.deferred:
                    time.sleep(poll_s)
                continue
            done, _ = wait(running, timeout=poll_s if plan.deferred else None, return_when=FIRST_COMPLETED)
            for fut in done:
                i, pool = running.pop(fut)
                plan.done(i)
                try:
                    rec = fut.result()
                except BrokenProcessPool:
                    lost.append(i)
                    pool.shutdown(wait=False)
                    continue
                report(i, rec)
                bar.update(1)
                free.append(pool)
        for pool in pools:
            pool.shutdown(wait=True)
        if lost:
            raise WorkerDied(
                f"a worker process died while training {', '.join(run_tag(i, cfgs) for i in lost)} (killed: out "
                "of memory?); the runs in progress in the other workers finished and were recorded"
            )
    except BaseException:
        # a run in a worker cannot be cancelled: end the workers, so none finishes a run after this
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for p in mp.active_children():
            p.terminate()
        for p in mp.active_children():
            p.join(5)
        for i, _ in running.values():
            plan.done(i)
        raise
    finally:
        bar.close()


def summary(rec: RunRecord) -> str:
    """One line: per-task test accuracy, SR/CR/PS and wall time of a record."""
    m = rec.metrics
    acc = " / ".join(f"{100 * a:.2f}" for a in m.test_acc)
    return (
        f"test acc {acc} (avg {100 * m.test_acc_mean:.3f}%)  SR {m.SR:.2f}%  CR {m.CR:.3f}  "
        f"PS {m.PS:.3f}  wall {rec.wall_time_s:.1f}s"
    )
