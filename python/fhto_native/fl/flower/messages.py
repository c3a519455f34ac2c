"""Flower messages as FHTO uses them: opaque bytes in an ArrayRecord, and one exchange loop.

Every FHTO message body is one of the project's own byte forms (a round plan, a hospital update,
an encrypted batch), carried as a uint8 array: Flower moves the bytes, FHTO checks them.
"""
from __future__ import annotations

import time
from typing import Dict, Iterable, List, Tuple

import numpy as np
from flwr.app import Array, ArrayRecord, Message
from flwr.serverapp import Grid

from ...errors import FormatError

__all__ = ["bytes_record", "record_bytes", "exchange", "pack_blobs", "unpack_blobs", "POLL_SECONDS"]

#: How often the server asks the SuperLink for replies (Flower's own loop waits 3 s between asks).
POLL_SECONDS = 0.05
_KEY = "bytes"


def bytes_record(data: bytes) -> ArrayRecord:
    """Opaque bytes as an ArrayRecord of one uint8 array."""
    return ArrayRecord({_KEY: Array(np.frombuffer(bytes(data), dtype=np.uint8))})


def record_bytes(message: Message, name: str) -> memoryview:
    """The bytes a message carries under ``name``, as a view into the record (no copy: a
    ResNet-50-sized upload is 180 MB). Raises FormatError if it carries none."""
    try:
        array = message.content.array_records[name][_KEY]
        data = memoryview(array.data)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise FormatError(f"the message carries no {name!r} bytes ({type(exc).__name__}: {exc})") from None
    if array.stype != "numpy.ndarray" or array.dtype != "uint8" or len(array.shape) != 1:
        raise FormatError(f"the message's {name!r} record is not a byte array ({array.stype}, {array.dtype}, {array.shape})")
    return _npy_body(data, int(array.shape[0]), name)


def _npy_body(data: memoryview, size: int, name: str) -> memoryview:
    """The payload of a 1-D uint8 array in numpy's .npy serialization (how Flower stores it)."""
    if bytes(data[:6]) != b"\x93NUMPY" or len(data) < 10:
        raise FormatError(f"the message's {name!r} record is not in numpy's format")
    major = data[6]
    width = 2 if major == 1 else 4
    start = 8 + width + int.from_bytes(data[8 : 8 + width], "little")
    if len(data) - start != size:
        raise FormatError(f"the message's {name!r} record holds {len(data) - start} bytes; its shape says {size}")
    return data[start:]


def exchange(grid: Grid, messages: Iterable[Message], timeout: float) -> Tuple[Dict[int, Message], List[int]]:
    """Send messages and collect replies until all came back or ``timeout`` seconds passed.

    Returns the replies by destination node id and the node ids that did not answer in time.
    """
    messages = list(messages)
    ids = [i for i in grid.push_messages(messages) if i]
    node_of = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}
    waiting, replies = set(ids), {}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for reply in grid.pull_messages(list(waiting)):
            sent = reply.metadata.reply_to_message_id
            waiting.discard(sent)
            replies[node_of[sent]] = reply
        if waiting:
            time.sleep(POLL_SECONDS)
    return replies, [node_of[i] for i in waiting]


def pack_blobs(blobs: Iterable[bytes]) -> bytes:
    """Several byte strings as one: each as le64(length) || bytes."""
    return b"".join(len(b).to_bytes(8, "little") + bytes(b) for b in blobs)


def unpack_blobs(data: bytes, what: str) -> List[bytes]:
    """The byte strings of :func:`pack_blobs`. Raises FormatError if the lengths do not add up."""
    data, out, at = memoryview(data).cast("B"), [], 0
    while at < len(data):
        if at + 8 > len(data):
            raise FormatError(f"{what}: a length prefix is cut short")
        size = int.from_bytes(data[at:at + 8], "little")
        if size > len(data) - at - 8:
            raise FormatError(f"{what}: an item claims {size} bytes but {len(data) - at - 8} remain")
        out.append(bytes(data[at + 8:at + 8 + size]))
        at += 8 + size
    return out
