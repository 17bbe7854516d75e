"""The dataset cache: what a killed writer leaves is cleaned on the next start."""


def test_a_killed_writers_temporary_files_are_removed_on_the_next_start(tmp_path):
    """A writer killed mid-save leaves <name>.<pid>.<random>.tmp (hundreds of MB for a dataset):
    the next load removes those of dead writers and old ones, and keeps a live writer's."""
    import os
    import subprocess
    import sys
    import time

    import numpy as np

    from mdmtn.data.cache import load_or_build

    path = tmp_path / "multimnist.pt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has ended
    leftover = tmp_path / f"multimnist.pt.{dead_pid}.abc123.tmp"
    leftover.write_bytes(b"\0" * 1000)
    live = tmp_path / f"multimnist.pt.{os.getppid()}.def456.tmp"  # a live process's write in progress
    live.write_bytes(b"\0" * 10)
    ancient = tmp_path / "multimnist.pt.xyz.tmp"  # no pid: judged by its age
    ancient.write_bytes(b"\0")
    old = time.time() - 7200
    os.utime(ancient, (old, old))
    arrays, hit = load_or_build(path, "k", lambda: {"x": np.zeros(3, dtype=np.uint8)})
    assert not hit and not leftover.exists() and not ancient.exists() and live.exists()
    assert load_or_build(path, "k", lambda: {"x": np.ones(3, dtype=np.uint8)})[1]  # the cache itself is fine
