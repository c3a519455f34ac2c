"""The documented wire format, and that its ciphertexts are plain SEAL ciphertexts."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core
from conftest import HEADER_BYTES, ciphertext_check, ciphertext_span, parse_header, reseal, reseal_header


def test_header_fields_match_the_documentation(keys, rng):
    x = rng.uniform(-1, 1, 2 * 4096 + 5)
    data = keys.encrypt(x, parties=9).to_bytes()
    h = parse_header(data)
    assert h["magic"] == b"FHTOCKKS" and h["version"] == 2 and h["reserved"] == 0
    assert h["mode"] == 1  # symmetric, seeded
    assert h["fingerprint"].hex() == keys.fingerprint
    assert (h["values"], h["cts"], h["contributions"], h["budget"]) == (x.size, 3, 1, 9)
    assert len(data) == HEADER_BYTES + h["cts"] * (4 + h["ct_bytes"])
    zeroed = data[:12] + b"\0\0\0\0" + data[16:HEADER_BYTES]
    assert h["crc"] == _core.crc32c(zeroed)
    for k in range(h["cts"]):
        start, end = ciphertext_span(data, k)
        stored = struct.unpack_from("<I", data, HEADER_BYTES + 4 * k)[0]
        assert stored == ciphertext_check(data, k)
        assert stored != _core.crc32c(data[start:end])  # bound to the position and the header, not the bytes alone
        assert data[start : start + 2] == b"\x5e\xa1"  # SEAL's own serialization header (magic 0xA15E)


@pytest.mark.parametrize("mode", ["symmetric", "public_key"])
def test_ciphertexts_load_and_decrypt_in_plain_seal(keys, rng, mode):
    """Every ciphertext is SEAL's own serialization: SEAL's C++ API alone (no FHTO code) loads
    and decrypts it from SEAL's serializations of the parameters and the secret key."""
    x = rng.uniform(-1, 1, 3 * 4096)
    data = keys.encrypt(x, mode=mode).to_bytes()
    for k in range(3):
        start, end = ciphertext_span(data, k)
        values = _core.seal_reference_decrypt(keys.seal_parameters(), keys.seal_secret_key(), data[start:end])
        np.testing.assert_allclose(values, x[k * 4096 : (k + 1) * 4096], rtol=0, atol=keys.error_bound(1, mode))


def test_a_sum_decrypts_in_plain_seal(keys, pub, rng):
    a, b = rng.uniform(-1, 1, (2, 4096))
    data = fh.aggregate([keys.encrypt(a, parties=2), keys.encrypt(b, parties=2)], pub).to_bytes()
    start, end = ciphertext_span(data, 0)
    values = _core.seal_reference_decrypt(keys.seal_parameters(), keys.seal_secret_key(), data[start:end])
    np.testing.assert_allclose(values, a + b, rtol=0, atol=keys.error_bound(2))


def test_file_round_trip(keys, rng, tmp_path):
    x = rng.uniform(-1, 1, 10_000).astype(np.float32)
    update = keys.encrypt(x)
    update.save(tmp_path / "u.fhto")
    loaded = fh.EncryptedUpdate.load(tmp_path / "u.fhto")
    assert loaded.to_bytes() == update.to_bytes()
    assert (loaded.value_count, loaded.ciphertext_count, loaded.mode) == (10_000, 3, "symmetric")
    np.testing.assert_allclose(keys.decrypt(loaded), x, rtol=0, atol=keys.error_bound(1))


@pytest.mark.parametrize("kind", [bytearray, memoryview, lambda b: np.frombuffer(b, dtype=np.uint8)])
def test_bytes_like_inputs(keys, pub, kind):
    data = keys.encrypt(np.ones(10), parties=2).to_bytes()
    np.testing.assert_allclose(keys.decrypt(kind(data)), np.ones(10), atol=1e-8)
    fh.Accumulator(pub).add(kind(data))
    assert fh.EncryptedUpdate.from_bytes(kind(data)).value_count == 10


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: b[:79], "shorter than the 80-byte header"),
        (lambda b: b"FHTOCKKZ" + b[8:], "bad magic"),
        (lambda b: b[:8] + b"\x01\x00" + b[10:], "unsupported batch format version 1; this build reads version 2"),
        (lambda b: b[:8] + b"\x03\x00" + b[10:], "unsupported batch format version 3"),
        (lambda b: b[:40] + b"\x09" + b[41:], "header is corrupted: checksum mismatch"),
        (lambda b: b[:-1], "batch is truncated"),
        (lambda b: b + b"\0", "batch is too long"),
    ],
)
def test_malformed_batches(keys, edit, message):
    data = keys.encrypt(np.ones(5000)).to_bytes()
    with pytest.raises(fh.FormatError, match=message):
        fh.EncryptedUpdate.from_bytes(edit(data))
    with pytest.raises(fh.FormatError, match=message):
        keys.decrypt(edit(data))


