"""Membership inference attacks on synthetic losses, checked against brute-force threshold sweeps,
exact permutation distributions and the behaviour of the null under pure noise."""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from fhto_native.errors import InputTypeError, ParameterError, ShapeError
from fhto_native.study.metrics import roc_auc
from fhto_native.study.privacy import (
    AttackResult,
    _curve_stats,
    _ends_descending,
    attack_table,
    loss_threshold_attack,
    reference_attack,
    tpr_at_fpr,
)


def sweep(scores: np.ndarray, labels: np.ndarray):
    """(TPR, FPR) of every threshold 'flag score >= thr', plus flagging nobody, by direct counting."""
    pos, neg = labels == 1, labels == 0
    points = [(0.0, 0.0)]
    for thr in np.unique(scores):
        flagged = scores >= thr
        points.append((np.sum(flagged & pos) / pos.sum(), np.sum(flagged & neg) / neg.sum()))
    return points


def brute_tpr_at_fpr(scores, labels, fpr):
    return max(tpr for tpr, f in sweep(scores, labels) if f <= fpr + 1e-12)


def pairwise_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.1, 0.25, 0.29, 0.5, 1.0])
def test_tpr_at_fpr_matches_sweep(seed, fpr):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 25, 400) + 3.0 * labels * rng.random(400).round(1)  # with ties
    assert tpr_at_fpr(scores, labels, fpr) == pytest.approx(brute_tpr_at_fpr(scores, labels, fpr), abs=1e-12)


def test_tpr_at_fpr_exact_share_of_negatives():
    # 100 non-members: at fpr = 0.29 exactly 29 may be flagged (no float round-off loss).
    neg = np.arange(100, dtype=float)
    pos = np.array([98.5, 70.5, 70.6])
    scores = np.r_[pos, neg]
    labels = np.r_[np.ones(3), np.zeros(100)]
    assert tpr_at_fpr(scores, labels, 0.29) == 1.0  # threshold 70.5 flags 71..99: 29 negatives
    assert tpr_at_fpr(scores, labels, 0.28) == pytest.approx(1 / 3)
    assert tpr_at_fpr(scores, labels, 0.0) == 0.0


def test_tpr_at_fpr_ties_and_degenerate_cases():
    scores = np.array([1.0, 1.0, 0.0])
    labels = np.array([1, 0, 1])
    # The tie at 1.0 flags a non-member with the member, so at FPR 0 nothing is flagged.
    assert tpr_at_fpr(scores, labels, 0.0) == 0.0
    assert tpr_at_fpr(scores, labels, 1.0) == 1.0
    assert math.isnan(tpr_at_fpr(scores, np.ones(3), 0.1))
    with pytest.raises(ParameterError, match="fpr"):
        tpr_at_fpr(scores, labels, 1.5)
    with pytest.raises(ShapeError, match="same length"):
        tpr_at_fpr(scores, labels[:2], 0.1)


def check_against_brute_force(res: AttackResult, member_scores, nonmember_scores):
    scores = np.r_[member_scores, nonmember_scores]
    labels = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    assert res.auc == pytest.approx(pairwise_auc(member_scores, nonmember_scores), abs=1e-12)
    assert res.tpr_at_1pct_fpr == pytest.approx(brute_tpr_at_fpr(scores, labels, 0.01), abs=1e-12)
    assert res.tpr_at_10pct_fpr == pytest.approx(brute_tpr_at_fpr(scores, labels, 0.10), abs=1e-12)
    assert res.advantage == pytest.approx(max(t - f for t, f in sweep(scores, labels)), abs=1e-12)
    assert (res.members, res.nonmembers) == (len(member_scores), len(nonmember_scores))


def test_loss_threshold_detects_lower_member_losses():
    rng = np.random.default_rng(0)
    members = rng.exponential(0.05, 1500)
    nonmembers = rng.exponential(1.0, 1000)
    res = loss_threshold_attack(members, nonmembers)
    assert res.attack == "loss threshold"
    assert res.auc > 0.9
    assert res.tpr_at_1pct_fpr > 0.0
    assert res.tpr_at_10pct_fpr > res.tpr_at_1pct_fpr
    assert 0.5 < res.advantage <= 1.0
    check_against_brute_force(res, -members, -nonmembers)


def test_loss_threshold_is_chance_when_distributions_match():
    rng = np.random.default_rng(1)
    res = loss_threshold_attack(rng.exponential(0.7, 20_000), rng.exponential(0.7, 20_000), n_perm=20, n_boot=20)
    assert abs(res.auc - 0.5) < 0.05
    assert res.tpr_at_1pct_fpr < 0.03
    assert res.advantage < 0.05


