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

from ...engine import PublicContext
from ...errors import FormatError, ParameterError
from ...multiparty import ChannelMessage, Consortium, DecryptionShare, PublicShare, combine, combine_public_key
from ..protocol import HospitalUpdate, RoundPlan
from .messages import bytes_record, exchange, pack_blobs, record_bytes, unpack_blobs

__all__ = [
    "FlowerTransport", "RemoteKeyHolder", "RemoteThresholdKeyHolder", "threshold_key_generation", "discover",
    "Federation", "study_record", "hello_record",
]

#: Message types FHTO's ClientApp answers (Flower's "train" and "query" with a sub-type).
HELLO, DECRYPT, EVALUATE = "query.hello", "query.decrypt", "query.evaluate"
#: Multiparty keys: round 0 (a hospital's public share; its messages to the others; taking in
#: its own) and a decryption share.
KEYGEN_SHARE, KEYGEN_SEND, KEYGEN_RECEIVE, SHARE = "query.keygen_share", "query.keygen_send", "query.keygen_receive", "query.share"


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


def _ask(grid: Grid, federation: Federation, kind: str, contents: Mapping[str, RecordDict], timeout: float,
         what: str) -> Dict[str, Message]:
    """One message to each named hospital; every one must answer. Returns the replies by hospital."""
    messages = [Message(content, dst_node_id=federation.nodes[name], message_type=kind) for name, content in contents.items()]
    replies, late = exchange(grid, messages, timeout)
    if late:
        raise ParameterError(f"{what}: no answer from {', '.join(federation.name_of(n) for n in late)} within {timeout:g} s")
    out = {}
    for node, reply in replies.items():
        name = federation.name_of(node)
        if reply.has_error():
            raise ParameterError(f"{what}: {name} refused: {reply.error.reason}")
        out[name] = reply
    return out


def threshold_key_generation(grid: Grid, federation: Federation, consortium: Consortium, timeout: float,
                             study: str) -> PublicContext:
    """Round 0 over Flower messages: every hospital makes (or, after a restart, reloads) its key
    share and answers with its public share; the server broadcasts them, relays each hospital's
    encrypted messages to their recipients, and checks that every hospital computed the same
    collective public key as it did. Returns that public context (the server never sees a secret)."""
    names = list(federation.nodes)
    tag = lambda: study_record(study, len(names))  # noqa: E731
    replies = _ask(grid, federation, KEYGEN_SHARE, {n: RecordDict({"study": tag()}) for n in names}, timeout,
                   "key generation")
    publics = [PublicShare.from_bytes(record_bytes(replies[n], "public")) for n in names]
    public = combine_public_key(consortium, publics)
    everyone = bytes_record(pack_blobs(p.to_bytes() for p in publics))
    replies = _ask(grid, federation, KEYGEN_SEND, {n: RecordDict({"study": tag(), "publics": everyone}) for n in names},
                   timeout, "key generation")
    messages = [ChannelMessage.from_bytes(b) for n in names for b in unpack_blobs(record_bytes(replies[n], "messages"), "messages")]
    contents = {}
    for i, name in enumerate(names, 1):
        inbox = pack_blobs(m.to_bytes() for m in messages if m.recipient == i)
        contents[name] = RecordDict({"study": tag(), "publics": everyone, "inbox": bytes_record(inbox)})
    replies = _ask(grid, federation, KEYGEN_RECEIVE, contents, timeout, "key generation")
    for name, reply in replies.items():
        theirs = str(reply.content.config_records["keys"]["fingerprint"])
        if theirs != public.fingerprint:
            raise ParameterError(f"key generation: {name} computed another collective key ({theirs} != {public.fingerprint})")
    return public


class RemoteThresholdKeyHolder:
    """Multiparty keys through the Grid: t hospitals each send a decryption share of the sum
    (checked against the uploads' signed tags), the server combines them. With the study's
    weighting, the sum is of n_i / weight_unit-weighted updates: it is multiplied back."""

    def __init__(self, grid: Grid, federation: Federation, consortium: Consortium, public: PublicContext,
                 timeout: float, study: str, weight_unit: float = 1.0) -> None:
        self.grid, self.federation, self.consortium, self.public = grid, federation, consortium, public
        self.timeout, self.study, self.weight_unit = timeout, study, float(weight_unit)

    def decrypt_sum(self, data: bytes, *, tags: Optional[Sequence[bytes]] = None, round: Optional[int] = None) -> np.ndarray:
        names = list(self.federation.nodes)[: self.consortium.threshold]
        group = [list(self.federation.nodes).index(n) + 1 for n in names]
        config = ConfigRecord({"round": int(round or 0), "parties": group})
        contents = {
            n: RecordDict({"sum": bytes_record(data), "tags": bytes_record(pack_blobs(tags or [])), "request": config,
                           "study": study_record(self.study, len(self.federation.nodes))})
            for n in names
        }
        replies = _ask(self.grid, self.federation, SHARE, contents, self.timeout, "decryption")
        shares = [DecryptionShare.from_bytes(record_bytes(replies[n], "share")) for n in names]
        total = combine(self.consortium, self.public, data, shares, threads=1)
        return total * self.weight_unit if self.weight_unit != 1.0 else total


def hello_record(hospital: str, key_holder: bool) -> RecordDict:
    """A node's answer to the hello: its hospital and whether it holds the key."""
    return RecordDict({"hello": ConfigRecord({"hospital": hospital, "key-holder": bool(key_holder)})})
