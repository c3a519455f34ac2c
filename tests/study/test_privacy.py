"""Membership inference attacks on synthetic losses, checked against brute-force threshold sweeps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fhto_native.errors import ParameterError, ShapeError
from fhto_native.fl.privacy import (
    AttackResult,
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
    res = loss_threshold_attack(rng.exponential(0.7, 20_000), rng.exponential(0.7, 20_000))
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
    assert abs(reference_attack(target_m, target_n, ref_m, ref_n).auc - 0.5) < 0.05


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


def test_attack_table_rows():
    rng = np.random.default_rng(7)
    a = loss_threshold_attack(rng.exponential(0.5, 100), rng.exponential(1.0, 80))
    target_m, target_n, ref_m, ref_n = difficulty_case(8, n=100)
    b = reference_attack(target_m, target_n, ref_m, ref_n)
    rows = attack_table([("global model", "round 10", a), ("hospital update", "hospital 2", b)])
    assert [list(r) for r in rows] == [
        ["view", "target", "attack", "auc", "tpr_at_1pct_fpr", "tpr_at_10pct_fpr", "advantage", "members", "nonmembers"]
    ] * 2
    assert rows[0]["view"] == "global model" and rows[1]["target"] == "hospital 2"
    for row, res in zip(rows, (a, b)):
        assert row["attack"] == res.attack and row["auc"] == res.auc and row["advantage"] == res.advantage
        assert row["tpr_at_1pct_fpr"] == res.tpr_at_1pct_fpr and row["tpr_at_10pct_fpr"] == res.tpr_at_10pct_fpr
        assert (row["members"], row["nonmembers"]) == (res.members, res.nonmembers)
    assert rows[0]["members"] == 100 and rows[0]["nonmembers"] == 80
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
