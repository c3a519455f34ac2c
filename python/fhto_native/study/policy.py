"""Off-policy evaluation of treatment recommendations on held-out trial patients.

The outcome ``y = 1`` is the *bad* outcome (for example recurrence within five years). A
treatment policy maps each patient to an arm; its value is the probability of the *good*
outcome ``G = 1 - y`` if every patient were treated as the policy says.

Two things stand between the held-out patients and that value:

* Confounding. Where the treatment was not randomized for every patient, the probability of
  the arm a patient received depends on the patient. :func:`estimate_propensity` estimates it
  from the features (multinomial logistic regression with an L2 penalty);
  :func:`design_propensity` gives the arm shares of a randomized design.
* Censoring. A patient censored before the horizon has an unknown outcome. Dropping such
  patients biases the value (the event-free ones are the ones still under follow-up), so every
  patient is kept and the outcomes carry inverse-probability-of-censoring weights ``c_i``
  (``0`` where the status at the horizon is unknown), estimated from a Kaplan-Meier fit of the
  censoring distribution.

The values are doubly robust (augmented inverse propensity weighting, AIPW,
:func:`aipw_values`): the model's predicted good-outcome probability under the policy,
corrected by the weighted residuals of the patients whose treatment matched the policy. The
estimate is consistent when either the propensities or the outcome model are right.

:func:`policy_value_table` compares the model's policy (the arm of lowest predicted risk) with
treating everyone by one arm and with the treatment the patients actually received, with
percentile bootstrap intervals in which the censoring weights and the propensity model are
re-estimated on every resample.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataError, ParameterError, ShapeError
from .metrics import _as_binary, _as_float_array, _as_vector, _same_length

__all__ = [
    "recommend",
    "design_propensity",
    "arm_propensities",
    "estimate_propensity",
    "aipw_values",
    "ipw_value",
    "PolicyValue",
    "PolicyTable",
    "policy_value_table",
    "MODEL_POLICY",
    "OBSERVED",
]

#: Name of the row of :func:`policy_value_table` for the model's policy.
MODEL_POLICY = "model policy (recommend lowest predicted risk)"
#: Name of the row of :func:`policy_value_table` for the treatment the patients received.
OBSERVED = "observed (as treated in the trial)"

#: Upper bound on the float64 entries of one bootstrap work array; resamples are processed in
#: chunks that respect it, so memory stays bounded for large test sets.
_CHUNK_ENTRIES = 1 << 22
#: Newton's method for the propensity model: iteration cap and gradient tolerance (per unit of
#: total patient weight).
_NEWTON_MAX_ITER = 100
_NEWTON_TOL = 1e-10
#: Per-patient propensities must sum to one over the arms within this tolerance.
_SUM_TOL = 1e-6
#: Penalty and clipping of the propensity model :func:`policy_value_table` fits.
_RIDGE = 1.0
_CLIP = 0.01


# --------------------------------------------------------------------------------------------
# Input validation


def _as_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer; got {value!r}")
    if int(value) < minimum:
        raise ParameterError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


def _as_number(value: Any, name: str) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ParameterError(f"{name} must be a number; got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a number; got {value!r}") from exc
    if not math.isfinite(f):
        raise ParameterError(f"{name} must be finite; got {value!r}")
    return f


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


def _as_matrix(values: Any, name: str, what: str) -> np.ndarray:
    """A two-dimensional, finite float64 array with at least one row."""
    arr = _as_float_array(values, name)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be two-dimensional ({what}); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} must have at least one row; got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ParameterError(f"{name} must be finite: row {i}, column {j} is {arr[i, j]}")
    return arr


def _as_risk(risk: Any) -> np.ndarray:
    r = _as_matrix(risk, "risk", "patients, arms")
    if r.shape[1] == 0:
        raise ShapeError(f"risk must have at least one patient and one arm; got shape {r.shape}")
    return r


def _as_probability_matrix(values: Any, name: str) -> np.ndarray:
    """A two-dimensional finite array of probabilities in [0, 1], as ``(patients, arms)``."""
    p = _as_matrix(values, name, "patients, arms")
    if p.shape[1] == 0:
        raise ShapeError(f"{name} must have at least one arm; got shape {p.shape}")
    bad = (p < 0.0) | (p > 1.0)
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise ParameterError(f"{name} must hold probabilities in [0, 1]: row {i}, arm {k} is {p[i, k]}")
    return p


def _as_propensity(propensity: Any, n_arms: int, n: Optional[int] = None) -> np.ndarray:
    """Arm probabilities, ``(K,)`` for a design or ``(n, K)`` per patient; each in (0, 1], summing to 1."""
    prop = _as_float_array(propensity, "propensity")
    if prop.ndim == 1:
        if prop.size != n_arms:
            raise ShapeError(f"propensity must have one entry per arm ({n_arms}); got {prop.size}")
    elif prop.ndim == 2:
        if prop.shape[1] != n_arms or (n is not None and prop.shape[0] != n):
            rows = "n" if n is None else str(n)
            raise ShapeError(
                f"propensity must have one entry per arm ({n_arms}), or one row per patient and one "
                f"column per arm ({rows}, {n_arms}); got shape {prop.shape}"
            )
    else:
        raise ShapeError(f"propensity must be one- or two-dimensional; got shape {prop.shape}")
    bad = ~((prop > 0.0) & (prop <= 1.0))  # also catches nan
    if bad.any():
        where = np.argwhere(bad)[0]
        at = f"arm {int(where[0])}" if prop.ndim == 1 else f"row {int(where[0])}, arm {int(where[1])}"
        raise ParameterError(
            f"propensity must lie in (0, 1]: {at} has {prop[tuple(where)]} "
            "(an arm a patient cannot receive cannot be evaluated by inverse propensity weighting)"
        )
    sums = prop.sum(axis=-1)
    off = np.abs(np.atleast_1d(sums) - 1.0) > _SUM_TOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        at = "the arms" if prop.ndim == 1 else f"row {i}"
        raise ParameterError(f"propensity must sum to 1 over the arms: {at} sums to {np.atleast_1d(sums)[i]}")
    return prop


def _as_weight(weight: Any, n: Optional[int] = None, name: str = "weight") -> np.ndarray:
    """Non-negative per-patient weights; with ``n``, exactly one per patient (ones for None)."""
    if weight is None and n is not None:
        return np.ones(n)
    w = _as_vector(weight, name)
    neg = w < 0.0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ParameterError(f"{name} must be non-negative: index {i} is {w[i]}")
    if n is not None and w.size != n:
        raise ShapeError(f"{name} must have one entry per patient ({n}); got {w.size}")
    return w


def _as_features(X: Any, n: int) -> np.ndarray:
    x = _as_matrix(X, "X", "patients, features")
    if x.shape[0] != n:
        raise ShapeError(f"X must have one row per patient ({n}); got shape {x.shape}")
    return x


def _as_ridge(ridge: Any) -> float:
    r = _as_number(ridge, "ridge")
    if r <= 0.0:
        raise ParameterError(f"ridge must be positive (the penalty keeps the fit finite when a feature "
                             f"separates the arms); got {ridge!r}")
    return r


def _as_clip(clip: Any, n_arms: int) -> float:
    c = _as_number(clip, "clip")
    if not 0.0 <= c < 1.0 / n_arms:
        raise ParameterError(f"clip must lie in [0, 1/{n_arms}) for {n_arms} arms; got {clip!r}")
    return c


def _require_every_arm(t: np.ndarray, names: Sequence[str]) -> None:
    present = np.bincount(t, minlength=len(names)) > 0
    if not present.all():
        missing = [names[j] for j in np.flatnonzero(~present)]
        raise ParameterError(
            f"no patient received arm(s) {missing}: their propensity is 0, so policies "
            "recommending them cannot be evaluated"
        )


# --------------------------------------------------------------------------------------------
# Recommendations and propensities


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


def design_propensity(treatment: np.ndarray, n_arms: int) -> np.ndarray:
    """Share of patients in each arm: the propensity of a randomized design.

    In a randomized trial the assignment does not depend on the patient, so the propensity is
    one constant per arm, estimated by the share of patients randomized to it.

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
        the value estimators refuse.

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


