"""The engine encodes on its own (SEAL's index map, inverse FFT, rounding and exact reduction, then
its own NTT): whole seeded encryptions are the very bytes SEAL's encoder gives (FHTO_ENCODE=seal
forces SEAL's encoder)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

CODE = """
import hashlib, numpy as np, fhto_native as fh
rng = np.random.default_rng(6)
digest = hashlib.sha256()
for preset in ("aggregation", "compact", "conservative", "threshold"):
    keys = fh.KeySet.generate(preset, seed=5)
    n = keys.params.poly_modulus_degree
    for dtype in (np.float32, np.float64):
        for mode in ("symmetric", "public_key"):
            for packed in (False, True):
                scale = 0.9 * keys.max_abs_value(2, mode) if dtype == np.float64 else 1.0
                x = (rng.uniform(-1, 1, 3 * n + 5) * scale / 1.5).astype(dtype)  # 4 ciphertexts
                digest.update(keys.encrypt(x, mode=mode, packed=packed, weight=1.5, parties=2, seed=11).to_bytes())
print(digest.hexdigest())
"""


@pytest.mark.parametrize("path", ["", "scalar", "avx"])
def test_the_engines_encoder_gives_seals_bytes(path):
    digests = {}
    for name, encode in (("engine", ""), ("seal", "seal")):
        env = dict(os.environ, FHTO_ENCODE=encode or (path if path == "scalar" else ""), FHTO_NTT=path, FHTO_FFT=path)
        digests[name] = subprocess.run([sys.executable, "-c", CODE], env=env, check=True, capture_output=True,
                                       text=True).stdout.strip()
    assert len(digests["engine"]) == 64 and digests["engine"] == digests["seal"]
    assert hashlib.sha256(b"").hexdigest() != digests["engine"]
