"""The CUDA path: its arithmetic checked on the host against SEAL in every build, the kernels on a
GPU when there is one (skipped otherwise)."""
from __future__ import annotations

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import cuda
from fhto_native.errors import DeviceError, InputTypeError, ParameterError, ShapeError, ValueRangeError


def _same(a: bytes, b: bytes) -> bool:
    """Byte equality without pytest's diff of two large byte strings (slow) on failure."""
    return len(a) == len(b) and a == b


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


# -- encryption on the CUDA path ------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative", "threshold"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_encryption_gives_the_cpu_engines_bytes_on_the_host(preset, dtype, rng):
    """The kernels' code (encode, sample, NTT, c0, pack, CRC), run by the host driver, writes the
    very batch the CPU engine writes for the same seed: every preset, both packings, a weight,
    an odd count that leaves the last ciphertext partly empty."""
    keys = fh.KeySet.generate(preset, seed=5)
    x = rng.uniform(-1, 1, 3 * keys.params.poly_modulus_degree + 7).astype(dtype)
    for packed in (False, True):
        assert cuda.check_encrypt(keys, x, seed=11, packed=packed, weight=2.5) == keys.encrypted_size(x.size, packed=packed)


def test_cuda_encoding_matches_seal_for_coefficients_beyond_128_bits(rng):
    """The conservative preset lets values reach ~2^95: times the scale 2^40 the encoded
    coefficients pass 2^128, SEAL's multi-word branch; the exact reduction gives its residues."""
    keys = fh.KeySet.generate("conservative", seed=6)
    limit = keys.max_abs_value(1)
    x = rng.uniform(-1, 1, 9000) * 0.9 * limit
    cuda.check_encrypt(keys, x, seed=12)
    # And the comparison can fail: another seed is other bytes.
    a = fh._core.encrypt(keys._core, x, fh._core.Mode.symmetric, fh._core.Packing.none, 1.0, 1, 0, 1)
    b = fh._core.cuda_encrypt(keys._core, x, fh._core.Packing.none, 1.0, 1, 0, 2, -1)
    assert len(a) == len(b) and a != b


def test_cuda_host_driver_batches_decrypt_without_a_seed(keys, rng):
    x = rng.uniform(-1, 1, 10000)
    data = fh._core.cuda_encrypt(keys._core, x, keys._packing(None), 1.0, 1, 0, None, -1)
    update = fh.EncryptedUpdate.from_bytes(data)
    assert abs(keys.decrypt(update) - x).max() <= keys.error_bound(1, max_abs=1.0)
    again = fh._core.cuda_encrypt(keys._core, x, keys._packing(None), 1.0, 1, 0, None, -1)
    assert again != data  # fresh randomness each call


def test_cuda_host_driver_applies_the_cpu_range_checks(keys):
    x = np.zeros(100)
    x[37] = np.nan
    with pytest.raises(ValueRangeError, match="index 37 is nan"):
        fh._core.cuda_encrypt(keys._core, x, keys._packing(None), 1.0, 1, 0, 1, -1)
    with pytest.raises(ValueRangeError, match="too large"):
        fh._core.cuda_encrypt(keys._core, np.full(10, 1e30), keys._packing(None), 1.0, 1, 0, 1, -1)


def test_device_choice_is_checked_and_auto_falls_back_to_the_cpu(keys, rng):
    x = rng.uniform(-1, 1, 5000).astype(np.float32)
    reference = keys.encrypt(x, seed=3).to_bytes()
    assert _same(keys.encrypt(x, seed=3, device="cpu").to_bytes(), reference)
    assert _same(keys.encrypt(x, seed=3, device="auto").to_bytes(), reference)
    with pytest.raises(ParameterError, match="device must be"):
        keys.encrypt(x, device="tpu")
    with pytest.raises(ParameterError, match="secret-key mode only"):
        keys.encrypt(x, mode="public_key", device="cuda")
    if not cuda.available():
        with pytest.raises(DeviceError, match="no usable CUDA device|no CUDA path"):
            keys.encrypt(x, device="cuda")
        # Public-key mode with device="auto" simply runs on the CPU.
        assert keys.decrypt(keys.encrypt(x, mode="public_key", device="auto")).shape == x.shape


