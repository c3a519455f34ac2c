"""Federated validation statistics against the study's metrics on the pooled rows."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.errors import InputTypeError, ParameterError, ShapeError
from fhto_native.fl.validation import (
    DEFAULT_BINS,
    FederatedMetrics,
    auc_error_bound,
    metrics_from_statistics,
    statistics_length,
    validation_statistics,
)
from fhto_native.study.metrics import binary_metrics, choose_threshold, roc_auc

THRESHOLD_FIELDS = ("accuracy", "precision", "recall", "f1")


def logistic_rows(seed: int, n: int, prevalence: float = 0.3, separation: float = 1.5, weighted: bool = True):
    """Scores of a logistic model on ``n`` rows: rounded to 4 decimals (ties), a few saturated at
    exactly 0 or 1, and censoring-like weights (about 10% zero, the rest in [0.5, 2])."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(np.float64)
    logit = math.log(prevalence / (1 - prevalence)) + separation * (y - prevalence) + rng.normal(size=n)
    p = np.round(1.0 / (1.0 + np.exp(-logit)), 4)
    p[rng.choice(n, 4, replace=False)] = [0.0, 0.0, 1.0, 1.0]  # saturated outputs, clipped in the loss
    w = rng.uniform(0.5, 2.0, n) * (rng.random(n) > 0.1) if weighted else np.ones(n)
    return p, y, w


