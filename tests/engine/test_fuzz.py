"""Fuzzing every loader with random and mutated bytes.

Each case must end in a clean :class:`FhtoError` (or, where checksums were deliberately
recomputed, possibly in success): never a crash, a hang, a foreign exception type or a huge
allocation. Without recomputed checksums, any change to a batch must be refused, so corruption
never decrypts to a silently wrong answer.

CI runs FHTO_FUZZ_CASES=3000 (the default); the documented offline run is
``FHTO_FUZZ_CASES=200000 .venv/bin/python -m pytest tests/engine/test_fuzz.py -q``.
"""
from __future__ import annotations

import os
import resource
import struct

import numpy as np
import pytest

import fhto_native as fh
from conftest import HEADER_BYTES, ciphertext_span, parse_header, reseal, reseal_context, reseal_header

CASES = int(os.environ.get("FHTO_FUZZ_CASES", "3000"))


def pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(0, len(options)))]


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """One random mutation: bit flips, truncation, extension, overwrite, field edits, or noise."""
    buf = bytearray(data)
    kind = rng.integers(0, 8)
    if kind == 0 or not buf:  # pure noise, sometimes behind a valid magic
        noise = bytearray(rng.integers(0, 256, rng.integers(0, 300), dtype=np.uint8).tobytes())
        if buf and rng.random() < 0.5:
            noise[:8] = buf[:8]
        return bytes(noise)
    if kind == 1:  # a few bit flips
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(0, len(buf))
            buf[i] ^= 1 << rng.integers(0, 8)
    elif kind == 2:  # truncate
        del buf[rng.integers(0, len(buf)) :]
    elif kind == 3:  # extend
        buf += rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
    elif kind == 4:  # overwrite a run with a constant or noise
        i = rng.integers(0, len(buf))
        n = min(int(rng.integers(1, 32)), len(buf) - i)
        fill = pick(rng, [0x00, 0xFF, -1])
        buf[i : i + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes() if fill < 0 else bytes([fill]) * n
    elif kind == 5:  # a header integer set to an extreme
        offset = pick(rng, [8, 10, 32, 40, 48, 56, 60, 64, 72])
        width = {8: 2, 10: 1, 56: 4, 60: 4}.get(offset, 8)
        value = pick(rng, [0, 1, 2, 3, 4, 2**31, 2**32 - 1, 2**63, 2**64 - 1])
        if len(buf) < offset + width:
            return bytes(buf)
        buf[offset : offset + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    elif kind == 6:  # a 64-bit word anywhere set to an extreme
        if len(buf) >= 8:
            i = int(rng.integers(0, len(buf) - 7))
            buf[i : i + 8] = struct.pack("<Q", pick(rng, [0, 1, 2**60, 2**64 - 1, 1 << 40]))
    else:  # swap two regions
        i, j = sorted(rng.integers(0, len(buf), 2))
        buf[i:j] = buf[i:j][::-1]
    return bytes(buf)


@pytest.fixture(scope="module")
def seeds(keys, pub):
    rng = np.random.default_rng(7)
    small = rng.uniform(-1, 1, 4096 + 10)
    return {
        "symmetric": keys.encrypt(small, parties=1000).to_bytes(),
        "packed": keys.encrypt(small, parties=1000, packed=True).to_bytes(),
        "public_key": pub.encrypt(small[:100], parties=1000).to_bytes(),
        "sum": fh.aggregate([keys.encrypt(small, parties=1000)] * 2, pub).to_bytes(),
        "keyset": keys.to_bytes(),
        "public": pub.to_bytes(),
    }


def expect_clean(call, data, allow_success=True):
    try:
        call(data)
    except fh.FhtoError:
        return False
    except Exception as exc:  # anything else is a bug: report it with the input
        pytest.fail(f"{type(exc).__name__}: {exc} for input of {len(data)} bytes starting {data[:80].hex()}")
    if not allow_success:
        pytest.fail(f"mutated input of {len(data)} bytes was accepted: {data[:80].hex()}")
    return True


def test_fuzz_loaders(keys, pub, seeds):
    rng = np.random.default_rng(int(os.environ.get("FHTO_FUZZ_SEED", "20261128")))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    acc = fh.Accumulator(pub, threads=2)
    acc.add(seeds["symmetric"])
    reference = keys.decrypt(acc.result())
    accepted = 0
    names = list(seeds)
    for case in range(CASES):
        name = names[case % len(names)]
        original = seeds[name]
        data = mutate(rng, original)
        resealed = rng.random() < 0.4
        if name in ("keyset", "public"):
            if resealed and len(data) >= 40:
                data = reseal_context(data)
            for loader in (fh.KeySet.from_bytes, fh.PublicContext.from_bytes):
                accepted += expect_clean(loader, data)
            continue
        if resealed and len(data) >= HEADER_BYTES and data[:8] == b"FHTOCKKS":
            try:
                data = reseal(data)
            except (struct.error, OverflowError):  # header counts too wild to walk: header only
                data = reseal_header(data)
        strict = not resealed and data != original  # corruption must always be caught
        accepted += expect_clean(fh.EncryptedUpdate.from_bytes, data)
        accepted += expect_clean(keys.decrypt, data, allow_success=not strict)
        accepted += expect_clean(acc.add, data, allow_success=not strict)
        if acc.contributions > 1:  # a (resealed, hence undetectable) mutation was summed: start over
            acc.reset()
            acc.add(seeds["symmetric"])
    # Refused batches never touched the running sum.
    np.testing.assert_array_equal(keys.decrypt(acc.result()) - reference, 0.0 * reference) if acc.contributions == 1 else None
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert growth_mib < 256, f"peak memory grew by {growth_mib:.0f} MiB while fuzzing"
    print(f"{CASES} cases, {accepted} accepted inputs, peak RSS growth {growth_mib:.1f} MiB")


def move_ciphertexts(rng: np.random.Generator, data: bytes, other: bytes) -> bytes:
    """Ciphertexts moved together with their check entries: a swap, a permutation of all of them,
    one copied over another, or one spliced in from another batch of the same shape."""
    h = parse_header(data)
    count = h["cts"]
    spans = [ciphertext_span(data, k) for k in range(count)]
    cts = [data[a:b] for a, b in spans]
    checks = [data[HEADER_BYTES + 4 * k : HEADER_BYTES + 4 * k + 4] for k in range(count)]
    kind = rng.integers(0, 4)
    order = list(range(count))
    if kind == 0:  # swap two
        i, j = rng.choice(count, 2, replace=False)
        order[i], order[j] = order[j], order[i]
    elif kind == 1:  # reorder all (a transport that shuffles chunks)
        while order == sorted(order):
            order = list(rng.permutation(count))
    elif kind == 2:  # one duplicated over another
        i, j = rng.choice(count, 2, replace=False)
        order[i] = j
    moved_cts = [cts[k] for k in order]
    moved_checks = [checks[k] for k in order]
    if kind == 3:  # splice from another batch
        k = int(rng.integers(0, count))
        a, b = ciphertext_span(other, k)
        moved_cts[k] = other[a:b]
        moved_checks[k] = other[HEADER_BYTES + 4 * k : HEADER_BYTES + 4 * k + 4]
    return data[:HEADER_BYTES] + b"".join(moved_checks) + b"".join(moved_cts)


def test_fuzz_moved_ciphertexts_are_always_refused(keys, pub):
    """Every ciphertext's check is bound to its position and its batch: moving ciphertexts with
    their checks, inside a batch or between batches, is refused every time."""
    rng = np.random.default_rng(int(os.environ.get("FHTO_FUZZ_SEED", "20261128")) + 1)
    x, y = rng.uniform(-1, 1, (2, 4 * 4096 + 7))
    pairs = {
        "symmetric": [keys.encrypt(v, parties=8).to_bytes() for v in (x, y)],
        "packed": [keys.encrypt(v, parties=8, packed=True).to_bytes() for v in (x, y)],
        "public_key": [pub.encrypt(v, parties=8).to_bytes() for v in (x, y)],
        "sum": [fh.aggregate([keys.encrypt(v, parties=8)] * 2, pub).to_bytes() for v in (x, y)],
    }
    acc = fh.Accumulator(pub, threads=2)
    acc.add(pairs["symmetric"][0])
    names = list(pairs)
    for case in range(max(CASES // 10, 40)):
        data, other = pairs[names[case % len(names)]]
        moved = move_ciphertexts(rng, data, other)
        assert moved != data
        expect_clean(keys.decrypt, moved, allow_success=False)
        expect_clean(acc.add, moved, allow_success=False)
    assert acc.contributions == 1
    np.testing.assert_allclose(keys.decrypt(acc.result()), x, atol=keys.error_bound(1, max_abs=1.0))


def reseal_frame(data: bytes) -> bytes:
    """Recompute a multiparty object's CRC-32C (bytes 12-15, over the header with it zeroed and the body)."""
    if len(data) < 16:
        return data
    head = data[:12] + b"\0\0\0\0"
    crc = fh._core.crc32c(data[16:], fh._core.crc32c(head))
    return data[:12] + struct.pack("<I", crc) + data[16:]


def test_fuzz_multiparty_loaders(rng):
    from fhto_native import multiparty as mp
    from fhto_native.fl.threshold import key_generation

    consortium = mp.Consortium.create(3, 2, seed=41)
    gen = key_generation(consortium, ["a", "b", "c"], seed=41)
    share = gen.shares["a"]
    party = mp.Party(share, gen.public, threads=1)
    ups = [gen.public.encrypt(rng.uniform(-1, 1, 100), parties=3).to_bytes() for _ in range(2)]
    total = fh.aggregate(ups, gen.public).to_bytes()
    tags = [gen.shares[n].sign_tag(gen.public, u, 1).to_bytes() for n, u in zip("ab", ups)]
    dshare = party.decryption_share(total, [1, 2], round=1, tags=tags)
    other = mp.Party(gen.shares["b"], gen.public, threads=1).decryption_share(total, [1, 2], round=1, tags=tags)
    channel = mp.KeyShare.generate(consortium, 1, seed=41)
    samples = {
        "consortium": (consortium.to_bytes(), mp.Consortium.from_bytes),
        "public share": (share.public_share().to_bytes(), mp.PublicShare.from_bytes),
        "key share": (share.to_bytes(), mp.KeyShare.from_bytes),
        "decryption share": (dshare.to_bytes(), mp.DecryptionShare.from_bytes),
        "signed tag": (tags[0], mp.SignedTag.from_bytes),
        "channel message": (channel.tag_key_messages([s.public_share() for s in gen.shares.values()])[0].to_bytes(),
                            mp.ChannelMessage.from_bytes),
    }
    names = list(samples)
    cases = max(CASES // 3, 60)
    for case in range(cases):
        original, loader = samples[names[case % len(names)]]
        data = mutate(rng, original)
        resealed = rng.random() < 0.4
        if resealed:
            data = reseal_frame(data)
        strict = not resealed and data != original
        expect_clean(loader, data, allow_success=not strict)
        name = names[case % len(names)]
        if name == "decryption share":
            expect_clean(lambda d: mp.combine(consortium, gen.public, total, [d, other]), data, allow_success=not strict)
        elif name == "signed tag":
            fresh = mp.Party(gen.shares["a"], gen.public, threads=1)
            expect_clean(lambda d: fresh.decryption_share(total, [1, 2], round=1, tags=[d, tags[1]]), data,
                         allow_success=data == original)
