"""On-disk cache of built composites: one file per (dataset, builder version, build params, raw input).

A file holds uint8 images and int64 labels as tensors plus two strings: ``key`` (sha256 of the
raw input arrays, builder version and params, i.e. what the file was built *from*) and
``content_sha256`` (sha256 of the stored arrays, i.e. what the file *holds*). Loading checks
both, so a truncated, bit-flipped or stale file is rebuilt with a warning instead of being used.
Writes are atomic (:func:`mdmtn.core.files.atomic_write`); a killed writer's temporary files are
removed at the next start (:func:`mdmtn.core.files.remove_stale_temporaries`).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdmtn.core.files import atomic_write, remove_stale_temporaries


def sha256_arrays(arrays: dict[str, np.ndarray], extra: str = "") -> str:
    """sha256 over names, dtypes, shapes and bytes of ``arrays`` (sorted by name) plus ``extra``."""
    h = hashlib.sha256(extra.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """Verified arrays from ``path``, or None (with a warning) if unreadable, stale or corrupt."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        arrays = {k: v.numpy() for k, v in blob["arrays"].items()}
        ok = blob["key"] == key and blob["content_sha256"] == sha256_arrays(arrays)
    except Exception as e:  # any unpickling / format error means "corrupt"
        warnings.warn(f"mdmtn cache file {path} is unreadable ({e!r}); rebuilding it.", stacklevel=3)
        return None
    if not ok:
        warnings.warn(f"mdmtn cache file {path} fails its checksum; rebuilding it.", stacklevel=3)
        return None
    return arrays


def _write(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    blob = {
        "key": key,
        "content_sha256": sha256_arrays(arrays),
        "arrays": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
    }
    atomic_write(path, lambda f: torch.save(blob, f), "free space or set MDMTN_CACHE to another folder")


STALE_TMP_S = 3600.0  # a temporary file with no live writer this old is a leftover whatever its name


def load_or_build(
    path: Path, key: str, build: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """Cached arrays if ``path`` is valid for ``key``; else ``build()``, store, return.

    Returns (arrays, hit). A cache folder that cannot be written only warns (data is still returned).
    """
    if path.parent.is_dir():  # a killed writer's temporaries: hundreds of MB each
        remove_stale_temporaries(path.parent, STALE_TMP_S)
    if path.is_file():
        arrays = _read(path, key)
        if arrays is not None:
            return arrays, True
    arrays = build()
    try:
        _write(path, key, arrays)
    except OSError as e:
        warnings.warn(f"could not write mdmtn cache file {path} ({e}); continuing without cache.", stacklevel=2)
    return arrays, False
