"""Membership inference audit on per-example losses, with a chance reference.

An attacker who sees a model (or an update) tries to tell whether a given patient was in its
training data. Both attacks here work from per-example losses that the caller computes:
*members* are training examples, *non-members* held-out examples from the same population.

* :func:`loss_threshold_attack` (Yeom et al., 2018): members tend to have lower loss, so the
  score is ``-loss``.
* :func:`reference_attack`: a difficulty-calibrated, offline LiRA-style attack (Watson et al.,
  2022; Carlini et al., 2022). Reference models trained *without* the examples tell how hard
  each example is; the score is how much lower the target's loss is than the references',
  in units of their spread.

Each attack reports the ROC AUC, the true-positive rate at 1% and 10% false-positive rate (the
regime that matters for privacy: confidently identifying a few members) and the membership
advantage ``max(TPR - FPR)``.

With a few hundred examples these numbers are far from their no-leak values by chance alone:
for 67 members and 144 non-members the advantage of an attack that knows nothing exceeds 0.17
one time in twenty. So every result also carries

* a null reference by label permutation: the member/non-member labels are shuffled over the
  same scores ``n_perm`` times, and the result reports the 95th percentile of each statistic
  under that null and one-sided permutation p-values for the AUC and the advantage;
* percentile bootstrap intervals for the AUC and the advantage, members and non-members
  resampled separately ``n_boot`` times.

Scores closer than ``1e-9`` count as tied everywhere (see :mod:`.metrics`): an attack cannot
separate two examples by round-off.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import InputTypeError, ParameterError, ShapeError
from .metrics import (
    TIE_TOL,
    _as_binary,
    _as_float_array,
    _as_tol,
    _as_vector,
    _same_length,
    _unit_interval,
)

__all__ = [
    "AttackResult",
    "tpr_at_fpr",
    "loss_threshold_attack",
    "reference_attack",
    "attack_table",
    "LOSS_THRESHOLD",
    "REFERENCE_MODELS",
    "SIGNIFICANCE",
]

#: Name of the attack of :func:`loss_threshold_attack`.
LOSS_THRESHOLD = "loss threshold"
#: Name of the attack of :func:`reference_attack`.
REFERENCE_MODELS = "reference models (calibrated loss)"
#: Level below which a permutation p-value makes an attack :attr:`AttackResult.distinguishable`.
SIGNIFICANCE = 0.05

#: Slack for comparing a null statistic with the observed one: equal values computed from
#: different counts may differ in the last bits, and a tie counts as "at least as extreme".
_NULL_SLACK = 1e-12
#: Upper bound on the entries of one block of permutation or bootstrap replicates, so memory
#: stays bounded for large ``n_perm`` or ``n_boot``.
_BLOCK_ENTRIES = 1 << 21


@dataclass
class AttackResult:
    """How well one membership inference attack separates members from non-members.

    Attributes
    ----------
    attack : str
        The attack's name.
    auc : float
        ROC AUC of the attack's scores (0.5: no better than guessing).
    tpr_at_1pct_fpr, tpr_at_10pct_fpr : float
        Highest share of members identified while flagging at most 1% (10%) of non-members.
    advantage : float
        Membership advantage ``max over thresholds of (TPR - FPR)``, in ``[0, 1]``.
    members, nonmembers : int
        Number of member and non-member examples audited.
    auc_ci, advantage_ci : tuple of float
        95% percentile bootstrap intervals ``(low, high)`` of the AUC and the advantage, members
        and non-members resampled separately. The advantage is a maximum over thresholds, so
        its resamples sit above the true value when nothing leaks and its interval excludes 0
        even then: judge leakage by ``p_advantage`` and ``null_advantage_95``, not by it.
    tpr_at_1pct_fpr_ci : tuple of float
        The same interval of ``tpr_at_1pct_fpr``.
    null_auc_95, null_advantage_95, null_tpr_at_1pct_fpr_95, null_tpr_at_10pct_fpr_95 : float
        95th percentile (linear interpolation) of each statistic over ``n_perm`` shuffles of
        the member/non-member labels over the same scores: the value chance alone exceeds one
        time in twenty at these sample sizes.
    p_auc, p_advantage : float
        One-sided permutation p-values, ``(1 + #{null >= observed}) / (1 + n_perm)``; the
        smallest possible value is ``1 / (1 + n_perm)``.
    false_positives_at_1pct : int
        ``floor(0.01 * nonmembers)``: how many non-members the 1% operating point may flag.
        ``0`` means ``tpr_at_1pct_fpr`` can only come from flagging nobody or from members
        that score above every non-member, so it rests on very little evidence.
    n_perm, n_boot : int
        Number of label permutations and bootstrap resamples behind the fields above.
    """

    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_10pct_fpr: float
    advantage: float
    members: int
    nonmembers: int
    auc_ci: Tuple[float, float]
    advantage_ci: Tuple[float, float]
    null_auc_95: float
    null_advantage_95: float
    null_tpr_at_1pct_fpr_95: float
    null_tpr_at_10pct_fpr_95: float
    p_auc: float
    p_advantage: float
    false_positives_at_1pct: int
    n_perm: int
    n_boot: int
    tpr_at_1pct_fpr_ci: Tuple[float, float] = (math.nan, math.nan)

    @property
    def distinguishable(self) -> bool:
        """Whether the attack tells members from non-members better than chance.

        True when ``p_auc < 0.05`` or ``p_advantage < 0.05``. The two tests are not corrected
        for each other: when nothing leaks, about 5-9% of audits (depending on how correlated
        the two statistics are) come out distinguishable by chance.
        """
        return self.p_auc < SIGNIFICANCE or self.p_advantage < SIGNIFICANCE


def _ends_descending(sorted_scores: np.ndarray, tol: float) -> np.ndarray:
    """Whether each position of scores sorted in descending order (along the last axis) ends a
    tie group: the next score is more than ``tol`` lower, or there is none."""
    ends = np.ones(sorted_scores.shape, dtype=bool)
    ends[..., :-1] = (sorted_scores[..., :-1] - sorted_scores[..., 1:]) > tol
    return ends


def _roc_points(scores: np.ndarray, labels: np.ndarray, tol: float = TIE_TOL) -> Tuple[np.ndarray, np.ndarray]:
    """True and false positive counts of every threshold ``score >= s`` (plus "flag nobody").

    Scores whose sorted neighbours differ by at most ``tol`` form one tie group (chained); a
    threshold never splits a group.
    """
    order = np.argsort(-scores, kind="mergesort")
    y = labels[order]
    last = np.flatnonzero(_ends_descending(scores[order], tol))
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return np.r_[0.0, tps], np.r_[0.0, fps]


def _allowed_false_positives(fpr: float, n_neg: float) -> int:
    # The small slack keeps e.g. 0.29 * 100 from landing just below 29.
    return math.floor(fpr * n_neg + 1e-9)


def _curve_stats(
    sorted_labels: np.ndarray, ends: np.ndarray, n_pos: float, n_neg: float
) -> Dict[str, np.ndarray]:
    """AUC, advantage and TPR at 1% / 10% FPR of many rankings at once.

    Parameters
    ----------
    sorted_labels : np.ndarray
        Shape ``(R, n)``: 0/1 labels in descending order of score, one ranking per row.
    ends : np.ndarray
        Boolean, shape ``(R, n)`` or ``(1, n)``: where a tie group ends (see
        :func:`_ends_descending`).
    n_pos, n_neg : float
        Number of positives and negatives in every row (both positive).

    Returns
    -------
    dict of str to np.ndarray
        ``"auc"``, ``"advantage"``, ``"tpr1"``, ``"tpr10"``, each of shape ``(R,)``.
    """
    r, n = sorted_labels.shape
    ends = np.broadcast_to(ends, (r, n))
    tp = np.cumsum(sorted_labels, axis=1)
    fp = np.arange(1, n + 1, dtype=np.float64) - tp

    gain = np.where(ends, tp / n_pos - fp / n_neg, -np.inf)
    advantage = np.maximum(gain.max(axis=1), 0.0)  # 0: the "flag nobody" threshold
    tprs = []
    for fpr in (0.01, 0.10):
        allowed = _allowed_false_positives(fpr, n_neg)
        tprs.append(np.where(ends & (fp <= allowed), tp, 0.0).max(axis=1) / n_pos)

    # A positive in a tie group outranks every negative below the group and ties with the
    # group's negatives: it adds n_neg - (FP at the group's end + FP before the group) / 2.
    idx = np.arange(n)
    group_end = np.minimum.accumulate(np.where(ends, idx, n)[:, ::-1], axis=1)[:, ::-1]
    last_end = np.maximum.accumulate(np.where(ends, idx, -1), axis=1)
    prev_end = np.concatenate([np.full((r, 1), -1), last_end[:, :-1]], axis=1)
    fp0 = np.concatenate([np.zeros((r, 1)), fp], axis=1)  # fp0[:, k + 1] = fp[:, k]; fp0[:, 0] = 0
    fp_end = np.take_along_axis(fp0, group_end + 1, axis=1)
    fp_before = np.take_along_axis(fp0, prev_end + 1, axis=1)
    u = np.sum(sorted_labels * (n_neg - 0.5 * (fp_end + fp_before)), axis=1)
    return {"auc": u / (n_pos * n_neg), "advantage": advantage, "tpr1": tprs[0], "tpr10": tprs[1]}


def _blocks(total: int, n: int) -> List[int]:
    """Sizes of the blocks of rows that keep ``rows * n`` under the memory bound."""
    rows = max(1, _BLOCK_ENTRIES // max(n, 1))
    return [min(rows, total - i) for i in range(0, total, rows)]


def _stack(parts: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _permutation_null(
    labels: np.ndarray,
    order: np.ndarray,
    ends: np.ndarray,
    n_pos: float,
    n_neg: float,
    n_perm: int,
    rng: np.random.Generator,
) -> Dict[str, np.ndarray]:
    """Statistics of ``n_perm`` random shuffles of the labels over the same scores.

    The labels are shuffled in input order and only then put in score order (``order``), so
    the shuffles do not depend on how ties happen to be ordered: scores that move by
    round-off within their tie groups give the same null.
    """
    n = labels.size
    parts = []
    for rows in _blocks(n_perm, n):
        shuffled = rng.permuted(np.tile(labels, (rows, 1)), axis=1)[:, order]
        parts.append(_curve_stats(shuffled, ends[None, :], n_pos, n_neg))
    return _stack(parts)


def _bootstrap(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, tol: float, n_boot: int, rng: np.random.Generator
) -> Dict[str, np.ndarray]:
    """Statistics of ``n_boot`` resamples, members and non-members drawn with replacement separately."""
    m, k = member_scores.size, nonmember_scores.size
    parts = []
    for rows in _blocks(n_boot, m + k):
        scores = np.concatenate(
            [member_scores[rng.integers(0, m, (rows, m))], nonmember_scores[rng.integers(0, k, (rows, k))]], axis=1
        )
        order = np.argsort(-scores, axis=1, kind="stable")
        sorted_scores = np.take_along_axis(scores, order, axis=1)
        labels = (order < m).astype(np.float64)  # the first m columns are the members
        parts.append(_curve_stats(labels, _ends_descending(sorted_scores, tol), float(m), float(k)))
    return _stack(parts)


def _check_scores(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    s = _as_vector(scores, "scores")
    y = _as_binary(labels, "labels")
    _same_length(s, "scores", y, "labels")
    return s, y


def _check_fpr(fpr: Any) -> float:
    return _unit_interval(fpr, "fpr")


def _as_count(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ParameterError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


def _tpr_at(tps: np.ndarray, fps: np.ndarray, n_pos: float, n_neg: float, fpr: float) -> float:
    allowed = _allowed_false_positives(fpr, n_neg)
    return float(tps[fps <= allowed].max() / n_pos)


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float, *, tol: float = TIE_TOL) -> float:
    """Highest true-positive rate among thresholds whose false-positive rate is at most ``fpr``.

    A threshold flags every example with ``score >= threshold`` as a member. All exact
    thresholds are considered: each tie group of scores, plus one above every score (flagging
    nobody, TPR = FPR = 0). Tied scores (sorted neighbours at most ``tol`` apart, chained) are
    always flagged together.

    Parameters
    ----------
    scores : np.ndarray
        One-dimensional, finite attack scores; higher means more likely a member.
    labels : np.ndarray
        One-dimensional 0/1 labels of the same length; 1 = member.
    fpr : float
        The largest false-positive rate allowed, in ``[0, 1]``.
    tol : float, default 1e-9
        Absolute tolerance of the tie groups; ``0`` ties only exactly equal scores.

    Returns
    -------
    float
        The TPR, or ``nan`` when ``labels`` lacks members or non-members.

    Raises
    ------
    ShapeError
        Inputs not one-dimensional, empty, or of different lengths.
    ParameterError
        Non-finite scores, labels other than 0/1, ``fpr`` outside ``[0, 1]``, or a negative or
        non-finite ``tol``.
    InputTypeError
        ``tol`` that is not a real number.
    """
    s, y = _check_scores(scores, labels)
    f = _check_fpr(fpr)
    t = _as_tol(tol)
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    if n_pos == 0.0 or n_neg == 0.0:
        return math.nan
    tps, fps = _roc_points(s, y, t)
    return _tpr_at(tps, fps, n_pos, n_neg, f)


def _evaluate(
    attack: str, member_scores: np.ndarray, nonmember_scores: np.ndarray, n_perm: int, n_boot: int, seed: int
) -> AttackResult:
    """Observed statistics, permutation null and bootstrap intervals of one attack's scores."""
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(member_scores.size), np.zeros(nonmember_scores.size)])
    n_pos, n_neg = float(member_scores.size), float(nonmember_scores.size)
    order = np.argsort(-scores, kind="mergesort")
    ends = _ends_descending(scores[order], TIE_TOL)
    sorted_labels = labels[order]
    observed = {k: float(v[0]) for k, v in _curve_stats(sorted_labels[None, :], ends[None, :], n_pos, n_neg).items()}

    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    null = _permutation_null(labels, order, ends, n_pos, n_neg, n_perm, np.random.default_rng(perm_seed))
    boot = _bootstrap(member_scores, nonmember_scores, TIE_TOL, n_boot, np.random.default_rng(boot_seed))

    def p_value(key: str) -> float:
        return float((1 + np.count_nonzero(null[key] >= observed[key] - _NULL_SLACK)) / (1 + n_perm))

    def interval(key: str) -> Tuple[float, float]:
        low, high = np.percentile(boot[key], [2.5, 97.5])
        return float(low), float(high)

    return AttackResult(
        attack=attack,
        auc=observed["auc"],
        tpr_at_1pct_fpr=observed["tpr1"],
        tpr_at_10pct_fpr=observed["tpr10"],
        advantage=observed["advantage"],
        members=int(member_scores.size),
        nonmembers=int(nonmember_scores.size),
        auc_ci=interval("auc"),
        advantage_ci=interval("advantage"),
        tpr_at_1pct_fpr_ci=interval("tpr1"),
        null_auc_95=float(np.percentile(null["auc"], 95)),
        null_advantage_95=float(np.percentile(null["advantage"], 95)),
        null_tpr_at_1pct_fpr_95=float(np.percentile(null["tpr1"], 95)),
        null_tpr_at_10pct_fpr_95=float(np.percentile(null["tpr10"], 95)),
        p_auc=p_value("auc"),
        p_advantage=p_value("advantage"),
        false_positives_at_1pct=_allowed_false_positives(0.01, n_neg),
        n_perm=n_perm,
        n_boot=n_boot,
    )


