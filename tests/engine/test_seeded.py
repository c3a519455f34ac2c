"""Seeded key generation and seeded secret-key encryption: reproducible bytes for studies and
tests. The seed derivations are recomputed here from their documented definition (hashlib's
BLAKE2b plus a small reference of Blake2xb's first output block), so the tests hold the engine
to the specification, not to itself."""
from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core
from fhto_native.errors import InputTypeError, KeyMismatchError, ParameterError, SecretKeyRequiredError

from conftest import ciphertext_span

KEYGEN_TAG = b"fhto.keygen.v1"
ENCRYPT_TAG = b"fhto.encrypt.v1"
MASK = (1 << 64) - 1

# -- reference of the documented derivations -------------------------------------------------

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


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (64 - n))) & MASK


def _compress_last(h: list[int], block: bytes, length: int) -> list[int]:
    """BLAKE2b's compression of a final 128-byte block (RFC 7693), in plain Python."""
    m = struct.unpack("<16Q", block)
    v = list(h) + list(_IV)
    v[12] ^= length
    v[14] ^= MASK

    def g(a: int, b: int, c: int, d: int, x: int, y: int) -> None:
        v[a] = (v[a] + v[b] + x) & MASK
        v[d] = _rotr(v[d] ^ v[a], 32)
        v[c] = (v[c] + v[d]) & MASK
        v[b] = _rotr(v[b] ^ v[c], 24)
        v[a] = (v[a] + v[b] + y) & MASK
        v[d] = _rotr(v[d] ^ v[a], 16)
        v[c] = (v[c] + v[d]) & MASK
        v[b] = _rotr(v[b] ^ v[c], 63)

    for r in range(12):
        s = _SIGMA[r % 10]
        g(0, 4, 8, 12, m[s[0]], m[s[1]])
        g(1, 5, 9, 13, m[s[2]], m[s[3]])
        g(2, 6, 10, 14, m[s[4]], m[s[5]])
        g(3, 7, 11, 15, m[s[6]], m[s[7]])
        g(0, 5, 10, 15, m[s[8]], m[s[9]])
        g(1, 6, 11, 12, m[s[10]], m[s[11]])
        g(2, 7, 8, 13, m[s[12]], m[s[13]])
        g(3, 4, 9, 14, m[s[14]], m[s[15]])
    return [h[i] ^ v[i] ^ v[i + 8] for i in range(8)]


def blake2xb_first_block(key: bytes) -> bytes:
    """The first 64 bytes of SEAL's Blake2xb PRNG stream for a 64-byte seed.

    The root is BLAKE2b keyed by the seed over the 8-byte block counter 0, with blake2xb's
    parameter block (xof_length 4096 in the upper half of node_offset); the first output block
    is the leaf with node offset 0 (depth 0, leaf and inner length 64), which hashlib cannot
    express (it insists on depth >= 1), hence the plain compression.
    """
    root = hashlib.blake2b(bytes(8), key=key, digest_size=64, node_offset=4096 << 32).digest()
    h = list(_IV)
    h[0] ^= 64 | (64 << 32)  # digest length 64, leaf length 64
    h[1] ^= 4096 << 32  # node offset 0, xof length 4096
    h[2] ^= 64 << 8  # node depth 0, inner length 64
    return struct.pack("<8Q", *_compress_last(h, root + bytes(64), 64))


def derived_seed(tag: bytes, seed: int, index: int) -> bytes:
    """BLAKE2b-512(key = tag || le64(seed), message = le64(index)): the engine's seed derivation."""
    return hashlib.blake2b(struct.pack("<Q", index), key=tag + struct.pack("<Q", seed), digest_size=64).digest()


# -- seeded key generation ---------------------------------------------------------------------


def test_same_seed_gives_identical_key_bytes():
    a = fh.KeySet.generate("aggregation", seed=7)
    b = fh.KeySet.generate("aggregation", seed=7)
    assert a.to_bytes() == b.to_bytes()
    assert a.seal_secret_key() == b.seal_secret_key()
    assert a.seal_public_key() == b.seal_public_key()
    assert a.fingerprint == b.fingerprint


def test_different_seeds_or_params_give_different_keys():
    a = fh.KeySet.generate("aggregation", seed=7)
    b = fh.KeySet.generate("aggregation", seed=8)
    assert a.fingerprint != b.fingerprint
    assert a.seal_public_key() != b.seal_public_key()
    n, limbs = a.values_per_ciphertext, len(a._core.coeff_modulus)
    sk_a = np.frombuffer(a.seal_secret_key()[-8 * n * limbs:], dtype="<u8")
    sk_b = np.frombuffer(b.seal_secret_key()[-8 * n * limbs:], dtype="<u8")
    assert np.count_nonzero(sk_a == sk_b) < 8  # unrelated keys: NTT words agree only by chance
    c = fh.KeySet.generate("conservative", seed=7)
    assert c.fingerprint != a.fingerprint