#: The name this function had before estimated propensities existed.
arm_propensities = design_propensity


def _softmax_fit(
    X: np.ndarray, t: np.ndarray, n_arms: int, W: np.ndarray, ridge: float, clip: float
) -> np.ndarray:
    """Penalized multinomial logistic regression fitted once per row of ``W``; ``(B, K, n)`` probabilities.

    Row ``b`` of ``W`` holds patient multiplicities (bootstrap counts); the fit for that row is
    the fit :func:`estimate_propensity` makes on the data set in which patient ``i`` appears
    ``W[b, i]`` times. Standardizing the features of each resample only rescales the penalty
    (the unpenalized intercept absorbs the centering), so the features are standardized once
    and each row gets the penalty ``ridge * sd_b(x_j)^2`` on feature ``j`` (``sd_b`` the
    population standard deviation in that resample, in units of the whole sample's). The
    model has one coefficient vector per arm; the slopes are penalized, and
    ``(sum_k intercept_k)^2 / (2K)`` pins the common shift of the intercepts, which no
    probability depends on, so the problem is strictly convex and the fit symmetric in the arms.
    Arrays are laid out arm-major, ``(B, K, n)``, so that sums over the arms run over
    contiguous rows.
    """
    n, d = X.shape
    k = n_arms
    B = W.shape[0]
    p = d + 1
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    sd = np.where(sd > 0.0, sd, 1.0)
    Z = np.empty((n, p))
    Z[:, 0] = 1.0
    Z[:, 1:] = (X - mu) / sd
    Zt = np.ascontiguousarray(Z.T)
    total = W.sum(axis=1)  # (B,)
    mean_b = (W @ Z[:, 1:]) / total[:, None]
    var_b = np.maximum((W @ Z[:, 1:] ** 2) / total[:, None] - mean_b**2, 0.0)
    scale = np.where(var_b > 1e-12, var_b, 1.0)  # a feature constant in a resample: any penalty will do
    pen = np.zeros((B, 1, p))
    pen[:, 0, 1:] = ridge * scale
    Yt = np.zeros((k, n))
    Yt[t, np.arange(n)] = 1.0
    zz = (Z[:, :, None] * Z[:, None, :]).reshape(n, p * p)
    eye_k = np.eye(k)[None, :, :, None]
    diag_k, diag_p = np.meshgrid(np.arange(k), np.arange(p), indexing="ij")

    def log_softmax(beta: np.ndarray) -> np.ndarray:
        logits = beta @ Zt  # (B, K, n)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logits

    def objective(beta: np.ndarray) -> np.ndarray:
        nll = -np.einsum("bn,bn->b", W, (log_softmax(beta) * Yt).sum(axis=1))
        return nll + 0.5 * (pen * beta**2).sum(axis=(1, 2)) + 0.5 / k * beta[:, :, 0].sum(axis=1) ** 2

    beta = np.zeros((B, k, p))
    f = objective(beta)
    tol = _NEWTON_TOL * np.maximum(total, 1.0)
    for _ in range(_NEWTON_MAX_ITER):
        P = np.exp(log_softmax(beta))
        grad = (W[:, None, :] * (P - Yt)) @ Z + pen * beta
        grad[:, :, 0] += beta[:, :, 0].sum(axis=1, keepdims=True) / k
        if (np.abs(grad).max(axis=(1, 2)) <= tol).all():
            break
        # Hessian: sum_n w_n P_kn (d_kl - P_ln) z_np z_nq, plus the penalties.
        C = (W[:, None, None, :] * P[:, :, None, :]) * (eye_k - P[:, None, :, :])  # (B, K, K, n)
        H = (C.reshape(B * k * k, n) @ zz).reshape(B, k, k, p, p).transpose(0, 1, 3, 2, 4)
        H = np.ascontiguousarray(H)  # (B, K, p, K, p)
        H[:, :, 0, :, 0] += 1.0 / k
        H[:, diag_k, diag_p, diag_k, diag_p] += pen[:, 0, None, :]
        step = np.linalg.solve(H.reshape(B, k * p, k * p), grad.reshape(B, k * p, 1)).reshape(B, k, p)
        # Backtracking: halve the step of a resample until its objective does not increase.
        size = np.ones(B)
        pending = np.ones(B, dtype=bool)
        new_beta = beta.copy()
        new_f = f.copy()
        for _halving in range(40):
            trial = beta - size[:, None, None] * step
            f_trial = objective(trial)
            ok = pending & (f_trial <= f + 1e-12 * np.abs(f))
            new_beta[ok] = trial[ok]
            new_f[ok] = f_trial[ok]
            pending &= ~ok
            if not pending.any():
                break
            size[pending] *= 0.5
        if np.array_equal(new_beta, beta):
            break
        beta, f = new_beta, new_f
    P = np.exp(log_softmax(beta))
    if clip > 0.0:
        P = np.clip(P, clip, 1.0 - clip)
        P /= P.sum(axis=1, keepdims=True)
    return P


