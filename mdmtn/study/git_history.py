"""The repository's own history, read with git: which commit added or changed a committed file
(the registry, a seeds plan) and whether a record's code descends from it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(root: str | Path, *args: str) -> subprocess.CompletedProcess:
    """``git -C root ARGS``, its output captured as text; never raises for git's own failures."""
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def has_history(root: str | Path) -> bool:
    """Whether ``root`` is inside a git checkout with its full history (not a shallow clone)."""
    return git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "false"


def descends(root: str | Path, ancestor: str, commit: str | None) -> bool:
    """Whether ``commit`` is ``ancestor`` or one of its descendants (False for an unknown commit)."""
    return commit is not None and git(root, "merge-base", "--is-ancestor", ancestor, commit).returncode == 0
