"""Every bad-input path: the exception type and its message."""
from __future__ import annotations

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import errors


def test_hierarchy_roots_at_one_base_and_matches_builtins():
    pairs = {
        errors.ParameterError: ValueError,
        errors.ValueRangeError: ValueError,
        errors.KeyMismatchError: ValueError,
        errors.LengthMismatchError: ValueError,
        errors.FormatError: ValueError,
        errors.ShapeError: ValueError,
        errors.InputTypeError: TypeError,
        errors.SecretKeyRequiredError: PermissionError,
        errors.DecryptionRefusedError: PermissionError,
        errors.DeviceError: RuntimeError,
        errors.DataError: ValueError,
        errors.StorageError: OSError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, errors.FhtoError) and issubclass(cls, builtin), cls
    assert set(errors.__all__) == {c.__name__ for c in pairs} | {"FhtoError"}


@pytest.mark.parametrize("bad, word", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_values_name_the_first_bad_index(keys, bad, word, dtype):
    x = np.zeros(100_000, dtype=dtype)
    x[70_017] = bad
    x[90_000] = np.nan
    with pytest.raises(fh.ValueRangeError, match=rf"values must be finite: index 70017 is {word}$"):
        keys.encrypt(x)


def test_values_too_large_for_one_party(keys):
    limit = keys.max_abs_value(1)
    x = np.zeros(10)
    x[3] = limit * 1.01
    with pytest.raises(fh.ValueRangeError, match=r"at index 3 exceeds the limit .* for a sum of 1 contribution"):
        keys.encrypt(x)


def test_values_too_large_for_the_number_of_parties(keys):
    limit100 = keys.max_abs_value(100)
    x = np.full(10, limit100 * 1.5)
    keys.encrypt(x, parties=1)  # fine alone
    with pytest.raises(fh.ValueRangeError, match="for a sum of 100 contribution"):
        keys.encrypt(x, parties=100)


def test_weight_counts_towards_the_range(keys):
    x = np.full(10, keys.max_abs_value(1) / 10)
    keys.encrypt(x, weight=9)
    with pytest.raises(fh.ValueRangeError, match="weight"):
        keys.encrypt(x, weight=11)


@pytest.mark.parametrize(
    "values, message",
    [
        (np.arange(5), "float16, float32 or float64 array; got int64"),
        (np.ones(5, dtype=np.complex128), "got complex128"),
        (np.ones(5, dtype=bool), "got bool"),
        (np.array(["a", "b"]), "float16, float32 or float64"),
        (["a", "b"], "must hold only numbers"),
        ({"w": 1.0}, "numpy array or a CPU torch tensor; got float"),
        (3.0, "got float"),
        (None, "got NoneType"),
    ],
)
def test_wrong_types_raise_type_error(keys, values, message):
    with pytest.raises(fh.InputTypeError, match=message) as info:
        keys.encrypt(values)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "values, message",
    [
        (np.ones((3, 4)), r"one-dimensional .* shape \(3, 4\)"),
        (np.ones((0,)), "empty"),
        (np.array(1.0), r"shape \(\)"),
        ([], "empty"),
    ],
)
def test_wrong_shapes_raise_value_error(keys, values, message):
    with pytest.raises(fh.ShapeError, match=message) as info:
        keys.encrypt(values)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(weight=0), fh.ParameterError, "weight must be finite and non-zero"),
        (dict(weight=float("nan")), fh.ParameterError, "weight must be finite"),
        (dict(weight="2"), fh.InputTypeError, "weight must be a number"),
        (dict(parties=0), fh.ParameterError, "parties must be between 1"),
        (dict(parties=2**32), fh.ParameterError, "parties must be between 1"),
        (dict(parties=2.0), fh.InputTypeError, "parties must be an int"),
        (dict(threads=0), fh.ParameterError, "threads must be at least 1"),
        (dict(threads=True), fh.InputTypeError, "threads must be an int"),
        (dict(mode="sum"), fh.ParameterError, "mode must be 'symmetric' or 'public_key'"),
        (dict(mode="aes"), fh.ParameterError, "mode must be"),
    ],
)
def test_bad_options(keys, kwargs, error, message):
    with pytest.raises(error, match=message):
        keys.encrypt(np.ones(4), **kwargs)


def test_public_context_cannot_encrypt_symmetrically(pub):
    with pytest.raises(fh.SecretKeyRequiredError, match="needs the secret key"):
        pub.encrypt(np.ones(4), mode="symmetric")


def test_public_context_cannot_decrypt(keys, pub):
    from fhto_native import _core

    assert not hasattr(pub, "decrypt")
    with pytest.raises(fh.SecretKeyRequiredError, match="decryption needs the secret key"):
        _core.decrypt(pub._core, keys.encrypt(np.ones(4)).to_bytes(), 1)


def test_torch_tensor_on_another_device_is_refused(keys):
    class FakeDevice:
        type = "mps"

    tensor_type = type("Tensor", (), {"__module__": "torch", "device": FakeDevice()})
    with pytest.raises(fh.InputTypeError, match="on 'mps'; move it to the CPU or a CUDA device"):
        keys.encrypt(tensor_type())


@pytest.mark.parametrize("bad", [12, "batch", [1, 2], np.ones(4)])
def test_loaders_refuse_non_bytes(keys, pub, bad):
    for call in (fh.EncryptedUpdate.from_bytes, fh.KeySet.from_bytes, fh.PublicContext.from_bytes,
                 keys.decrypt, fh.Accumulator(pub).add):
        with pytest.raises(fh.InputTypeError):
            call(bad)


def test_encrypted_update_cannot_be_built_directly():
    with pytest.raises(fh.InputTypeError, match="from_bytes"):
        fh.EncryptedUpdate()
