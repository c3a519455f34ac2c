"""Federated rounds: the round protocol, the aggregation server, and the key holder.

The shape follows Flower's strategy API: the server has one method per round phase
(:meth:`Server.configure_round`, :meth:`Server.collect`, :meth:`Server.aggregate`,
:meth:`Server.apply`, :meth:`Server.evaluate`), and the aggregation math lives in pure functions
(:func:`fedavg`, :func:`update_variance`) that are tested without encryption; the encrypted path
is tested against them.

What crosses the hospital/server boundary is a :class:`HospitalUpdate`: the encrypted batch
(bytes) and a few plaintext scalars (round, hospital id, n_i, sigma_i^2). ``to_wire`` /
``from_wire`` give it a byte form, so a network transport can replace the in-process one without
touching training or aggregation. The server works on flat weight vectors (no model object, no
patient data) and scores them through an ``evaluate`` callback; hospitals are callables (the
study's hospitals train torch models behind them). The server never holds a secret key: it sums ciphertexts with
an :class:`~fhto_native.Accumulator` over the public context and asks the :class:`KeyHolder` to
decrypt only the sum.
"""
from __future__ import annotations

import json
import math
import os
import struct
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from .. import Accumulator, KeySet, PublicContext
from .._files import make_folder, refused, write_atomic
from ..errors import FhtoError, FormatError, ParameterError
from . import checkpoint as checkpoint_file
from ._fields import exact_fields, integer, number, number_map, text
from .scheduler import AdaptiveLR

__all__ = [
    "fedavg",
    "update_variance",
    "RoundPlan",
    "HospitalUpdate",
    "KeyHolder",
    "Server",
    "round_seed",
    "RoundFailed",
    "MAX_HEADER_BYTES",
    "MAX_HOSPITAL_NAME",
]


#: Local epochs per round and minibatch size unless a caller says otherwise (the study's defaults).
DEFAULT_LOCAL_EPOCHS = 2
DEFAULT_BATCH_SIZE = 16


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


#: Largest header, in bytes, a hospital update may carry: a longer length prefix is refused before
#: anything is parsed (a real header is about 200 bytes).
MAX_HEADER_BYTES = 64 * 1024
#: Longest hospital id, in characters.
MAX_HOSPITAL_NAME = 256
_HEADER_FIELDS = ("hospital", "round", "n", "sigma2", "train_loss", "seconds")


@dataclass
class HospitalUpdate:
    """What a hospital sends back. Only ``payload`` carries the update, and only encrypted
    (plaintext FedAvg, for comparison, puts n_i * u_i in ``plain`` instead).

    ``train_loss`` is NaN when the hospital reports none. The wire form (:meth:`to_wire`) is a
    4-byte little-endian header length, a strict JSON header of exactly the fields ``hospital``
    (non-empty, at most :data:`MAX_HOSPITAL_NAME` characters), ``round`` and ``n`` (integers >= 1),
    ``sigma2`` (finite, >= 0), ``train_loss`` (finite, or ``null`` when not reported) and
    ``seconds`` (phase name -> finite seconds >= 0), at most :data:`MAX_HEADER_BYTES` bytes, and the
    encrypted batch, which stays opaque bytes here (the engine checks it when it is added).
    """

    hospital: str
    round: int
    n: int
    sigma2: float
    payload: Optional[bytes] = None
    plain: Optional[np.ndarray] = None
    train_loss: float = float("nan")
    seconds: Dict[str, float] = field(default_factory=dict)

    def header(self, error: Type[Exception] = ParameterError) -> dict:
        """The plaintext scalars, checked (see the class); a bad one raises ``error`` naming it."""
        return _checked_header({name: getattr(self, name) for name in _HEADER_FIELDS}, error)

    def to_wire(self) -> bytes:
        """Length-prefixed JSON header (the plaintext scalars) followed by the encrypted batch.

        Raises
        ------
        ParameterError
            No encrypted payload, or a field a receiver would refuse (the message names it).
        """
        if self.payload is None:
            raise ParameterError("only encrypted updates have a wire form")
        head = self.header()
        if math.isnan(head["train_loss"]):
            head["train_loss"] = None  # strict JSON has no NaN
        raw = json.dumps(head, allow_nan=False).encode()
        if len(raw) > MAX_HEADER_BYTES:
            raise ParameterError(
                f"hospital update: the header takes {len(raw)} bytes; at most {MAX_HEADER_BYTES} are allowed"
            )
        return struct.pack("<I", len(raw)) + raw + bytes(self.payload)

    @classmethod
    def from_wire(cls, data: bytes) -> "HospitalUpdate":
        """Parse and check a wire form (see the class); the payload is not looked into.

        Raises
        ------
        FormatError
            Truncated, a header over :data:`MAX_HEADER_BYTES`, not strict UTF-8 JSON (too deeply
            nested, ``NaN``, a repeated field), or a missing, unknown or bad field (named).
        """
        if len(data) < 4:
            raise FormatError(f"hospital update is truncated: {len(data)} bytes, fewer than the 4-byte header length")
        (size,) = struct.unpack_from("<I", data)
        if size > MAX_HEADER_BYTES:
            raise FormatError(
                f"hospital update announces a header of {size} bytes; at most {MAX_HEADER_BYTES} are allowed"
            )
        if size > len(data) - 4:
            raise FormatError(f"hospital update header is truncated: {len(data) - 4} of {size} bytes")
        head = _parse_header(bytes(data[4 : 4 + size]))
        if "train_loss" in head and head["train_loss"] is None:
            head["train_loss"] = math.nan
        return cls(payload=bytes(data[4 + size :]), **_checked_header(head, FormatError))


