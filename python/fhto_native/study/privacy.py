"""Membership inference audit on per-example losses.

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
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import ParameterError, ShapeError
from .metrics import _as_binary, _as_float_array, _as_vector, _same_length, _unit_interval, roc_auc

__all__ = [
    "AttackResult",
    "tpr_at_fpr",
    "loss_threshold_attack",
    "reference_attack",
    "attack_table",
    "LOSS_THRESHOLD",
    "REFERENCE_MODELS",
]

#: Name of the attack of :func:`loss_threshold_attack`.
LOSS_THRESHOLD = "loss threshold"
#: Name of the attack of :func:`reference_attack`.
REFERENCE_MODELS = "reference models (calibrated loss)"


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
    """

    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_10pct_fpr: float
    advantage: float
    members: int
    nonmembers: int


def _roc_points(scores: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """True and false positive counts of every threshold ``score >= s`` (plus "flag nobody")."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = labels[order]
    # Last index of each run of equal scores: a threshold cannot split tied scores.
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return np.r_[0.0, tps], np.r_[0.0, fps]


def _check_scores(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    s = _as_vector(scores, "scores")
    y = _as_binary(labels, "labels")
    _same_length(s, "scores", y, "labels")
    return s, y


def _check_fpr(fpr: Any) -> float:
    return _unit_interval(fpr, "fpr")


def _tpr_at(tps: np.ndarray, fps: np.ndarray, n_pos: float, n_neg: float, fpr: float) -> float:
    # Allowed false positives; the small slack keeps e.g. 0.29 * 100 from landing just below 29.
    allowed = math.floor(fpr * n_neg + 1e-9)
    return float(tps[fps <= allowed].max() / n_pos)


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """Highest true-positive rate among thresholds whose false-positive rate is at most ``fpr``.

    A threshold flags every example with ``score >= threshold`` as a member. All exact
    thresholds are considered: each distinct score, plus one above every score (flagging
    nobody, TPR = FPR = 0). Tied scores are always flagged together.

    Parameters
    ----------
    scores : np.ndarray
        One-dimensional, finite attack scores; higher means more likely a member.
    labels : np.ndarray
        One-dimensional 0/1 labels of the same length; 1 = member.
    fpr : float
        The largest false-positive rate allowed, in ``[0, 1]``.

    Returns
    -------
    float
        The TPR, or ``nan`` when ``labels`` lacks members or non-members.

    Raises
    ------
    ShapeError
        Inputs not one-dimensional, empty, or of different lengths.
    ParameterError
        Non-finite scores, labels other than 0/1, or ``fpr`` outside ``[0, 1]``.
    """
    s, y = _check_scores(scores, labels)
    f = _check_fpr(fpr)
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    if n_pos == 0.0 or n_neg == 0.0:
        return math.nan
    tps, fps = _roc_points(s, y)
    return _tpr_at(tps, fps, n_pos, n_neg, f)


def _evaluate(attack: str, member_scores: np.ndarray, nonmember_scores: np.ndarray) -> AttackResult:
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(member_scores.size), np.zeros(nonmember_scores.size)])
    n_pos, n_neg = float(member_scores.size), float(nonmember_scores.size)
    tps, fps = _roc_points(scores, labels)
    return AttackResult(
        attack=attack,
        auc=roc_auc(scores, labels),
        tpr_at_1pct_fpr=_tpr_at(tps, fps, n_pos, n_neg, 0.01),
        tpr_at_10pct_fpr=_tpr_at(tps, fps, n_pos, n_neg, 0.10),
        advantage=float(np.max(tps / n_pos - fps / n_neg)),
        members=int(member_scores.size),
        nonmembers=int(nonmember_scores.size),
    )


def loss_threshold_attack(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> AttackResult:
    """The loss-threshold attack (Yeom et al., 2018): flag examples whose loss is low.

    Parameters
    ----------
    member_losses : np.ndarray
        One-dimensional, finite losses of the target model on its training examples.
    nonmember_losses : np.ndarray
        One-dimensional, finite losses of the target model on held-out examples.

    Returns
    -------
    AttackResult
        Named ``"loss threshold"``, scored by ``-loss``.

    Raises
    ------
    ShapeError
        Losses not one-dimensional, or empty.
    ParameterError
        Non-finite losses.
    """
    m = _as_vector(member_losses, "member_losses")
    nm = _as_vector(nonmember_losses, "nonmember_losses")
    return _evaluate(LOSS_THRESHOLD, -m, -nm)


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
        Non-finite losses, or ``eps`` not a positive finite number.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (0.0 < float(eps) < math.inf):
        raise ParameterError(f"eps must be a positive finite number; got {eps!r}")
    m = _as_vector(member_losses, "member_losses")
    nm = _as_vector(nonmember_losses, "nonmember_losses")
    sm, _, rm = _calibrated(m, member_ref_losses, "member_ref_losses", float(eps))
    snm, _, rnm = _calibrated(nm, nonmember_ref_losses, "nonmember_ref_losses", float(eps))
    if rm != rnm:
        raise ShapeError(
            "member_ref_losses and nonmember_ref_losses must come from the same reference models; "
            f"got {rm} and {rnm} models"
        )
    return _evaluate(REFERENCE_MODELS, sm, snm)


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
        ``tpr_at_1pct_fpr``, ``tpr_at_10pct_fpr``, ``advantage``, ``members``, ``nonmembers``.

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
            }
        )
    return rows
