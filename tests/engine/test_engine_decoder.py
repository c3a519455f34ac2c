"""The engine decrypts and decodes on its own (m = c0 + c1 s, its inverse NTT, SEAL's doubles and
FFT): the very doubles SEAL's Decryptor and CKKSEncoder give (FHTO_DECRYPT=seal forces SEAL's)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

CODE = """
import sys, numpy as np, fhto_native as fh
rng = np.random.default_rng(5)
out = []
for preset in ("aggregation", "compact", "conservative", "threshold"):
    keys = fh.KeySet.generate(preset, seed=4)
    n = keys.params.poly_modulus_degree
    big = 0.9 * keys.max_abs_value(1)
    for mode in ("symmetric", "public_key"):
        for packed in (False, True):
            x = rng.uniform(-1, 1, 4 * n + 3) * (big if preset == "conservative" else 1.0)  # 5 ciphertexts
            out.append(keys.decrypt(keys.encrypt(x, mode=mode, packed=packed, seed=9)))
    total = keys.sum([keys.encrypt(rng.uniform(-1, 1, 4 * n), parties=3, seed=s) for s in range(3)])
    out.append(keys.decrypt(total))
np.save(sys.argv[1], np.concatenate(out))
"""


@pytest.mark.parametrize("path", ["", "scalar", "avx"])
def test_the_engines_decoder_gives_seals_doubles(tmp_path, path):
    files = {}
    for name, decrypt in (("engine", ""), ("seal", "seal")):
        files[name] = tmp_path / f"{name}.npy"
        env = dict(os.environ, FHTO_DECRYPT=decrypt, FHTO_NTT=path, FHTO_FFT=path)
        subprocess.run([sys.executable, "-c", CODE, str(files[name])], env=env, check=True)
    engine, seal = np.load(files["engine"]), np.load(files["seal"])
    assert engine.shape == seal.shape and engine.size > 100_000
    assert np.array_equal(engine, seal)
