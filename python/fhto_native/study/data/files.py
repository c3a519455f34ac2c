"""Bring your own data: one CSV or Parquet file per hospital, read into :class:`TreatmentData`.

Every problem a hospital's file can have is refused with a :class:`~fhto_native.errors.DataError`
that names the file and the column (and the first offending data row), before any training:
an unreadable file, a separator other than the one the header suggests, a missing column, a
non-numeric or missing value, an outcome not coded 0/1, arm labels that differ only in case or
surrounding whitespace, and the same file given twice.
"""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ...errors import DataError
from .censoring import ipcw_weights
from .container import TreatmentData

__all__ = ["load_hospital_files", "SEPARATORS", "sniff_separator"]

#: Field separators recognized in a CSV header line.
SEPARATORS = (",", ";", "\t", "|")
_PARQUET = (".parquet", ".pq")


def sniff_separator(header: str) -> str:
    """The separator of a CSV header line: the one of :data:`SEPARATORS` occurring most often
    outside double quotes (``","`` on a tie or when none occurs, i.e. a single column)."""
    counts = _separator_counts(header)
    best = max(SEPARATORS, key=lambda sep: (counts[sep], -SEPARATORS.index(sep)))
    return best if counts[best] else ","


def _separator_counts(header: str) -> Dict[str, int]:
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return counts


def _sep_name(sep: str) -> str:
    return "\\t" if sep == "\t" else sep


class _Table(NamedTuple):
    frame: object  # pandas.DataFrame
    csv: bool
    separator: Optional[str]
    header: str


def _read_table(path: Path, name: str) -> _Table:
    import pandas as pd

    if path.suffix.lower() in _PARQUET:
        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(f"{name}: reading Parquet files needs pyarrow: pip install pyarrow") from exc
        except Exception as exc:  # noqa: BLE001 - any reader failure is unreadable data
            raise DataError(f"{name}: cannot read the Parquet file: {exc}") from exc
        return _Table(frame, False, None, "")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = handle.readline()
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: the file is not UTF-8 text ({exc}); save the CSV as UTF-8") from exc
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file: {exc}") from exc
    header = header.rstrip("\r\n")
    if not header.strip():
        raise DataError(f"{name}: the file is empty (no header row)")
    sep = sniff_separator(header)
    try:
        with warnings.catch_warnings():
            # A first data row longer than the header would silently shift columns or lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", index_col=False)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{name}: the file is empty (no header row)") from exc
    except pd.errors.ParserWarning as exc:
        raise DataError(
            f"{name}: cannot read the CSV file as {_sep_name(sep)!r}-separated: a data row has more fields than "
            f"the header ({exc})"
        ) from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{name}: cannot read the CSV file as {_sep_name(sep)!r}-separated: {exc}") from exc
    return _Table(frame, True, sep, header)


def _require_columns(table: _Table, roles: Sequence[Tuple[str, str]], name: str) -> None:
    present = [str(c) for c in table.frame.columns]
    for role, column in roles:
        if column in present:
            continue
        hint = ""
        if table.csv:
            counts = _separator_counts(table.header)
            others = [sep for sep in SEPARATORS if sep != table.separator and counts[sep]]
            if others:
                hint = (
                    f"; the header line was read as {_sep_name(table.separator)!r}-separated but also contains "
                    f"{_sep_name(others[0])!r}: the header looks {_sep_name(others[0])!r}-separated in part, so "
                    "check that the file uses one separator"
                )
        raise DataError(f"{name}: missing {role} column {column!r}; the columns are {present}{hint}")


def _row_text(position: int, csv: bool) -> str:
    return f"data row {position + 1}" + (f", line {position + 2}" if csv else "")


def _missing_mask(raw) -> np.ndarray:
    missing = raw.isna().to_numpy()
    if raw.dtype == object:
        missing |= raw.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return missing


