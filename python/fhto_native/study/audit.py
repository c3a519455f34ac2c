"""The membership-inference audit, in the two views of the threat model.

* One hospital's update (its local model after a round): what the server of plaintext FL sees.
  HE removes this view.
* The released global model: what every participant sees, with or without HE.

Members are a target's training patients with a known outcome; non-members are test patients
drawn to the members' outcome rate (under a non-IID split a hospital's label mix differs from
the test set's, and the loss would then reveal the label rather than membership). Two attacks:
the loss threshold, and reference models trained on random halves of the population pool
(validation and test patients, never a training patient), each example calibrated only by the
models that did not train on it (offline LiRA). Every result carries a label-permutation chance
reference and bootstrap intervals (:mod:`fhto_native.study.privacy`).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .cohort import Cohort, concat
from .data import TreatmentData
from .hospital import Hospital, derived_seed
from .models import per_example_losses, train_epochs
from .privacy import loss_threshold_attack, reference_attack
from .results import AuditResult, AuditRow
from .training import model_seed

__all__ = ["run_audit", "MembershipAuditor", "REFERENCE_EPOCHS", "UPDATE", "GLOBAL"]

#: Epochs each membership-inference reference model trains on its half of the population pool.
REFERENCE_EPOCHS = 20
#: The two views.
UPDATE = "update"
GLOBAL = "global"

Printer = Callable[[str], None]


class MembershipAuditor:
    """The audit's attacker: reference models trained once on random halves of the population
    pool, then :meth:`attack` on any target model (its rows of both attacks)."""

    def __init__(self, cohort: Cohort, say: Printer) -> None:
        config = cohort.config
        self.cohort, self.say = cohort, say
        self.seed = derived_seed("audit", config.seed) % 2**31
        self.rng = np.random.default_rng(self.seed)
        pool = concat([known(cohort.validation), known(cohort.test)], "population pool (validation and test patients)")
        self.test = known(cohort.test)
        x_pool = cohort.design(pool)
        offset = int((cohort.validation.weight > 0).sum())
        self.references, inside = [], []
        say(f"membership-inference audit: training {config.reference_models} reference models")
        for r in range(config.reference_models):
            half = self.rng.random(len(pool)) < 0.5
            model = cohort.factory(model_seed(self.seed + 1 + r))()
            train_epochs(model, x_pool[torch.from_numpy(half)], pool.y[half], lr=config.eta0, epochs=REFERENCE_EPOCHS,
                         batch_size=config.batch_size, seed=self.seed + 1 + r)
            self.references.append(model)
            inside.append(half[offset:])  # which test rows this reference model trained on
            say(f"  reference model {r + 1}/{config.reference_models} trained")
        self.inside_test = np.stack(inside)
        self.design = (
            f"members: a target's training patients with a known outcome; non-members: test patients drawn to the "
            f"members' outcome rate; {config.reference_models} reference models trained on random halves of the "
            f"{len(pool)} validation and test patients; chance reference: {config.audit_permutations} label "
            f"permutations; intervals: {config.audit_permutations} bootstrap resamples"
        )

    def _matched_nonmembers(self, members: TreatmentData) -> np.ndarray:
        test, rng = self.test, self.rng
        rate = float(members.y.mean())
        ones = rng.permutation(np.flatnonzero(test.y == 1.0))
        zeros = rng.permutation(np.flatnonzero(test.y == 0.0))
        # As many non-members as the test set allows at exactly the members' outcome rate.
        size = len(test)
        if rate > 0:
            size = min(size, int(len(ones) / rate))
        if rate < 1:
            size = min(size, int(len(zeros) / (1 - rate)))
        n_ones = int(round(rate * size))
        return np.sort(np.concatenate([ones[:n_ones], zeros[: size - n_ones]]))

    def attack(self, view: str, target: str, weights: np.ndarray, members: TreatmentData) -> List[AuditRow]:
        """Both attacks on one target model: the loss threshold, then the reference-model attack."""
        cohort, config = self.cohort, self.cohort.config
        self.say(f"  attacking {target} ({view}): {config.audit_permutations} permutations and resamples")
        model = cohort.model(weights)
        picked = self._matched_nonmembers(members)
        nonmembers = self.test.subset(picked)
        x_m, x_n = cohort.design(members), cohort.design(nonmembers)
        lm = per_example_losses(model, x_m, members.y)
        ln = per_example_losses(model, x_n, nonmembers.y)
        rm = np.stack([per_example_losses(ref, x_m, members.y) for ref in self.references])
        rn = np.stack([per_example_losses(ref, x_n, nonmembers.y) for ref in self.references])
        rn[self.inside_test[:, picked]] = np.nan
        options = dict(n_perm=config.audit_permutations, n_boot=config.audit_permutations,
                       seed=derived_seed("attack", self.seed, view, target) % 2**31)
        return [AuditRow(view, target, loss_threshold_attack(lm, ln, **options)),
                AuditRow(view, target, reference_attack(lm, ln, rm, rn, **options))]


def known(d: TreatmentData) -> TreatmentData:
    """The rows the audit scores: those with a known outcome."""
    return d.subset(d.weight > 0)


def run_audit(
    cohort: Cohort,
    global_models: Dict[str, np.ndarray],
    hospitals: Optional[Dict[str, Hospital]],
    say: Printer,
) -> AuditResult:
    """Attack each hospital's last local model (when ``hospitals``, the plaintext run's parties,
    are given) and each global model in ``global_models`` (target label -> weights)."""
    auditor = MembershipAuditor(cohort, say)
    rows: List[AuditRow] = []
    if hospitals is not None:
        for name, hospital in hospitals.items():
            if hospital.last_local_weights is not None:
                rows += auditor.attack(UPDATE, name, hospital.last_local_weights, known(hospital.data))
    members = known(concat(cohort.hospitals, "every hospital's training rows"))
    for target, weights in global_models.items():
        rows += auditor.attack(GLOBAL, target, weights, members)
    return AuditResult(rows=rows, design=auditor.design)
