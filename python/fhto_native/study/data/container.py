"""The patients of one hospital or data set: :class:`TreatmentData`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...errors import DataError
from .censoring import _as_horizon, _survival_arrays, horizon_status, ipcw_weights

__all__ = ["TreatmentData", "concatenate"]


@dataclass(frozen=True, eq=False)
class TreatmentData:
    """Patients of one hospital or data set: features, treatment arm, outcome and its weight.

    The outcome is binary: 1 is the bad outcome (e.g. recurrence within five years). When it
    comes from censored follow-up (``time``, ``event``, ``horizon``), a row censored before the
    horizon has an unknown status: it stays in the data with ``y = 0`` as a placeholder and
    ``weight = 0``, and the rows with a known status carry inverse-probability-of-censoring
    weights (:func:`~fhto_native.study.data.with_ipcw`) so that weighted estimates stay
    unbiased. Without censoring every weight is 1.

    Parameters
    ----------
    X:
        ``(n, d)`` float64 raw clinical features (not standardized, no NaN).
    treatment:
        ``(n,)`` int64 index into :attr:`arms`.
    y:
        ``(n,)`` float64 outcome in {0.0, 1.0}; 1 is the bad outcome.
    feature_names:
        ``d`` names, one per column of ``X``.
    arms:
        Treatment arm names, e.g. ``("Obs", "Lev", "Lev+5FU")``.
    outcome:
        One-line description of how ``y`` was defined (and of any rows dropped or weighted).
    source:
        Data set name or file path, used in error messages.
    columns:
        Extra per-row columns usable to split by (e.g. ``"sex"``), each of length ``n``.
    time:
        ``(n,)`` follow-up (finite, >= 0; days for the bundled trials), or None.
    event:
        ``(n,)`` 1 when the bad event was observed at ``time``, 0 when censored at ``time``; or None.
    horizon:
        The outcome is "event at or before ``horizon``" (same unit as ``time``), or None.
    weight:
        ``(n,)`` float64 weight of each row (finite, >= 0). ``None`` gives ones, or, when
        ``time``, ``event`` and ``horizon`` are given, the IPCW weights of these rows.
    outcome_label:
        Short wording of the bad outcome for reports, e.g. ``"recurrence within 5 years"``.
        ``None`` gives ``"bad outcome"``.
    good_outcome_label:
        Wording of the good outcome; ``None`` gives ``"no <outcome_label>"``.
    randomized:
        Whether the treatment was randomized for every patient (propensities known by design),
        ``False`` when it was not (propensities must be estimated), ``None`` when unknown.

    Raises
    ------
    DataError
        Inconsistent shapes, NaN features, an outcome outside {0, 1}, a treatment index outside
        the arms, a negative or non-finite time or weight, an event not coded 0/1, a horizon
        without time and event, or ``y`` / ``weight`` that contradict ``time``, ``event`` and
        ``horizon``; the message names :attr:`source` and the field.

    Notes
    -----
    Equality and hashing are by identity (the fields are numpy arrays). ``dataclasses.replace``
    validates again, so a replaced ``y`` must agree with ``time``/``event``/``horizon``; to give
    such data another outcome, clear those three in the same call.
    """

    X: np.ndarray
    treatment: np.ndarray
    y: np.ndarray
    feature_names: Tuple[str, ...]
    arms: Tuple[str, ...]
    outcome: str
    source: str
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    time: Optional[np.ndarray] = None
    event: Optional[np.ndarray] = None
    horizon: Optional[float] = None
    weight: Optional[np.ndarray] = None
    outcome_label: Optional[str] = None
    good_outcome_label: Optional[str] = None
    randomized: Optional[bool] = None

    def __post_init__(self) -> None:
        src = str(self.source)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
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
        y = _float_rows(self.y, n, "outcome y", src)
        if n and not np.isin(y, (0.0, 1.0)).all():
            found = np.unique(y[~np.isin(y, (0.0, 1.0))])[:5].tolist()
            raise DataError(f"{src}: outcome y must hold only 0 and 1; found {found}")
        columns: Dict[str, np.ndarray] = {}
        for key, values in dict(self.columns).items():
            array = np.asarray(values)
            if array.shape != (n,):
                raise DataError(f"{src}: extra column {key!r} has shape {array.shape}; expected ({n},)")
            columns[str(key)] = array

        time, event, horizon = self._survival(n, src)
        if self.weight is None:
            if horizon is not None:
                _, weight = ipcw_weights(time, event, horizon, source=src)
            else:
                weight = np.ones(n)
        else:
            weight = _float_rows(self.weight, n, "weight", src)
            bad = ~np.isfinite(weight) | (weight < 0)
            if bad.any():
                first = int(np.nonzero(bad)[0][0])
                raise DataError(f"{src}: weight must be finite and >= 0; row {first} has {weight[first]}")
        if horizon is not None and n:
            known, expected = horizon_status(time, event, horizon, src)
            wrong = known & (y != expected)
            if wrong.any():
                first = int(np.nonzero(wrong)[0][0])
                raise DataError(
                    f"{src}: outcome y contradicts time/event/horizon in {int(wrong.sum())} rows (first row "
                    f"{first}: time {time[first]:g}, event {int(event[first])}, horizon {horizon:g}, y {y[first]:g})"
                )
            unknown = ~known
            if (y[unknown] != 0).any():
                first = int(np.nonzero(unknown & (y != 0))[0][0])
                raise DataError(
                    f"{src}: outcome y must be 0 (placeholder) for a row censored before the horizon; row {first} has {y[first]:g}"
                )
            if (weight[unknown] != 0).any():
                first = int(np.nonzero(unknown & (weight != 0))[0][0])
                raise DataError(
                    f"{src}: weight must be 0 for a row censored before the horizon (status unknown); "
                    f"row {first} has {weight[first]:g}"
                )

        label = "bad outcome" if self.outcome_label is None else _label(self.outcome_label, "outcome_label", src)
        good = f"no {label}" if self.good_outcome_label is None else _label(self.good_outcome_label, "good_outcome_label", src)
        if self.randomized is not None and not isinstance(self.randomized, (bool, np.bool_)):
            raise DataError(f"{src}: randomized must be True, False or None; got {self.randomized!r}")

        set_("X", X)
        set_("treatment", treatment)
        set_("y", y)
        set_("feature_names", names)
        set_("arms", arms)
        set_("outcome", str(self.outcome))
        set_("source", src)
        set_("columns", columns)
        set_("time", time)
        set_("event", event)
        set_("horizon", horizon)
        set_("weight", weight)
        set_("outcome_label", label)
        set_("good_outcome_label", good)
        set_("randomized", None if self.randomized is None else bool(self.randomized))

    def _survival(self, n: int, src: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[float]]:
        """Validated (time, event, horizon)."""
        if (self.time is None) != (self.event is None):
            given = "time" if self.time is not None else "event"
            raise DataError(f"{src}: {given} is given without {'event' if given == 'time' else 'time'}; give both or neither")
        if self.horizon is not None and self.time is None:
            raise DataError(f"{src}: horizon {self.horizon!r} is given without time and event")
        if self.time is None:
            return None, None, None
        raw_time, raw_event = np.asarray(self.time), np.asarray(self.event)
        for name, values in (("time", raw_time), ("event", raw_event)):
            if values.shape != (n,):
                raise DataError(f"{src}: {name} has shape {values.shape}; expected ({n},)")
        if n:
            time, flags, _ = _survival_arrays(raw_time, raw_event, src)
        else:
            time, flags = np.zeros(0), np.zeros(0, dtype=bool)
        event = np.ascontiguousarray(flags, dtype=np.int64)
        horizon = None if self.horizon is None else _as_horizon(self.horizon, src)
        return time, event, horizon

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns ``d``."""
        return int(self.X.shape[1])

    @property
    def known(self) -> np.ndarray:
        """Boolean mask of the rows with a known outcome (``weight > 0``)."""
        return self.weight > 0

    @property
    def n_known(self) -> int:
        """Number of rows with a known outcome."""
        return int(np.count_nonzero(self.weight > 0))

    @property
    def n_censored(self) -> int:
        """Number of rows censored before the horizon without the event (status unknown);
        0 without ``time``/``event``/``horizon``."""
        if self.horizon is None or not len(self):
            return 0
        known, _ = horizon_status(self.time, self.event, self.horizon, self.source)
        return int(np.count_nonzero(~known))

    @property
    def event_rate(self) -> float:
        """Weighted share of the bad outcome among rows with a known status (the IPCW estimate
        of its probability); NaN when no row has a known status."""
        total = float(self.weight.sum())
        return float(np.dot(self.weight, self.y) / total) if total > 0 else math.nan

    def subset(self, index: np.ndarray) -> "TreatmentData":
        """The rows selected by an integer index array or a boolean mask.

        Every per-row field comes along (features, treatment, outcome, time, event, weight and
        the extra columns); the weights are kept as they are (see
        :func:`~fhto_native.study.data.with_ipcw` to re-estimate them on the subset).

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
            time=None if self.time is None else self.time[index],
            event=None if self.event is None else self.event[index],
            weight=self.weight[index],
        )

    def describe(self) -> str:
        """A short human summary: rows, censored rows, features, arms with counts, how the
        outcome was defined and its (censoring-weighted) rate."""
        n = len(self)
        counts = np.bincount(self.treatment, minlength=len(self.arms))
        arms = ", ".join(f"{arm} {int(count)}" for arm, count in zip(self.arms, counts))
        known = self.known
        events = int(np.count_nonzero(known & (self.y == 1)))
        rate = self.event_rate
        rate_text = "n/a" if math.isnan(rate) else f"{rate:.3f}"
        weighted = " (censoring-weighted)" if self.horizon is not None else ""
        if self.horizon is not None:
            rows = f"{n} rows ({self.n_censored} censored before the horizon, status unknown)"
        else:
            rows = f"{n} rows"
        design = {True: "randomized", False: "not randomized", None: "randomization unknown"}[self.randomized]
        return (
            f"{self.source}: {rows}, {self.n_features} features; arms: {arms} ({design}); "
            f"outcome: {self.outcome}; {self.outcome_label}: rate {rate_text}{weighted}, "
            f"{events} events among {self.n_known} rows with known status"
        )

    def __repr__(self) -> str:
        return f"TreatmentData({self.describe()})"


def concatenate(parts: Sequence[TreatmentData], *, source: str) -> TreatmentData:
    """The rows of several :class:`TreatmentData` stacked in order, every per-row field included.

    The parts must share features, arms and the outcome definition (horizon, labels); weights
    are kept as they are. Extra columns are kept when every part has them.

    Raises
    ------
    DataError
        No parts, or parts with different features, arms, horizon or survival fields.
    """
    parts = list(parts)
    if not parts:
        raise DataError(f"{source}: nothing to concatenate")
    first = parts[0]
    for part in parts[1:]:
        for name in ("feature_names", "arms", "horizon", "outcome_label", "good_outcome_label"):
            if getattr(part, name) != getattr(first, name):
                raise DataError(
                    f"{source}: {part.source} has {name} {getattr(part, name)!r}, but {first.source} has {getattr(first, name)!r}"
                )
        if (part.time is None) != (first.time is None):
            raise DataError(f"{source}: {part.source} and {first.source} differ in having time and event")
    keys = set(first.columns).intersection(*(set(p.columns) for p in parts[1:]))
    survival = first.time is not None
    return replace(
        first,
        X=np.vstack([p.X for p in parts]),
        treatment=np.concatenate([p.treatment for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        columns={key: np.concatenate([p.columns[key] for p in parts]) for key in sorted(keys)},
        time=np.concatenate([p.time for p in parts]) if survival else None,
        event=np.concatenate([p.event for p in parts]) if survival else None,
        weight=np.concatenate([p.weight for p in parts]),
        source=str(source),
        randomized=first.randomized if all(p.randomized == first.randomized for p in parts) else None,
    )


def _float_rows(values, n: int, field_name: str, src: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise DataError(f"{src}: {field_name} has shape {array.shape}; expected ({n},)")
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{src}: {field_name} must be numeric; got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _label(value, name: str, src: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{src}: {name} must be a non-empty string; got {value!r}")
    return value.strip()
