from __future__ import annotations

import numpy as np
import pytest

import fhto_native as fh

N = 4096  # values per ciphertext of the aggregation preset (two per complex slot)
SLOTS = N // 2
LENGTHS = [1, 2, 3, SLOTS - 1, SLOTS, SLOTS + 1, N - 1, N, N + 1, 7 * N + 5]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("packed", [False, True], ids=["seal", "packed"])
def test_round_trip_across_slot_and_ciphertext_boundaries(keys, rng, length, dtype, threads, packed):
    x = rng.uniform(-1, 1, length).astype(dtype)
    update = keys.encrypt(x, threads=threads, packed=packed)
    assert update.value_count == length and update.packed == packed
    assert update.ciphertext_count == -(-length // N)
    assert update.nbytes == keys.encrypted_size(length, packed=packed)
    out = keys.decrypt(update, threads=threads)
    assert out.dtype == np.float64 and out.shape == (length,)
    np.testing.assert_allclose(out, x.astype(np.float64), rtol=0, atol=keys.error_bound(1))


def test_values_land_in_their_own_positions(keys):
    # Distinct values at every position catch any packing or ordering slip.
    x = np.arange(3 * N + 7, dtype=np.float64) / 1e4
    np.testing.assert_allclose(keys.decrypt(keys.encrypt(x)), x, rtol=0, atol=1e-7)


def test_symmetric_batches_are_seeded_and_half_the_size(keys, rng):
    x = rng.uniform(-1, 1, 10 * N)
    sym = keys.encrypt(x)
    pk = keys.encrypt(x, mode="public_key")
    assert sym.mode == "symmetric" and pk.mode == "public_key"
    assert sym.bytes_per_value < 8.1  # one 60-bit prime, N coefficients per N values
    assert 1.95 < pk.nbytes / sym.nbytes < 2.01


def test_public_context_encrypts_with_the_public_key(keys, pub, rng):
    x = rng.uniform(-1, 1, N + 17)
    update = pub.encrypt(x)
    assert update.mode == "public_key"
    np.testing.assert_allclose(keys.decrypt(update), x, rtol=0, atol=keys.error_bound(1, "public_key"))


def test_encryption_is_randomized(keys):
    x = np.ones(10)
    assert keys.encrypt(x).to_bytes() != keys.encrypt(x).to_bytes()


def test_weight_multiplies_while_encoding(keys, rng):
    x = rng.uniform(-1, 1, 1000)
    np.testing.assert_allclose(keys.decrypt(keys.encrypt(x, weight=250)), 250 * x, rtol=0, atol=250 * 1e-8)


def test_non_contiguous_input(keys, rng):
    base = rng.uniform(-1, 1, 2 * N)
    view = base[::2]
    np.testing.assert_allclose(keys.decrypt(keys.encrypt(view)), view, rtol=0, atol=keys.error_bound(1))


def test_python_sequence_input(keys):
    np.testing.assert_allclose(keys.decrypt(keys.encrypt([0.5, -0.25, 1.0])), [0.5, -0.25, 1.0], atol=1e-8)


def test_conservative_preset_round_trip(conservative_keys, rng):
    x = rng.uniform(-1, 1, 8192 + 3)
    update = conservative_keys.encrypt(x)
    assert update.ciphertext_count == 2
    np.testing.assert_allclose(conservative_keys.decrypt(update), x, rtol=0, atol=conservative_keys.error_bound(1))


def test_large_values_within_range(keys, rng):
    limit = keys.max_abs_value(1)
    x = np.array([limit, -limit, limit / 3])
    out = keys.decrypt(keys.encrypt(x))
    np.testing.assert_allclose(out, x, rtol=1e-9, atol=keys.error_bound(1))




class TestTorch:
    @pytest.fixture(autouse=True)
    def _torch(self):
        self.torch = pytest.importorskip("torch")

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_cpu_tensor(self, keys, dtype):
        t = self.torch.linspace(-1, 1, N + 3, dtype=getattr(self.torch, dtype), requires_grad=True)
        out = keys.decrypt(keys.encrypt(t))
        np.testing.assert_allclose(out, t.detach().numpy().astype(np.float64), rtol=0, atol=keys.error_bound(1))

    def test_flattened_model_parameters(self, keys):
        model = self.torch.nn.Sequential(self.torch.nn.Linear(10, 8), self.torch.nn.ReLU(), self.torch.nn.Linear(8, 1))
        flat = self.torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        np.testing.assert_allclose(keys.decrypt(keys.encrypt(flat)), flat.numpy(), rtol=0, atol=1e-7)

    def test_half_precision_is_upcast(self, keys):
        for dtype in (self.torch.bfloat16, self.torch.float16):
            t = self.torch.linspace(-1, 1, 50).to(dtype)
            np.testing.assert_allclose(keys.decrypt(keys.encrypt(t)), t.float().numpy(), rtol=0, atol=1e-7)
        half = np.linspace(-1, 1, 50).astype(np.float16)
        np.testing.assert_allclose(keys.decrypt(keys.encrypt(half)), half.astype(np.float64), rtol=0, atol=1e-7)

    def test_integer_tensor_is_refused(self, keys):
        with pytest.raises(TypeError, match="float16, float32 or float64 array; got int64"):
            keys.encrypt(self.torch.arange(4))


@pytest.mark.parametrize("mode", ["symmetric", "public_key"])
def test_packing_stores_each_coefficient_in_its_prime_size(keys, rng, mode):
    x = rng.uniform(-1, 1, 5 * N)
    plain, packed = keys.encrypt(x, mode=mode, packed=False), keys.encrypt(x, mode=mode, packed=True)
    polys = 1 if mode == "symmetric" else 2
    saved = 5 * polys * N * (64 - 60) // 8  # 4 of every 64 bits are zero padding for a 60-bit prime
    assert plain.nbytes - packed.nbytes == saved
    np.testing.assert_allclose(keys.decrypt(packed), x, rtol=0, atol=keys.error_bound(1, mode))


def test_compact_preset_is_packed_by_default_and_under_7_2_bytes_per_value(rng):
    keys = fh.KeySet.generate("compact")
    assert keys.params == fh.COMPACT and keys.params.packed
    x = rng.uniform(-1, 1, 25 * N)
    update = keys.encrypt(x)
    assert update.packed and update.bytes_per_value < 7.2
    assert not keys.encrypt(x, packed=False).packed
    np.testing.assert_allclose(keys.decrypt(update), x, rtol=0, atol=keys.error_bound(1))
    assert fh.KeySet.from_bytes(keys.to_bytes()).params.packed
    assert keys.public_context().params.packed
