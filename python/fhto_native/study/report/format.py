"""Numbers and tables for people: the formatting every part of the report (and the console) shares.

:func:`format_number` prints a number with a few significant digits, :func:`format_bytes` a byte
count with a decimal unit, and :func:`format_table` lays out a plain-text table whose columns are
as wide as their content and whose long cells wrap at word boundaries, never inside a word.
"""
from __future__ import annotations

import math
import numbers
import textwrap
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ...errors import InputTypeError, ParameterError, ShapeError

__all__ = ["format_number", "format_bytes", "format_table", "format_pair", "is_missing"]

#: The space between two columns of :func:`format_table`.
_GAP = "  "


def is_missing(x: Any) -> bool:
    """True for ``None`` and for numbers that are not finite (NaN, infinities)."""
    if x is None:
        return True
    if isinstance(x, (bool, np.bool_)):
        return False
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _check_digits(digits: Any) -> int:
    if isinstance(digits, (bool, np.bool_)) or not isinstance(digits, numbers.Integral) or int(digits) < 1:
        raise ParameterError(f"digits must be a positive integer; got {digits!r}")
    return int(digits)


def format_number(x: Any, digits: int = 3, trailing_zeros: bool = False) -> str:
    """Format a number for people: ``digits`` significant digits, ``"n/a"`` for missing.

    Integers print in full (thousands separated from 10,000 on); floats use ``digits``
    significant digits, switching to scientific notation below 0.001 and from one million on.

    Parameters
    ----------
    x : Any
        A number (Python or numpy), ``None`` or NaN; anything else prints as ``str(x)``.
    digits : int, default 3
        Significant digits for floats, at least 1.
    trailing_zeros : bool, default False
        Keep trailing zeros (``0.600`` rather than ``0.6``), for columns of numbers to compare.

    Returns
    -------
    str
        For example ``0.612``, ``95.2``, ``2.1e-09``, ``12,345``, ``n/a``.

    Raises
    ------
    ParameterError
        ``digits`` not a positive integer.
    """
    digits = _check_digits(digits)
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 10_000 else str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-3 or a >= 1e6:
        mantissa, exp = f"{v:.{max(digits - 1, 0)}e}".split("e")
        if "." in mantissa and not trailing_zeros:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exp):+03d}"
    if a >= 10 ** digits:
        return f"{round(v):,}" if a >= 10_000 else str(round(v))
    return f"{v:#.{digits}g}".rstrip(".") if trailing_zeros else f"{v:.{digits}g}"


def format_pair(a: Any, b: Any) -> Tuple[str, str]:
    """Two numbers to compare: 3 significant digits, more when 3 would make different numbers
    look equal (``0.6812`` vs ``0.6813``).

    Trailing zeros are kept so the two read as a column (``0.600`` vs ``0.612``).
    """
    digits = 3
    x, y = format_number(a, digits, True), format_number(b, digits, True)
    different = not is_missing(a) and not is_missing(b) and float(a) != float(b)
    while different and x == y and digits < 17:
        digits += 1
        x, y = format_number(a, digits, True), format_number(b, digits, True)
    return x, y


def format_bytes(n: Any) -> str:
    """Format a byte count with a decimal unit (B, kB, MB, GB) and 3 significant digits.

    ``None`` and non-finite numbers give ``"n/a"``.
    """
    if is_missing(n):
        return "n/a"
    v = float(n)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{int(round(v))} B"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, (bool, np.bool_)):
        return format_number(value)
    return str(value)


def _is_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").strip()
    if not stripped or stripped == "n/a":
        return stripped == "n/a"
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def format_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], max_width: Optional[int] = None) -> List[str]:
    """Lay out a plain-text table for a terminal.

    Every column is as wide as its widest cell. With ``max_width`` and a table wider than that,
    the widest columns are narrowed and their cells wrapped at word boundaries (over several
    lines), down to the longest word of each column: a word is never cut, so a table whose
    longest words do not fit stays wider than ``max_width``. Columns whose cells are all numbers
    are right-aligned.

    Parameters
    ----------
    header : sequence
        Column titles.
    rows : sequence of sequences
        Cells, one sequence per row with as many cells as ``header``. Strings print as they are,
        numbers through :func:`format_number`, ``None`` as an empty cell.
    max_width : int, optional
        Width of a line to wrap to (None: no limit).

    Returns
    -------
    list of str
        The header line, a rule of dashes, then the rows' lines; no trailing spaces.

    Raises
    ------
    ShapeError
        An empty ``header``, or a row with another number of cells than ``header`` (the message
        names the row).
    InputTypeError
        ``header`` or a row that is a string or not a sequence.
    ParameterError
        ``max_width`` not a positive integer.
    """
    if isinstance(header, (str, bytes)) or not isinstance(header, Sequence):
        raise InputTypeError(f"header must be a sequence of column titles; got {type(header).__name__}")
    if len(header) == 0:
        raise ShapeError("header must name at least one column; got an empty header")
    if max_width is not None and (
        isinstance(max_width, bool) or not isinstance(max_width, numbers.Integral) or max_width < 1
    ):
        raise ParameterError(f"max_width must be a positive integer; got {max_width!r}")
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise InputTypeError(f"rows must be a sequence of rows; got {type(rows).__name__}")
    head = [" ".join(_cell_text(h).split()) for h in header]
    body: List[List[str]] = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise InputTypeError(f"row {i} must be a sequence of cells; got {type(row).__name__}")
        if len(row) != len(head):
            raise ShapeError(f"row {i} has {len(row)} cells; the header has {len(head)} columns")
        body.append([" ".join(_cell_text(c).split()) for c in row])

    columns = list(zip(head, *body))
    widths = [max(len(c) for c in col) for col in columns]
    floors = [max(_longest_word(c) for c in col) for col in columns]
    numeric = [bool(body) and all(_is_numeric(r[j]) or r[j] == "" for r in body) for j in range(len(head))]
    if max_width is not None:
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - int(max_width)
        while excess > 0:
            # narrow the widest column that can still give room, one character at a time
            slack = [(w, j) for j, w in enumerate(widths) if w > floors[j]]
            if not slack:
                break
            _, j = max(slack)
            widths[j] -= 1
            excess -= 1

    def lines_of(cells: Sequence[str], align_numbers: bool) -> List[str]:
        wrapped = [
            textwrap.wrap(c, width=widths[j], break_long_words=False, break_on_hyphens=False) or [""]
            for j, c in enumerate(cells)
        ]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for j, w in enumerate(wrapped):
                text = w[k] if k < len(w) else ""
                parts.append(text.rjust(widths[j]) if align_numbers and numeric[j] else text.ljust(widths[j]))
            out.append(_GAP.join(parts).rstrip())
        return out

    lines = lines_of(head, True)
    lines.append(_GAP.join("-" * w for w in widths))
    for cells in body:
        lines += lines_of(cells, True)
    return lines
