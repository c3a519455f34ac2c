"""Federated rounds: hospitals, the aggregation server, and the key holder.

The shape follows Flower's strategy API: the server has one method per round phase
(:meth:`Server.configure_round`, :meth:`Server.collect`, :meth:`Server.aggregate`,
:meth:`Server.apply`, :meth:`Server.evaluate`), and the aggregation math lives in pure functions
(:func:`fedavg`, :func:`update_variance`) that are tested without encryption; the encrypted path
is tested against them.

What crosses the hospital/server boundary is a :class:`HospitalUpdate`: the encrypted batch
(bytes) and a few plaintext scalars (round, hospital id, n_i, sigma_i^2). ``to_wire`` /
``from_wire`` give it a byte form, so a network transport can replace the in-process one without
touching training or aggregation. The server never holds a secret key: it sums ciphertexts with
an :class:`~fhto_native.Accumulator` over the public context and asks the :class:`KeyHolder` to
decrypt only the sum.
"""
from __future__ import annotations

import json
import math
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .. import Accumulator, KeySet, PublicContext
from ..errors import FhtoError, FormatError, ParameterError
from .data import TreatmentData
from .metrics import binary_metrics
from .models import ModelFactory, design_matrix, flat_weights, predict, set_flat_weights, train_epochs
from .scheduler import AdaptiveLR

__all__ = [
    "fedavg",
    "update_variance",
    "RoundPlan",
    "HospitalUpdate",
    "Hospital",
    "KeyHolder",
    "Server",
    "RoundFailed",
]


# -- pure aggregation math ---------------------------------------------------------------------


def update_variance(update: np.ndarray) -> float:
    """sigma^2 = (1/K) sum_k (u_k - mean(u))^2 over the K entries of one update."""
    u = np.asarray(update, dtype=np.float64)
    return float(np.var(u)) if u.size else 0.0


def fedavg(weighted_sum: np.ndarray, total_n: int) -> np.ndarray:
    """FedAvg update from the sum of n_i * u_i and the sum of n_i."""
    if total_n <= 0:
        raise ParameterError(f"total sample count must be positive; got {total_n}")
    return np.asarray(weighted_sum, dtype=np.float64) / float(total_n)


# -- messages ----------------------------------------------------------------------------------


@dataclass
class RoundPlan:
    """What the server sends a hospital: the global model and its learning rate this round."""

    round: int
    weights: np.ndarray
    lr: float
    local_epochs: int
    batch_size: int
    seed: int
    parties: int


@dataclass
class HospitalUpdate:
    """What a hospital sends back. Only ``payload`` carries the update, and only encrypted
    (plaintext FedAvg, for comparison, puts n_i * u_i in ``plain`` instead)."""

    hospital: str
    round: int
    n: int
    sigma2: float
    payload: Optional[bytes] = None
    plain: Optional[np.ndarray] = None
    train_loss: float = float("nan")
    seconds: Dict[str, float] = field(default_factory=dict)

    def to_wire(self) -> bytes:
        """Length-prefixed JSON header (the plaintext scalars) followed by the encrypted batch."""
        if self.payload is None:
            raise ParameterError("only encrypted updates have a wire form")
        head = json.dumps(
            {"hospital": self.hospital, "round": self.round, "n": self.n, "sigma2": self.sigma2,
             "train_loss": self.train_loss, "seconds": self.seconds}
        ).encode()
        return struct.pack("<I", len(head)) + head + self.payload

    @classmethod
    def from_wire(cls, data: bytes) -> "HospitalUpdate":
        if len(data) < 4:
            raise FormatError("hospital update is truncated")
        (size,) = struct.unpack_from("<I", data)
        if size > len(data) - 4:
            raise FormatError("hospital update header is truncated")
        try:
            head = json.loads(data[4 : 4 + size])
            return cls(payload=bytes(data[4 + size :]), **head)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"hospital update header is malformed: {exc}") from None


class RoundFailed(FhtoError, RuntimeError):
    """Too few hospitals reported in a round, after the allowed retries."""


# -- parties -----------------------------------------------------------------------------------


