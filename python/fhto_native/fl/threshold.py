"""Multiparty keys in a federation: key generation as a round-0 exchange, decryption by shares.

Round 0 (:func:`key_generation`): every hospital samples its key share and sends its public share
to the server, which broadcasts them; every party combines the collective public key itself.
Then, through the server, over pairwise encrypted channels it relays but cannot read, hospital 1
sends every other hospital the tag key, and for t-of-n each hospital sends one Shamir piece of its
secret to each other hospital. No party, the server included, ever holds the secret key.

Each round's sum is decrypted by :class:`ThresholdKeyHolder`: it picks t reachable hospitals
(all n for N-of-N), asks each for its decryption share of the sum and combines them. A hospital
that uploaded and then dropped out before the decryption does not block the round while t remain.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from ..engine import PublicContext
from ..errors import DecryptionRefusedError, ParameterError
from ..multiparty import ChannelMessage, Consortium, DecryptionShare, KeyShare, Party, PublicShare, combine, combine_public_key

__all__ = ["KeyGeneration", "key_generation", "ThresholdKeyHolder"]


@dataclass
class KeyGeneration:
    """The outcome of round 0: the consortium, the collective public context, each hospital's
    key share (kept by that hospital) and what the exchange cost."""

    consortium: Consortium
    public: PublicContext
    shares: Dict[str, KeyShare]
    seconds: float
    bytes_per_hospital: Dict[str, int] = field(default_factory=dict)

    def describe(self) -> Dict[str, object]:
        c = self.consortium
        return {
            "kind": "threshold" if c.threshold < c.parties else "n-of-n",
            "parties": c.parties,
            "threshold": c.threshold,
            "preset": c.params.name,
            "flood_bits": c.flood_bits,
            "round_bits": c.round_bits,
            "budget_bits": c.budget_bits,
            "security_bits": c.security_bits,
            "consortium_id": c.id.hex(),
            "fingerprint": self.public.fingerprint,
            "key_generation_seconds": self.seconds,
            "key_generation_bytes_per_hospital": self.bytes_per_hospital,
            "description": c.describe(),
        }


def key_generation(consortium: Consortium, names: Sequence[str], *, seed: Optional[int] = None) -> KeyGeneration:
    """Run round 0 in process for the hospitals ``names`` (party i + 1 is ``names[i]``).

    Every message crosses as bytes and is parsed back, as it would over a network; the bytes
    each hospital sends and receives are counted.
    """
    if len(names) != consortium.parties:
        raise ParameterError(f"the consortium has {consortium.parties} parties; got {len(names)} hospitals")
    t0 = time.perf_counter()
    traffic = {name: 0 for name in names}
    shares = {name: KeyShare.generate(consortium, i + 1, seed=seed) for i, name in enumerate(names)}
    published = {name: s.public_share().to_bytes() for name, s in shares.items()}
    broadcast = [PublicShare.from_bytes(b) for b in published.values()]
    for name in names:
        traffic[name] += len(published[name]) + sum(len(b) for other, b in published.items() if other != name)
    public = combine_public_key(consortium, broadcast)
    outgoing = {name: [m.to_bytes() for m in shares[name].tag_key_messages(broadcast)] for name in names}
    if consortium.threshold < consortium.parties:
        for name in names:
            outgoing[name] += [m.to_bytes() for m in shares[name].shamir_messages(broadcast)]
    messages = [ChannelMessage.from_bytes(b) for name in names for b in outgoing[name]]
    for name, share in shares.items():
        inbox = [m for m in messages if m.recipient == share.party]
        traffic[name] += sum(len(b) for b in outgoing[name]) + sum(len(m.to_bytes()) for m in inbox)
        share.receive(inbox, broadcast)
    return KeyGeneration(consortium, public, shares, time.perf_counter() - t0, traffic)


class ThresholdKeyHolder:
    """Decrypts sums with the hospitals' shares; the same ``decrypt_sum`` as a single key holder.

    Parameters
    ----------
    consortium, public:
        The consortium and its collective public context.
    parties:
        Hospital name to its :class:`~fhto_native.multiparty.Party` (in process), or to any object
        with ``party`` and ``decryption_share(data, parties)`` that reaches it.
    reachable:
        Returns the names of the hospitals reachable now (default: all). The decrypting set is
        chosen among them before any share is asked for.
    """

    def __init__(self, consortium: Consortium, public: PublicContext, parties: Mapping[str, Party],
                 reachable: Optional[Callable[[], Iterable[str]]] = None) -> None:
        self.consortium, self.public, self.parties = consortium, public, dict(parties)
        self.reachable = reachable or (lambda: list(self.parties))
        self.log: List[Dict[str, object]] = []

    def decrypt_sum(self, data: bytes, *, tags: Optional[Sequence[bytes]] = None, round: Optional[int] = None) -> np.ndarray:
        """The plaintext of an encrypted sum, from t reachable hospitals' shares; ``tags`` are the
        signed tags of the summed uploads of ``round``, which each hospital checks the sum against.

        Raises
        ------
        DecryptionRefusedError
            Fewer than t hospitals reachable, or a hospital refused (see :meth:`Party.decryption_share`).
        """
        c = self.consortium
        live = sorted((n for n in self.reachable() if n in self.parties), key=lambda n: self.parties[n].party)
        if len(live) < c.threshold:
            raise DecryptionRefusedError(
                f"only {len(live)} key holders are reachable; decrypting needs {c.threshold} of the {c.parties}"
            )
        chosen = live[: c.threshold]
        group = [self.parties[n].party for n in chosen]
        t0 = time.perf_counter()
        shares: List[DecryptionShare] = []
        for name in chosen:
            raw = self.parties[name].decryption_share(data, group, round=round, tags=tags).to_bytes()
            shares.append(DecryptionShare.from_bytes(raw))
        t1 = time.perf_counter()
        values = combine(c, self.public, data, shares, threads=1)
        self.log.append({
            "parties": chosen, "share_seconds": t1 - t0, "combine_seconds": time.perf_counter() - t1,
            "share_bytes": [s.nbytes for s in shares],
        })
        return values
