"""Federated standardization: the pooled mean and standard deviation of every feature from
per-hospital sums only, so that the sums can be encrypted and no row leaves its hospital.

CKKS encrypts values only within a range (about 1.85e5 / parties for the compact preset) and adds
an absolute error of about 1e-8 to every summed value. Raw moment sums of clinical values (a
platelet count near 250,000 squared, times the rows of a hospital) are far out of that range, so
:func:`federated_standardization` first learns a power-of-two bound on every feature's magnitude
and then sums only values of magnitude at most 1.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import numpy as np

from ...errors import DataError, InputTypeError, ShapeError, ValueRangeError
from .container import TreatmentData
from .splits import _check_int

__all__ = ["moment_vector", "moments_from_sum", "federated_standardization", "magnitude_exponents"]

#: Power-of-two magnitude buckets of pass 0: exponents ``e`` with ``|x| < 2**e``. A feature whose
#: largest |value| is below 2**-41 (or zero) falls in the lowest bucket; 2**1024 bounds every float.
EXPONENT_RANGE = (-40, 1024)
_BUCKETS = EXPONENT_RANGE[1] - EXPONENT_RANGE[0] + 1
#: Row counts travel as two base-4096 digits, each divided by 4096 (so below 1): exact after
#: rounding for up to 2**24 - 1 rows per hospital.
_COUNT_BASE = 4096
MAX_ROWS_PER_HOSPITAL = _COUNT_BASE * _COUNT_BASE - 1
#: Pass 1 spread floor, as a fraction of the bound ``S``: above the CKKS error of a variance.
_SPREAD_FLOOR = 1e-3
#: Pass 2 vectors are divided by this so that a hospital's share stays below 1 even when the
#: pass-1 spread underestimates the true one (by up to a factor 2).
_CENTERED_DIVISOR = 4.0
#: Smallest standard deviation pass 2 resolves, relative to its scale: a spread below
#: ``S * _SPREAD_FLOOR * _Z_RESOLUTION`` (3e-6 of ``S``) is reported as that floor.
_Z_RESOLUTION = 3e-3
_STD_FLOOR = 1e-12  # moments_from_sum: a standard deviation at or below this marks a constant feature

SumVectors = Callable[[List[np.ndarray]], np.ndarray]


def moment_vector(data: TreatmentData) -> np.ndarray:
    """One hospital's raw moment sums ``[n, sum x_1..x_d, sum x_1^2..x_d^2]`` (float64, length 1 + 2d).

    Summed over hospitals in plaintext, these give the pooled mean and standard deviation
    (:func:`moments_from_sum`) without pooling any row. They are too large to encrypt for
    clinical values; :func:`federated_standardization` is the encrypted path.
    """
    X = data.X
    return np.concatenate(([float(len(data))], X.sum(axis=0), np.square(X).sum(axis=0))).astype(np.float64)


def moments_from_sum(total: np.ndarray, d: int) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and (population, ddof=0) standard deviation from summed :func:`moment_vector`.

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


def magnitude_exponents(X: np.ndarray) -> np.ndarray:
    """Per column, the exponent ``e`` (int64, clamped to :data:`EXPONENT_RANGE`) of the smallest
    power of two strictly above every ``|x|``: ``|x| < 2**e``. An all-zero or empty column gets
    the lowest exponent."""
    X = np.asarray(X, dtype=np.float64)
    low, high = EXPONENT_RANGE
    if X.shape[0] == 0:
        return np.full(X.shape[1], low, dtype=np.int64)
    largest = np.abs(X).max(axis=0)
    exponent = np.frexp(largest)[1].astype(np.int64)  # largest = m * 2**e with 0.5 <= m < 1
    exponent[largest == 0] = low
    return np.clip(exponent, low, high)


class _Pass:
    """One call of ``sum_vectors``: names what each entry is, checks the range, maps engine
    range errors to a DataError naming the hospital and column."""

    def __init__(self, number: int, what: str, hospitals: Sequence[TreatmentData], labels: Callable[[int], str]):
        self.number, self.what, self.hospitals, self.labels = number, what, hospitals, labels

    def run(self, sum_vectors: SumVectors, vectors: List[np.ndarray]) -> np.ndarray:
        length = vectors[0].size
        for hospital, vector in zip(self.hospitals, vectors):
            bad = ~np.isfinite(vector) | (np.abs(vector) > 1.0)
            if bad.any():
                index = int(np.nonzero(bad)[0][0])
                raise DataError(
                    f"{hospital.source}: federated standardization pass {self.number} ({self.what}) would send "
                    f"{vector[index]!r} for the {self.labels(index)}; every value sent must be finite with "
                    "magnitude at most 1"
                )
        try:
            total = sum_vectors(vectors)
        except ValueRangeError as exc:
            h, index = self._largest(vectors)
            raise DataError(
                f"{self.hospitals[h].source}: federated standardization pass {self.number} ({self.what}): the "
                f"encrypted sum refused a value as out of range; the largest value sent is {vectors[h][index]:.6g}, "
                f"this hospital's {self.labels(index)} ({exc})"
            ) from exc
        total = np.asarray(total, dtype=np.float64)
        if total.shape != (length,):
            raise ShapeError(
                f"federated_standardization: pass {self.number} sum_vectors returned shape {total.shape}; expected ({length},)"
            )
        if not np.isfinite(total).all():
            raise DataError(f"federated_standardization: pass {self.number} sum_vectors returned non-finite values")
        return total

    @staticmethod
    def _largest(vectors: List[np.ndarray]) -> Tuple[int, int]:
        peaks = [float(np.abs(v).max()) if v.size else 0.0 for v in vectors]
        h = int(np.argmax(peaks))
        return h, int(np.argmax(np.abs(vectors[h])))


def federated_standardization(
    hospitals: Sequence[TreatmentData],
    sum_vectors: SumVectors,
) -> Tuple[np.ndarray, np.ndarray]:
    """Pooled per-feature mean and standard deviation (ddof=0) from per-hospital sums only.

    Every hospital reduces its own rows to one short vector; ``sum_vectors`` receives the list
    of vectors (one per hospital, in order) and returns their element-wise sum. The caller
    chooses how: ``lambda vs: np.sum(vs, axis=0)`` in a simulation, or an encrypted sum in
    which hospitals encrypt, a server adds ciphertexts and a key holder decrypts only the sum.
    Every row counts (censoring weights do not enter: this is about features, not outcomes).

    ``sum_vectors`` is called three times, with every value sent of magnitude at most 1, so any
    finite feature values work (1e-8 or 1e12 alike) and the sums stay inside the CKKS range for
    any number of hospitals:

    0. Range. Per feature, a one-hot vector over power-of-two buckets ``2**e`` for ``e`` in
       :data:`EXPONENT_RANGE` marks the bucket of the hospital's largest ``|x|``
       (:func:`magnitude_exponents`); two more entries carry its row count as two base-4096
       digits over 4096. The sum gives the exact total ``N`` and, per feature, the highest
       non-empty bucket, so ``S = 2**e`` bounds every ``|x|``. **What this reveals** beyond
       the means and spreads: ``N``, and per feature how many hospitals have their largest
       magnitude in each power-of-two bucket (a histogram of hospitals' magnitudes, not which
       hospital is where).
    1. First moments. Each hospital sends ``[n, sum(x/S), sum((x/S)^2)] / N``, giving a first
       mean ``m`` and spread ``s`` of ``x/S`` (``s`` at least 1e-3).
    2. Centered moments. Each hospital sends ``[n, sum z, sum z^2] / (4 N)`` for
       ``z = (x/S - m) / s``; the mean and spread follow without cancellation, precise to about
       1e-7 relative under CKKS.

    Each hospital checks its vector before it is sent; if ``sum_vectors`` still raises the
    engine's :class:`~fhto_native.errors.ValueRangeError`, it is re-raised as a DataError naming
    the hospital and the column of the largest value sent.

    Parameters
    ----------
    hospitals:
        At least one hospital; all with the same features; at most 2**24 - 1 rows each.
    sum_vectors:
        Sums a list of equal-length float64 vectors element-wise.

    Returns
    -------
    (mean, std)
        float64 arrays of length ``d``. A standard deviation below ``3e-6 * S`` (what the sums
        of an encrypted pass resolve; a constant feature among them) is reported as
        ``3e-6 * S``, so standardized values stay bounded and never divide by zero.

    Raises
    ------
    DataError
        No hospitals, hospitals with different features, no features, no rows in total, a
        hospital with more than 2**24 - 1 rows, a sum too noisy to read the row count, or a
        value the encrypted sum refused (the hospital and column named).
    ShapeError
        ``sum_vectors`` returned a vector of the wrong length.
    InputTypeError
        ``sum_vectors`` is not callable.
    """
    hospitals = list(hospitals)
    if not hospitals:
        raise DataError("federated_standardization: no hospitals given")
    if not callable(sum_vectors):
        raise InputTypeError(f"federated_standardization: sum_vectors must be callable; got {type(sum_vectors).__name__}")
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
    for hospital in hospitals:
        if len(hospital) > MAX_ROWS_PER_HOSPITAL:
            raise DataError(
                f"{hospital.source}: {len(hospital)} rows; federated standardization counts at most "
                f"{MAX_ROWS_PER_HOSPITAL} rows per hospital (split it into several)"
            )

    def moment_label(index: int) -> str:
        if index == 0:
            return "row count"
        j = (index - 1) % d
        return f"{'sum' if index <= d else 'sum of squares'} of column {names[j]!r}"

    def range_label(index: int) -> str:
        if index < 2:
            return "row count"
        return f"magnitude bucket of column {names[(index - 2) // _BUCKETS]!r}"

    # Pass 0: row count and magnitude buckets.
    low = EXPONENT_RANGE[0]
    first_vectors = []
    for hospital in hospitals:
        n = len(hospital)
        buckets = np.zeros((d, _BUCKETS))
        if n:
            buckets[np.arange(d), magnitude_exponents(hospital.X) - low] = 1.0
        digits = [n // _COUNT_BASE / _COUNT_BASE, n % _COUNT_BASE / _COUNT_BASE]
        first_vectors.append(np.concatenate((digits, buckets.ravel())))
    zeroth = _Pass(0, "row count and magnitude range", hospitals, range_label).run(sum_vectors, first_vectors)
    digits = zeroth[:2] * _COUNT_BASE
    if np.abs(digits - np.round(digits)).max() > 0.25:
        raise DataError(
            f"federated_standardization: the summed row count {digits.tolist()} is not close to whole numbers; "
            "the sum is too noisy"
        )
    count = int(round(digits[0])) * _COUNT_BASE + int(round(digits[1]))
    if count < 1:
        raise DataError(f"federated_standardization: the hospitals hold {count} rows in total; nothing to standardize on")
    occupied = zeroth[2:].reshape(d, _BUCKETS) > 0.5
    if not occupied.any(axis=1).all():
        j = int(np.nonzero(~occupied.any(axis=1))[0][0])
        raise DataError(f"federated_standardization: no hospital reported a magnitude for column {names[j]!r}; the sum is too noisy")
    exponent = low + (_BUCKETS - 1 - np.argmax(occupied[:, ::-1], axis=1))

    # Pass 1: moments of u = x / S, all entries at most n / N <= 1.
    def scaled(h: TreatmentData) -> np.ndarray:
        return np.ldexp(h.X, -exponent)

    def first_moments(h: TreatmentData) -> np.ndarray:
        u = scaled(h)
        return np.concatenate(([float(len(h))], u.sum(axis=0), np.square(u).sum(axis=0))) / count

    first = _Pass(1, "first moments", hospitals, moment_label).run(sum_vectors, [first_moments(h) for h in hospitals])
    if not first[0] > 0.5:
        raise DataError(f"federated_standardization: pass 1 gives a row fraction of {first[0]}; expected about 1")
    m = first[1:1 + d] / first[0]
    s = np.maximum(np.sqrt(np.maximum(first[1 + d:] / first[0] - np.square(m), 0.0)), _SPREAD_FLOOR)

    # Pass 2: centered, normalized moments.
    def centered(h: TreatmentData) -> np.ndarray:
        z = (scaled(h) - m) / s
        return np.concatenate(([float(len(h))], z.sum(axis=0), np.square(z).sum(axis=0))) / (count * _CENTERED_DIVISOR)

    second = _Pass(2, "centered moments", hospitals, moment_label).run(sum_vectors, [centered(h) for h in hospitals])
    weight = second[0]
    if not weight * _CENTERED_DIVISOR > 0.5:
        raise DataError(f"federated_standardization: pass 2 gives a row fraction of {weight * _CENTERED_DIVISOR}; expected about 1")
    mean_z = second[1:1 + d] / weight
    var_z = second[1 + d:] / weight - np.square(mean_z)
    mean = np.ldexp(m + s * mean_z, exponent)
    std = np.ldexp(s * np.sqrt(np.maximum(var_z, _Z_RESOLUTION ** 2)), exponent)
    return mean, std