def _check_resampling(n_perm: Any, n_boot: Any, seed: Any) -> Tuple[int, int, int]:
    return _as_count(n_perm, "n_perm", 1), _as_count(n_boot, "n_boot", 1), _as_count(seed, "seed", 0)


def loss_threshold_attack(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    *,
    n_perm: int = 200,
    n_boot: int = 200,
    seed: int = 0,
) -> AttackResult:
    """The loss-threshold attack (Yeom et al., 2018): flag examples whose loss is low.

    Parameters
    ----------
    member_losses : np.ndarray
        One-dimensional, finite losses of the target model on its training examples.
    nonmember_losses : np.ndarray
        One-dimensional, finite losses of the target model on held-out examples.
    n_perm : int, default 200
        Label permutations of the null reference (at least 1).
    n_boot : int, default 200
        Bootstrap resamples of the intervals (at least 1).
    seed : int, default 0
        Seed of the permutations and resamples (non-negative); the same seed gives the same
        numbers.

    Returns
    -------
    AttackResult
        Named ``"loss threshold"``, scored by ``-loss``.

    Raises
    ------
    ShapeError
        Losses not one-dimensional, or empty.
    ParameterError
        Non-finite losses, ``n_perm`` or ``n_boot`` below 1, or a negative ``seed``.
    InputTypeError
        ``n_perm``, ``n_boot`` or ``seed`` that is not an integer.
    """
    m = _as_vector(member_losses, "member_losses")
    nm = _as_vector(nonmember_losses, "nonmember_losses")
    perms, boots, s = _check_resampling(n_perm, n_boot, seed)
    return _evaluate(LOSS_THRESHOLD, -m, -nm, perms, boots, s)