def _parse_header(raw: bytes) -> dict:
    def unique(pairs: List[Tuple[str, object]]) -> dict:
        fields = dict(pairs)
        if len(fields) < len(pairs):
            repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
            raise FormatError(f"hospital update header repeats the field {', '.join(repeated)}")
        return fields

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        head = json.loads(raw.decode("utf-8"), object_pairs_hook=unique, parse_constant=refuse)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError("hospital update header is not JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise FormatError(f"hospital update header is not JSON: {exc}") from None
    exact_fields(head, _HEADER_FIELDS, "hospital update: ", FormatError)
    return head


def _checked_header(head: Mapping[str, object], error: Type[Exception]) -> dict:
    """The header's fields in their Python types, each checked; ``error`` names a bad one."""
    p = "hospital update: "
    return {
        "hospital": text(head["hospital"], p + "hospital", MAX_HOSPITAL_NAME, error),
        "round": integer(head["round"], p + "round", 1, error),
        "n": integer(head["n"], p + "n", 1, error),
        "sigma2": number(head["sigma2"], p + "sigma2", error, low=0.0),
        "train_loss": number(head["train_loss"], p + "train_loss", error, nan=True),
        "seconds": number_map(head["seconds"], p + "seconds", error),
    }


class RoundFailed(FhtoError, RuntimeError):
    """Too few hospitals reported in a round, after the allowed retries."""


# -- parties -----------------------------------------------------------------------------------


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
#: Scores global weights on held-out data; returns metrics with at least ``"loss"``.
Evaluate = Callable[[np.ndarray], Dict[str, float]]


class Server:
    """Runs federated rounds over flat weights. Holds the global weights, the scheduler and, for
    encrypted runs, only the public context; never a secret key, a model object or a patient.

    Parameters
    ----------
    initial_weights: the global model's starting weights (a flat float64 vector).
    clients: hospital id -> callable taking a RoundPlan and returning a HospitalUpdate
        (a hospital's ``fit`` in process; a network stub elsewhere).
    evaluate: scores weights on held-out data each round; must return ``"loss"`` (the model
        selection criterion and the scheduler's feedback) and may return any other metric.
    scheduler: the adaptive learning rate.
    public_context / key_holder: the encrypted path (both) or plaintext FedAvg (neither).
    min_hospitals: a round completes when at least this many hospitals reported.
    timeout: seconds a round may take (None: wait); hospitals still working then count as failed.
    retries: attempts of a round that fell short of ``min_hospitals`` before giving up.
    checkpoint: folder for the per-round checkpoint (None: none).
    early_stopping: stop after this many rounds without a validation-loss improvement larger
        than the scheduler's ``min_delta`` (None: run every round).

    The selected model is the one of the round with the lowest validation loss
    (:attr:`best_weights`, :attr:`best_round`, any improvement counts); :attr:`weights` is the
    last round's. Early stopping counts rounds since the last improvement by more than
    ``min_delta`` (:attr:`improved_round`), as the scheduler's patience does.
    """

    def __init__(
        self,
        initial_weights: np.ndarray,
        clients: Mapping[str, Client],
        evaluate: Evaluate,
        scheduler: AdaptiveLR,
        *,
        public_context: Optional[PublicContext] = None,
        key_holder: Optional[KeyHolder] = None,
        local_epochs: int = DEFAULT_LOCAL_EPOCHS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        seed: int = 0,
        min_hospitals: int = 1,
        timeout: Optional[float] = None,
        retries: int = 2,
        checkpoint: Optional[os.PathLike] = None,
        early_stopping: Optional[int] = None,
    ) -> None:
        if (public_context is None) != (key_holder is None):
            raise ParameterError("the encrypted path needs both a public context and a key holder")
        if not clients:
            raise ParameterError("a federation needs at least one hospital")
        if not 1 <= min_hospitals <= len(clients):
            raise ParameterError(f"min_hospitals must be between 1 and {len(clients)}; got {min_hospitals}")
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise ParameterError(f"timeout must be a positive number of seconds; got {timeout}")
        if early_stopping is not None and early_stopping < 1:
            raise ParameterError(f"early_stopping must be at least 1 round; got {early_stopping}")
        weights = np.array(initial_weights, dtype=np.float64).reshape(-1)
        if weights.size == 0 or not np.isfinite(weights).all():
            raise ParameterError("initial_weights must be a non-empty vector of finite numbers")
        self.clients = dict(clients)
        self.evaluate_weights = evaluate
        self.scheduler = scheduler
        self.public_context, self.key_holder = public_context, key_holder
        self.local_epochs, self.batch_size, self.seed = local_epochs, batch_size, seed
        self.min_hospitals, self.timeout, self.retries = min_hospitals, timeout, retries
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.early_stopping = early_stopping
        self.weights = weights
        self.round = 0
        self.history: List[dict] = []
        self.best_weights = weights.copy()
        self.best_round = 0
        self.best_loss = math.inf
        self.improved_round = 0
        self.stopped_early = False

    @property
    def encrypted(self) -> bool:
        return self.public_context is not None

    # phase 1
    def configure_round(self, rnd: int, attempt: int = 0) -> Dict[str, RoundPlan]:
        rates = self.scheduler.rates(self.clients)
        return {
            name: RoundPlan(
                round=rnd, weights=self.weights.copy(), lr=rates[name], local_epochs=self.local_epochs,
                batch_size=self.batch_size, seed=round_seed(self.seed, rnd, i, attempt), parties=len(self.clients),
            )
            for i, name in enumerate(self.clients)
        }

    # phase 2
    def collect(self, plans: Mapping[str, RoundPlan]) -> Tuple[List[HospitalUpdate], List[str]]:
        """Run every hospital; failures (exceptions, timeouts) are data, not aborts.

        With a ``timeout`` the hospitals run concurrently and the call returns by the deadline:
        a hospital still working then is recorded as timed out and its late answer is dropped.
        """
        updates, failures = [], []
        if self.timeout is None:
            for name, plan in plans.items():
                try:
                    updates.append(self._checked(name, self.clients[name](plan), plan))
                except Exception as exc:  # noqa: BLE001 - a hospital's failure is recorded, whatever it is
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            return updates, failures
        # Not a `with` block: leaving it would wait for a hung hospital, past the deadline.
        pool = ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="fhto-hospital")
        try:
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
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return updates, failures

    def _checked(self, name: str, update: HospitalUpdate, plan: RoundPlan) -> HospitalUpdate:
        if not isinstance(update, HospitalUpdate) or update.hospital != name or update.round != plan.round:
            raise ParameterError(f"{name} answered with an update for another hospital or round")
        update.header()  # every scalar of the message, checked as a receiver would
        if self.encrypted and update.payload is None:
            raise ParameterError(f"{name} sent an unencrypted update to an encrypted federation")
        if not self.encrypted and update.plain is None:
            raise ParameterError(f"{name} sent no plaintext update to a plaintext federation")
        return update

    # phase 3
    def aggregate(self, updates: Sequence[HospitalUpdate]) -> Tuple[np.ndarray, float, Dict[str, float], Dict[str, int]]:
        """Sum n_i * u_i (homomorphically on the encrypted path, streaming) and sum n_i."""
        total_n = float(sum(u.n for u in updates))
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
    def apply(self, weighted_sum: np.ndarray, total_n: float) -> None:
        self.weights = self.weights + fedavg(weighted_sum, total_n)

    # phase 5
    def evaluate(self) -> Dict[str, float]:
        metrics = dict(self.evaluate_weights(self.weights.copy()))
        if "loss" not in metrics or not math.isfinite(metrics["loss"]):
            raise ParameterError(f"evaluate must return a finite 'loss'; got {metrics.get('loss')!r}")
        return metrics

    @property
    def done(self) -> bool:
        """True once early stopping has ended training."""
        return self.stopped_early

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
        if metrics["loss"] < self.best_loss:
            if metrics["loss"] < self.best_loss - self.scheduler.min_delta:
                self.improved_round = rnd
            self.best_loss, self.best_round, self.best_weights = float(metrics["loss"]), rnd, self.weights.copy()
        if self.early_stopping is not None and rnd - self.improved_round >= self.early_stopping:
            self.stopped_early = True
        record = {
            "round": rnd, **{f"val_{k}": v for k, v in metrics.items()}, "eta0": eta0, "lr": lr,
            "sigma2": {u.hospital: u.sigma2 for u in updates}, "seconds": seconds, "bytes": sizes,
            "failures": failures, "reported": len(updates),
        }
        self.history.append(record)
        self.save_checkpoint()
        return record

    def fit(self, rounds: int, progress: Optional[Callable[[dict], None]] = None) -> List[dict]:
        """Run rounds until ``rounds`` are complete (continuing after a resume) or early stopping."""
        while self.round < rounds and not self.stopped_early:
            record = self.run_round()
            if progress is not None:
                progress(record)
        return self.history

    # checkpoints
    def save_checkpoint(self) -> None:
        """Global and best weights, round, scheduler state and metrics history, written atomically
        with a checksum (:mod:`fhto_native.fl.checkpoint`).

        Raises
        ------
        StorageError
            The system refused to create the folder or write the file (the message names it).
        """
        if self.checkpoint is None:
            return
        make_folder(self.checkpoint)
        write_atomic(self.checkpoint / checkpoint_file.FILE_NAME, checkpoint_file.encode(self._state()))

    def load_checkpoint(self) -> bool:
        """Resume from the last completed round; returns False when there is no checkpoint.

        Raises
        ------
        FormatError
            The checkpoint does not verify (checksum, consistency) or is from another
            configuration; the message names the file and what failed.
        StorageError
            The file exists but cannot be read.
        """
        if self.checkpoint is None:
            return False
        path = self.checkpoint / checkpoint_file.FILE_NAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise refused("read", path, exc) from exc
        try:
            state = checkpoint_file.decode(data)
            checkpoint_file.verify(state, size=self.weights.size, encrypted=self.encrypted,
                                   hospitals=list(self.clients))
        except FormatError as exc:
            raise FormatError(f"checkpoint {path} is refused: {exc}") from None
        self._restore(state)
        return True

    def _state(self) -> dict:
        return {"round": self.round, "scheduler": self.scheduler.state_dict(), "history": self.history,
                "weights": self.weights.tolist(), "encrypted": self.encrypted,
                "best": {"round": self.best_round, "loss": None if math.isinf(self.best_loss) else self.best_loss,
                         "weights": self.best_weights.tolist(), "improved_round": self.improved_round},
                "stopped_early": self.stopped_early}

    def _restore(self, state: dict) -> None:
        """Take a verified state (see :func:`fhto_native.fl.checkpoint.verify`)."""
        best = state["best"]
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.round, self.history = state["round"], list(state["history"])
        self.best_round, self.best_weights = best["round"], np.asarray(best["weights"], dtype=np.float64)
        self.improved_round = best["improved_round"]
        self.best_loss = math.inf if best["loss"] is None else float(best["loss"])
        self.stopped_early = state["stopped_early"]
        self.scheduler = AdaptiveLR.from_state(state["scheduler"])


def round_seed(seed: int, rnd: int, hospital: int, attempt: int) -> int:
    """Training seed of one hospital in one round: the same whether or not the run was resumed."""
    return (seed * 1_000_003 + rnd * 10_007 + hospital * 101 + attempt) % (2**31)
