"""The server's checkpoint file, ``state.json``: versioned, checksummed, and verified before a run
resumes from it.

The file is one JSON object, written without spaces::

    {"format":"fhto-checkpoint","version":2,"checksum":"sha256:<64 hex digits>","state":{...}}

``checksum`` is the SHA-256 of the state's compact JSON (``,`` and ``:`` as separators, keys in
the order the file holds them: the very bytes the file holds for the state; a resumed server keeps
the order in which its history's metrics were recorded). :func:`decode` recomputes it from the
state it parsed, so any change to the state is caught; :func:`verify` then checks that the state is one a
server could have written: the round equals the number of history records, whose rounds run 1, 2,
... in order; each record's fields have their types and ranges, at most this federation's
hospitals reported, and its eta_0 follows the previous one (unchanged, or decayed once); the
best round, best loss and last improvement are those the history's validation losses give; the
last round's weights are the best weights when it was the best round; weights are finite and of
the model's size; the scheduler state is valid and its eta_0 follows the last record's. A
checkpoint from another configuration (encrypted or not, another model size) is refused too.

fhto 0.1 wrote the bare state, without a checksum: such files are refused, since nothing can
verify them.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Collection, List, Mapping, Sequence, Tuple

import numpy as np

from ..errors import FormatError, ParameterError
from ._fields import exact_fields, integer, number, number_map
from .scheduler import AdaptiveLR

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "FILE_NAME", "checksum", "encode", "decode", "verify"]

CHECKPOINT_FORMAT = "fhto-checkpoint"
#: Version of the file layout (1 was fhto 0.1's bare state, without format mark or checksum).
CHECKPOINT_VERSION = 2
#: The checkpoint's name in the server's checkpoint folder.
FILE_NAME = "state.json"

_DOCUMENT_FIELDS = ("checksum", "format", "state", "version")
_STATE_FIELDS = ("round", "scheduler", "history", "weights", "encrypted", "best", "stopped_early")
_BEST_FIELDS = ("round", "loss", "weights", "improved_round")
_RECORD_FIELDS = ("round", "val_loss", "eta0", "train_loss", "seconds", "bytes", "failures", "reported")
_SCHEDULER_FIELDS = ("eta0", "alpha", "patience", "decay", "min_delta", "best_loss", "stale_rounds")


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def checksum(state: Mapping[str, Any]) -> str:
    """``sha256:`` and the hex SHA-256 of the state's compact JSON."""
    return "sha256:" + hashlib.sha256(_compact(state)).hexdigest()


def encode(state: Mapping[str, Any]) -> bytes:
    """The file's bytes for ``state`` (a server's state as plain JSON values)."""
    document = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "checksum": checksum(state),
                "state": state}
    return _compact(document) + b"\n"


def decode(data: bytes) -> dict:
    """The state a checkpoint file holds, once its format, version and checksum are verified.

    Raises
    ------
    FormatError
        Not UTF-8 JSON, not an fhto checkpoint (fhto 0.1's files included), another format
        version, or a checksum that does not match the state. The message says which.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise FormatError("not JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise FormatError(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise FormatError("not a verified fhto checkpoint: it has no format mark and checksum (fhto 0.1 wrote none)")
    version = document.get("version")
    if type(version) is not int or version != CHECKPOINT_VERSION:
        raise FormatError(f"format version {version!r}; this fhto reads version {CHECKPOINT_VERSION}")
    exact_fields(document, _DOCUMENT_FIELDS, "", FormatError)
    state = document["state"]
    actual = checksum(state)
    if document["checksum"] != actual:
        raise FormatError(
            f"checksum mismatch: the file was changed after it was written (it records {document['checksum']!r}; "
            f"its state hashes to {actual!r})"
        )
    return state


def verify(state: Any, *, size: int, encrypted: bool, hospitals: Collection[str]) -> None:
    """Check that ``state`` (from :func:`decode`) is one a server of ``size`` weights, encrypted
    or not, with these ``hospitals`` could have written.

    Raises
    ------
    FormatError
        The first inconsistency found, named (``round is 19 but the history holds 10 rounds``).
    """
    exact_fields(state, _STATE_FIELDS, "", FormatError)
    if not isinstance(state["encrypted"], bool):
        raise FormatError(f"encrypted must be true or false; got {state['encrypted']!r}")
    if state["encrypted"] != encrypted:
        raise FormatError("the checkpoint is from an encrypted run and this one is not, or the reverse")
    weights = _weights(state["weights"], "weights", size)
    rounds = integer(state["round"], "round", 0, FormatError)
    eta0, decay, min_delta = _check_scheduler(state["scheduler"])
    losses, etas = _check_history(state["history"], rounds, hospitals, decay)
    if etas and eta0 not in (etas[-1], etas[-1] * decay):
        raise FormatError(
            f"the scheduler's eta0 {eta0!r} does not follow round {rounds}'s {etas[-1]!r} (decay {decay!r})"
        )
    improved = _check_best(state["best"], losses, min_delta, weights)
    if not isinstance(state["stopped_early"], bool):
        raise FormatError(f"stopped_early must be true or false; got {state['stopped_early']!r}")
    if state["stopped_early"] and improved == rounds:
        raise FormatError(f"stopped_early is true but the last round, {rounds}, improved the validation loss")


def _weights(value: Any, name: str, size: int) -> np.ndarray:
    if not isinstance(value, list):
        raise FormatError(f"{name} must be a list of numbers; got {type(value).__name__}")
    if len(value) != size:
        raise FormatError(f"{name} hold {len(value)} values; this model has {size}")
    for i, v in enumerate(value):
        if type(v) not in (int, float) or not math.isfinite(v):
            raise FormatError(f"{name} must be finite numbers; value {i} is {v!r}")
    return np.asarray(value, dtype=np.float64)


def _check_scheduler(value: Any) -> Tuple[float, float, float]:
    """The scheduler state's eta0, decay and min_delta, once it is valid."""
    p = "scheduler state is invalid: "
    s = exact_fields(value, _SCHEDULER_FIELDS, p, FormatError)
    options = {name: number(s[name], p + name, FormatError) for name in ("eta0", "alpha", "decay", "min_delta")}
    options["patience"] = integer(s["patience"], p + "patience", 1, FormatError)
    try:
        AdaptiveLR(**options)  # its own range checks
    except ParameterError as exc:
        raise FormatError(p + str(exc)) from None
    if options["min_delta"] < 0:
        raise FormatError(f"{p}min_delta must be >= 0; got {options['min_delta']!r}")
    if s["best_loss"] is not None:
        number(s["best_loss"], p + "best_loss", FormatError)
    stale = integer(s["stale_rounds"], p + "stale_rounds", 0, FormatError)
    if options["decay"] < 1 and stale >= options["patience"]:
        raise FormatError(f"{p}stale_rounds is {stale}, not below patience {options['patience']} (eta0 decays then)")
    return options["eta0"], options["decay"], options["min_delta"]


