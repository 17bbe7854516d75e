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
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every config of ``cfgs`` that has no finished record in ``out_dir`` (all with ``force``).

    ``load(cfg)`` returns the :class:`mdmtn.data.Splits` for a config (called lazily, only if
    something must be trained; cache it yourself if several configs share data). Configs with
    ``init_from`` start from the checkpoint ``<out_dir>/<init_from>.pt``. A diverged run is
    recorded with ``status="error"`` and the sweep goes on. Returns the records, in order
    (error records included).
    """
    from .trainer import TrainingDiverged, train

    out_dir = Path(out_dir)
    records: list[dict[str, Any]] = []
    for i, cfg in enumerate(cfgs):
        tag = f"[{i + 1}/{len(cfgs)}] {cfg.method}/{cfg.model}/{cfg.dataset} k={list(cfg.k)} seed={cfg.seed}"
        rec = None if force else find_record(out_dir, cfg)
        if rec is not None:
            log(f"[skip] {tag}: {record_path(out_dir, cfg)} exists: {summary(rec)}")
            records.append(rec)
            continue
        start = None
        if cfg.init_from is not None:  # PF study: start from the source run's saved model
            from .records import load_checkpoint

            start = load_checkpoint(out_dir / f"{cfg.init_from}.pt")[0]
        try:
            result = train(cfg, load(cfg), progress=progress, model=start)
        except TrainingDiverged as e:
            rec = dict(status="error", key=cfg.key(), config=cfg.to_dict(), error=str(e),
                       traceback=traceback.format_exc())
            write_json_atomic(record_path(out_dir, cfg), rec)
            log(f"[error] {tag}: diverged ({e})")
            records.append(rec)
            continue
        rec = result.record
        if checkpoints:
            rec["checkpoint"] = save_checkpoint(out_dir / f"{cfg.key()}.pt", result.model, cfg).name
        path = write_json_atomic(record_path(out_dir, cfg), rec)
        log(f"[done] {tag}: {path}: {summary(rec)}")
        records.append(rec)
    return records


def summary(rec: dict[str, Any]) -> str:
    """One line: per-task test accuracy, SR/CR/PS and wall time of a record."""
    m = rec["metrics"]
    acc = " / ".join(f"{100 * a:.2f}" for a in m["test_acc"])
    return (f"test acc {acc} (avg {100 * m['test_acc_mean']:.3f}%)  SR {m['SR']:.2f}%  CR {m['CR']:.3f}  "
            f"PS {m['PS']:.3f}  wall {rec['wall_time_s']:.1f}s")
