"""The engine's own NTT: every path equals SEAL's ntt_negacyclic_harvey bit for bit, alone and
inside seeded encryption (which SEAL reproduces byte for byte)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import fhto_native as fh
from fhto_native import _core


def test_the_default_path_matches_seal_on_every_preset():
    for preset in ("aggregation", "compact", "conservative", "threshold"):
        keys = fh.KeySet.generate(preset, seed=1)
        limbs = len(keys.params.coeff_modulus_bits) - (1 if len(keys.params.coeff_modulus_bits) > 1 else 0)
        assert _core.ntt_check(keys._core, 12) == 12 * limbs
    assert _core.ntt_backend() in ("avx512vl", "avx512", "scalar")


@pytest.mark.parametrize("backend", ["scalar", "avx512vl", "avx512"])
def test_every_path_matches_seal_alone_and_inside_encryption(backend):
    code = (
        "import fhto_native as fh; from fhto_native import _core; "
        "k = fh.KeySet.generate('conservative', seed=2); c = fh.KeySet.generate('compact', seed=3); "
        "print(_core.ntt_backend(), _core.ntt_check(k._core, 8), _core.ntt_check(c._core, 8), "
        "_core.check_against_seal(c._core, 6))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FHTO_NTT=backend),
                         check=True, capture_output=True, text=True).stdout.split()
    assert out[1:] == ["24", "8", "24"]
    assert out[0] in (backend, "scalar")  # a CPU without AVX-512VL/DQ falls back to scalar
