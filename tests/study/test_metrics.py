"""ROC AUC, thresholded metrics and threshold choice against direct counting."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fhto_native.errors import DataError, InputTypeError, ParameterError, ShapeError
from fhto_native.study.metrics import binary_metrics, choose_threshold, roc_auc


def brute_force_auc(scores: np.ndarray, labels: np.ndarray, weight=None) -> float:
    """Weighted P(positive scores above negative), exact ties counting one half, over every pair."""
    w = np.ones(len(scores)) if weight is None else np.asarray(weight, dtype=float)
    pos, neg = labels == 1, labels == 0
    diff = scores[pos][:, None] - scores[neg][None, :]
    pair_w = w[pos][:, None] * w[neg][None, :]
    return float((pair_w * ((diff > 0) + 0.5 * (diff == 0))).sum() / pair_w.sum())


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


# --- tie tolerance -------------------------------------------------------------------------


def tied_draw(seed: int, n: int = 300):
    """Scores on a coarse grid (many exact ties within and across classes) and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = (rng.integers(0, 12, n) + 3 * labels * rng.integers(0, 2, n)) / 16.0
    return rng, scores, labels


def test_roc_auc_never_moves_under_1e_12_noise():
    changed_without_tol = 0
    for seed in range(100):
        rng, scores, labels = tied_draw(seed)
        noisy = scores + rng.uniform(-1e-12, 1e-12, scores.size)
        exact = roc_auc(scores, labels)
        assert exact == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
        assert roc_auc(noisy, labels) == exact
        changed_without_tol += roc_auc(noisy, labels, tol=0.0) != exact
    # The same noise does break ties when they are compared exactly: the tolerance is what holds.
    assert changed_without_tol > 90


def test_roc_auc_identical_patients_from_a_batched_forward_pass():
    # Two identical patients, one positive and one negative, predicted one ulp (5.6e-17) apart.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([np.nextafter(0.3, 1.0), 0.3, 0.9, 0.1])
    assert scores[0] != scores[1] and scores[0] - scores[1] < 6e-17
    # Pairs (positive, negative): the identical pair ties (1/2); the other three are ordered.
    assert roc_auc(scores, labels) == 3.5 / 4
    assert roc_auc(scores[[1, 0, 2, 3]], labels) == 3.5 / 4  # which one got the extra ulp does not matter
    assert roc_auc(scores, labels, tol=0.0) == 1.0
    assert roc_auc(scores[[1, 0, 2, 3]], labels, tol=0.0) == 0.75


def test_roc_auc_tie_groups_chain():
    # Neighbours 0.6e-9 apart chain into one group although the ends are 1.2e-9 apart.
    scores = np.array([0.0, 0.6e-9, 1.2e-9])
    labels = np.array([0, 0, 1])
    assert roc_auc(scores, labels) == 0.5
    assert roc_auc(scores, labels, tol=0.5e-9) == 1.0
    assert roc_auc(scores, labels, tol=0.0) == 1.0


# --- weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_weighted_roc_auc_matches_pairwise_count(seed):
    rng, scores, labels = tied_draw(seed, n=200)
    weight = rng.exponential(1.0, scores.size)
    weight[rng.random(scores.size) < 0.2] = 0.0
    assert roc_auc(scores, labels, weight) == pytest.approx(brute_force_auc(scores, labels, weight), abs=1e-12)
    continuous = rng.normal(size=scores.size) + labels
    assert roc_auc(continuous, labels, weight) == pytest.approx(
        brute_force_auc(continuous, labels, weight), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(6))
def test_integer_weights_equal_repeated_rows(seed):
    rng, scores, labels = tied_draw(seed, n=150)
    weight = rng.integers(0, 5, scores.size)
    weight[:2] = [1, 1]
    rep_s, rep_y = np.repeat(scores, weight), np.repeat(labels, weight)
    assert roc_auc(scores, labels, weight) == pytest.approx(roc_auc(rep_s, rep_y), abs=1e-14)
    p = np.clip(scores, 0.0, 1.0)
    weighted = binary_metrics(labels, p, threshold=0.4, weight=weight)
    repeated = binary_metrics(rep_y, np.repeat(p, weight), threshold=0.4)
    assert set(weighted) == set(repeated)
    for key in weighted:
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-12, abs=1e-14), key
    # Unit weights are the unweighted metrics.
    plain = binary_metrics(labels, p, threshold=0.4)
    unit = binary_metrics(labels, p, threshold=0.4, weight=np.ones(p.size))
    for key in plain:
        assert unit[key] == pytest.approx(plain[key], rel=1e-12, abs=1e-14), key


