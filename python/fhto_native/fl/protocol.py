"""What crosses the machines of a federation: the round plan, the hospital update, their byte
forms, and the pure aggregation math.

A hospital's contribution is one vector, ``[u_1 .. u_K, 1, loss]`` weighted by its sample count
n_i: encrypted, it is ``Enc(n_i * u_i, n_i, n_i * loss_i)``, so the server learns neither n_i
nor the training loss; only their sums come out of the key holder's decryption. The
per-hospital learning rate ``eta_i = eta_0 / (1 + alpha * sigma_i^2)`` needs only the hospital's
own update variance, so the plan carries eta_0 and alpha and each hospital computes its own
eta_i (:class:`~fhto_native.fl.scheduler.HospitalRate`). What the server sees of a hospital is
therefore: that it answered, in which round, and the size of its ciphertexts.

Byte forms: :meth:`RoundPlan.to_wire` / :meth:`RoundPlan.from_wire` and
:meth:`HospitalUpdate.to_wire` / :meth:`HospitalUpdate.from_wire`: a 4-byte little-endian header
length, a strict JSON header (at most :data:`MAX_HEADER_BYTES`), then the body (the plan's
weights as little-endian float64, the update's encrypted batch as opaque bytes).
"""
from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Type

import numpy as np

from ..errors import FormatError, ParameterError
from ._fields import exact_fields, integer, number, text

__all__ = [
    "DEFAULT_LOCAL_EPOCHS",
    "DEFAULT_BATCH_SIZE",
    "MAX_HEADER_BYTES",
    "MAX_HOSPITAL_NAME",
    "EXTRA_SLOTS",
    "RoundPlan",
    "HospitalUpdate",
    "RoundSum",
    "contribution",
    "split_sum",
    "fedavg",
    "update_variance",
    "round_seed",
]

#: Local epochs per round and minibatch size unless a caller says otherwise (the study's defaults).
DEFAULT_LOCAL_EPOCHS = 2
DEFAULT_BATCH_SIZE = 16
#: Largest header, in bytes, a message may carry: a longer length prefix is refused before
#: anything is parsed (a real header is about 200 bytes).
MAX_HEADER_BYTES = 64 * 1024
#: Longest hospital id, in characters.
MAX_HOSPITAL_NAME = 256
#: Values a contribution carries after the update: the sample count and the training loss.
EXTRA_SLOTS = 2


# -- pure aggregation math ---------------------------------------------------------------------


def update_variance(update: np.ndarray) -> float:
    """sigma^2 = (1/K) sum_k (u_k - mean(u))^2 over the K entries of one update."""
    u = np.asarray(update, dtype=np.float64)
    return float(np.var(u)) if u.size else 0.0


def fedavg(weighted_sum: np.ndarray, total_n: float) -> np.ndarray:
    """FedAvg update from the sum of n_i * u_i and the sum of n_i."""
    if not total_n > 0:
        raise ParameterError(f"total sample count must be positive; got {total_n}")
    return np.asarray(weighted_sum, dtype=np.float64) / float(total_n)


def round_seed(seed: int, rnd: int, hospital: int, attempt: int) -> int:
    """Training seed of one hospital in one round: the same whether or not the run was resumed."""
    return (seed * 1_000_003 + rnd * 10_007 + hospital * 101 + attempt) % (2**31)


def contribution(update: np.ndarray, train_loss: float) -> np.ndarray:
    """The vector a hospital encrypts with weight n_i: ``[u, 1, train_loss]``."""
    u = np.asarray(update, dtype=np.float64).reshape(-1)
    if not math.isfinite(train_loss):
        raise ParameterError(f"the training loss must be finite; got {train_loss!r}")
    return np.concatenate([u, [1.0, float(train_loss)]])


@dataclass(frozen=True)
class RoundSum:
    """A decrypted round: sum n_i * u_i, sum n_i, and the n-weighted mean training loss."""

    weighted_sum: np.ndarray
    total_n: float
    train_loss: float