def estimate_propensity(
    X: np.ndarray, treatment: np.ndarray, n_arms: int, *, ridge: float = _RIDGE, clip: float = _CLIP
) -> np.ndarray:
    """Probability of each arm given the features: penalized multinomial logistic regression.

    The model is ``P(A = k | x) = softmax_k(b_k + x_std . w_k)`` on the standardized features
    (each column centered and divided by its population standard deviation; a constant column
    contributes nothing), with an unpenalized intercept per arm and the L2 penalty
    ``ridge / 2 * sum_k |w_k|^2``. With two arms this is logistic regression of arm 1 against
    arm 0 with slopes ``beta = w_1 - w_0`` and the penalty ``ridge / 4 * |beta|^2`` (the
    symmetric penalty puts ``w_0 = -w_1`` at the optimum). It is
    fitted by Newton's method with step halving (the objective is strictly convex), so the
    result is deterministic. The probabilities are then clipped to ``[clip, 1 - clip]`` and
    renormalized to sum to one, which bounds the inverse propensity weights.

    Parameters
    ----------
    X : np.ndarray
        Shape ``(n, d)``: finite numeric features (``d`` may be 0: then every patient gets the
        arm shares).
    treatment : np.ndarray
        The arm each patient received, integer indices in ``[0, n_arms)``.
    n_arms : int
        Number of arms ``K`` (at least 2).
    ridge : float, default 1.0
        Strength of the L2 penalty on the standardized slopes; positive.
    clip : float, default 0.01
        Lower clipping bound of each probability, in ``[0, 1/K)``.

    Returns
    -------
    np.ndarray
        float64 array of shape ``(n, K)``, rows summing to one.

    Raises
    ------
    ShapeError
        ``X`` not two-dimensional or without one row per patient; ``treatment`` not
        one-dimensional or empty.
    ParameterError
        Non-finite features, bad arm indices, ``n_arms`` below 2, ``ridge`` not positive,
        ``clip`` outside ``[0, 1/K)``, or an arm no patient received (its probability cannot be
        estimated).
    """
    k = _as_count(n_arms, "n_arms", 2)
    t = _as_arms(treatment, "treatment", k)
    x = _as_features(X, t.size)
    r = _as_ridge(ridge)
    c = _as_clip(clip, k)
    _require_every_arm(t, [f"arm {j}" for j in range(k)])
    return np.ascontiguousarray(_softmax_fit(x, t, k, np.ones((1, t.size)), r, c)[0].T)


