"""An independent reader of the engine's formats, written from docs/FORMATS.md alone.

Nothing here parses bytes with the engine: CRC-32C, SEAL's serialization, the key-set and batch
layouts, bit-unpacking, Blake2xb seed expansion with SEAL's rejection sampling, SEAL's inverse
negacyclic NTT and CKKS decoding are re-implemented below in Python and numpy. The engine only
makes the inputs through its public API (key generation, encryption, the accumulator) and
decrypts them for comparison. If the engine and this reader ever disagree, one of them has left
the specification.
"""
from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

import fhto_native as fh

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


def blake2xb_block(seed: bytes, counter: int) -> bytes:
    """Refill `counter` of SEAL's Blake2xbPRNG: Blake2xb, 4096 bytes, key = seed, input = le64(counter)."""
    root = hashlib.blake2b(
        struct.pack("<Q", counter), key=seed, digest_size=64, fanout=1, depth=1, node_offset=XOF_BLOCK << 32
    ).digest()
    leaves = XOF_BLOCK // 64
    messages = np.tile(np.frombuffer(root, "<u8").astype(np.uint64), (leaves, 1))
    params = np.empty((leaves, 3), np.uint64)
    params[:, 0] = 64 | (64 << 32)  # digest 64, no key, fanout 0, depth 0, leaf length 64
    params[:, 1] = (XOF_BLOCK << 32) | np.arange(leaves, dtype=np.uint64)  # node offset i, XOF length
    params[:, 2] = 64 << 8  # node depth 0, inner length 64
    return blake2b_single_block(messages, params).astype("<u8").tobytes()


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
    big_q = 1
    for q in moduli:
        big_q *= q
    composed = np.zeros(ct.n, dtype=object)
    for q, r in zip(moduli, residues):
        rest = big_q // q
        composed = (composed + r * (rest * pow(rest, -1, q) % big_q)) % big_q
    centered = [int(x) - big_q if x >= (big_q + 1) // 2 else int(x) for x in composed]
    return ckks_decode(np.array([float(x) for x in centered]) / ct.scale)


def decrypt_batch(data: bytes, keys: KeyFile) -> np.ndarray:
    """Every value of a batch, read and decrypted from its bytes alone."""
    batch = read_batch(data)
    if batch.fingerprint != keys.fingerprint:
        raise ValueError("batch was made under another key set")
    n, moduli = keys.parameters.n, keys.parameters.data_moduli
    if batch.ciphertext_count != -(-batch.value_count // n):
        raise ValueError("ciphertext count does not match the value count")
    values = []
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
        c1 = expand_uniform(ct.seed, n, moduli) if ct.seed is not None else ct.polys[1]
        values.append(decrypt_ciphertext(ct, c1, keys))
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
