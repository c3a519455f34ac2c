from __future__ import annotations

import struct

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core

HEADER = struct.Struct("<8sHBBI16sQQQII16s")  # the 80-byte batch header of docs/ARCHITECTURE.md
HEADER_BYTES = HEADER.size
assert HEADER_BYTES == _core.BATCH_HEADER_BYTES == 80


@pytest.fixture(scope="session")
def keys() -> fh.KeySet:
    return fh.KeySet.generate("aggregation")


@pytest.fixture(scope="session")
def other_keys() -> fh.KeySet:
    """Same parameters, different key set."""
    return fh.KeySet.generate("aggregation")


@pytest.fixture(scope="session")
def conservative_keys() -> fh.KeySet:
    return fh.KeySet.generate("conservative")


@pytest.fixture(scope="session")
def pub(keys: fh.KeySet) -> fh.PublicContext:
    return keys.public_context()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def parse_header(data: bytes) -> dict:
    magic, version, mode, reserved, crc, fp, values, cts, ct_bytes, contributions, budget, batch_id = HEADER.unpack_from(data)
    return dict(
        magic=magic, version=version, mode=mode, reserved=reserved, crc=crc, fingerprint=fp, values=values,
        cts=cts, ct_bytes=ct_bytes, contributions=contributions, budget=budget, batch_id=batch_id,
    )


def ciphertext_span(data: bytes, k: int) -> tuple[int, int]:
    """Byte offsets [start, end) of ciphertext k inside a batch."""
    h = parse_header(data)
    start = HEADER_BYTES + 4 * h["cts"] + k * h["ct_bytes"]
    return start, start + h["ct_bytes"]


def ciphertext_check(data: bytes | bytearray, k: int) -> int:
    """The documented check of ciphertext k: CRC-32C of its bytes, started from CRC-32C of
    le64(k) started from the header checksum."""
    start, end = ciphertext_span(data, k)
    position = _core.crc32c(struct.pack("<Q", k), parse_header(data)["crc"])
    return _core.crc32c(bytes(data[start:end]), position)


def reseal_header(data: bytes | bytearray) -> bytes:
    """Recompute the header checksum of a (possibly tampered) batch (the ciphertext checks,
    which depend on it, are left as they are)."""
    buf = bytearray(data)
    struct.pack_into("<I", buf, 12, 0)
    struct.pack_into("<I", buf, 12, _core.crc32c(bytes(buf[:HEADER_BYTES])))
    return bytes(buf)


def reseal(data: bytes | bytearray) -> bytes:
    """Recompute every checksum of a (possibly tampered) batch, so deeper checks are reached."""
    buf = bytearray(reseal_header(data))
    h = parse_header(buf)
    fits = (len(buf) - HEADER_BYTES) // (4 + h["ct_bytes"]) if h["ct_bytes"] else 0
    for k in range(min(h["cts"], fits)):
        _, end = ciphertext_span(buf, k)
        if end <= len(buf):
            struct.pack_into("<I", buf, HEADER_BYTES + 4 * k, ciphertext_check(buf, k))
    return bytes(buf)


def reseal_context(data: bytes | bytearray) -> bytes:
    """Recompute the checksum of a key set / public context."""
    buf = bytearray(data)
    struct.pack_into("<I", buf, 12, 0)
    struct.pack_into("<I", buf, 12, _core.crc32c(bytes(buf)))
    return bytes(buf)
