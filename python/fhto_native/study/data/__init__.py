"""The study's data: treatment data sets, hospitals, censoring and federated standardization.

A :class:`TreatmentData` holds one hospital's (or one data set's) patients: raw clinical
features, the treatment arm each patient received and a binary outcome at a fixed horizon with
a weight per row. Outcomes defined from censored follow-up keep the patients censored before the
horizon (weight 0) and weight the others by inverse probability of censoring (:mod:`.censoring`:
:func:`ipcw_weights`, :func:`with_ipcw`, checked against Kaplan-Meier, :func:`km_survival`).

* :mod:`.datasets`: the bundled trials, :func:`load_colon` (randomized) and :func:`load_gbsg2`
  (hormonal therapy not randomized for every patient).
* :mod:`.files`: bring your own data, one CSV or Parquet file per hospital
  (:func:`load_hospital_files`), every problem refused with the file and column named.
* :mod:`.checks`: :func:`check_federation` refuses degenerate studies, :func:`study_warnings`
  flags weak ones.
* :mod:`.splits`: simulated hospitals (:func:`split_hospitals`) and the train / validation /
  test holdout (:func:`split_holdout`).
* :mod:`.standardization`: the pooled mean and standard deviation of every feature from
  per-hospital sums only (:func:`federated_standardization`), so the sums can be encrypted.
"""
from __future__ import annotations

from .censoring import StepFunction, censoring_survival, horizon_status, ipcw_weights, km_survival, with_ipcw
from .checks import DEFAULT_MIN_ROWS, check_federation, study_warnings
from .container import TreatmentData, concatenate
from .datasets import (
    COLON_RANDOMIZED,
    GBSG2_RANDOMIZED,
    GOOD_OUTCOME_LABEL,
    HORIZON_DAYS,
    OUTCOME_LABEL,
    load_colon,
    load_gbsg2,
)
from .files import SEPARATORS, load_hospital_files, sniff_separator
from .splits import SPLIT_METHODS, outcome_status, split_holdout, split_hospitals
from .standardization import (
    EXPONENT_RANGE,
    MAX_ROWS_PER_HOSPITAL,
    federated_standardization,
    magnitude_exponents,
    moment_vector,
    moments_from_sum,
)

__all__ = [
    "TreatmentData",
    "concatenate",
    "HORIZON_DAYS",
    "COLON_RANDOMIZED",
    "GBSG2_RANDOMIZED",
    "OUTCOME_LABEL",
    "GOOD_OUTCOME_LABEL",
    "load_colon",
    "load_gbsg2",
    "SEPARATORS",
    "sniff_separator",
    "load_hospital_files",
    "DEFAULT_MIN_ROWS",
    "check_federation",
    "study_warnings",
    "SPLIT_METHODS",
    "outcome_status",
    "split_hospitals",
    "split_holdout",
    "EXPONENT_RANGE",
    "MAX_ROWS_PER_HOSPITAL",
    "magnitude_exponents",
    "moment_vector",
    "moments_from_sum",
    "federated_standardization",
    "StepFunction",
    "km_survival",
    "censoring_survival",
    "horizon_status",
    "ipcw_weights",
    "with_ipcw",
]
