"""The private noise source of secret-key encryption: the AES-256-CTR keystream (NIST SP 800-38A)
on every forced path, the choice between it and SEAL's Blake2xb stream, and encryptions that
draw from it: reproducible for a seed, decryptable, and with SEAL's noise distribution."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core

AES = _core.aes_ctr_backend() != "none"
needs_aes = pytest.mark.skipif(not AES, reason="this CPU has no AES instructions")

# NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt: key, initial counter block, plaintext, ciphertext.
KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
COUNTER = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
CIPHER = bytes.fromhex(
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
)


def _keystream_kat() -> bytes:
    return bytes(p ^ c for p, c in zip(PLAIN, CIPHER))


@needs_aes
def test_the_stream_is_sp800_38a_aes256_ctr():
    assert _core.aes_ctr_stream(KEY + COUNTER + bytes(16), 64) == _keystream_kat()
    assert _core.aes_ctr_stream(KEY + COUNTER + b"\xff" * 16, 64) == _keystream_kat()  # words 6-7 unused


@needs_aes
def test_the_stream_matches_an_independent_aes_and_carries_the_counter():
    cryptography = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    rng = np.random.default_rng(3)
    for counter in (rng.bytes(16), bytes(8) + b"\xff" * 8, b"\xff" * 16):
        key = rng.bytes(32)
        ours = _core.aes_ctr_stream(key + counter + bytes(16), 24 * 1024 + 5)
        enc = cryptography.Cipher(cryptography.algorithms.AES(key), cryptography.modes.CTR(counter)).encryptor()
        assert ours == enc.update(bytes(len(ours))) + enc.finalize()


@needs_aes
@pytest.mark.parametrize("path", ["aesni", "vaes256", "vaes512"])
def test_every_forced_path_gives_the_same_stream(path):
    seed = bytes(range(64))
    code = (
        "import sys; from fhto_native import _core; "
        f"sys.stdout.write(_core.aes_ctr_backend() + ' ' + _core.aes_ctr_stream({KEY + COUNTER + bytes(16)!r}, 64).hex()"
        f" + ' ' + _core.aes_ctr_stream({seed!r}, 30000).hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FHTO_AES=path),
                         check=True, capture_output=True, text=True).stdout.split()
    assert out[0] in ("aesni", "vaes256", "vaes512")
    assert ("aesni", "vaes256", "vaes512").index(out[0]) <= ("aesni", "vaes256", "vaes512").index(path)
    assert bytes.fromhex(out[1]) == _keystream_kat()
    assert bytes.fromhex(out[2]) == _core.aes_ctr_stream(seed, 30000)


def test_bad_seeds_are_refused():
    with pytest.raises(fh.ParameterError, match="64 bytes"):
        _core.aes_ctr_stream(b"short", 16)


def test_seeded_encryption_uses_seals_stream_and_random_encryption_aes_where_available():
    assert _core.noise_source(True) == "seal"
    assert _core.noise_source(False) == ("aes_ctr" if AES else "seal")


@pytest.mark.parametrize("forced, seeded, random", [("seal", "seal", "seal"), ("aes", "aes_ctr", "aes_ctr")])
def test_fhto_noise_forces_a_source(forced, seeded, random):
    if forced == "aes" and not AES:
        pytest.skip("this CPU has no AES instructions")
    code = "from fhto_native import _core; print(_core.noise_source(True), _core.noise_source(False))"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FHTO_NOISE=forced),
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == [seeded, random]


# Forced AES noise on seeded encryptions: the same seed gives the same bytes, other bytes than
# SEAL's stream gives, and every batch decrypts within the stated bound.
AES_SEEDED = """
import hashlib, sys, numpy as np, fhto_native as fh
keys = fh.KeySet.generate("compact", seed=4)
x = np.random.default_rng(5).uniform(-1, 1, 5 * 4096 + 7)
a, b = keys.encrypt(x, seed=8), keys.encrypt(x, seed=8)
err = float(np.abs(keys.decrypt(a) - x).max())
print(hashlib.sha256(a.to_bytes()).hexdigest(), a.to_bytes() == b.to_bytes(), err <= keys.error_bound(1, max_abs=1.0))
"""


@needs_aes
def test_aes_noise_is_reproducible_for_a_seed_and_decrypts():
    runs = {}
    for forced in ("aes", "seal"):
        runs[forced] = subprocess.run([sys.executable, "-c", AES_SEEDED], env=dict(os.environ, FHTO_NOISE=forced),
                                      check=True, capture_output=True, text=True).stdout.split()
    assert runs["aes"][1:] == ["True", "True"] and runs["seal"][1:] == ["True", "True"]
    assert runs["aes"][0] != runs["seal"][0]


@needs_aes
def test_aes_noise_has_seals_distribution():
    """Zeros encrypted and decrypted give the noise alone: the same spread from either source."""
    keys = fh.KeySet.generate("compact", seed=6)
    zeros = np.zeros(64 * keys.values_per_ciphertext)
    aes = keys.decrypt(keys.encrypt(zeros))  # random: AES-CTR
    seal = keys.decrypt(keys.encrypt(zeros, seed=7))  # seeded: SEAL's Blake2xb
    assert _core.noise_source(False) == "aes_ctr"
    assert np.std(seal) > 0 and abs(np.mean(aes)) < 4 * np.std(aes) / np.sqrt(aes.size)
    assert 0.97 < np.std(aes) / np.std(seal) < 1.03
