"""Lock files: several sweeps (processes, or machines sharing a folder) split one set of runs.

Before training a config a sweep creates ``<out>/<key>.lock`` exclusively (``O_CREAT|O_EXCL``),
holding its host, pid, a random token and a heartbeat time that a background thread refreshes
every ``heartbeat_s``. Another sweep that finds the file leaves the config alone. A lock is
*stale*, and is taken over with a message, when its holder's pid is dead on this host or its
heartbeat is older than ``stale_s`` (a holder on another machine that died). Locks are released
(deleted, if still ours) when the run finishes or fails. Take-overs are serialised by an
``flock`` on ``<out>/.locks.flock``, so two sweeps never both take over one stale lock.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from mdmtn.core.config import ConfigError
from mdmtn.core.files import pid_alive

# A lock file that is empty or unreadable (a disk that filled up while it was written, a garbage
# file) is stale once it is older than this: a live holder writes its content right after creating it.
UNREADABLE_STALE_S = 5.0


def env_seconds(name: str, default: float) -> float:
    """A number of seconds > 0 from environment variable ``name`` (``default`` if unset);
    :class:`ConfigError` naming the variable for anything else."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"environment variable {name}={raw!r}: expected a number of seconds > 0")
    return v


MIN_HEARTBEAT_S = 0.5  # below this a heartbeat thread spins a core for nothing
HEARTBEATS_PER_STALE = 3  # a live holder misses this many heartbeats before its lock reads as stale


def lock_heartbeat_s() -> float:
    """Seconds between heartbeats (``MDMTN_LOCK_HEARTBEAT_S``, default 30, at least 0.5)."""
    v = env_seconds("MDMTN_LOCK_HEARTBEAT_S", 30.0)
    if v < MIN_HEARTBEAT_S:
        raise ConfigError(f"environment variable MDMTN_LOCK_HEARTBEAT_S={v:g}: expected at least {MIN_HEARTBEAT_S} s")
    return v


def lock_stale_s() -> float:
    """Age after which a lock's heartbeat is stale (``MDMTN_LOCK_STALE_S``, default 600): at least
    three heartbeats, or a second sweep would take over a live lock and both would train the run."""
    v = env_seconds("MDMTN_LOCK_STALE_S", 600.0)
    beat = lock_heartbeat_s()
    if v < HEARTBEATS_PER_STALE * beat:
        raise ConfigError(
            f"MDMTN_LOCK_STALE_S={v:g} is below {HEARTBEATS_PER_STALE} heartbeats (MDMTN_LOCK_HEARTBEAT_S={beat:g}): "
            "a live lock would be taken over; raise the first or lower the second"
        )
    return v


def lock_path(out_dir: str | os.PathLike, key: str) -> Path:
    return Path(out_dir) / f"{key}.lock"


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content, or None if it is gone; an unreadable lock reads as an empty dict
    (it is then judged by its file time)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return d if isinstance(d, dict) else {}