def difficulty_case(seed: int, n: int = 2000, n_ref: int = 8, gap: float = 0.5, noise: float = 0.2):
    """Per-example difficulty d_i that varies far more than the membership gap."""
    rng = np.random.default_rng(seed)
    d_m = rng.uniform(0.0, 5.0, n)
    d_n = rng.uniform(0.0, 5.0, n)
    target_m = d_m - gap + rng.normal(0, noise, n)
    target_n = d_n + rng.normal(0, noise, n)
    ref_m = d_m[None, :] + rng.normal(0, noise, (n_ref, n))
    ref_n = d_n[None, :] + rng.normal(0, noise, (n_ref, n))
    return target_m, target_n, ref_m, ref_n


def test_reference_attack_beats_loss_threshold_when_difficulty_varies():
    target_m, target_n, ref_m, ref_n = difficulty_case(3)
    plain = loss_threshold_attack(target_m, target_n)
    ref = reference_attack(target_m, target_n, ref_m, ref_n)
    assert ref.attack == "reference models (calibrated loss)"
    assert ref.auc > plain.auc + 0.1
    assert ref.tpr_at_1pct_fpr > plain.tpr_at_1pct_fpr
    # Its scores are the calibrated ones, computed here directly.
    score_m = (ref_m.mean(0) - target_m) / (ref_m.std(0, ddof=1) + 1e-6)
    score_n = (ref_n.mean(0) - target_n) / (ref_n.std(0, ddof=1) + 1e-6)
    check_against_brute_force(ref, score_m, score_n)


def test_reference_attack_is_chance_without_membership_signal():
    target_m, target_n, ref_m, ref_n = difficulty_case(4, n=5000, gap=0.0)
    assert abs(reference_attack(target_m, target_n, ref_m, ref_n, n_perm=20, n_boot=20).auc - 0.5) < 0.05


def test_reference_attack_with_one_reference_model_ranks_by_difference():
    target_m, target_n, ref_m, ref_n = difficulty_case(5, n=300, n_ref=1)
    res = reference_attack(target_m, target_n, ref_m, ref_n)
    assert res.auc == pytest.approx(pairwise_auc(ref_m[0] - target_m, ref_n[0] - target_n), abs=1e-12)


def test_reference_attack_shape_errors():
    target_m, target_n, ref_m, ref_n = difficulty_case(6, n=50)
    with pytest.raises(ShapeError, match="one column per example"):
        reference_attack(target_m, target_n, ref_m[:, :40], ref_n)
    with pytest.raises(ShapeError, match="same reference models"):
        reference_attack(target_m, target_n, ref_m, ref_n[:3])
    with pytest.raises(ShapeError, match="two-dimensional"):
        reference_attack(target_m, target_n, ref_m[0], ref_n)
    with pytest.raises(ParameterError, match="finite"):
        loss_threshold_attack(np.array([0.1, np.inf]), target_n)
    with pytest.raises(ShapeError, match="empty"):
        loss_threshold_attack(np.array([]), target_n)


OLD_KEYS = ["view", "target", "attack", "auc", "tpr_at_1pct_fpr", "tpr_at_10pct_fpr", "advantage", "members", "nonmembers"]
NEW_KEYS = [
    "auc_ci_low",
    "auc_ci_high",
    "advantage_ci_low",
    "advantage_ci_high",
    "null_auc_95",
    "null_advantage_95",
    "null_tpr_at_1pct_fpr_95",
    "null_tpr_at_10pct_fpr_95",
    "p_auc",
    "p_advantage",
    "false_positives_at_1pct",
    "distinguishable",
    "n_perm",
    "n_boot",
]