def hospital_sum(p, y, w, hospitals: int, bins: int = DEFAULT_BINS, seed: int = 0) -> np.ndarray:
    """The sum of the statistics of ``hospitals`` random, unequal splits of the rows."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, p.size), hospitals - 1, replace=False))
    parts = np.split(rng.permutation(p.size), cuts)
    return np.sum([validation_statistics(p[i], y[i], w[i], bins=bins) for i in parts], axis=0)


# -- agreement with study.metrics on the pooled rows ---------------------------------------


@pytest.mark.parametrize(
    "n, prevalence, separation, hospitals, weighted",
    [
        (200, 0.3, 1.5, 2, True),
        (500, 0.5, 1.0, 3, False),
        (1000, 0.05, 2.5, 5, True),
        (2000, 0.3, 1.5, 7, True),
        (2000, 0.5, 0.3, 4, True),  # a weak model: scores crowd together, many pairs share a bin
    ],
)
def test_summed_statistics_match_the_pooled_study_metrics(n, prevalence, separation, hospitals, weighted):
    p, y, w = logistic_rows(n, n, prevalence, separation, weighted)
    summed = hospital_sum(p, y, w, hospitals)
    m = metrics_from_statistics(summed)
    pooled = binary_metrics(y, p, 0.5, w)
    assert m.loss == pytest.approx(pooled["loss"], abs=1e-12)
    assert m.weight == pytest.approx(w.sum(), rel=1e-12)
    assert m.positives == pytest.approx((w * y).sum(), rel=1e-12)
    assert m.count == n

    bound = auc_error_bound(summed)
    exact = roc_auc(p, y, w)
    assert abs(m.auc - exact) <= bound + 1e-12
    assert abs(m.auc - exact) <= 1e-3
    assert abs(m.auc - roc_auc(p, y, w, tol=0.0)) <= bound + 1e-12  # what the bound is stated against
    assert 0.0 < bound <= 1e-3


@pytest.mark.parametrize("rule", ["youden", "f1"])
@pytest.mark.parametrize("seed", range(3))
def test_threshold_metrics_equal_binary_metrics_at_the_chosen_edge(rule, seed):
    p, y, w = logistic_rows(seed, 800, 0.3, 1.5)
    bins = 512
    m = metrics_from_statistics(hospital_sum(p, y, w, 4, bins), bins=bins, threshold=rule)
    assert m.threshold * bins == round(m.threshold * bins)  # a bin edge
    pooled = binary_metrics(y, p, m.threshold, w)
    for field in THRESHOLD_FIELDS:
        assert getattr(m, field) == pytest.approx(pooled[field], abs=1e-12), field


@pytest.mark.parametrize("rule", ["youden", "f1"])
@pytest.mark.parametrize("bins", [16, 100, DEFAULT_BINS])
def test_rule_picks_choose_thresholds_threshold_when_scores_lie_on_bin_edges(rule, bins):
    rng = np.random.default_rng(bins)
    n = 600
    y = (rng.random(n) < 0.35).astype(np.float64)
    k = np.clip(np.round((0.35 + 0.2 * y + 0.15 * rng.normal(size=n)) * bins), 0, bins - 1)
    p = k / bins  # every score is a bin edge: each bin holds one distinct score
    w = rng.uniform(0.2, 3.0, n)
    summed = hospital_sum(p, y, w, 3, bins)
    m = metrics_from_statistics(summed, bins=bins, threshold=rule)
    assert m.threshold == choose_threshold(y, p, w, rule)
    assert m.auc == pytest.approx(roc_auc(p, y, w), abs=1e-12)  # ties within a bin are true ties here
    pooled = binary_metrics(y, p, m.threshold, w)
    for field in THRESHOLD_FIELDS:
        assert getattr(m, field) == pytest.approx(pooled[field], abs=1e-12), field


@pytest.mark.parametrize(
    "rule, negative_weight, expected",
    [
        ("youden", 1.0, 0.8),  # J(0.8) = J(0.6) = 1/2
        ("f1", 2.0, 0.8),  # F1(0.8) = F1(0.6) = 2/3
    ],
)
def test_equally_good_thresholds_resolve_to_the_highest_as_choose_threshold(rule, negative_weight, expected):
    p = np.array([0.2, 0.6, 0.7, 0.8])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    w = np.array([1.0, 1.0, negative_weight, 1.0])
    m = metrics_from_statistics(validation_statistics(p, y, w, bins=10), bins=10, threshold=rule)
    assert m.threshold == choose_threshold(y, p, w, rule) == expected


def test_rule_never_picks_an_empty_bin_even_for_an_inverted_model():
    """Every J is <= 0 here: flagging all (J = 0) ties with flagging nobody, which is no candidate."""
    p = np.array([0.1, 0.2, 0.5, 0.6])  # bins 7 to 9 empty
    y = np.array([1.0, 1.0, 0.0, 0.0])
    m = metrics_from_statistics(validation_statistics(p, y, bins=10), bins=10, threshold="youden")
    assert m.threshold == choose_threshold(y, p, criterion="youden") == 0.1
    assert m.recall == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_youden_rule_loses_at_most_one_bin_of_j(seed):
    """Between the exact threshold and the nearest edges only one bin's rows change side."""
    p, y, w = logistic_rows(seed, 1500, 0.2, 1.2)
    bins = 64  # coarse, so the binned threshold really differs from the exact one
    summed = hospital_sum(p, y, w, 3, bins)
    m = metrics_from_statistics(summed, bins=bins, threshold="youden")
    neg, pos = summed[4 : 4 + bins], summed[4 + bins :]
    most = float(np.max(pos / pos.sum() + neg / neg.sum()))

    def youden(t: float) -> float:
        flagged = p >= t
        return (w * y)[flagged].sum() / (w * y).sum() - (w * (1 - y))[flagged].sum() / (w * (1 - y)).sum()

    best = youden(choose_threshold(y, p, w, "youden"))
    assert best - most - 1e-12 <= youden(m.threshold) <= best + 1e-12


def test_auc_error_bound_is_reached_when_every_pair_shares_a_bin_in_one_order():
    """Positives above negatives inside one bin: exact AUC 1, histogram AUC 1/2, bound 1/2."""
    p = np.array([0.50, 0.51, 0.52, 0.53])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    summed = validation_statistics(p, y, bins=2)
    assert roc_auc(p, y) == 1.0
    assert metrics_from_statistics(summed, bins=2).auc == 0.5
    assert auc_error_bound(summed, 2) == 0.5


def test_auc_error_bound_shrinks_with_bins():
    p, y, w = logistic_rows(7, 2000)
    bounds = [auc_error_bound(hospital_sum(p, y, w, 3, b), b) for b in (64, 256, 1024, 4096)]
    assert all(a > b for a, b in zip(bounds, bounds[1:])), bounds


# -- the vector ------------------------------------------------------------------------


