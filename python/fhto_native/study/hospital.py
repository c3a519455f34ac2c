"""A hospital of the study: trains the treatment-response model on its own patients and returns
its update, encrypted (FHTO) or in plaintext (the FedAvg comparison)."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from .. import KeySet, PublicContext
from .._files import remove_file, write_atomic
from ..errors import FormatError, ParameterError
from ..fl.protocol import HospitalUpdate, RoundPlan, contribution, update_variance
from ..fl.scheduler import HospitalRate
from .data import TreatmentData
from .dp import DPPlan, clipped_gradient_sum
from .models import ModelFactory, design_matrix, flat_weights, set_flat_weights, train_epochs

__all__ = ["Hospital", "derived_seed"]


def derived_seed(*parts: object) -> int:
    """A 63-bit seed derived from its parts (a purpose tag and counters): distinct parts give
    independent seeds, so no two encryptions of a seeded study share their randomness."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Hospital:
    """One hospital: trains locally on its own patients and returns an encrypted update.

    Parameters
    ----------
    name: hospital id.
    data: its training rows (never leave this object); rows with censoring weight 0 do not train.
    model_factory: builds the shared architecture.
    mean, std: the federated standardization.
    keys: what it encrypts with (the shared key set, or the collective public context of multiparty
        keys), or None for plaintext FedAvg (comparison only).
    weight_unit: its FedAvg weight is n / weight_unit (1 with a shared key; the total row count
        with multiparty keys, whose range is narrower). FedAvg divides by the sum of the weights.
    tagger: with multiparty keys, signs the tag of each upload for its round (the key holders
        check each sum against its contributions' signed tags); None with a shared key.
    encryption_seed: when set, every encryption's randomness is derived from it, the round's
        training seed and this hospital's name, so a seeded study is reproducible byte for
        byte. For reproducibility only: production keys and encryptions are never seeded.
    state_file: where the hospital keeps its own state (its update variances, which never leave
        it), rewritten after every round; None keeps it in memory only.
    resume: continue from ``state_file`` (a killed run resumed); otherwise a stale file is removed.
    dp: differentially private training (:mod:`.dp`): each round one clipped full-batch gradient
        sum plus this hospital's share of the noise, sent as ``-eta H (G_i + z_i) / N`` with weight
        1 and no loss; ``total_rows`` is N, the training rows of all hospitals (public).
    """

    def __init__(
        self,
        name: str,
        data: TreatmentData,
        model_factory: ModelFactory,
        mean: np.ndarray,
        std: np.ndarray,
        keys: Optional[Union[KeySet, PublicContext]],
        *,
        weight_unit: float = 1.0,
        tagger: Optional[Callable[[bytes, int], bytes]] = None,
        encryption_seed: Optional[int] = None,
        state_file: Optional[Path] = None,
        resume: bool = False,
        dp: Optional[DPPlan] = None,
        total_rows: Optional[int] = None,
    ) -> None:
        train = data.subset(data.weight > 0)
        if dp is not None and not total_rows:
            raise ParameterError("differentially private training needs the total number of training rows")
        self.dp, self.total_rows = dp, total_rows
        if len(train) == 0:
            raise ParameterError(f"{name} has no training rows with a known outcome")
        self.name, self.data, self.keys = name, data, keys
        self.encryption_seed = encryption_seed
        self.weight_unit = float(weight_unit)
        self.tagger = tagger
        self.model = model_factory()
        self.x = design_matrix(train.X, train.treatment, len(train.arms), mean, std)
        self.y = train.y
        self.w = train.weight / train.weight.mean()
        self.n = len(data)
        self.last_local_weights: Optional[np.ndarray] = None
        self.state_file = state_file
        self.rate = HospitalRate()
        if state_file is not None:
            self._start_state(resume)

    def _start_state(self, resume: bool) -> None:
        if not resume:
            remove_file(self.state_file)
            return
        try:
            self.rate = HospitalRate.from_state(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return
        except (ValueError, FormatError) as exc:
            raise FormatError(f"{self.name}'s state file {self.state_file} is unreadable: {exc}") from None

    def fit(self, plan: RoundPlan) -> HospitalUpdate:
        """Train from the plan's weights at this hospital's own rate; return n * [u, 1, loss],
        encrypted (or in plaintext for the FedAvg comparison)."""
        t0 = time.perf_counter()
        set_flat_weights(self.model, plan.weights)
        if self.dp is not None:
            vector, weight = self._private_step(plan), 1.0
        else:
            lr = self.rate.rate(plan.eta0, plan.alpha, plan.round)
            loss = train_epochs(
                self.model, self.x, self.y, lr=lr, epochs=plan.local_epochs, batch_size=plan.batch_size,
                seed=plan.seed, weight=self.w,
            )
            local = flat_weights(self.model)
            self.last_local_weights = local
            update = local - plan.weights
            self.rate.observe(plan.round, lr, update_variance(update))
            self._save_state()
            vector, weight = contribution(update, loss), float(self.n)
        t1 = time.perf_counter()
        seconds = {"train": t1 - t0}
        if self.keys is None:
            return HospitalUpdate(self.name, plan.round, plain=weight * vector, seconds=seconds)
        seed = None if self.encryption_seed is None else derived_seed("update", self.encryption_seed, self.name, plan.seed)
        payload = self.keys.encrypt(vector, weight=weight / self.weight_unit, parties=plan.parties, threads=1, seed=seed).to_bytes()
        seconds["encrypt"] = time.perf_counter() - t1
        tag = None if self.tagger is None else self.tagger(payload, plan.round)
        return HospitalUpdate(self.name, plan.round, payload=payload, seconds=seconds, tag=tag)

    def _private_step(self, plan: RoundPlan) -> np.ndarray:
        """``[-eta H (G_i + z_i) / N, 1, 0]``: the clipped gradient sum of every training row plus
        this hospital's noise share (seeded by the round's seed and this hospital's name, so a
        study reproduces; the training loss is not released)."""
        dp = self.dp
        g = clipped_gradient_sum(self.model, self.x, self.y, self.w, dp.clip)
        if dp.hospital_noise_std > 0:
            rng = np.random.default_rng(derived_seed("dp-noise", plan.seed, self.name))
            g = g + rng.normal(0.0, dp.hospital_noise_std, g.shape)
        update = -dp.lr * dp.hospitals * g / float(self.total_rows)
        self.last_local_weights = plan.weights + update
        return contribution(update, 0.0)

    def _save_state(self) -> None:
        if self.state_file is not None:
            write_atomic(self.state_file, json.dumps(self.rate.state_dict()).encode())