def _numeric_column(frame, column: str, name: str, csv: bool, role: str = "column") -> np.ndarray:
    """A column as finite float64, or a DataError naming the file, column and first bad row."""
    import pandas as pd

    raw = frame[column]
    missing = _missing_mask(raw)
    if missing.all():
        raise DataError(f"{name}: {role} {column!r} is empty (all {len(raw)} values missing)")
    if raw.dtype == bool:
        raise DataError(f"{name}: {role} {column!r} holds True/False; it must be numeric")
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        stripped = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
        values = pd.to_numeric(stripped, errors="coerce")
    else:
        try:
            values = pd.to_numeric(raw, errors="coerce")
        except (TypeError, ValueError):
            values = pd.Series(np.full(len(raw), np.nan))
    array = np.asarray(values, dtype=np.float64)
    non_numeric = np.isnan(array) & ~missing
    if non_numeric.any():
        first = int(np.nonzero(non_numeric)[0][0])
        raise DataError(
            f"{name}: {role} {column!r} has a non-numeric value {raw.iloc[first]!r} in "
            f"{_row_text(first, csv)} ({int(non_numeric.sum())} non-numeric in all)"
        )
    if missing.any():
        first = int(np.nonzero(missing)[0][0])
        raise DataError(
            f"{name}: {role} {column!r} has {int(missing.sum())} missing values (first in "
            f"{_row_text(first, csv)}); fill or drop them at the hospital before loading"
        )
    infinite = ~np.isfinite(array)
    if infinite.any():
        first = int(np.nonzero(infinite)[0][0])
        raise DataError(f"{name}: {role} {column!r} has a non-finite value {array[first]} in {_row_text(first, csv)}")
    return array


