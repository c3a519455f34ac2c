"""Off-policy evaluation of treatment recommendations on randomized trial data.

The outcome ``y = 1`` is the *bad* outcome (for example recurrence within five years). A
treatment policy maps each patient to an arm; its value is the probability of the *good*
outcome ``1 - y`` if every patient were treated as the policy says. On held-out patients of a
randomized trial that value is estimated by inverse propensity weighting (IPW): the patients
whose randomized arm happens to match the policy stand in for everyone, each weighted by one
over the probability of the arm they received.

:func:`policy_value_table` compares the model's policy (the arm of lowest predicted risk) with
treating everyone by one arm and with the trial as randomized, with bootstrap confidence
intervals.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from ..errors import ParameterError, ShapeError
from .metrics import _as_binary, _as_float_array, _as_vector, _same_length

__all__ = [
    "recommend",
    "arm_propensities",
    "ipw_value",
    "PolicyValue",
    "policy_value_table",
    "MODEL_POLICY",
    "OBSERVED",
]

#: Name of the row of :func:`policy_value_table` for the model's policy.
MODEL_POLICY = "model policy (recommend lowest predicted risk)"
#: Name of the row of :func:`policy_value_table` for the trial as randomized.
OBSERVED = "observed (as randomized)"


def _as_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer; got {value!r}")
    if int(value) < minimum:
        raise ParameterError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


def _as_arms(values: Any, name: str, n_arms: int) -> np.ndarray:
    """Return arm indices as a non-empty one-dimensional int64 array with values in [0, n_arms)."""
    arr = _as_vector(values, name)
    frac = arr != np.floor(arr)
    if frac.any():
        i = int(np.flatnonzero(frac)[0])
        raise ParameterError(f"{name} must hold integer arm indices: index {i} is {arr[i]}")
    out = (arr < 0) | (arr >= n_arms)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ParameterError(f"{name} must hold arm indices in [0, {n_arms}): index {i} is {int(arr[i])}")
    return arr.astype(np.int64)


def _as_risk(risk: Any) -> np.ndarray:
    r = _as_float_array(risk, "risk")
    if r.ndim != 2:
        raise ShapeError(f"risk must be two-dimensional (patients, arms); got shape {r.shape}")
    if r.shape[0] == 0 or r.shape[1] == 0:
        raise ShapeError(f"risk must have at least one patient and one arm; got shape {r.shape}")
    if not np.isfinite(r).all():
        i, k = (int(v) for v in np.argwhere(~np.isfinite(r))[0])
        raise ParameterError(f"risk must be finite: row {i}, arm {k} is {r[i, k]}")
    return r


def _as_propensity(propensity: Any, n_arms: Optional[int] = None) -> np.ndarray:
    prop = _as_vector(propensity, "propensity")
    if n_arms is not None and prop.size != n_arms:
        raise ShapeError(f"propensity must have one entry per arm ({n_arms}); got {prop.size}")
    bad = (prop <= 0.0) | (prop > 1.0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"propensity must lie in (0, 1] for every arm: arm {k} has {prop[k]} "
            "(an arm nobody can receive cannot be evaluated by inverse propensity weighting)"
        )
    return prop


def recommend(risk: np.ndarray) -> np.ndarray:
    """The arm of lowest predicted risk for each patient.

    Parameters
    ----------
    risk : np.ndarray
        Shape ``(n, K)``: predicted ``P(bad outcome | x, arm k)`` for each patient and arm (any
        finite score that increases with risk gives the same recommendations).

    Returns
    -------
    np.ndarray
        int64 array of shape ``(n,)``: ``argmin`` over arms; ties go to the lowest arm index.

    Raises
    ------
    ShapeError
        ``risk`` not two-dimensional, or with no patient or no arm.
    ParameterError
        Non-finite risks.
    """
    return np.argmin(_as_risk(risk), axis=1).astype(np.int64)


def arm_propensities(treatment: np.ndarray, n_arms: int) -> np.ndarray:
    """Empirical probability of each arm in the trial's assignment.

    In a randomized trial the assignment does not depend on the patient, so the propensity is
    one constant per arm: the share of patients randomized to it.

    Parameters
    ----------
    treatment : np.ndarray
        One-dimensional integer arm indices in ``[0, n_arms)``.
    n_arms : int
        Number of arms ``K`` (at least 1).

    Returns
    -------
    np.ndarray
        float64 array of shape ``(K,)`` summing to 1. An arm no patient received gets 0, which
        :func:`ipw_value` refuses.

    Raises
    ------
    ShapeError
        ``treatment`` not one-dimensional, or empty.
    ParameterError
        ``n_arms`` not a positive integer, or ``treatment`` holding other than arm indices.
    """
    k = _as_count(n_arms, "n_arms", 1)
    t = _as_arms(treatment, "treatment", k)
    return np.bincount(t, minlength=k).astype(np.float64) / t.size


def _ipw(good: np.ndarray, follow: np.ndarray, inv_prop: np.ndarray, weights: np.ndarray, normalized: bool) -> np.ndarray:
    """IPW values of several policies at once.

    ``follow`` is ``(P, n)`` (1 where patient i's arm matches policy p), ``inv_prop`` the
    per-patient ``1 / propensity[treatment]``, ``weights`` per-patient multiplicities (ones,
    or bootstrap counts). Self-normalized values are ``nan`` where nobody followed a policy.
    """
    w = weights * inv_prop
    num = follow @ (w * good)
    if normalized:
        den = follow @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), np.nan)
    return num / weights.sum()


def ipw_value(
    y: np.ndarray,
    treatment: np.ndarray,
    recommended: np.ndarray,
    propensity: np.ndarray,
    normalized: bool = True,
) -> float:
    """Estimated probability of the good outcome if every patient were treated as recommended.

    With ``w_i = 1[treatment_i == recommended_i] / propensity[treatment_i]``:

    * ``normalized=False`` (Horvitz-Thompson): ``mean_i(w_i * (1 - y_i))``. Unbiased, but the
      weights only sum to ``n`` on average, which adds variance.
    * ``normalized=True`` (self-normalized, Hajek; the default): ``sum_i w_i (1 - y_i) / sum_i w_i``.
      Slightly biased in small samples, usually less variable, and always in ``[0, 1]``. Treating
      everyone by arm ``k`` gets exactly that arm's observed good-outcome rate.

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 outcomes; 1 is the bad outcome.
    treatment : np.ndarray
        The arm each patient actually received (integer indices into ``propensity``).
    recommended : np.ndarray
        The arm the evaluated policy recommends for each patient.
    propensity : np.ndarray
        Shape ``(K,)``: the probability of being assigned each arm, every entry in ``(0, 1]``.
    normalized : bool, default True
        Self-normalize the weights (see above).

    Returns
    -------
    float
        The estimated value. With ``normalized=True`` and no patient whose arm matches the
        recommendation it is ``nan``; with ``normalized=False`` it is then ``0.0``.

    Raises
    ------
    ShapeError
        Inputs not one-dimensional, empty, or of different lengths.
    ParameterError
        Outcomes other than 0/1, arm indices outside ``[0, K)``, or a propensity outside ``(0, 1]``.
    """
    prop = _as_propensity(propensity)
    yy = _as_binary(y, "y")
    t = _as_arms(treatment, "treatment", prop.size)
    rec = _as_arms(recommended, "recommended", prop.size)
    _same_length(yy, "y", t, "treatment")
    _same_length(yy, "y", rec, "recommended")
    follow = (t == rec).astype(np.float64)[None, :]
    value = _ipw(1.0 - yy, follow, 1.0 / prop[t], np.ones(yy.size), bool(normalized))[0]
    return float(value)


@dataclass
class PolicyValue:
    """One row of :func:`policy_value_table`.

    Attributes
    ----------
    name : str
        The policy.
    value : float
        Estimated probability of the good outcome under the policy.
    ci_low, ci_high : float
        Percentile bootstrap confidence interval of ``value``.
    n_followed : int
        Patients whose randomized arm matched the policy (all patients for the observed row).
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    n_followed: int


def policy_value_table(
    y: np.ndarray,
    treatment: np.ndarray,
    risk: np.ndarray,
    arms: Sequence[str],
    propensity: Optional[np.ndarray] = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> List[PolicyValue]:
    """Value of the model's policy next to fixed-arm policies and the trial as randomized.

    Rows, in order:

    * ``"model policy (recommend lowest predicted risk)"``: each patient gets
      ``recommend(risk)``;
    * ``"everyone: <arm>"`` for each arm, in the order of ``arms``;
    * ``"observed (as randomized)"``: the plain mean of ``1 - y``.

    Policy values are self-normalized IPW estimates (``ipw_value(..., normalized=True)``), so an
    ``"everyone: <arm>"`` row equals that arm's observed good-outcome rate.

    Confidence intervals are percentile bootstrap intervals: patients are resampled with
    replacement ``n_boot`` times and every row is recomputed on the *same* resamples, so the
    rows' intervals come from paired replicates. When ``propensity`` is not given it is
    re-estimated on each resample (as the estimate itself does); a given ``propensity`` is held
    fixed. A resample in which nobody followed a policy gives no value for that row and is left
    out of its interval (an interval without any value is ``nan``).

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 outcomes of held-out patients; 1 is the bad outcome.
    treatment : np.ndarray
        The randomized arm of each patient, integer indices into ``arms``.
    risk : np.ndarray
        Shape ``(n, K)``: the model's predicted ``P(bad outcome | x, arm k)``.
    arms : sequence of str
        The ``K`` arm names.
    propensity : np.ndarray, optional
        Shape ``(K,)`` assignment probabilities of the trial's design; default
        ``arm_propensities(treatment, K)``.
    n_boot : int, default 1000
        Bootstrap resamples (at least 1).
    seed : int, default 0
        Seed of the resampling; the same seed gives the same intervals.
    level : float, default 0.95
        Confidence level, in ``(0, 1)``.

    Returns
    -------
    list of PolicyValue
        ``K + 2`` rows.

    Raises
    ------
    ShapeError
        Inputs of inconsistent lengths, ``risk`` not ``(n, K)`` with ``K = len(arms)``, or a
        ``propensity`` without one entry per arm.
    ParameterError
        Bad outcomes, arm indices, propensities, arm names, ``n_boot``, ``seed`` or ``level``.
    """
    if isinstance(arms, (str, bytes)):
        raise ParameterError(f"arms must be a sequence of arm names, not a single string; got {arms!r}")
    try:
        names = list(arms)
    except TypeError as exc:
        raise ParameterError(f"arms must be a sequence of arm names; got {arms!r}") from exc
    if not names or not all(isinstance(a, str) for a in names):
        raise ParameterError(f"arms must be a non-empty sequence of strings; got {arms!r}")
    k = len(names)
    r = _as_risk(risk)
    if r.shape[1] != k:
        raise ShapeError(f"risk must have one column per arm ({k}: {names}); got shape {r.shape}")
    yy = _as_binary(y, "y")
    t = _as_arms(treatment, "treatment", k)
    _same_length(yy, "y", t, "treatment")
    if r.shape[0] != yy.size:
        raise ShapeError(f"risk must have one row per patient ({yy.size}); got shape {r.shape}")
    fixed_prop = None if propensity is None else _as_propensity(propensity, k)
    if fixed_prop is None:
        empirical = arm_propensities(t, k)
        if (empirical == 0.0).any():
            missing = [names[j] for j in np.flatnonzero(empirical == 0.0)]
            raise ParameterError(
                f"no patient received arm(s) {missing}: their propensity is 0, so policies "
                "recommending them cannot be evaluated"
            )
    b = _as_count(n_boot, "n_boot", 1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ParameterError(f"seed must be an integer; got {seed!r}")
    try:
        lvl = float(level)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"level must be a number in (0, 1); got {level!r}") from exc
    if not 0.0 < lvl < 1.0:
        raise ParameterError(f"level must lie in (0, 1); got {level!r}")

    n = yy.size
    good = 1.0 - yy
    rec = recommend(r)
    # One row per policy: the model's, then each fixed arm.
    follow = np.empty((k + 1, n), dtype=np.float64)
    follow[0] = t == rec
    follow[1:] = t[None, :] == np.arange(k)[:, None]

    def values(weights: np.ndarray) -> np.ndarray:
        if fixed_prop is None:
            p = np.bincount(t, weights=weights, minlength=k) / weights.sum()
            inv = np.divide(1.0, p, out=np.zeros(k), where=p > 0.0)
        else:
            inv = 1.0 / fixed_prop
        policies = _ipw(good, follow, inv[t], weights, True)
        observed = float(weights @ good / weights.sum())
        return np.append(policies, observed)

    point = values(np.ones(n))
    rng = np.random.default_rng(seed)
    boot = np.empty((b, k + 2), dtype=np.float64)
    for i in range(b):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        boot[i] = values(counts)

    alpha = (1.0 - lvl) / 2.0
    row_names = [MODEL_POLICY] + [f"everyone: {a}" for a in names] + [OBSERVED]
    followed = [int(f.sum()) for f in follow] + [n]
    rows: List[PolicyValue] = []
    for j, name in enumerate(row_names):
        col = boot[:, j]
        col = col[~np.isnan(col)]
        if col.size:
            lo, hi = (float(v) for v in np.quantile(col, [alpha, 1.0 - alpha]))
        else:
            lo = hi = math.nan
        rows.append(PolicyValue(name=name, value=float(point[j]), ci_low=lo, ci_high=hi, n_followed=followed[j]))
    return rows