# --------------------------------------------------------------------------------------------
# Censoring


class _Censoring:
    """Kaplan-Meier estimate of the censoring distribution, ready to be refitted on resamples.

    The status at the horizon ``h`` is known for a patient with an event at ``T <= h`` (bad
    outcome) and for one followed to ``T >= h`` (good outcome); a patient censored before ``h``
    has unknown status. A known patient's weight is ``1 / G(min(T, h)-)``, with ``G`` the
    Kaplan-Meier estimate of the probability of remaining uncensored; at a time shared by an
    event and a censoring the event counts first, so the patient with the event is not at risk
    of censoring at that time. With these conventions the weighted mean of ``1 - y`` equals the
    Kaplan-Meier survival at ``h`` exactly.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, horizon: float) -> None:
        self.order = np.argsort(time, kind="mergesort")
        ts = time[self.order]
        self.starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
        unique = ts[self.starts]
        self.censored_sorted = (event[self.order] == 0.0).astype(np.float64)
        self.bad = (event == 1.0) & (time <= horizon)
        self.known = self.bad | (time >= horizon)
        # Number of distinct times strictly before min(T, h): the index of G(min(T, h)-).
        self.before = np.searchsorted(unique, np.minimum(time, horizon), side="left")

    def weights(self, W: np.ndarray) -> np.ndarray:
        """Censoring weights ``(B, n)`` from the Kaplan-Meier fit on each row of multiplicities ``W``."""
        Ws = W[:, self.order]
        at_time = np.add.reduceat(Ws, self.starts, axis=1)
        censored = np.add.reduceat(Ws * self.censored_sorted, self.starts, axis=1)
        events = at_time - censored
        at_risk = np.cumsum(at_time[:, ::-1], axis=1)[:, ::-1] - events  # events leave first
        hazard = np.divide(censored, at_risk, out=np.zeros_like(censored), where=at_risk > 0.0)
        surv = np.ones((W.shape[0], self.starts.size + 1))
        surv[:, 1:] = np.cumprod(1.0 - hazard, axis=1)
        g = surv[:, self.before]
        use = self.known[None, :] & (g > 0.0)
        return np.divide(1.0, g, out=np.zeros_like(g), where=use)


def _as_survival(time: Any, event: Any, horizon: Any, n: int) -> Tuple[np.ndarray, np.ndarray, float]:
    tt = _as_vector(time, "time")
    if tt.size != n:
        raise ShapeError(f"time must have one entry per patient ({n}); got {tt.size}")
    neg = tt < 0.0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ParameterError(f"time must be non-negative: index {i} is {tt[i]}")
    ev = _as_binary(event, "event")
    if ev.size != n:
        raise ShapeError(f"event must have one entry per patient ({n}); got {ev.size}")
    h = _as_number(horizon, "horizon")
    if h <= 0.0:
        raise ParameterError(f"horizon must be positive; got {horizon!r}")
    return tt, ev, h


# --------------------------------------------------------------------------------------------
# Value estimators


def _aipw(
    follow: np.ndarray,
    m_rec: np.ndarray,
    resid: np.ndarray,
    W: np.ndarray,
    c: np.ndarray,
    e_received: np.ndarray,
) -> np.ndarray:
    """AIPW values ``(B, P)`` for each row of multiplicities ``W`` (``(B, n)``).

    ``follow`` is ``(n, P)`` (1 where patient i's arm is policy p's), ``m_rec`` ``(n, P)`` the
    predicted good-outcome probability of policy p's arm, ``resid`` ``(n, P)`` equal to
    ``follow * (good - m_rec)``; ``c`` and ``e_received`` are ``(B, n)`` or ``(n,)`` censoring
    weights and propensities of the received arm. A policy whose followers all have weight 0
    gets ``nan``.
    """
    direct = (W @ m_rec) / W.sum(axis=1, keepdims=True)
    v = W * c / e_received
    num = v @ resid
    den = v @ follow
    with np.errstate(invalid="ignore", divide="ignore"):
        aug = np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), np.nan)
    return direct + aug


def aipw_values(
    good: np.ndarray,
    treatment: np.ndarray,
    m: np.ndarray,
    recommended: np.ndarray,
    propensity: np.ndarray,
    weight: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Doubly robust (AIPW) values of several policies at once.

    For policy ``p`` recommending arm ``pi_p(i)`` to patient ``i``, with
    ``w_ip = 1[A_i = pi_p(i)] * c_i / e(A_i | x_i)``::

        V_p = mean_i m_i(pi_p(i)) + sum_i w_ip (G_i - m_i(pi_p(i))) / sum_i w_ip

    The first term is the outcome model's prediction of the policy's value over *all* patients
    (censored ones included: their features are known); the second corrects it by the weighted
    mean residual of the patients whose treatment matched the policy and whose status is known.

    The augmentation term is self-normalized (Hajek): its weighted sum is divided by the sum of
    its weights, per policy, rather than by ``n``. Both forms are doubly robust: when the
    propensities and censoring weights are right, ``sum_i w_ip / n`` tends to 1; when the outcome
    model is right, the residuals average zero under any weights that depend on ``x`` and the
    arm. The normalized form was chosen because (1) it is invariant to a common scale of the
    weights, which matters because Kaplan-Meier censoring weights and clipped estimated
    propensities only average to one approximately; (2) the correction is a weighted average
    of residuals, so however large one weight is it stays within ``[-1, 1]``; and (3) with a constant outcome model it reduces exactly to the
    self-normalized IPW estimate (:func:`ipw_value`), so "everyone gets arm k" under design
    propensities is the censoring-weighted good-outcome rate of arm k.

    Parameters
    ----------
    good : np.ndarray
        ``(n,)`` 0/1 good outcomes ``G = 1 - y`` (any 0/1 placeholder where the status is
        unknown and the weight is 0).
    treatment : np.ndarray
        ``(n,)`` arm each patient received, integer indices in ``[0, K)``.
    m : np.ndarray
        ``(n, K)``: the model's predicted probability of the good outcome for each patient
        and arm (``1 - risk``), in ``[0, 1]``.
    recommended : np.ndarray
        ``(P, n)`` (or ``(n,)`` for one policy): the arm each policy recommends to each patient.
    propensity : np.ndarray
        ``(K,)`` design probabilities or ``(n, K)`` per-patient probabilities of each arm; every
        entry in ``(0, 1]``, summing to 1 over the arms.
    weight : np.ndarray, optional
        ``(n,)`` non-negative inverse-probability-of-censoring weights ``c_i`` (0 where the
        status at the horizon is unknown); default all ones (no censoring).

    Returns
    -------
    np.ndarray
        float64 array of shape ``(P,)``; ``nan`` for a policy that no patient with positive
        weight followed.

    Raises
    ------
    ShapeError
        Inputs of inconsistent shapes.
    ParameterError
        Outcomes other than 0/1, arm indices outside ``[0, K)``, predictions outside ``[0, 1]``,
        propensities outside ``(0, 1]`` or not summing to 1, or negative or non-finite weights.
    """
    mm = _as_probability_matrix(m, "m")
    n, k = mm.shape
    g = _as_binary(good, "good")
    if g.size != n:
        raise ShapeError(f"good must have one entry per row of m ({n}); got {g.size}")
    t = _as_arms(treatment, "treatment", k)
    _same_length(g, "good", t, "treatment")
    rec_arr = _as_float_array(recommended, "recommended")
    if rec_arr.ndim == 1:
        rec_arr = rec_arr[None, :]
    if rec_arr.ndim != 2 or rec_arr.shape[1] != n or rec_arr.shape[0] == 0:
        raise ShapeError(f"recommended must have shape (policies, {n}) or ({n},); got {np.shape(recommended)}")
    rec = _as_arms(rec_arr.ravel(), "recommended", k).reshape(rec_arr.shape)
    prop = _as_propensity(propensity, k, n)
    c = _as_weight(weight, n)
    e_received = prop[t] if prop.ndim == 1 else prop[np.arange(n), t]
    follow = (rec == t[None, :]).T.astype(np.float64)
    m_rec = np.take_along_axis(mm, rec.T, axis=1)
    resid = follow * (g[:, None] - m_rec)
    return _aipw(follow, m_rec, resid, np.ones((1, n)), c, e_received)[0]


