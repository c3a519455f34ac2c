"""Evaluation metrics for binary outcome models, in plain numpy.

:func:`roc_auc` is the rank-based (Mann-Whitney) area under the ROC curve with tied scores
averaged; :func:`binary_metrics` adds the cross-entropy loss and the thresholded counts
(accuracy, precision, recall, F1) that a held-out evaluation reports.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from ..errors import ParameterError, ShapeError

__all__ = ["roc_auc", "binary_metrics"]

#: Probabilities are clipped to ``[_EPS, 1 - _EPS]`` before taking logarithms.
_EPS = 1e-7


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
    arr = _as_float_array(values, name)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise ShapeError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"{name} must be finite: index {i} is {arr[i]}")
    return arr


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


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` in ascending order, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Start index of each run of equal values, and one past its end.
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    group_rank = (starts + ends + 1) / 2.0  # mean of the ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve, by the rank (Mann-Whitney U) formula.

    Equals the probability that a randomly drawn positive scores higher than a randomly drawn
    negative, counting ties as one half.

    Parameters
    ----------
    scores : np.ndarray
        One-dimensional, finite scores; higher means more likely positive.
    labels : np.ndarray
        One-dimensional 0/1 (or boolean) labels of the same length.

    Returns
    -------
    float
        The AUC in ``[0, 1]``, or ``nan`` when ``labels`` holds only one class.

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from the other.
    ParameterError
        Non-finite scores, or labels other than 0 and 1.
    """
    s = _as_vector(scores, "scores")
    y = _as_binary(labels, "labels")
    _same_length(s, "scores", y, "labels")
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    if n_pos == 0.0 or n_neg == 0.0:
        return math.nan
    rank_sum = float(_average_ranks(s)[y == 1.0].sum())
    u = rank_sum - n_pos * (n_pos + 1.0) / 2.0
    return u / (n_pos * n_neg)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> Dict[str, float]:
    """Loss, thresholded classification metrics and AUC of predicted probabilities.

    Parameters
    ----------
    y : np.ndarray
        One-dimensional 0/1 (or boolean) outcomes.
    p : np.ndarray
        Predicted probabilities ``P(y = 1)`` in ``[0, 1]``, same length as ``y``.
    threshold : float, default 0.5
        A patient is predicted positive when ``p >= threshold``; must lie in ``[0, 1]``.

    Returns
    -------
    dict of str to float
        ``"loss"``: mean binary cross-entropy, with ``p`` clipped to ``[1e-7, 1 - 1e-7]``;
        ``"accuracy"``: share of correct thresholded predictions;
        ``"precision"``: TP / (TP + FP), ``0.0`` when nothing is predicted positive;
        ``"recall"``: TP / (TP + FN), ``0.0`` when ``y`` holds no positive;
        ``"f1"``: harmonic mean of precision and recall, ``0.0`` when both are ``0.0``;
        ``"auc"``: :func:`roc_auc` of ``p`` (``nan`` when ``y`` holds one class only).

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from the other.
    ParameterError
        Outcomes other than 0 and 1, probabilities outside ``[0, 1]`` or not finite, or a
        threshold outside ``[0, 1]``.
    """
    yy = _as_binary(y, "y")
    pp = _as_vector(p, "p")
    _same_length(yy, "y", pp, "p")
    outside = (pp < 0.0) | (pp > 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ParameterError(f"p must hold probabilities in [0, 1]: index {i} is {pp[i]}")
    t = _unit_interval(threshold, "threshold")

    pc = np.clip(pp, _EPS, 1.0 - _EPS)
    loss = float(-np.mean(yy * np.log(pc) + (1.0 - yy) * np.log1p(-pc)))

    pred = pp >= t
    pos = yy == 1.0
    tp = int(np.count_nonzero(pred & pos))
    fp = int(np.count_nonzero(pred & ~pos))
    fn = int(np.count_nonzero(~pred & pos))
    tn = int(yy.size) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0.0 else 0.0
    return {
        "loss": loss,
        "accuracy": (tp + tn) / yy.size,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": roc_auc(pp, yy),
    }