class Hospital:
    """One hospital: trains locally on its own patients and returns an encrypted update.

    Parameters
    ----------
    name: hospital id.
    data: its training rows (never leave this object).
    model_factory: builds the shared architecture.
    mean, std: the federated standardization.
    keys: the shared key set, or None for plaintext FedAvg (comparison only).
    """

    def __init__(
        self,
        name: str,
        data: TreatmentData,
        model_factory: ModelFactory,
        mean: np.ndarray,
        std: np.ndarray,
        keys: Optional[KeySet],
    ) -> None:
        if len(data) == 0:
            raise ParameterError(f"{name} has no training rows")
        self.name, self.data, self.keys = name, data, keys
        self.model = model_factory()
        self.x = design_matrix(data.X, data.treatment, len(data.arms), mean, std)
        self.last_local_weights: Optional[np.ndarray] = None

    def fit(self, plan: RoundPlan) -> HospitalUpdate:
        t0 = time.perf_counter()
        set_flat_weights(self.model, plan.weights)
        loss = train_epochs(
            self.model, self.x, self.data.y, lr=plan.lr, epochs=plan.local_epochs, batch_size=plan.batch_size,
            seed=plan.seed,
        )
        local = flat_weights(self.model)
        self.last_local_weights = local
        update = local - plan.weights
        n = len(self.data)
        sigma2 = update_variance(update)
        t1 = time.perf_counter()
        seconds = {"train": t1 - t0}
        if self.keys is None:
            return HospitalUpdate(self.name, plan.round, n, sigma2, plain=n * update, train_loss=loss, seconds=seconds)
        payload = self.keys.encrypt(update, weight=n, parties=plan.parties, threads=1).to_bytes()
        seconds["encrypt"] = time.perf_counter() - t1
        return HospitalUpdate(self.name, plan.round, n, sigma2, payload=payload, train_loss=loss, seconds=seconds)


class KeyHolder:
    """Holds the secret key; decrypts only aggregates (sums of at least ``min_contributions``)."""

    def __init__(self, keys: KeySet, min_contributions: int = 1) -> None:
        self._keys = keys
        self.min_contributions = min_contributions

    def decrypt_sum(self, data: bytes) -> np.ndarray:
        from .. import EncryptedUpdate

        batch = EncryptedUpdate.from_bytes(data)
        if batch.mode != "sum" or batch.contributions < self.min_contributions:
            raise ParameterError(
                f"the key holder decrypts only sums of at least {self.min_contributions} hospitals; "
                f"got a {batch.mode} batch of {batch.contributions}"
            )
        return self._keys.decrypt(batch, threads=1)


# -- the server --------------------------------------------------------------------------------

Client = Callable[[RoundPlan], HospitalUpdate]


