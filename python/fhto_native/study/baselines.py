"""The comparisons FL is measured against: centralized training on the pooled rows (what pooling
all hospitals' patients in one place would give; not private) and each hospital alone (what a
hospital gets without the federation). Both train with the study's one protocol
(:mod:`fhto_native.study.training`)."""
from __future__ import annotations

from typing import List

from .cohort import Cohort, concat
from .data import with_ipcw
from .results import MethodKind
from .training import Trained, train_method

__all__ = ["centralized", "hospitals_alone"]


def centralized(cohort: Cohort) -> Trained:
    """All training rows pooled in one place, censoring weights re-estimated on the pool."""
    pooled = with_ipcw(concat(cohort.hospitals, "pooled training rows of every hospital"))
    return train_method(
        cohort,
        key="centralized",
        kind=MethodKind.CENTRALIZED,
        label="centralized (pooled data)",
        description="all training patients pooled in one place (a reference; not private)",
        parties={"pooled": pooled},
        scheduler=cohort.config.scheduler(),
        seed=cohort.config.seed,
    )


def hospitals_alone(cohort: Cohort) -> List[Trained]:
    """Each hospital on its own rows, selected on the same validation set."""
    return [
        train_method(
            cohort,
            key=f"alone: {name}",
            kind=MethodKind.ALONE,
            label=f"{name} alone",
            description=f"{name} trains only on its own {len(d)} patients",
            parties={name: d},
            scheduler=cohort.config.scheduler(),
            seed=cohort.config.seed,
            hospital=name,
        )
        for name, d in zip(cohort.names, cohort.hospitals)
    ]
