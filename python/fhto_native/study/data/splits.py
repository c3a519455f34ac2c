"""Simulated hospitals from one data set, and the train / validation / test holdout."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import List, Tuple

import numpy as np

from ...errors import DataError
from .container import TreatmentData

__all__ = ["SPLIT_METHODS", "split_hospitals", "split_holdout", "outcome_status"]

#: Methods of :func:`split_hospitals`.
SPLIT_METHODS = ("iid", "dirichlet", "column")

_DIRICHLET_TRIES = 100

#: Values of :func:`outcome_status`.
EVENT_FREE, EVENT, UNKNOWN = 0, 1, 2


def outcome_status(data: TreatmentData) -> np.ndarray:
    """Each row's status at the horizon: 0 event-free, 1 event, 2 unknown (weight 0: censored
    before the horizon)."""
    status = data.y.astype(np.int64)
    status[~data.known] = UNKNOWN
    return status


def _check_int(value, name: str, minimum: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{source}: {name} must be an int; got {value!r}")
    if value < minimum:
        raise DataError(f"{source}: {name} must be at least {minimum}; got {value}")
    return int(value)


def _is_missing(value: object) -> bool:
    """A split-column value that names no hospital: None, NaN or blank text."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


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
        skew; for each outcome status (event-free, event, censored before the horizon: see
        :func:`outcome_status`), proportions drawn from ``Dirichlet(alpha * ones)`` deal that
        status's rows to the hospitals (smaller ``alpha``, more skew). ``"column"``: one
        hospital per distinct value of ``data.columns[column]``, in sorted value order.
    alpha:
        Dirichlet concentration, > 0.
    column:
        The extra column to split by (``method="column"`` only).
    seed:
        Seed of the random generator; the same seed gives the same split.
    min_rows:
        Every hospital gets at least this many rows with a known outcome (the rows it can train
        on); ``"dirichlet"`` redraws up to 100 times, ``"column"`` refuses a value with fewer.

    Returns
    -------
    list of TreatmentData
        Rows in their original order within each hospital, every per-row field (censoring
        weights too) carried along unchanged; ``source`` is ``"<data.source> hospital <i>"``
        with ``i`` from 1.

    Raises
    ------
    DataError
        An unknown method, ``n_hospitals < 1``, too few rows, ``alpha`` too small for every
        hospital to get ``min_rows`` rows, a missing split column, a split column with missing
        values, or one with a single distinct value (a federation of one hospital).
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
        missing = np.array([_is_missing(v) for v in values.tolist()], dtype=bool)
        if missing.any():
            raise DataError(f"{src}: column {column!r} has {int(missing.sum())} missing values; every row needs a hospital")
        try:
            distinct = np.unique(values)
        except TypeError as exc:
            raise DataError(f"{src}: column {column!r} mixes values that cannot be ordered ({exc})") from exc
        if distinct.size < 2:
            raise DataError(
                f"{src}: column {column!r} has the single value {distinct.tolist()[0]!r}; splitting by it "
                "gives a federation of one hospital"
            )
        parts = [np.nonzero(values == value)[0] for value in distinct]
        known = data.known
        for value, part in zip(distinct.tolist(), parts):
            if int(known[part].sum()) < min_rows:
                raise DataError(
                    f"{src}: column {column!r} value {value!r} has {int(known[part].sum())} rows with a known "
                    f"outcome, fewer than min_rows={min_rows}"
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
            parts = _dirichlet_parts(outcome_status(data), n_hospitals, float(alpha), min_rows, rng, src)
    return [replace(data.subset(part), source=f"{src} hospital {i + 1}") for i, part in enumerate(parts)]


def _dirichlet_parts(
    status: np.ndarray, n_hospitals: int, alpha: float, min_rows: int, rng: np.random.Generator, src: str
) -> List[np.ndarray]:
    classes = [np.nonzero(status == label)[0] for label in np.unique(status)]
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
        sizes = np.array([int((status[part] != UNKNOWN).sum()) for part in parts])  # rows that can train
        if sizes.min() >= min_rows:
            return parts
    raise DataError(
        f"{src}: Dirichlet split with alpha={alpha} over {n_hospitals} hospitals left a hospital with "
        f"fewer than min_rows={min_rows} rows with a known outcome in {_DIRICHLET_TRIES} draws (last counts "
        f"{sizes.tolist()}): "
        f"alpha is too small or n_hospitals too large for {len(status)} rows; raise alpha, or lower "
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
    """Split rows into train, validation and test sets, stratified by (treatment arm, status).

    The status is event, event-free or unknown (censored before the horizon,
    :func:`outcome_status`), so censored rows are spread over the sets too. The validation and
    test sets get ``round(fraction * n)`` rows each, spread over the strata in proportion to
    their sizes; the rest is the training set. Rows keep their original order within each set
    and keep their weights (re-estimate them on a set's own rows with
    :func:`~fhto_native.study.data.with_ipcw`); ``source`` gets `` train``, `` validation`` or
    `` test`` appended.

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
    key = data.treatment * 3 + outcome_status(data)
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
