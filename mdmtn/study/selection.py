"""The one decision of which runs a table, front or verdict uses: is a record its configuration's
default run (the library's config for its dataset, model, method, k, preset and seed, under a
switch profile), rather than a variant with some setting overridden?"""

from __future__ import annotations

import functools
import json
from typing import Any, Sequence

import numpy as np

from mdmtn.core.config import RunConfig, make_config, profile_overrides
from mdmtn.records.schema import RunRecord


@functools.lru_cache(maxsize=None)
def _is_default(config_json: str, profile: str, overrides_json: str = "{}") -> bool:
    c = json.loads(config_json)
    try:
        want = make_config(
            c["dataset"],
            c["model"],
            c["k"],
            c["preset"],
            c["seed"],
            method=c.get("method", "wc_al"),
            **{**profile_overrides(profile, c["dataset"], c.get("method", "wc_al")), **json.loads(overrides_json)},
        )
        return RunConfig.from_dict(c) == want
    except Exception:  # noqa: BLE001 - a config today's library cannot rebuild is no default run
        return False


def is_default(rec: RunRecord, profile: str = "library", overrides: dict[str, Any] | None = None) -> bool:
    """Whether ``rec``'s config equals the one :func:`mdmtn.core.config.make_config` builds for its
    dataset, model, k, preset, seed and method under switch ``profile`` (``library``: no switch
    set), with ``overrides`` (flat field names, as ``--set``) on top. Front-study runs
    (``init_from``), switch variants and any other overridden field are not. Cached per (config,
    profile, overrides): tables, fronts and verdicts ask about the same records often."""
    return _is_default(json.dumps(rec.config, sort_keys=True), profile, json.dumps(overrides or {}, sort_keys=True))


def _profile_of(config_json: str) -> str:
    """The switch profile a config is the default run of; "every profile" for a method no switch
    touches (STL, MTAN, KDMTL, unitary); "variant" for none."""
    from mdmtn.core.config import PROFILES

    hits = [p for p in PROFILES if _is_default(config_json, p)]
    return "every profile" if len(hits) == len(PROFILES) else (hits[0] if hits else "variant")


def selection_line(what: str, records: list[RunRecord] | tuple[dict[str, Any], ...]) -> str:
    """One line, shown before a section displays anything, saying which runs it reads: how many,
    their preset(s), switch profile(s) (the profile a run is exactly the default config of; "every
    profile" for a method no switch touches; else "variant": a switch or setting overridden, a
    front study) and seeds. Markdown."""
    if not records:
        return f"*{what}: no run records yet.*"
    configs = [r.config.get("run", r.config) for r in records]  # a joint record's runs share one config
    presets = sorted({c["preset"] for c in configs})
    profiles: dict[str, int] = {}
    for c in configs:
        name = _profile_of(json.dumps(c, sort_keys=True))
        profiles[name] = profiles.get(name, 0) + 1
    seeds = sorted({c["seed"] for c in configs})
    shown = ", ".join(f"{p} ({n})" for p, n in sorted(profiles.items(), key=lambda kv: (-kv[1], kv[0])))
    return (
        f"*{what}: {len(records)} run record{'s' if len(records) != 1 else ''} read; preset "
        f"{', '.join(presets)}; profile {shown}; seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}.*"
    )


def objective_vectors(records: Sequence[RunRecord], dims: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """(n, len(dims)) array of the runs' objective vectors; dims index (L0, L1, L2)."""
    return np.array([[r.metrics.train_objectives[d] for d in dims] for r in records], dtype=float)


def best_run(records: Sequence[RunRecord], select: str = "test") -> RunRecord | None:
    """The run with the highest mean accuracy of the tasks on the ``test`` split (the paper's
    rule, which selects on test data; departure #18) or on the ``val`` split."""
    if not records:
        return None
    key = {"test": "test_acc_mean", "val": "val_acc_mean"}[select]
    return max(records, key=lambda r: getattr(r.metrics, key))
