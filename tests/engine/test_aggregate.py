from __future__ import annotations

import numpy as np
import pytest

import fhto_native as fh
from conftest import ciphertext_span, parse_header, reseal


def test_mean_of_100_hospitals_within_1e6(keys, pub, rng):
    """The precision target: 100 hospitals, entries in [-1, 1], mean within 1e-6 of float64."""
    hospitals, length = 100, 3 * 4096 + 11
    updates = rng.uniform(-1, 1, (hospitals, length))
    acc = fh.Accumulator(pub)
    for u in updates:
        acc.add(keys.encrypt(u, parties=hospitals))
    assert acc.contributions == hospitals
    total = keys.decrypt(acc.result())
    reference = updates.sum(axis=0)  # float64 reference
    err_sum = np.abs(total - reference).max()
    assert err_sum <= keys.error_bound(hospitals, max_abs=1.0)  # the stated worst case for entries in [-1, 1]
    err_mean = np.abs(total / hospitals - reference / hospitals).max()
    assert err_mean <= 1e-6
    assert keys.error_bound(hospitals) / hospitals <= 1e-6  # over the whole range, the bound meets the target


@pytest.mark.parametrize("preset", ["compact", "conservative"])
def test_mean_of_100_hospitals_within_1e6_for_other_presets(preset, rng):
    keys = fh.KeySet.generate(preset)
    bound = keys.error_bound(100, max_abs=1.0)
    assert bound / 100 <= 1e-6
    updates = rng.uniform(-1, 1, (100, 4096 + 3))
    total = fh.aggregate((keys.encrypt(u, parties=100) for u in updates), keys.public_context())
    assert np.abs(keys.decrypt(total) / 100 - updates.mean(axis=0)).max() <= bound / 100


def test_packed_and_unpacked_uploads_mix_and_the_sum_can_be_packed(keys, pub, rng):
    a, b = rng.uniform(-1, 1, (2, 3 * 4096 - 1))
    acc = fh.Accumulator(pub).add(keys.encrypt(a, parties=2, packed=True)).add(keys.encrypt(b, parties=2))
    plain, packed = acc.result(), acc.result(packed=True)
    assert not plain.packed and packed.packed and packed.nbytes < plain.nbytes
    for total in (plain, packed):
        np.testing.assert_allclose(keys.decrypt(total), a + b, rtol=0, atol=keys.error_bound(2))
    resumed = fh.Accumulator(pub).add(packed)
    assert resumed.contributions == 2


def test_weighted_fedavg(keys, pub, rng):
    counts = np.array([120, 40, 300, 75])
    updates = rng.uniform(-0.5, 0.5, (4, 5000)).astype(np.float32)
    acc = pub.accumulator()
    for n_i, u in zip(counts, updates):
        acc.add(keys.encrypt(u, weight=n_i, parties=4))
    fedavg = keys.decrypt(acc.result()) / counts.sum()
    reference = (counts[:, None] * updates.astype(np.float64)).sum(axis=0) / counts.sum()
    np.testing.assert_allclose(fedavg, reference, rtol=0, atol=1e-8)


def test_aggregate_streams_from_a_generator(keys, pub, rng):
    updates = rng.uniform(-1, 1, (5, 777))
    blobs = (keys.encrypt(u, parties=5).to_bytes() for u in updates)
    total = fh.aggregate(blobs, pub)
    assert total.mode == "sum" and total.contributions == 5 and total.party_budget == 5
    np.testing.assert_allclose(keys.decrypt(total), updates.sum(axis=0), rtol=0, atol=keys.error_bound(5))


def test_symmetric_and_public_key_uploads_mix(keys, pub, rng):
    a, b = rng.uniform(-1, 1, (2, 1000))
    total = fh.aggregate([keys.encrypt(a, parties=2), pub.encrypt(b, parties=2)], pub)
    np.testing.assert_allclose(keys.decrypt(total), a + b, rtol=0, atol=keys.error_bound(2, "public_key"))


def test_a_sum_can_be_saved_and_resumed(keys, pub, rng, tmp_path):
    updates = rng.uniform(-1, 1, (4, 3000))
    acc = fh.Accumulator(pub)
    acc.add(keys.encrypt(updates[0], parties=4)).add(keys.encrypt(updates[1], parties=4))
    acc.result().save(tmp_path / "partial.fhto")
    resumed = fh.Accumulator(pub)
    resumed.add(fh.EncryptedUpdate.load(tmp_path / "partial.fhto"))
    assert resumed.contributions == 2
    resumed.add(keys.encrypt(updates[2], parties=4)).add(keys.encrypt(updates[3], parties=4))
    np.testing.assert_allclose(keys.decrypt(resumed.result()), updates.sum(axis=0), rtol=0, atol=keys.error_bound(4))


def test_accumulator_accepts_a_key_set_but_keeps_only_the_public_part(keys):
    acc = fh.Accumulator(keys)
    assert isinstance(acc.context, fh.PublicContext)
    assert acc.context.fingerprint == keys.fingerprint