class _GpuArray:
    """An object that says its values live in GPU memory (the __cuda_array_interface__ protocol)."""

    def __init__(self, **fields):
        interface = {"data": (0x7F0000000000, False), "shape": (100,), "typestr": "<f4", "strides": None, "version": 3}
        interface.update(fields)
        self.__cuda_array_interface__ = interface


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"strides": (8,)}, InputTypeError, "not contiguous"),
        ({"typestr": "<f2"}, InputTypeError, "float32 or float64"),
        ({"typestr": "<i8"}, InputTypeError, "float32 or float64"),
        ({"shape": (10, 10)}, ShapeError, "one-dimensional"),
        ({"shape": (0,)}, ShapeError, "empty"),
        ({"mask": object()}, InputTypeError, "masked"),
        ({"data": (0, False)}, InputTypeError, "null"),
    ],
)
def test_gpu_arrays_with_bad_layouts_are_refused_before_any_device_work(keys, fields, error, message):
    for device in (None, "cuda", "cpu"):
        with pytest.raises(error, match=message):
            keys.encrypt(_GpuArray(**fields), device=device)


@pytest.mark.skipif(cuda.available(), reason="checks the behaviour without a GPU")
def test_a_gpu_array_without_a_gpu_is_a_clear_error(keys):
    with pytest.raises(DeviceError, match="no usable CUDA device|no CUDA path"):
        keys.encrypt(_GpuArray(), device="cuda")
    with pytest.raises(InputTypeError, match="copy them to the host"):
        keys.encrypt(_GpuArray())


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", ["compact", "conservative", "threshold"])
def test_gpu_encryption_gives_the_cpu_engines_bytes(preset, rng):
    keys = fh.KeySet.generate(preset, seed=7)
    n = keys.params.poly_modulus_degree
    for count in (1, n + 3, 1100 * n + 5):  # one partial, two, and more than one 1,024-ciphertext chunk
        x = rng.uniform(-1, 1, count).astype(np.float32)
        for packed in (False, True):
            cpu = keys.encrypt(x, seed=9, packed=packed, device="cpu").to_bytes()
            assert _same(keys.encrypt(x, seed=9, packed=packed, device="cuda").to_bytes(), cpu)


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
def test_gpu_encrypts_cuda_tensors_and_cupy_arrays_in_place(keys, rng):
    x = rng.uniform(-1, 1, 300_000).astype(np.float32)
    cpu = keys.encrypt(x, seed=4, device="cpu").to_bytes()
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        t = torch.from_numpy(x).cuda()
        assert _same(keys.encrypt(t, seed=4).to_bytes(), cpu)
        with pytest.raises(InputTypeError, match="not contiguous"):
            keys.encrypt(torch.stack([t, t], 1)[:, 0], seed=4)
        bad = t.clone()
        bad[1234] = float("nan")
        with pytest.raises(ValueRangeError, match="index 1234 is nan"):
            keys.encrypt(bad, seed=4)
        assert _same(keys.encrypt(t, seed=4).to_bytes(), cpu)  # the device is still usable
    cupy = pytest.importorskip("cupy")
    assert _same(keys.encrypt(cupy.asarray(x), seed=4).to_bytes(), cpu)


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
def test_gpu_batches_decrypt_and_sum(keys, rng):
    x = rng.uniform(-1, 1, 2_000_000)
    a = keys.encrypt(x, device="cuda", parties=2)
    b = keys.encrypt(x, device="cuda", parties=2)
    assert a.to_bytes() != b.to_bytes()
    acc = keys.accumulator()
    acc.add(a)
    acc.add(b)
    assert abs(keys.decrypt(acc.result()) - 2 * x).max() <= keys.error_bound(2, max_abs=1.0)


