"""Requests as plain data: what a job asks for must survive the journal, so it is checked at submit.

Plain Python: this module never imports bpy. Numbers of other libraries (``numpy.int64(7)``, ``numpy.float32``) become
Python numbers through ``__index__``/``__float__``; tuples and sets become lists; paths become strings. Anything else
(an object, bytes, NaN) is refused at once with an error naming the parameter, instead of a job that never starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from os import PathLike
from typing import Any

from .errors import InvalidRequestError

#: Nesting deeper than this is refused (the journal and every server have limits of their own).
MAX_DEPTH = 64


def plain_request(request: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``request`` holding only JSON values, or :class:`InvalidRequestError` naming the bad parameter."""
    if request is None:
        return {}
    if not isinstance(request, Mapping):
        raise InvalidRequestError(f"A job's request must be a mapping of parameters, not {type(request).__name__}")
    out: dict[str, Any] = {}
    for key, value in request.items():
        try:
            out[str(key)] = _plain(value, 1)
        except _Bad as bad:
            raise bad.error(str(key) + "".join(reversed(bad.path))) from None
    return out


class _Bad(Exception):
    """A value a job cannot store; the parameter's name is put together while it propagates (building a name for
    every value of a large workflow cost more than the check itself)."""

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        self.path: list[str] = []

    def error(self, where: str) -> InvalidRequestError:
        return InvalidRequestError(f"The parameter {where!r} {self.problem}", hint=self.hint)


def _plain(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _finite(value)
    if depth > MAX_DEPTH:
        raise _Bad(f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        mapping: dict[str, Any] = {}
        for key, item in value.items():
            try:
                mapping[str(key)] = _plain(item, depth + 1)
            except _Bad as bad:
                bad.path.append(f".{key}")
                raise
        return mapping
    if isinstance(value, (list, tuple, set, frozenset)):
        items: list[Any] = []
        for i, item in enumerate(value):
            try:
                items.append(_plain(item, depth + 1))
            except _Bad as bad:
                bad.path.append(f"[{i}]")
                raise
        return items
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _finite(float(value))
    if isinstance(value, PathLike):
        return str(value.__fspath__())
    if hasattr(value, "__index__"):  # numpy integers and the like
        return int(value.__index__())
    if hasattr(value, "__float__") and not isinstance(value, (bytes, bytearray, complex)):
        return _finite(float(value))
    raise _Bad(
        f"is a {type(value).__name__}, which a job cannot store", "Pass plain numbers, text, lists or dictionaries."
    )


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Bad(f"is {value}, not a finite number")
    return value
