"""The typed results of a study, shared by the study (which fills them) and the report (which
reads them). Nothing here computes; every number is measured by the study's modules.

:class:`StudyResults` is the whole record of one ``fhto run``; :meth:`StudyResults.to_json`
gives its ``results.json`` form (plain JSON types; NaN and infinities as ``null``).
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

__all__ = [
    "Metrics",
    "RoundRecord",
    "MethodKind",
    "MethodResult",
    "HospitalSummary",
    "DataSummary",
    "KaplanMeierCheck",
    "AuditRow",
    "AuditResult",
    "SchedulerRun",
    "SchedulerSummary",
    "SchedulerEffect",
    "SchedulerExperiment",
    "StudyResults",
    "to_jsonable",
]

#: The metric names of :class:`Metrics`, in table order.
METRIC_NAMES = ("loss", "accuracy", "precision", "recall", "f1", "auc")


@dataclass(frozen=True)
class Metrics:
    """Held-out metrics of one model on one set, censoring-weighted where the outcome is.

    ``threshold`` is the probability at or above which a patient is predicted to have the bad
    outcome (chosen on the validation set; accuracy, precision, recall and F1 use it).
    """

    loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float
    threshold: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, float], threshold: float) -> "Metrics":
        return cls(**{name: float(values[name]) for name in METRIC_NAMES}, threshold=float(threshold))


@dataclass(frozen=True)
class RoundRecord:
    """One federated round as the server recorded it.

    ``validation`` holds the global model's validation metrics at threshold 0.5 (the selection
    criterion is ``validation["loss"]``); ``lr`` and ``sigma2`` are per hospital; ``seconds``
    per phase (train, encrypt, aggregate, decrypt, evaluate) and ``bytes`` per kind (upload,
    sum) are what the round cost.
    """

    round: int
    validation: Dict[str, float]
    eta0: float
    lr: Dict[str, float]  #: from the hospitals' own logs (in process only; the server never sees them)
    sigma2: Dict[str, float]  #: likewise
    seconds: Dict[str, float]
    bytes: Dict[str, int]
    failures: List[str]
    reported: int

    @classmethod
    def from_server(
        cls, record: Mapping[str, Any], hospital_logs: Mapping[str, Mapping[int, Mapping[str, float]]]
    ) -> "RoundRecord":
        """From a :class:`~fhto_native.fl.server.Server` history entry and the hospitals' own
        logs of their rates and update variances (which the server never sees)."""
        rnd = int(record["round"])
        logs = {name: log[rnd] for name, log in hospital_logs.items() if rnd in log}
        return cls(
            round=rnd,
            validation={k[4:]: float(v) for k, v in record.items() if k.startswith("val_")},
            eta0=float(record["eta0"]),
            lr={name: float(entry["lr"]) for name, entry in logs.items()},
            sigma2={name: float(entry["sigma2"]) for name, entry in logs.items()},
            seconds={k: float(v) for k, v in record["seconds"].items()},
            bytes={k: int(v) for k, v in record["bytes"].items()},
            failures=[str(f) for f in record["failures"]],
            reported=int(record["reported"]),
        )


class MethodKind(str, enum.Enum):
    """Which way a model was trained."""

    ENCRYPTED = "encrypted"  #: federated, every update CKKS-encrypted (FHTO)
    PLAINTEXT = "plaintext"  #: federated, updates in the clear (FedAvg)
    CENTRALIZED = "centralized"  #: all training rows pooled in one place
    ALONE = "alone"  #: one hospital on its own rows


@dataclass(frozen=True)
class MethodResult:
    """One trained model of the study and how it was selected.

    Every method trains with the same budget (``rounds`` x ``local_epochs`` over its rows), the
    same rate schedule and the same selection: the round with the lowest validation loss
    (``selected_round``), stopping after ``early_stopping`` rounds without improvement.
    ``converged`` is False when validation loss was still improving near the last round run:
    more rounds might have helped.
    """

    key: str
    kind: MethodKind
    label: str
    description: str
    rows: int
    history: List[RoundRecord]
    selected_round: int
    rounds_run: int
    stopped_early: bool
    converged: bool
    validation: Metrics
    test: Metrics
    hospital: Optional[str] = None


@dataclass(frozen=True)
class HospitalSummary:
    """One hospital's training rows: how many, how many with a known outcome, events, arms."""

    name: str
    source: str
    rows: int
    known: int
    censored: int
    events: int
    arms: Dict[str, int]


@dataclass(frozen=True)
class DataSummary:
    """What the study ran on, every label taken from the data and the command line."""

    dataset: str
    description: str
    outcome: str
    outcome_label: str
    good_outcome_label: str
    arms: List[str]
    features: List[str]
    split: str
    hospitals: List[HospitalSummary]
    validation_rows: int
    test_rows: int
    censoring: str
    randomized: Optional[bool]
    standardization: str
    warnings: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class KaplanMeierCheck:
    """A policy row's interval against a Kaplan-Meier estimate of the same quantity."""

    policy: str
    scope: str
    kaplan_meier: float
    value: float
    ci_low: float
    ci_high: float

    @property
    def inside(self) -> bool:
        return self.ci_low <= self.kaplan_meier <= self.ci_high


@dataclass(frozen=True)
class AuditRow:
    """One attack against one target in one view of the threat model.

    ``view`` is ``"update"`` (one hospital's update: what a plaintext-FL server sees; HE removes
    it) or ``"global"`` (the released global model: seen by every participant, with or without
    HE). ``result`` is a :class:`fhto_native.study.privacy.AttackResult`.
    """

    view: str
    target: str
    result: Any


