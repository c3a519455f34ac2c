"""Off-policy evaluation on a simulated randomized trial whose truth is known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fhto_native.errors import ParameterError, ShapeError
from fhto_native.fl.policy import (
    PolicyValue,
    arm_propensities,
    ipw_value,
    policy_value_table,
    recommend,
)

DESIGN = np.array([0.3, 0.7])  # randomization probabilities of arms 0 and 1
ARMS = ["surgery", "surgery + chemo"]


def p_bad(x: np.ndarray) -> np.ndarray:
    """True P(bad outcome | x, arm), shape (len(x), 2): the treatment effect changes sign at x = 0.45.

    Arm 1 helps only the high-x minority, whose outcomes are worse than the rest's: an
    evaluation that ignored the unequal randomization would be visibly biased.
    """
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    return np.stack([sig(-1.5 + 3.0 * x), sig(0.3 - 1.0 * x)], axis=1)


def population_mean(f) -> float:
    """E[f(x)] for x ~ Uniform(-1, 1), by the midpoint rule on a fine grid."""
    m = 400_000
    grid = -1.0 + (np.arange(m) + 0.5) * (2.0 / m)
    return float(np.mean(f(grid)))


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
    return y, t, risk


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
    y, t, risk = trial
    rec = recommend(risk)
    se = hajek_se(y, t, rec, DESIGN)
    est = ipw_value(y, t, rec, DESIGN)
    assert abs(est - TRUE_OPTIMAL) < 3 * se
    # Horvitz-Thompson: mean of per-patient terms, its own standard error.
    terms = (t == rec) * (1.0 - y) / DESIGN[t]
    ht = ipw_value(y, t, rec, DESIGN, normalized=False)
    assert ht == pytest.approx(np.mean(terms), rel=1e-12)
    assert abs(ht - TRUE_OPTIMAL) < 3 * np.std(terms) / math.sqrt(len(y))
    # Without the propensity weights the estimate is biased; the test would notice.
    followed = t == rec
    naive = np.mean(1.0 - y[followed])
    assert abs(naive - TRUE_OPTIMAL) > 3 * se


def test_ipw_on_a_hand_computed_case():
    y = np.array([0, 1, 0, 0, 1])
    t = np.array([0, 1, 1, 0, 0])
    rec = np.array([0, 1, 0, 1, 0])
    prop = np.array([0.25, 0.75])
    w = [1.0 / prop[ti] if ti == ri else 0.0 for ti, ri in zip(t, rec)]
    good = [1 - yi for yi in y]
    ht = sum(wi * gi for wi, gi in zip(w, good)) / len(y)
    hajek = sum(wi * gi for wi, gi in zip(w, good)) / sum(w)
    assert ipw_value(y, t, rec, prop, normalized=False) == pytest.approx(ht)
    assert ipw_value(y, t, rec, prop) == pytest.approx(hajek)
    assert hajek != pytest.approx(ht)


def test_nobody_followed():
    y, t = np.array([0, 1]), np.array([0, 0])
    rec = np.array([1, 1])
    assert math.isnan(ipw_value(y, t, rec, np.array([0.5, 0.5])))
    assert ipw_value(y, t, rec, np.array([0.5, 0.5]), normalized=False) == 0.0


def test_arm_propensities_counts_the_assignment(trial):
    _, t, _ = trial
    prop = arm_propensities(t, 2)
    assert prop.shape == (2,)
    assert prop[1] == np.count_nonzero(t == 1) / len(t)
    assert prop.sum() == pytest.approx(1.0)
    assert abs(prop[1] - DESIGN[1]) < 4 * math.sqrt(0.21 / len(t))
    assert arm_propensities(np.array([0, 0, 2]), 4).tolist() == [2 / 3, 0.0, 1 / 3, 0.0]


def test_recommend_is_argmin_lowest_index_on_ties():
    rng = np.random.default_rng(5)
    risk = rng.integers(0, 4, size=(200, 3)).astype(float)  # many ties
    got = recommend(risk)
    assert got.dtype == np.int64 and got.shape == (200,)
    for row, k in zip(risk, got):
        assert row[k] == row.min()
        assert k == min(j for j in range(3) if row[j] == row.min())


def test_policy_value_table(trial):
    y, t, risk = trial
    rows = policy_value_table(y, t, risk, ARMS, n_boot=400, seed=1)
    assert [r.name for r in rows] == [
        "model policy (recommend lowest predicted risk)",
        "everyone: surgery",
        "everyone: surgery + chemo",
        "observed (as randomized)",
    ]
    assert all(isinstance(r, PolicyValue) for r in rows)
    model, *everyone, observed = rows

    rec = recommend(risk)
    prop = arm_propensities(t, 2)
    assert model.value == pytest.approx(ipw_value(y, t, rec, prop), rel=1e-12)
    assert model.n_followed == np.count_nonzero(t == rec)
    assert model.ci_low <= TRUE_OPTIMAL <= model.ci_high
    # The bootstrap interval is about as wide as the normal-theory one.
    width = 2 * 1.959964 * hajek_se(y, t, rec, prop)
    assert model.ci_high - model.ci_low == pytest.approx(width, rel=0.25)

    for k, row in enumerate(everyone):
        in_arm = t == k
        assert row.value == pytest.approx(np.mean(1.0 - y[in_arm]), abs=1e-12)
        assert row.n_followed == np.count_nonzero(in_arm)
        assert row.ci_low < row.value < row.ci_high
        se = np.std(1.0 - y[in_arm]) / math.sqrt(in_arm.sum())
        assert abs(row.value - TRUE_EVERYONE[k]) < 3 * se

    assert observed.value == pytest.approx(np.mean(1.0 - y), abs=1e-12)
    assert observed.n_followed == len(y)
    assert observed.ci_low <= TRUE_OBSERVED <= observed.ci_high
    assert model.value > max(r.value for r in everyone)


def test_bootstrap_intervals_cover_at_about_their_level():
    covered = 0
    trials = 60
    for seed in range(100, 100 + trials):
        y, t, risk = simulate(seed, 2000)
        model = policy_value_table(y, t, risk, ARMS, n_boot=200, seed=seed)[0]
        covered += model.ci_low <= TRUE_OPTIMAL <= model.ci_high
    # Nominal 95%: about 57 of 60; fewer than 51 would be 3.5 binomial standard deviations short.
    assert covered >= 51


def test_table_with_design_propensity(trial):
    y, t, risk = trial
    rows = policy_value_table(y, t, risk, ARMS, DESIGN, n_boot=200, seed=0)
    assert rows[0].value == pytest.approx(ipw_value(y, t, recommend(risk), DESIGN), rel=1e-12)
    assert rows[1].value == pytest.approx(np.mean(1.0 - y[t == 0]), abs=1e-12)


def test_rows_share_the_same_resamples(trial):
    y, t, risk = trial
    always_first = np.column_stack([np.zeros(len(y)), np.ones(len(y))])
    rows = policy_value_table(y[:2000], t[:2000], always_first[:2000], ARMS, n_boot=200, seed=4)
    # The model policy *is* "everyone: surgery" here: same replicates give the same interval.
    assert (rows[0].value, rows[0].ci_low, rows[0].ci_high) == (rows[1].value, rows[1].ci_low, rows[1].ci_high)


def test_bootstrap_is_deterministic_per_seed(trial):
    y, t, risk = trial
    sub = slice(0, 3000)
    a = policy_value_table(y[sub], t[sub], risk[sub], ARMS, n_boot=100, seed=7)
    b = policy_value_table(y[sub], t[sub], risk[sub], ARMS, n_boot=100, seed=7)
    c = policy_value_table(y[sub], t[sub], risk[sub], ARMS, n_boot=100, seed=8)
    assert a == b
    assert [r.value for r in a] == [r.value for r in c]
    assert [(r.ci_low, r.ci_high) for r in a] != [(r.ci_low, r.ci_high) for r in c]


def test_level_widens_the_interval(trial):
    y, t, risk = trial
    sub = slice(0, 3000)
    narrow = policy_value_table(y[sub], t[sub], risk[sub], ARMS, n_boot=300, seed=2, level=0.5)
    wide = policy_value_table(y[sub], t[sub], risk[sub], ARMS, n_boot=300, seed=2, level=0.99)
    for n_row, w_row in zip(narrow, wide):
        assert w_row.ci_low < n_row.ci_low < n_row.ci_high < w_row.ci_high


def test_errors():
    y = np.array([0, 1, 0, 1])
    t = np.array([0, 1, 1, 0])
    risk = np.full((4, 2), 0.5)
    with pytest.raises(ShapeError, match="same length"):
        ipw_value(y, t[:3], t[:3], DESIGN)
    with pytest.raises(ShapeError, match="same length"):
        ipw_value(y, t, t[:3], DESIGN)
    with pytest.raises(ShapeError, match="same length"):
        policy_value_table(y[:3], t, risk, ARMS)
    with pytest.raises(ShapeError, match="one row per patient"):
        policy_value_table(y, t, risk[:3], ARMS)
    with pytest.raises(ShapeError, match="one column per arm"):
        policy_value_table(y, t, risk, ARMS + ["radiation"])
    with pytest.raises(ShapeError, match="one entry per arm"):
        policy_value_table(y, t, risk, ARMS, np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ParameterError, match="propensity must lie in"):
        ipw_value(y, t, t, np.array([0.0, 1.0]))
    with pytest.raises(ParameterError, match="propensity must lie in"):
        policy_value_table(y, t, risk, ARMS, np.array([1.0, 0.0]))
    with pytest.raises(ParameterError, match="no patient received"):
        policy_value_table(y, np.zeros(4, dtype=int), risk, ARMS)
    with pytest.raises(ParameterError, match=r"arm indices in \[0, 2\)"):
        ipw_value(y, np.array([0, 1, 2, 0]), t, DESIGN)
    with pytest.raises(ParameterError, match="integer arm indices"):
        ipw_value(y, np.array([0, 1, 0.5, 0]), t, DESIGN)
    with pytest.raises(ParameterError, match="only 0 and 1"):
        ipw_value(np.array([0, 1, 0, 0.3]), t, t, DESIGN)
    with pytest.raises(ShapeError, match="two-dimensional"):
        recommend(np.zeros(4))
    with pytest.raises(ParameterError, match="n_boot"):
        policy_value_table(y, t, risk, ARMS, n_boot=0)
    with pytest.raises(ParameterError, match="level"):
        policy_value_table(y, t, risk, ARMS, level=1.0)
    with pytest.raises(ParameterError, match="single string"):
        policy_value_table(y, t, risk, "ab")
    with pytest.raises(ParameterError, match="n_arms"):
        arm_propensities(t, 0)