def test_summing_is_order_independent():
    p, y, w = logistic_rows(3, 900)
    parts = np.array_split(np.arange(900), 6)
    vectors = [validation_statistics(p[i], y[i], w[i]) for i in parts]
    forward, backward = np.sum(vectors, axis=0), np.sum(vectors[::-1], axis=0)
    shuffled = np.sum([vectors[i] for i in np.random.default_rng(0).permutation(6)], axis=0)
    np.testing.assert_allclose(backward, forward, rtol=1e-14, atol=0)
    np.testing.assert_allclose(shuffled, forward, rtol=1e-14, atol=0)
    a, b = metrics_from_statistics(forward), metrics_from_statistics(backward)
    for field in ("loss", "auc", "accuracy", "precision", "recall", "f1", "threshold"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-12), field


@pytest.mark.parametrize("bins", [2, 3, 10, 1000, DEFAULT_BINS])
def test_vector_is_non_negative_and_bounded_by_the_weight_or_count(bins):
    p, y, w = logistic_rows(bins, 300)
    v = validation_statistics(p, y, w, bins=bins)
    assert v.shape == (statistics_length(bins),) == (4 + 2 * bins,)
    assert v.dtype == np.float64
    assert np.isfinite(v).all() and (v >= 0.0).all()
    assert v.max() <= max(w.sum(), p.size) * (1 + 1e-12)
    assert v[3] == p.size
    np.testing.assert_allclose(v[4:].sum(), w.sum(), rtol=1e-12)


def test_worst_loss_stays_within_the_weight():
    """Confidently wrong rows: the unscaled loss sum would be 16 times the weight."""
    p, y, w = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0]), np.array([500.0, 700.0, 300.0])
    v = validation_statistics(p, y, w)
    assert v.max() <= w.sum()
    m = metrics_from_statistics(v)
    assert m.loss == pytest.approx(binary_metrics(y, p, 0.5, w)["loss"], abs=1e-12)
    assert m.loss == pytest.approx(-math.log(1e-7), rel=1e-9)


def test_default_bins_fill_one_ciphertext_of_the_aggregation_preset():
    assert statistics_length() == statistics_length(DEFAULT_BINS) == fh.AGGREGATION.values_per_ciphertext


def test_encrypted_sum_gives_the_plain_metrics(keys, pub):
    p, y, w = logistic_rows(11, 1200, 0.3, 1.5)
    parts = np.array_split(np.arange(p.size), 3)
    vectors = [validation_statistics(p[i], y[i], w[i]) for i in parts]
    largest = max(float(v.max()) for v in vectors)
    assert largest <= keys.max_abs_value(3)  # within the range, or encrypt would refuse it
    total = fh.aggregate([keys.encrypt(v, parties=3) for v in vectors], pub)
    noise = keys.error_bound(3, max_abs=largest)
    decrypted = keys.decrypt(total)
    assert decrypted.min() < 0.0  # CKKS noise: some of the ~3000 empty bins decrypt a hair below 0
    with pytest.raises(ParameterError, match=r"no negative entries beyond noise=0 .*pass noise=KeySet.error_bound"):
        metrics_from_statistics(decrypted)
    plain = metrics_from_statistics(np.sum(vectors, axis=0))
    m = metrics_from_statistics(decrypted, noise=noise)
    assert m.count == plain.count
    assert m.threshold == plain.threshold
    for field in ("loss", "auc", "accuracy", "precision", "recall", "f1", "weight", "positives"):
        assert getattr(m, field) == pytest.approx(getattr(plain, field), abs=1e-6), field
    assert auc_error_bound(decrypted, noise=noise) == pytest.approx(auc_error_bound(np.sum(vectors, axis=0)), abs=1e-6)


def test_decryption_noise_below_zero_is_read_as_zero_within_noise():
    p, y, w = logistic_rows(5, 400)
    v = validation_statistics(p, y, w, bins=100)
    empty = 4 + int(np.flatnonzero(v[4:] == 0.0)[0])
    noisy = v.copy()
    noisy[empty] = -1e-9
    with pytest.raises(ParameterError, match=rf"no negative entries .*index {empty} is -1e-09"):
        metrics_from_statistics(noisy, bins=100)
    assert metrics_from_statistics(noisy, bins=100, noise=1e-8) == metrics_from_statistics(v, bins=100)