def test_unseeded_generation_stays_random():
    assert fh.KeySet.generate("aggregation").fingerprint != fh.KeySet.generate("aggregation").fingerprint


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**64 - 1])
def test_public_key_randomness_comes_from_the_second_derived_stream(seed):
    """SEAL's own fixed-seed factory would read the secret key (ternary sampling) and the public
    key's bootstrap from one stream. The engine gives the k-th generator derive(seed, k): the
    secret key stream 0 and the public key's bootstrap stream 1. The public key's c1 is expanded
    from the first 64 bytes of stream 1; check its first words against that reference."""
    keys = fh.KeySet.generate("conservative", seed=seed)
    primes = keys._core.coeff_modulus  # the key level: every prime, special one included
    n = keys.values_per_ciphertext
    pk = keys.seal_public_key()
    c1 = np.frombuffer(pk[len(pk) - 8 * n * len(primes):], dtype="<u8")

    def first_words_match(public_seed: bytes) -> bool:
        words = struct.unpack("<8Q", blake2xb_first_block(public_seed))
        q = primes[0]
        max_multiple = MASK - (MASK % q) - 1  # SEAL redraws words at or above it (rarely)
        kept = [(i, w) for i, w in enumerate(words) if w < max_multiple]
        assert kept, "every word of the block was rejected"
        return sum(int(c1[i]) == w % q for i, w in kept) == len(kept)

    def stream(index: int) -> bytes:
        return blake2xb_first_block(derived_seed(KEYGEN_TAG, seed, index))

    assert first_words_match(stream(1))
    assert not first_words_match(stream(0))  # not the secret key's stream
    assert not first_words_match(blake2xb_first_block(struct.pack("<Q", seed) + bytes(56)))  # nor the raw seed


def test_seeded_keys_decrypt_their_own_and_not_another_seeds(rng):
    a = fh.KeySet.generate("aggregation", seed=21)
    b = fh.KeySet.generate("aggregation", seed=22)
    x = rng.uniform(-1, 1, 1000)
    upload = a.encrypt(x, seed=5, packed=False)
    np.testing.assert_allclose(a.decrypt(upload), x, rtol=0, atol=a.error_bound(1))
    with pytest.raises(KeyMismatchError, match="fingerprint|key"):
        b.decrypt(upload)
    # Past the fingerprint check, SEAL itself decrypting with the other seed's key gives garbage.
    start, end = ciphertext_span(upload.to_bytes(), 0)
    ct = upload.to_bytes()[start:end]
    own = _core.seal_reference_decrypt(a.seal_parameters(), a.seal_secret_key(), ct)[: x.size]
    other = _core.seal_reference_decrypt(b.seal_parameters(), b.seal_secret_key(), ct)[: x.size]
    np.testing.assert_allclose(own, x, rtol=0, atol=a.error_bound(1))
    assert np.abs(other - x).max() > 1e3


def test_seeded_key_set_round_trips_and_its_keys_belong_together(tmp_path, rng):
    """Loading checks that the secret key decrypts a public-key encryption (a foreign one fails)."""
    keys = fh.KeySet.generate("compact", seed=99)
    keys.save(tmp_path / "k.fhto")
    loaded = fh.KeySet.load(tmp_path / "k.fhto")
    assert loaded.to_bytes() == keys.to_bytes()
    x = rng.uniform(-1, 1, 300)
    np.testing.assert_allclose(
        loaded.decrypt(keys.encrypt(x, mode="public_key")), x, rtol=0, atol=keys.error_bound(1, "public_key")
    )


def test_a_seeded_key_set_does_not_keep_the_seeded_generator(rng):
    """Public-key encryption draws from the kept SEAL context's generator: two key sets from one
    seed must still encrypt differently, and so must two calls on one key set."""
    a = fh.KeySet.generate("aggregation", seed=3)
    b = fh.KeySet.generate("aggregation", seed=3)
    x = rng.uniform(-1, 1, 50)
    assert a.encrypt(x, mode="public_key").to_bytes() != b.encrypt(x, mode="public_key").to_bytes()
    assert a.encrypt(x).to_bytes() != b.encrypt(x).to_bytes()
    assert a.encrypt(x).to_bytes() != a.encrypt(x).to_bytes()


# -- seeded encryption -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_keys() -> fh.KeySet:
    return fh.KeySet.generate("aggregation", seed=2024)


def _sizes(keys: fh.KeySet) -> list[int]:
    n = keys.values_per_ciphertext
    return [1, n - 1, n, n + 1, 3 * n + 5]


