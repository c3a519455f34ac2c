"""Evaluation metrics for binary outcome models, in plain numpy.

* :func:`roc_auc` is the rank-based (Mann-Whitney) area under the ROC curve. Scores closer than
  a tolerance count as tied, so round-off in a batched forward pass cannot break ties at
  random, and optional per-example weights (for example censoring weights) make it the
  weighted Mann-Whitney statistic.
* :func:`binary_metrics` adds the cross-entropy loss and the thresholded counts (accuracy,
  precision, recall, F1) that a held-out evaluation reports, weighted when weights are given.
* :func:`choose_threshold` picks the decision threshold on a validation set, so that a model
  whose probabilities are well ranked but all below 0.5 is not reported as predicting nothing.

Tie groups
----------
All three functions group scores the same way: sort them, and start a new group wherever two
neighbours differ by more than ``tol`` (single linkage, so a chain of close values forms one
group even if its ends are further apart than ``tol``). Examples of weight 0 are dropped
before grouping, so they can neither join two groups nor count anywhere else.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .._inputs import finite_vector
from ..errors import DataError, InputTypeError, ParameterError, ShapeError
from ..fl.validation import CRITERION_SLACK, PROBABILITY_CLIP

__all__ = ["roc_auc", "binary_metrics", "choose_threshold", "TIE_TOL", "CRITERIA"]

#: Probabilities are clipped to ``[_EPS, 1 - _EPS]`` before taking logarithms (the federated
#: validation's constant: both compute the same loss).
_EPS = PROBABILITY_CLIP

#: Default absolute tolerance under which two neighbouring sorted scores count as tied.
TIE_TOL = 1e-9

#: Criteria :func:`choose_threshold` can maximize.
CRITERIA = ("f1", "youden")

#: Two criterion values closer than this count as equal when choosing a threshold.
_CRITERION_SLACK = CRITERION_SLACK


def _as_float_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array, or a ParameterError naming ``name``."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must hold only numbers: {exc}") from exc


def _unit_interval(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1], or a ParameterError naming ``name``."""
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a number in [0, 1]; got {value!r}") from exc
    if not 0.0 <= f <= 1.0:
        raise ParameterError(f"{name} must lie in [0, 1]; got {value!r}")
    return f


