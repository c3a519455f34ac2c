"""The stated range and error bound hold at the edge of every preset's range.

``max_abs_value(P)`` must admit nothing that SEAL's encoder refuses or that overflows the sum,
and ``error_bound(P, max_abs=M)`` must hold for every input up to M, M = max_abs_value(P) by
default. Each pattern below is encrypted at exactly the limit.
"""
from __future__ import annotations

import numpy as np
import pytest

import fhto_native as fh

PRESETS = ["aggregation", "compact", "conservative"]


@pytest.fixture(scope="module", params=PRESETS)
def preset_keys(request) -> fh.KeySet:
    return fh.KeySet.generate(request.param)


def slot_roots(n: int) -> np.ndarray:
    """The roots of unity SEAL's CKKS slots evaluate at: slot j at exp(i*pi*g_j/n), g_j = 3^j mod 2n
    (SEAL's CKKSEncoder orders its slots by powers of the generator 3)."""
    g = np.empty(n // 2, dtype=np.int64)
    g[0] = 1
    for j in range(1, n // 2):
        g[j] = g[j - 1] * 3 % (2 * n)
    return np.exp(1j * np.pi * g / n)


def coefficient_maximizing(n: int, limit: float, coefficient: int = 1) -> np.ndarray:
    """Values in [-limit, limit] whose encoding has one coefficient as large as it can be.

    Coefficient i of the encoding is (2/n) * sum_j Re(z_j * root_j^-i); choosing each slot's real
    and imaginary parts with the signs of that root's cosine and sine aligns every term, which
    drives coefficient i to about 4/pi * limit (the bound the range assumes is sqrt(2) * limit).
    """
    w = slot_roots(n) ** (-coefficient)
    values = np.empty(n)
    values[0::2] = limit * np.where(w.real >= 0, 1.0, -1.0)
    values[1::2] = limit * np.where(w.imag >= 0, -1.0, 1.0)  # Re(z * w) = re * w.re - im * w.im
    return values


def patterns(n: int, limit: float, rng: np.random.Generator) -> dict:
    return {
        "constant": np.full(n, limit),
        "alternating": np.resize([limit, -limit], n),
        "random signs": limit * rng.choice([-1.0, 1.0], n),
        "uniform": rng.uniform(-limit, limit, n),
        "one coefficient": coefficient_maximizing(n, limit),
        "middle coefficient": coefficient_maximizing(n, limit, n // 2 + 1),
    }


@pytest.mark.parametrize("mode", ["symmetric", "public_key"])
@pytest.mark.parametrize("parties", [1, 2, 3])
def test_every_pattern_at_the_limit_encrypts_sums_and_decrypts_within_the_bound(preset_keys, parties, mode):
    keys = preset_keys
    n = keys.values_per_ciphertext
    limit = keys.max_abs_value(parties, mode)
    bound = keys.error_bound(parties, mode)
    pub = keys.public_context()
    for name, x in patterns(n, limit, np.random.default_rng(parties)).items():
        assert np.abs(x).max() <= limit
        acc = fh.Accumulator(pub)
        for _ in range(parties):
            acc.add(keys.encrypt(x, parties=parties, mode=mode))
        error = np.abs(keys.decrypt(acc.result()) - parties * x).max()
        assert error <= bound, f"{name}: error {error:.3g} above the stated bound {bound:.3g}"


def test_just_above_the_limit_is_a_range_error(preset_keys):
    keys = preset_keys
    for parties in (1, 2, 100):
        x = coefficient_maximizing(keys.values_per_ciphertext, keys.max_abs_value(parties) * (1 + 1e-6))
        with pytest.raises(fh.ValueRangeError, match="exceeds the limit"):
            keys.encrypt(x, parties=parties)


def test_dense_values_at_0_8_of_the_one_party_limit_encrypt():
    """The reported case: SEAL refused 0.8 * max_abs_value(1) with an untyped ValueError."""
    keys = fh.KeySet.generate("aggregation")
    x = np.full(4096, 0.8 * keys.max_abs_value(1))
    np.testing.assert_allclose(keys.decrypt(keys.encrypt(x)), x, rtol=0, atol=keys.error_bound(1))


def test_the_one_party_limit_is_the_encoders():
    """One contribution is limited by SEAL's encoder (2^(B-2)), two or more by the sum's modulus."""
    keys = fh.KeySet.generate("aggregation")
    q = float(keys._core.coeff_modulus[0])
    scale = 2.0**keys.params.scale_bits
    encoder_limit = 2.0 ** (int(q).bit_length() - 2) / (np.sqrt(2) * scale)
    assert keys.max_abs_value(1) == pytest.approx(encoder_limit, rel=1e-8)
    assert keys.max_abs_value(3) == pytest.approx((q / 6 - 22) / (np.sqrt(2) * scale), rel=1e-8)


@pytest.mark.parametrize("magnitude", [1e3, 1e10, 1e12, 1e20])
def test_conservative_sum_of_large_values_within_the_value_dependent_bound(magnitude):
    """The reported case: two encryptions of uniform(-1e10, 1e10) were off by 1.2e-5 against a
    stated 3.3e-7; the error grows with the values and the bound now says so."""
    keys = fh.KeySet.generate("conservative")
    rng = np.random.default_rng(8)
    a, b = rng.uniform(-magnitude, magnitude, (2, 8192))
    total = fh.aggregate([keys.encrypt(a, parties=2), keys.encrypt(b, parties=2)], keys.public_context())
    error = np.abs(keys.decrypt(total) - (a + b)).max()
    assert error <= keys.error_bound(2, max_abs=magnitude)
    assert keys.error_bound(2, max_abs=magnitude) <= keys.error_bound(2)


def test_error_bound_grows_with_the_values_and_defaults_to_the_whole_range(preset_keys):
    keys = preset_keys
    small, large = keys.error_bound(2, max_abs=1.0), keys.error_bound(2, max_abs=keys.max_abs_value(2))
    assert 0 < small < large == keys.error_bound(2)
    assert keys.error_bound(2, max_abs=0) > 0  # noise alone
    assert keys.error_bound(4, "public_key", max_abs=1.0) > keys.error_bound(4, max_abs=1.0)


@pytest.mark.parametrize(
    "max_abs, error",
    [(-1.0, fh.ParameterError), (float("nan"), fh.ParameterError), (float("inf"), fh.ParameterError),
     (1e300, fh.ParameterError), ("1", fh.InputTypeError), (True, fh.InputTypeError)],
)
def test_error_bound_refuses_bad_magnitudes(keys, max_abs, error):
    with pytest.raises(error, match="max_abs"):
        keys.error_bound(1, max_abs=max_abs)
