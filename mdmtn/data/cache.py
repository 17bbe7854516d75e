"""On-disk cache of built composites: one file per (dataset, builder version, build params, raw input).

A file holds uint8 images and int64 labels as tensors plus two strings: ``key`` (sha256 of the
raw input arrays, builder version and params, i.e. what the file was built *from*) and
``content_sha256`` (sha256 of the stored arrays, i.e. what the file *holds*). Loading checks
both, so a truncated, bit-flipped or stale file is rebuilt with a warning instead of being used.
Writes are atomic (temp file in the same folder + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch


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
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "key": key,
        "content_sha256": sha256_arrays(arrays),
        "arrays": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
    }
    # the writer's pid in the name: a later start can tell a dead writer's leftover from a live write
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old file or the complete new one, never a partial one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STALE_TMP_S = 3600.0  # a temporary file with no live writer this old is a leftover whatever its name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left (``<name>.<pid>.<random>.tmp``
    whose pid is not alive on this host, or any such file over an hour old): hundreds of MB each
    for a dataset cache. Returns the files removed."""
    import time

    gone = []
    for f in path.parent.glob(f"{path.name}.*.tmp"):
        pid = f.name[len(path.name) + 1 :].split(".", 1)[0]
        try:
            old = time.time() - f.stat().st_mtime > STALE_TMP_S
        except FileNotFoundError:
            continue
        if old or (pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))):
            f.unlink(missing_ok=True)
            gone.append(f)
    return gone


def load_or_build(
    path: Path, key: str, build: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """Cached arrays if ``path`` is valid for ``key``; else ``build()``, store, return.

    Returns (arrays, hit). A cache folder that cannot be written only warns (data is still returned).
    """
    if path.parent.is_dir():
        remove_stale_temporaries(path)
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
