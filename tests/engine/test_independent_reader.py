"""An independent reader of the engine's formats, written from docs/FORMATS.md alone.

Nothing here parses bytes with the engine: CRC-32C, SEAL's serialization, the key-set and batch
layouts, bit-unpacking, Blake2xb seed expansion with SEAL's rejection sampling, SEAL's inverse
negacyclic NTT and CKKS decoding are re-implemented below in Python and numpy. The engine only
makes the inputs through its public API (key generation, encryption, the accumulator) and
decrypts them for comparison. If the engine and this reader ever disagree, one of them has left
the specification.

The multiparty objects (section 9) are read the same way: the consortium, public and secret key
shares, channel message headers, signed tags (their Ed25519 signatures checked with the
`cryptography` package, the only outside code used) and decryption shares, which the reader
combines itself into the decrypted sum.
"""
from __future__ import annotations

import functools
import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import multiparty as mp
from fhto_native.fl.threshold import KeyGeneration, key_generation

# -- CRC-32C ---------------------------------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of ``data`` continuing from ``crc``: reflected polynomial 0x82F63B78, register
    set to ``crc ^ 0xFFFFFFFF``, result xored with 0xFFFFFFFF (0 starts a fresh CRC)."""
    table = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def checksum_with_field_zeroed(data: bytes) -> int:
    """CRC-32C of ``data`` with its bytes 12..15 (the checksum field) taken as zero."""
    return crc32c(data[16:], crc32c(bytes(data[:12]) + b"\0\0\0\0"))


# -- SEAL 4.1 serialization ------------------------------------------------------------------

SEAL_MAGIC = 0xA15E
SEAL_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compression, reserved, size
CKKS = 2
PRNG_BLAKE2XB = 1


class Cursor:
    """Reads little-endian fields in order; reading past the end is a ValueError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise ValueError(f"{self.what} is truncated at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u8(self) -> int:
        return self.unpack("B")[0]

    def u64(self) -> int:
        return self.unpack("Q")[0]

    def seal_header(self) -> int:
        """Reads a SEAL header and returns where its object ends."""
        start = self.pos
        magic, header_size, major, minor, compression, reserved, size = SEAL_HEADER.unpack(self.take(16))
        if magic != SEAL_MAGIC or header_size != 16:
            raise ValueError(f"{self.what}: no SEAL header at offset {start}")
        if (major, minor) != (4, 1) or compression != 0 or reserved != 0:
            raise ValueError(f"{self.what}: SEAL {major}.{minor}, compression {compression}; expected 4.1, none")
        if size < 16 or start + size > len(self.data):
            raise ValueError(f"{self.what}: SEAL object of {size} bytes at offset {start} does not fit")
        return start + size

    def end_of(self, end: int) -> None:
        if self.pos != end:
            raise ValueError(f"{self.what}: object ends at {self.pos}, its SEAL header says {end}")

    def words(self) -> np.ndarray:
        """A SEAL DynArray of 64-bit words: its own SEAL header, a count, the words."""
        end = self.seal_header()
        count = self.u64()
        words = np.frombuffer(self.take(8 * count), dtype="<u8").astype(np.uint64)
        self.end_of(end)
        return words


@dataclass(frozen=True)
class SealParameters:
    scheme: int
    n: int
    moduli: tuple[int, ...]
    plain_modulus: int

    @property
    def data_moduli(self) -> tuple[int, ...]:
        """The primes data live modulo: all but the last (special) one, or the only one."""
        return self.moduli if len(self.moduli) == 1 else self.moduli[:-1]

    def parms_id(self, moduli: Optional[tuple[int, ...]] = None) -> bytes:
        """SEAL's parms_id: BLAKE2b-256 of le64 words (scheme, N, every prime, plain modulus)."""
        words = [self.scheme, self.n, *(self.moduli if moduli is None else moduli), self.plain_modulus]
        return hashlib.blake2b(struct.pack(f"<{len(words)}Q", *words), digest_size=32).digest()


def parse_seal_parameters(blob: bytes) -> SealParameters:
    r = Cursor(blob, "SEAL parameters")
    end = r.seal_header()
    scheme, n, count = r.unpack("BQQ")

    def modulus() -> int:
        m_end = r.seal_header()
        value = r.u64()
        r.end_of(m_end)
        return value

    moduli = tuple(modulus() for _ in range(count))
    plain = modulus()
    r.end_of(end)
    r.end_of(len(blob))
    return SealParameters(scheme, n, moduli, plain)


@dataclass(frozen=True)
class SealCiphertext:
    parms_id: bytes
    ntt_form: bool
    size: int
    n: int
    limbs: int
    scale: float
    correction_factor: int
    polys: np.ndarray  # uint64, (stored polynomials, limbs, n): both, or c0 alone when seeded
    seed: Optional[bytes]  # the 64-byte Blake2xb seed c1 is expanded from, in the seeded form


def parse_seal_ciphertext(blob: bytes) -> SealCiphertext:
    r = Cursor(blob, "SEAL ciphertext")
    end = r.seal_header()
    parms_id = r.take(32)
    ntt, size, n, limbs, scale, correction = r.unpack("BQQQdQ")
    words = r.words()
    seed = None
    if words.size == size * n * limbs:
        stored = size
    elif size == 2 and words.size == n * limbs:
        stored = 1
        record_end = r.seal_header()
        if r.u8() != PRNG_BLAKE2XB:
            raise ValueError("seeded ciphertext names another PRNG than Blake2xb")
        seed = r.take(64)
        r.end_of(record_end)
    else:
        raise ValueError(f"ciphertext holds {words.size} words for size {size}, N={n}, {limbs} limbs")
    r.end_of(end)
    r.end_of(len(blob))
    return SealCiphertext(
        parms_id, ntt == 1, size, n, limbs, scale, correction, words.reshape(stored, limbs, n), seed
    )


def parse_seal_plaintext(blob: bytes) -> tuple[bytes, int, float, np.ndarray]:
    """parms_id, coefficient count, scale and words of a SEAL plaintext (a secret key is one)."""
    r = Cursor(blob, "SEAL plaintext")
    end = r.seal_header()
    parms_id = r.take(32)
    coeff_count, scale = r.unpack("Qd")
    words = r.words()
    r.end_of(end)
    r.end_of(len(blob))
    if words.size != coeff_count:
        raise ValueError(f"plaintext declares {coeff_count} coefficients but holds {words.size}")
    return parms_id, coeff_count, scale, words


# -- key sets and public contexts ------------------------------------------------------------

KEY_HEADER = struct.Struct("<8sHHI16sI4s")  # magic, version, reserved, checksum, fingerprint, scale bits, flags


@dataclass(frozen=True)
class KeyFile:
    has_secret: bool
    fingerprint: bytes
    scale_bits: int
    packed: bool
    parameters: SealParameters
    sections: tuple[bytes, ...]  # SEAL's serializations: parameters, public key[, secret key]
    public_key: SealCiphertext
    secret_key: Optional[np.ndarray]  # uint64, (all primes, N), NTT form

    @property
    def scale(self) -> float:
        return 2.0**self.scale_bits


def fingerprint(key_parms_id: bytes, scale_bits: int, public_key_words: np.ndarray) -> bytes:
    """First 16 bytes of BLAKE2b-256 over le64 words: parms_id (4), scale bits (1), public key (2NK)."""
    message = key_parms_id + struct.pack("<Q", scale_bits) + public_key_words.astype("<u8").tobytes()
    return hashlib.blake2b(message, digest_size=32).digest()[:16]


def read_key_file(data: bytes) -> KeyFile:
    if len(data) < KEY_HEADER.size:
        raise ValueError("key file is shorter than its 40-byte header")
    magic, version, reserved, checksum, stored_fp, scale_bits, flags = KEY_HEADER.unpack_from(data)
    if magic not in (b"FHTOKEYS", b"FHTOPCTX"):
        raise ValueError("not a key set or public context: bad magic")
    if version != 1 or reserved != 0:
        raise ValueError(f"key file version {version}, reserved {reserved}")
    if checksum_with_field_zeroed(data) != checksum:
        raise ValueError("key file checksum mismatch")
    if flags[0] > 1 or flags[1:] != b"\0\0\0":
        raise ValueError("key file holds unknown flags")
    has_secret = magic == b"FHTOKEYS"
    r = Cursor(data, "key file")
    r.take(KEY_HEADER.size)
    sections = tuple(r.take(r.u64()) for _ in range(3 if has_secret else 2))
    if r.pos != len(data):
        raise ValueError("key file has trailing bytes")
    parameters = parse_seal_parameters(sections[0])
    if parameters.scheme != CKKS or parameters.plain_modulus != 0:
        raise ValueError("key file holds parameters of another scheme than CKKS")
    key_parms_id = parameters.parms_id()
    public_key = parse_seal_ciphertext(sections[1])
    k = len(parameters.moduli)
    if (
        public_key.parms_id != key_parms_id or public_key.size != 2 or not public_key.ntt_form
        or (public_key.n, public_key.limbs) != (parameters.n, k) or public_key.seed is not None
    ):
        raise ValueError("the public key does not belong to the parameters")
    if fingerprint(key_parms_id, scale_bits, public_key.polys) != stored_fp:
        raise ValueError("key file fingerprint does not match its keys")
    secret_key = None
    if has_secret:
        sk_parms_id, count, _, words = parse_seal_plaintext(sections[2])
        if sk_parms_id != key_parms_id or count != k * parameters.n:
            raise ValueError("the secret key does not belong to the parameters")
        secret_key = words.reshape(k, parameters.n)
    return KeyFile(has_secret, stored_fp, scale_bits, flags[0] == 1, parameters, sections, public_key, secret_key)


# -- batches ---------------------------------------------------------------------------------

BATCH_HEADER = struct.Struct("<8sHBBI16sQQQII16s")
SYMMETRIC, PUBLIC_KEY, SUM = 1, 2, 3
WORDS_OFFSET = 16 + 73 + 16 + 8  # SEAL header, ciphertext metadata, DynArray header, word count


@dataclass(frozen=True)
class Batch:
    mode: int
    packed: bool
    checksum: int
    fingerprint: bytes
    value_count: int
    ciphertext_count: int
    ciphertext_bytes: int
    contributions: int
    party_budget: int
    batch_id: bytes
    ciphertexts: tuple[bytes, ...]


def ciphertext_check(header_checksum: int, k: int, ciphertext: bytes) -> int:
    """CRC-32C of ciphertext k, started from CRC-32C(le64(k)) started from the header checksum."""
    return crc32c(ciphertext, crc32c(struct.pack("<Q", k), header_checksum))


def read_batch(data: bytes) -> Batch:
    if len(data) < BATCH_HEADER.size:
        raise ValueError("batch is shorter than its 80-byte header")
    magic, version, mode, packing, checksum, fp, values, count, size, contributions, budget, batch_id = (
        BATCH_HEADER.unpack_from(data)
    )
    if magic != b"FHTOCKKS" or version != 2:
        raise ValueError("not a version-2 batch")
    if checksum_with_field_zeroed(data[: BATCH_HEADER.size]) != checksum:
        raise ValueError("batch header checksum mismatch")
    if mode not in (SYMMETRIC, PUBLIC_KEY, SUM) or packing not in (0, 1):
        raise ValueError(f"batch header names mode {mode}, packing {packing}")
    if not (values and count and size and 1 <= contributions <= budget):
        raise ValueError("batch header declares impossible counts")
    if len(data) != BATCH_HEADER.size + count * (4 + size):
        raise ValueError("batch length does not match its header")
    table = BATCH_HEADER.size
    first = table + 4 * count
    ciphertexts = tuple(data[first + k * size : first + (k + 1) * size] for k in range(count))
    for k, ct in enumerate(ciphertexts):
        stored = struct.unpack_from("<I", data, table + 4 * k)[0]
        if ciphertext_check(checksum, k, ct) != stored:
            raise ValueError(f"ciphertext {k} check mismatch")
    return Batch(mode, packing == 1, checksum, fp, values, count, size, contributions, budget, batch_id, ciphertexts)


def with_checks(data: bytes | bytearray) -> bytes:
    """The batch with every ciphertext check recomputed (the header is left as it is)."""
    buf = bytearray(data)
    checksum, count, size = struct.unpack_from("<I", buf, 12)[0], *struct.unpack_from("<QQ", buf, 40)
    first = BATCH_HEADER.size + 4 * count
    for k in range(count):
        ct = bytes(buf[first + k * size : first + (k + 1) * size])
        struct.pack_into("<I", buf, BATCH_HEADER.size + 4 * k, ciphertext_check(checksum, k, ct))
    return bytes(buf)


def packed_limb_bytes(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


def unpack_ciphertext(packed: bytes, n: int, moduli: tuple[int, ...]) -> bytes:
    """SEAL's serialization from the bit-packed form: the first 113 bytes and everything after
    the packed words verbatim; limb by limb, N coefficients of b bits each, LSB first."""
    count = struct.unpack_from("<Q", packed, WORDS_OFFSET - 8)[0]
    polys, rest = divmod(count, n * len(moduli))
    if rest or polys not in (1, 2):
        raise ValueError(f"packed ciphertext declares {count} words")
    out = bytearray(packed[:WORDS_OFFSET])
    pos = WORDS_OFFSET
    for _ in range(polys):
        for q in moduli:
            b = q.bit_length()
            chunk = np.frombuffer(packed, np.uint8, packed_limb_bytes(n, b), pos)
            bits = np.unpackbits(chunk, bitorder="little")[: n * b].reshape(n, b)
            wide = np.zeros((n, 64), np.uint8)
            wide[:, :b] = bits
            out += np.packbits(wide, axis=1, bitorder="little").tobytes()
            pos += chunk.size
    return bytes(out + packed[pos:])


def seal_ciphertext_bytes(n: int, limbs: int, seeded: bool) -> int:
    """Size of SEAL's uncompressed serialization of a size-2 ciphertext."""
    return WORDS_OFFSET + 8 * n * limbs * (1 if seeded else 2) + (16 + 1 + 64 if seeded else 0)


# -- Blake2xb, as SEAL's Blake2xbPRNG uses it ------------------------------------------------

MASK64 = (1 << 64) - 1
_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)
_SIGMA = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), (14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3),
    (11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4), (7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8),
    (9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13), (2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9),
    (12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11), (13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10),
    (6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5), (10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0),
)
XOF_BLOCK = 4096  # bytes per refill of SEAL's PRNG buffer