# -- the server's sum on the CUDA path ------------------------------------------------------------
def _records(data):
    count = fh._core.read_header(data)["ciphertext_count"]
    return data[fh._core.BATCH_HEADER_BYTES + 4 * count:]


@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative"])
def test_cuda_sum_gives_the_accumulators_ciphertexts_on_the_host(preset, rng):
    """Records checked, seeds expanded and everything added by the kernels' code on the host: the
    very ciphertexts the CPU Accumulator holds (the headers differ only in the random batch id)."""
    keys = fh.KeySet.generate(preset, seed=8)
    xs = [rng.uniform(-1, 1, 2 * keys.params.poly_modulus_degree + 5) for _ in range(4)]
    for packed in (False, True):
        updates = [keys.encrypt(x, parties=4, packed=packed).to_bytes() for x in xs]
        accumulator = keys.accumulator()
        for u in updates:
            accumulator.add(u)
        expected = accumulator.result(packed=packed).to_bytes()
        got = fh._core.cuda_sum(keys._core, updates, -1, 0, keys._packing(packed))
        same = _records(got) == _records(expected)
        assert same, "the CUDA path's sum differs from the Accumulator's"
        assert abs(keys.decrypt(fh.EncryptedUpdate.from_bytes(got)) - sum(xs)).max() <= keys.error_bound(4, max_abs=1.0)


def _rechecked(data, k):
    """Ciphertext k's check recomputed after a deliberate edit, as a forger would."""
    data = bytearray(data)
    header = fh._core.read_header(bytes(data))
    count, size = header["ciphertext_count"], header["ciphertext_bytes"]
    start = fh._core.crc32c(k.to_bytes(8, "little"), int.from_bytes(data[12:16], "little"))
    offset = fh._core.BATCH_HEADER_BYTES + 4 * count + k * size
    check = fh._core.crc32c(bytes(data[offset:offset + size]), start)
    data[fh._core.BATCH_HEADER_BYTES + 4 * k:fh._core.BATCH_HEADER_BYTES + 4 * k + 4] = check.to_bytes(4, "little")
    return bytes(data)


def test_cuda_sum_refuses_what_the_accumulator_refuses(keys, rng):
    xs = [rng.uniform(-1, 1, 9000) for _ in range(3)]
    updates = [keys.encrypt(x, parties=3).to_bytes() for x in xs]
    size = fh._core.read_header(updates[1])["ciphertext_bytes"]
    count = fh._core.read_header(updates[1])["ciphertext_count"]
    first_record = fh._core.BATCH_HEADER_BYTES + 4 * count

    corrupted = bytearray(updates[1])
    corrupted[first_record + size + 200] ^= 1
    with pytest.raises(fh.FormatError, match="batch 1: ciphertext 1 is corrupted"):
        fh._core.cuda_sum(keys._core, [updates[0], bytes(corrupted), updates[2]], -1, 0, None)

    # A coefficient word above every prime, with the check recomputed: well formed, not a
    # ciphertext. c0 starts after SEAL's 16-byte header, 73 bytes of metadata and the array's
    # 24-byte header (docs/FORMATS.md); the key set here stores words unpacked.
    assert not keys.params.packed
    forged = bytearray(updates[2])
    forged[first_record + size + 113:first_record + size + 121] = (2**64 - 16).to_bytes(8, "little")
    forged = _rechecked(forged, 1)
    with pytest.raises(fh.FormatError, match="batch 2: ciphertext 1 is not a valid SEAL ciphertext"):
        fh._core.cuda_sum(keys._core, [updates[0], updates[1], forged], -1, 0, None)
    with pytest.raises(fh.FormatError):  # and the CPU Accumulator agrees
        keys.sum([updates[0], updates[1], forged], device="cpu")

    with pytest.raises(fh.LengthMismatchError, match="batch 1 holds"):
        fh._core.cuda_sum(keys._core, [updates[0], keys.encrypt(xs[1][:100], parties=3).to_bytes()], -1, 0, None)
    with pytest.raises(ValueRangeError, match="range-checked for a sum of at most 2"):
        fh._core.cuda_sum(keys._core, [keys.encrypt(x, parties=2).to_bytes() for x in xs], -1, 0, None)
    other = fh.KeySet.generate(keys.params, seed=99)
    with pytest.raises(fh.KeyMismatchError):
        fh._core.cuda_sum(keys._core, [updates[0], other.encrypt(xs[1], parties=3).to_bytes()], -1, 0, None)
    # Public-key batches are not the CUDA path's: it declines, and sum() uses the CPU.
    public = [keys.encrypt(x, parties=3, mode="public_key") for x in xs]
    assert fh._core.cuda_sum(keys._core, [u.to_bytes() for u in public], -1, 0, None) is None
    assert abs(keys.decrypt(keys.sum(public)) - sum(xs)).max() <= keys.error_bound(3, max_abs=1.0)


