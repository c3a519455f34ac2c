from __future__ import annotations

import pytest

import fhto_native as fh
from fhto_native.errors import FhtoError, ParameterError


def test_presets_are_secure_and_describe_themselves():
    for name, p in fh.PRESETS.items():
        assert p.name == name
        assert sum(p.coeff_modulus_bits) <= fh.SECURITY_BOUNDS[p.poly_modulus_degree]
        assert name in p.describe()
    assert fh.AGGREGATION.coeff_modulus_bits == (60,)  # single prime: no key switching
    assert fh.AGGREGATION.values_per_ciphertext == 4096


def test_security_bounds_match_the_standard():
    assert fh.SECURITY_BOUNDS == {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}


@pytest.mark.parametrize(
    "n, bits",
    [(4096, (60, 50)), (8192, (60, 60, 59, 40)), (16384, (60,) * 6 + (59, 20)), (32768, (60,) * 14 + (42,))],
)
def test_insecure_parameters_are_refused_with_the_bound(n, bits):
    bound = fh.SECURITY_BOUNDS[n]
    assert sum(bits) == bound + 1
    with pytest.raises(ParameterError, match=rf"log2 q = {bound + 1} bits exceeds .* bound of {bound} bits for N={n}"):
        fh.Params(n, bits, 30)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(poly_modulus_degree=5000, coeff_modulus_bits=(60,), scale_bits=40), "poly_modulus_degree must be one of"),
        (dict(poly_modulus_degree=4096, coeff_modulus_bits=(), scale_bits=40), "non-empty"),
        (dict(poly_modulus_degree=4096, coeff_modulus_bits=(61,), scale_bits=40), r"coeff_modulus_bits\[0\] must be between 20 and 60"),
        (dict(poly_modulus_degree=4096, coeff_modulus_bits=(60,), scale_bits=59), "scale_bits must be between 1 and 58"),
        (dict(poly_modulus_degree=8192, coeff_modulus_bits=(60, 40, 60), scale_bits=99), "scale_bits must be between 1 and 98"),
        (dict(poly_modulus_degree=4096, coeff_modulus_bits=(60,), scale_bits=0), "scale_bits must be between"),
        (dict(poly_modulus_degree="4096", coeff_modulus_bits=(60,), scale_bits=40), "must be an int"),
    ],
)
def test_invalid_parameters_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        fh.Params(**kwargs)


def test_parameter_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        fh.Params(4096, (60, 60), 40)
    assert issubclass(ParameterError, FhtoError)


def test_get_params_resolves_names_and_refuses_unknown():
    assert fh.get_params(None) is fh.AGGREGATION
    assert fh.get_params("conservative") is fh.CONSERVATIVE
    with pytest.raises(ParameterError, match="unknown parameter preset 'fast'"):
        fh.get_params("fast")


def test_custom_parameters_generate_working_keys(rng):
    p = fh.Params(2048, (54,), 30)
    keys = fh.KeySet.generate(p)
    assert keys.params.poly_modulus_degree == 2048
    x = rng.uniform(-1, 1, 5000)
    out = keys.decrypt(keys.encrypt(x))
    assert abs(out - x).max() <= keys.error_bound(1)


def test_nominal_range_matches_the_exact_one(keys):
    nominal = fh.AGGREGATION.max_abs_value(10)
    exact = keys.max_abs_value(10)
    assert 0.5 < exact / nominal < 1.01
