"""Atomic file writes, and the removal of what killed writers leave behind.

Every file the library writes for later readers (run records, checkpoints, the dataset cache, the
study's generated files) goes through :func:`atomic_write`: the bytes go to a temporary file beside
the target, which is then renamed over it, so a reader sees the old file or the new one, never half
of one. The temporary file's name says who wrote it: ``.<name>.<pid>@<host>.<random>.tmp``.
:func:`remove_stale_temporaries` deletes those whose writer is gone: a dead process on this host,
or any writer's file older than a bound (another host's process cannot be asked; a live write
takes seconds).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["WriteFailed", "atomic_write", "write_json_atomic", "remove_stale_temporaries", "pid_alive", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"


class WriteFailed(OSError):
    """A file could not be written (full disk, quota, read-only file system); the file it would
    have replaced is untouched and the message says what to do."""


# errors of the storage, not of the program: one sentence, not a traceback
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


# mkstemp creates files 0600; records and checkpoints get the permissions any other file would
_FILE_MODE = 0o666 & ~_umask()


def _host() -> str:
    # dots would be read as field separators of the temporary file's name
    return socket.gethostname().replace(".", "_") or "localhost"


def atomic_write(path: Path, write: Callable[[Any], Any], advice: str = "free space or write elsewhere") -> None:
    """Write a file by calling ``write(binary_file)`` on a temporary file beside ``path``, then
    renaming it over ``path``: readers see the old file or the new one, never half of one. A full
    disk is :class:`WriteFailed` (one sentence ending in ``advice``) and leaves ``path`` as it was."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{path.name}.{os.getpid()}@{_host()}."
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=TMP_SUFFIX)
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
            raise WriteFailed(f"could not write {path}: {e.strerror or e} (nothing was replaced); {advice}") from None
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any, advice: str = "free space or write elsewhere") -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    path = Path(path)
    data = json.dumps(obj, indent=1, sort_keys=False, allow_nan=True).encode()
    atomic_write(path, lambda f: f.write(data), advice)
    return path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _writer(name: str) -> tuple[int, str] | None:
    """(pid, host) of a temporary file's writer, from its name; None for a name of another form."""
    parts = name[: -len(TMP_SUFFIX)].rsplit(".", 2)  # mkstemp's random part holds no dot
    if len(parts) != 3 or "@" not in parts[1]:
        return None
    pid, _, host = parts[1].partition("@")
    return (int(pid), host) if pid.isdigit() else None


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float) -> list[Path]:
    """Delete the temporary files of :func:`atomic_write` in ``folder`` whose writer is gone: one of
    a process on this host that is no longer alive, or any last touched more than ``older_than_s``
    seconds ago. A killed writer leaves them (hundreds of MB for a dataset cache); a live one
    finishes its write in seconds. Returns the removed paths."""
    now, me, removed = time.time(), (os.getpid(), _host()), []
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        writer = _writer(p.name)
        try:
            old = now - p.stat().st_mtime > older_than_s
        except FileNotFoundError:
            continue
        dead = writer is not None and writer[1] == me[1] and writer != me and not pid_alive(writer[0])
        if old or dead:
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            removed.append(p)
    return removed
