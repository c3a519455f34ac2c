from __future__ import annotations

import struct

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core

HEADER = struct.Struct("<8sHBBI16sQQQII")  # the 64-byte batch header of docs/ARCHITECTURE.md
assert HEADER.size == 64


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
    magic, version, mode, reserved, crc, fp, values, cts, ct_bytes, contributions, budget = HEADER.unpack_from(data)
    return dict(
        magic=magic, version=version, mode=mode, reserved=reserved, crc=crc, fingerprint=fp, values=values,
        cts=cts, ct_bytes=ct_bytes, contributions=contributions, budget=budget,
    )


def ciphertext_span(data: bytes, k: int) -> tuple[int, int]:
    """Byte offsets [start, end) of ciphertext k inside a batch."""
    h = parse_header(data)
    start = 64 + 4 * h["cts"] + k * h["ct_bytes"]
    return start, start + h["ct_bytes"]


def reseal_header(data: bytes | bytearray) -> bytes:
    """Recompute the header checksum of a (possibly tampered) batch."""
    buf = bytearray(data)
    struct.pack_into("<I", buf, 12, 0)
    struct.pack_into("<I", buf, 12, _core.crc32c(bytes(buf[:64])))
    return bytes(buf)


def reseal(data: bytes | bytearray) -> bytes:
    """Recompute every checksum of a (possibly tampered) batch, so deeper checks are reached."""
    buf = bytearray(data)
    h = parse_header(buf)
    fits = (len(buf) - 64) // (4 + h["ct_bytes"]) if h["ct_bytes"] else 0
    for k in range(min(h["cts"], fits)):
        start, end = ciphertext_span(buf, k)
        if end <= len(buf):
            struct.pack_into("<I", buf, 64 + 4 * k, _core.crc32c(bytes(buf[start:end])))
    return reseal_header(buf)


def reseal_context(data: bytes | bytearray) -> bytes:
    """Recompute the checksum of a key set / public context."""
    buf = bytearray(data)
    struct.pack_into("<I", buf, 12, 0)
    struct.pack_into("<I", buf, 12, _core.crc32c(bytes(buf)))
    return bytes(buf)