def test_empty_accumulator_has_no_result(pub):
    with pytest.raises(fh.ParameterError, match="empty"):
        fh.Accumulator(pub).result()


def test_reset(keys, pub):
    acc = fh.Accumulator(pub).add(keys.encrypt(np.ones(10), parties=2))
    acc.reset()
    assert acc.contributions == 0
    acc.add(keys.encrypt(np.ones(20), parties=1))
    assert acc.value_count == 20


class TestRefusalsLeaveTheSumUntouched:
    @pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
    def started(self, keys, pub, rng, request):
        # With one thread, ciphertexts 0 and 1 are always added before 2 is refused.
        x = rng.uniform(-1, 1, 2 * 4096 + 1)
        acc = fh.Accumulator(pub, threads=request.param).add(keys.encrypt(x, parties=3))
        return acc, x

    def check_unchanged(self, keys, acc, x):
        assert acc.contributions == 1
        np.testing.assert_allclose(keys.decrypt(acc.result()), x, rtol=0, atol=keys.error_bound(1))

    def test_other_key_set(self, keys, other_keys, started):
        acc, x = started
        with pytest.raises(fh.KeyMismatchError, match="another key or parameter set"):
            acc.add(other_keys.encrypt(x, parties=3))
        self.check_unchanged(keys, acc, x)

    def test_other_parameter_set(self, keys, conservative_keys, started):
        acc, x = started
        with pytest.raises(fh.KeyMismatchError):
            acc.add(conservative_keys.encrypt(x, parties=3))
        self.check_unchanged(keys, acc, x)

    def test_other_length(self, keys, started):
        acc, x = started
        with pytest.raises(fh.LengthMismatchError, match=f"holds {x.size + 1} values but the running sum holds {x.size}"):
            acc.add(keys.encrypt(np.append(x, 0.0), parties=3))
        self.check_unchanged(keys, acc, x)

    def test_party_budget(self, keys, started):
        acc, x = started
        with pytest.raises(fh.ValueRangeError, match="range-checked for a sum of at most 2"):
            acc.add(keys.encrypt(x, parties=2)).add(keys.encrypt(x, parties=2))
        assert acc.contributions == 2  # the first of the two fitted
        np.testing.assert_allclose(keys.decrypt(acc.result()), 2 * x, rtol=0, atol=keys.error_bound(2))

    def test_corrupted_ciphertext(self, keys, started, rng):
        acc, x = started
        data = bytearray(keys.encrypt(x, parties=3).to_bytes())
        start, end = ciphertext_span(data, 2)
        data[start + 500] ^= 0x10
        with pytest.raises(fh.FormatError, match="ciphertext 2 is corrupted: checksum mismatch"):
            acc.add(bytes(data))
        self.check_unchanged(keys, acc, x)

    def test_crafted_ciphertext_with_valid_checksums_rolls_back(self, keys, started):
        """Ciphertext 2 is invalid for SEAL (a coefficient >= the modulus) but carries a correct
        checksum: ciphertexts 0 and 1 may be added before it is found, and must be undone."""
        acc, x = started
        data = bytearray(keys.encrypt(x, parties=3).to_bytes())
        start, end = ciphertext_span(data, 2)
        # SEAL header (16) + ciphertext metadata (73) + array header (16) + count (8): then c0's
        # coefficients. Overwrite the 11th with a 64-bit value far above the 60-bit prime.
        word = start + 16 + 73 + 16 + 8 + 8 * 10
        data[word : word + 8] = b"\xff" * 8
        with pytest.raises(fh.FormatError, match="ciphertext 2 is not a valid SEAL ciphertext"):
            acc.add(reseal(data))
        self.check_unchanged(keys, acc, x)

    def test_truncated(self, keys, started):
        acc, x = started
        data = keys.encrypt(x, parties=3).to_bytes()
        with pytest.raises(fh.FormatError, match="truncated"):
            acc.add(data[:-1])
        self.check_unchanged(keys, acc, x)


def test_sum_header_counts_contributions(keys, pub):
    total = fh.aggregate([keys.encrypt(np.ones(5), parties=7) for _ in range(3)], pub)
    h = parse_header(total.to_bytes())
    assert (h["mode"], h["contributions"], h["budget"]) == (3, 3, 7)


def test_concurrent_adds_from_python_threads(keys, pub, rng):
    from concurrent.futures import ThreadPoolExecutor

    updates = rng.uniform(-1, 1, (8, 3 * 4096))
    blobs = [keys.encrypt(u, parties=8).to_bytes() for u in updates]
    acc = fh.Accumulator(pub, threads=1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(acc.add, blobs))
    assert acc.contributions == 8
    np.testing.assert_allclose(keys.decrypt(acc.result()), updates.sum(axis=0), rtol=0, atol=keys.error_bound(8))
