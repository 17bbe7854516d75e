"""mdmtn.core.files: atomic writes, and the one cleanup of what killed writers leave (records and the
dataset cache alike), checked with real processes: a writer that has exited, a live one, another host's."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from mdmtn.core.files import _host, atomic_write, remove_stale_temporaries, write_json_atomic


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)  # that process has ended


def test_an_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    p = write_json_atomic(tmp_path / "a.json", {"x": 1})

    def fail(f):
        f.write(b'{"x": 2')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(p, fail)
    assert p.read_text() == '{\n "x": 1\n}' and [q.name for q in tmp_path.iterdir()] == ["a.json"]


def test_the_temporary_file_names_its_writer(tmp_path, monkeypatch):
    seen = []
    atomic_write(tmp_path / "r.json", lambda f: seen.extend(os.listdir(tmp_path)) or f.write(b"{}"))
    (name,) = seen
    assert name.startswith(f".r.json.{os.getpid()}@{_host()}.") and name.endswith(".tmp")


def test_a_killed_writers_temporaries_are_removed_and_a_live_writers_kept(tmp_path):
    host = _host()
    dead = tmp_path / f".1.json.{_dead_pid()}@{host}.abc123.tmp"
    live = tmp_path / f".2.json.{os.getppid()}@{host}.def456.tmp"  # a live process's write in progress
    other_host = tmp_path / f".3.json.{_dead_pid()}@elsewhere.ghi789.tmp"  # cannot be asked: judged by age
    old_other = tmp_path / ".4.json.1@elsewhere.jkl012.tmp"
    foreign = tmp_path / ".5.json.xyz.tmp"  # no writer in its name: judged by its age
    for p in (dead, live, other_host, old_other, foreign):
        p.write_bytes(b"\0" * 100)
    t = time.time() - 7200
    os.utime(old_other, (t, t))
    os.utime(foreign, (t, t))
    removed = remove_stale_temporaries(tmp_path, older_than_s=3600)
    assert sorted(removed) == sorted([dead, old_other, foreign])
    assert live.exists() and other_host.exists()


def test_the_dataset_cache_cleans_a_killed_writers_temporaries_on_the_next_start(tmp_path):
    from mdmtn.data.cache import load_or_build

    path = tmp_path / "multimnist.pt"
    leftover = tmp_path / f".multimnist.pt.{_dead_pid()}@{_host()}.abc123.tmp"
    leftover.write_bytes(b"\0" * 1000)
    arrays, hit = load_or_build(path, "k", lambda: {"x": np.zeros(3, dtype=np.uint8)})
    assert not hit and not leftover.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["multimnist.pt"]
    assert load_or_build(path, "k", lambda: {"x": np.ones(3, dtype=np.uint8)})[1]  # the cache itself is fine
