"""How each registered rule changed over the registry's history, read from git.

A rule that changed after registration is a new rule (tests/study/test_registry.py); this
module shows the changes there were before that test existed, so the page's description of its
own rules is true: :func:`rule_changes` walks every commit of ``mdmtn/study/registry.toml`` and reports,
per entry, each field of its rule that changed (the registration bookkeeping aside).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mdmtn.study.git_history import git, has_history

# bookkeeping, not the rule: which commit registered it and whether it came after its data
NOT_RULE = frozenset({"registered", "post_hoc", "why_post_hoc", "quote", "statistic"})
PATHS = ("mdmtn/study/registry.toml", "mdmtn/registry.toml")  # where it is, where it was


@dataclass(frozen=True)
class RuleChange:
    """One field of one entry's rule, changed by one commit."""

    claim_id: str
    field: str
    before: object
    after: object
    commit: str
    date: str


def rule_changes(root: str | Path) -> list[RuleChange] | None:
    """Every change of a registered rule field, oldest first; None where ``root`` has no git
    history to read (not a repository, or a shallow clone)."""

    if not has_history(root):
        return None
    log = git(root, "log", "--reverse", "--format=%h %ad", "--date=short", "--", *PATHS).stdout.split("\n")
    prev: dict[str, dict] = {}
    out = []
    for line in filter(None, log):
        commit, date = line.split(" ", 1)
        for path in PATHS:
            shown = git(root, "show", f"{commit}:{path}")
            if shown.returncode == 0:
                break
        else:
            continue
        try:
            now = {c["id"]: c for c in tomllib.loads(shown.stdout).get("claim", [])}
        except tomllib.TOMLDecodeError:
            continue
        for cid, c in now.items():
            old = prev.get(cid)
            if old is None or old.get("rule") == "qualitative":  # a first statistic is a registration
                continue
            for name in sorted((set(old) | set(c)) - NOT_RULE):
                if old.get(name) != c.get(name):
                    out.append(RuleChange(cid, name, old.get(name), c.get(name), commit, date))
        prev = now
    return out


def rule_changes_markdown(changes: list[RuleChange] | None) -> str:
    """The changes as a table, or a sentence where there are none or no history to read."""
    if changes is None:
        return "*(This copy has no git history, so the rules' history cannot be shown here.)*"
    if not changes:
        return "No registered rule has changed since it was registered."
    lines = ["| entry | field | before | after | commit (date) |", "|---|---|---|---|---|"]
    lines += [f"| `{c.claim_id}` | {c.field} | {c.before} | {c.after} | {c.commit} ({c.date}) |" for c in changes]
    return "\n".join(lines)