def test_a_class_made_of_decryption_noise_counts_as_absent():
    p, _, w = logistic_rows(6, 400)
    v = validation_statistics(p, np.zeros(p.size), w, bins=100)
    noisy = v.copy()
    noisy[4 + 100 :] = 1e-9  # an empty positive histogram, decrypted
    m = metrics_from_statistics(noisy, bins=100, noise=1e-9)
    assert math.isnan(m.auc) and math.isnan(m.threshold)
    assert math.isnan(auc_error_bound(noisy, 100, noise=1e-9))
    assert m.loss == pytest.approx(metrics_from_statistics(v, bins=100).loss, abs=1e-12)


# -- thresholds given, one class, no weight --------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 511 / 1024])
def test_a_given_threshold_on_an_edge_matches_binary_metrics(threshold):
    p, y, w = logistic_rows(9, 700)
    m = metrics_from_statistics(hospital_sum(p, y, w, 2, 1024), bins=1024, threshold=threshold)
    assert m.threshold == threshold
    pooled = binary_metrics(y, p, threshold, w)
    for field in THRESHOLD_FIELDS:
        assert getattr(m, field) == pytest.approx(pooled[field], abs=1e-12), field


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_class_only_has_nan_auc_and_a_finite_loss(label):
    p, _, w = logistic_rows(2, 300)
    y = np.full(p.size, label)
    summed = hospital_sum(p, y, w, 3)
    m = metrics_from_statistics(summed)
    assert math.isnan(m.auc) and math.isnan(auc_error_bound(summed))
    assert m.loss == pytest.approx(binary_metrics(y, p, 0.5, w)["loss"], abs=1e-12)
    # Youden's J needs both classes: no threshold, so no thresholded metric.
    assert all(math.isnan(getattr(m, f)) for f in ("threshold",) + THRESHOLD_FIELDS)
    f1 = metrics_from_statistics(summed, threshold="f1")
    if label == 0.0:  # F1 needs a positive, as choose_threshold does
        assert all(math.isnan(getattr(f1, f)) for f in ("threshold",) + THRESHOLD_FIELDS)
    else:
        assert f1.f1 == 1.0 and f1.threshold <= p[w > 0].min()
    given = metrics_from_statistics(summed, threshold=0.5)
    pooled = binary_metrics(y, p, 0.5, w)
    for field in THRESHOLD_FIELDS:
        assert getattr(given, field) == pytest.approx(pooled[field], abs=1e-12), field


def test_zero_total_weight_gives_nan_metrics_and_the_row_count():
    v = validation_statistics([0.2, 0.7, 0.9], [0, 1, 1], [0.0, 0.0, 0.0], bins=10)
    m = metrics_from_statistics(v, bins=10)
    assert m.count == 3 and m.weight == 0.0 and m.positives == 0.0
    assert all(math.isnan(getattr(m, f)) for f in ("loss", "auc", "threshold") + THRESHOLD_FIELDS)
    assert isinstance(m, FederatedMetrics)


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (([0.2, 1.5], [0, 1]), {}, ParameterError, r"probabilities must lie in \[0, 1\]: index 1 is 1.5"),
        (([-0.1, 0.5], [0, 1]), {}, ParameterError, r"probabilities must lie in \[0, 1\]: index 0 is -0.1"),
        (([0.2, math.nan], [0, 1]), {}, ParameterError, r"probabilities must be finite: index 1 is nan"),
        (([0.2, 0.3, 0.4], [0, 1, 2]), {}, ParameterError, r"labels must be 0 or 1: index 2 is 2.0"),
        (([0.2, 0.3], [0.5, 1]), {}, ParameterError, r"labels must be 0 or 1: index 0 is 0.5"),
        (([0.2, 0.3], [0, 1], [1.0, -1.0]), {}, ParameterError, r"weights must be non-negative: index 1 is -1.0"),
        (([0.2, 0.3], [0, 1], [math.nan, 1.0]), {}, ParameterError, r"weights must be finite: index 0 is nan"),
        (([0.2, 0.3, 0.4], [0, 1]), {}, ShapeError, r"probabilities and labels must have the same length; got 3 and 2"),
        (([0.2, 0.3], [0, 1], [1.0]), {}, ShapeError, r"probabilities and weights must have the same length; got 2 and 1"),
        (([], []), {}, ShapeError, r"probabilities is empty"),
        (([[0.2, 0.3]], [[0, 1]]), {}, ShapeError, r"probabilities must be one-dimensional; got shape \(1, 2\)"),
        ((["a", "b"], [0, 1]), {}, InputTypeError, r"probabilities must hold real numbers"),
        (([0.2, 0.3], [0, 1]), {"bins": 1}, ParameterError, r"bins must be at least 2; got 1"),
        (([0.2, 0.3], [0, 1]), {"bins": 8.0}, InputTypeError, r"bins must be an int; got float 8.0"),
    ],
)
def test_bad_rows_raise_typed_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        validation_statistics(*args, **kwargs)