def test_header_lies_are_caught_even_with_a_valid_checksum(keys):
    data = bytearray(keys.encrypt(np.ones(5000)).to_bytes())
    lying = bytearray(data)
    struct.pack_into("<Q", lying, 32, 9000)  # 9000 values would need 3 ciphertexts, not 2
    with pytest.raises(fh.FormatError, match="declares 2 ciphertexts for 9000 values; expected 3"):
        keys.decrypt(reseal(lying))
    lying = bytearray(data)
    lying[10] = 2  # claims public-key ciphertexts, which are twice the size
    with pytest.raises(fh.FormatError, match="public_key ciphertexts of this context have"):
        keys.decrypt(reseal(lying))
    lying = bytearray(data)
    struct.pack_into("<Q", lying, 40, 2**61)
    with pytest.raises(fh.FormatError, match="impossible size"):
        fh.EncryptedUpdate.from_bytes(reseal_header(lying))


def test_decrypt_refuses_other_keys(keys, other_keys):
    with pytest.raises(fh.KeyMismatchError, match="batch fingerprint"):
        other_keys.decrypt(keys.encrypt(np.ones(3)))


def test_corrupted_ciphertext_is_detected_on_decrypt(keys):
    data = bytearray(keys.encrypt(np.ones(5000)).to_bytes())
    start, _ = ciphertext_span(data, 1)
    data[start + 300] ^= 1
    with pytest.raises(fh.FormatError, match="ciphertext 1 is corrupted"):
        keys.decrypt(bytes(data))


def test_packed_header_and_corruption(keys):
    data = bytearray(keys.encrypt(np.ones(5000), packed=True).to_bytes())
    h = parse_header(data)
    assert h["reserved"] == 1  # byte 11: packing
    assert h["ct_bytes"] == keys._core.ciphertext_bytes(_core.Mode.symmetric, _core.Packing.bits)
    start, _ = ciphertext_span(data, 1)
    data[start + 400] ^= 4
    with pytest.raises(fh.FormatError, match="ciphertext 1 is corrupted"):
        keys.decrypt(bytes(data))
    bad = bytearray(data)
    bad[11] = 2
    with pytest.raises(fh.FormatError, match="unknown packing 2"):
        fh.EncryptedUpdate.from_bytes(reseal_header(bad))


def test_packed_out_of_range_coefficient_is_refused_by_seal(keys):
    """Packed 60-bit fields can hold values >= the prime; SEAL's validity check refuses them."""
    data = bytearray(keys.encrypt(np.ones(5000), packed=True).to_bytes())
    start, _ = ciphertext_span(data, 0)
    word = start + 16 + 73 + 16 + 8  # first packed coefficient: 60 bits, all ones
    data[word : word + 7] = b"\xff" * 7
    data[word + 7] |= 0x0F
    with pytest.raises(fh.FormatError, match="ciphertext 0 is not a valid SEAL ciphertext"):
        keys.decrypt(reseal(data))


def _with_ciphertext(target: bytes, k: int, source: bytes, j: int) -> bytes:
    """target with its ciphertext k and check entry k replaced by source's ciphertext j and entry j."""
    buf = bytearray(target)
    t0, t1 = ciphertext_span(target, k)
    s0, s1 = ciphertext_span(source, j)
    buf[t0:t1] = source[s0:s1]
    entry = HEADER_BYTES + 4 * j
    buf[HEADER_BYTES + 4 * k : HEADER_BYTES + 4 * k + 4] = source[entry : entry + 4]
    return bytes(buf)


def _batches(keys, pub, x, y):
    """Pairs of same-shaped batches of every kind: (batch of x, batch of y)."""
    def total(v):
        return fh.aggregate([keys.encrypt(v, parties=4)] * 2, pub).to_bytes()

    return {
        "symmetric": (keys.encrypt(x, parties=4).to_bytes(), keys.encrypt(y, parties=4).to_bytes()),
        "packed": (keys.encrypt(x, parties=4, packed=True).to_bytes(), keys.encrypt(y, parties=4, packed=True).to_bytes()),
        "public_key": (pub.encrypt(x, parties=4).to_bytes(), pub.encrypt(y, parties=4).to_bytes()),
        "sum": (total(x), total(y)),
    }


def _refused_everywhere(keys, pub, data, match):
    acc = fh.Accumulator(pub)
    first = keys.encrypt(np.zeros(3 * 4096), parties=4)
    acc.add(first)
    with pytest.raises(fh.FormatError, match=match):
        keys.decrypt(data)
    with pytest.raises(fh.FormatError, match=match):
        acc.add(data)
    assert acc.contributions == 1
    np.testing.assert_allclose(keys.decrypt(acc.result()), 0.0, atol=keys.error_bound(1, max_abs=0))