class Server:
    """Runs federated rounds. Holds the global model, the scheduler and, for encrypted runs, only
    the public context; never a secret key.

    Parameters
    ----------
    model_factory: the architecture.
    clients: hospital id -> callable taking a RoundPlan and returning a HospitalUpdate
        (``Hospital.fit`` in process; a network stub elsewhere).
    validation: (design matrix, labels) the global model is evaluated on each round.
    scheduler: the adaptive learning rate.
    public_context / key_holder: the encrypted path (both) or plaintext FedAvg (neither).
    min_hospitals: a round completes when at least this many hospitals reported.
    timeout: seconds a hospital may take (None: wait); a slower one counts as failed.
    retries: attempts of a round that fell short of ``min_hospitals`` before giving up.
    checkpoint: folder for the per-round checkpoint (None: none).
    """

    def __init__(
        self,
        model_factory: ModelFactory,
        clients: Mapping[str, Client],
        validation: Tuple[object, np.ndarray],
        scheduler: AdaptiveLR,
        *,
        public_context: Optional[PublicContext] = None,
        key_holder: Optional[KeyHolder] = None,
        local_epochs: int = 2,
        batch_size: int = 32,
        seed: int = 0,
        min_hospitals: int = 1,
        timeout: Optional[float] = None,
        retries: int = 2,
        checkpoint: Optional[os.PathLike] = None,
    ) -> None:
        if (public_context is None) != (key_holder is None):
            raise ParameterError("the encrypted path needs both a public context and a key holder")
        if not clients:
            raise ParameterError("a federation needs at least one hospital")
        if not 1 <= min_hospitals <= len(clients):
            raise ParameterError(f"min_hospitals must be between 1 and {len(clients)}; got {min_hospitals}")
        self.model = model_factory()
        self.clients = dict(clients)
        self.x_val, self.y_val = validation
        self.scheduler = scheduler
        self.public_context, self.key_holder = public_context, key_holder
        self.local_epochs, self.batch_size, self.seed = local_epochs, batch_size, seed
        self.min_hospitals, self.timeout, self.retries = min_hospitals, timeout, retries
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.weights = flat_weights(self.model)
        self.round = 0
        self.history: List[dict] = []

    @property
    def encrypted(self) -> bool:
        return self.public_context is not None

    # phase 1
    def configure_round(self, rnd: int, attempt: int = 0) -> Dict[str, RoundPlan]:
        rates = self.scheduler.rates(self.clients)
        return {
            name: RoundPlan(
                round=rnd, weights=self.weights.copy(), lr=rates[name], local_epochs=self.local_epochs,
                batch_size=self.batch_size, seed=_seed(self.seed, rnd, i, attempt), parties=len(self.clients),
            )
            for i, name in enumerate(self.clients)
        }

    # phase 2
    def collect(self, plans: Mapping[str, RoundPlan]) -> Tuple[List[HospitalUpdate], List[str]]:
        """Run every hospital; failures (exceptions, timeouts) are data, not aborts."""
        updates, failures = [], []
        if self.timeout is None:
            for name, plan in plans.items():
                try:
                    updates.append(self._checked(name, self.clients[name](plan), plan))
                except Exception as exc:  # noqa: BLE001 - a hospital's failure is recorded, whatever it is
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            return updates, failures
        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            futures = {name: pool.submit(self.clients[name], plan) for name, plan in plans.items()}
            deadline = time.monotonic() + self.timeout
            for name, future in futures.items():
                try:
                    update = future.result(timeout=max(deadline - time.monotonic(), 0.0))
                    updates.append(self._checked(name, update, plans[name]))
                except FutureTimeout:
                    failures.append(f"{name}: timed out after {self.timeout:g} s")
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            pool.shutdown(wait=False, cancel_futures=True)
        return updates, failures

    def _checked(self, name: str, update: HospitalUpdate, plan: RoundPlan) -> HospitalUpdate:
        if not isinstance(update, HospitalUpdate) or update.hospital != name or update.round != plan.round:
            raise ParameterError(f"{name} answered with an update for another hospital or round")
        if update.n <= 0 or not math.isfinite(update.sigma2):
            raise ParameterError(f"{name} reported n={update.n}, sigma2={update.sigma2}")
        if self.encrypted and update.payload is None:
            raise ParameterError(f"{name} sent an unencrypted update to an encrypted federation")
        return update

    # phase 3
    def aggregate(self, updates: Sequence[HospitalUpdate]) -> Tuple[np.ndarray, int, Dict[str, float], Dict[str, int]]:
        """Sum n_i * u_i (homomorphically on the encrypted path, streaming) and sum n_i."""
        total_n = sum(u.n for u in updates)
        seconds, sizes = {}, {}
        if not self.encrypted:
            t0 = time.perf_counter()
            total = np.sum([u.plain for u in updates], axis=0)
            seconds["aggregate"] = time.perf_counter() - t0
            sizes["upload"] = int(sum(u.plain.nbytes for u in updates))
            return total, total_n, seconds, sizes
        t0 = time.perf_counter()
        acc = Accumulator(self.public_context, threads=1)
        for u in updates:  # one upload at a time: the server holds the running sum only
            acc.add(u.payload)
        summed = acc.result().to_bytes()
        t1 = time.perf_counter()
        total = self.key_holder.decrypt_sum(summed)
        seconds["aggregate"] = t1 - t0
        seconds["decrypt"] = time.perf_counter() - t1
        sizes["upload"] = int(sum(len(u.payload) for u in updates))
        sizes["sum"] = len(summed)
        return total, total_n, seconds, sizes

    # phase 4
    def apply(self, weighted_sum: np.ndarray, total_n: int) -> None:
        self.weights = self.weights + fedavg(weighted_sum, total_n)
        set_flat_weights(self.model, self.weights)

    # phase 5
    def evaluate(self) -> Dict[str, float]:
        set_flat_weights(self.model, self.weights)
        return binary_metrics(self.y_val, predict(self.model, self.x_val))

    def run_round(self) -> dict:
        rnd = self.round + 1
        failures: List[str] = []
        for attempt in range(self.retries + 1):
            plans = self.configure_round(rnd, attempt)
            updates, failed = self.collect(plans)
            failures += [f"attempt {attempt + 1}: {f}" if attempt else f for f in failed]
            if len(updates) >= self.min_hospitals:
                break
        else:
            raise RoundFailed(
                f"round {rnd}: only {len(updates)} of {len(self.clients)} hospitals reported, fewer than "
                f"min_hospitals={self.min_hospitals}, after {self.retries + 1} attempts: {'; '.join(failures)}"
            )
        lr = {name: plans[name].lr for name in plans}
        weighted_sum, total_n, seconds, sizes = self.aggregate(updates)
        self.apply(weighted_sum, total_n)
        t0 = time.perf_counter()
        metrics = self.evaluate()
        seconds["evaluate"] = time.perf_counter() - t0
        for phase in ("train", "encrypt"):
            values = [u.seconds[phase] for u in updates if phase in u.seconds]
            if values:
                seconds[phase] = float(sum(values))
        eta0 = self.scheduler.eta0
        self.scheduler.observe_updates({u.hospital: u.sigma2 for u in updates})
        self.scheduler.observe_validation(metrics["loss"])
        self.round = rnd
        record = {
            "round": rnd, **{f"val_{k}": v for k, v in metrics.items()}, "eta0": eta0, "lr": lr,
            "sigma2": {u.hospital: u.sigma2 for u in updates}, "seconds": seconds, "bytes": sizes,
            "failures": failures, "reported": len(updates),
        }
        self.history.append(record)
        self.save_checkpoint()
        return record

    def fit(self, rounds: int, progress: Optional[Callable[[dict], None]] = None) -> List[dict]:
        """Run rounds until ``rounds`` are complete (continuing after a resume)."""
        while self.round < rounds:
            record = self.run_round()
            if progress is not None:
                progress(record)
        return self.history

    # checkpoints
    def save_checkpoint(self) -> None:
        """Global model, round, scheduler state and metrics history, written atomically."""
        if self.checkpoint is None:
            return
        self.checkpoint.mkdir(parents=True, exist_ok=True)
        state = {"round": self.round, "scheduler": self.scheduler.state_dict(), "history": self.history,
                 "weights": self.weights.tolist(), "encrypted": self.encrypted}
        tmp = self.checkpoint / f"state.json.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.checkpoint / "state.json")

    def load_checkpoint(self) -> bool:
        """Resume from the last completed round; returns False when there is no checkpoint."""
        if self.checkpoint is None or not (self.checkpoint / "state.json").exists():
            return False
        try:
            state = json.loads((self.checkpoint / "state.json").read_text())
            weights = np.asarray(state["weights"], dtype=np.float64)
            set_flat_weights(self.model, weights)
            if state["encrypted"] != self.encrypted:
                raise FormatError("the checkpoint is from an encrypted run and this one is not, or the reverse")
            self.weights, self.round, self.history = weights, int(state["round"]), list(state["history"])
            self.scheduler = AdaptiveLR.from_state(state["scheduler"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"checkpoint {self.checkpoint / 'state.json'} is unreadable: {exc}") from None
        return True


def _seed(seed: int, rnd: int, hospital: int, attempt: int) -> int:
    """Training seed of one hospital in one round: the same whether or not the run was resumed."""
    return (seed * 1_000_003 + rnd * 10_007 + hospital * 101 + attempt) % (2**31)
