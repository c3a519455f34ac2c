"""One training protocol for every method of the study.

Encrypted FL, plaintext FedAvg, centralized training and each hospital alone all run through the
same federated :class:`~fhto_native.fl.server.Server` loop: centralized training is a
federation of one party holding the pooled rows, a hospital alone is a federation of itself. So
every method gets the same budget (``rounds`` rounds of ``local_epochs`` epochs over its rows),
the same rate schedule (eta_0 decayed on validation-loss plateaus; the per-hospital factor, which
is 1 for a single party whose update variance is its own), the same model selection (the round
with the lowest validation loss, early stopping) and the same threshold rule (chosen on the validation
set, by Youden's J unless configured otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from .._files import make_folder
from ..errors import ParameterError
from ..fl.server import Server
from ..fl.scheduler import AdaptiveLR
from ..fl.transport import InProcess
from .cohort import Cohort
from .data import TreatmentData
from .dp import DPPlan
from .hospital import Hospital, derived_seed
from .metrics import choose_threshold
from .models import flat_weights
from .results import Metrics, MethodKind, MethodResult, RoundRecord

__all__ = ["Trained", "train_method", "model_seed"]


def model_seed(seed: int) -> int:
    """The initialization seed of the study's models: every method starts from the same weights."""
    return derived_seed("model", seed) % 2**31


@dataclass
class Trained:
    """A trained method: its result, its selected weights and best validation loss, and its
    parties when they ran in this process (empty for a deployment)."""

    result: MethodResult
    weights: np.ndarray  #: the selected (best validation loss) weights
    best_loss: float
    parties: Dict[str, Hospital]


def train_method(
    cohort: Cohort,
    *,
    key: str,
    kind: MethodKind,
    label: str,
    description: str,
    parties: Mapping[str, TreatmentData],
    scheduler: AdaptiveLR,
    seed: int,
    encrypted: bool = False,
    checkpoint: Optional[Path] = None,
    resume: bool = False,
    progress: Optional[Callable[[dict], None]] = None,
    hospital: Optional[str] = None,
    dp: Optional[DPPlan] = None,
) -> Trained:
    """Train one method with the study's protocol and score its selected model.

    With ``dp`` the federated method trains with differential privacy (:mod:`.dp`): one clipped,
    noised gradient step per round at the plan's rate, every round needing the plan's minimum of
    contributors, the last round's model selected, no early stopping and no validation-driven rate.
    """
    config = cohort.config
    factory = cohort.factory(model_seed(seed))
    keys = cohort.keys.encryptor if encrypted else None
    unit = cohort.keys.weight_unit(sum(len(d) for d in cohort.hospitals))
    states = None if checkpoint is None else make_folder(Path(checkpoint) / "hospitals")
    training_rows = int(sum(int((d.weight > 0).sum()) for d in parties.values()))
    hospitals = {
        name: Hospital(name, d, factory, cohort.mean, cohort.std, keys, weight_unit=unit,
                       tagger=cohort.keys.tagger(name) if encrypted else None,
                       encryption_seed=derived_seed("encryption", seed, key) if encrypted else None,
                       state_file=None if states is None else states / f"{i}.json", resume=resume,
                       dp=dp, total_rows=training_rows if dp is not None else None)
        for i, (name, d) in enumerate(parties.items())
    }
    federated = len(hospitals) > 1
    min_hospitals = (config.min_hospitals or max(1, math.ceil(len(hospitals) / 2))) if federated else 1
    min_hospitals = min(min_hospitals, len(hospitals))
    if dp is not None:
        min_hospitals = dp.min_contributors
        scheduler = AdaptiveLR.fixed(dp.lr)
    server = Server(
        flat_weights(factory()),
        InProcess({name: h.fit for name, h in hospitals.items()}),
        lambda w: cohort.score(w, cohort.validation),
        scheduler,
        public_context=cohort.keys.public_context() if encrypted else None,
        key_holder=cohort.keys.key_holder(min(2, min_hospitals), unit) if encrypted else None,
        local_epochs=config.local_epochs,
        batch_size=config.batch_size,
        seed=seed,
        min_hospitals=min_hospitals,
        timeout=config.timeout if federated else None,
        checkpoint=checkpoint,
        early_stopping=None if dp is not None else config.early_stopping,
        select_last=dp is not None,
    )
    if checkpoint is not None and resume:
        server.load_checkpoint()
        if server.round > config.rounds:
            # Every method gets the same budget: a checkpoint past it cannot be compared fairly.
            raise ParameterError(
                f"the checkpoint of {label} holds {server.round} rounds, more than --rounds {config.rounds}: resume with "
                f"--rounds {server.round} or more, or start again without --resume"
            )
    server.fit(config.rounds, progress)
    result = method_result(
        cohort, key=key, kind=kind, label=label, description=description,
        rows=int(sum(len(d) for d in parties.values())),
        history=[RoundRecord.from_server(r, {n: h.rate.log for n, h in hospitals.items()}) for r in server.history],
        best_weights=server.best_weights, best_round=server.best_round, rounds_run=server.round,
        stopped_early=server.stopped_early, hospital=hospital,
    )
    return Trained(result, server.best_weights, server.best_loss, hospitals)


def method_result(
    cohort: Cohort,
    *,
    key: str,
    kind: MethodKind,
    label: str,
    description: str,
    rows: int,
    history: List[RoundRecord],
    best_weights: np.ndarray,
    best_round: int,
    rounds_run: int,
    stopped_early: bool,
    hospital: Optional[str] = None,
) -> MethodResult:
    """A trained method's result: its selected model's threshold (chosen on the validation set by
    the study's rule) and its validation and test metrics at that threshold."""
    config = cohort.config
    val = cohort.validation.subset(cohort.validation.weight > 0)
    threshold = choose_threshold(val.y, cohort.predict(best_weights, val), weight=val.weight, criterion=config.threshold)
    return MethodResult(
        key=key,
        kind=kind,
        label=label,
        description=description,
        rows=rows,
        history=history,
        selected_round=best_round,
        rounds_run=rounds_run,
        stopped_early=stopped_early,
        converged=stopped_early or rounds_run - best_round >= config.patience,
        validation=Metrics.from_mapping(cohort.score(best_weights, cohort.validation, threshold), threshold),
        test=Metrics.from_mapping(cohort.score(best_weights, cohort.test, threshold), threshold),
        hospital=hospital,
    )