@dataclass(frozen=True)
class AuditResult:
    """The membership-inference audit: every row, and how members and non-members were drawn."""

    rows: List[AuditRow]
    design: str


@dataclass(frozen=True)
class SchedulerRun:
    """One run of the scheduler experiment: an arm, a label-noise level and a seed."""

    arm: str
    noise: float
    seed: int
    test_auc: float
    test_loss: float
    best_val_loss: float
    selected_round: int
    rounds_run: int
    noisy_lr_ratio: float
    noisy_sigma2: float


@dataclass(frozen=True)
class SchedulerSummary:
    """Mean and sample standard deviation over seeds of one arm at one noise level."""

    arm: str
    noise: float
    seeds: int
    test_auc_mean: float
    test_auc_sd: float
    test_loss_mean: float
    test_loss_sd: float
    noisy_lr_ratio_mean: float


@dataclass(frozen=True)
class SchedulerEffect:
    """A paired difference between two arms over the same seeds (first minus second), with a
    95% t-interval; ``metric`` is ``"test_auc"`` or ``"test_loss"``."""

    noise: float
    first: str
    second: str
    metric: str
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    seeds: int

    @property
    def demonstrated(self) -> bool:
        """True when the interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class SchedulerExperiment:
    """Three arms (adaptive; decay only, alpha = 0; fixed) over seeds and label-noise levels,
    one hospital's labels flipped; ``conclusion`` is the plain sentence the report prints."""

    noisy_hospital: str
    arms: List[str]
    noise_levels: List[float]
    seeds: List[int]
    runs: List[SchedulerRun]
    summary: List[SchedulerSummary]
    effects: List[SchedulerEffect]
    conclusion: str

    def summary_for(self, arm: str, noise: float) -> SchedulerSummary:
        return next(s for s in self.summary if s.arm == arm and s.noise == noise)


#: The default deployment: every party in one process, validation on the study's held-out rows.
IN_PROCESS = ("in process (hospitals, server and key holder in one Python process); validation central: the "
              "study's held-out validation rows score every round")


@dataclass(frozen=True)
class FrontierPoint:
    """One differentially private training run of the privacy-utility frontier."""

    epsilon: float  #: the target (inf: clipping only, no noise)
    seed: int
    epsilon_spent: float
    noise_multiplier: float
    test_auc: float
    policy_value: float  #: value of the model's treatment policy on the test set
    policy_low: float
    policy_high: float
    mia_auc: float  #: the reference-model membership attack on the global model
    mia_auc_low: float
    mia_auc_high: float
    mia_chance_auc_95: float
    mia_tpr_at_1pct_fpr: float
    mia_tpr_low: float
    mia_tpr_high: float
    mia_chance_tpr_95: float


@dataclass(frozen=True)
class FrontierSummary:
    """The frontier at one epsilon, over its seeds: means and the seeds' range."""

    epsilon: float
    seeds: int
    epsilon_spent: float
    test_auc: float
    test_auc_min: float
    test_auc_max: float
    policy_value: float
    policy_value_min: float
    policy_value_max: float
    mia_auc: float
    mia_auc_min: float
    mia_auc_max: float
    mia_tpr_at_1pct_fpr: float
    mia_chance_auc_95: float
    mia_chance_tpr_95: float


@dataclass(frozen=True)
class PrivacyFrontier:
    """Test AUC, policy value and membership inference against epsilon (DP-FedSGD, several seeds)."""

    points: List[FrontierPoint]
    summary: List[FrontierSummary]
    design: str


@dataclass
class StudyResults:
    """Everything one ``fhto run`` measured."""

    config: Dict[str, Any]
    data: DataSummary
    key_set: str
    methods: List[MethodResult]
    weights_difference: Optional[float]
    policy: Any  # fhto_native.study.policy.PolicyTable
    policy_model: str
    kaplan_meier: List[KaplanMeierCheck]
    audit: Optional[AuditResult]
    scheduler: Optional[SchedulerExperiment]
    seconds: float
    warnings: List[str] = field(default_factory=list)
    #: where the encrypted method ran and how it was validated
    deployment: str = IN_PROCESS
    #: who holds the keys: one shared key set, or multiparty threshold keys (and their settings)
    key_model: Dict[str, Any] = field(default_factory=lambda: {"kind": "shared"})
    #: the differential-privacy mechanism of the federated methods and the epsilon it spent (None: off)
    differential_privacy: Optional[Dict[str, Any]] = None
    #: the privacy-utility frontier (None when it did not run)
    privacy_frontier: Optional["PrivacyFrontier"] = None

    def method(self, kind: MethodKind) -> Optional[MethodResult]:
        """The (first) method of a kind, or None."""
        return next((m for m in self.methods if m.kind is kind), None)

    def methods_of(self, kind: MethodKind) -> List[MethodResult]:
        return [m for m in self.methods if m.kind is kind]

    def to_json(self) -> Dict[str, Any]:
        return to_jsonable(self)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: dataclasses to dicts, enums to their values, numpy to Python, NaN and
    infinities to None, tuples to lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in ("inside", "demonstrated", "distinguishable"):
            if isinstance(getattr(type(obj), name, None), property):
                out[name] = bool(getattr(obj, name))
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return str(obj)
