"""The engine's CRC-32C: every path (forced with FHTO_CRC in a fresh process) equals a pure-Python
CRC-32C bit for bit, at every short length, around each path's block and step boundaries, at
unaligned starts, from any initial value, and when chained."""
from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest

from fhto_native import _core
from test_independent_reader import crc32c  # the pure-Python CRC-32C of the independent reader

# The paths, fastest first; a forced path the CPU lacks falls to the next one it has.
PATHS = ("hybrid512", "vpclmul512", "vpclmul256", "sse42x8", "sse42", "table")

# Shared by this process (the reference) and the child (the engine): the same buffer and cases.
CASES = r'''
import random

def crc_buffer():
    return random.Random(7).randbytes(140_000)

def crc_cases():
    """(offset, length, initial crc, cut): the CRC of buffer[offset:offset + length] from the
    initial value, and the same bytes as two calls split at offset + cut."""
    rng = random.Random(20240611)
    lengths = list(range(0, 300))
    for base in (496, 512, 1024, 1536, 2048, 4096, 32768, 58368, 61440, 65536, 122880, 130000):
        lengths += [base + d for d in (-65, -64, -1, 0, 1, 63)]
    lengths += [rng.randrange(70_001) for _ in range(40)]
    cases = []
    for n in lengths:
        offset = rng.randrange(64)
        crc = rng.choice((0, 0xFFFFFFFF, rng.getrandbits(32)))
        cases.append((offset, n, crc, rng.randrange(n + 1)))
    return cases
'''

CHILD = CASES + r'''
from fhto_native import _core
data = memoryview(crc_buffer())
whole, split = [], []
for offset, n, crc, cut in crc_cases():
    whole.append(_core.crc32c(data[offset:offset + n], crc))
    split.append(_core.crc32c(data[offset + cut:offset + n], _core.crc32c(data[offset:offset + cut], crc)))
print(_core.crc32c_backend())
print(" ".join(map(str, whole)))
print(" ".join(map(str, split)))
print(_core.crc32c(b"123456789"), _core.crc32c(b""), _core.crc32c(b"", 0x12345678))
'''

_shared: dict = {}
exec(CASES, _shared)


@functools.lru_cache(maxsize=None)
def expected() -> list[int]:
    data = _shared["crc_buffer"]()
    return [crc32c(data[offset:offset + n], crc) for offset, n, crc, _ in _shared["crc_cases"]()]


def run_child(env: dict) -> list[str]:
    return subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, capture_output=True,
                          text=True).stdout.splitlines()


def test_the_reference_and_the_default_path_agree_on_the_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert _core.crc32c(b"123456789") == 0xE3069283
    assert _core.crc32c(b"6789", _core.crc32c(b"12345")) == 0xE3069283
    assert _core.crc32c_backend() in PATHS


@pytest.mark.parametrize("backend", PATHS)
def test_every_path_matches_the_reference(backend):
    out = run_child(dict(os.environ, FHTO_CRC=backend))
    assert out[0] in PATHS[PATHS.index(backend):]  # a CPU without the path falls to a slower one
    want = expected()
    assert [int(v) for v in out[1].split()] == want
    assert [int(v) for v in out[2].split()] == want
    assert out[3].split() == [str(0xE3069283), "0", str(0x12345678)]


def test_an_unknown_name_picks_the_default_path():
    env = {k: v for k, v in os.environ.items() if k != "FHTO_CRC"}
    default = run_child(env)[0]
    assert default in PATHS
    assert run_child(dict(env, FHTO_CRC="no-such-path"))[0] == default
