"""Claim files: several sweeps (processes, or machines sharing a folder) split one set of runs.

Before training a config a sweep creates ``<out>/<key>.claim`` exclusively (``O_CREAT|O_EXCL``),
holding its host, pid, a random token and a heartbeat time that a background thread refreshes
every ``heartbeat_s``. Another sweep that finds the file leaves the config alone. A claim is
*stale*, and is taken over with a message, when its holder's pid is dead on this host or its
heartbeat is older than ``stale_s`` (a holder on another machine that died). Claims are released
(deleted, if still ours) when the run finishes or fails. Take-overs are serialised by an
``flock`` on ``<out>/.claims.lock``, so two sweeps never both take over one stale claim.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

HEARTBEAT_S = float(os.environ.get("MDMTN_CLAIM_HEARTBEAT_S", 30))
STALE_S = float(os.environ.get("MDMTN_CLAIM_STALE_S", 600))


def claim_path(out_dir: str | os.PathLike, key: str) -> Path:
    return Path(out_dir) / f"{key}.claim"


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's content, or None if it is gone; an unreadable claim reads as an empty dict
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_reason(path: Path, claim: dict[str, Any], stale_s: float = STALE_S) -> str | None:
    """Why a claim no longer protects its run (None if it does)."""
    host, pid = claim.get("host"), claim.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
        return f"its holder pid {pid} on {host} is not running"
    beat = claim.get("heartbeat")
    if not isinstance(beat, (int, float)):
        try:
            beat = path.stat().st_mtime
        except FileNotFoundError:
            return "it is gone"
    age = time.time() - beat
    if age > stale_s:
        return f"its heartbeat is {age:.0f} s old (limit {stale_s:.0f} s)"
    return None


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".claims.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Claims:
    """The claims one process holds, kept alive by one heartbeat thread.

    >>> import tempfile
    >>> claims = Claims(tempfile.mkdtemp())
    >>> claims.acquire("abc"), Claims(claims.out_dir).acquire("abc")  # a second holder is refused
    (True, False)
    >>> claims.release("abc"); claims.close()
    """

    def __init__(self, out_dir: str | os.PathLike, *, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S,
                 log: Callable[[str], None] = print) -> None:
        self.out_dir, self.heartbeat_s, self.stale_s, self.log = Path(out_dir), heartbeat_s, stale_s, log
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
            fd = os.open(claim_path(self.out_dir, key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self._content(token))
        with self._lock:
            self._held[key] = token
        self._start()
        return True

    def holder(self, key: str) -> str | None:
        """``host:pid`` of a live claim on ``key`` (None if unclaimed or stale)."""
        path = claim_path(self.out_dir, key)
        c = read_claim(path)
        if c is None or stale_reason(path, c, self.stale_s):
            return None
        return f"{c.get('host', '?')}:{c.get('pid', '?')}"

    def acquire(self, key: str) -> bool:
        """Claim ``key``; False if another live holder has it. A stale claim is taken over."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._create(key):
            return True
        path = claim_path(self.out_dir, key)
        with _locked(self.out_dir):
            c = read_claim(path)
            if c is not None:
                why = stale_reason(path, c, self.stale_s)
                if why is None:
                    return False
                self.log(f"taking over the stale claim {path.name} of {c.get('host', '?')}:{c.get('pid', '?')} "
                         f"({why})")
                path.unlink(missing_ok=True)
            return self._create(key)

    def release(self, key: str) -> None:
        """Delete our claim on ``key`` (only if the file is still ours)."""
        with self._lock:
            token = self._held.pop(key, None)
        if token is None:
            return
        path = claim_path(self.out_dir, key)
        with _locked(self.out_dir):
            c = read_claim(path)
            if c is not None and c.get("token") == token:
                path.unlink(missing_ok=True)

    def beat(self) -> None:
        """Refresh the heartbeat of every held claim (atomically: temp file + rename)."""
        with self._lock:
            held = dict(self._held)
        for key, token in held.items():
            path = claim_path(self.out_dir, key)
            with _locked(self.out_dir):
                c = read_claim(path)
                if c is None or c.get("token") != token:  # taken over by someone else: no longer ours
                    continue
                tmp = path.with_name(f".{path.name}.{token}.beat")
                tmp.write_bytes(self._content(token))
                os.replace(tmp, path)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mdmtn-claims-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
            except OSError:
                continue

    def close(self) -> None:
        """Release every held claim and stop the heartbeat."""
        for key in list(self._held):
            self.release(key)
        self._stop.set()