def _calibrated(target: np.ndarray, ref: Any, name: str, eps: float) -> Tuple[np.ndarray, np.ndarray, int]:
    """Scores of the examples with enough OUT reference losses, the mask of those examples, and R."""
    r = _as_float_array(ref, name)
    if r.ndim != 2:
        raise ShapeError(f"{name} must be two-dimensional (reference models, examples); got shape {r.shape}")
    if r.shape[0] == 0:
        raise ShapeError(f"{name} must hold at least one reference model; got shape {r.shape}")
    if r.shape[1] != target.size:
        raise ShapeError(
            f"{name} must have one column per example ({target.size}); got shape {r.shape}"
        )
    if np.isinf(r).any():
        i, j = (int(v) for v in np.argwhere(np.isinf(r))[0])
        raise ParameterError(f"{name} must be finite or nan: model {i}, example {j} is {r[i, j]}")
    out = np.isfinite(r)  # nan marks a reference model that trained on the example (an IN model)
    need = 2 if r.shape[0] > 1 else 1
    keep = out.sum(axis=0) >= need
    if not keep.any():
        raise ShapeError(f"{name}: no example has {need} reference losses from models that did not train on it")
    rk = r[:, keep]
    mean = np.nanmean(rk, axis=0)
    std = np.nanstd(rk, axis=0, ddof=1) if r.shape[0] > 1 else np.zeros(int(keep.sum()))
    return (mean - target[keep]) / (std + eps), keep, r.shape[0]