def test_swapped_ciphertexts_with_their_checks_are_refused(keys, pub, rng):
    """A transport that reorders chunks, or a swap of two ciphertexts together with their
    check entries, used to decrypt to a silently wrong update."""
    x, y = rng.uniform(-1, 1, (2, 3 * 4096))
    for name, (a, _) in _batches(keys, pub, x, y).items():
        swapped = _with_ciphertext(_with_ciphertext(a, 0, a, 2), 2, a, 0)
        assert swapped != a, name
        _refused_everywhere(keys, pub, swapped, "ciphertext 0 is corrupted: checksum mismatch")


def test_a_ciphertext_spliced_in_from_another_batch_is_refused(keys, pub, rng):
    x, y = rng.uniform(-1, 1, (2, 3 * 4096))
    for name, (a, b) in _batches(keys, pub, x, y).items():
        for k in range(3):
            _refused_everywhere(keys, pub, _with_ciphertext(a, k, b, k), f"ciphertext {k} is corrupted")
    # Same values, same position, another encryption: still another batch.
    a, b = keys.encrypt(x, parties=4).to_bytes(), keys.encrypt(x, parties=4).to_bytes()
    _refused_everywhere(keys, pub, _with_ciphertext(a, 1, b, 1), "ciphertext 1 is corrupted")


def test_batch_identifiers_are_fresh_unless_the_encryption_is_seeded(keys, pub, rng):
    x = rng.uniform(-1, 1, 5000)
    ids = {parse_header(keys.encrypt(x).to_bytes())["batch_id"] for _ in range(5)}
    assert len(ids) == 5
    sums = {parse_header(fh.aggregate([keys.encrypt(x, parties=2)], pub).to_bytes())["batch_id"] for _ in range(3)}
    assert len(sums) == 3
    seeded = [parse_header(keys.encrypt(x, seed=s).to_bytes())["batch_id"] for s in (5, 5, 6)]
    assert seeded[0] == seeded[1] != seeded[2]
    assert fh.EncryptedUpdate.from_bytes(keys.encrypt(x, seed=5).to_bytes()).to_bytes() == keys.encrypt(x, seed=5).to_bytes()


def test_what_the_checks_cannot_catch_one_seed_reused_for_two_updates(keys, rng):
    """Documented limitation: two updates encrypted with the same seed share their batch
    identifier (and their mask, which is the real problem), so a ciphertext moved between them at
    the same position passes its check. Never reuse an encryption seed."""
    x, y = rng.uniform(-1, 1, (2, 2 * 4096))
    a, b = keys.encrypt(x, seed=9).to_bytes(), keys.encrypt(y, seed=9).to_bytes()
    spliced = keys.decrypt(_with_ciphertext(a, 1, b, 1))
    np.testing.assert_allclose(spliced[4096:], y[4096:], atol=keys.error_bound(1, max_abs=1.0))


@pytest.mark.parametrize("n, bits", [(1024, 24), (2048, 40), (2048, 48)])
def test_whole_byte_packing_stays_inside_each_limb(n, bits, rng):
    # Coefficients of 3, 5 or 6 bytes: the packer's 8-byte stores must never run past a limb (a
    # 24-bit prime once wrote 2 bytes into the next ciphertext's slot).
    keys = fh.KeySet.generate(fh.Params(n, (bits,), bits - 8, packed=True), seed=5)
    x = rng.uniform(-1, 1, 5 * n + 3)
    for mode in ("public_key", "symmetric"):
        batch = keys.encrypt(x, mode=mode, threads=4)
        assert np.max(np.abs(keys.decrypt(batch) - x)) <= keys.error_bound(1, mode, max_abs=1.0)


PACK_CODE = """
import hashlib, numpy as np, fhto_native as fh
rng = np.random.default_rng(2)
digest = hashlib.sha256()
for preset in ("aggregation", "compact", "conservative", "threshold"):
    keys = fh.KeySet.generate(preset, seed=3)
    x = rng.uniform(-1, 1, 4 * keys.values_per_ciphertext + 9)  # 5 ciphertexts: the engine's record paths
    batch = keys.encrypt(x, packed=True, seed=4, parties=2)
    total = keys.sum([batch, keys.encrypt(x, packed=True, seed=5, parties=2)])
    assert np.abs(keys.decrypt(batch) - x).max() <= keys.error_bound(1, max_abs=1.0)
    digest.update(batch.to_bytes() + total.to_bytes()[80 + 4 * 5:] + keys.decrypt(total).tobytes())
print(digest.hexdigest())
"""


def test_packing_paths_write_and_read_the_same_bytes():
    """The whole-byte widths' AVX-512 VBMI loops and the scalar ones (FHTO_PACK=scalar): the same
    packed records, sums and decrypted values on every preset."""
    digests = [
        subprocess.run([sys.executable, "-c", PACK_CODE], env=dict(os.environ, FHTO_PACK=path), check=True,
                       capture_output=True, text=True).stdout.strip()
        for path in ("", "scalar")
    ]
    assert len(digests[0]) == 64 and digests[0] == digests[1]