def ipw_value(
    y: np.ndarray,
    treatment: np.ndarray,
    recommended: np.ndarray,
    propensity: np.ndarray,
    normalized: bool = True,
    weight: Optional[np.ndarray] = None,
) -> float:
    """Inverse propensity weighted estimate of a policy's value (no outcome model).

    With ``w_i = 1[treatment_i == recommended_i] * c_i / e(treatment_i | x_i)``:

    * ``normalized=False`` (Horvitz-Thompson): ``mean_i(w_i * (1 - y_i))``. Unbiased, but the
      weights only sum to ``n`` on average, which adds variance.
    * ``normalized=True`` (self-normalized, Hajek; the default):
      ``sum_i w_i (1 - y_i) / sum_i w_i``. Always in ``[0, 1]``; treating everyone by arm ``k``
      gets exactly that arm's (censoring-weighted) good-outcome rate.

    This is :func:`aipw_values` with a constant outcome model; it is kept as the reference the
    doubly robust estimate is checked against.

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 outcomes; 1 is the bad outcome.
    treatment : np.ndarray
        The arm each patient actually received (integer indices into the arms).
    recommended : np.ndarray
        The arm the evaluated policy recommends for each patient.
    propensity : np.ndarray
        ``(K,)`` design probabilities or ``(n, K)`` per-patient probabilities, every entry in
        ``(0, 1]``, summing to 1 over the arms.
    normalized : bool, default True
        Self-normalize the weights (see above).
    weight : np.ndarray, optional
        Non-negative censoring weights ``c_i``; default all ones.

    Returns
    -------
    float
        The estimated value. With ``normalized=True`` and no follower of positive weight it is
        ``nan``; with ``normalized=False`` it is then ``0.0``.

    Raises
    ------
    ShapeError
        Inputs not one-dimensional, empty, or of different lengths; a propensity of the wrong
        shape.
    ParameterError
        Outcomes other than 0/1, arm indices outside ``[0, K)``, a propensity outside ``(0, 1]``
        or not summing to 1, or negative or non-finite weights.
    """
    yy = _as_binary(y, "y")
    prop_arr = _as_float_array(propensity, "propensity")
    k = prop_arr.shape[-1] if prop_arr.ndim in (1, 2) else 0
    prop = _as_propensity(prop_arr, k, yy.size)
    t = _as_arms(treatment, "treatment", k)
    rec = _as_arms(recommended, "recommended", k)
    _same_length(yy, "y", t, "treatment")
    _same_length(yy, "y", rec, "recommended")
    c = np.ones(yy.size) if weight is None else _as_weight(weight)
    _same_length(yy, "y", c, "weight")
    e = prop[t] if prop.ndim == 1 else prop[np.arange(yy.size), t]
    w = (t == rec) * c / e
    num = float(w @ (1.0 - yy))
    if not normalized:
        return num / yy.size
    den = float(w.sum())
    return num / den if den > 0.0 else math.nan


