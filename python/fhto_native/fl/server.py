"""The aggregation server: federated rounds over flat weights.

The shape follows Flower's strategy API: one method per round phase (:meth:`Server.configure_round`,
:meth:`Server.collect`, :meth:`Server.aggregate`, :meth:`Server.apply`, :meth:`Server.evaluate`).
The server holds the global weights, eta_0's schedule and, for encrypted runs, only the public
context: never a secret key, a model object or a patient row. Plans and updates travel through a
:class:`~fhto_native.fl.transport.Transport`; the encrypted sum is decrypted by a key holder
(:class:`~fhto_native.fl.keyholder.KeyHolder` or a remote one with the same ``decrypt_sum``).
What it learns of a hospital: that it answered, and the size of its ciphertexts
(see :mod:`fhto_native.fl.protocol`).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from ..engine import Accumulator, PublicContext
from .._files import make_folder, refused, write_atomic
from ..errors import FhtoError, FormatError, ParameterError
from . import checkpoint as checkpoint_file
from .protocol import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOCAL_EPOCHS,
    HospitalUpdate,
    RoundPlan,
    RoundSum,
    fedavg,
    round_seed,
    split_sum,
)
from .scheduler import AdaptiveLR
from .transport import Transport

__all__ = ["Server", "RoundFailed", "Evaluate", "Decryptor"]

#: Scores global weights on validation data; returns metrics with at least ``"loss"``.
Evaluate = Callable[[np.ndarray], Dict[str, float]]


class Decryptor(Protocol):
    """A key holder as the server sees it."""

    def decrypt_sum(self, data: bytes) -> np.ndarray: ...


class RoundFailed(FhtoError, RuntimeError):
    """Too few hospitals reported in a round, after the allowed retries."""


class Server:
    """Runs federated rounds over flat weights. Holds the global weights, the scheduler and, for
    encrypted runs, only the public context; never a secret key, a model object or a patient.

    Parameters
    ----------
    initial_weights: the global model's starting weights (a flat float64 vector).
    transport: reaches the hospitals (:class:`~fhto_native.fl.transport.InProcess` for hospitals
        in this process; the Flower transport in a deployment).
    evaluate: scores weights on held-out data each round; must return ``"loss"`` (the model
        selection criterion and the scheduler's feedback) and may return any other metric.
    scheduler: eta_0's schedule and alpha (each hospital computes its own rate from them).
    public_context / key_holder: the encrypted path (both) or plaintext FedAvg (neither); the key
        holder is anything with ``decrypt_sum(bytes) -> ndarray``.
    min_hospitals: a round completes when at least this many hospitals reported.
    timeout: seconds a round may take (None: wait); hospitals still working then count as failed.
    retries: attempts of a round that fell short of ``min_hospitals`` before giving up.
    checkpoint: folder for the per-round checkpoint (None: none).
    early_stopping: stop after this many rounds without a validation-loss improvement larger
        than the scheduler's ``min_delta`` (None: run every round).

    ``select_last`` selects the last round's model instead and never reads the validation loss for
    it (differentially private training: the released model must not depend on validation
    patients; pass ``early_stopping=None`` and a fixed scheduler with it).

    The selected model is otherwise the one of the round with the lowest validation loss
    (:attr:`best_weights`, :attr:`best_round`, any improvement counts); :attr:`weights` is the
    last round's. Early stopping counts rounds since the last improvement by more than
    ``min_delta`` (:attr:`improved_round`), as the scheduler's patience does.
    """

    def __init__(
        self,
        initial_weights: np.ndarray,
        transport: Transport,
        evaluate: Evaluate,
        scheduler: AdaptiveLR,
        *,
        public_context: Optional[PublicContext] = None,
        key_holder: Optional[Decryptor] = None,
        local_epochs: int = DEFAULT_LOCAL_EPOCHS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        seed: int = 0,
        min_hospitals: int = 1,
        timeout: Optional[float] = None,
        retries: int = 2,
        checkpoint: Optional[os.PathLike] = None,
        early_stopping: Optional[int] = None,
        select_last: bool = False,
    ) -> None:
        if (public_context is None) != (key_holder is None):
            raise ParameterError("the encrypted path needs both a public context and a key holder")
        hospitals = list(transport.hospitals)
        if not hospitals:
            raise ParameterError("a federation needs at least one hospital")
        if not 1 <= min_hospitals <= len(hospitals):
            raise ParameterError(f"min_hospitals must be between 1 and {len(hospitals)}; got {min_hospitals}")
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise ParameterError(f"timeout must be a positive number of seconds; got {timeout}")
        if early_stopping is not None and early_stopping < 1:
            raise ParameterError(f"early_stopping must be at least 1 round; got {early_stopping}")
        weights = np.array(initial_weights, dtype=np.float64).reshape(-1)
        if weights.size == 0 or not np.isfinite(weights).all():
            raise ParameterError("initial_weights must be a non-empty vector of finite numbers")
        self.transport, self.hospitals = transport, hospitals
        self.evaluate_weights = evaluate
        self.scheduler = scheduler
        self.public_context, self.key_holder = public_context, key_holder
        self.local_epochs, self.batch_size, self.seed = local_epochs, batch_size, seed
        self.min_hospitals, self.timeout, self.retries = min_hospitals, timeout, retries
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.early_stopping = early_stopping
        self.select_last = bool(select_last)
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
        return {
            name: RoundPlan(
                round=rnd, weights=self.weights.copy(), eta0=self.scheduler.eta0, alpha=self.scheduler.alpha,
                local_epochs=self.local_epochs, batch_size=self.batch_size,
                seed=round_seed(self.seed, rnd, i, attempt), parties=len(self.hospitals),
            )
            for i, name in enumerate(self.hospitals)
        }

    # phase 2
    def collect(self, plans: Dict[str, RoundPlan]) -> Tuple[List[HospitalUpdate], List[str]]:
        """Send the plans through the transport; failures (errors, timeouts, malformed answers)
        are data, not aborts. With a ``timeout`` the call returns by the deadline."""
        answers, failures = self.transport.exchange(plans, self.timeout)
        updates, seen = [], set()
        for update in answers:
            try:
                updates.append(self._checked(update, plans, seen))
            except ParameterError as exc:
                failures.append(str(exc))
        return updates, failures

    def _checked(self, update: HospitalUpdate, plans: Dict[str, RoundPlan], seen: set) -> HospitalUpdate:
        if not isinstance(update, HospitalUpdate):
            raise ParameterError(f"a hospital answered with a {type(update).__name__}, not a HospitalUpdate")
        head = update.header()  # the plaintext fields, checked as a receiver would
        name = head["hospital"]
        if name not in plans or head["round"] != plans[name].round:
            raise ParameterError(f"{name}: answered for another hospital or round ({head['round']})")
        if name in seen:
            raise ParameterError(f"{name}: answered twice; the second answer is dropped")
        seen.add(name)
        if self.encrypted and update.payload is None:
            raise ParameterError(f"{name}: sent an unencrypted update to an encrypted federation")
        if not self.encrypted and update.plain is None:
            raise ParameterError(f"{name}: sent no plaintext update to a plaintext federation")
        return update

    # phase 3
    def aggregate(
        self, updates: Sequence[HospitalUpdate]
    ) -> Tuple[List[HospitalUpdate], Optional[RoundSum], Dict[str, float], Dict[str, int], List[str]]:
        """Sum the contributions n_i * [u_i, 1, loss_i] (homomorphically on the encrypted path,
        one upload at a time) and have the key holder decrypt only the sum.

        An upload the engine refuses (another key set, another length, corrupted bytes) is left
        out and reported ("name: refused: why"); the running sum is untouched by it. Returns the
        updates that were summed, their decrypted sum (None when fewer than ``min_hospitals``
        remain), the phases' seconds, the byte counts and the refusals.
        """
        seconds, sizes, refused, summed_updates = {}, {}, [], []
        t0 = time.perf_counter()
        if not self.encrypted:
            total = np.sum([u.plain for u in updates], axis=0)
            seconds["aggregate"] = time.perf_counter() - t0
            sizes["upload"] = int(sum(u.plain.nbytes for u in updates))
            return list(updates), split_sum(total, len(updates)), seconds, sizes, refused
        acc = Accumulator(self.public_context, threads=1)
        for u in updates:  # one upload at a time: the server holds the running sum only
            try:
                acc.add(u.payload)
            except FhtoError as exc:
                refused.append(f"{u.hospital}: refused: {type(exc).__name__}: {exc}")
                continue
            summed_updates.append(u)
        sizes["upload"] = int(sum(len(u.payload) for u in updates))
        if len(summed_updates) < self.min_hospitals:
            return summed_updates, None, seconds, sizes, refused
        summed = acc.result().to_bytes()
        t1 = time.perf_counter()
        tags = [u.tag for u in summed_updates if u.tag is not None]
        if tags:  # multiparty keys: the key holders check the sum against the hospitals' signed tags
            total = self.key_holder.decrypt_sum(summed, tags=tags, round=summed_updates[0].round)
        else:
            total = self.key_holder.decrypt_sum(summed)
        seconds["aggregate"] = t1 - t0
        seconds["decrypt"] = time.perf_counter() - t1
        sizes["sum"] = len(summed)
        return summed_updates, split_sum(total, len(summed_updates)), seconds, sizes, refused

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
            if len(updates) >= self.min_hospitals:
                updates, summed, seconds, sizes, refused = self.aggregate(updates)
                failed += refused
            failures += [f"attempt {attempt + 1}: {f}" if attempt else f for f in failed]
            if len(updates) >= self.min_hospitals:
                break
        else:
            raise RoundFailed(
                f"round {rnd}: only {len(updates)} of {len(self.hospitals)} hospitals reported, fewer than "
                f"min_hospitals={self.min_hospitals}, after {self.retries + 1} attempts: {'; '.join(failures)}"
            )
        self.apply(summed.weighted_sum, summed.total_n)
        t0 = time.perf_counter()
        metrics = self.evaluate()
        seconds["evaluate"] = time.perf_counter() - t0
        for phase in ("train", "encrypt"):
            values = [u.seconds[phase] for u in updates if phase in u.seconds]
            if values:
                seconds[phase] = float(sum(values))
        eta0 = self.scheduler.eta0
        self.scheduler.observe_validation(metrics["loss"])
        self.round = rnd
        if self.select_last:
            # The selected model must not depend on validation patients (differential privacy).
            self.best_loss, self.best_round, self.best_weights = float(metrics["loss"]), rnd, self.weights.copy()
        elif metrics["loss"] < self.best_loss:
            if metrics["loss"] < self.best_loss - self.scheduler.min_delta:
                self.improved_round = rnd
            self.best_loss, self.best_round, self.best_weights = float(metrics["loss"]), rnd, self.weights.copy()
        if self.early_stopping is not None and rnd - self.improved_round >= self.early_stopping:
            self.stopped_early = True
        record = {
            "round": rnd, **{f"val_{k}": v for k, v in metrics.items()}, "eta0": eta0,
            "train_loss": summed.train_loss, "seconds": seconds, "bytes": sizes,
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
                                   hospitals=self.hospitals)
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