def test_attack_table_rows():
    rng = np.random.default_rng(7)
    a = loss_threshold_attack(rng.exponential(0.5, 100), rng.exponential(1.0, 80))
    target_m, target_n, ref_m, ref_n = difficulty_case(8, n=100)
    b = reference_attack(target_m, target_n, ref_m, ref_n, n_perm=50, n_boot=30, seed=3)
    rows = attack_table([("global model", "round 10", a), ("hospital update", "hospital 2", b)])
    assert [list(r) for r in rows] == [OLD_KEYS + NEW_KEYS] * 2
    assert rows[0]["view"] == "global model" and rows[1]["target"] == "hospital 2"
    for row, res in zip(rows, (a, b)):
        assert row["attack"] == res.attack and row["auc"] == res.auc and row["advantage"] == res.advantage
        assert row["tpr_at_1pct_fpr"] == res.tpr_at_1pct_fpr and row["tpr_at_10pct_fpr"] == res.tpr_at_10pct_fpr
        assert (row["members"], row["nonmembers"]) == (res.members, res.nonmembers)
        assert (row["auc_ci_low"], row["auc_ci_high"]) == res.auc_ci
        assert (row["advantage_ci_low"], row["advantage_ci_high"]) == res.advantage_ci
        for key in NEW_KEYS[4:11] + ["n_perm", "n_boot"]:
            assert row[key] == getattr(res, key), key
        assert row["distinguishable"] is res.distinguishable
    assert rows[0]["members"] == 100 and rows[0]["nonmembers"] == 80
    assert (rows[0]["n_perm"], rows[0]["n_boot"]) == (200, 200)
    assert (rows[1]["n_perm"], rows[1]["n_boot"]) == (50, 30)
    assert rows[0]["false_positives_at_1pct"] == 0 and rows[1]["false_positives_at_1pct"] == 1
    assert attack_table([]) == []
    with pytest.raises(ParameterError, match="triple"):
        attack_table([("global model", a)])
    with pytest.raises(ParameterError, match="AttackResult"):
        attack_table([("global model", "round 1", {"auc": 0.5})])


def test_reference_attack_skips_in_models_marked_nan():
    rng = np.random.default_rng(3)
    n = 400
    difficulty = rng.gamma(2.0, 0.5, 2 * n)
    member = np.r_[np.ones(n), np.zeros(n)].astype(bool)
    target = difficulty - 0.3 * member + rng.normal(0, 0.05, 2 * n)
    refs = difficulty + rng.normal(0, 0.05, (6, 2 * n))
    full = reference_attack(target[member], target[~member], refs[:, member], refs[:, ~member])
    masked = refs.copy()
    masked[:, ~member] = np.where(rng.random((6, n)) < 0.5, np.nan, masked[:, ~member])  # IN models
    partial = reference_attack(target[member], target[~member], refs[:, member], masked[:, ~member])
    out_counts = np.isfinite(masked[:, ~member]).sum(axis=0)
    assert partial.nonmembers == int((out_counts >= 2).sum()) < n
    assert partial.members == n
    assert partial.auc > 0.9 and abs(partial.auc - full.auc) < 0.05
    with pytest.raises(ParameterError, match="finite or nan"):
        reference_attack(target[member], target[~member], refs[:, member], np.full((6, n), np.inf))


# --- tie tolerance -------------------------------------------------------------------------


def test_tpr_at_fpr_groups_near_ties():
    # The member outscores the non-member by round-off only: they are one tie group.
    scores = np.array([1.0 + 1e-12, 1.0, 0.0])
    labels = np.array([1, 0, 1])
    assert tpr_at_fpr(scores, labels, 0.0) == 0.0
    assert tpr_at_fpr(scores, labels, 0.0, tol=0.0) == 0.5
    # Chained: 0.6e-9 steps join 1.2e-9 ends.
    chained = np.array([1.2e-9, 0.6e-9, 0.0])
    assert tpr_at_fpr(chained, np.array([1, 0, 0]), 0.0) == 0.0
    assert tpr_at_fpr(chained, np.array([1, 0, 0]), 0.0, tol=0.5e-9) == 1.0
    with pytest.raises(ParameterError, match="tol must be a non-negative finite number"):
        tpr_at_fpr(scores, labels, 0.1, tol=-1.0)
    with pytest.raises(InputTypeError, match="tol must be a real number"):
        tpr_at_fpr(scores, labels, 0.1, tol="0")


def test_attack_result_does_not_move_under_1e_12_noise():
    rng = np.random.default_rng(5)
    members = rng.integers(0, 8, 67) / 8.0  # losses with many exact ties
    nonmembers = rng.integers(1, 9, 144) / 8.0
    exact = loss_threshold_attack(members, nonmembers)
    shaken = loss_threshold_attack(
        members + rng.uniform(-1e-12, 1e-12, 67), nonmembers + rng.uniform(-1e-12, 1e-12, 144)
    )
    assert dataclasses.asdict(shaken) == dataclasses.asdict(exact)