def _rotr(x: np.ndarray, n: int) -> np.ndarray:
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


def blake2b_single_block(messages: np.ndarray, params: np.ndarray) -> np.ndarray:
    """BLAKE2b (RFC 7693) of one unkeyed 64-byte message per lane, digest 64 bytes.

    messages: (lanes, 8) uint64 words; params: (lanes, 3) uint64, the first three words of each
    lane's parameter block (the other five, salt and personalization, are zero). hashlib's blake2b
    cannot take a tree depth of 0, which Blake2xb's output nodes need, hence this.
    """
    lanes = messages.shape[0]
    h = [np.full(lanes, iv, np.uint64) for iv in _IV]
    for i in range(3):
        h[i] = h[i] ^ params[:, i]
    m = [messages[:, i].copy() for i in range(8)] + [np.zeros(lanes, np.uint64)] * 8
    v = h + [np.full(lanes, iv, np.uint64) for iv in _IV]
    v[12] = v[12] ^ np.uint64(64)  # bytes compressed so far
    v[14] = ~v[14]  # last block
    for r in range(12):
        s = _SIGMA[r % 10]
        for i, (a, b, c, d) in enumerate(
            ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
             (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))
        ):
            v[a] = v[a] + v[b] + m[s[2 * i]]
            v[d] = _rotr(v[d] ^ v[a], 32)
            v[c] = v[c] + v[d]
            v[b] = _rotr(v[b] ^ v[c], 24)
            v[a] = v[a] + v[b] + m[s[2 * i + 1]]
            v[d] = _rotr(v[d] ^ v[a], 16)
            v[c] = v[c] + v[d]
            v[b] = _rotr(v[b] ^ v[c], 63)
    return np.stack([h[i] ^ v[i] ^ v[i + 8] for i in range(8)], axis=1)


