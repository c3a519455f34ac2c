"""Censored follow-up turned into a fixed-horizon outcome without dropping the censored.

A patient followed for ``time`` days either had the bad event at ``time`` (``event = 1``) or was
censored then (``event = 0``: still event-free when follow-up ended). For the outcome "event
within the horizon" a patient censored before the horizon has an unknown status. Dropping those
patients biases the outcome rate (they are the ones followed for a short time); inverse
probability of censoring weighting (IPCW) keeps the estimate unbiased instead: every patient
whose status is known is weighted by one over the probability of having stayed uncensored that
long, estimated by the Kaplan-Meier curve of the censoring times (:func:`censoring_survival`).

With the censoring curve estimated on the same rows, the weighted share of patients event-free
at the horizon equals the Kaplan-Meier survival at the horizon exactly (Satten and Datta, 2001);
the weights of the known rows add up to the number of rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from ...errors import DataError, ShapeError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .container import TreatmentData

__all__ = ["StepFunction", "km_survival", "censoring_survival", "ipcw_weights", "horizon_status", "with_ipcw"]

ArrayLike = npt.ArrayLike


def _survival_arrays(
    time: ArrayLike, event: ArrayLike, source: str, weight: Optional[ArrayLike] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (time, event as bool, weight) arrays of one length; the errors name ``source``."""
    time = np.asarray(time)
    event = np.asarray(event)
    if time.ndim != 1:
        raise ShapeError(f"{source}: time must be 1-D; got shape {time.shape}")
    if event.shape != time.shape:
        raise ShapeError(f"{source}: event has shape {event.shape}; time has {time.shape}")
    if time.size == 0:
        raise DataError(f"{source}: no rows (time is empty)")
    if not (np.issubdtype(time.dtype, np.number) and not np.issubdtype(time.dtype, np.complexfloating)):
        raise DataError(f"{source}: time must be numeric; got dtype {time.dtype}")
    time = np.asarray(time, dtype=np.float64)
    bad = ~np.isfinite(time) | (time < 0)
    if bad.any():
        first = int(np.nonzero(bad)[0][0])
        raise DataError(f"{source}: time must be finite and >= 0; row {first} has {time[first]}")
    if event.dtype == np.bool_:
        flags = event
    else:
        if not np.issubdtype(event.dtype, np.number):
            raise DataError(f"{source}: event must be coded 0/1; got dtype {event.dtype}")
        values = np.asarray(event, dtype=np.float64)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            first = int(np.nonzero(bad)[0][0])
            raise DataError(f"{source}: event must be coded 0/1 (1 = event, 0 = censored); row {first} has {values[first]}")
        flags = values == 1.0
    if weight is None:
        w = np.ones(time.size)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != time.shape:
            raise ShapeError(f"{source}: weight has shape {w.shape}; time has {time.shape}")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            first = int(np.nonzero(bad)[0][0])
            raise DataError(f"{source}: weights must be finite and >= 0; row {first} has {w[first]}")
    return time, np.ascontiguousarray(flags, dtype=bool), w


def _as_horizon(horizon: float, source: str) -> float:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.integer, np.floating)):
        raise DataError(f"{source}: horizon must be a number of time units; got {horizon!r}")
    value = float(horizon)
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"{source}: horizon must be finite and > 0; got {value}")
    return value


@dataclass(frozen=True, eq=False)
class StepFunction:
    """A right-continuous survival step function: ``values[k]`` holds on ``[times[k], times[k+1])``.

    ``S(t) = 1`` before ``times[0]``. Call it for ``S(t)``; :meth:`left` gives ``S(t-)``, the value
    just before ``t`` (what a row at ``t`` must have survived, excluding ``t`` itself).
    """

    times: np.ndarray
    values: np.ndarray

    def __call__(self, t: ArrayLike) -> np.ndarray:
        """``S(t)``, for a scalar or an array of times."""
        return self._at(np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="right") - 1)

    def left(self, t: ArrayLike) -> np.ndarray:
        """``S(t-)``: the value just before ``t``."""
        return self._at(np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="left") - 1)

    def _at(self, index: np.ndarray) -> np.ndarray:
        if self.times.size == 0:
            return np.ones(np.shape(index))
        return np.where(index >= 0, self.values[np.maximum(index, 0)], 1.0)


def _product_limit(time: np.ndarray, weight: np.ndarray, hit: np.ndarray, *, others_leave_first: bool) -> StepFunction:
    """Product-limit curve of the ``hit`` rows over the distinct times: at each time ``t`` the
    factor ``1 - hits(t) / at_risk(t)`` with ``at_risk(t)`` the weight of rows with ``T >= t``.
    With ``others_leave_first`` the other rows ending at ``t`` leave the risk set before the hits."""
    times, inverse = np.unique(time, return_inverse=True)
    hits = np.bincount(inverse, weights=weight * hit, minlength=times.size)
    at_risk = np.cumsum(np.bincount(inverse, weights=weight, minlength=times.size)[::-1])[::-1]
    if others_leave_first:
        at_risk = at_risk - np.bincount(inverse, weights=weight * ~hit, minlength=times.size)
    safe = np.where(at_risk > 0, at_risk, 1.0)  # no hits where nobody is at risk
    factor = np.where(at_risk > 0, 1.0 - hits / safe, 1.0)
    return StepFunction(times=times, values=np.cumprod(factor))