def stale_reason(path: Path, lock: dict[str, Any], stale_s: float | None = None) -> str | None:
    """Why a lock no longer protects its run (None if it does).

    Every wait on a lock is bounded: a lock whose holder pid is dead on this host is stale at
    once; an empty or unreadable lock (no host, pid and token) once its file is older than
    :data:`UNREADABLE_STALE_S`; otherwise its heartbeat decides, stale after ``stale_s``. A heartbeat
    that is not a finite number, or lies more than ``stale_s`` in the future (clocks of two machines
    that disagree), is unreliable: the file's modification time, which every heartbeat renews, is
    used instead, and a file time that is itself that far in the future makes the lock stale."""
    stale_s = lock_stale_s() if stale_s is None else stale_s
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return "it is gone"
    now = time.time()
    host, pid = lock.get("host"), lock.get("pid")
    if not (isinstance(host, str) and isinstance(pid, int) and not isinstance(pid, bool) and lock.get("token")):
        age = now - mtime
        if age > UNREADABLE_STALE_S:
            return f"it is empty or unreadable and {age:.0f} s old (limit {UNREADABLE_STALE_S:.0f} s)"
        return None
    if host == socket.gethostname() and not pid_alive(pid):
        return f"its holder pid {pid} on {host} is not running"
    beat = lock.get("heartbeat")
    reliable = (
        isinstance(beat, (int, float)) and not isinstance(beat, bool) and math.isfinite(beat) and beat - now <= stale_s
    )
    if not reliable:
        if mtime - now > stale_s:
            return f"its heartbeat ({beat!r}) and its file time are in the future: the clocks disagree"
        beat = mtime
    age = now - beat
    if age > stale_s:
        return f"its heartbeat is {age:.0f} s old (limit {stale_s:.0f} s)"
    return None


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".locks.flock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Locks:
    """The locks one process holds, kept alive by one heartbeat thread.

    >>> import tempfile
    >>> locks = Locks(tempfile.mkdtemp())
    >>> locks.acquire("abc"), Locks(locks.out_dir).acquire("abc")  # a second holder is refused
    (True, False)
    >>> locks.release("abc"); locks.close()
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        heartbeat_s: float | None = None,
        stale_s: float | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.out_dir, self.log = Path(out_dir), log
        self.heartbeat_s = lock_heartbeat_s() if heartbeat_s is None else heartbeat_s
        self.stale_s = lock_stale_s() if stale_s is None else stale_s
        if not self.heartbeat_s >= MIN_HEARTBEAT_S or not self.stale_s >= HEARTBEATS_PER_STALE * self.heartbeat_s:
            raise ConfigError(
                f"lock timings: heartbeat {self.heartbeat_s:g} s must be at least {MIN_HEARTBEAT_S} s and the stale "
                f"threshold {self.stale_s:g} s at least {HEARTBEATS_PER_STALE} heartbeats"
            )
        if self.out_dir.joinpath(".locks.flock").is_dir():
            raise ConfigError(f"{self.out_dir / '.locks.flock'} is a folder; remove it (it must be a file)")
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._held: dict[str, str] = {}  # key -> token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _content(self, token: str) -> bytes:
        return json.dumps(dict(host=self.host, pid=self.pid, token=token, heartbeat=time.time())).encode()

    def _create(self, key: str) -> bool:
        token = uuid.uuid4().hex
        try:
            fd = os.open(lock_path(self.out_dir, key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self._content(token))
        with self._lock:
            self._held[key] = token
        self._start()
        return True

    def holder(self, key: str) -> str | None:
        """``host:pid`` of a live lock on ``key`` (None if unlocked or stale)."""
        path = lock_path(self.out_dir, key)
        c = read_lock(path)
        if c is None or stale_reason(path, c, self.stale_s):
            return None
        return f"{c.get('host', '?')}:{c.get('pid', '?')}"

    def acquire(self, key: str) -> bool:
        """Lock ``key``; False if another live holder has it. A stale lock is taken over."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._create(key):
            return True
        path = lock_path(self.out_dir, key)
        if path.exists() and not path.is_file():  # a folder or a pipe there: nobody's lock, never ours to remove
            raise ConfigError(f"{path} is not a lock file (a folder or other non-regular file); remove it")
        with _locked(self.out_dir):
            c = read_lock(path)
            if c is not None:
                why = stale_reason(path, c, self.stale_s)
                if why is None:
                    return False
                self.log(f"taking over the stale lock {path.name} of {c.get('host', '?')}:{c.get('pid', '?')} ({why})")
                path.unlink(missing_ok=True)
            return self._create(key)

    def release(self, key: str) -> None:
        """Delete our lock on ``key`` (only if the file is still ours)."""
        with self._lock:
            token = self._held.pop(key, None)
        if token is None:
            return
        path = lock_path(self.out_dir, key)
        with _locked(self.out_dir):
            c = read_lock(path)
            if c is not None and c.get("token") == token:
                path.unlink(missing_ok=True)

    def beat(self) -> None:
        """Refresh the heartbeat of every held lock (atomically: temp file + rename)."""
        with self._lock:
            held = dict(self._held)
        for key, token in held.items():
            path = lock_path(self.out_dir, key)
            with _locked(self.out_dir):
                c = read_lock(path)
                if c is None or c.get("token") != token:  # taken over by someone else: no longer ours
                    continue
                tmp = path.with_name(f".{path.name}.{token}.beat")
                tmp.write_bytes(self._content(token))
                os.replace(tmp, path)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mdmtn-locks-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
            except OSError:
                continue

    def close(self) -> None:
        """Release every held lock and stop the heartbeat."""
        for key in list(self._held):
            self.release(key)
        self._stop.set()