def blake2xb_blocks(seed: bytes, first: int, count: int) -> np.ndarray:
    """Refills first … first + count - 1 of SEAL's Blake2xbPRNG as 512 words each, computed
    together: Blake2xb, 4096 bytes, key = seed, input = le64(counter)."""
    roots = b"".join(
        hashlib.blake2b(
            struct.pack("<Q", counter), key=seed, digest_size=64, fanout=1, depth=1, node_offset=XOF_BLOCK << 32
        ).digest()
        for counter in range(first, first + count)
    )
    leaves = XOF_BLOCK // 64
    messages = np.repeat(np.frombuffer(roots, "<u8").astype(np.uint64).reshape(count, 8), leaves, axis=0)
    params = np.empty((leaves, 3), np.uint64)
    params[:, 0] = 64 | (64 << 32)  # digest 64, no key, fanout 0, depth 0, leaf length 64
    params[:, 1] = (XOF_BLOCK << 32) | np.arange(leaves, dtype=np.uint64)  # node offset i, XOF length
    params[:, 2] = 64 << 8  # node depth 0, inner length 64
    return blake2b_single_block(messages, np.tile(params, (count, 1))).reshape(-1)


def blake2xb_block(seed: bytes, counter: int) -> bytes:
    """Refill `counter` of SEAL's Blake2xbPRNG: Blake2xb, 4096 bytes, key = seed, input = le64(counter)."""
    return blake2xb_blocks(seed, counter, 1).astype("<u8").tobytes()


class Blake2xbStream:
    """The byte stream of SEAL's Blake2xbPRNG for a 64-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 64:
            raise ValueError("a Blake2xb seed is 64 bytes")
        self.seed = seed
        self.counter = 0
        self.buffer = b""

    def read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += blake2xb_block(self.seed, self.counter)
            self.counter += 1
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out


def expand_uniform(seed: bytes, n: int, moduli: tuple[int, ...]) -> np.ndarray:
    """c1 of a seeded ciphertext: SEAL's sample_poly_uniform on the stream of ``seed``.

    N*L words are read up front; limb by limb, a word at or above max_multiple is replaced by the
    next word of the stream (again until one is below), then every word is reduced modulo its prime.
    """
    stream = Blake2xbStream(seed)
    words = np.frombuffer(stream.read(8 * n * len(moduli)), "<u8").reshape(len(moduli), n).astype(np.uint64)
    for j, q in enumerate(moduli):
        max_multiple = MASK64 - MASK64 % q - 1
        for i in np.flatnonzero(words[j] >= np.uint64(max_multiple)):
            word = max_multiple
            while word >= max_multiple:
                word = struct.unpack("<Q", stream.read(8))[0]
            words[j, i] = word
        words[j] %= np.uint64(q)
    return words


# -- SEAL's inverse negacyclic NTT and CKKS decoding -----------------------------------------


def bit_reverse(x: int, bits: int) -> int:
    return int(format(x, f"0{bits}b")[::-1], 2)


def minimal_primitive_root(degree: int, q: int) -> int:
    """The smallest primitive degree-th root of unity modulo the prime q (degree a power of two)."""
    for x in range(2, q):
        g = pow(x, (q - 1) // degree, q)
        if pow(g, degree // 2, q) == q - 1:
            break
    g2 = g * g % q
    best, current = g, g
    for _ in range(degree // 2):  # every odd power of g is a primitive root as well
        best = min(best, current)
        current = current * g2 % q
    return best


@functools.lru_cache(maxsize=None)
def inverse_ntt_table(n: int, q: int) -> tuple[np.ndarray, int]:
    """SEAL's inv_root_powers (psi^-i at bit_reverse(i - 1) + 1) and n^-1 mod q."""
    logn = n.bit_length() - 1
    inv_root = pow(minimal_primitive_root(2 * n, q), -1, q)
    table = [1] * n
    power = inv_root
    for i in range(1, n):
        table[bit_reverse(i - 1, logn) + 1] = power
        power = power * inv_root % q
    return np.array(table, dtype=object), pow(n, -1, q)


def inverse_ntt(values: np.ndarray, q: int) -> np.ndarray:
    """SEAL's inverse_ntt_negacyclic_harvey (Gentleman-Sande butterflies, inputs in SEAL's NTT
    order, outputs in coefficient order), exact, on Python integers."""
    n = values.size
    table, n_inv = inverse_ntt_table(n, q)
    a = np.array([int(v) for v in values], dtype=object)
    gap, m, root = 1, n // 2, 0
    while m >= 1:
        roots = table[root + 1 : root + 1 + m].reshape(m, 1)
        root += m
        blocks = a.reshape(m, 2, gap)
        x, y = blocks[:, 0, :], blocks[:, 1, :]
        if m > 1:
            x, y = (x + y) % q, (x - y) * roots % q
        else:  # the last stage also multiplies by n^-1
            x, y = (x + y) * n_inv % q, (x - y) * roots * n_inv % q
        a = np.stack([x, y], axis=1).reshape(n)
        gap, m = gap * 2, m // 2
    return a


