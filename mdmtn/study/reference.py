"""The configuration and command-line reference, generated from the config's fields and the
argument parsers, so that the book's reference page cannot drift from the code."""

from __future__ import annotations

import argparse
from typing import Any

from mdmtn.core.config import GROUPS, RunConfig, config_fields, preset_dependent
from mdmtn.core.fields import describe


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    return str(list(v) if isinstance(v, tuple) else v)


def config_reference_markdown() -> str:
    """Every :class:`RunConfig` setting, grouped as the config is: its flat name (``--set NAME=``
    and the option ``--name``), type, default and meaning, one table per group."""
    varies = preset_dependent()
    fields = config_fields()
    out = []
    for group, cls, _ in (("run", RunConfig, ""), *GROUPS):
        rows = [f for f in fields if (f.group or "run") == group]
        if not rows:
            continue
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [
            f"### {group} ({cls.__name__})",
            "",
            doc,
            "",
            "| setting | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for f in rows:
            default = "per dataset / preset / method" if f.name in varies else _show(f.default)
            out.append(f"| `{f.name}` | {_cell(describe(f.type))} | {_cell(default)} | {_cell(f.doc)} |")
        out.append("")
    return "\n".join(out)


def cli_reference_markdown(parser: argparse.ArgumentParser) -> str:
    """Each sub-command of ``parser`` with its help and its own options (the per-setting options
    ``--<setting>`` are the settings of :func:`config_reference_markdown` and are not repeated)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    helps = {a.dest: a.help for a in sub._choices_actions}  # noqa: SLF001
    out = []
    for name, p in sub.choices.items():
        out += [
            f"### `{parser.prog} {name}`",
            "",
            _cell(helps.get(name) or ""),
            "",
            "| option | meaning |",
            "|---|---|",
        ]
        for a in p._actions:  # noqa: SLF001
            if isinstance(a, argparse._HelpAction) or (a.dest or "").startswith("cfg_"):  # noqa: SLF001
                continue
            flag = ", ".join(a.option_strings) or a.dest
            choices = f" (one of {', '.join(map(str, a.choices))})" if a.choices else ""
            out.append(f"| `{flag}` | {_cell((a.help or '').replace('%%', '%'))}{_cell(choices)} |")
        out.append("")
    return "\n".join(out)
