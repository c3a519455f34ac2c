"""ROC AUC and thresholded metrics against direct counting."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fhto_native.errors import ParameterError, ShapeError
from fhto_native.fl.metrics import binary_metrics, roc_auc


def brute_force_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(positive scores above negative), ties counting one half, over every pair."""
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_pairwise_count_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.integers(0, 2, n)
    # Few distinct values so that ties occur within and across classes.
    scores = rng.integers(0, 7, n) + 0.8 * labels * rng.random(n).round(1)
    assert len(np.unique(scores)) < n
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_roc_auc_matches_pairwise_count_continuous():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(size=500) + labels
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_roc_auc_perfect_inverted_and_constant():
    labels = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.7])
    assert roc_auc(scores, labels) == 1.0
    assert roc_auc(-scores, labels) == 0.0
    assert roc_auc(np.full(6, 0.4), labels) == 0.5


def test_roc_auc_accepts_booleans_and_is_nan_for_one_class():
    scores = np.array([0.3, 0.1, 0.5])
    assert roc_auc(scores, np.array([True, False, True])) == 1.0
    assert math.isnan(roc_auc(scores, np.ones(3)))
    assert math.isnan(roc_auc(scores, np.zeros(3)))


def test_binary_metrics_on_counted_case():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.5, 0.1, 0.8, 0.3, 0.05])
    pred = p >= 0.5
    tp = sum(1 for yi, qi in zip(y, pred) if yi == 1 and qi)
    fp = sum(1 for yi, qi in zip(y, pred) if yi == 0 and qi)
    fn = sum(1 for yi, qi in zip(y, pred) if yi == 1 and not qi)
    tn = len(y) - tp - fp - fn
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    out = binary_metrics(y, p)
    assert set(out) == {"loss", "accuracy", "precision", "recall", "f1", "auc"}
    assert out["accuracy"] == pytest.approx((tp + tn) / len(y))
    assert out["precision"] == pytest.approx(precision)
    assert out["recall"] == pytest.approx(recall)
    assert out["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert out["auc"] == pytest.approx(brute_force_auc(p, y))
    expected_loss = -np.mean([math.log(q) if yi == 1 else math.log(1 - q) for yi, q in zip(y, p)])
    assert out["loss"] == pytest.approx(expected_loss, rel=1e-12)


def test_binary_metrics_threshold_moves_the_counts():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.35, 0.3, 0.6, 0.1])
    low = binary_metrics(y, p, threshold=0.3)  # predicts 0.35, 0.3 and 0.6 positive
    assert low["precision"] == pytest.approx(2 / 3)
    assert low["recall"] == 1.0
    assert low["accuracy"] == pytest.approx(3 / 4)
    high = binary_metrics(y, p, threshold=0.5)
    assert high["precision"] == 1.0 and high["recall"] == pytest.approx(1 / 2)


def test_bce_matches_numpy_formula_with_clipping():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000).astype(float)
    p = rng.random(1000)
    p[:5] = [0.0, 1.0, 0.0, 1.0, 1e-12]
    q = np.clip(p, 1e-7, 1 - 1e-7)
    expected = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    assert binary_metrics(y, p)["loss"] == pytest.approx(expected, rel=1e-10)
    assert np.isfinite(binary_metrics(np.array([1, 0]), np.array([0.0, 1.0]))["loss"])


def test_undefined_precision_recall_f1_are_zero():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4])  # nothing predicted positive
    out = binary_metrics(y, p)
    assert out["precision"] == 0.0 and out["recall"] == 0.0 and out["f1"] == 0.0
    out = binary_metrics(np.zeros(3), np.array([0.9, 0.1, 0.2]))  # no positives at all
    assert out["recall"] == 0.0 and out["precision"] == 0.0 and out["f1"] == 0.0
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert math.isnan(out["auc"])


def test_length_and_shape_errors():
    with pytest.raises(ShapeError, match="same length"):
        roc_auc(np.zeros(3), np.array([0, 1]))
    with pytest.raises(ShapeError, match="same length"):
        binary_metrics(np.array([0, 1, 1]), np.array([0.2, 0.4]))
    with pytest.raises(ShapeError, match="one-dimensional"):
        roc_auc(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="empty"):
        binary_metrics(np.array([]), np.array([]))


def test_value_errors():
    with pytest.raises(ParameterError, match="only 0 and 1: index 1 is 2"):
        roc_auc(np.zeros(3), np.array([0, 2, 1]))
    with pytest.raises(ParameterError, match="finite"):
        roc_auc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ParameterError, match=r"probabilities in \[0, 1\]"):
        binary_metrics(np.array([0, 1]), np.array([0.5, 1.5]))
    with pytest.raises(ParameterError, match="threshold"):
        binary_metrics(np.array([0, 1]), np.array([0.5, 0.5]), threshold=2.0)
    with pytest.raises(ValueError):  # ParameterError is a ValueError
        binary_metrics(np.array([0, 1]), np.array([0.5, -0.1]))