def _good(bins: int = 8) -> np.ndarray:
    return validation_statistics([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], [1.0, 2.0, 1.0, 0.5], bins=bins)


def _with(vector: np.ndarray, index: int, value: float) -> np.ndarray:
    out = vector.copy()
    out[index] = value
    return out


@pytest.mark.parametrize(
    "summed, kwargs, error, message",
    [
        (_good(9), {}, ShapeError, r"statistics_length\(8\) = 20 entries; got 22 \(.* made with bins=9\)"),
        (_good()[None, :], {}, ShapeError, r"summed must be one-dimensional"),
        (_with(_good(), 5, -1.0), {}, ParameterError, r"no negative entries .*index 5 is -1.0"),
        (_with(_good(), 5, -1.0), {"noise": 1e-6}, ParameterError, r"no negative entries .*index 5 is -1.0"),
        (_with(_good(), 3, -4.0), {}, ParameterError, r"no negative entries .*index 3 is -4.0"),
        (_with(_good(), 7, math.inf), {}, ParameterError, r"summed must be finite: index 7 is inf"),
        (np.zeros(20), {}, ParameterError, r"whole number of rows, at least 1; entry 3 is 0.0"),
        (_with(_good(), 3, 4.5), {}, ParameterError, r"whole number of rows, at least 1; entry 3 is 4.5"),
        (_with(_good(), 1, 10.0), {}, ParameterError, r"positive weight \(entry 1\) exceeds the total weight"),
        (_with(_good(), 2, 10.0), {}, ParameterError, r"scaled loss sum \(entry 2\) exceeds the total weight"),
        (_with(_good(), 4, 3.0), {}, ParameterError, r"negative histogram sums to 4.0, the header to 2.0"),
        (_good(), {"threshold": "auc"}, ParameterError, r"threshold must be one of \['youden', 'f1'\] or a number"),
        (_good(), {"threshold": True}, InputTypeError, r"threshold must be one of .* got bool True"),
        (_good(), {"threshold": 0.3}, ParameterError, r"threshold 0.3 is not a bin edge.*nearest: 0.25 or 0.375"),
        (_good(), {"threshold": 1.0}, ParameterError, r"threshold must lie in \[0, 1\)"),
        (_good(), {"bins": 1}, ParameterError, r"bins must be at least 2; got 1"),
        (_good(), {"noise": -1e-9}, ParameterError, r"noise must be a non-negative finite number"),
        (_good(), {"noise": "small"}, InputTypeError, r"noise must be a real number"),
    ],
)
def test_bad_sums_raise_typed_errors(summed, kwargs, error, message):
    kwargs = {"bins": 8, **kwargs}
    with pytest.raises(error, match=message):
        metrics_from_statistics(summed, **kwargs)


def test_auc_error_bound_checks_the_sum_as_metrics_do():
    with pytest.raises(ShapeError, match=r"statistics_length\(8\) = 20 entries; got 22"):
        auc_error_bound(_good(9), 8)
    with pytest.raises(ParameterError, match=r"no negative entries .*index 5 is -1.0"):
        auc_error_bound(_with(_good(), 5, -1.0), 8)
    with pytest.raises(ParameterError, match=r"bins must be at least 2; got 1"):
        statistics_length(1)