def _binary_column(frame, column: str, name: str, csv: bool, role: str, meaning: str) -> np.ndarray:
    """A 0/1 column; anything else (yes/no, True/False, 2) is refused with the coding required."""
    import pandas as pd

    raw = frame[column]
    missing = _missing_mask(raw)
    if missing.all():
        raise DataError(f"{name}: {role} column {column!r} is empty (all {len(raw)} values missing)")
    if missing.any():
        first = int(np.nonzero(missing)[0][0])
        raise DataError(
            f"{name}: {role} column {column!r} has {int(missing.sum())} missing values (first in "
            f"{_row_text(first, csv)}); fill or drop them at the hospital before loading"
        )
    if raw.dtype == bool:
        values = np.full(len(raw), np.nan)
    else:
        stripped = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
        values = np.asarray(pd.to_numeric(stripped, errors="coerce"), dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        first = int(np.nonzero(bad)[0][0])
        seen = sorted({repr(v) for v in raw[bad].tolist()})[:5]
        found = raw.tolist()[first]
        raise DataError(
            f"{name}: {role} column {column!r} must be coded 0/1 ({meaning}); found {found!r} in "
            f"{_row_text(first, csv)} ({int(bad.sum())} such rows; values other than 0/1: {', '.join(seen)})"
        )
    return values


def _arm_label(value) -> str:
    """A treatment value as text: integers (also integral floats) as their digits, text as is."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _sort_arms(labels: Sequence[str]) -> Tuple[str, ...]:
    """Sorted arm names: numerically when every name is an integer, else as text."""
    try:
        return tuple(sorted(labels, key=int))
    except ValueError:
        return tuple(sorted(labels))


def _extra_columns(frame, used: Sequence[str]) -> Dict[str, np.ndarray]:
    """The file's other columns, to split by: numeric ones as float64 (NaN when missing), the
    rest as stripped text ("" when missing)."""
    import pandas as pd

    out: Dict[str, np.ndarray] = {}
    for column in frame.columns:
        if column in used:
            continue
        raw = frame[column]
        if pd.api.types.is_numeric_dtype(raw.dtype) and raw.dtype != bool:
            out[column] = raw.to_numpy(dtype=np.float64)
        else:
            missing = _missing_mask(raw)
            out[column] = np.array(["" if gap else str(v).strip() for gap, v in zip(missing, raw.tolist())], dtype=str)
    return out


class _Loaded(NamedTuple):
    name: str
    X: np.ndarray
    labels: np.ndarray  # the stripped arm label of each row
    raw_labels: np.ndarray  # as written
    y: Optional[np.ndarray]
    time: Optional[np.ndarray]
    event: Optional[np.ndarray]
    columns: Dict[str, np.ndarray]


def _column_name(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"load_hospital_files: {what} must be a column name; got {value!r}")
    return value.strip()


def load_hospital_files(
    paths: Sequence[str | os.PathLike],
    features: Sequence[str],
    treatment: str,
    outcome: Optional[str] = None,
    arms: Optional[Sequence[str]] = None,
    *,
    time: Optional[str] = None,
    event: Optional[str] = None,
    horizon: Optional[float] = None,
    outcome_label: Optional[str] = None,
    good_outcome_label: Optional[str] = None,
    randomized: Optional[bool] = None,
) -> List[TreatmentData]:
    """Load one CSV or Parquet file per hospital into :class:`TreatmentData`.

    Parameters
    ----------
    paths:
        One file per hospital. ``.parquet`` and ``.pq`` are read with ``pandas.read_parquet``
        (needs pyarrow); anything else as UTF-8 CSV with a header row, its separator (``,``
        ``;`` tab or ``|``) taken from the header line (:func:`sniff_separator`).
    features:
        Numeric feature columns, in the order of ``X``.
    treatment:
        The treatment column; it may hold names or integer codes (integer codes become arm
        names such as ``"0"`` and ``"1"``).
    outcome:
        The outcome column, coded 0/1 with 1 the bad outcome. Give either this or the three
        survival options.
    arms:
        The arm names in model order; values match them exactly after stripping surrounding
        whitespace. ``None`` uses the sorted union of the values in all files (numeric order
        when all are integers), so every hospital gets the same arms; then labels that differ
        only in case or surrounding whitespace are refused as ambiguous.
    time, event, horizon:
        A survival outcome instead of ``outcome``: follow-up column (>= 0), event column (1 =
        the bad event observed at that time, 0 = censored then) and the horizon in the same
        unit. The outcome is "event at or before ``horizon``"; rows censored earlier stay with
        weight 0, and the others get inverse-probability-of-censoring weights estimated on
        their own file (:func:`~fhto_native.study.data.ipcw_weights`).
    outcome_label, good_outcome_label:
        Wording of the bad and good outcome for reports; default ``"<outcome> = 1"`` and
        ``"<outcome> = 0"`` (survival: ``"<event> by <horizon>"`` and ``"no <event> by
        <horizon>"``); a given ``outcome_label`` alone gives ``"no <outcome_label>"``.
    randomized:
        Whether treatment was randomized for every patient (``None``: unknown).

    Returns
    -------
    list of TreatmentData
        One per file, in order, sharing ``arms`` and ``feature_names``; ``source`` is the path.
        ``columns["treatment"]`` holds each row's arm name; every other column of the file not
        used above is kept in ``columns`` too (numeric as float64, text stripped, "" missing),
        for splitting by a site column.

    Raises
    ------
    DataError
        With the file and column named: a missing, unreadable or duplicated file (same path or
        same bytes), a missing column (the message lists the file's columns, and says when the
        header line looks separated by another separator), a non-numeric value (first bad row
        named), missing values, an outcome or event not coded 0/1, a negative time, a file
        without rows, a file whose rows are all censored before the horizon, a treatment value
        that is not one of ``arms``, or arm labels that differ only in case or whitespace;
        also inconsistent arguments (both ``outcome`` and survival columns, a role column also
        listed as a feature, a horizon that is not a positive number).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise DataError("load_hospital_files: no files given")
    if isinstance(features, str):
        raise DataError(f"load_hospital_files: features must be a list of column names, not the string {features!r}")
    features = [_column_name(f, "every feature") for f in features]
    if not features:
        raise DataError("load_hospital_files: no feature columns given")
    if len(set(features)) != len(features):
        raise DataError(f"load_hospital_files: duplicate feature columns in {features}")
    treatment = _column_name(treatment, "treatment")
    survival = (time, event, horizon)
    if any(v is not None for v in survival):
        if outcome is not None:
            raise DataError(
                f"load_hospital_files: give either outcome ({outcome!r}, a 0/1 column) or time/event/horizon, not both"
            )
        if not all(v is not None for v in survival):
            missing = [n for n, v in zip(("time", "event", "horizon"), survival) if v is None]
            raise DataError(f"load_hospital_files: a survival outcome needs time, event and horizon; missing {missing}")
        time = _column_name(time, "time")
        event = _column_name(event, "event")
        if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.integer, np.floating)):
            raise DataError(f"load_hospital_files: horizon must be a number of time units; got {horizon!r}")
        horizon = float(horizon)
        if not (math.isfinite(horizon) and horizon > 0):
            raise DataError(f"load_hospital_files: horizon must be finite and > 0; got {horizon}")
        roles = [("treatment", treatment), ("time", time), ("event", event)]
    else:
        if outcome is None:
            raise DataError("load_hospital_files: no outcome: give outcome (a 0/1 column) or time, event and horizon")
        outcome = _column_name(outcome, "outcome")
        roles = [("treatment", treatment), ("outcome", outcome)]
    for role, column in roles:
        if column in features:
            raise DataError(f"load_hospital_files: the {role} column {column!r} is also listed as a feature")
    for i, (role, column) in enumerate(roles):
        for other_role, other in roles[i + 1:]:
            if column == other:
                raise DataError(f"load_hospital_files: column {column!r} cannot be both {role} and {other_role}")
    if randomized is not None and not isinstance(randomized, bool):
        raise DataError(f"load_hospital_files: randomized must be True, False or None; got {randomized!r}")
    for label_name, label in (("outcome_label", outcome_label), ("good_outcome_label", good_outcome_label)):
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise DataError(f"load_hospital_files: {label_name} must be a non-empty string; got {label!r}")
    allowed: Optional[Tuple[str, ...]] = None
    if arms is not None:
        if isinstance(arms, str):
            raise DataError(f"load_hospital_files: arms must be a list of names, not the string {arms!r}")
        allowed = tuple(_arm_label(a).strip() for a in arms)
        if not allowed:
            raise DataError("load_hospital_files: arms is empty")
        if len(set(allowed)) != len(allowed):
            raise DataError(f"load_hospital_files: duplicate arms in {allowed}")

    _refuse_duplicate_files(paths)
    loaded = [_load_file(raw, features, roles, treatment, outcome, time, event, allowed) for raw in paths]
    if allowed is None:
        _refuse_ambiguous_arms(loaded, treatment)
        allowed = _sort_arms(sorted({label for item in loaded for label in item.labels.tolist()}))
    lookup = {arm: i for i, arm in enumerate(allowed)}

    if time is not None:
        label = outcome_label or f"{event} by {horizon:g}"
        good = good_outcome_label or (f"no {outcome_label}" if outcome_label else f"no {event} by {horizon:g}")
    else:
        label = outcome_label or f"{outcome} = 1"
        good = good_outcome_label or (f"no {outcome_label}" if outcome_label else f"{outcome} = 0")

    hospitals = []
    for item in loaded:
        common = dict(
            X=item.X,
            treatment=np.array([lookup[arm] for arm in item.labels.tolist()], dtype=np.int64),
            feature_names=tuple(features),
            arms=allowed,
            source=item.name,
            columns={**item.columns, "treatment": item.labels},
            outcome_label=label,
            good_outcome_label=good,
            randomized=randomized,
        )
        if time is None:
            hospitals.append(TreatmentData(y=item.y, outcome=f"column {outcome!r} (1 = bad outcome)", **common))
            continue
        y, weight = ipcw_weights(item.time, item.event, horizon, source=item.name)
        censored = int(np.count_nonzero(weight == 0))
        text = (
            f"{event!r} = 1 at or before {horizon:g} (time column {time!r}); {censored} patients censored earlier "
            "kept with inverse-probability-of-censoring weights estimated in this file"
        )
        hospitals.append(
            TreatmentData(y=y, outcome=text, time=item.time, event=item.event, horizon=horizon, weight=weight, **common)
        )
    return hospitals


