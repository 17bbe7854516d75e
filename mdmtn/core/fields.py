"""Typed values for dataclass fields given as text (``--set field=value``, papermill, JSON).

:func:`coerce` turns a value into the type a dataclass field declares, or raises
:class:`ValueError` with one line naming the field, the bad value and what is allowed. It is what
keeps ``--set growl_grad=False`` from storing the (truthy) string ``"False"``.

>>> from dataclasses import dataclass
>>> @dataclass
... class C:
...     flag: bool = False
...     n: int | None = None
>>> coerce(C, "flag", "False"), coerce(C, "n", "none"), coerce(C, "n", "12")
(False, None, 12)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from typing import Any

_TRUE, _FALSE = ("true", "1"), ("false", "0")


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved type}`` of a dataclass (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(cls: type, name: str, value: Any) -> Any:
    """``value`` as the declared type of ``cls.name``; strings are parsed (booleans accept only
    true/false in any case and 1/0; ``none``/``null`` for optional fields; JSON lists for tuples)."""
    types_ = field_types(cls)
    if name not in types_:
        raise ValueError(f"unknown field {name!r}; valid fields: {', '.join(sorted(types_))}")
    return coerce_type(types_[name], value, name)


def coerce_type(tp: Any, value: Any, label: str) -> Any:
    """``value`` as type ``tp`` (rules of :func:`coerce`); the error names ``label=value``.

    >>> coerce_type(typing.Literal["exact", "head"], "head", "prox_mode")
    'head'
    """
    try:
        return _as(tp, value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{label}={value!r}: {e}") from None


def describe(tp: Any) -> str:
    """A type as a user reads it: ``int``, ``int or none``, ``list of float``."""
    args = typing.get_args(tp)
    if _is_optional(tp):
        return f"{describe(next(a for a in args if a is not type(None)))} or none"
    if typing.get_origin(tp) is tuple:
        return f"list of {describe(args[0])}"
    if typing.get_origin(tp) is typing.Literal:
        return " | ".join(map(str, args))
    return getattr(tp, "__name__", str(tp))


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _as(tp: Any, v: Any) -> Any:
    if typing.get_origin(tp) is typing.Literal:
        allowed = typing.get_args(tp)
        if v not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return v
    if _is_optional(tp):
        if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "null")):
            return None
        inner = next(a for a in typing.get_args(tp) if a is not type(None))
        return _as(inner, v)
    if typing.get_origin(tp) is tuple:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                raise ValueError(f"expected {describe(tp)} as JSON, e.g. [0.1, 0.2]") from None
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"expected {describe(tp)}")
        return tuple(_as(typing.get_args(tp)[0], x) for x in v)
    if tp is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE + _FALSE:
            return v.strip().lower() in _TRUE
        raise ValueError("expected a boolean: true/false (any case) or 1/0")
    if tp is int:
        if isinstance(v, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str):
            try:
                return int(v.strip())
            except ValueError:
                pass
        raise ValueError("expected an integer")
    if tp is float:
        if isinstance(v, bool):
            raise ValueError("expected a number, got a boolean")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
        if not math.isfinite(x):
            raise ValueError("expected a finite number")
        return x
    if tp is str:
        if not isinstance(v, str):
            raise ValueError("expected a string")
        return v
    return v