# --------------------------------------------------------------------------------------------
# The table


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
        Patients whose received arm matched the policy, censored ones included (all patients
        for the observed row).
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    n_followed: int


@dataclass
class PolicyTable:
    """The result of :func:`policy_value_table`: the rows and how they were estimated.

    Iterating over a table, indexing it and ``len`` go to its rows.

    Attributes
    ----------
    rows : list of PolicyValue
        The model's policy, ``"everyone: <arm>"`` for each arm, and the observed treatment.
    estimator : str
        One sentence naming the estimator of the policy rows.
    propensity : str
        Where the propensities came from.
    censoring : str
        How censoring was handled, with counts.
    good_outcome : str
        What the values are the probability of, as given by the caller.
    level : float
        Confidence level of the intervals.
    n_boot : int
        Bootstrap resamples behind the intervals.
    """

    rows: List[PolicyValue]
    estimator: str
    propensity: str
    censoring: str
    good_outcome: str
    level: float
    n_boot: int

    def __iter__(self) -> Iterator[PolicyValue]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Union[int, slice]) -> Union[PolicyValue, List[PolicyValue]]:
        return self.rows[index]


def _bootstrap_counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """``(b, n)`` multiplicities of ``b`` resamples of ``n`` patients drawn with replacement."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def policy_value_table(
    y: np.ndarray,
    treatment: np.ndarray,
    risk: np.ndarray,
    arms: Sequence[str],
    *,
    weight: Optional[np.ndarray] = None,
    time: Optional[np.ndarray] = None,
    event: Optional[np.ndarray] = None,
    horizon: Optional[float] = None,
    X: Optional[np.ndarray] = None,
    propensity: Union[str, np.ndarray] = "estimated",
    good_outcome: str = "good outcome",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PolicyTable:
    """Value of the model's policy next to fixed-arm policies and the treatment received.

    Rows, in order:

    * :data:`MODEL_POLICY`: each patient gets ``recommend(risk)``;
    * ``"everyone: <arm>"`` for each arm, in the order of ``arms``;
    * :data:`OBSERVED`: the treatment the patients actually received, whose value is the
      censoring-weighted mean good outcome ``sum_i c_i G_i / sum_i c_i`` (no model, no
      propensity).

    Policy rows are doubly robust :func:`aipw_values` with ``m = 1 - risk``.

    Censoring: with ``time``, ``event`` and ``horizon`` the censoring weights are estimated by
    Kaplan-Meier on the patients given (and ``y`` and ``weight`` are checked against them);
    with ``weight`` alone they are used as given; with neither every outcome counts as known.

    Confidence intervals are percentile bootstrap intervals: patients are resampled with
    replacement ``n_boot`` times, every row is recomputed on the *same* resamples, and inside
    each resample the censoring weights (when ``time`` is given) and the propensities (when
    ``"estimated"`` or ``"design"``) are re-estimated, so the intervals include the uncertainty
    of those estimates. A resample in which no patient of positive weight followed a policy
    gives no value for that row and is left out of its interval (an interval without any value
    is ``nan``).

    Parameters
    ----------
    y : np.ndarray
        ``(n,)`` 0/1 outcomes of held-out patients; 1 is the bad outcome (any 0/1 placeholder
        where the status at the horizon is unknown).
    treatment : np.ndarray
        The arm each patient received, integer indices into ``arms``.
    risk : np.ndarray
        Shape ``(n, K)``: the model's predicted ``P(bad outcome | x, arm k)``, in ``[0, 1]``.
    arms : sequence of str
        The ``K`` arm names.
    weight : np.ndarray, optional
        ``(n,)`` non-negative inverse-probability-of-censoring weights, 0 where the status is
        unknown. With ``time`` given it must be 0 exactly where the status is unknown; the
        weights are then re-estimated from ``time`` and ``event``.
    time, event : np.ndarray, optional
        ``(n,)`` follow-up times (non-negative) and 1 for an event, 0 for a censoring. Given
        together with ``horizon``.
    horizon : float, optional
        The horizon of the outcome, in the unit of ``time``.
    X : np.ndarray, optional
        ``(n, d)`` features for the propensity model; required with ``propensity="estimated"``
        and unused otherwise.
    propensity : {"estimated", "design"} or np.ndarray, default "estimated"
        ``"estimated"``: :func:`estimate_propensity` on ``X``; ``"design"``: the arm shares of a
        randomized trial (:func:`design_propensity`); an array: ``(K,)`` design probabilities
        or ``(n, K)`` per-patient probabilities, held fixed across resamples.
    good_outcome : str, default "good outcome"
        What the values are the probability of, copied into the table for reports.
    n_boot : int, default 1000
        Bootstrap resamples (at least 1).
    seed : int, default 0
        Seed of the resampling; the same seed gives the same table.
    level : float, default 0.95
        Confidence level, in ``(0, 1)``.

    Returns
    -------
    PolicyTable
        ``K + 2`` rows and the description of the estimator, propensities and censoring.

    Raises
    ------
    ShapeError
        Inputs of inconsistent lengths, ``risk`` not ``(n, K)`` with ``K = len(arms)``, ``X``
        without one row per patient, or a ``propensity`` array of the wrong shape.
    ParameterError
        Bad outcomes, arm indices, risks, arm names, weights, times, events, horizon,
        propensities, ``n_boot``, ``seed``, ``level`` or ``good_outcome``; only some of
        ``time``/``event``/``horizon``; ``propensity="estimated"`` without ``X``; an arm no
        patient received (with estimated or design propensities).
    DataError
        ``y`` or ``weight`` disagreeing with ``time``/``event``/``horizon``, or no patient with a
        known status (all weights 0).
    """
    if isinstance(arms, (str, bytes)):
        raise ParameterError(f"arms must be a sequence of arm names, not a single string; got {arms!r}")
    try:
        names = list(arms)
    except TypeError as exc:
        raise ParameterError(f"arms must be a sequence of arm names; got {arms!r}") from exc
    if not names or not all(isinstance(a, str) for a in names):
        raise ParameterError(f"arms must be a non-empty sequence of strings; got {arms!r}")
    if not isinstance(good_outcome, str) or not good_outcome:
        raise ParameterError(f"good_outcome must be a non-empty string; got {good_outcome!r}")
    k = len(names)
    r = _as_probability_matrix(risk, "risk")
    if r.shape[1] != k:
        raise ShapeError(f"risk must have one column per arm ({k}: {names}); got shape {r.shape}")
    yy = _as_binary(y, "y")
    t = _as_arms(treatment, "treatment", k)
    _same_length(yy, "y", t, "treatment")
    n = yy.size
    if r.shape[0] != n:
        raise ShapeError(f"risk must have one row per patient ({n}); got shape {r.shape}")

    # Censoring.
    given = {"time": time is not None, "event": event is not None, "horizon": horizon is not None}
    censoring_plan: Optional[_Censoring] = None
    if any(given.values()):
        if not all(given.values()):
            missing = [name for name, g in given.items() if not g]
            raise ParameterError(f"time, event and horizon go together; missing {missing}")
        tt, ev, h = _as_survival(time, event, horizon, n)
        censoring_plan = _Censoring(tt, ev, h)
        disagree = censoring_plan.known & (yy != censoring_plan.bad)
        if disagree.any():
            i = int(np.flatnonzero(disagree)[0])
            raise DataError(
                f"y disagrees with time/event at horizon {h:g}: patient {i} has y = {int(yy[i])} "
                f"but time {tt[i]:g}, event {int(ev[i])}"
            )
        if weight is not None:
            w_given = _as_weight(weight, n)
            mismatch = (w_given > 0.0) != censoring_plan.known
            if mismatch.any():
                i = int(np.flatnonzero(mismatch)[0])
                state = "known" if censoring_plan.known[i] else "unknown"
                raise DataError(
                    f"weight disagrees with time/event at horizon {h:g}: patient {i} has weight "
                    f"{w_given[i]:g} but status {state} (time {tt[i]:g}, event {int(ev[i])})"
                )
        point_c = censoring_plan.weights(np.ones((1, n)))[0]
        n_unknown = int(np.count_nonzero(~censoring_plan.known))
        censoring_text = (
            f"inverse-probability-of-censoring weights from a Kaplan-Meier estimate of the censoring "
            f"distribution, re-estimated in every bootstrap resample: {n_unknown} of {n} patients "
            f"censored before the horizon ({h:g}) have unknown status and weight 0, none dropped"
        )
    elif weight is not None:
        point_c = _as_weight(weight, n)
        n_unknown = int(np.count_nonzero(point_c == 0.0))
        censoring_text = (
            f"inverse-probability-of-censoring weights given with the data, held fixed across "
            f"bootstrap resamples: {n_unknown} of {n} patients have unknown status and weight 0, "
            "none dropped"
        )
    else:
        point_c = np.ones(n)
        n_unknown = 0
        censoring_text = f"none: all {n} outcomes taken as known (no censoring weights given)"
    if not (point_c > 0.0).any():
        raise DataError(f"no patient has a known status at the horizon: all {n} censoring weights are 0")
    has_censoring = censoring_plan is not None or weight is not None

    # Propensities.
    features: Optional[np.ndarray] = None
    fixed_e: Optional[np.ndarray] = None
    if isinstance(propensity, str):
        if propensity == "estimated":
            if X is None:
                raise ParameterError(
                    'propensity="estimated" needs the features X to fit the propensity model; pass '
                    'X, or propensity="design" for a randomized trial'
                )
            if k < 2:
                raise ParameterError(f'propensity="estimated" needs at least 2 arms; got {names}')
            features = _as_features(X, n)
            _require_every_arm(t, names)
            propensity_text = "estimated: L2 logistic regression on the features"
        elif propensity == "design":
            _require_every_arm(t, names)
            propensity_text = "randomized design: arm shares"
        else:
            raise ParameterError(
                f'propensity must be "estimated", "design" or an array of probabilities; got {propensity!r}'
            )
    else:
        prop = _as_propensity(propensity, k, n)
        fixed_e = prop[t] if prop.ndim == 1 else prop[np.arange(n), t]
        propensity_text = "given: fixed arm probabilities" if prop.ndim == 1 else "given: per-patient probabilities"

    b = _as_count(n_boot, "n_boot", 1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ParameterError(f"seed must be an integer; got {seed!r}")
    lvl = _as_number(level, "level")
    if not 0.0 < lvl < 1.0:
        raise ParameterError(f"level must lie in (0, 1); got {level!r}")

    good = 1.0 - yy
    rec = recommend(r)
    # One column per policy: the model's, then each fixed arm.
    recommended = np.empty((n, k + 1), dtype=np.int64)
    recommended[:, 0] = rec
    recommended[:, 1:] = np.arange(k)[None, :]
    follow = (recommended == t[:, None]).astype(np.float64)
    m_rec = np.take_along_axis(1.0 - r, recommended, axis=1)
    resid = follow * (good[:, None] - m_rec)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), t] = 1.0

    def values(W: np.ndarray) -> np.ndarray:
        """Rows' values ``(B, K + 2)`` for multiplicities ``W`` ``(B, n)``."""
        c = point_c if censoring_plan is None else censoring_plan.weights(W)
        if fixed_e is not None:
            e = fixed_e
        elif features is not None:
            e = _softmax_fit(features, t, k, W, _RIDGE, _CLIP)[:, t, np.arange(n)]
        else:
            shares = (W @ onehot) / W.sum(axis=1, keepdims=True)
            e = shares[:, t]
            # A patient in no resample may belong to an arm absent from it; their weight is 0.
            e = np.where(e > 0.0, e, 1.0)
        out = np.empty((W.shape[0], k + 2))
        out[:, : k + 1] = _aipw(follow, m_rec, resid, W, c, e)
        wc = W * c
        total = wc.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k + 1] = np.where(total > 0.0, (wc @ good) / np.where(total > 0.0, total, 1.0), np.nan)
        return out

    point = values(np.ones((1, n)))[0]
    rng = np.random.default_rng(int(seed))
    per_resample = 2 * n * max(k * k, 1 if features is None else features.shape[1] + 1)
    chunk = max(1, min(b, _CHUNK_ENTRIES // per_resample))
    boot = np.empty((b, k + 2))
    for start in range(0, b, chunk):
        stop = min(b, start + chunk)
        boot[start:stop] = values(_bootstrap_counts(rng, n, stop - start))

    alpha = (1.0 - lvl) / 2.0
    row_names = [MODEL_POLICY] + [f"everyone: {a}" for a in names] + [OBSERVED]
    followed = [int(f) for f in follow.sum(axis=0)] + [n]
    rows: List[PolicyValue] = []
    for j, name in enumerate(row_names):
        col = boot[:, j]
        col = col[~np.isnan(col)]
        if col.size:
            lo, hi = (float(v) for v in np.quantile(col, [alpha, 1.0 - alpha]))
        else:
            lo = hi = math.nan
        rows.append(PolicyValue(name=name, value=float(point[j]), ci_low=lo, ci_high=hi, n_followed=followed[j]))

    estimator = (
        "doubly robust (AIPW)"
        + (" with inverse-probability-of-censoring weights" if has_censoring else "")
        + ": the model's predicted probability of the good outcome under the policy, averaged "
        "over all patients, plus the self-normalized weighted mean residual of the patients whose "
        "treatment matched the policy; the observed row is the "
        + ("censoring-weighted " if has_censoring else "")
        + "mean good outcome"
    )
    return PolicyTable(
        rows=rows,
        estimator=estimator,
        propensity=propensity_text,
        censoring=censoring_text,
        good_outcome=good_outcome,
        level=lvl,
        n_boot=b,
    )
