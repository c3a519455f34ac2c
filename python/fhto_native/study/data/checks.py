"""Is this a study worth running? Degenerate federations are refused; weak ones are flagged.

:func:`check_federation` refuses (DataError) what cannot give a meaningful answer: fewer than two
hospitals, one arm in total, no events or no event-free patients, a hospital too small to train
on. :func:`study_warnings` lists what is legal but weakens the answer, for the report: a hospital
holding a single arm (treatment confounded with site), a hospital without events, arms missing
at some hospitals.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ...errors import DataError
from .container import TreatmentData

__all__ = ["check_federation", "study_warnings", "DEFAULT_MIN_ROWS"]

#: Fewest rows with a known outcome a hospital needs to take part.
DEFAULT_MIN_ROWS = 10


def _consistent(hospitals: Sequence[TreatmentData]) -> List[TreatmentData]:
    hospitals = list(hospitals)
    for h in hospitals:
        if not isinstance(h, TreatmentData):
            raise DataError(f"every hospital must be a TreatmentData; got {type(h).__name__}")
    if hospitals:
        first = hospitals[0]
        for h in hospitals[1:]:
            if h.arms != first.arms:
                raise DataError(f"{h.source} has arms {list(h.arms)}, but {first.source} has {list(first.arms)}")
            if h.feature_names != first.feature_names:
                raise DataError(
                    f"{h.source} has features {list(h.feature_names)}, but {first.source} has {list(first.feature_names)}"
                )
    return hospitals


def _arm_counts(h: TreatmentData) -> np.ndarray:
    """Rows with a known outcome per arm."""
    return np.bincount(h.treatment[h.known], minlength=len(h.arms))


def _events(h: TreatmentData) -> int:
    return int(np.count_nonzero(h.known & (h.y == 1)))


def check_federation(hospitals: Sequence[TreatmentData], min_rows: int = DEFAULT_MIN_ROWS) -> List[str]:
    """Refuse a degenerate study; return the warnings of :func:`study_warnings` otherwise.

    Counts are over rows with a known outcome (``weight > 0``): rows censored before the
    horizon do not train.

    Parameters
    ----------
    hospitals:
        The hospitals' training rows.
    min_rows:
        Fewest rows with a known outcome each hospital must hold (>= 1).

    Returns
    -------
    list of str
        Warnings for the report (possibly empty).

    Raises
    ------
    DataError
        Fewer than two hospitals; hospitals with different arms or features; a single arm with
        patients in total; no events, or no event-free patients, in total; a hospital with fewer
        than ``min_rows`` rows with a known outcome (the hospital and the count named).
    """
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 1:
        raise DataError(f"check_federation: min_rows must be an integer >= 1; got {min_rows!r}")
    hospitals = _consistent(hospitals)
    if len(hospitals) < 2:
        which = f" ({hospitals[0].source})" if hospitals else ""
        raise DataError(
            f"a federation of {len(hospitals)} hospital{'' if len(hospitals) == 1 else 's'}{which} is refused: "
            "federated learning needs at least 2 hospitals"
        )
    for h in hospitals:
        if h.n_known < min_rows:
            censored = f" ({h.n_censored} more censored before the horizon)" if h.n_censored else ""
            raise DataError(
                f"{h.source}: {h.n_known} rows with a known outcome{censored}, fewer than min_rows={min_rows}; "
                "too few to train on"
            )
    arms = hospitals[0].arms
    per_arm = sum(_arm_counts(h) for h in hospitals)
    present = [arm for arm, count in zip(arms, per_arm) if count > 0]
    if len(present) < 2:
        raise DataError(
            f"only one arm ({present[0] if present else 'none'}) has patients across the {len(hospitals)} hospitals; "
            "a treatment comparison needs at least two arms"
        )
    events = sum(_events(h) for h in hospitals)
    known = sum(h.n_known for h in hospitals)
    label = hospitals[0].outcome_label
    if events == 0:
        raise DataError(f"no events ({label}) among the {known} patients with a known outcome; nothing to predict")
    if events == known:
        raise DataError(
            f"every one of the {known} patients with a known outcome had the event ({label}); no event-free "
            "patients, nothing to predict"
        )
    return study_warnings(hospitals)


def study_warnings(hospitals: Sequence[TreatmentData]) -> List[str]:
    """What weakens a legal study, one sentence each, for the report.

    * a hospital holding a single arm: its treatment is confounded with the site;
    * a hospital with no events among its rows with a known outcome;
    * arms with patients elsewhere but none at some hospital.

    Raises
    ------
    DataError
        Hospitals with different arms or features.
    """
    hospitals = _consistent(hospitals)
    if not hospitals:
        return []
    arms = hospitals[0].arms
    counts = [_arm_counts(h) for h in hospitals]
    used = np.sum(counts, axis=0) > 0
    out: List[str] = []
    for h, count in zip(hospitals, counts):
        held = [arm for arm, c in zip(arms, count) if c > 0]
        if len(held) == 1 and used.sum() > 1:
            out.append(
                f"{h.source} holds a single arm ({held[0]}): its treatment is confounded with the site, so it "
                "says nothing about treatment effects by itself"
            )
        elif len(held) > 1:
            absent = [arm for arm, c, u in zip(arms, count, used) if c == 0 and u]
            if absent:
                out.append(f"{h.source} has no patients in arm{'s' if len(absent) > 1 else ''} {', '.join(absent)}")
        if h.n_known and _events(h) == 0:
            out.append(f"{h.source} has no events ({h.outcome_label}) among its {h.n_known} patients with a known outcome")
    return out