def _check_history(
    history: Any, rounds: int, hospitals: Collection[str], decay: float
) -> Tuple[List[float], List[float]]:
    """Each round's validation loss and eta0, once every record is valid."""
    if not isinstance(history, list):
        raise FormatError(f"history must be a list of round records; got {type(history).__name__}")
    if len(history) != rounds:
        raise FormatError(f"round is {rounds} but the history holds {len(history)} rounds")
    losses, etas = [], []
    for i, record in enumerate(history, 1):
        losses.append(_check_record(record, i, hospitals))
        eta0 = record["eta0"]
        if etas and eta0 not in (etas[-1], etas[-1] * decay):
            raise FormatError(f"history record {i}: eta0 is {eta0!r} in round {i} but {etas[-1]!r} in round {i - 1} "
                              f"(decay {decay!r})")
        etas.append(eta0)
    return losses, etas


def _check_record(record: Any, i: int, hospitals: Collection[str]) -> float:
    """The validation loss of history record ``i`` (round ``i``), once the record is valid."""
    p = f"history record {i}: "
    metrics = [k for k in record if isinstance(k, str) and k.startswith("val_")] if isinstance(record, dict) else []
    exact_fields(record, {*_RECORD_FIELDS, *metrics}, p, FormatError)
    if record["round"] != i or isinstance(record["round"], bool):
        raise FormatError(f"history record {i} is for round {record['round']!r}")
    loss = number(record["val_loss"], p + "val_loss", FormatError)
    for name in metrics:
        number(record[name], p + name, FormatError, nan=True)
    number(record["eta0"], p + "eta0", FormatError, low=0.0)
    number(record["train_loss"], p + "train_loss", FormatError)
    reported = record["reported"]
    if isinstance(reported, bool) or not isinstance(reported, int) or not 1 <= reported <= len(hospitals):
        raise FormatError(f"{p}reported must be between 1 and {len(hospitals)}; got {reported!r}")
    number_map(record["seconds"], p + "seconds", FormatError)
    sizes = record["bytes"]
    if not isinstance(sizes, dict):
        raise FormatError(f"{p}bytes must map names to byte counts; got {sizes!r}")
    for name, count in sizes.items():
        integer(count, f"{p}bytes[{name!r}]", 0, FormatError)
    if not isinstance(record["failures"], list) or not all(isinstance(f, str) for f in record["failures"]):
        raise FormatError(f"{p}failures must be a list of strings; got {record['failures']!r}")
    return loss


def _selection(losses: Sequence[float], min_delta: float) -> Tuple[int, float, int]:
    """The server's model selection replayed: best round, best loss, last improvement > min_delta."""
    best_round, best_loss, improved = 0, math.inf, 0
    for rnd, loss in enumerate(losses, 1):
        if loss < best_loss:
            if loss < best_loss - min_delta:
                improved = rnd
            best_round, best_loss = rnd, loss
    return best_round, best_loss, improved


def _check_best(value: Any, losses: Sequence[float], min_delta: float, weights: np.ndarray) -> int:
    """The last improvement's round, once the best round, loss and weights agree with the history."""
    best = exact_fields(value, _BEST_FIELDS, "best: ", FormatError)
    best_weights = _weights(best["weights"], "best weights", weights.size)
    rnd, loss, improved = _selection(losses, min_delta)
    if integer(best["round"], "best round", 0, FormatError) != rnd:
        raise FormatError(f"best round is {best['round']} but the history's lowest validation loss is at round {rnd}")
    stored = best["loss"] if best["loss"] is None else number(best["loss"], "best loss", FormatError)
    if stored != (None if rnd == 0 else loss):
        raise FormatError(f"best loss is {stored!r} but the history's lowest validation loss is {loss!r}")
    if integer(best["improved_round"], "best improved_round", 0, FormatError) != improved:
        raise FormatError(f"best improved_round is {best['improved_round']} but the history's last improvement by "
                          f"more than min_delta={min_delta:g} is in round {improved}")
    if rnd == len(losses) and not np.array_equal(best_weights, weights):
        raise FormatError(f"best round is {rnd}, the last round, but the best weights differ from the weights")
    return improved