# --- the vectorized curve statistics against direct counting -------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_curve_stats_match_direct_counting_row_by_row(seed):
    rng = np.random.default_rng(seed)
    m, k, rows = 13, 29, 40
    scores = rng.integers(0, 10, (rows, m + k)) / 4.0  # ties within and across classes
    scores[:, :m] += 0.5 * rng.random((rows, m)).round(1)
    order = np.argsort(-scores, axis=1, kind="stable")
    labels = (order < m).astype(float)
    stats = _curve_stats(labels, _ends_descending(np.take_along_axis(scores, order, axis=1), 1e-9), m, k)
    for r in range(rows):
        lab = np.r_[np.ones(m), np.zeros(k)]
        s = scores[r]
        assert stats["auc"][r] == pytest.approx(pairwise_auc(s[:m], s[m:]), abs=1e-12)
        assert stats["advantage"][r] == pytest.approx(max(t - f for t, f in sweep(s, lab)), abs=1e-12)
        assert stats["tpr1"][r] == pytest.approx(brute_tpr_at_fpr(s, lab, 0.01), abs=1e-12)
        assert stats["tpr10"][r] == pytest.approx(brute_tpr_at_fpr(s, lab, 0.10), abs=1e-12)


# --- the chance reference ------------------------------------------------------------------


def test_null_95th_percentiles_for_67_members_and_144_nonmembers():
    # With 67 vs 144, max(TPR - FPR) of an attack that knows nothing exceeds ~0.176 one time in
    # twenty (simulated; the one-sided Kolmogorov-Smirnov bound gives 0.18 asymptotically).
    rng = np.random.default_rng(0)
    res = loss_threshold_attack(rng.normal(size=67), rng.normal(size=144), n_perm=4000)
    assert 0.16 < res.null_advantage_95 < 0.19
    # AUC under the null: mean 1/2, sd sqrt((m + n + 1) / (12 m n)) = 0.0428, so 0.5 + 1.645 sd.
    sd = math.sqrt((67 + 144 + 1) / (12 * 67 * 144))
    assert res.null_auc_95 == pytest.approx(0.5 + 1.645 * sd, abs=0.006)
    # 1% of 144 non-members is one false positive allowed.
    assert res.false_positives_at_1pct == 1
    assert 0.02 < res.null_tpr_at_1pct_fpr_95 < 0.07
    assert 0.14 < res.null_tpr_at_10pct_fpr_95 < 0.22


def test_permutation_p_value_matches_exact_enumeration():
    # 4 members, 5 non-members with ties: all 126 label arrangements give the exact null.
    members = np.array([0.2, 0.3, 0.9, 0.5])
    nonmembers = np.array([0.3, 0.5, 0.7, 1.2, 0.1])
    losses = np.r_[members, nonmembers]
    exact_auc, exact_adv = [], []
    for idx in itertools.combinations(range(9), 4):
        mask = np.zeros(9, bool)
        mask[list(idx)] = True
        s, lab = -losses, mask.astype(float)
        exact_auc.append(pairwise_auc(s[mask], s[~mask]))
        exact_adv.append(max(t - f for t, f in sweep(s, lab)))
    exact_auc, exact_adv = np.array(exact_auc), np.array(exact_adv)
    res = loss_threshold_attack(members, nonmembers, n_perm=20_000, seed=1)
    p_auc = np.mean(exact_auc >= res.auc - 1e-12)
    p_adv = np.mean(exact_adv >= res.advantage - 1e-12)
    assert 0.1 < p_auc < 0.9 and 0.1 < p_adv < 0.9
    assert res.p_auc == pytest.approx(p_auc, abs=0.015)
    assert res.p_advantage == pytest.approx(p_adv, abs=0.015)


def test_pure_noise_gives_roughly_uniform_p_values():
    p_auc, p_adv, found = [], [], 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        res = loss_threshold_attack(rng.exponential(1.0, 67), rng.exponential(1.0, 144), n_boot=1, seed=seed)
        p_auc.append(res.p_auc)
        p_adv.append(res.p_advantage)
        found += res.distinguishable
    p_auc, p_adv = np.array(p_auc), np.array(p_adv)
    for p in (p_auc, p_adv):
        assert 0.01 <= np.mean(p < 0.05) <= 0.10
        assert 0.40 <= np.mean(p < 0.5) <= 0.60
        assert 0.40 <= np.mean(p) <= 0.60
    assert found / 200 <= 0.15