def reference_attack(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    member_ref_losses: np.ndarray,
    nonmember_ref_losses: np.ndarray,
    *,
    eps: float = 1e-6,
    n_perm: int = 200,
    n_boot: int = 200,
    seed: int = 0,
) -> AttackResult:
    """Difficulty-calibrated attack with reference models (offline LiRA-style).

    Some examples are hard (high loss under any model) and some easy, so a raw loss threshold
    confuses easy non-members with members. Reference models trained on population data that
    does *not* contain the audited examples give each example's typical loss; the score is

    ``(mean_ref - target_loss) / (std_ref + eps)``

    per example, where ``mean_ref`` and ``std_ref`` are the mean and sample standard deviation
    (``ddof=1``) of that example's losses over the ``R`` reference models (Watson et al., 2022;
    Carlini et al., 2022, offline variant). With ``R = 1`` the spread is taken as 0, so the score
    ranks by the plain difference ``ref_loss - target_loss``.

    A ``nan`` reference loss means that reference model trained on the example (an IN model) and
    is left out of that example's statistics, so reference models can be trained on random halves
    of a population that includes the non-members. Examples with fewer than two OUT losses (one
    when ``R = 1``) are left out of the attack; the result's counts say how many were scored.

    Parameters
    ----------
    member_losses : np.ndarray
        Shape ``(n_m,)``: target-model losses of its training examples.
    nonmember_losses : np.ndarray
        Shape ``(n_nm,)``: target-model losses of held-out examples.
    member_ref_losses : np.ndarray
        Shape ``(R, n_m)``: the same member examples' losses under ``R`` reference models.
    nonmember_ref_losses : np.ndarray
        Shape ``(R, n_nm)``: the non-member examples' losses under the same ``R`` models.
    eps : float, default 1e-6
        Added to the spread so that examples every reference model scores alike stay finite.
    n_perm : int, default 200
        Label permutations of the null reference (at least 1).
    n_boot : int, default 200
        Bootstrap resamples of the intervals (at least 1).
    seed : int, default 0
        Seed of the permutations and resamples (non-negative).

    Returns
    -------
    AttackResult
        Named ``"reference models (calibrated loss)"``.

    Raises
    ------
    ShapeError
        Losses not one-dimensional or empty, reference matrices not ``(R, n)`` matching them,
        or different ``R`` for members and non-members.
    ParameterError
        Non-finite losses, ``eps`` not a positive finite number, ``n_perm`` or ``n_boot``
        below 1, or a negative ``seed``.
    InputTypeError
        ``n_perm``, ``n_boot`` or ``seed`` that is not an integer.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (0.0 < float(eps) < math.inf):
        raise ParameterError(f"eps must be a positive finite number; got {eps!r}")
    perms, boots, s = _check_resampling(n_perm, n_boot, seed)
    m = _as_vector(member_losses, "member_losses")
    nm = _as_vector(nonmember_losses, "nonmember_losses")
    sm, _, rm = _calibrated(m, member_ref_losses, "member_ref_losses", float(eps))
    snm, _, rnm = _calibrated(nm, nonmember_ref_losses, "nonmember_ref_losses", float(eps))
    if rm != rnm:
        raise ShapeError(
            "member_ref_losses and nonmember_ref_losses must come from the same reference models; "
            f"got {rm} and {rnm} models"
        )
    return _evaluate(REFERENCE_MODELS, sm, snm, perms, boots, s)


def attack_table(results: Sequence[Tuple[str, str, AttackResult]]) -> List[Dict[str, object]]:
    """Flatten attack results into table rows (for example for ``pandas.DataFrame``).

    Parameters
    ----------
    results : sequence of (str, str, AttackResult)
        ``(view, target, result)``: what the attacker sees (for example a hospital's update or
        the global model), which model was attacked, and the attack's result.

    Returns
    -------
    list of dict
        One row per result with keys ``view``, ``target``, ``attack``, ``auc``,
        ``tpr_at_1pct_fpr``, ``tpr_at_10pct_fpr``, ``advantage``, ``members``, ``nonmembers``
        (as before), then ``auc_ci_low``, ``auc_ci_high``, ``advantage_ci_low``,
        ``advantage_ci_high``, ``null_auc_95``, ``null_advantage_95``,
        ``null_tpr_at_1pct_fpr_95``, ``null_tpr_at_10pct_fpr_95``, ``p_auc``, ``p_advantage``,
        ``false_positives_at_1pct``, ``distinguishable``, ``n_perm``, ``n_boot``.

    Raises
    ------
    ParameterError
        An entry that is not a ``(str, str, AttackResult)`` triple.
    """
    rows: List[Dict[str, object]] = []
    for i, entry in enumerate(results):
        if not isinstance(entry, (tuple, list)) or len(entry) != 3:
            raise ParameterError(f"results[{i}] must be a (view, target, AttackResult) triple; got {entry!r}")
        view, target, res = entry
        if not isinstance(view, str) or not isinstance(target, str):
            raise ParameterError(f"results[{i}]: view and target must be strings; got {view!r} and {target!r}")
        if not isinstance(res, AttackResult):
            raise ParameterError(f"results[{i}]: the third item must be an AttackResult; got {type(res).__name__}")
        rows.append(
            {
                "view": view,
                "target": target,
                "attack": res.attack,
                "auc": res.auc,
                "tpr_at_1pct_fpr": res.tpr_at_1pct_fpr,
                "tpr_at_10pct_fpr": res.tpr_at_10pct_fpr,
                "advantage": res.advantage,
                "members": res.members,
                "nonmembers": res.nonmembers,
                "auc_ci_low": res.auc_ci[0],
                "auc_ci_high": res.auc_ci[1],
                "advantage_ci_low": res.advantage_ci[0],
                "advantage_ci_high": res.advantage_ci[1],
                "null_auc_95": res.null_auc_95,
                "null_advantage_95": res.null_advantage_95,
                "null_tpr_at_1pct_fpr_95": res.null_tpr_at_1pct_fpr_95,
                "null_tpr_at_10pct_fpr_95": res.null_tpr_at_10pct_fpr_95,
                "p_auc": res.p_auc,
                "p_advantage": res.p_advantage,
                "false_positives_at_1pct": res.false_positives_at_1pct,
                "distinguishable": res.distinguishable,
                "n_perm": res.n_perm,
                "n_boot": res.n_boot,
            }
        )
    return rows
