"""The CUDA path: its arithmetic checked on the host against SEAL in every build, the kernels on a
GPU when there is one (skipped otherwise)."""
from __future__ import annotations

import pytest

import fhto_native as fh
from fhto_native import cuda
from fhto_native.errors import DeviceError


@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative", "threshold"])
def test_cuda_ntt_arithmetic_matches_seal_on_the_host(preset):
    keys = fh.KeySet.generate(preset, seed=1)
    primes = len(keys.params.coeff_modulus_bits) - (1 if len(keys.params.coeff_modulus_bits) > 1 else 0)
    assert cuda.check_host(keys.public_context(), trials=3) == 3 * primes


def test_cuda_reports_its_build_and_no_device_without_a_gpu(keys, rng):
    assert isinstance(cuda.compiled(), bool)
    if not cuda.available():
        assert cuda.device() == ""
        with pytest.raises(DeviceError, match="no usable CUDA device|no CUDA path"):
            cuda.check_device(keys.public_context())
    # The CPU path is unaffected either way.
    x = rng.uniform(-1, 1, 5000)
    assert abs(keys.decrypt(keys.encrypt(x)) - x).max() <= keys.error_bound(1, max_abs=1.0)


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", ["compact", "threshold"])
def test_gpu_ntt_matches_seal(preset):
    keys = fh.KeySet.generate(preset, seed=2)
    assert cuda.check_device(keys.public_context(), trials=16) >= 16


def test_cuda_blake2xb_matches_the_engines_stream_on_the_host():
    assert cuda.check_blake2(trials=3) == 3


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
def test_gpu_blake2xb_matches_the_engines_stream():
    assert cuda.check_blake2(trials=64, device=True) == 64


@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative", "threshold"])
def test_cuda_uniform_expansion_matches_the_engine_on_the_host(preset):
    keys = fh.KeySet.generate(preset, seed=3)
    assert cuda.check_uniform(keys.public_context(), trials=2) == 2


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
def test_gpu_uniform_expansion_matches_the_engine():
    keys = fh.KeySet.generate("compact", seed=3)
    assert cuda.check_uniform(keys.public_context(), trials=32, device=True) == 32


@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative", "threshold"])
def test_cuda_noise_and_packing_match_seal_and_the_engine_on_the_host(preset):
    keys = fh.KeySet.generate(preset, seed=4)
    packable = keys.public_context()._core.ciphertext_bytes(fh._core.Mode.public_key, fh._core.Packing.bits) > 0
    assert cuda.check_sampling(keys.public_context(), trials=2) == (4 if packable else 2)