def _as_vector(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a non-empty, one-dimensional, finite float64 array."""
    return finite_vector(_as_float_array(values, name), name)


def _as_binary(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a one-dimensional float64 array of 0s and 1s."""
    arr = _as_vector(values, name)
    bad = (arr != 0.0) & (arr != 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"{name} must hold only 0 and 1: index {i} is {arr[i]}")
    return arr


def _same_length(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"{a_name} and {b_name} must have the same length; got {a.shape[0]} and {b.shape[0]}")


def _as_probabilities(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a one-dimensional finite float64 array with entries in [0, 1]."""
    arr = _as_vector(values, name)
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ParameterError(f"{name} must hold probabilities in [0, 1]: index {i} is {arr[i]}")
    return arr


def _as_weights(weight: Any, like: np.ndarray, like_name: str, name: str = "weight") -> Optional[np.ndarray]:
    """``None``, or ``weight`` as finite non-negative float64 weights, one per entry of ``like``."""
    if weight is None:
        return None
    w = _as_vector(weight, name)
    _same_length(like, like_name, w, name)
    negative = w < 0.0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise ParameterError(f"{name} must be non-negative: index {i} is {w[i]}")
    return w


def _as_tol(tol: Any, name: str = "tol") -> float:
    """``tol`` as a non-negative finite float."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise InputTypeError(f"{name} must be a real number; got {type(tol).__name__} {tol!r}")
    t = float(tol)
    if not 0.0 <= t < math.inf:
        raise ParameterError(f"{name} must be a non-negative finite number; got {tol!r}")
    return t


def _group_starts(sorted_values: np.ndarray, tol: float) -> np.ndarray:
    """Start index of each tie group of ``sorted_values`` (sorted either way).

    A new group starts wherever two neighbours differ by more than ``tol``.
    """
    gaps = np.abs(np.diff(sorted_values)) > tol
    return np.flatnonzero(np.r_[True, gaps])


def _positive_weights(
    s: np.ndarray, y: np.ndarray, w: Optional[np.ndarray]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and weights of the examples that count (weight > 0); unit weights by default."""
    if w is None:
        return s, y, np.ones(s.size)
    keep = w > 0.0
    return s[keep], y[keep], w[keep]


def roc_auc(
    scores: np.ndarray,
    labels: np.ndarray,
    weight: Optional[np.ndarray] = None,
    *,
    tol: float = TIE_TOL,
) -> float:
    """Area under the ROC curve, by the (weighted) Mann-Whitney formula, robust to round-off.

    Equals the probability that a randomly drawn positive scores higher than a randomly drawn
    negative, counting ties as one half:

    ``AUC = sum_{pos i, neg j} w_i w_j (1[s_i > s_j] + 0.5 * 1[tie]) / (W_pos * W_neg)``

    where ``W_pos`` and ``W_neg`` are the total weights of the two classes. Two scores are tied
    when they fall into one tie group: sorted neighbours that differ by at most ``tol`` belong to
    one group, chained (single linkage). With integer weights the result equals the unweighted
    AUC of the data with each row repeated that many times; a row of weight 0 is the same as
    no row. Runs in ``O(n log n)``.

    Parameters
    ----------
    scores : np.ndarray
        One-dimensional, finite scores; higher means more likely positive.
    labels : np.ndarray
        One-dimensional 0/1 (or boolean) labels of the same length.
    weight : np.ndarray, optional
        One-dimensional, finite, non-negative per-example weights of the same length (for
        example inverse-probability-of-censoring weights). Default: every example weighs 1.
    tol : float, default 1e-9
        Absolute tolerance of the tie groups; ``0`` ties only exactly equal scores.

    Returns
    -------
    float
        The AUC in ``[0, 1]``, or ``nan`` when either class has zero total weight (for example
        when ``labels`` holds only one class).

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from the others.
    ParameterError
        Non-finite scores or weights, labels other than 0 and 1, negative weights, or a
        negative or non-finite ``tol``.
    InputTypeError
        ``tol`` that is not a real number.
    """
    s = _as_vector(scores, "scores")
    y = _as_binary(labels, "labels")
    _same_length(s, "scores", y, "labels")
    w = _as_weights(weight, s, "scores")
    t = _as_tol(tol)
    s, y, w = _positive_weights(s, y, w)
    if s.size == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    starts = _group_starts(s[order], t)
    w_pos = np.add.reduceat(w[order] * y[order], starts)
    w_neg = np.add.reduceat(w[order] * (1.0 - y[order]), starts)
    total_pos = float(w_pos.sum())
    total_neg = float(w_neg.sum())
    if total_pos == 0.0 or total_neg == 0.0:
        return math.nan
    neg_below = np.cumsum(w_neg) - w_neg  # negative weight in strictly lower groups
    u = float(np.sum(w_pos * (neg_below + 0.5 * w_neg)))
    return min(1.0, max(0.0, u / (total_pos * total_neg)))


def binary_metrics(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float = 0.5,
    weight: Optional[np.ndarray] = None,
) -> Dict[str, float]:
    """Loss, thresholded classification metrics and AUC of predicted probabilities.

    With ``weight`` every count becomes a sum of weights (``TP = sum of the weights of the true
    positives``, and so on) and the loss a weighted mean, so censoring weights carry through to
    every number.

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 (or boolean) outcomes.
    p : np.ndarray
        Predicted probabilities ``P(y = 1)`` in ``[0, 1]``, same length as ``y``.
    threshold : float, default 0.5
        A patient is predicted positive when ``p >= threshold``; must lie in ``[0, 1]``
        (see :func:`choose_threshold` to pick it on a validation set).
    weight : np.ndarray, optional
        One-dimensional, finite, non-negative per-example weights of the same length, with a
        positive sum. Default: every example weighs 1.

    Returns
    -------
    dict of str to float
        ``"loss"``: (weighted) mean binary cross-entropy, with ``p`` clipped to
        ``[1e-7, 1 - 1e-7]``;
        ``"accuracy"``: (weighted) share of correct thresholded predictions;
        ``"precision"``: TP / (TP + FP), ``0.0`` when nothing is predicted positive;
        ``"recall"``: TP / (TP + FN), ``0.0`` when ``y`` holds no positive;
        ``"f1"``: harmonic mean of precision and recall, ``0.0`` when both are ``0.0``;
        ``"auc"``: :func:`roc_auc` of ``p`` with the same weights (``nan`` when a class has
        zero total weight).

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from ``y``.
    ParameterError
        Outcomes other than 0 and 1, probabilities outside ``[0, 1]`` or not finite, a
        threshold outside ``[0, 1]``, or weights that are negative, not finite or sum to 0.
    """
    yy = _as_binary(y, "y")
    pp = _as_probabilities(p, "p")
    _same_length(yy, "y", pp, "p")
    t = _unit_interval(threshold, "threshold")
    w = _as_weights(weight, yy, "y")
    ww = np.ones(yy.size) if w is None else w
    total = float(ww.sum())
    if total <= 0.0:
        raise ParameterError("weight must have a positive sum; every weight is 0")

    pc = np.clip(pp, _EPS, 1.0 - _EPS)
    per_example = -(yy * np.log(pc) + (1.0 - yy) * np.log1p(-pc))
    loss = float(np.sum(ww * per_example) / total)

    pred = pp >= t
    pos = yy == 1.0
    tp = float(ww[pred & pos].sum())
    fp = float(ww[pred & ~pos].sum())
    fn = float(ww[~pred & pos].sum())
    tn = float(ww[~pred & ~pos].sum())
    precision = tp / (tp + fp) if tp + fp > 0.0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0.0 else 0.0
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0.0 else 0.0
    return {
        "loss": loss,
        "accuracy": (tp + tn) / total,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": roc_auc(pp, yy, w),
    }


def choose_threshold(
    y: np.ndarray,
    p: np.ndarray,
    weight: Optional[np.ndarray] = None,
    criterion: str = "f1",
    *,
    tol: float = TIE_TOL,
) -> float:
    """The decision threshold that maximizes a criterion on a (validation) set.

    Candidate thresholds are the distinct predicted probabilities, after grouping those closer
    than ``tol`` as in :func:`roc_auc`: each candidate flags (``p >= threshold``) one tie group
    and every group above it, so noise of the order of round-off cannot move the choice. The
    threshold returned is the smallest probability of the chosen group, so
    ``binary_metrics(y, p, threshold)`` reproduces the chosen split on this set exactly.

    Tie-breaking: when several candidates reach the best criterion value (within ``1e-12``), the
    highest threshold wins, i.e. the one that flags the fewest patients.

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 (or boolean) outcomes of the validation set.
    p : np.ndarray
        Predicted probabilities in ``[0, 1]``, same length as ``y``.
    weight : np.ndarray, optional
        One-dimensional, finite, non-negative per-example weights (for example censoring
        weights); the criterion is computed from weighted counts. Rows of weight 0 are ignored.
    criterion : {"f1", "youden"}, default "f1"
        ``"f1"``: ``2 TP / (2 TP + FP + FN)``; ``"youden"``: ``TPR - FPR`` (Youden's J).
    tol : float, default 1e-9
        Absolute tolerance of the tie groups.

    Returns
    -------
    float
        The chosen threshold, one of the predicted probabilities of an example with positive
        weight.

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from ``y``.
    ParameterError
        Outcomes other than 0 and 1, probabilities outside ``[0, 1]`` or not finite, weights
        that are negative or not finite, an unknown ``criterion``, or a negative or non-finite
        ``tol``.
    InputTypeError
        ``criterion`` that is not a string, or ``tol`` that is not a real number.
    DataError
        No positive example of positive weight (and, for ``"youden"``, no such negative
        example): the criterion is then the same at every threshold.
    """
    yy = _as_binary(y, "y")
    pp = _as_probabilities(p, "p")
    _same_length(yy, "y", pp, "p")
    w = _as_weights(weight, yy, "y")
    if not isinstance(criterion, str):
        raise InputTypeError(f"criterion must be a string, one of {list(CRITERIA)}; got {criterion!r}")
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
    t = _as_tol(tol)
    s, lab, ww = _positive_weights(pp, yy, w)
    total_pos = float(np.sum(ww * lab))
    total_neg = float(np.sum(ww * (1.0 - lab)))
    if total_pos == 0.0:
        raise DataError("y holds no positive example of positive weight: every threshold scores the same")
    if criterion == "youden" and total_neg == 0.0:
        raise DataError("y holds no negative example of positive weight: Youden's J is undefined")

    order = np.argsort(-s, kind="mergesort")  # descending
    sd = s[order]
    starts = _group_starts(sd, t)
    ends = np.r_[starts[1:], sd.size] - 1  # last (smallest) probability of each group
    tp = np.cumsum(np.add.reduceat(ww[order] * lab[order], starts))
    fp = np.cumsum(np.add.reduceat(ww[order] * (1.0 - lab[order]), starts))
    if criterion == "f1":
        fn = total_pos - tp
        value = 2.0 * tp / (2.0 * tp + fp + fn)
    else:
        value = tp / total_pos - fp / total_neg
    best = int(np.flatnonzero(value >= value.max() - _CRITERION_SLACK)[0])
    return float(sd[ends[best]])
