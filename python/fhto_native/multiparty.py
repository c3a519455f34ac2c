"""Multiparty CKKS keys: no party ever holds the whole secret key.

A consortium of ``n`` hospitals agrees on a :class:`Consortium` (parameters, size, threshold,
decryption budget and a public seed). Each hospital then, on its own machine:

1. ``share = KeyShare.generate(consortium, party=i)``: samples its secret ``s_i`` (it never leaves
   the hospital) and publishes ``share.public_share()``, ``p_i = -(a * s_i + e_i)`` with ``a``
   expanded from the consortium's seed;
2. ``public = combine_public_key(consortium, public_shares)``: the collective public key
   ``(sum p_i, a)`` for ``s = sum s_i``, a :class:`~fhto_native.PublicContext` like any other (the
   server's :class:`~fhto_native.Accumulator` sums its ciphertexts unchanged);
3. over pairwise channels relayed by the server (X25519, HKDF-SHA256, ChaCha20-Poly1305): party 1
   sends every party the consortium's tag key (``share.tag_key_messages``), and for t-of-n each
   party Shamir-shares ``s_i`` to the others (``share.shamir_messages``); ``share.receive(messages)``
   takes in what the others sent.

Each upload carries its hospital's :class:`SignedTag`: a tag linear in the ciphertext under the
tag key (which the server does not hold), signed with the hospital's Ed25519 key. A party shares
the decryption of a sum only if the sum's tag equals the sum of at least ``min_contributions``
distinct hospitals' signed tags for the round (:meth:`Party.decryption_share`): a server cannot
slip in a ciphertext of its own, or one hospital's upload alone.

To decrypt a sum, ``t`` hospitals (all ``n`` for N-of-N) each return a :class:`DecryptionShare`
(:meth:`Party.decryption_share`), and anyone combines them (:func:`combine`). A share carries
flooding noise wide enough that the shares and the result reveal nothing about the secret key
(docs/MULTIPARTY.md gives the analysis), and a :class:`Party` issues shares only under the rules
of :meth:`Party.decryption_share`.

Every format here is specified byte for byte in docs/FORMATS.md.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from . import _core
from ._files import write_atomic
from ._inputs import as_buffer, as_seed, as_threads
from .engine import PublicContext
from .errors import (
    DecryptionRefusedError,
    FormatError,
    InputTypeError,
    KeyMismatchError,
    ParameterError,
    ValueRangeError,
)
from .params import Params, get_params

__all__ = [
    "Consortium",
    "KeyShare",
    "PublicShare",
    "ChannelMessage",
    "SignedTag",
    "DecryptionShare",
    "Party",
    "combine_public_key",
    "combine",
    "flood_bits",
    "FISHER_FACTOR",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Fisher information of the flooding distribution (a sum of four uniforms) times its variance:
#: 1.0386 for the continuous sum (a Gaussian has exactly 1), rounded up. docs/MULTIPARTY.md.
FISHER_FACTOR = 1.04
#: Flooding summands per coefficient.
FLOOD_SUMMANDS = 4
#: Bits each share coefficient keeps below the flooding noise's width (rounding to 2^(w - 8)).
ROUNDING_MARGIN_BITS = 8
#: The flooding part of Consortium.error_bound holds with probability 1 - 2 exp(-Z^2 / 2) per value.
TAIL_Z = 9.0

_VERSION = 1
_HEADER = struct.Struct("<8sHHI")  # magic, version, reserved, CRC-32C (taken as 0 while computed)


# -- framing -----------------------------------------------------------------------------------
def _frame(magic: bytes, body: bytes) -> bytes:
    head = _HEADER.pack(magic, _VERSION, 0, 0)
    crc = _core.crc32c(body, _core.crc32c(head))
    return _HEADER.pack(magic, _VERSION, 0, crc) + body


def _unframe(magic: bytes, data: Any, what: str) -> memoryview:
    buf = memoryview(as_buffer(data, what)).cast("B")
    if len(buf) < _HEADER.size:
        raise FormatError(f"not {what}: {len(buf)} bytes is shorter than the {_HEADER.size}-byte header")
    got_magic, version, reserved, crc = _HEADER.unpack_from(buf, 0)
    if got_magic != magic:
        raise FormatError(f"not {what}: bad magic bytes")
    if version != _VERSION or reserved != 0:
        raise FormatError(f"unsupported {what} format version {version}")
    head = _HEADER.pack(magic, _VERSION, 0, 0)
    if _core.crc32c(buf[_HEADER.size:], _core.crc32c(head)) != crc:
        raise FormatError(f"{what} is corrupted: checksum mismatch")
    return buf[_HEADER.size:]


class _Reader:
    def __init__(self, body: memoryview, what: str) -> None:
        self.body, self.at, self.what = body, 0, what

    def take(self, n: int) -> memoryview:
        if n < 0 or self.at + n > len(self.body):
            raise FormatError(f"{self.what} is truncated")
        out = self.body[self.at:self.at + n]
        self.at += n
        return out

    def unpack(self, fmt: str) -> Tuple[Any, ...]:
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def words(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(8 * count), dtype="<u8").astype(np.uint64)

    def end(self) -> None:
        if self.at != len(self.body):
            raise FormatError(f"{self.what} has {len(self.body) - self.at} unexpected trailing bytes")


def _derived(tag: bytes, seed: int, index: int, size: int = 64) -> bytes:
    """BLAKE2b(key = tag || le64(seed), message = le64(index)): the engine's seed derivation."""
    return hashlib.blake2b(struct.pack("<Q", index), key=tag + struct.pack("<Q", seed), digest_size=size).digest()


def _check_residues(words: np.ndarray, moduli: Sequence[int], n: int, what: str) -> None:
    limbs = words.reshape(len(moduli), n)
    for j, q in enumerate(moduli):
        if np.any(limbs[j] >= np.uint64(q)):
            raise FormatError(f"{what} holds a residue out of range")


