"""The one decision of which runs a table, front or verdict uses: is a record its configuration's
default run (the library's config for its dataset, model, method, k, preset and seed, under a
switch profile), rather than a variant with some setting overridden?"""

from __future__ import annotations

import functools
import json
from typing import Any

from mdmtn.core.config import RunConfig, make_config, profile_overrides


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


def is_default(rec: dict[str, Any], profile: str = "library", overrides: dict[str, Any] | None = None) -> bool:
    """Whether ``rec``'s config equals the one :func:`mdmtn.core.config.make_config` builds for its
    dataset, model, k, preset, seed and method under switch ``profile`` (``library``: no switch
    set), with ``overrides`` (flat field names, as ``--set``) on top. Front-study runs
    (``init_from``), switch variants and any other overridden field are not. Cached per (config,
    profile, overrides): tables, fronts and verdicts ask about the same records often."""
    return _is_default(json.dumps(rec["config"], sort_keys=True), profile, json.dumps(overrides or {}, sort_keys=True))
