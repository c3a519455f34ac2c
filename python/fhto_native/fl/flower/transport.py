"""The server's seams over a Flower Grid: which node is which hospital, round plans out and
updates back (:class:`FlowerTransport`), and the key holder reached by a query message
(:class:`RemoteKeyHolder`). Nothing here reads a hospital's numbers: the plan and the update
travel in their wire forms, the encrypted batch as opaque bytes.
"""
from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from ...errors import FormatError, ParameterError
from ..protocol import HospitalUpdate, RoundPlan
from .messages import bytes_record, exchange, record_bytes

__all__ = ["FlowerTransport", "RemoteKeyHolder", "discover", "Federation", "study_record", "hello_record"]

#: Message types FHTO's ClientApp answers (Flower's "train" and "query" with a sub-type).
HELLO, DECRYPT, EVALUATE = "query.hello", "query.decrypt", "query.evaluate"


class Federation:
    """The hospitals behind their SuperNodes: hospital name -> node id, and the key holder."""

    def __init__(self, nodes: Mapping[str, int], key_holder: str) -> None:
        self.nodes = dict(nodes)
        self.key_holder = key_holder

    def name_of(self, node_id: int) -> str:
        return next((name for name, n in self.nodes.items() if n == node_id), f"node {node_id}")


def discover(grid: Grid, hospitals: Sequence[str], timeout: float, say=print) -> Federation:
    """Wait until every named hospital's SuperNode answers a hello (its hospital name and whether
    it holds the key), up to ``timeout`` seconds.

    Raises
    ------
    ParameterError
        A hospital did not answer in time, two nodes claim one hospital, a node names a hospital
        the run does not know, or no hospital holds the key.
    """
    deadline = time.monotonic() + timeout
    nodes: Dict[str, int] = {}
    holders: List[str] = []
    asked: set = set()
    while time.monotonic() < deadline and len(nodes) < len(hospitals):
        fresh = [n for n in grid.get_node_ids() if n not in asked]
        if not fresh:
            time.sleep(0.2)
            continue
        messages = [Message(RecordDict(), dst_node_id=n, message_type=HELLO) for n in fresh]
        replies, _ = exchange(grid, messages, max(deadline - time.monotonic(), 0.1))
        for node, reply in replies.items():
            asked.add(node)
            if reply.has_error():
                say(f"  node {node} did not introduce itself: {reply.error.reason}")
                continue
            hello = reply.content.config_records["hello"]
            name = str(hello["hospital"])
            if name not in hospitals:
                raise ParameterError(f"node {node} says it is {name!r}, which this run does not know ({', '.join(hospitals)})")
            if name in nodes:
                raise ParameterError(f"two SuperNodes ({nodes[name]} and {node}) both say they are {name!r}")
            nodes[name] = node
            if bool(hello["key-holder"]):
                holders.append(name)
    missing = [h for h in hospitals if h not in nodes]
    if missing:
        raise ParameterError(f"no SuperNode answered for {', '.join(missing)} within {timeout:g} s")
    if not holders:
        raise ParameterError("no hospital's SuperNode holds the key (node config key-holder=true)")
    return Federation({h: nodes[h] for h in hospitals}, holders[0])  # the run's order: it numbers the seeds


def study_record(study: str, parties: int) -> ConfigRecord:
    """Which study a message belongs to (a hospital keeps its state per study) and its size."""
    return ConfigRecord({"id": study, "parties": int(parties)})


class FlowerTransport:
    """Round plans to the hospitals' SuperNodes as Flower "train" messages; their updates back."""

    def __init__(self, grid: Grid, federation: Federation, study: str) -> None:
        self.grid, self.federation, self.study = grid, federation, study

    @property
    def hospitals(self) -> List[str]:
        return list(self.federation.nodes)

    def exchange(
        self, plans: Mapping[str, RoundPlan], timeout: Optional[float]
    ) -> Tuple[List[HospitalUpdate], List[str]]:
        nodes = self.federation.nodes
        messages = [
            Message(RecordDict({"plan": bytes_record(plan.to_wire()), "study": study_record(self.study, len(nodes))}),
                    dst_node_id=nodes[name], message_type="train", group_id=f"round {plan.round}")
            for name, plan in plans.items()
        ]
        replies, late = exchange(self.grid, messages, timeout if timeout is not None else 3600.0)
        updates, failures = [], [f"{self.federation.name_of(n)}: no answer within {timeout:g} s" for n in late]
        for node, reply in replies.items():
            name = self.federation.name_of(node)
            if reply.has_error():
                failures.append(f"{name}: {reply.error.reason}")
                continue
            try:
                update = HospitalUpdate.from_wire(record_bytes(reply, "update"))
            except FormatError as exc:
                failures.append(f"{name}: {exc}")
                continue
            if update.hospital != name:
                failures.append(f"{name}: its node answered as {update.hospital!r}")
                continue
            updates.append(update)
        return updates, failures


class RemoteKeyHolder:
    """The key holder reached through the Grid: sends the encrypted sum, gets the plaintext sum."""

    def __init__(self, grid: Grid, federation: Federation, timeout: float, study: str) -> None:
        self.grid, self.federation, self.timeout, self.study = grid, federation, timeout, study

    def decrypt_sum(self, data: bytes) -> np.ndarray:
        name = self.federation.key_holder
        content = RecordDict({"sum": bytes_record(data), "study": study_record(self.study, len(self.federation.nodes))})
        message = Message(content, dst_node_id=self.federation.nodes[name], message_type=DECRYPT)
        replies, _ = exchange(self.grid, [message], self.timeout)
        reply = replies.get(self.federation.nodes[name])
        if reply is None:
            raise ParameterError(f"the key holder ({name}) did not answer within {self.timeout:g} s")
        if reply.has_error():
            raise ParameterError(f"the key holder ({name}) refused: {reply.error.reason}")
        total = np.frombuffer(record_bytes(reply, "plain"), dtype="<f8").astype(np.float64)
        if not np.isfinite(total).all():
            raise FormatError(f"the key holder ({name}) answered with non-finite values")
        return total


def hello_record(hospital: str, key_holder: bool) -> RecordDict:
    """A node's answer to the hello: its hospital and whether it holds the key."""
    return RecordDict({"hello": ConfigRecord({"hospital": hospital, "key-holder": bool(key_holder)})})