@pytest.mark.parametrize("which", range(5))
def test_seeded_encryption_is_identical_across_threads_and_calls(seeded_keys, which):
    keys = seeded_keys
    size = _sizes(keys)[which]
    x = np.random.default_rng(size).uniform(-1, 1, size)
    one = keys.encrypt(x, seed=11, threads=1).to_bytes()
    two = keys.encrypt(x, seed=11, threads=2).to_bytes()
    again = keys.encrypt(x, seed=11, threads=2).to_bytes()
    assert one == two == again
    other = keys.encrypt(x, seed=12, threads=1).to_bytes()
    assert other != one
    h = fh.EncryptedUpdate.from_bytes(one)
    for k in range(h.ciphertext_count):  # every ciphertext differs, not only the batch
        s, e = ciphertext_span(one, k)
        assert one[s:e] != other[s:e]
    fresh = [keys.encrypt(x, threads=2).to_bytes() for _ in range(2)]
    assert fresh[0] != fresh[1] and one not in fresh
    np.testing.assert_allclose(keys.decrypt(one), x, rtol=0, atol=keys.error_bound(1))


def test_seeded_encryption_of_float32_and_packed_batches_is_reproducible(seeded_keys, rng):
    keys = seeded_keys
    x = rng.uniform(-1, 1, 2 * keys.values_per_ciphertext + 3).astype(np.float32)
    a = keys.encrypt(x, seed=2**64 - 1, packed=True, threads=1).to_bytes()
    b = keys.encrypt(x, seed=np.uint64(2**64 - 1), packed=True, threads=3).to_bytes()
    assert a == b
    np.testing.assert_allclose(keys.decrypt(a), x, rtol=0, atol=keys.error_bound(1))


def test_ciphertext_k_uses_the_bootstrap_seed_derived_from_seed_and_k(seeded_keys, rng):
    """The seed record of ciphertext k holds the first 64 bytes of Blake2xb(derive(seed, k))."""
    keys = seeded_keys
    seed = 31337
    x = rng.uniform(-1, 1, 3 * keys.values_per_ciphertext + 5)
    data = keys.encrypt(x, seed=seed, packed=False, threads=2).to_bytes()
    for k in range(4):
        _, end = ciphertext_span(data, k)
        public_seed = data[end - 64:end]
        assert public_seed == blake2xb_first_block(derived_seed(ENCRYPT_TAG, seed, k))
        assert public_seed != blake2xb_first_block(derived_seed(KEYGEN_TAG, seed, k))  # domains differ


def test_same_seed_different_values_differ_only_in_c0(seeded_keys, rng):
    """What the docstring warns about: one seed for two updates shares the mask (c1's seed)."""
    keys = seeded_keys
    x, y = rng.uniform(-1, 1, 100), rng.uniform(-1, 1, 100)
    a = keys.encrypt(x, seed=4, packed=False).to_bytes()
    b = keys.encrypt(y, seed=4, packed=False).to_bytes()
    _, end = ciphertext_span(a, 0)
    assert a != b
    assert a[end - 64:end] == b[end - 64:end]


def test_seeded_public_key_encryption_is_reproducible_and_decrypts(seeded_keys, rng):
    x = rng.uniform(-1, 1, 5000)
    pub = seeded_keys.public_context()
    a = pub.encrypt(x, seed=1, threads=1).to_bytes()
    assert pub.encrypt(x, seed=1, threads=2).to_bytes() == a  # the same bytes whatever the threads
    assert pub.encrypt(x, seed=2).to_bytes() != a
    assert seeded_keys.encrypt(x, mode="public_key", seed=1).to_bytes() == a
    bound = seeded_keys.error_bound(1, "public_key", max_abs=1.0)
    assert np.max(np.abs(seeded_keys.decrypt(a) - x)) <= bound
    with pytest.raises(SecretKeyRequiredError, match="secret key"):
        pub.encrypt(x, mode="symmetric", seed=1)
    assert pub.encrypt(x).to_bytes() != pub.encrypt(x).to_bytes()  # no seed: fresh randomness


BAD_SEEDS = [
    (-1, ParameterError, r"seed must be between 0 and 2\*\*64 - 1; got -1"),
    (2**64, ParameterError, r"seed must be between 0 and 2\*\*64 - 1; got 18446744073709551616"),
    (1.5, InputTypeError, "seed must be an int or None; got float"),
    (True, InputTypeError, "seed must be an int or None; got bool"),
    ("7", InputTypeError, "seed must be an int or None; got str"),
]


@pytest.mark.parametrize("seed, error, message", BAD_SEEDS)
def test_bad_seeds_for_key_generation(seed, error, message):
    with pytest.raises(error, match=message):
        fh.KeySet.generate("aggregation", seed=seed)


@pytest.mark.parametrize("seed, error, message", BAD_SEEDS)
def test_bad_seeds_for_encryption(seeded_keys, seed, error, message):
    with pytest.raises(error, match=message):
        seeded_keys.encrypt(np.ones(3), seed=seed)


def test_bad_seed_errors_are_catchable_as_builtins():
    with pytest.raises(ValueError):
        fh.KeySet.generate("aggregation", seed=-5)
    with pytest.raises(TypeError):
        fh.KeySet.generate("aggregation", seed=2.0)