def test_zero_weight_equals_dropping_the_row():
    rng, scores, labels = tied_draw(3, n=120)
    weight = rng.exponential(1.0, scores.size)
    drop = rng.random(scores.size) < 0.3
    drop[:2] = False
    weight[drop] = 0.0
    keep = ~drop
    assert roc_auc(scores, labels, weight) == pytest.approx(roc_auc(scores[keep], labels[keep], weight[keep]), abs=1e-14)
    p = np.clip(scores, 0.0, 1.0)
    full = binary_metrics(labels, p, threshold=0.3, weight=weight)
    kept = binary_metrics(labels[keep], p[keep], threshold=0.3, weight=weight[keep])
    for key in full:
        assert full[key] == pytest.approx(kept[key], rel=1e-12, abs=1e-14), key


def test_zero_weight_row_does_not_chain_tie_groups():
    # With the middle row counted, the three scores would chain into one tie group (AUC 0.5).
    scores = np.array([0.0, 0.8e-9, 1.6e-9])
    labels = np.array([0, 1, 1])
    assert roc_auc(scores, labels) == 0.5
    assert roc_auc(scores, labels, weight=np.array([1.0, 0.0, 1.0])) == 1.0


def test_weighted_auc_is_nan_when_a_class_weighs_nothing():
    scores = np.array([0.2, 0.4, 0.6, 0.8])
    labels = np.array([0, 1, 0, 1])
    assert math.isnan(roc_auc(scores, labels, weight=np.array([1.0, 0.0, 2.0, 0.0])))
    assert math.isnan(roc_auc(scores, labels, weight=np.array([0.0, 1.0, 0.0, 1.0])))
    assert math.isnan(roc_auc(scores, labels, weight=np.zeros(4)))
    assert math.isnan(binary_metrics(labels, scores, weight=np.array([1.0, 0.0, 2.0, 0.0]))["auc"])