def test_sum_in_one_call_matches_the_accumulator_and_checks_the_device(keys, rng):
    xs = [rng.uniform(-1, 1, 7000) for _ in range(3)]
    updates = [keys.encrypt(x, parties=3) for x in xs]
    total = keys.public_context().sum(updates)
    assert abs(keys.decrypt(total) - sum(xs)).max() <= keys.error_bound(3, max_abs=1.0)
    with pytest.raises(ParameterError, match="nothing to sum"):
        keys.sum([])
    with pytest.raises(ParameterError, match="seeded secret-key uploads only"):
        keys.sum([keys.encrypt(xs[0], mode="public_key")], device="cuda")
    if not cuda.available():
        with pytest.raises(DeviceError, match="no usable CUDA device|no CUDA path"):
            keys.sum(updates, device="cuda")


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", ["compact", "conservative"])
def test_gpu_sum_gives_the_accumulators_ciphertexts(preset, rng):
    keys = fh.KeySet.generate(preset, seed=9)
    xs = [rng.uniform(-1, 1, 1100 * keys.params.poly_modulus_degree) for _ in range(3)]
    updates = [keys.encrypt(x, parties=3, device="cuda").to_bytes() for x in xs]
    accumulator = keys.accumulator()
    for u in updates:
        accumulator.add(u)
    expected = accumulator.result().to_bytes()
    same = _records(keys.sum(updates, device="cuda").to_bytes()) == _records(expected)
    assert same, "the GPU sum differs from the Accumulator's"
    corrupted = bytearray(updates[2])
    corrupted[-5] ^= 1
    with pytest.raises(fh.FormatError, match="batch 2"):
        keys.sum([updates[0], updates[1], bytes(corrupted)], device="cuda")
    same = _records(keys.sum(updates, device="cuda").to_bytes()) == _records(expected)
    assert same, "the device is not usable after a refused batch"


# -- decryption and decoding on the CUDA path -----------------------------------------------------
@pytest.mark.parametrize("preset", ["aggregation", "compact", "conservative", "threshold"])
def test_cuda_decryption_gives_the_cpu_engines_doubles_on_the_host(preset, rng):
    """m = c0 + c1 s, the inverse NTT, CRT composition, SEAL's double and forward FFT, run by the
    host driver: the very doubles the CPU path gives, for fresh batches of both modes and for a
    sum, packed or not."""
    keys = fh.KeySet.generate(preset, seed=10)
    n = keys.params.poly_modulus_degree
    for packed in (False, True):
        batches = [keys.encrypt(rng.uniform(-1, 1, 2 * n + 7), mode=mode, packed=packed, parties=3)
                   for mode in ("symmetric", "public_key")]
        batches.append(keys.sum([keys.encrypt(rng.uniform(-1, 1, 2 * n + 7), parties=3, packed=packed) for _ in range(3)],
                                packed=packed))
        for batch in batches:
            got = fh._core.cuda_decrypt(keys._core, batch.to_bytes(), -1, 0)
            assert got is not None and np.array_equal(got, keys.decrypt(batch, device="cpu"))