def ckks_decode(coefficients: np.ndarray) -> np.ndarray:
    """The N real values of a plaintext: slot j = m(zeta^(3^j mod 2N)), zeta = exp(i*pi/N), values
    2j and 2j+1 its real and imaginary parts (coefficients already divided by the scale)."""
    n = coefficients.size
    zeta = np.exp(1j * np.pi * np.arange(n) / n)
    at_odd_powers = n * np.fft.ifft(coefficients * zeta)  # [t] = m(zeta^(2t + 1))
    exponents = np.empty(n // 2, np.int64)
    e = 1
    for j in range(n // 2):
        exponents[j] = e
        e = e * 3 % (2 * n)
    slots = at_odd_powers[(exponents - 1) // 2]
    out = np.empty(n)
    out[0::2], out[1::2] = slots.real, slots.imag
    return out


def decrypt_ciphertext(ct: SealCiphertext, c1: np.ndarray, keys: KeyFile) -> np.ndarray:
    """c0 + c1*s per prime in NTT form, inverse NTT, CRT, centering, scaling, decoding."""
    moduli = keys.parameters.data_moduli
    residues = []
    for j, q in enumerate(moduli):
        c0 = np.array([int(v) for v in ct.polys[0, j]], dtype=object)
        c1j = np.array([int(v) for v in c1[j]], dtype=object)
        s = np.array([int(v) for v in keys.secret_key[j]], dtype=object)
        residues.append(inverse_ntt((c0 + c1j * s) % q, q))
    return decode_residues(residues, moduli, ct.scale)


def crt_compose(residues: list[np.ndarray], moduli: tuple[int, ...]) -> np.ndarray:
    """The integers in [0, Q) with the given residues modulo each prime (Python ints)."""
    big_q = math.prod(moduli)
    composed = np.zeros(len(residues[0]), dtype=object)
    for q, r in zip(moduli, residues):
        rest = big_q // q
        composed = (composed + np.asarray(r, dtype=object) * (rest * pow(rest, -1, q) % big_q)) % big_q
    return composed


def decode_residues(residues: list[np.ndarray], moduli: tuple[int, ...], scale: float) -> np.ndarray:
    """A plaintext's values from its coefficients modulo each prime: CRT, centering, scaling, decoding."""
    big_q = math.prod(moduli)
    centered = [int(x) - big_q if x >= (big_q + 1) // 2 else int(x) for x in crt_compose(residues, moduli)]
    return ckks_decode(np.array([float(x) for x in centered]) / scale)


def read_ciphertexts(data: bytes, keys: KeyFile) -> tuple[Batch, list[tuple[SealCiphertext, np.ndarray]]]:
    """A batch and each of its ciphertexts with its c1 (expanded from the seed when seeded),
    checked against the key file's parameters."""
    batch = read_batch(data)
    if batch.fingerprint != keys.fingerprint:
        raise ValueError("batch was made under another key set")
    n, moduli = keys.parameters.n, keys.parameters.data_moduli
    if batch.ciphertext_count != -(-batch.value_count // n):
        raise ValueError("ciphertext count does not match the value count")
    out = []
    for raw in batch.ciphertexts:
        seal = unpack_ciphertext(raw, n, moduli) if batch.packed else raw
        ct = parse_seal_ciphertext(seal)
        if (
            ct.parms_id != keys.parameters.parms_id(moduli) or not ct.ntt_form or ct.size != 2
            or ct.scale != keys.scale or ct.correction_factor != 1 or (ct.n, ct.limbs) != (n, len(moduli))
            or (ct.seed is not None) != (batch.mode == SYMMETRIC)
        ):
            raise ValueError("ciphertext does not have the level, form or scale of the key set")
        if any((ct.polys[:, j] >= np.uint64(q)).any() for j, q in enumerate(moduli)):
            raise ValueError("ciphertext holds a coefficient at or above its prime")
        out.append((ct, expand_uniform(ct.seed, n, moduli) if ct.seed is not None else ct.polys[1]))
    return batch, out


def decrypt_batch(data: bytes, keys: KeyFile) -> np.ndarray:
    """Every value of a batch, read and decrypted from its bytes alone."""
    batch, ciphertexts = read_ciphertexts(data, keys)
    values = [decrypt_ciphertext(ct, c1, keys) for ct, c1 in ciphertexts]
    return np.concatenate(values)[: batch.value_count]


# -- multiparty formats (section 9) ----------------------------------------------------------

MP_FRAME = struct.Struct("<8sHHI")  # magic, version, reserved, CRC-32C of the whole object
WORDS_PER_BLOCK = XOF_BLOCK // 8
TAG_MESSAGE_PREFIX = b"fhto.tag.v1"


def read_frame(data: bytes, magic: bytes) -> bytes:
    """The body of a multiparty object, after checking its 16-byte frame."""
    if len(data) < MP_FRAME.size:
        raise ValueError("multiparty object is shorter than its 16-byte frame")
    got, version, reserved, checksum = MP_FRAME.unpack_from(data)
    if got != magic:
        raise ValueError(f"expected magic {magic!r}; got {got!r}")
    if version != 1 or reserved != 0:
        raise ValueError(f"{magic.decode()} version {version}, reserved {reserved}")
    if checksum_with_field_zeroed(data) != checksum:
        raise ValueError(f"{magic.decode()} checksum mismatch")
    return data[MP_FRAME.size :]


def reframe(magic: bytes, body: bytes) -> bytes:
    """A frame around ``body`` with a correct checksum (to alter a body past its checksum)."""
    head = MP_FRAME.pack(magic, 1, 0, 0)
    return MP_FRAME.pack(magic, 1, 0, crc32c(body, crc32c(head))) + body


def data_limbs(prime_count: int) -> int:
    return prime_count if prime_count == 1 else prime_count - 1


@dataclass(frozen=True)
class ConsortiumRecord:
    n: int
    prime_bits: tuple[int, ...]
    scale_bits: int
    packed: bool
    parties: int
    threshold: int
    budget_bits: int
    security_bits: int
    seed: bytes
    id: bytes  # the first 16 bytes of SHA-256 of the whole object

    @property
    def flood_bits(self) -> int:
        """w, in binary64 arithmetic as the specification writes it."""
        noise2 = 2.0 * 2.0**self.budget_bits * self.parties * ((1.0 + self.n * self.parties) / 12.0 + 1.0)
        sigma = math.sqrt(1.04 * noise2) * 2.0 ** (self.security_bits - 1)
        return math.ceil(math.log2(math.sqrt(3.0) * sigma))

    @property
    def round_bits(self) -> int:
        return max(0, self.flood_bits - 8)


def read_consortium(data: bytes) -> ConsortiumRecord:
    r = Cursor(read_frame(data, b"FHTOCONS"), "consortium")
    n, count = r.unpack("IB")
    bits = tuple(r.take(count))
    scale_bits, packed, parties, threshold, budget, security = r.unpack("HBHHBB")
    seed = r.take(64)
    r.end_of(len(r.data))
    if packed > 1 or not 2 <= parties <= 1000 or not 1 <= threshold <= parties:
        raise ValueError("consortium holds a field out of range")
    consortium_id = hashlib.sha256(data).digest()[:16]
    return ConsortiumRecord(n, bits, scale_bits, packed == 1, parties, threshold, budget, security, seed, consortium_id)


@dataclass(frozen=True)
class PublicShareRecord:
    consortium_id: bytes
    party: int
    exchange_key: bytes  # X25519
    signing_key: bytes  # Ed25519
    words: np.ndarray  # uint64, K*N: p_i at key level, NTT form


def read_public_share(data: bytes) -> PublicShareRecord:
    r = Cursor(read_frame(data, b"FHTOMPPS"), "public share")
    cid = r.take(16)
    (party,) = r.unpack("H")
    exchange, signing = r.take(32), r.take(32)
    words = np.frombuffer(r.take(8 * r.u64()), "<u8").astype(np.uint64)
    r.end_of(len(r.data))
    return PublicShareRecord(cid, party, exchange, signing, words)


@dataclass(frozen=True)
class KeyShareRecord:
    consortium: ConsortiumRecord
    consortium_bytes: bytes
    party: int
    exchange_private: bytes
    signing_private: bytes
    shamir_seed: bytes
    tag_key: Optional[bytes]
    signers: dict[int, bytes]
    secret: np.ndarray  # uint64, (K, N): s_i, NTT form
    public: np.ndarray  # uint64, (K, N): p_i
    threshold_secret: Optional[np.ndarray]  # uint64, (L, N): s'_i for t-of-n, NTT form


def read_key_share(data: bytes) -> KeyShareRecord:
    r = Cursor(read_frame(data, b"FHTOMPSK"), "key share")
    consortium_bytes = r.take(r.u64())
    consortium = read_consortium(consortium_bytes)
    (party,) = r.unpack("H")
    exchange, signing, shamir_seed = r.take(32), r.take(32), r.take(64)
    flag = r.u8()
    if flag > 1:
        raise ValueError("key share holds an invalid tag-key flag")
    tag_key = r.take(32) if flag else None
    signers = {}
    for _ in range(r.unpack("H")[0]):
        (p,) = r.unpack("H")
        signers[p] = r.take(32)
    n, k = consortium.n, len(consortium.prime_bits)
    limbs = data_limbs(k)
    polys = []
    for allowed in ((k * n,), (k * n,), (0, limbs * n)):
        count = r.u64()
        if count not in allowed:
            raise ValueError(f"key share holds a polynomial of {count} words")
        polys.append(np.frombuffer(r.take(8 * count), "<u8").astype(np.uint64).reshape(-1, n) if count else None)
    r.end_of(len(r.data))
    return KeyShareRecord(
        consortium, consortium_bytes, party, exchange, signing, shamir_seed, tag_key, signers, *polys
    )


@dataclass(frozen=True)
class ChannelMessageRecord:
    consortium_id: bytes
    purpose: int  # 1 a Shamir piece, 2 the tag key
    sender: int
    recipient: int
    nonce: bytes
    ciphertext: bytes  # ChaCha20-Poly1305: the plaintext's length, then a 16-byte tag
    associated_data: bytes  # the header: consortium id to nonce


def read_channel_message(data: bytes) -> ChannelMessageRecord:
    body = read_frame(data, b"FHTOMPCM")
    r = Cursor(body, "channel message")
    cid = r.take(16)
    purpose, sender, recipient = r.unpack("BHH")
    nonce = r.take(12)
    return ChannelMessageRecord(cid, purpose, sender, recipient, nonce, body[r.pos :], body[: r.pos])


@dataclass(frozen=True)
class SignedTagRecord:
    consortium_id: bytes
    round: int
    party: int
    values: tuple[int, ...]  # value r*L + l: repetition r modulo q_l
    signature: bytes
    message: bytes  # what the signature covers


def read_signed_tag(data: bytes) -> SignedTagRecord:
    body = read_frame(data, b"FHTOMPTG")
    r = Cursor(body, "signed tag")
    cid = r.take(16)
    rnd, party, count = r.unpack("QHH")
    if count > 64:
        raise ValueError("signed tag claims too many values")
    values = r.unpack(f"{count}Q")
    signed_end = r.pos
    signature = r.take(64)
    r.end_of(len(body))
    return SignedTagRecord(cid, rnd, party, values, signature, TAG_MESSAGE_PREFIX + body[:signed_end])


def signature_is_valid(tag: SignedTagRecord, signing_key: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(signing_key).verify(tag.signature, tag.message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class DecryptionShareRecord:
    consortium_id: bytes
    fingerprint: bytes
    batch_digest: bytes
    party: int
    round_bits: int
    flood_bits: int
    value_count: int
    ciphertext_count: int
    parties: tuple[int, ...]
    payload: bytes


SHARE_HEADER = struct.Struct("<16s16s32sHBBQQH")


def read_decryption_share(data: bytes) -> DecryptionShareRecord:
    body = read_frame(data, b"FHTOMPDS")
    r = Cursor(body, "decryption share")
    cid, fp, digest, party, k, w, values, count, size = r.unpack(SHARE_HEADER.format[1:])
    parties = r.unpack(f"{size}H")
    if list(parties) != sorted(set(parties)) or party not in parties:
        raise ValueError("decryption share names an unsorted or repeating set, or one without its party")
    return DecryptionShareRecord(cid, fp, digest, party, k, w, values, count, parties, body[r.pos :])


def share_word_bits(big_q: int, round_bits: int) -> int:
    """beta: the bit length of floor((Q - 1 + 2^(k-1)) / 2^k), at least 1."""
    half = 1 << (round_bits - 1) if round_bits else 0
    return max(1, ((big_q - 1 + half) >> round_bits).bit_length())


def unpack_share(payload: bytes, n: int, bits: int, ciphertexts: int) -> np.ndarray:
    """(C, N) uint64: each ciphertext's N coefficients of ``bits`` bits, least significant bit first."""
    per_ciphertext = packed_limb_bytes(n, bits)
    if len(payload) != ciphertexts * per_ciphertext:
        raise ValueError(f"share payload of {len(payload)} bytes; expected {ciphertexts * per_ciphertext}")
    chunks = np.frombuffer(payload, np.uint8).reshape(ciphertexts, per_ciphertext)
    field_bits = np.unpackbits(chunks, axis=1, bitorder="little")[:, : n * bits].reshape(ciphertexts, n, bits)
    wide = np.zeros((ciphertexts, n, 64), np.uint8)
    wide[:, :, :bits] = field_bits
    return np.packbits(wide, axis=2, bitorder="little").view("<u8").reshape(ciphertexts, n).astype(np.uint64)


def pack_share(y: np.ndarray, bits: int) -> bytes:
    """The inverse of unpack_share for one ciphertext."""
    field_bits = np.unpackbits(y.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")[:, :bits]
    return np.packbits(field_bits.reshape(-1), bitorder="little").tobytes()


class WordStream:
    """The stream of a 64-byte seed (section 6.1) as little-endian 64-bit words, read in order."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.words = np.zeros(0, np.uint64)
        self.pos = 0

    def _ahead(self, count: int) -> np.ndarray:
        missing = self.pos + count - self.words.size
        if missing > 0:
            blocks = -(-missing // WORDS_PER_BLOCK)
            more = blake2xb_blocks(self.seed, self.words.size // WORDS_PER_BLOCK, blocks)
            self.words = np.concatenate([self.words, more])
        return self.words[self.pos : self.pos + count]

    def read(self, count: int) -> np.ndarray:
        out = self._ahead(count)
        self.pos += count
        return out

    def uniform(self, count: int, q: int) -> tuple[np.ndarray, int]:
        """``count`` values uniform modulo q drawn word by word (a word at or above SEAL's threshold
        is replaced by the word that follows it), and how many words were rejected."""
        threshold = np.uint64(MASK64 - MASK64 % q - 1)
        window = count
        while True:
            words = self._ahead(window)
            accepted = np.flatnonzero(words < threshold)
            if accepted.size >= count:
                break
            window += count - accepted.size
        used = int(accepted[count - 1]) + 1
        self.pos += used
        return words[accepted[:count]] % np.uint64(q), used - count


def derived(tag: bytes, seed: int, index: int, size: int = 64) -> bytes:
    """D(tag, x, index, size) = BLAKE2b(key = tag + le64(x), message = le64(index), digest length size)."""
    return hashlib.blake2b(struct.pack("<Q", index), key=tag + struct.pack("<Q", seed), digest_size=size).digest()


def round_key(tag_key: bytes, consortium_id: bytes, rnd: int) -> bytes:
    return hashlib.blake2b(consortium_id + struct.pack("<Q", rnd), key=tag_key, digest_size=64).digest()


TAG_REPETITIONS = 2


def tag_keys(key: bytes, h: int, n: int, moduli: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """K_h[r][p][l][i] of ciphertext h (order r, p, l, i) and the number of words rejected."""
    stream = WordStream(hashlib.blake2b(struct.pack("<Q", h), key=key, digest_size=64).digest())
    keys = np.empty((TAG_REPETITIONS, 2, len(moduli), n), np.uint64)
    rejected = 0
    for r in range(TAG_REPETITIONS):
        for p in range(2):
            for l, q in enumerate(moduli):
                keys[r, p, l], skipped = stream.uniform(n, q)
                rejected += skipped
    return keys, rejected


def contribution_tag(polys: list[np.ndarray], keys: list[np.ndarray], moduli: tuple[int, ...]) -> tuple[int, ...]:
    """tag[r*L + l] = sum over h, p, i of K_h[r][p][l][i] * c_h[p][l][i] mod q_l; polys[h] is (2, L, N)."""
    tag = [0] * (TAG_REPETITIONS * len(moduli))
    for c, k in zip(polys, keys):
        for r in range(TAG_REPETITIONS):
            for l, q in enumerate(moduli):
                dot = sum(int(np.dot(k[r, p, l].astype(object), c[p, l].astype(object))) for p in range(2))
                tag[r * len(moduli) + l] = (tag[r * len(moduli) + l] + dot) % q
    return tuple(tag)


def full_polys(ct: SealCiphertext, c1: np.ndarray) -> np.ndarray:
    return np.stack([ct.polys[0], c1])


def lagrange_at_zero(group: tuple[int, ...], party: int, q: int) -> int:
    num, den = 1, 1
    for m in group:
        if m != party:
            num, den = num * m % q, den * (m - party) % q
    return num * pow(den, -1, q) % q


def flooding(seed: bytes, n: int, w: int) -> np.ndarray:
    """F_i: the low w bits of four consecutive words per coefficient, summed and centred (int64)."""
    words = WordStream(seed).read(4 * n).reshape(n, 4) & np.uint64((1 << w) - 1)
    return words.sum(axis=1).astype(np.int64) - ((1 << (w + 1)) - 2)


def decryption_share_payload(
    sum_data: bytes, keys: KeyFile, secret: np.ndarray, group: tuple[int, ...], party: int, w: int, k: int,
    flood_seeds: list[bytes],
) -> bytes:
    """A party's payload from its secret (data level, NTT form) and each ciphertext's flooding seed."""
    _, ciphertexts = read_ciphertexts(sum_data, keys)
    moduli = keys.parameters.data_moduli
    half = 1 << (k - 1) if k else 0
    bits = share_word_bits(math.prod(moduli), k)
    out = b""
    for (ct, c1), seed in zip(ciphertexts, flood_seeds):
        f = flooding(seed, ct.n, w).astype(object)
        residues = []
        for j, q in enumerate(moduli):
            product = c1[j].astype(object) * secret[j].astype(object) % q * lagrange_at_zero(group, party, q) % q
            residues.append((inverse_ntt(product, q) + f) % q)
        y = np.array([(int(x) + half) >> k for x in crt_compose(residues, moduli)], dtype=np.uint64)
        out += pack_share(y, bits)
    return out


def combine_shares(
    sum_data: bytes, shares: list[DecryptionShareRecord], keys: KeyFile, round_bits: int
) -> np.ndarray:
    """The values of a sum from t decryption shares: per ciphertext and prime, the inverse NTT of
    c0 plus each share's y * 2^k, then CRT, centering, scaling and decoding."""
    batch, ciphertexts = read_ciphertexts(sum_data, keys)
    moduli = keys.parameters.data_moduli
    bits = share_word_bits(math.prod(moduli), round_bits)
    ys = [unpack_share(s.payload, keys.parameters.n, bits, batch.ciphertext_count) for s in shares]
    values = []
    for h, (ct, _) in enumerate(ciphertexts):
        residues = []
        for j, q in enumerate(moduli):
            acc = inverse_ntt(ct.polys[0, j], q)
            for y in ys:
                acc = (acc + (y[h] % np.uint64(q)).astype(object) * pow(2, round_bits, q)) % q
            residues.append(acc)
        values.append(decode_residues(residues, moduli, ct.scale))
    return np.concatenate(values)[: batch.value_count]


# -- tests -----------------------------------------------------------------------------------

PRESETS = ("aggregation", "compact", "conservative")  # conservative: several primes, a special one
KEY_SEEDS = {"aggregation": 41, "compact": 42, "conservative": 43}


@pytest.fixture(scope="module", params=PRESETS)
def preset(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def engine_keys(preset: str) -> fh.KeySet:
    return fh.KeySet.generate(preset, seed=KEY_SEEDS[preset])


@pytest.fixture(scope="module")
def reader_keys(engine_keys: fh.KeySet) -> KeyFile:
    return read_key_file(engine_keys.to_bytes())


def test_crc32c_is_the_castagnoli_crc():
    assert crc32c(b"123456789") == 0xE3069283  # the catalogued check value of CRC-32C
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283


def test_blake2b_single_block_matches_hashlib():
    """The numpy BLAKE2b agrees with hashlib on parameter blocks hashlib accepts."""
    rng = np.random.default_rng(5)
    messages = rng.integers(0, 2**64, (3, 8), dtype=np.uint64)
    offsets = (0, 7, (4096 << 32) | 63)
    params = np.array(
        [[64 | (1 << 16) | (1 << 24) | (64 << 32), off, 64 << 8] for off in offsets], dtype=np.uint64
    )
    ours = blake2b_single_block(messages, params)
    for lane, off in enumerate(offsets):
        expected = hashlib.blake2b(
            messages[lane].astype("<u8").tobytes(), digest_size=64, leaf_size=64, node_offset=off, inner_size=64
        ).digest()
        assert ours[lane].astype("<u8").tobytes() == expected


@pytest.mark.parametrize("n, q", [(8, 17), (16, 97), (32, 193)])
def test_inverse_ntt_inverts_the_documented_forward_transform(n, q):
    """SEAL's NTT value i is a(psi^(2 * bit_reverse(i) + 1)), psi the smallest primitive 2N-th root."""
    psi = minimal_primitive_root(2 * n, q)
    assert psi == min(x for x in range(2, q) if pow(x, n, q) == q - 1)
    logn = n.bit_length() - 1
    a = np.random.default_rng(n).integers(0, q, n)
    forward = np.array(
        [sum(int(a[k]) * pow(psi, (2 * bit_reverse(i, logn) + 1) * k, q) for k in range(n)) % q for i in range(n)],
        dtype=object,
    )
    assert list(inverse_ntt(forward, q)) == [int(v) for v in a]


def test_key_set_and_public_context(engine_keys, reader_keys, preset):
    key_set = reader_keys
    public = read_key_file(engine_keys.public_context().to_bytes())
    params = fh.get_params(preset)
    assert key_set.has_secret and not public.has_secret and public.secret_key is None
    for parsed in (key_set, public):
        recomputed = fingerprint(parsed.parameters.parms_id(), parsed.scale_bits, parsed.public_key.polys)
        assert recomputed == parsed.fingerprint and recomputed.hex() == engine_keys.fingerprint
        assert parsed.scale_bits == params.scale_bits and parsed.packed == params.packed
        assert parsed.parameters.n == params.poly_modulus_degree
        assert tuple(q.bit_length() for q in parsed.parameters.moduli) == params.coeff_modulus_bits
    assert key_set.sections[:2] == public.sections
    assert key_set.sections == (
        engine_keys.seal_parameters(), engine_keys.seal_public_key(), engine_keys.seal_secret_key()
    )
    n, k = params.poly_modulus_degree, len(params.coeff_modulus_bits)
    assert len(key_set.sections[1]) == WORDS_OFFSET + 2 * n * k * 8
    assert len(key_set.sections[2]) == 16 + 32 + 8 + 8 + 16 + 8 + n * k * 8
    for j, q in enumerate(key_set.parameters.moduli):
        assert (key_set.secret_key[j] < np.uint64(q)).all() and (key_set.public_key.polys[:, j] < np.uint64(q)).all()


def test_the_reader_refuses_what_the_checks_guard(engine_keys):
    data = bytearray(engine_keys.to_bytes())
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(ValueError, match="checksum mismatch"):
        read_key_file(bytes(flipped))
    rescaled = bytearray(data)
    struct.pack_into("<I", rescaled, 32, struct.unpack_from("<I", data, 32)[0] + 1)
    struct.pack_into("<I", rescaled, 12, checksum_with_field_zeroed(bytes(rescaled)))
    with pytest.raises(ValueError, match="fingerprint does not match"):
        read_key_file(bytes(rescaled))

    batch = engine_keys.encrypt(np.ones(engine_keys.values_per_ciphertext + 1), mode="public_key").to_bytes()
    read_batch(batch)
    corrupt = bytearray(batch)
    corrupt[-500] ^= 1
    with pytest.raises(ValueError, match="ciphertext 1 check mismatch"):
        read_batch(bytes(corrupt))
    count, size = struct.unpack_from("<QQ", batch, 40)
    first = BATCH_HEADER.size + 4 * count
    moved = bytearray(batch)  # the two ciphertexts exchanged together with their checks
    moved[first : first + 2 * size] = batch[first + size : first + 2 * size] + batch[first : first + size]
    moved[80:88] = batch[84:88] + batch[80:84]
    with pytest.raises(ValueError, match="ciphertext 0 check mismatch"):
        read_batch(bytes(moved))
    header = bytearray(batch)
    header[56] ^= 1
    with pytest.raises(ValueError, match="header checksum mismatch"):
        read_batch(bytes(header))


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("mode", ["symmetric", "public_key"])
def test_uploads_decrypt_with_the_reader_alone(engine_keys, reader_keys, mode, packed):
    n = engine_keys.values_per_ciphertext
    count = n + 7  # two ciphertexts, the last zero-padded
    x = np.random.default_rng(7).uniform(-1, 1, count)
    data = engine_keys.encrypt(x, mode=mode, packed=packed, parties=2).to_bytes()
    batch = read_batch(data)
    moduli = reader_keys.parameters.data_moduli
    seeded = mode == "symmetric"
    assert batch.mode == (SYMMETRIC if seeded else PUBLIC_KEY) and batch.packed == packed
    assert (batch.value_count, batch.contributions, batch.party_budget) == (count, 1, 2)
    seal_size = seal_ciphertext_bytes(n, len(moduli), seeded)
    words = 8 * n * len(moduli) * (1 if seeded else 2)
    packed_words = sum(packed_limb_bytes(n, q.bit_length()) for q in moduli) * (1 if seeded else 2)
    assert batch.ciphertext_bytes == (seal_size - words + packed_words if packed else seal_size)

    ours = decrypt_batch(data, reader_keys)
    bound = engine_keys.error_bound(1, mode, max_abs=1.0)
    np.testing.assert_allclose(ours, engine_keys.decrypt(data), rtol=0, atol=bound)
    np.testing.assert_allclose(ours, x, rtol=0, atol=bound)


def test_a_sum_of_three_uploads_decrypts_with_the_reader_alone(engine_keys, reader_keys):
    n = engine_keys.values_per_ciphertext
    rng = np.random.default_rng(n)
    xs = rng.uniform(-1, 1, (3, n + 5))
    uploads = [
        engine_keys.encrypt(xs[0], parties=3, mode="symmetric"),
        engine_keys.encrypt(xs[1], parties=3, mode="public_key", packed=True),
        engine_keys.public_context().encrypt(xs[2], parties=3),
    ]
    acc = fh.Accumulator(engine_keys.public_context())
    for upload in uploads:
        acc.add(upload)
    bound = engine_keys.error_bound(3, "public_key", max_abs=1.0)
    for packed in (False, True):
        data = acc.result(packed=packed).to_bytes()
        batch = read_batch(data)
        assert (batch.mode, batch.packed, batch.contributions, batch.party_budget) == (SUM, packed, 3, 3)
        ours = decrypt_batch(data, reader_keys)
        np.testing.assert_allclose(ours, engine_keys.decrypt(data), rtol=0, atol=bound)
        np.testing.assert_allclose(ours, xs.sum(axis=0), rtol=0, atol=bound)


def test_unpacking_restores_seals_serialization_byte_for_byte(engine_keys, reader_keys):
    """A seeded encryption is the same SEAL ciphertext packed or not; unpacking the packed batch
    gives back exactly the bytes of the unpacked one."""
    x = np.linspace(-1, 1, 2 * engine_keys.values_per_ciphertext)
    plain = read_batch(engine_keys.encrypt(x, seed=11, packed=False).to_bytes())
    packed = read_batch(engine_keys.encrypt(x, seed=11, packed=True).to_bytes())
    assert packed.batch_id == plain.batch_id
    moduli = reader_keys.parameters.data_moduli
    for a, b in zip(plain.ciphertexts, packed.ciphertexts):
        assert len(b) < len(a)
        assert unpack_ciphertext(b, reader_keys.parameters.n, moduli) == a


def test_seeded_encryption_follows_the_documented_derivations(engine_keys):
    seed = 2024
    data = engine_keys.encrypt(np.ones(2 * engine_keys.values_per_ciphertext), seed=seed, packed=False).to_bytes()
    batch = read_batch(data)

    def derived(tag: bytes, index: int) -> bytes:
        return hashlib.blake2b(struct.pack("<Q", index), key=tag + struct.pack("<Q", seed), digest_size=64).digest()

    assert batch.batch_id == derived(b"fhto.batch.v1", 0)[:16]
    for k, ct in enumerate(batch.ciphertexts):
        public_seed = Blake2xbStream(derived(b"fhto.encrypt.v1", k)).read(64)
        assert parse_seal_ciphertext(ct).seed == public_seed


def test_a_consistent_c0_c1_swap_would_be_caught(engine_keys, reader_keys):
    """Exchanging c0 and c1 inside a packed batch, with every check recomputed, leaves a batch
    whose checks pass but whose content is wrong: the reader's decryption disagrees with the
    input. A swap made in pack and undone in unpack would pass the engine's own round trip;
    this reader, which knows which polynomial comes first, would fail."""
    n = engine_keys.values_per_ciphertext
    x = np.random.default_rng(3).uniform(-1, 1, n)
    data = engine_keys.encrypt(x, mode="public_key", packed=True).to_bytes()
    bound = engine_keys.error_bound(1, "public_key", max_abs=1.0)
    np.testing.assert_allclose(decrypt_batch(data, reader_keys), x, rtol=0, atol=bound)

    half = sum(packed_limb_bytes(n, q.bit_length()) for q in reader_keys.parameters.data_moduli)
    start = BATCH_HEADER.size + 4 + WORDS_OFFSET
    c0, c1 = data[start : start + half], data[start + half : start + 2 * half]
    swapped = with_checks(data[:start] + c1 + c0 + data[start + 2 * half :])
    read_batch(swapped)  # every check passes
    wrong = decrypt_batch(swapped, reader_keys)
    assert np.max(np.abs(wrong - x)) > 1e3 * bound


# -- multiparty formats ----------------------------------------------------------------------

MP_NAMES = tuple(f"hospital {i}" for i in range(1, 6))
MP_ROUND = 7
MP_GROUP = (1, 2, 3)
FLOOD_SEEDS = {1: 101, 2: 102, 3: 103}  # one study seed per decrypting party


@dataclass(frozen=True)
class ThresholdRound:
    """A 3-of-5 consortium, three uploads with their signed tags, their sum and the decryption
    shares of parties 1, 2 and 3, all as the bytes that would cross the network."""

    consortium: mp.Consortium
    generation: KeyGeneration
    keys: KeyFile  # the collective public context, read from its bytes
    xs: np.ndarray
    uploads: tuple[bytes, ...]
    tags: tuple[bytes, ...]
    total: bytes
    shares: tuple[bytes, ...]


@pytest.fixture(scope="module")
def threshold_round() -> ThresholdRound:
    consortium = mp.Consortium.create(5, 3, seed=1)
    gen = key_generation(consortium, MP_NAMES, seed=1)
    xs = np.random.default_rng(9).uniform(-1, 1, (3, consortium.n + 5))  # two ciphertexts each
    uploads = tuple(gen.public.encrypt(x, parties=3).to_bytes() for x in xs)
    tags = tuple(gen.shares[name].sign_tag(gen.public, u, MP_ROUND).to_bytes() for name, u in zip(MP_NAMES, uploads))
    total = fh.aggregate(uploads, gen.public).to_bytes()
    shares = tuple(
        mp.Party(gen.shares[MP_NAMES[i - 1]], gen.public, seed=FLOOD_SEEDS[i])
        .decryption_share(total, list(MP_GROUP), round=MP_ROUND, tags=list(tags))
        .to_bytes()
        for i in MP_GROUP
    )
    return ThresholdRound(consortium, gen, read_key_file(gen.public.to_bytes()), xs, uploads, tags, total, shares)


def published_shares(gen) -> dict[int, PublicShareRecord]:
    """Every party's public share, read from the bytes it publishes, by party."""
    records = (read_public_share(gen.shares[name].public_share().to_bytes()) for name in MP_NAMES)
    return {r.party: r for r in records}


def test_consortium(threshold_round):
    c = threshold_round.consortium
    data = c.to_bytes()
    record = read_consortium(data)
    assert len(data) == 94 + len(c.params.coeff_modulus_bits)
    assert record.id == c.id
    assert (record.n, record.prime_bits, record.scale_bits, record.packed) == (
        c.params.poly_modulus_degree, c.params.coeff_modulus_bits, c.params.scale_bits, c.params.packed
    )
    assert (record.parties, record.threshold, record.budget_bits, record.security_bits, record.seed) == (
        5, 3, c.budget_bits, c.security_bits, c.seed
    )
    assert (record.flood_bits, record.round_bits) == (c.flood_bits, c.round_bits) == (56, 48)
    assert record.seed == derived(b"fhto.party.v1", 1, 2**64 - 1)
    params = threshold_round.keys.parameters  # the primes come from the collective public context
    assert params.n == record.n and tuple(q.bit_length() for q in params.moduli) == record.prime_bits
    corrupt = bytearray(data)
    corrupt[-1] ^= 1
    with pytest.raises(ValueError, match="checksum mismatch"):
        read_consortium(bytes(corrupt))


def test_public_shares_make_the_collective_key(threshold_round):
    gen, keys = threshold_round.generation, threshold_round.keys
    consortium = read_consortium(threshold_round.consortium.to_bytes())
    moduli, n = keys.parameters.moduli, keys.parameters.n
    records = list(published_shares(gen).values())
    assert [r.party for r in records] == [1, 2, 3, 4, 5]
    assert all(r.consortium_id == consortium.id and r.words.size == len(moduli) * n for r in records)
    assert len(gen.shares[MP_NAMES[0]].public_share().to_bytes()) == 106 + 8 * len(moduli) * n

    pk = keys.public_key.polys  # (2, K, N): the collective key, read from the public context
    total = sum(r.words.reshape(len(moduli), n) for r in records)  # five words below 2^60 fit
    for j, q in enumerate(moduli):
        assert np.array_equal(total[j] % np.uint64(q), pk[0, j])
    assert np.array_equal(expand_uniform(consortium.seed, n, moduli), pk[1])  # a, at key level
    assert keys.fingerprint.hex() == gen.public.fingerprint


def test_key_shares(threshold_round):
    """Every party's key share file: its fields, the Shamir shares recomputed from every party's
    Shamir seed and secret, and their Lagrange combination, which is the collective secret."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    gen, keys = threshold_round.generation, threshold_round.keys
    consortium = threshold_round.consortium
    moduli, n = keys.parameters.data_moduli, keys.parameters.n
    publics = published_shares(gen)
    records = {}
    for name in MP_NAMES:
        data = gen.shares[name].to_bytes()
        r = read_key_share(data)
        records[r.party] = r
        k = len(r.consortium.prime_bits)
        assert len(data) == 275 + k + 32 + 34 * 5 + 16 * k * n + 8 * len(moduli) * n
        assert r.consortium_bytes == consortium.to_bytes()
        assert r.signers == {p: s.signing_key for p, s in publics.items()}
        assert np.array_equal(r.public.reshape(-1), publics[r.party].words)
        raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        signing = Ed25519PrivateKey.from_private_bytes(r.signing_private).public_key().public_bytes(*raw)
        assert signing == publics[r.party].signing_key
        assert r.exchange_private == derived(b"fhto.party.v1", 1, 8 * r.party + 1, 32)
        assert r.shamir_seed == derived(b"fhto.party.v1", 1, 8 * r.party + 2)
        assert r.signing_private == derived(b"fhto.party.v1", 1, 8 * r.party + 4, 32)
        assert r.tag_key == records[1].tag_key == derived(b"fhto.party.v1", 1, 8 + 5, 32)

    t = consortium.threshold
    for i, r in records.items():  # s'_i = sum over j of f_j(i)
        expected = np.zeros((len(moduli), n), dtype=object)
        for j, other in records.items():
            stream = WordStream(other.shamir_seed)
            coefficients = [[stream.uniform(n, q)[0] for q in moduli] for _ in range(1, t)]
            for l, q in enumerate(moduli):
                f = other.secret[l].astype(object)
                for d, c in enumerate(coefficients, start=1):
                    f = f + c[l].astype(object) * pow(i, d, q)
                expected[l] = (expected[l] + f) % q
        assert np.array_equal(r.threshold_secret.astype(object), expected)

    for l, q in enumerate(moduli):  # the set {1, 2, 3} interpolates s = sum of every s_j at 0
        s = sum(r.secret[l].astype(object) for r in records.values()) % q
        combined = sum(
            records[i].threshold_secret[l].astype(object) * lagrange_at_zero(MP_GROUP, i, q) for i in MP_GROUP
        )
        assert np.array_equal(combined % q, s)


def test_channel_messages(threshold_round):
    """Party 1's round-0 messages: the header, the length, and the nonces of a seeded study. (Their
    encryption, X25519 and ChaCha20-Poly1305, is left to the engine's own tests.)"""
    gen = threshold_round.generation
    moduli, n = threshold_round.keys.parameters.data_moduli, threshold_round.keys.parameters.n
    publics = [gen.shares[name].public_share() for name in MP_NAMES]
    cons_id = threshold_round.consortium.id
    first = gen.shares[MP_NAMES[0]]  # sending again sends the same tag key and, seeded, the same nonces
    for purpose, messages, plaintext, nonce_purpose in (
        (2, first.tag_key_messages(publics), 32, 6),
        (1, first.shamir_messages(publics), 8 * len(moduli) * n, 3),
    ):
        assert [m.recipient for m in messages] == [2, 3, 4, 5]
        for message in messages:
            data = message.to_bytes()
            record = read_channel_message(data)
            assert len(data) == 65 + plaintext and len(record.ciphertext) == plaintext + 16
            assert (record.consortium_id, record.purpose, record.sender) == (cons_id, purpose, 1)
            assert record.nonce == derived(b"fhto.party.v1", 1, 8192 * record.recipient + 8 * 1 + nonce_purpose, 12)
            assert record.associated_data == data[16:49]


def test_signed_tags(threshold_round):
    """Each tag verifies under its party's published Ed25519 key, and its values are recomputed
    from the tag key, the round and the upload's coefficients."""
    gen, keys = threshold_round.generation, threshold_round.keys
    consortium = read_consortium(threshold_round.consortium.to_bytes())
    moduli, n = keys.parameters.data_moduli, keys.parameters.n
    publics = published_shares(gen)
    tags = [read_signed_tag(t) for t in threshold_round.tags]
    for party, (data, tag) in enumerate(zip(threshold_round.tags, tags), start=1):
        assert len(data) == 108 + 8 * TAG_REPETITIONS * len(moduli)
        assert (tag.consortium_id, tag.round, tag.party) == (consortium.id, MP_ROUND, party)
        assert all(v < moduli[j % len(moduli)] for j, v in enumerate(tag.values))
        assert signature_is_valid(tag, publics[party].signing_key)
        assert not signature_is_valid(tag, publics[party % 5 + 1].signing_key)
    body = bytearray(read_frame(threshold_round.tags[0], b"FHTOMPTG"))
    body[28] ^= 1  # value 0, re-framed so that only the signature can tell
    assert not signature_is_valid(read_signed_tag(reframe(b"FHTOMPTG", bytes(body))), publics[1].signing_key)

    tag_key = read_key_share(gen.shares[MP_NAMES[0]].to_bytes()).tag_key
    key = round_key(tag_key, consortium.id, MP_ROUND)
    count = read_batch(threshold_round.total).ciphertext_count
    # Every ciphertext position has its own keys, the same for each upload and the sum. (These
    # primes reject about 2^-31 of the words: the test of the inline sampler is below.)
    stream_keys = [tag_keys(key, h, n, moduli)[0] for h in range(count)]
    for data, tag in zip(threshold_round.uploads, tags):
        polys = [full_polys(ct, c1) for ct, c1 in read_ciphertexts(data, keys)[1]]
        assert contribution_tag(polys, stream_keys, moduli) == tag.values
    polys = [full_polys(ct, c1) for ct, c1 in read_ciphertexts(threshold_round.total, keys)[1]]
    summed = tuple(sum(t.values[j] for t in tags) % moduli[j % len(moduli)] for j in range(len(tags[0].values)))
    assert contribution_tag(polys, stream_keys, moduli) == summed


def test_inline_rejection_sampling_reads_word_by_word():
    """The reader's vectorized sampler of section 9.6 against the rule read literally, with a
    modulus that rejects a quarter of the words (the presets' primes almost never reject)."""
    q = 3 * 2**62 + 1
    literal, stream, rejected = [], Blake2xbStream(bytes(range(64))), 0
    for _ in range(3000):
        x = struct.unpack("<Q", stream.read(8))[0]
        while x >= MASK64 - MASK64 % q - 1:
            rejected += 1
            x = struct.unpack("<Q", stream.read(8))[0]
        literal.append(x % q)
    words, values, skipped = WordStream(bytes(range(64))), [], 0
    for count in (1000, *[1] * 1000, 1000):  # in blocks, then value by value across a refill
        drawn, rejects = words.uniform(count, q)
        values += [int(v) for v in drawn]
        skipped += rejects
    assert values == literal
    assert skipped == rejected > 500


def test_threshold_decryption_combines_with_the_reader_alone(threshold_round):
    consortium, keys, total = threshold_round.consortium, threshold_round.keys, threshold_round.total
    cons = read_consortium(consortium.to_bytes())
    batch = read_batch(total)
    moduli, n = keys.parameters.data_moduli, keys.parameters.n
    bits = share_word_bits(math.prod(moduli), cons.round_bits)
    assert bits == 48
    records = [read_decryption_share(s) for s in threshold_round.shares]
    for party, (data, r) in enumerate(zip(threshold_round.shares, records), start=1):
        assert (r.consortium_id, r.batch_digest) == (cons.id, hashlib.sha256(total).digest())
        assert r.fingerprint == keys.fingerprint == batch.fingerprint
        assert (r.party, r.parties, r.round_bits, r.flood_bits) == (party, MP_GROUP, cons.round_bits, cons.flood_bits)
        assert (r.value_count, r.ciphertext_count) == (batch.value_count, batch.ciphertext_count)
        assert len(data) == 102 + 2 * len(MP_GROUP) + batch.ciphertext_count * packed_limb_bytes(n, bits)

    ours = combine_shares(total, records, keys, cons.round_bits)
    engine = mp.combine(consortium, threshold_round.generation.public, total, list(threshold_round.shares))
    np.testing.assert_allclose(ours, engine, rtol=1e-9, atol=1e-9 * np.max(np.abs(engine)))
    bound = consortium.error_bound(3, public=threshold_round.generation.public, max_abs=1.0)
    np.testing.assert_allclose(ours, threshold_round.xs.sum(axis=0), rtol=0, atol=bound)
    two = combine_shares(total, records[:2], keys, cons.round_bits)  # t - 1 shares decode to noise
    assert np.max(np.abs(two - threshold_round.xs.sum(axis=0))) > 1e3 * bound


def test_a_decryption_share_is_recomputed_from_the_specification(threshold_round):
    """Party 2's share of the sum, byte for byte: its Shamir share times its Lagrange coefficient
    times c1, the inverse NTT, the flooding noise from its study seed, CRT, rounding, bit packing."""
    keys, total = threshold_round.keys, threshold_round.total
    cons = read_consortium(threshold_round.consortium.to_bytes())
    party = 2
    record = read_decryption_share(threshold_round.shares[party - 1])
    secret = read_key_share(threshold_round.generation.shares[MP_NAMES[party - 1]].to_bytes()).threshold_secret
    x = int.from_bytes(derived(b"fhto.flood.v1", FLOOD_SEEDS[party], 0, 8), "little")  # the party's first share
    seeds = [derived(b"fhto.flood.v1", x, h) for h in range(record.ciphertext_count)]
    payload = decryption_share_payload(
        total, keys, secret, MP_GROUP, party, cons.flood_bits, cons.round_bits, seeds
    )
    assert payload == record.payload
