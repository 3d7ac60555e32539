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
    return {str(k): _plain(v, str(k), 1) for k, v in request.items()}


def _plain(value: Any, where: str, depth: int) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _finite(float(value), where)
    if depth > MAX_DEPTH:
        raise InvalidRequestError(f"The parameter {where!r} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, PathLike):
        return str(value.__fspath__())
    if hasattr(value, "__index__"):  # numpy integers and the like
        return int(value.__index__())
    if hasattr(value, "__float__") and not isinstance(value, (bytes, bytearray, complex)):
        return _finite(float(value), where)
    raise InvalidRequestError(
        f"The parameter {where!r} is a {type(value).__name__}, which a job cannot store",
        hint="Pass plain numbers, text, lists or dictionaries.",
    )


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise InvalidRequestError(f"The parameter {where!r} is {value}, not a finite number")
    return value