def _refuse_duplicate_files(paths: Sequence[str | os.PathLike]) -> None:
    """The same file given twice (same resolved path, or the same bytes) is refused."""
    by_path: Dict[Path, str] = {}
    by_digest: Dict[str, str] = {}
    for raw in paths:
        name = str(raw)
        path = Path(raw)
        if not path.exists():
            raise DataError(f"{name}: file not found")
        if not path.is_file():
            raise DataError(f"{name}: not a regular file")
        resolved = path.resolve()
        if resolved in by_path:
            raise DataError(f"{name}: the same file as {by_path[resolved]} is given twice; give each hospital's file once")
        by_path[resolved] = name
        digest = hashlib.blake2b(digest_size=16)
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise DataError(f"{name}: cannot read the file: {exc}") from exc
        key = digest.hexdigest()
        if key in by_digest:
            raise DataError(
                f"{name}: the same content, byte for byte, as {by_digest[key]}; a hospital's file given twice "
                "would count its patients twice"
            )
        by_digest[key] = name


def _load_file(
    raw_path: str | os.PathLike,
    features: List[str],
    roles: List[Tuple[str, str]],
    treatment: str,
    outcome: Optional[str],
    time: Optional[str],
    event: Optional[str],
    allowed: Optional[Tuple[str, ...]],
) -> _Loaded:
    path = Path(raw_path)
    name = str(raw_path)
    table = _read_table(path, name)
    frame = table.frame
    frame.columns = [str(c).strip() for c in frame.columns]
    _require_columns(table, [("feature", f) for f in features] + roles, name)
    if len(frame) == 0:
        raise DataError(f"{name}: the file has no data rows (hospital with no patients)")
    csv = table.csv
    X = np.column_stack([_numeric_column(frame, column, name, csv, "feature column") for column in features])
    y = t = e = None
    if outcome is not None:
        y = _binary_column(frame, outcome, name, csv, "outcome", "1 = bad outcome")
    else:
        t = _numeric_column(frame, time, name, csv, "time column")
        negative = t < 0
        if negative.any():
            first = int(np.nonzero(negative)[0][0])
            raise DataError(f"{name}: time column {time!r} has a negative value {t[first]:g} in {_row_text(first, csv)}")
        e = _binary_column(frame, event, name, csv, "event", "1 = the bad event observed at that time, 0 = censored")

    raw_arm = frame[treatment]
    missing = _missing_mask(raw_arm)
    if missing.all():
        raise DataError(f"{name}: treatment column {treatment!r} is empty (all {len(raw_arm)} values missing)")
    if missing.any():
        first = int(np.nonzero(missing)[0][0])
        raise DataError(
            f"{name}: treatment column {treatment!r} has {int(missing.sum())} missing values "
            f"(first in {_row_text(first, csv)})"
        )
    raw_labels = np.array([_arm_label(v) for v in raw_arm.tolist()], dtype=str)
    labels = np.char.strip(raw_labels)
    if allowed is not None:
        unknown = ~np.isin(labels, np.array(allowed, dtype=str))
        if unknown.any():
            first = int(np.nonzero(unknown)[0][0])
            value = str(labels[first])
            close = [arm for arm in allowed if arm.casefold() == value.casefold()]
            hint = f" (it differs from {close[0]!r} only in case; matching is exact)" if close else ""
            raise DataError(
                f"{name}: treatment column {treatment!r} has value {value!r} in {_row_text(first, csv)} "
                f"({int(unknown.sum())} such rows), which is not one of the arms {list(allowed)}{hint}"
            )
    used = set(features) | {column for _, column in roles}
    return _Loaded(name, X, labels, raw_labels, y, t, e, _extra_columns(frame, used))


def _refuse_ambiguous_arms(loaded: Sequence[_Loaded], treatment: str) -> None:
    """Arm labels that differ only in case or surrounding whitespace, in one file or across files."""
    spellings: Dict[str, Dict[str, List[str]]] = {}
    for item in loaded:
        for raw in np.unique(item.raw_labels).tolist():
            files = spellings.setdefault(raw.strip().casefold(), {}).setdefault(raw, [])
            if item.name not in files:
                files.append(item.name)
    for variants in spellings.values():
        if len(variants) > 1:
            where = "; ".join(f"{label!r} in {', '.join(files)}" for label, files in sorted(variants.items()))
            raise DataError(
                f"treatment column {treatment!r}: arm labels {sorted(variants)} differ only in case or surrounding "
                f"whitespace ({where}); fix the spelling in the files, or list the arms explicitly (arms=[...], "
                "--arms), which match exactly after stripping whitespace"
            )