# -- the consortium ----------------------------------------------------------------------------
def flood_bits(n: int, parties: int, contributions: int, budget_bits: int, security_bits: int) -> int:
    """The flooding width w (summands uniform on [0, 2^w)) for ``security_bits`` of statistical
    security over 2^budget_bits decrypted coefficients of sums of ``contributions`` public-key
    encryptions under a key of ``parties`` shares (docs/MULTIPARTY.md, section "Flooding")."""
    noise_sq = 2.0 * 2.0 ** budget_bits * contributions * ((1.0 + n * parties) / 12.0 + 1.0)
    sigma = math.sqrt(FISHER_FACTOR * noise_sq) * 2.0 ** (security_bits - 1)
    return int(math.ceil(math.log2(math.sqrt(3.0) * sigma)))


@dataclass(frozen=True)
class Consortium:
    """What every party agrees on before key generation; public.

    Parameters
    ----------
    params:
        A :class:`Params` or preset name (:meth:`create` defaults to ``"threshold"``); one or two
        data primes.
    parties:
        n, the number of hospitals holding a key share (2 to 1000).
    threshold:
        t: how many of them decrypt together (``t == n``: N-of-N, no Shamir exchange).
    seed:
        The 64-byte public seed of the common polynomial ``a`` (random by default).
    budget_bits:
        The key's decryption budget: at most 2^budget_bits decrypted coefficients (N per
        ciphertext) per party; each :class:`Party` enforces it. Default 36.
    security_bits:
        Statistical security of the shares' flooding over that budget. Default 30.
    """

    params: Params
    parties: int
    threshold: int
    seed: bytes
    budget_bits: int = 36
    security_bits: int = 30

    @classmethod
    def create(
        cls,
        parties: int,
        threshold: Optional[int] = None,
        params: "Params | str | None" = "threshold",
        *,
        seed: Optional[int] = None,
        budget_bits: int = 36,
        security_bits: int = 30,
    ) -> "Consortium":
        """A new consortium; ``seed`` (an int, studies and tests only) derives the public seed."""
        s = as_seed(seed)
        public_seed = secrets.token_bytes(64) if s is None else _derived(b"fhto.party.v1", s, 2**64 - 1)
        return cls(get_params(params), parties, parties if threshold is None else threshold, public_seed, budget_bits, security_bits)

    def __post_init__(self) -> None:
        if not isinstance(self.params, Params):
            object.__setattr__(self, "params", get_params(self.params))
        for name, value, low, high in (
            ("parties", self.parties, 2, 1000),
            ("budget_bits", self.budget_bits, 1, 60),
            ("security_bits", self.security_bits, 1, 128),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ParameterError(f"{name} must be an int from {low} to {high}; got {value!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int) or not 1 <= self.threshold <= self.parties:
            raise ParameterError(f"threshold must be an int from 1 to parties ({self.parties}); got {self.threshold!r}")
        if not isinstance(self.seed, (bytes, bytearray)) or len(self.seed) != 64:
            raise ParameterError("seed must be 64 bytes")
        if len(self.params.coeff_modulus_bits) > 3:
            raise ParameterError("multiparty keys need one or two data primes (at most three primes in all)")
        w = self.flood_bits
        if w > 60:
            raise ParameterError(
                f"the flooding noise these settings need (2^{w} per summand) exceeds 2^60; lower budget_bits, "
                f"security_bits or parties"
            )
        if self.round_bits < 0 or w + 4 > self.params.data_modulus_bits - 8:
            raise ParameterError(
                f"the flooding noise (below 2^{w + 1} per party and coefficient) leaves no room in the "
                f"{self.params.data_modulus_bits}-bit data modulus; use the 'threshold' preset"
            )

    # -- derived values ------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.params.poly_modulus_degree

    @property
    def flood_bits(self) -> int:
        """w: each flooding summand is uniform on [0, 2^w) (contributions up to ``parties``)."""
        return flood_bits(self.n, self.parties, self.parties, self.budget_bits, self.security_bits)

    @property
    def flood_sigma(self) -> float:
        """Standard deviation of one party's flooding noise per coefficient."""
        w = self.flood_bits
        return math.sqrt(FLOOD_SUMMANDS * (4.0 ** w - 1) / 12.0)

    @property
    def round_bits(self) -> int:
        """k: share coefficients are rounded to multiples of 2^k, 2^8 below the flooding width."""
        return max(0, self.flood_bits - ROUNDING_MARGIN_BITS)

    def to_bytes(self) -> bytes:
        p = self.params
        body = struct.pack(
            "<IB", p.poly_modulus_degree, len(p.coeff_modulus_bits)
        ) + bytes(p.coeff_modulus_bits) + struct.pack(
            "<HBHHBB", p.scale_bits, int(p.packed), self.parties, self.threshold, self.budget_bits, self.security_bits
        ) + bytes(self.seed)
        return _frame(b"FHTOCONS", body)

    @classmethod
    def from_bytes(cls, data: Any) -> "Consortium":
        r = _Reader(_unframe(b"FHTOCONS", data, "a consortium"), "a consortium")
        n, count = r.unpack("IB")
        bits = tuple(r.take(count))
        scale, packed, parties, threshold, budget, security = r.unpack("HBHHBB")
        seed = bytes(r.take(64))
        r.end()
        if packed > 1:
            raise FormatError("a consortium holds an invalid packing flag")
        params = Params(n, bits, scale, packed=bool(packed), name="custom")
        for name, preset in _presets().items():
            if preset == params:
                params = preset
        return cls(params, parties, threshold, seed, budget, security)

    @property
    def id(self) -> bytes:
        """16 bytes naming the consortium: the first half of SHA-256 of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).digest()[:16]

    def _ring(self) -> "_core.Ring":
        """The parameters' primes and NTT tables (built once per parameter set: about 28 ms)."""
        return _ring_of(self.params)

    def common_polynomial(self) -> np.ndarray:
        """The common polynomial a (expanded once per consortium)."""
        key = (self.params, bytes(self.seed))
        if key not in _COMMON:
            _COMMON.clear()  # one consortium at a time is the usual case; keep memory bounded
            _COMMON[key] = _core.mp_common_polynomial(self._ring(), bytes(self.seed))
            _COMMON[key].setflags(write=False)
        return _COMMON[key]

    def error_bound(self, contributions: int, *, max_abs: Optional[float] = None, public: Optional[PublicContext] = None) -> float:
        """Bound on the error of any value of a threshold-decrypted sum of ``contributions`` uploads.

        Deterministic part (worst case): encryption noise (after SEAL's division by the special
        prime, at most 1/2 + N * parties / 2 + 1 per coefficient and contribution), the shares'
        rounding (2^(k-1) per share), and the floating-point error of encoding and decoding.
        Flooding part: the sum of ``threshold`` parties' floods is strictly sub-Gaussian, so each
        decoded value's flooding error exceeds TAIL_Z standard deviations with probability at most
        2 exp(-TAIL_Z^2 / 2) = 2^-57.4.
        """
        n, t, p = self.n, self.threshold, contributions
        scale = 2.0 ** self.params.scale_bits
        rho = public._core.rounding_error_factor if public is not None else math.sqrt(2 * n) * 4e-15
        m = max_abs if max_abs is not None else (public.max_abs_value(p, "public_key") if public is not None else 0.0)
        coefficient = p * (0.5 + n * self.parties / 2.0 + 1.0) + t * 2.0 ** max(self.round_bits - 1, 0)
        deterministic = n * coefficient / scale * (1 + rho) + p * rho * m
        flooding = TAIL_Z * math.sqrt(t * n / 2.0) * self.flood_sigma / scale
        return deterministic + flooding

    def describe(self) -> str:
        kind = "N-of-N" if self.threshold == self.parties else f"{self.threshold}-of-{self.parties}"
        return (
            f"{kind} multiparty key, {self.params.describe()}, flooding 4 x U[0, 2^{self.flood_bits}) per share "
            f"({self.security_bits}-bit statistical security over 2^{self.budget_bits} decrypted coefficients)"
        )


_RINGS: Dict[Params, "_core.Ring"] = {}
_COMMON: Dict[Tuple[Params, bytes], np.ndarray] = {}


def _ring_of(params: Params) -> "_core.Ring":
    if params not in _RINGS:
        _RINGS[params] = _core.Ring(params.poly_modulus_degree, list(params.coeff_modulus_bits), params.scale_bits,
                                    params.packing)
    return _RINGS[params]


def _presets() -> Dict[str, Params]:
    from .params import PRESETS

    return PRESETS


# -- key shares --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublicShare:
    """What party ``party`` publishes: p_i, its X25519 public key (its end of the pairwise
    channels) and its Ed25519 public key (its signature on contribution tags)."""

    consortium_id: bytes
    party: int
    exchange_key: bytes
    signing_key: bytes
    words: np.ndarray = field(repr=False, compare=False)

    def to_bytes(self) -> bytes:
        body = self.consortium_id + struct.pack("<H", self.party) + self.exchange_key + self.signing_key + struct.pack(
            "<Q", len(self.words)
        ) + self.words.astype("<u8").tobytes()
        return _frame(b"FHTOMPPS", body)

    @classmethod
    def from_bytes(cls, data: Any) -> "PublicShare":
        r = _Reader(_unframe(b"FHTOMPPS", data, "a public share"), "a public share")
        cid = bytes(r.take(16))
        (party,) = r.unpack("H")
        key, signing = bytes(r.take(32)), bytes(r.take(32))
        (count,) = r.unpack("Q")
        if count > 1 << 24:
            raise FormatError("a public share claims too many words")
        words = r.words(count)
        r.end()
        return cls(cid, party, key, signing, words)


#: What a pairwise channel message carries.
SHAMIR_PIECE, TAG_KEY = 1, 2


@dataclass(frozen=True)
class ChannelMessage:
    """A message from party ``sender`` to party ``recipient`` over their pairwise channel,
    relayed by the server, which cannot read or alter it: ChaCha20-Poly1305 under a key from
    X25519 between the two parties' exchange keys (HKDF-SHA256), the header as associated data.
    ``purpose`` is :data:`SHAMIR_PIECE` (a Shamir piece of the sender's secret) or :data:`TAG_KEY`."""

    consortium_id: bytes
    purpose: int
    sender: int
    recipient: int
    nonce: bytes
    ciphertext: bytes = field(repr=False)

    def _header(self) -> bytes:
        return self.consortium_id + struct.pack("<BHH", self.purpose, self.sender, self.recipient) + self.nonce

    def to_bytes(self) -> bytes:
        return _frame(b"FHTOMPCM", self._header() + self.ciphertext)

    @classmethod
    def from_bytes(cls, data: Any) -> "ChannelMessage":
        r = _Reader(_unframe(b"FHTOMPCM", data, "a channel message"), "a channel message")
        cid = bytes(r.take(16))
        purpose, sender, recipient = r.unpack("BHH")
        nonce = bytes(r.take(12))
        ct = bytes(r.take(len(r.body) - r.at))
        return cls(cid, purpose, sender, recipient, nonce, ct)


def _channel_key(own_private: Any, peer_public: bytes, consortium_id: bytes, sender: int, recipient: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    try:
        shared = own_private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:  # a low-order point: no shared secret
        raise FormatError(f"the channel between parties {sender} and {recipient} has an invalid exchange key") from None
    info = b"fhto.channel.v1" + consortium_id + struct.pack("<HH", sender, recipient)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _seal(share: "KeyShare", peer: "PublicShare", purpose: int, payload: bytes, nonce: bytes) -> ChannelMessage:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    c = share.consortium
    key = _channel_key(share._exchange_key(), peer.exchange_key, c.id, share.party, peer.party)
    m = ChannelMessage(c.id, purpose, share.party, peer.party, nonce, b"")
    return ChannelMessage(c.id, purpose, share.party, peer.party, nonce,
                          ChaCha20Poly1305(key).encrypt(nonce, payload, m._header()))


def _open(share: "KeyShare", message: ChannelMessage, peers: Dict[int, "PublicShare"], purpose: int) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    c = share.consortium
    if message.consortium_id != c.id or message.recipient != share.party or message.purpose != purpose:
        raise KeyMismatchError(f"a channel message from party {message.sender} is for another consortium, recipient or purpose")
    if message.sender not in peers or message.sender == share.party:
        raise KeyMismatchError(f"a channel message names an unknown sender, party {message.sender}")
    key = _channel_key(share._exchange_key(), peers[message.sender].exchange_key, c.id, message.sender, share.party)
    try:
        return ChaCha20Poly1305(key).decrypt(message.nonce, message.ciphertext, message._header())
    except InvalidTag:
        raise FormatError(f"the channel message from party {message.sender} fails authentication") from None


class KeyShare:
    """One party's secrets: its key share s_i, its X25519 and Ed25519 keys, the consortium's tag
    key and, for t-of-n, its Shamir share of s. Held by one hospital only; saved with mode 0600.

    Round 0, at each party: :meth:`generate`, publish :meth:`public_share`; once every public
    share is in, :meth:`adopt` them (it keeps the others' signing keys), send
    :meth:`tag_key_messages` (party 1 only) and, for t-of-n, :meth:`shamir_messages`; then
    :meth:`receive` what the others sent.
    """

    def __init__(self, consortium: Consortium, party: int, secret: np.ndarray, public: np.ndarray,
                 exchange_private: bytes, signing_private: bytes, *, shamir_seed: bytes = b"", tag_key: Optional[bytes] = None,
                 signers: Optional[Dict[int, bytes]] = None, threshold_secret: Optional[np.ndarray] = None) -> None:
        self.consortium, self.party = consortium, party
        self._secret, self._public = secret, public
        self._exchange_private, self._signing_private = exchange_private, signing_private
        self._shamir_seed = shamir_seed
        self.tag_key = tag_key
        self.signers: Dict[int, bytes] = dict(signers or {})
        self._threshold_secret = threshold_secret
        self._seed: Optional[int] = None

    def _random(self, purpose: int, size: int, recipient: int = 0) -> bytes:
        """Fresh randomness, or (a seeded study) derived from the seed, the party, the purpose and,
        for a message's nonce, its recipient (index 8192 * recipient + 8 * party + purpose)."""
        if self._seed is None:
            return secrets.token_bytes(size)
        return _derived(b"fhto.party.v1", self._seed, 8192 * recipient + 8 * self.party + purpose, size)

    @classmethod
    def generate(cls, consortium: Consortium, party: int, *, seed: Optional[int] = None) -> "KeyShare":
        """Sample party ``party``'s (1 to n) secret share, its public share and its channel and
        signing keys. ``seed`` (studies and tests only) makes everything a deterministic function of it."""
        if isinstance(party, bool) or not isinstance(party, int) or not 1 <= party <= consortium.parties:
            raise ParameterError(f"party must be an int from 1 to {consortium.parties}; got {party!r}")
        share = cls(consortium, party, np.zeros(0, np.uint64), np.zeros(0, np.uint64), b"", b"")
        share._seed = as_seed(seed)
        key_seed = None if share._seed is None else share._random(0, 64)
        share._secret, share._public = _core.mp_generate_key_share(consortium._ring(), consortium.common_polynomial(), key_seed)
        share._exchange_private, share._signing_private = share._random(1, 32), share._random(4, 32)
        share._shamir_seed = share._random(2, 64)
        share._exchange_key(), share._signing_key()  # validate
        return share

    # -- what it publishes ---------------------------------------------------------------------
    def _exchange_key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return X25519PrivateKey.from_private_bytes(self._exchange_private)

    def _signing_key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self._signing_private)

    def public_share(self) -> PublicShare:
        from cryptography.hazmat.primitives import serialization

        raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicShare(self.consortium.id, self.party, self._exchange_key().public_key().public_bytes(*raw),
                           self._signing_key().public_key().public_bytes(*raw), self._public)

    def adopt(self, public_shares: Sequence[PublicShare]) -> Dict[int, PublicShare]:
        """Check every party's public share and keep their signing keys; returns them by party."""
        peers = _check_public_shares(self.consortium, public_shares)
        mine = peers[self.party]
        if mine.exchange_key != self.public_share().exchange_key or not np.array_equal(mine.words, self._public):
            raise KeyMismatchError(f"the public share published for party {self.party} is not this party's")
        self.signers = {p: s.signing_key for p, s in peers.items()}
        return peers

    # -- round 0 messages ----------------------------------------------------------------------
    def _data_secret(self) -> np.ndarray:
        limbs = len(self.consortium._ring().data_moduli)
        return self._secret[: limbs * self.consortium.n]

    def tag_key_messages(self, public_shares: Sequence[PublicShare]) -> List[ChannelMessage]:
        """Party 1 draws the consortium's tag key (the key of the contribution tags, which the
        server never learns) and sends it to every other party; the others send nothing."""
        peers = self.adopt(public_shares)
        if self.party != 1:
            return []
        if self.tag_key is None:  # drawn once: sending again (a restart) sends the same key
            self.tag_key = self._random(5, 32)
        return [_seal(self, peers[j], TAG_KEY, self.tag_key, self._random(6, 12, j))
                for j in sorted(peers) if j != self.party]

    def _shamir_rows(self) -> List[np.ndarray]:
        """f(1), ..., f(n) for this party's Shamir polynomial (its coefficients from the share's own
        stored seed, so the piece it keeps can be recomputed after a restart)."""
        c = self.consortium
        ring = c._ring()
        return _core.mp_shamir_split(ring, self._data_secret(), len(ring.data_moduli), c.threshold,
                                     list(range(1, c.parties + 1)), self._shamir_seed)

    def shamir_messages(self, public_shares: Sequence[PublicShare]) -> List[ChannelMessage]:
        """t-of-n: Shamir-share this party's secret (data level) among all n parties; returns one
        encrypted message per other party (the piece it keeps is recomputed by :meth:`receive`)."""
        c = self.consortium
        peers = self.adopt(public_shares)
        xs = list(range(1, c.parties + 1))
        rows = self._shamir_rows()
        return [_seal(self, peers[j], SHAMIR_PIECE, row.astype("<u8").tobytes(), self._random(3, 12, j))
                for j, row in zip(xs, rows) if j != self.party]

    def receive(self, messages: Sequence[ChannelMessage], public_shares: Sequence[PublicShare]) -> None:
        """Take in what the other parties sent in round 0: the tag key (from party 1) and, for
        t-of-n, their Shamir pieces, which add up to this party's share of s = sum s_i. Nothing is
        kept unless every message checks out.

        Raises
        ------
        FormatError
            A message that fails authentication (altered, or not from its sender), or a piece out of range.
        KeyMismatchError
            A message for another consortium or recipient, or a party missing or repeated.
        """
        c = self.consortium
        peers = self.adopt(public_shares)
        tag_key = self.tag_key
        for m in messages:
            if m.purpose == TAG_KEY and m.sender == 1:
                tag_key = _open(self, m, peers, TAG_KEY)
                if len(tag_key) != 32:
                    raise FormatError("the tag key message has the wrong length")
        if tag_key is None:
            raise KeyMismatchError("no tag key from party 1 among the messages")
        if c.threshold == c.parties:
            self.tag_key = tag_key
            return
        ring = c._ring()
        moduli = [np.uint64(q) for q in ring.data_moduli]
        total = np.array(self._shamir_rows()[self.party - 1], dtype=np.uint64).reshape(len(moduli), c.n)
        senders: Set[int] = set()
        for m in messages:
            if m.purpose != SHAMIR_PIECE:
                continue
            if m.sender in senders:
                raise KeyMismatchError(f"Shamir messages: party {m.sender} is repeated")
            plain = _open(self, m, peers, SHAMIR_PIECE)
            senders.add(m.sender)
            if len(plain) != 8 * len(moduli) * c.n:
                raise FormatError(f"the Shamir message from party {m.sender} has the wrong length")
            piece = np.frombuffer(plain, dtype="<u8").astype(np.uint64).reshape(len(moduli), c.n)
            for j, q in enumerate(moduli):
                if np.any(piece[j] >= q):
                    raise FormatError(f"the Shamir message from party {m.sender} holds a residue out of range")
                total[j] = (total[j] + piece[j]) % q
        missing = set(peers) - senders - {self.party}
        if missing:
            raise KeyMismatchError(f"Shamir messages missing from parties {sorted(missing)}")
        # Nothing changes unless every message checked out.
        self.tag_key, self._threshold_secret = tag_key, total.reshape(-1)

    @property
    def has_threshold_share(self) -> bool:
        return self._threshold_secret is not None

    # -- contribution tags ---------------------------------------------------------------------
    def sign_tag(self, public: PublicContext, upload: Any, round: int) -> "SignedTag":
        """This party's signed tag of its own upload for ``round``."""
        if self.tag_key is None:
            raise ParameterError("this key share has no tag key yet (round 0 is not complete)")
        values = tuple(_core.mp_tag(public._core, as_buffer(upload, "upload"), _round_key(self.consortium, self.tag_key, round),
                                    TAG_REPETITIONS, 1))
        unsigned = SignedTag(self.consortium.id, round, self.party, values, b"")
        return SignedTag(self.consortium.id, round, self.party, values, self._signing_key().sign(unsigned._message()))

    # -- files ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        cons = self.consortium.to_bytes()
        ts = self._threshold_secret
        signers = b"".join(struct.pack("<H", p) + k for p, k in sorted(self.signers.items()))
        body = (
            struct.pack("<Q", len(cons)) + cons + struct.pack("<H", self.party) + self._exchange_private
            + self._signing_private + self._shamir_seed + struct.pack("<B", 0 if self.tag_key is None else 1) + (self.tag_key or b"")
            + struct.pack("<H", len(self.signers)) + signers
            + struct.pack("<Q", len(self._secret)) + self._secret.astype("<u8").tobytes()
            + struct.pack("<Q", len(self._public)) + self._public.astype("<u8").tobytes()
            + struct.pack("<Q", 0 if ts is None else len(ts)) + (b"" if ts is None else ts.astype("<u8").tobytes())
        )
        return _frame(b"FHTOMPSK", body)

    @classmethod
    def from_bytes(cls, data: Any) -> "KeyShare":
        r = _Reader(_unframe(b"FHTOMPSK", data, "a key share"), "a key share")
        (clen,) = r.unpack("Q")
        consortium = Consortium.from_bytes(bytes(r.take(clen)))
        (party,) = r.unpack("H")
        exchange, signing, shamir_seed = bytes(r.take(32)), bytes(r.take(32)), bytes(r.take(64))
        (has_tag,) = r.unpack("B")
        if has_tag > 1:
            raise FormatError("a key share holds an invalid tag-key flag")
        tag_key = bytes(r.take(32)) if has_tag else None
        (count,) = r.unpack("H")
        signers = {}
        for _ in range(count):
            (p,) = r.unpack("H")
            signers[p] = bytes(r.take(32))
        ring = consortium._ring()
        key_words = len(ring.key_moduli) * consortium.n
        data_words = len(ring.data_moduli) * consortium.n
        parts = []
        for want, what in ((key_words, "secret"), (key_words, "public share"), (None, "threshold share")):
            (words,) = r.unpack("Q")
            if words not in ((want,) if want else (0, data_words)):
                raise FormatError(f"a key share's {what} has {words} words; expected {want or data_words}")
            parts.append(r.words(words) if words else None)
        r.end()
        _check_residues(parts[0], ring.key_moduli, consortium.n, "a key share")
        _check_residues(parts[1], ring.key_moduli, consortium.n, "a key share")
        if parts[2] is not None:
            _check_residues(parts[2], ring.data_moduli, consortium.n, "a key share")
        if not 1 <= party <= consortium.parties or any(not 1 <= p <= consortium.parties for p in signers):
            raise FormatError(f"a key share names a party outside 1..{consortium.parties}")
        return cls(consortium, party, parts[0], parts[1], exchange, signing, shamir_seed=shamir_seed, tag_key=tag_key, signers=signers,
                   threshold_secret=parts[2])

    def save(self, path: PathLike) -> None:
        """Write the key share to ``path`` with mode 0600, atomically (as :meth:`KeySet.save`)."""
        write_atomic(path, self.to_bytes(), private=True)

    @classmethod
    def load(cls, path: PathLike) -> "KeyShare":
        return cls.from_bytes(Path(path).read_bytes())

    def __repr__(self) -> str:
        return f"KeyShare(party={self.party}, {self.consortium.describe()})"


#: Independent tag keys per data prime: two 48-bit primes and two repetitions give 192 bits.
TAG_REPETITIONS = 2


def _round_key(consortium: Consortium, tag_key: bytes, round: int) -> bytes:
    """The tag key of one round: BLAKE2b-512(key = tag key, message = consortium id || le64(round))."""
    if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round < 2**64:
        raise ParameterError(f"round must be an int from 0 to 2**64 - 1; got {round!r}")
    return hashlib.blake2b(consortium.id + struct.pack("<Q", round), key=tag_key, digest_size=64).digest()


@dataclass(frozen=True)
class SignedTag:
    """Party ``party``'s tag of its upload for ``round``, signed with its Ed25519 key."""

    consortium_id: bytes
    round: int
    party: int
    values: Tuple[int, ...]
    signature: bytes = field(repr=False)

    def _message(self) -> bytes:
        return (b"fhto.tag.v1" + self.consortium_id + struct.pack("<QHH", self.round, self.party, len(self.values))
                + struct.pack(f"<{len(self.values)}Q", *self.values))

    def to_bytes(self) -> bytes:
        return _frame(b"FHTOMPTG", self._message()[len(b"fhto.tag.v1"):] + self.signature)

    @classmethod
    def from_bytes(cls, data: Any) -> "SignedTag":
        r = _Reader(_unframe(b"FHTOMPTG", data, "a signed tag"), "a signed tag")
        cid = bytes(r.take(16))
        rnd, party, count = r.unpack("QHH")
        if count > 64:
            raise FormatError("a signed tag claims too many values")
        values = r.unpack(f"{count}Q") if count else ()
        signature = bytes(r.take(64))
        r.end()
        return cls(cid, rnd, party, tuple(values), signature)

    def verify(self, signing_key: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(signing_key).verify(self.signature, self._message())
        except (InvalidSignature, ValueError):
            return False
        return True


def _check_public_shares(consortium: Consortium, shares: Sequence[PublicShare]) -> Dict[int, PublicShare]:
    ring = consortium._ring()
    want = len(ring.key_moduli) * consortium.n
    out: Dict[int, PublicShare] = {}
    for s in shares:
        if not isinstance(s, PublicShare):
            raise InputTypeError(f"expected PublicShare objects; got {type(s).__name__}")
        if s.consortium_id != consortium.id:
            raise KeyMismatchError(f"the public share of party {s.party} belongs to another consortium")
        if s.party in out or not 1 <= s.party <= consortium.parties:
            raise KeyMismatchError(f"public shares: party {s.party} is repeated or out of range")
        if len(s.words) != want:
            raise FormatError(f"the public share of party {s.party} has {len(s.words)} words; expected {want}")
        _check_residues(s.words, ring.key_moduli, consortium.n, f"the public share of party {s.party}")
        out[s.party] = s
    if len(out) != consortium.parties:
        missing = sorted(set(range(1, consortium.parties + 1)) - set(out))
        raise KeyMismatchError(f"the collective key needs every party's public share; missing {missing}")
    return out


def combine_public_key(consortium: Consortium, public_shares: Sequence[PublicShare]) -> PublicContext:
    """The collective public context (sum of every party's p_i, a): what hospitals encrypt with
    and what the server sums under. Anyone can compute it from the published shares."""
    shares = _check_public_shares(consortium, public_shares)
    ring = consortium._ring()
    a = consortium.common_polynomial()
    ctx = _core.mp_collective_context(ring, a, [shares[i].words for i in sorted(shares)])
    return PublicContext(ctx)


# -- decryption shares -------------------------------------------------------------------------
def _lagrange(parties: Sequence[int], party: int, moduli: Sequence[int]) -> List[int]:
    out = []
    for q in moduli:
        num, den = 1, 1
        for m in parties:
            if m != party:
                num = num * m % q
                den = den * (m - party) % q
        out.append(num * pow(den, -1, q) % q)
    return out


_SHARE_HEAD = struct.Struct("<16s16s32sHBBQQH")


@dataclass(frozen=True)
class DecryptionShare:
    """Party ``party``'s share of the decryption of one sum, bound to that sum's SHA-256, to the
    consortium, to the key's fingerprint and to the set of parties that decrypt together."""

    consortium_id: bytes
    fingerprint: bytes
    batch_digest: bytes
    party: int
    parties: Tuple[int, ...]
    round_bits: int
    flood_bits: int
    value_count: int
    ciphertext_count: int
    payload: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        head = _SHARE_HEAD.pack(
            self.consortium_id, self.fingerprint, self.batch_digest, self.party, self.round_bits, self.flood_bits,
            self.value_count, self.ciphertext_count, len(self.parties),
        )
        return _frame(b"FHTOMPDS", head + struct.pack(f"<{len(self.parties)}H", *self.parties) + self.payload)

    @classmethod
    def from_bytes(cls, data: Any) -> "DecryptionShare":
        r = _Reader(_unframe(b"FHTOMPDS", data, "a decryption share"), "a decryption share")
        cid, fp, digest, party, k, w, values, cts, count = r.unpack(_SHARE_HEAD.format[1:])
        parties = r.unpack(f"{count}H") if count else ()
        payload = bytes(r.take(len(r.body) - r.at))
        if list(parties) != sorted(set(parties)) or party not in parties:
            raise FormatError("a decryption share's party set is not sorted, repeats a party, or omits its own party")
        return cls(cid, fp, digest, party, tuple(parties), k, w, values, cts, payload)

    @property
    def nbytes(self) -> int:
        return len(self.to_bytes())


class Party:
    """A hospital in its key-holder role: issues decryption shares under rules it enforces itself.

    Parameters
    ----------
    share:
        Its :class:`KeyShare` (with the Shamir share for t-of-n).
    public:
        The collective public context (its fingerprint binds every share).
    min_contributions:
        Shares are issued only for sums of at least this many contributions.
    ledger:
        Optional path of a JSON file recording the sums already shared and the budget spent, so the
        rules hold across restarts (written atomically after each share).
    seed:
        Studies and tests only: the flooding noise of its k-th share is derived from (seed, k)
        (and, within it, ciphertext j's from that and j).
    """

    def __init__(self, share: KeyShare, public: PublicContext, *, min_contributions: int = 2,
                 ledger: Optional[PathLike] = None, seed: Optional[int] = None, threads: Optional[int] = None) -> None:
        c = share.consortium
        if c.threshold < c.parties and not share.has_threshold_share:
            raise ParameterError("a t-of-n party needs its Shamir share first (KeyShare.receive)")
        if isinstance(min_contributions, bool) or not isinstance(min_contributions, int) or min_contributions < 1:
            raise ParameterError(f"min_contributions must be a positive int; got {min_contributions!r}")
        self.share, self.public, self.min_contributions = share, public, min_contributions
        self.seed, self.threads = as_seed(seed), as_threads(threads)
        self._ledger_path = None if ledger is None else Path(ledger)
        self.issued: Set[str] = set()
        self.spent = 0
        if self._ledger_path is not None and self._ledger_path.exists():
            state = json.loads(self._ledger_path.read_text())
            self.issued, self.spent = set(state["issued"]), int(state["spent_coefficients"])

    @property
    def party(self) -> int:
        return self.share.party

    def decryption_share(self, data: Any, parties: Sequence[int], *, round: Optional[int] = None,
                         tags: Optional[Sequence[Any]] = None) -> DecryptionShare:
        """This party's share of the decryption of the sum ``data`` by the set ``parties``.

        Rules (each refusal is a :class:`DecryptionRefusedError` and issues nothing):

        * ``data`` is a sum (mode ``sum``) of at least ``min_contributions`` and at most n contributions;
        * with tags (every key share that completed round 0 has the tag key): ``tags`` are the
          signed tags of ``round`` from as many distinct parties as the sum claims contributions,
          each signature valid, and the sum's own tag equals their sum. So the sum is exactly
          the sum of those hospitals' uploads: the server cannot add a ciphertext of its own or
          pass off one hospital's upload, whatever the header claims;
        * this party never shares the same sum twice (whatever the set), so no two shares of one
          sum can be combined to thin out its flooding noise;
        * ``parties`` is exactly t distinct parties (all n for N-of-N) and includes this one;
        * the key's decryption budget is not exhausted.

        Raises
        ------
        KeyMismatchError
            A sum under another key.
        FormatError
            Malformed or corrupted bytes.
        ParameterError
            A ``round`` that is not an int from 0 to 2**64 - 1.
        """
        c = self.share.consortium
        buf = as_buffer(data, "sum")
        header = _core.check_batch(self.public._core, buf)  # reads the header only: a sum is not copied
        if header["fingerprint"] != self.public._core.fingerprint:
            raise KeyMismatchError("this sum was made under another key")
        mode, contributions = header["mode"].name, header["contributions"]
        if mode != "sum" or not self.min_contributions <= contributions <= c.parties:
            raise DecryptionRefusedError(
                f"party {self.party} shares only sums of {self.min_contributions} to {c.parties} contributions; "
                f"got a {mode} batch of {contributions}"
            )
        group = _as_party_set(parties, c)
        if self.party not in group:
            raise DecryptionRefusedError(f"party {self.party} is not in the decrypting set {list(group)}")
        digest = hashlib.sha256(buf).digest()
        if digest.hex() in self.issued:
            raise DecryptionRefusedError(f"party {self.party} already issued a share for this sum (SHA-256 {digest.hex()[:16]}...)")
        coefficients = header["ciphertext_count"] * c.n
        if self.spent + coefficients > 2 ** c.budget_bits:
            raise DecryptionRefusedError(
                f"party {self.party}'s decryption budget (2^{c.budget_bits} coefficients) would be exceeded: "
                f"{self.spent} spent, {coefficients} asked; the consortium must generate a new key"
            )
        if self.share.tag_key is not None:
            self._check_tags(buf, contributions, round, tags)
        ring = c._ring()
        moduli = ring.data_moduli
        if c.threshold == c.parties:
            secret, lam = self.share._data_secret(), [1] * len(moduli)
        else:
            secret, lam = self.share._threshold_secret, _lagrange(group, self.party, moduli)
        # A seeded party (studies and tests) derives the noise of its k-th share from (seed, k):
        # reproducible, and never the same noise twice.
        seed = None if self.seed is None else int.from_bytes(_derived(b"fhto.flood.v1", self.seed, len(self.issued), 8), "little")
        payload = _core.mp_decryption_share(
            self.public._core, buf, secret, lam, c.flood_bits, c.round_bits, seed, self.threads
        )
        # Recorded before the share leaves this method: it is never issued unrecorded.
        self.issued.add(digest.hex())
        self.spent += coefficients
        self._save_ledger()
        return DecryptionShare(
            c.id, self.public._core.fingerprint, digest, self.party, group, c.round_bits, c.flood_bits,
            header["value_count"], header["ciphertext_count"], payload,
        )

    def _check_tags(self, data: Any, contributions: int, round: Optional[int], tags: Optional[Sequence[Any]]) -> None:
        c = self.share.consortium
        if round is None or not tags:
            raise DecryptionRefusedError(f"party {self.party} shares only sums that come with their contributions' signed tags")
        parsed = [t if isinstance(t, SignedTag) else SignedTag.from_bytes(t) for t in tags]
        width = TAG_REPETITIONS * len(c._ring().data_moduli)
        if any(len(t.values) != width for t in parsed):
            raise DecryptionRefusedError(f"a tag holds the wrong number of values (expected {width})")
        senders = [t.party for t in parsed]
        if len(set(senders)) != len(senders) or len(senders) != contributions:
            raise DecryptionRefusedError(
                f"the sum claims {contributions} contributions; its tags come from parties {sorted(senders)} "
                "(each hospital counts once)"
            )
        for t in parsed:
            if t.consortium_id != c.id or t.round != round:
                raise DecryptionRefusedError(f"the tag of party {t.party} is for another consortium or round")
            if t.party not in self.share.signers or not t.verify(self.share.signers[t.party]):
                raise DecryptionRefusedError(f"the tag of party {t.party} is not signed by it")
        moduli = self.public._core.coeff_modulus[: len(self.share.consortium._ring().data_moduli)]
        expected = [sum(t.values[j] for t in parsed) % moduli[j % len(moduli)] for j in range(len(parsed[0].values))]
        actual = list(_core.mp_tag(self.public._core, data, _round_key(c, self.share.tag_key, round), TAG_REPETITIONS, self.threads))
        if expected != actual:
            raise DecryptionRefusedError(
                f"the sum is not the sum of the uploads of parties {sorted(senders)} for round {round}: its tag does "
                "not match theirs (a ciphertext was added, left out or altered)"
            )

    def _save_ledger(self) -> None:
        if self._ledger_path is not None:
            state = {"issued": sorted(self.issued), "spent_coefficients": self.spent}
            write_atomic(self._ledger_path, json.dumps(state).encode())


def _as_party_set(parties: Sequence[int], consortium: Consortium) -> Tuple[int, ...]:
    try:
        group = tuple(sorted(int(p) for p in parties))
    except (TypeError, ValueError):
        raise InputTypeError("parties must be a sequence of party numbers") from None
    if len(set(group)) != len(group) or any(not 1 <= p <= consortium.parties for p in group):
        raise DecryptionRefusedError(f"the decrypting set {list(group)} repeats a party or names one outside 1..{consortium.parties}")
    if len(group) != consortium.threshold:
        raise DecryptionRefusedError(
            f"the decrypting set must hold exactly {consortium.threshold} parties; got {len(group)}"
        )
    return group


def combine(consortium: Consortium, public: PublicContext, data: Any, shares: Sequence[Any], *, threads: Optional[int] = None) -> np.ndarray:
    """Combine t decryption shares of the sum ``data`` and decode it.

    Checks that every share is for this consortium, key and sum (its SHA-256), that they name the
    same decrypting set and that exactly its members sent one each. The result is checked against
    the range the uploads were checked for (``max_abs_value(P) * P`` plus the error bound): a sum
    under a foreign key, or shares that do not belong together, decode to noise far outside it.

    Raises
    ------
    KeyMismatchError
        A share for another consortium, key or sum, or shares of different decrypting sets.
    DecryptionRefusedError
        Missing or repeated parties.
    ValueRangeError
        The result lies outside the stated range: the sum or the shares are not what they claim.
    """
    buf = as_buffer(data, "sum")
    digest = hashlib.sha256(buf).digest()
    header = _core.check_batch(public._core, buf)
    parsed = [s if isinstance(s, DecryptionShare) else DecryptionShare.from_bytes(s) for s in shares]
    if not parsed:
        raise DecryptionRefusedError("no decryption shares to combine")
    group = parsed[0].parties
    for s in parsed:
        if s.consortium_id != consortium.id:
            raise KeyMismatchError(f"the share of party {s.party} belongs to another consortium")
        if s.fingerprint != public._core.fingerprint:
            raise KeyMismatchError(f"the share of party {s.party} was made under another key")
        if s.batch_digest != digest:
            raise KeyMismatchError(f"the share of party {s.party} is for another ciphertext")
        if s.parties != group:
            raise KeyMismatchError("the shares name different decrypting sets")
        if (s.round_bits, s.flood_bits) != (consortium.round_bits, consortium.flood_bits):
            raise KeyMismatchError(f"the share of party {s.party} was made with other noise settings")
    senders = sorted(s.party for s in parsed)
    if senders != list(group) or len(group) != consortium.threshold:
        raise DecryptionRefusedError(f"the decrypting set is {list(group)}; shares came from {senders}")
    values = _core.mp_combine(public._core, buf, [s.payload for s in parsed], consortium.round_bits, as_threads(threads))
    p = header["contributions"]
    limit = public.max_abs_value(max(p, 1), "public_key") * p + consortium.error_bound(p, public=public)
    worst = float(np.max(np.abs(values))) if values.size else 0.0
    if not worst <= limit:
        raise ValueRangeError(
            f"the combined sum is implausible: a value of magnitude {worst:.3g} exceeds the range {limit:.3g} of a sum of "
            f"{p} contributions (a ciphertext under a foreign key, or shares that do not belong to it)"
        )
    return values