def test_separated_scores_reach_the_smallest_p_value():
    rng = np.random.default_rng(2)
    res = loss_threshold_attack(rng.uniform(0.0, 0.4, 67), rng.uniform(0.6, 1.0, 144), n_perm=200)
    assert res.auc == 1.0 and res.advantage == 1.0
    assert res.p_auc == res.p_advantage == 1 / 201
    assert res.auc_ci[0] > 0.5 and res.auc_ci == (1.0, 1.0)
    assert res.distinguishable
    # A moderate leak: interval above 1/2 and well inside (0, 1).
    res = loss_threshold_attack(rng.exponential(0.6, 300), rng.exponential(1.0, 300))
    assert 0.5 < res.auc_ci[0] < res.auc < res.auc_ci[1] < 1.0
    assert res.advantage_ci[0] < res.advantage < res.advantage_ci[1]
    assert res.auc > res.null_auc_95 and res.advantage > res.null_advantage_95
    assert res.p_auc == 1 / 201 and res.distinguishable


def test_bootstrap_interval_matches_a_direct_resampling_loop():
    rng = np.random.default_rng(4)
    members, nonmembers = rng.exponential(0.8, 90), rng.exponential(1.0, 150)
    res = loss_threshold_attack(members, nonmembers, n_boot=3000)
    loop = np.random.default_rng(99)
    aucs = [
        roc_auc(np.r_[-loop.choice(members, 90), -loop.choice(nonmembers, 150)], np.r_[np.ones(90), np.zeros(150)])
        for _ in range(3000)
    ]
    low, high = np.percentile(aucs, [2.5, 97.5])
    assert res.auc_ci[0] == pytest.approx(low, abs=0.01)
    assert res.auc_ci[1] == pytest.approx(high, abs=0.01)


def test_same_seed_same_numbers_and_seed_matters():
    rng = np.random.default_rng(6)
    members, nonmembers = rng.exponential(0.9, 67), rng.exponential(1.0, 144)
    a = loss_threshold_attack(members, nonmembers, seed=11)
    assert dataclasses.asdict(loss_threshold_attack(members, nonmembers, seed=11)) == dataclasses.asdict(a)
    b = loss_threshold_attack(members, nonmembers, seed=12)
    assert (a.auc, a.advantage) == (b.auc, b.advantage)
    assert (a.auc_ci, a.null_advantage_95, a.p_auc) != (b.auc_ci, b.null_advantage_95, b.p_auc)
    target_m, target_n, ref_m, ref_n = difficulty_case(9, n=80)
    r1 = reference_attack(target_m, target_n, ref_m, ref_n, seed=4)
    assert dataclasses.asdict(reference_attack(target_m, target_n, ref_m, ref_n, seed=4)) == dataclasses.asdict(r1)


def test_distinguishable_and_false_positive_budget():
    rng = np.random.default_rng(8)
    res = loss_threshold_attack(rng.exponential(1.0, 67), rng.exponential(1.0, 144), n_perm=20, n_boot=5)
    assert dataclasses.replace(res, p_auc=0.049, p_advantage=0.5).distinguishable
    assert dataclasses.replace(res, p_auc=0.5, p_advantage=0.049).distinguishable
    assert not dataclasses.replace(res, p_auc=0.05, p_advantage=0.05).distinguishable
    for nonmembers, budget in ((67, 0), (99, 0), (100, 1), (144, 1), (250, 2)):
        r = loss_threshold_attack(rng.exponential(1.0, 10), rng.exponential(1.0, nonmembers), n_perm=5, n_boot=5)
        assert r.false_positives_at_1pct == budget


def test_resampling_argument_errors():
    m, n = np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5])
    target_m, target_n, ref_m, ref_n = difficulty_case(10, n=20)
    for attack in (
        lambda **kw: loss_threshold_attack(m, n, **kw),
        lambda **kw: reference_attack(target_m, target_n, ref_m, ref_n, **kw),
    ):
        with pytest.raises(ParameterError, match="n_perm must be at least 1; got 0"):
            attack(n_perm=0)
        with pytest.raises(ParameterError, match="n_boot must be at least 1; got -5"):
            attack(n_boot=-5)
        with pytest.raises(ParameterError, match="seed must be at least 0; got -1"):
            attack(seed=-1)
        with pytest.raises(InputTypeError, match="n_perm must be an integer; got float 2.5"):
            attack(n_perm=2.5)
        with pytest.raises(InputTypeError, match="n_boot must be an integer; got str"):
            attack(n_boot="10")
        with pytest.raises(InputTypeError, match="seed must be an integer; got bool"):
            attack(seed=True)
    with pytest.raises(TypeError):  # InputTypeError is a TypeError
        loss_threshold_attack(m, n, seed=None)
    assert loss_threshold_attack(m, n, n_perm=np.int64(3), n_boot=np.int32(2), seed=np.uint8(1)).n_perm == 3
