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

__all__ = ["bytes_record", "record_bytes", "exchange", "POLL_SECONDS"]

#: How often the server asks the SuperLink for replies (Flower's own loop waits 3 s between asks).
POLL_SECONDS = 0.05
_KEY = "bytes"


def bytes_record(data: bytes) -> ArrayRecord:
    """Opaque bytes as an ArrayRecord of one uint8 array."""
    return ArrayRecord({_KEY: Array(np.frombuffer(bytes(data), dtype=np.uint8))})


def record_bytes(message: Message, name: str) -> bytes:
    """The bytes a message carries under ``name``. Raises FormatError if it carries none."""
    try:
        return message.content.array_records[name][_KEY].numpy().tobytes()
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise FormatError(f"the message carries no {name!r} bytes ({type(exc).__name__}: {exc})") from None


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
