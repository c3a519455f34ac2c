"""Federated validation: global metrics from summed sufficient statistics, in plain numpy.

When the server holds no patients, each hospital scores the global model on its own validation
split and turns the scores into one fixed-length float64 vector (:func:`validation_statistics`).
The vectors are summed under encryption like any model update; the key holder decrypts only the
sum and computes the global metrics from it (:func:`metrics_from_statistics`). No score, label or
weight of a single patient leaves its hospital, only histograms of them.

The vector (length :func:`statistics_length`, ``4 + 2 * bins``)
-----------------------------------------------------------------
====================  ==========================================================================
index                 entry (every sum over rows: ``w`` weight, ``y`` label, ``p`` probability)
====================  ==========================================================================
0                     ``sum w``: the total weight
1                     ``sum w * y``: the weight of the positives
2                     ``sum w * loss / LOSS_SCALE``: the binary cross-entropy with ``p`` clipped to
                      ``[1e-7, 1 - 1e-7]`` (as :func:`fhto_native.study.metrics.binary_metrics`),
                      divided by the largest per-row value, ``LOSS_SCALE`` ~ ``-log(1e-7)`` = 16.12
3                     the number of rows, those of weight 0 included
4 ... 4 + bins - 1    weight of the negatives (``y = 0``) whose ``p`` falls in bin ``k``
4 + bins ... end      weight of the positives (``y = 1``) whose ``p`` falls in bin ``k``
====================  ==========================================================================

Bin ``k`` holds ``edges[k] <= p < edges[k + 1]`` with ``edges = arange(bins + 1) / bins``; the
last bin also holds ``p = 1``. So ``p >= edges[k]`` exactly when ``p`` lies in bin ``k`` or above,
and a threshold on a bin edge splits the rows exactly as it splits the raw scores.

Every entry is non-negative and at most ``max(total weight, row count)`` (up to round-off): the
loss is stored scaled for that reason, since an unscaled loss sum can reach 16 times the total
weight and the vector must stay inside the encryption range (``KeySet.max_abs_value``).

How close the binned metrics are
--------------------------------
The loss, the weights and the count are plain sums (exact up to float64 round-off). The AUC
differs from the exact (Mann-Whitney) AUC only through positive/negative pairs in the same bin,
which the histograms count as tied (one half): :func:`auc_error_bound` bounds the difference from
the summed vector itself. Thresholds can only fall on bin edges; at an edge, accuracy, precision,
recall and F1 equal those of the raw scores.

The default of 2046 bins makes the vector 4096 long, one ciphertext of the aggregation and compact
presets. On logistic-model scores of the colon and GBSG2 validation halves (about 400 rows each)
the AUC is then within 2.3e-4 of the exact value and :func:`auc_error_bound` below 5e-4; the
bound shrinks about as ``1 / bins`` (1e-3 needs some 1000 bins on these data).

The functions here mirror :mod:`fhto_native.study.metrics` (clipping, tie-breaking of the
threshold rules, the 0.0 and NaN conventions) without importing it: the study builds on this
package, not the other way round. The tests hold the two to the same numbers.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import numpy as np

from .._inputs import finite_vector
from ..errors import InputTypeError, ParameterError, ShapeError

__all__ = [
    "DEFAULT_BINS",
    "LOSS_SCALE",
    "THRESHOLD_RULES",
    "FederatedMetrics",
    "statistics_length",
    "validation_statistics",
    "metrics_from_statistics",
    "auc_error_bound",
]

#: Bins of the score histograms: ``statistics_length(2046) == 4096``, exactly one ciphertext of
#: the aggregation and compact presets (4096 values each).
DEFAULT_BINS = 2046

#: Rules :func:`metrics_from_statistics` can choose a threshold by (as ``choose_threshold``).
THRESHOLD_RULES = ("youden", "f1")

#: Probabilities are clipped to ``[PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]`` before taking
#: logarithms (study.metrics uses this same constant, so federated and central losses agree).
PROBABILITY_CLIP = 1e-7

#: The largest per-row loss after clipping, 16.118: that of a negative scored 1, a hair above the
#: ``-log(1e-7)`` of a positive scored 0 since ``1 - (1 - 1e-7)`` rounds to just below 1e-7. The
#: stored loss sum is divided by it.
LOSS_SCALE = max(float(-np.log(PROBABILITY_CLIP)), float(-np.log1p(-(1.0 - PROBABILITY_CLIP))))

#: Two criterion values closer than this count as equal when choosing a threshold (study.metrics
#: uses this same constant).
CRITERION_SLACK = 1e-12

#: Relative round-off allowed between sums of the same rows added in different orders.
_ROUNDOFF = 1e-9

# Positions in the vector.
_WEIGHT, _POSITIVES, _LOSS, _COUNT, _HEADER = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class FederatedMetrics:
    """Global validation metrics computed from a summed statistics vector.

    Every count is a sum of weights, as in :func:`fhto_native.study.metrics.binary_metrics`.

    Attributes
    ----------
    loss : float
        Weighted mean binary cross-entropy (``nan`` when the total weight is 0).
    auc : float
        AUC from the histograms, pairs in one bin counting one half (``nan`` when a class has
        zero weight); see :func:`auc_error_bound`.
    accuracy, precision, recall, f1 : float
        At ``threshold`` (a row is predicted positive when ``p >= threshold``). Precision,
        recall and F1 are 0.0 where ``binary_metrics`` gives 0.0; all four are ``nan`` when the
        total weight is 0 or the threshold rule is undefined (see ``threshold``).
    threshold : float
        The threshold used: a bin edge. ``nan`` when a rule was asked for and is undefined: no
        positive weight, or (Youden's J) no negative weight.
    weight : float
        Total weight of the rows.
    positives : float
        Weight of the positive rows.
    count : int
        Number of rows, those of weight 0 included.
    """

    loss: float
    auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    threshold: float
    weight: float
    positives: float
    count: int


# -- input checks ------------------------------------------------------------------------


def _as_bins(bins: Any) -> int:
    if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, (int, np.integer)):
        raise InputTypeError(f"bins must be an int; got {type(bins).__name__} {bins!r}")
    if bins < 2:
        raise ParameterError(f"bins must be at least 2; got {bins}")
    return int(bins)


def _as_noise(noise: Any) -> float:
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real):
        raise InputTypeError(f"noise must be a real number; got {type(noise).__name__} {noise!r}")
    value = float(noise)
    if not 0.0 <= value < math.inf:
        raise ParameterError(f"noise must be a non-negative finite number; got {noise!r}")
    return value


def _as_vector(values: Any, name: str) -> np.ndarray:
    """``values`` as a non-empty, one-dimensional, finite float64 array."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return finite_vector(np.ascontiguousarray(arr, dtype=np.float64), name)


def _first_bad(arr: np.ndarray, bad: np.ndarray, message: str) -> None:
    """Raise ``ParameterError(message + index and value)`` at the first True of ``bad``."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"{message}: index {i} is {arr[i]}")


def _same_length(arr: np.ndarray, name: str, n: int) -> None:
    if arr.size != n:
        raise ShapeError(f"probabilities and {name} must have the same length; got {n} and {arr.size}")


def _edges(bins: int) -> np.ndarray:
    """The ``bins + 1`` bin edges ``k / bins``, correctly rounded (so ``k / bins`` typed by a
    user is the same float)."""
    return np.arange(bins + 1, dtype=np.float64) / bins


# -- the statistics a hospital sends -----------------------------------------------------


def statistics_length(bins: int = DEFAULT_BINS) -> int:
    """Length of the statistics vector for ``bins`` histogram bins: ``4 + 2 * bins``.

    Raises
    ------
    InputTypeError
        ``bins`` that is not an int.
    ParameterError
        ``bins`` below 2.
    """
    return _HEADER + 2 * _as_bins(bins)


def validation_statistics(
    probabilities: Any,
    labels: Any,
    weights: Any = None,
    *,
    bins: int = DEFAULT_BINS,
) -> np.ndarray:
    """One hospital's sufficient statistics of its validation split, to be summed across hospitals.

    Parameters
    ----------
    probabilities : array_like
        One-dimensional predicted probabilities ``P(y = 1)`` in ``[0, 1]``.
    labels : array_like
        One-dimensional outcomes, 0 or 1 (booleans too), same length.
    weights : array_like, optional
        One-dimensional, finite, non-negative weights (the study's censoring weights), same
        length. Default: every row weighs 1. Rows of weight 0 add to the row count only.
    bins : int, default DEFAULT_BINS
        Equal-width histogram bins on ``[0, 1]``; every hospital must use the same number.

    Returns
    -------
    np.ndarray
        The float64 vector of length ``statistics_length(bins)`` laid out as the module
        docstring describes: non-negative, and no entry above ``max(total weight, row count)``.

    Raises
    ------
    ShapeError
        An input that is not one-dimensional, is empty, or whose length differs from
        ``probabilities``.
    ParameterError
        Probabilities outside ``[0, 1]`` or not finite, labels other than 0 and 1, weights that
        are negative or not finite, or ``bins`` below 2.
    InputTypeError
        An input that does not hold real numbers, or ``bins`` that is not an int.
    """
    nbins = _as_bins(bins)
    p = _as_vector(probabilities, "probabilities")
    _first_bad(p, (p < 0.0) | (p > 1.0), "probabilities must lie in [0, 1]")
    y = _as_vector(labels, "labels")
    _same_length(y, "labels", p.size)
    _first_bad(y, (y != 0.0) & (y != 1.0), "labels must be 0 or 1")
    if weights is None:
        w = np.ones(p.size)
    else:
        w = _as_vector(weights, "weights")
        _same_length(w, "weights", p.size)
        _first_bad(w, w < 0.0, "weights must be non-negative")

    clipped = np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    loss = -(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped))
    # At most 1 per row (the minimum guards the last bit), so the entry stays <= sum w.
    scaled_loss = np.minimum(loss / LOSS_SCALE, 1.0)
    index = np.minimum(np.searchsorted(_edges(nbins), p, side="right") - 1, nbins - 1)
    positive = w * y
    out = np.empty(_HEADER + 2 * nbins)
    out[_WEIGHT] = w.sum()
    out[_POSITIVES] = positive.sum()
    out[_LOSS] = np.sum(w * scaled_loss)
    out[_COUNT] = p.size
    out[_HEADER : _HEADER + nbins] = np.bincount(index, weights=w - positive, minlength=nbins)
    out[_HEADER + nbins :] = np.bincount(index, weights=positive, minlength=nbins)
    return out


# -- reading the decrypted sum -----------------------------------------------------------


def _histograms(summed: Any, bins: int, noise: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a summed vector; return (header, negative histogram, positive histogram).

    Entries in ``[-noise, 0)`` (decryption noise) become 0; anything more negative, or a vector
    whose parts disagree by more than noise and round-off, is refused.
    """
    v = _as_vector(summed, "summed")
    expected = _HEADER + 2 * bins
    if v.size != expected:
        hint = ""
        if v.size > _HEADER and (v.size - _HEADER) % 2 == 0:
            hint = f" (a vector of {v.size} entries was made with bins={(v.size - _HEADER) // 2})"
        raise ShapeError(f"summed must have statistics_length({bins}) = {expected} entries; got {v.size}{hint}")
    _first_bad(
        v,
        v < -noise,
        f"summed must hold no negative entries beyond noise={noise:g} (they are weights and counts; "
        "for a decrypted sum pass noise=KeySet.error_bound(parties, max_abs=...))",
    )
    v = np.maximum(v, 0.0)
    header, neg, pos = v[:_HEADER], v[_HEADER : _HEADER + bins], v[_HEADER + bins :]
    weight, positives, count = header[_WEIGHT], header[_POSITIVES], header[_COUNT]
    slack = _floor(noise, bins) + _ROUNDOFF * max(1.0, weight)
    if count < 1.0 - noise or abs(count - round(count)) > noise + _ROUNDOFF * count:
        raise ParameterError(f"summed must count a whole number of rows, at least 1; entry {_COUNT} is {count}")
    checks = (
        (positives, weight, "the positive weight (entry 1) exceeds the total weight (entry 0)"),
        (header[_LOSS], weight, "the scaled loss sum (entry 2) exceeds the total weight (entry 0)"),
    )
    for value, limit, what in checks:
        if value > limit + slack:
            raise ParameterError(f"summed is not a sum of validation statistics: {what}: {value} > {limit}")
    for total, entry, name in ((pos.sum(), positives, "positive"), (neg.sum(), weight - positives, "negative")):
        if abs(total - entry) > slack:
            raise ParameterError(
                f"summed is not a sum of validation statistics: the {name} histogram sums to {total}, "
                f"the header to {entry} (were the statistics made with bins={bins}?)"
            )
    return header, neg, pos


def _floor(noise: float, bins: int) -> float:
    """The most that decryption noise alone can add to a histogram's total: a class whose total
    weight is not above it counts as absent (with ``noise = 0``, a class of zero weight)."""
    return noise * (bins + 1)


def _rule_index(neg: np.ndarray, pos: np.ndarray, rule: str, noise: float) -> Optional[int]:
    """The bin whose lower edge ``rule`` picks, as ``choose_threshold`` would; None if undefined.

    Candidates are the bins holding weight (beyond decryption noise), each flagging itself and
    every bin above it; the highest of the best (within the slack) wins.
    """
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    floor = _floor(noise, pos.size)
    if total_pos <= floor or (rule == "youden" and total_neg <= floor):
        return None
    candidates = np.flatnonzero(neg + pos > 2.0 * noise)[::-1]  # descending
    if candidates.size == 0:
        return None
    tp = np.cumsum(pos[::-1])[::-1][candidates]  # weight of the positives in bins >= k
    fp = np.cumsum(neg[::-1])[::-1][candidates]
    if rule == "f1":
        value = 2.0 * tp / (2.0 * tp + fp + (total_pos - tp))
    else:
        value = tp / total_pos - fp / total_neg
    best = int(np.flatnonzero(value >= value.max() - CRITERION_SLACK)[0])
    return int(candidates[best])


def _threshold_index(threshold: Any, bins: int) -> Union[str, int]:
    """A rule name, or the bin whose lower edge is the given threshold."""
    if isinstance(threshold, str):
        if threshold not in THRESHOLD_RULES:
            raise ParameterError(f"threshold must be one of {list(THRESHOLD_RULES)} or a number; got {threshold!r}")
        return threshold
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        kind = type(threshold).__name__
        raise InputTypeError(f"threshold must be one of {list(THRESHOLD_RULES)} or a number; got {kind} {threshold!r}")
    t = float(threshold)
    if not 0.0 <= t < 1.0:
        raise ParameterError(f"threshold must lie in [0, 1) (a bin edge below 1); got {threshold!r}")
    k = int(round(t * bins))
    edges = _edges(bins)
    if edges[k] != t:
        low = min(int(math.floor(t * bins)), bins - 1)
        raise ParameterError(
            f"threshold {threshold!r} is not a bin edge: the histograms of {bins} bins can split the "
            f"scores only at k / {bins} (nearest: {float(edges[low])!r} or {float(edges[low + 1])!r})"
        )
    return k


def metrics_from_statistics(
    summed: Any,
    *,
    bins: int = DEFAULT_BINS,
    threshold: Union[str, float] = "youden",
    noise: float = 0.0,
) -> FederatedMetrics:
    """Global validation metrics from the sum of every hospital's :func:`validation_statistics`.

    Parameters
    ----------
    summed : array_like
        The (decrypted) sum of the hospitals' statistics vectors.
    bins : int, default DEFAULT_BINS
        The ``bins`` the hospitals used.
    threshold : {"youden", "f1"} or float, default "youden"
        ``"youden"`` or ``"f1"``: choose the threshold among the bin edges that maximizes
        Youden's J (``TPR - FPR``) or F1, as :func:`fhto_native.study.metrics.choose_threshold`
        does on raw scores: candidates are the lower edges of the bins holding weight, and of
        equally good ones the highest wins. A float: use it; it must be a bin edge ``k / bins``
        below 1 (the histograms cannot split a bin).
    noise : float, default 0.0
        Largest absolute error of an entry, for a sum decrypted from CKKS ciphertexts (pass
        ``KeySet.error_bound(parties, max_abs=...)``). Negative entries down to ``-noise`` are
        read as 0, and the consistency checks allow for it. 0 for a plaintext sum.

    Returns
    -------
    FederatedMetrics
        Loss and AUC, and accuracy, precision, recall and F1 at the threshold.

    Raises
    ------
    ShapeError
        ``summed`` that is not one-dimensional or not ``statistics_length(bins)`` long.
    ParameterError
        ``summed`` with non-finite or negative entries (beyond ``noise``), a row count that is
        not a whole number of at least 1, or parts that disagree (a histogram total that is not
        the weight in the header, e.g. from another ``bins``); ``bins`` below 2; an unknown rule
        or a threshold that is not a bin edge in ``[0, 1)``; a negative or infinite ``noise``.
    InputTypeError
        ``summed`` not holding real numbers, ``bins`` not an int, ``threshold`` neither a string
        nor a number, ``noise`` not a number.
    """
    nbins = _as_bins(bins)
    eps = _as_noise(noise)
    chosen = _threshold_index(threshold, nbins)
    header, neg, pos = _histograms(summed, nbins, eps)
    weight, positives = float(header[_WEIGHT]), float(header[_POSITIVES])
    count = int(round(header[_COUNT]))
    nan = math.nan
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    floor = _floor(eps, nbins)
    if weight <= eps or total_pos + total_neg <= floor:
        return FederatedMetrics(nan, nan, nan, nan, nan, nan, nan, weight, positives, count)

    loss = float(header[_LOSS]) * LOSS_SCALE / weight
    auc = nan
    if total_pos > floor and total_neg > floor:
        neg_below = np.cumsum(neg) - neg  # negative weight in strictly lower bins
        u = float(np.sum(pos * (neg_below + 0.5 * neg)))
        auc = min(1.0, max(0.0, u / (total_pos * total_neg)))

    k = _rule_index(neg, pos, chosen, eps) if isinstance(chosen, str) else chosen
    if k is None:
        return FederatedMetrics(loss, auc, nan, nan, nan, nan, nan, weight, positives, count)
    tp, fp = float(pos[k:].sum()), float(neg[k:].sum())
    fn, tn = total_pos - tp, total_neg - fp
    precision = tp / (tp + fp) if tp + fp > 0.0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0.0 else 0.0
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0.0 else 0.0
    accuracy = (tp + tn) / (total_pos + total_neg)
    return FederatedMetrics(
        loss, auc, accuracy, precision, recall, f1, float(_edges(nbins)[k]), weight, positives, count
    )


def auc_error_bound(summed: Any, bins: int = DEFAULT_BINS, *, noise: float = 0.0) -> float:
    """Largest possible ``|AUC from the histograms - exact AUC|`` of the rows behind ``summed``.

    Only positive/negative pairs in the same bin can be ordered differently by the histograms
    (which count them one half) and by the raw scores (1, 0 or, tied, one half); pairs in
    different bins are ordered alike. So the difference is at most
    ``0.5 * sum_k P_k N_k / (P N)``, with ``P_k`` and ``N_k`` the positive and negative weight in
    bin ``k`` and ``P``, ``N`` their totals.

    Parameters
    ----------
    summed : array_like
        The summed statistics vector, as for :func:`metrics_from_statistics`.
    bins : int, default DEFAULT_BINS
        The ``bins`` the hospitals used.
    noise : float, default 0.0
        As for :func:`metrics_from_statistics`. The bound is that of the histograms as read;
        it does not add the effect of the decryption noise itself.

    Returns
    -------
    float
        The bound, in ``[0, 0.5]``; ``nan`` when the AUC is undefined (a class of zero weight).

    Raises
    ------
    ShapeError, ParameterError, InputTypeError
        As :func:`metrics_from_statistics` (for ``summed``, ``bins`` and ``noise``).

    Notes
    -----
    "Exact" is the weighted Mann-Whitney AUC with ties between equal scores
    (``study.metrics.roc_auc(..., tol=0)``). ``roc_auc``'s default also ties scores within
    ``1e-9`` of each other (chained); that differs only for a tie group that straddles a bin
    edge, which needs scores within about ``count * 1e-9`` of an edge.
    """
    nbins = _as_bins(bins)
    eps = _as_noise(noise)
    _, neg, pos = _histograms(summed, nbins, eps)
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    floor = _floor(eps, nbins)
    if total_pos <= floor or total_neg <= floor:
        return math.nan
    return min(0.5, 0.5 * float(np.sum(pos * neg)) / (total_pos * total_neg))