def test_cuda_decoding_matches_seal_for_multi_word_coefficients(rng):
    """Values near the conservative preset's limit: coefficients beyond 2^128, composed from three
    limbs and centred word by word as SEAL does."""
    keys = fh.KeySet.generate("conservative", seed=11)
    x = rng.uniform(-1, 1, 9000) * 0.9 * keys.max_abs_value(1)
    batch = keys.encrypt(x)
    got = fh._core.cuda_decrypt(keys._core, batch.to_bytes(), -1, 0)
    assert np.array_equal(got, keys.decrypt(batch, device="cpu"))


def test_cuda_decryption_refuses_what_the_cpu_refuses(keys, rng):
    x = rng.uniform(-1, 1, 9000)
    data = keys.encrypt(x, mode="public_key").to_bytes()
    header = fh._core.read_header(data)
    first_record = fh._core.BATCH_HEADER_BYTES + 4 * header["ciphertext_count"]
    corrupted = bytearray(data)
    corrupted[first_record + header["ciphertext_bytes"] + 500] ^= 4
    with pytest.raises(fh.FormatError, match="ciphertext 1 is corrupted: checksum mismatch"):
        fh._core.cuda_decrypt(keys._core, bytes(corrupted), -1, 0)
    forged = bytearray(data)
    forged[first_record + 2 * header["ciphertext_bytes"] + 113:first_record + 2 * header["ciphertext_bytes"] + 121] = (
        (2**64 - 16).to_bytes(8, "little"))
    with pytest.raises(fh.FormatError, match="ciphertext 2 is not a valid SEAL ciphertext"):
        fh._core.cuda_decrypt(keys._core, _rechecked(forged, 2), -1, 0)
    other = fh.KeySet.generate(keys.params, seed=5)
    foreign = other.encrypt(x, mode="public_key").to_bytes()
    with pytest.raises(fh.KeyMismatchError):
        fh._core.cuda_decrypt(keys._core, foreign, -1, 0)
    with pytest.raises(fh.SecretKeyRequiredError):
        fh._core.cuda_decrypt(keys.public_context()._core, data, -1, 0)


def test_decrypt_device_choice(keys, rng):
    x = rng.uniform(-1, 1, 3000)
    batch = keys.encrypt(x)
    assert np.array_equal(keys.decrypt(batch, device="auto"), keys.decrypt(batch, device="cpu"))
    with pytest.raises(ParameterError, match="device must be"):
        keys.decrypt(batch, device="npu")
    if not cuda.available():
        with pytest.raises(DeviceError, match="no usable CUDA device|no CUDA path"):
            keys.decrypt(batch, device="cuda")


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", ["compact", "conservative", "threshold"])
def test_gpu_decryption_gives_the_cpu_engines_doubles(preset, rng):
    keys = fh.KeySet.generate(preset, seed=12)
    n = keys.params.poly_modulus_degree
    for mode in ("symmetric", "public_key"):
        batch = keys.encrypt(rng.uniform(-1, 1, 1100 * n + 9), mode=mode, parties=2)
        assert np.array_equal(keys.decrypt(batch, device="cuda"), keys.decrypt(batch, device="cpu"))
    total = keys.sum([keys.encrypt(rng.uniform(-1, 1, 3 * n), parties=2) for _ in range(2)], device="cuda")
    assert np.array_equal(keys.decrypt(total, device="cuda"), keys.decrypt(total, device="cpu"))


@pytest.mark.skipif(not cuda.available(), reason="no CUDA device")
def test_gpu_encrypts_a_cuda_state_dict_and_decrypts_onto_its_devices(keys):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 3)).cuda()
    state = {k: v for k, v in model.state_dict().items()}
    cpu_state = {k: v.cpu() for k, v in state.items()}
    on_gpu = keys.encrypt(state, seed=6)
    assert _same(on_gpu.to_bytes(), keys.encrypt(cpu_state, seed=6, device="cpu").to_bytes())
    back = keys.decrypt(on_gpu, like=state)
    for name, tensor in state.items():
        assert back[name].device == tensor.device
        assert torch.allclose(back[name], tensor, atol=1e-6)
