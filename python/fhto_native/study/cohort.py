"""The prepared cohort of one study: hospitals' training rows, the held-out sets, the federated
standardization, the study's key set, and how to score a model on held-out rows.

Preparation, in order: load the trial (or the hospitals' files), hold out a validation and a test
set, split the training patients into hospitals (or take one file per hospital), estimate every
set's censoring weights from its own rows, refuse degenerate studies, and standardize the
features from sums encrypted under the study's key set.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import aggregate
from .config import StudyConfig
from .keys import KeyModel, make_keys
from .data import (
    TreatmentData,
    check_federation,
    concatenate,
    federated_standardization,
    load_colon,
    load_gbsg2,
    load_hospital_files,
    split_holdout,
    split_hospitals,
    study_warnings,
    with_ipcw,
)
from .hospital import derived_seed
from .metrics import binary_metrics
from .models import TreatmentResponseModel, design_matrix, predict, set_flat_weights
from .results import DataSummary, HospitalSummary

__all__ = ["Cohort", "prepare", "concat"]

Printer = Callable[[str], None]

#: Rows with a known outcome every hospital needs to train on.
MIN_HOSPITAL_ROWS = 10


@dataclass
class Cohort:
    """The data of one study, ready to train on."""

    config: StudyConfig
    hospitals: List[TreatmentData]
    names: List[str]
    validation: TreatmentData
    test: TreatmentData
    full: Optional[TreatmentData]
    mean: np.ndarray
    std: np.ndarray
    arms: Tuple[str, ...]
    keys: KeyModel
    summary: DataSummary
    _scoring: Dict[TreatmentData, Tuple[TreatmentData, torch.Tensor]] = field(default_factory=dict, init=False, repr=False)
    _scorer: Optional[torch.nn.Module] = field(default=None, init=False, repr=False)

    def design(self, d: TreatmentData) -> torch.Tensor:
        return design_matrix(d.X, d.treatment, len(self.arms), self.mean, self.std)

    def factory(self, seed: int) -> Callable[[], torch.nn.Module]:
        """The shared architecture, initialized from ``seed``."""
        hidden = self.config.hidden

        def make() -> torch.nn.Module:
            torch.manual_seed(seed)
            return TreatmentResponseModel(self.mean.size, len(self.arms), hidden)

        return make

    def model(self, weights: np.ndarray) -> torch.nn.Module:
        """A new model holding these weights (its initialization is overwritten, so unseeded)."""
        model = TreatmentResponseModel(self.mean.size, len(self.arms), self.config.hidden)
        set_flat_weights(model, weights)
        return model

    def predict(self, weights: np.ndarray, d: TreatmentData) -> np.ndarray:
        return predict(self.model(weights), self.design(d))

    def score(self, weights: np.ndarray, d: TreatmentData, threshold: float = 0.5) -> Dict[str, float]:
        """Censoring-weighted metrics of the model with these weights on the known rows of ``d``.

        Called every round of every method: the known rows' design matrix is built once per data
        set, and one scoring model is reused.
        """
        if d not in self._scoring:
            known = d.subset(d.weight > 0)
            self._scoring[d] = (known, self.design(known))
        known, x = self._scoring[d]
        if self._scorer is None:
            self._scorer = self.model(weights)
        else:
            set_flat_weights(self._scorer, weights)
        return binary_metrics(known.y, predict(self._scorer, x), threshold=threshold, weight=known.weight)


def concat(parts: Sequence[TreatmentData], source: str) -> TreatmentData:
    """Rows of several data sets as one (every per-row field; weights as they were: re-estimate
    them with ``with_ipcw`` where the pooled rows are one population)."""
    return concatenate(parts, source=source)


def _load(config: StudyConfig, say: Printer) -> Tuple[Optional[TreatmentData], List[TreatmentData], TreatmentData, TreatmentData, str]:
    """(whole cohort or None, hospitals, validation, test, split description)."""
    split = config.resolved_split
    if config.dataset == "csv":
        per_file = load_hospital_files(
            config.files, config.features, config.treatment, config.outcome, config.arms,
            time=config.time, event=config.event, horizon=config.horizon,
            outcome_label=config.outcome_label, randomized=config.randomized,
        )
        for d in per_file:
            say(f"data: {d.describe()}")
        if split == "files":
            parts = [split_holdout(d, seed=derived_seed("holdout", config.seed, i) % 2**31) for i, d in enumerate(per_file)]
            hospitals = [dataclasses.replace(p[0], source=d.source) for p, d in zip(parts, per_file)]
            validation = concat([p[1] for p in parts], "validation rows held out at every hospital")
            test = concat([p[2] for p in parts], "test rows held out at every hospital")
            return None, hospitals, validation, test, f"one file per hospital ({len(per_file)} files)"
        full = per_file[0]
    else:
        full = load_colon() if config.dataset == "colon" else load_gbsg2()
        say(f"data: {full.describe()}")
    train, validation, test = split_holdout(full, seed=config.seed)
    hospitals = split_hospitals(
        # A column split takes its hospital count from the data.
        train, config.resolved_hospitals or 1, split, alpha=config.dirichlet_alpha, column=config.split_column,
        seed=config.seed, min_rows=MIN_HOSPITAL_ROWS,
    )
    if split == "column":
        how = f"one hospital per value of column {config.split_column!r} ({len(hospitals)} values)"
    elif split == "iid":
        how = f"{len(hospitals)} simulated hospitals, patients dealt at random (IID)"
    else:
        how = (f"{len(hospitals)} simulated hospitals, non-IID: Dirichlet over the outcome "
               f"(concentration {config.dirichlet_alpha:g})")
    return full, hospitals, validation, test, how


#: The first round number of the standardization passes' contribution tags (training uses 1, 2, ...).
STANDARDIZATION_ROUNDS = 1 << 62


def prepare(config: StudyConfig, say: Printer) -> Cohort:
    """Load, hold out, split, weight, check and standardize (see the module docstring)."""
    full, hospitals, validation, test, how = _load(config, say)
    # Censoring weights from each set's own rows: a hospital's censoring is estimated locally.
    hospitals = [with_ipcw(h) for h in hospitals]
    validation, test = with_ipcw(validation), with_ipcw(test)
    check_federation(hospitals, min_rows=MIN_HOSPITAL_ROWS)
    names = [f"hospital {i + 1}" for i in range(len(hospitals))]
    warnings = list(study_warnings(hospitals))
    keys = make_keys(config, names)
    if keys.kind == "threshold":
        c = keys.consortium
        say(f"  multiparty keys: {c.describe()}; round 0 took {keys.generation.seconds:.2f} s")

    passes = iter(range(1_000))

    def encrypted_sum(vectors: List[np.ndarray]) -> np.ndarray:
        pass_index = next(passes)
        uploads = [
            keys.encryptor.encrypt(
                v, parties=len(vectors), threads=1, seed=derived_seed("standardization", config.seed, pass_index, i)
            ).to_bytes()
            for i, v in enumerate(vectors)
        ]
        # Multiparty keys: each hospital signs its upload's tag; the standardization passes use
        # rounds of their own, far above any training round.
        signers = [keys.tagger(name) for name in names]
        tags = [sign(u, STANDARDIZATION_ROUNDS + pass_index) for sign, u in zip(signers, uploads) if sign]
        total = aggregate(uploads, keys.public_context(), threads=1).to_bytes()
        return keys.decrypt_sum(total, tags=tags or None, round=STANDARDIZATION_ROUNDS + pass_index)

    t0 = time.perf_counter()
    mean, std = federated_standardization(hospitals, encrypted_sum)
    seconds = time.perf_counter() - t0
    first = hospitals[0]
    arms = first.arms
    summary = DataSummary(
        dataset=config.dataset if config.dataset != "csv" else f"{len(config.files)} hospital file(s)",
        description=(full.describe() if full is not None else "; ".join(h.describe() for h in hospitals)),
        outcome=first.outcome,
        outcome_label=_label(first, "outcome_label", "bad outcome"),
        good_outcome_label=_label(first, "good_outcome_label", "good outcome"),
        arms=list(arms),
        features=list(first.feature_names),
        split=how,
        hospitals=[
            HospitalSummary(
                name=name, source=h.source, rows=len(h), known=int((h.weight > 0).sum()),
                censored=int((h.weight == 0).sum()), events=int(h.y[h.weight > 0].sum()),
                arms={arm: int(c) for arm, c in zip(arms, np.bincount(h.treatment, minlength=len(arms)))},
            )
            for name, h in zip(names, hospitals)
        ],
        validation_rows=len(validation),
        test_rows=len(test),
        censoring=_censoring_text(first, [*hospitals, validation, test],
                                  "days" if config.dataset != "csv" else "units of the time column"),
        randomized=getattr(first, "randomized", None),
        standardization=(
            f"means and standard deviations from per-hospital sums, encrypted and summed ({seconds:.2f} s); "
            "no hospital's rows were pooled"
        ),
        warnings=warnings,
    )
    return Cohort(config, hospitals, names, validation, test, full, mean, std, arms, keys, summary)


def _label(d: TreatmentData, name: str, fallback: str) -> str:
    value = getattr(d, name, None)
    return str(value) if value else fallback


def _censoring_text(first: TreatmentData, sets: Sequence[TreatmentData], units: str) -> str:
    if first.time is None:
        return "none: the outcome is a 0/1 column known for every patient"
    censored = sum(int((d.weight == 0).sum()) for d in sets)
    total = sum(len(d) for d in sets)
    return (
        f"{censored} of {total} patients were censored before the horizon ({first.horizon:g} {units}) without the "
        "event; they are kept, and every patient with a known outcome is weighted by the inverse probability of "
        "remaining uncensored (Kaplan-Meier of the censoring times, estimated within each hospital and each "
        "held-out set) in the training loss, the validation metrics and the policy values"
    )