def test_binary_metrics_weighted_counts_by_hand():
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.7, 0.1, 0.6])
    w = np.array([2.0, 1.0, 0.5, 3.0, 1.5])
    tp, fn, fp, tn = 2.0 + 1.5, 1.0, 0.5, 3.0
    out = binary_metrics(y, p, weight=w)
    assert out["accuracy"] == pytest.approx((tp + tn) / w.sum())
    assert out["precision"] == pytest.approx(tp / (tp + fp))
    assert out["recall"] == pytest.approx(tp / (tp + fn))
    assert out["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    per_example = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert out["loss"] == pytest.approx(float((w * per_example).sum() / w.sum()), rel=1e-12)
    assert out["auc"] == pytest.approx(brute_force_auc(p, y, w), abs=1e-12)
    assert out["accuracy"] != pytest.approx(binary_metrics(y, p)["accuracy"])


# --- threshold choice ----------------------------------------------------------------------


def brute_force_best(y, p, weight=None, criterion="f1"):
    """(best value, every threshold among the distinct p reaching it), by direct counting."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    pos = y == 1
    values = {}
    for t in np.unique(p[w > 0]):
        flag = p >= t
        tp, fp = w[flag & pos].sum(), w[flag & ~pos].sum()
        fn, tn = w[~flag & pos].sum(), w[~flag & ~pos].sum()
        if criterion == "f1":
            values[t] = 2 * tp / (2 * tp + fp + fn)
        else:
            values[t] = tp / (tp + fn) - fp / (fp + tn)
    best = max(values.values())
    return best, [t for t, v in values.items() if v >= best - 1e-12]


def test_choose_threshold_finds_f1_that_half_misses():
    # Outcome rate 0.27; the model ranks well but every probability is below 0.5.
    rng = np.random.default_rng(0)
    n = 1000
    y = (rng.random(n) < 0.27).astype(float)
    p = 0.45 / (1.0 + np.exp(-(3.0 * y - 1.5 + rng.normal(0, 0.8, n))))
    assert p.max() < 0.5 and 0.22 < y.mean() < 0.32
    assert roc_auc(p, y) > 0.9
    assert binary_metrics(y, p, threshold=0.5)["f1"] == 0.0
    t = choose_threshold(y, p)
    assert 0.0 < t < 0.5 and t in set(p)
    f1 = binary_metrics(y, p, threshold=t)["f1"]
    assert f1 > 0.8
    best, thresholds = brute_force_best(y, p)
    assert f1 == pytest.approx(best, abs=1e-12)
    assert t == max(thresholds)


@pytest.mark.parametrize("criterion", ["f1", "youden"])
@pytest.mark.parametrize("seed", range(5))
def test_choose_threshold_matches_brute_force_with_weights(seed, criterion):
    rng = np.random.default_rng(seed)
    n = 250
    y = rng.integers(0, 2, n).astype(float)
    p = np.clip(rng.integers(1, 20, n) / 20.0 + 0.1 * y * rng.random(n), 0.0, 1.0)
    w = rng.exponential(1.0, n)
    w[rng.random(n) < 0.1] = 0.0
    t = choose_threshold(y, p, weight=w, criterion=criterion)
    best, thresholds = brute_force_best(y, p, w, criterion)
    assert t == max(thresholds)
    if criterion == "f1":
        assert binary_metrics(y, p, threshold=t, weight=w)["f1"] == pytest.approx(best, abs=1e-12)


def test_choose_threshold_breaks_ties_toward_the_highest_threshold():
    y = np.array([1, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.5, 0.2])
    # F1: 2/3 at 0.9, 1/2 at 0.6, 2/5 at 0.5, 2/3 at 0.2: a tie between 0.9 and 0.2.
    assert choose_threshold(y, p) == 0.9
    assert choose_threshold(y[::-1], p[::-1]) == 0.9


def test_choose_threshold_ignores_zero_weight_rows():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.7, 0.3, 0.2])
    assert choose_threshold(y, p) == 0.3  # F1 0.8 beats 2/3 at 0.8
    # Without the positive at 0.3 the best split flags 0.8 alone; 0.3 is no candidate.
    assert choose_threshold(y, p, weight=np.array([1.0, 1.0, 0.0, 1.0])) == 0.8


def test_choose_threshold_never_moves_under_1e_12_noise():
    moved_without_tol = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = 200
        y = rng.integers(0, 2, n).astype(float)
        p = (rng.integers(1, 19, n) + 4 * y * rng.integers(0, 2, n)) / 24.0
        noisy = p + rng.uniform(-1e-12, 1e-12, n)
        t, t_noisy = choose_threshold(y, p), choose_threshold(y, noisy)
        assert t_noisy == pytest.approx(t, abs=1e-11)
        exact, shaken = binary_metrics(y, p, t), binary_metrics(y, noisy, t_noisy)
        for key in ("accuracy", "precision", "recall", "f1"):
            assert shaken[key] == exact[key], key
        t0 = choose_threshold(y, noisy, tol=0.0)
        moved_without_tol += binary_metrics(y, noisy, t0)["f1"] != exact["f1"]
    assert moved_without_tol > 0


# --- errors of the new arguments -----------------------------------------------------------


def test_weight_errors():
    scores = np.array([0.1, 0.4, 0.8])
    labels = np.array([0, 1, 1])
    for call in (
        lambda w: roc_auc(scores, labels, w),
        lambda w: binary_metrics(labels, scores, weight=w),
        lambda w: choose_threshold(labels, scores, weight=w),
    ):
        with pytest.raises(ShapeError, match="and weight must have the same length; got 3 and 2"):
            call(np.array([1.0, 1.0]))
        with pytest.raises(ParameterError, match="weight must be non-negative: index 1 is -0.5"):
            call(np.array([1.0, -0.5, 1.0]))
        with pytest.raises(ParameterError, match="weight must be finite: index 2 is nan"):
            call(np.array([1.0, 1.0, np.nan]))
        with pytest.raises(ShapeError, match="weight must be one-dimensional"):
            call(np.ones((3, 1)))
        with pytest.raises(ParameterError, match="weight must hold only numbers"):
            call(["a", "b", "c"])
    with pytest.raises(ParameterError, match="weight must have a positive sum"):
        binary_metrics(labels, scores, weight=np.zeros(3))


def test_tol_errors():
    scores = np.array([0.1, 0.4, 0.8])
    labels = np.array([0, 1, 1])
    for call in (
        lambda t: roc_auc(scores, labels, tol=t),
        lambda t: choose_threshold(labels, scores, tol=t),
    ):
        with pytest.raises(ParameterError, match="tol must be a non-negative finite number; got -1e-09"):
            call(-1e-9)
        with pytest.raises(ParameterError, match="tol must be a non-negative finite number; got inf"):
            call(math.inf)
        with pytest.raises(ParameterError, match="tol must be a non-negative finite number; got nan"):
            call(math.nan)
        with pytest.raises(InputTypeError, match="tol must be a real number; got str"):
            call("1e-9")
        with pytest.raises(InputTypeError, match="tol must be a real number; got bool"):
            call(True)
    with pytest.raises(TypeError):  # InputTypeError is a TypeError
        roc_auc(scores, labels, tol=None)


def test_choose_threshold_errors():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.4, 0.8, 0.3])
    with pytest.raises(ParameterError, match=r"criterion must be one of \['f1', 'youden'\]; got 'accuracy'"):
        choose_threshold(y, p, criterion="accuracy")
    with pytest.raises(InputTypeError, match="criterion must be a string"):
        choose_threshold(y, p, criterion=1)
    with pytest.raises(DataError, match="y holds no positive example of positive weight"):
        choose_threshold(np.zeros(4), p)
    with pytest.raises(DataError, match="y holds no positive example of positive weight"):
        choose_threshold(y, p, weight=np.array([1.0, 0.0, 0.0, 1.0]))
    with pytest.raises(DataError, match="no negative example"):
        choose_threshold(np.ones(4), p, criterion="youden")
    with pytest.raises(ParameterError, match=r"p must hold probabilities in \[0, 1\]: index 2 is 1.5"):
        choose_threshold(y, np.array([0.1, 0.4, 1.5, 0.3]))
    with pytest.raises(ParameterError, match="y must hold only 0 and 1"):
        choose_threshold(np.array([0, 2, 1, 0]), p)
    with pytest.raises(ShapeError, match="y and p must have the same length"):
        choose_threshold(y, p[:3])
