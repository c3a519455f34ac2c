"""The engine computes SEAL's seeded encryption and seed expansion itself (a faster PRNG
evaluation of the same algorithm); these tests hold it to SEAL bit for bit."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core

from conftest import HEADER_BYTES


@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative"])
def test_prng_sampling_encryption_and_loading_match_seal(preset):
    keys = fh.KeySet.generate(preset)
    assert _core.check_against_seal(keys._core, 25) == 100
    assert _core.check_against_seal(keys.public_context()._core, 5) == 10  # no secret key: PRNG and sampling


@pytest.mark.parametrize("backend", ["scalar", "avx2"])
def test_every_simd_path_matches_seal(backend):
    code = (
        "import fhto_native as fh; from fhto_native import _core; "
        "k = fh.KeySet.generate('compact'); "
        "print(_core.BLAKE2XB_BACKEND, _core.check_against_seal(k._core, 10))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FHTO_BLAKE2XB=backend),
                         check=True, capture_output=True, text=True).stdout.split()
    assert out[1] == "40"
    assert out[0] in (backend, "scalar")  # a CPU without AVX2 falls back to scalar


def test_seal_loads_engine_ciphertexts_and_the_engine_loads_seals(keys, rng):
    """Round trip across implementations: SEAL's own loader expands the engine's seeds."""
    x = rng.uniform(-1, 1, 4096)
    data = keys.encrypt(x, packed=False).to_bytes()
    start = HEADER_BYTES + 4
    values = _core.seal_reference_decrypt(keys.seal_parameters(), keys.seal_secret_key(), data[start:])
    np.testing.assert_allclose(values, x, rtol=0, atol=keys.error_bound(1))