def km_survival(
    time: ArrayLike, event: ArrayLike, at: Union[float, ArrayLike], weight: Optional[ArrayLike] = None
) -> Union[float, np.ndarray]:
    """Kaplan-Meier estimate of the event-free probability ``S(at) = P(T > at)``.

    At a time with both events and censorings the events come first: a row censored at ``t`` is
    still at risk at ``t`` (the usual convention, as in lifelines and R's survival).

    Parameters
    ----------
    time:
        Follow-up of each row (>= 0, finite).
    event:
        1 (or True) when the event was observed at ``time``, 0 when censored there.
    at:
        One time or an array of times to evaluate at.
    weight:
        Optional case weights (finite, >= 0); rows count ``weight`` times.

    Returns
    -------
    float or numpy.ndarray
        A float for a scalar ``at``, else an array of the shape of ``at``.

    Raises
    ------
    DataError
        No rows, a negative or non-finite time or weight, an event not coded 0/1, a non-finite ``at``.
    ShapeError
        Arrays of different lengths.
    """
    t, e, w = _survival_arrays(time, event, "km_survival", weight)
    points = np.asarray(at, dtype=np.float64)
    if not np.isfinite(points).all():
        raise DataError(f"km_survival: the times to evaluate at must be finite; got {at!r}")
    curve = _product_limit(t, w, e, others_leave_first=False)  # censored at t: still at risk at t
    out = curve(points)
    return float(out) if points.ndim == 0 else out


def censoring_survival(time: ArrayLike, event: ArrayLike) -> StepFunction:
    """Kaplan-Meier curve ``G(t) = P(C > t)`` of the censoring times (censorings are the "events").

    At a time with both, an observed event is taken to happen before the censoring: a row with
    the event at ``t`` is no longer at risk of being censored at ``t``. With this convention the
    product ``S(t) G(t)`` of the two Kaplan-Meier curves is the share of rows with ``T > t``,
    which makes the IPCW estimate equal the Kaplan-Meier one (see :func:`ipcw_weights`).

    Raises
    ------
    DataError, ShapeError
        As :func:`km_survival`.
    """
    t, e, w = _survival_arrays(time, event, "censoring_survival")
    return _product_limit(t, w, ~e, others_leave_first=True)  # the events at t leave first


def horizon_status(time: ArrayLike, event: ArrayLike, horizon: float, source: str = "horizon_status") -> Tuple[np.ndarray, np.ndarray]:
    """(known, y) of each row for the outcome "event at or before ``horizon``".

    ``y = 1`` for an event at or before the horizon; ``y = 0`` for follow-up beyond the horizon,
    or censoring exactly at it (event-free through the horizon). A row censored before the
    horizon has an unknown status: ``known = False`` and ``y = 0`` as a placeholder.
    """
    t, e, _ = _survival_arrays(time, event, source)
    h = _as_horizon(horizon, source)
    positive = e & (t <= h)
    known = positive | (t > h) | (~e & (t == h))
    return known, positive.astype(np.float64)


def ipcw_weights(time: ArrayLike, event: ArrayLike, horizon: float, *, source: str = "ipcw_weights") -> Tuple[np.ndarray, np.ndarray]:
    """Fixed-horizon outcome and inverse-probability-of-censoring weight of every row.

    Parameters
    ----------
    time, event:
        Follow-up (>= 0) and event flag (1 = event at ``time``, 0 = censored at ``time``).
    horizon:
        The outcome is "event at or before ``horizon``" (same unit as ``time``; > 0).
    source:
        Named in error messages (the data set or file).

    Returns
    -------
    (y, weight)
        float64 arrays. ``y = 1`` for an event at or before the horizon, else 0. ``weight`` is
        ``1 / G(min(T, horizon)-)`` for a row whose status is known (an event at or before the
        horizon, follow-up beyond it, or censoring exactly at it), with ``G`` from
        :func:`censoring_survival` on these rows, and 0 for a row censored before the horizon
        (its ``y = 0`` is a placeholder). The weights add up to the number of rows, and the
        weighted mean of ``1 - y`` is the Kaplan-Meier survival at the horizon.

    Raises
    ------
    DataError
        Every row is censored before the horizon (no status is known, nothing to weight), or
        the inputs are invalid as in :func:`km_survival`.

    Notes
    -----
    ``G(min(T, horizon)-)`` is never 0 for a known row: it could reach 0 only if every row still
    at risk had been censored before ``min(T, horizon)``, which that row itself contradicts. So
    no clipping of ``G`` is needed; weights are large only where censoring really was heavy.
    """
    t, e, _ = _survival_arrays(time, event, source)
    h = _as_horizon(horizon, source)
    known, y = horizon_status(t, e, h, source)
    if not known.any():
        raise DataError(
            f"{source}: all {t.size} rows are censored before the horizon {h:g} without the event; "
            "no row has a known status, so the outcome cannot be estimated"
        )
    g = censoring_survival(t, e).left(np.minimum(t[known], h))
    if not (g > 0).all():  # excluded by the argument in the Notes; kept as a guard
        raise DataError(f"{source}: the censoring survival reached 0 before a row with known status")
    weight = np.zeros(t.size)
    weight[known] = 1.0 / g
    return y, weight


def with_ipcw(data: "TreatmentData") -> "TreatmentData":
    """``data`` with ``y`` and ``weight`` recomputed by :func:`ipcw_weights` from its own rows.

    The censoring distribution is estimated on these rows alone: a hospital's on its own
    patients, a held-out set's on its own rows. Data with a plain outcome (no ``time`` and
    ``event``) has no censoring to correct and is returned as it is, so callers can apply this
    to every data set alike.

    Raises
    ------
    DataError
        ``data`` has ``time`` and ``event`` but no ``horizon`` (the outcome is undefined), or
        every row is censored before the horizon.
    """
    if data.time is None:
        return data
    if data.horizon is None:
        raise DataError(f"{data.source}: with_ipcw needs a horizon to define the outcome from time and event")
    y, weight = ipcw_weights(data.time, data.event, data.horizon, source=data.source)
    return replace(data, y=y, weight=weight)
