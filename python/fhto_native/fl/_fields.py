"""Checks of decoded JSON fields, shared by the hospital-update header and the checkpoint.

Each check returns the value in its Python type or raises ``error`` (the caller's typed error:
:class:`~fhto_native.errors.FormatError` for bytes received or read, ParameterError for a value
about to be sent) with a message naming the field. Booleans are never numbers here, although
Python's ``True`` is an ``int``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Mapping, Optional, Type

import numpy as np

__all__ = ["exact_fields", "integer", "number", "text", "number_map"]

_INTEGERS = (int, np.integer)
_NUMBERS = (int, float, np.integer, np.floating)
_BOOLEANS = (bool, np.bool_)


def exact_fields(value: Any, expected: Iterable[str], prefix: str, error: Type[Exception]) -> Mapping[str, Any]:
    """``value`` must be a mapping with exactly the ``expected`` keys; messages start with ``prefix``."""
    if not isinstance(value, Mapping):
        raise error(f"{prefix}expected a JSON object; got {type(value).__name__}")
    expected = set(expected)
    missing, unknown = sorted(expected - set(value)), sorted(str(k) for k in set(value) - expected)
    if missing:
        raise error(f"{prefix}missing fields: {', '.join(missing)}")
    if unknown:
        raise error(f"{prefix}unknown fields: {', '.join(unknown)}")
    return value


def integer(value: Any, name: str, low: int, error: Type[Exception]) -> int:
    """An integer (not a bool) >= ``low``."""
    if isinstance(value, _BOOLEANS) or not isinstance(value, _INTEGERS) or value < low:
        raise error(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def number(
    value: Any, name: str, error: Type[Exception], *, low: Optional[float] = None, nan: bool = False
) -> float:
    """A finite number (an int or float, not a bool) >= ``low`` when given; NaN too with ``nan``."""
    ok = isinstance(value, _NUMBERS) and not isinstance(value, _BOOLEANS)
    if ok and not (nan and math.isnan(value)):
        ok = math.isfinite(value) and (low is None or value >= low)
    if not ok:
        bound = "" if low is None else f" >= {low:g}"
        raise error(f"{name} must be a finite number{bound}{' (or NaN)' if nan else ''}; got {value!r}")
    return float(value)


def text(value: Any, name: str, longest: int, error: Type[Exception]) -> str:
    """A non-empty string of at most ``longest`` characters."""
    if not isinstance(value, str) or not value:
        raise error(f"{name} must be a non-empty string; got {value!r}")
    if len(value) > longest:
        raise error(f"{name} must be at most {longest} characters; got {len(value)}")
    return value


def number_map(value: Any, name: str, error: Type[Exception], *, low: Optional[float] = 0.0) -> Dict[str, float]:
    """A mapping of names to finite numbers >= ``low``."""
    bound = "" if low is None else f" >= {low:g}"
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise error(f"{name} must map names to finite numbers{bound}; got {value!r}")
    return {k: number(v, f"{name}[{k!r}]", error, low=low) for k, v in value.items()}