def split_sum(total: np.ndarray, reported: int) -> RoundSum:
    """Split a decrypted sum of ``reported`` contributions into its parts.

    The count slot is a sum of integers decrypted with an error far below 1/2, so it is rounded;
    a count that is not near an integer of at least ``reported`` means the sum is not one of
    contributions (a wrong key holder answer, or mixed-up slots).

    Raises
    ------
    FormatError
        The sum is too short or its count slot is not a plausible count.
    """
    v = np.asarray(total, dtype=np.float64).reshape(-1)
    if v.size <= EXTRA_SLOTS:
        raise FormatError(f"a decrypted sum must hold the update and {EXTRA_SLOTS} more values; got {v.size}")
    count = float(v[-2])
    n = round(count)
    if not (math.isfinite(count) and abs(count - n) < 1e-3 and n >= reported):
        raise FormatError(f"the decrypted sample count {count!r} is not a count of {reported} or more samples")
    return RoundSum(weighted_sum=v[:-EXTRA_SLOTS], total_n=float(n), train_loss=float(v[-1]) / n)


# -- messages ----------------------------------------------------------------------------------


@dataclass
class RoundPlan:
    """What the server sends a hospital: the global model, eta_0 and alpha (the hospital computes
    its own rate from them), the local training budget and the round's training seed."""

    round: int
    weights: np.ndarray
    eta0: float
    alpha: float
    local_epochs: int
    batch_size: int
    seed: int
    parties: int

    def header(self, error: Type[Exception] = ParameterError) -> dict:
        p = "round plan: "
        return {
            "round": integer(self.round, p + "round", 1, error),
            "eta0": number(self.eta0, p + "eta0", error, low=0.0),
            "alpha": number(self.alpha, p + "alpha", error, low=0.0),
            "local_epochs": integer(self.local_epochs, p + "local_epochs", 1, error),
            "batch_size": integer(self.batch_size, p + "batch_size", 1, error),
            "seed": integer(self.seed, p + "seed", 0, error),
            "parties": integer(self.parties, p + "parties", 1, error),
        }

    def to_wire(self) -> bytes:
        """Header, then the weights as little-endian float64."""
        weights = np.ascontiguousarray(self.weights, dtype="<f8").reshape(-1)
        if not np.isfinite(weights).all():
            raise ParameterError("round plan: the weights must be finite")
        return _frame(self.header(), weights.tobytes(), "round plan")

    @classmethod
    def from_wire(cls, data: bytes) -> "RoundPlan":
        """Raises FormatError for a malformed plan (the message names what)."""
        head, body = _unframe(data, "round plan", _PLAN_FIELDS)
        if len(body) % 8 or not body:
            raise FormatError(f"round plan: the weights take {len(body)} bytes, not a positive multiple of 8")
        weights = np.frombuffer(body, dtype="<f8").astype(np.float64)
        if not np.isfinite(weights).all():
            raise FormatError("round plan: the weights must be finite")
        plan = cls(weights=weights, **{k: head[k] for k in _PLAN_FIELDS})
        checked = plan.header(FormatError)
        return cls(weights=weights, **checked)


_PLAN_FIELDS = ("round", "eta0", "alpha", "local_epochs", "batch_size", "seed", "parties")
_UPDATE_FIELDS = ("hospital", "round")
#: The largest contribution tag a hospital update may carry (a signed tag is 140 bytes today).
MAX_TAG_BYTES = 4096


