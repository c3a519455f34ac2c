from __future__ import annotations

import os
import stat
import struct

import numpy as np
import pytest

import fhto_native as fh
from conftest import reseal, reseal_context


def test_secret_key_file_round_trip_is_private(keys, tmp_path, rng):
    path = tmp_path / "hospital.keys"
    keys.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = fh.KeySet.load(path)
    assert loaded.fingerprint == keys.fingerprint
    x = rng.uniform(-1, 1, 5000)
    np.testing.assert_allclose(loaded.decrypt(keys.encrypt(x)), x, rtol=0, atol=keys.error_bound(1))
    np.testing.assert_allclose(keys.decrypt(loaded.encrypt(x)), x, rtol=0, atol=keys.error_bound(1))


def test_overwriting_a_readable_file_makes_it_private(keys, tmp_path):
    path = tmp_path / "hospital.keys"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    keys.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp-*"))


def test_public_context_round_trip_holds_no_secret(keys, tmp_path, rng):
    pub = keys.public_context()
    path = tmp_path / "server.ctx"
    pub.save(path)
    data = path.read_bytes()
    assert keys.seal_secret_key() not in data
    assert data[:8] == b"FHTOPCTX"
    loaded = fh.PublicContext.load(path)
    assert loaded.fingerprint == keys.fingerprint
    assert not hasattr(loaded, "decrypt")
    x = rng.uniform(-1, 1, 100)
    total = fh.aggregate([keys.encrypt(x, parties=2), loaded.encrypt(x, parties=2)], loaded)
    np.testing.assert_allclose(keys.decrypt(total), 2 * x, rtol=0, atol=keys.error_bound(2, "public_key"))


def test_roles_are_not_confused(keys):
    with pytest.raises(fh.FormatError, match="secret key set; a server must get only the public context"):
        fh.PublicContext.from_bytes(keys.to_bytes())
    with pytest.raises(fh.FormatError, match="public context without a secret key"):
        fh.KeySet.from_bytes(keys.public_context().to_bytes())


def test_params_survive_the_round_trip(conservative_keys):
    loaded = fh.KeySet.from_bytes(conservative_keys.to_bytes())
    assert loaded.params == conservative_keys.params == fh.CONSERVATIVE


def sections(data: bytes) -> list[tuple[int, int]]:
    spans, pos = [], 40
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        spans.append((pos + 8, pos + 8 + n))
        pos += 8 + n
    return spans


def test_a_foreign_secret_key_is_refused(keys, other_keys):
    mine, theirs = keys.to_bytes(), other_keys.to_bytes()
    (s0, e0), (s1, e1), (s2, e2) = sections(mine)
    (t0, u0), (t1, u1), (t2, u2) = sections(theirs)
    assert e2 - s2 == u2 - t2
    forged = mine[:s2] + theirs[t2:u2] + mine[e2:]
    with pytest.raises(fh.FormatError, match="secret key does not match its public key"):
        fh.KeySet.from_bytes(reseal_context(forged))


def test_a_swapped_public_key_breaks_the_fingerprint(keys, other_keys):
    mine, theirs = keys.public_context().to_bytes(), other_keys.public_context().to_bytes()
    (s0, e0), (s1, e1) = sections(mine)
    (t0, u0), (t1, u1) = sections(theirs)
    forged = mine[:s1] + theirs[t1:u1]
    with pytest.raises(fh.FormatError, match="fingerprint does not match"):
        fh.PublicContext.from_bytes(reseal_context(forged))


def test_corrupted_and_truncated_key_files(keys):
    data = keys.to_bytes()
    with pytest.raises(fh.FormatError, match="checksum mismatch"):
        fh.KeySet.from_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(fh.FormatError):
        fh.KeySet.from_bytes(data[:-10])
    with pytest.raises(fh.FormatError, match="shorter than the 40-byte header"):
        fh.KeySet.from_bytes(data[:39])
    with pytest.raises(fh.FormatError, match="bad magic"):
        fh.KeySet.from_bytes(b"X" + data[1:])


def test_insecure_stored_parameters_are_refused(keys):
    """A context file whose SEAL parameters exceed the security bound is refused on load."""
    insecure = fh.KeySet.generate(fh.Params(2048, (54,), 30)).public_context().to_bytes()
    # Rewrite N=2048 -> 1024 inside SEAL's parameter blob: 54 bits exceeds the 27-bit bound.
    (s0, e0), _ = sections(insecure)
    blob = insecure[s0:e0]
    assert blob.count(struct.pack("<Q", 2048)) == 1
    forged = insecure[:s0] + blob.replace(struct.pack("<Q", 2048), struct.pack("<Q", 1024)) + insecure[e0:]
    with pytest.raises(fh.ParameterError, match="log2 q = 54 bits exceeds the 128-bit security bound of 27 bits for N=1024"):
        fh.PublicContext.from_bytes(reseal_context(forged))


def test_a_ciphertext_under_a_foreign_key_with_a_copied_fingerprint_is_refused(keys, other_keys, rng):
    # Today's headers can be rewritten by anyone (CRC-32C is not a MAC); decryption still refuses
    # the noise such a batch decodes to, instead of returning it.
    x = rng.uniform(-1, 1, 5000)
    forged = bytearray(other_keys.encrypt(x, parties=3).to_bytes())
    forged[16:32] = bytes.fromhex(keys.fingerprint)
    with pytest.raises(fh.ValueRangeError, match="implausible"):
        keys.decrypt(reseal(bytes(forged)))
    summed = fh.aggregate([keys.encrypt(x, parties=3) for _ in range(3)], keys.public_context())
    np.testing.assert_allclose(keys.decrypt(summed), 3 * x, atol=keys.error_bound(3, max_abs=1.0))