@dataclass
class HospitalUpdate:
    """What a hospital sends back: the encrypted contribution ``Enc(n_i * [u_i, 1, loss_i])``
    in ``payload`` (plaintext FedAvg, for comparison, puts that vector in ``plain`` instead).

    Only ``hospital``, ``round`` and, with multiparty keys, ``tag`` (the hospital's signed linear
    tag of its upload, which the key holders check the sum against; hex in the header) travel in
    the clear. ``seconds`` (the hospital's own timings) stays with the in-process object and is not
    part of the wire form.
    """

    hospital: str
    round: int
    payload: Optional[bytes] = None  #: bytes-like: a received update holds a view of its message
    plain: Optional[np.ndarray] = None
    seconds: Dict[str, float] = field(default_factory=dict)
    tag: Optional[bytes] = None

    def header(self, error: Type[Exception] = ParameterError) -> dict:
        """The plaintext fields, checked; a bad one raises ``error`` naming it."""
        p = "hospital update: "
        head = {
            "hospital": text(self.hospital, p + "hospital", MAX_HOSPITAL_NAME, error),
            "round": integer(self.round, p + "round", 1, error),
        }
        if self.tag is not None:
            if not isinstance(self.tag, (bytes, bytearray)) or not 0 < len(self.tag) <= MAX_TAG_BYTES:
                raise error(f"{p}tag must be 1 to {MAX_TAG_BYTES} bytes")
            head["tag"] = bytes(self.tag).hex()
        return head

    def to_wire(self) -> bytes:
        """Length-prefixed JSON header followed by the encrypted batch.

        Raises
        ------
        ParameterError
            No encrypted payload, or a field a receiver would refuse (the message names it).
        """
        if self.payload is None:
            raise ParameterError("only encrypted updates have a wire form")
        return _frame(self.header(), bytes(self.payload), "hospital update")

    @classmethod
    def from_wire(cls, data: bytes) -> "HospitalUpdate":
        """Parse and check a wire form; the payload is not looked into (the engine checks it).

        Raises
        ------
        FormatError
            Truncated, a header over :data:`MAX_HEADER_BYTES`, not strict UTF-8 JSON (too deeply
            nested, ``NaN``, a repeated field), or a missing, unknown or bad field (named).
        """
        head, body = _unframe(data, "hospital update", _UPDATE_FIELDS, optional=("tag",))
        tag = None
        if "tag" in head:
            try:
                tag = bytes.fromhex(head["tag"]) if isinstance(head["tag"], str) else None
            except ValueError:
                tag = None
            if tag is None:
                raise FormatError("hospital update: tag must be hex")
        update = cls(hospital=head["hospital"], round=head["round"], payload=body, tag=tag)
        checked = update.header(FormatError)
        return cls(payload=body, hospital=checked["hospital"], round=checked["round"], tag=tag)


def _frame(head: Mapping[str, object], body: bytes, what: str) -> bytes:
    raw = json.dumps(head, allow_nan=False).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise ParameterError(f"{what}: the header takes {len(raw)} bytes; at most {MAX_HEADER_BYTES} are allowed")
    return struct.pack("<I", len(raw)) + raw + body


def _unframe(data: bytes, what: str, fields: Tuple[str, ...], optional: Tuple[str, ...] = ()) -> Tuple[dict, memoryview]:
    """The checked header and a view of the body (no copy of a large body)."""
    data = memoryview(data).cast("B")
    if len(data) < 4:
        raise FormatError(f"{what} is truncated: {len(data)} bytes, fewer than the 4-byte header length")
    (size,) = struct.unpack_from("<I", data)
    if size > MAX_HEADER_BYTES:
        raise FormatError(f"{what} announces a header of {size} bytes; at most {MAX_HEADER_BYTES} are allowed")
    if size > len(data) - 4:
        raise FormatError(f"{what} header is truncated: {len(data) - 4} of {size} bytes")
    head = _parse_header(bytes(data[4 : 4 + size]), what)
    exact_fields(head, fields + tuple(k for k in optional if k in head), f"{what}: ", FormatError)
    return head, data[4 + size :]


def _parse_header(raw: bytes, what: str) -> dict:
    def unique(pairs: List[Tuple[str, object]]) -> dict:
        fields = dict(pairs)
        if len(fields) < len(pairs):
            repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
            raise FormatError(f"{what} header repeats the field {', '.join(repeated)}")
        return fields

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        head = json.loads(raw.decode("utf-8"), object_pairs_hook=unique, parse_constant=refuse)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError(f"{what} header is not JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise FormatError(f"{what} header is not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise FormatError(f"{what}: expected a JSON object; got {type(head).__name__}")
    return head
