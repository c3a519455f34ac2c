"""Peak memory of encryption and of a streaming server, each probe in a fresh process.

    .venv/bin/python -m pytest benchmarks/test_bench_memory.py --benchmark-only -s
    FHTO_BENCH_VALUES=25557032 .venv/bin/python -m pytest benchmarks/test_bench_memory.py --benchmark-only -s

Targets: encrypting peaks at the input plus its ciphertexts plus a small constant; a server
summing FHTO_BENCH_UPLOADS (default 100) uploads in a stream peaks at about three uploads'
worth. The probes' JSON lands in the benchmark's extra_info and is printed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("memory_probe.py")
UPLOADS = int(os.environ.get("FHTO_BENCH_UPLOADS", "100"))


def _run_probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(PROBE), *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS counter")
@pytest.mark.parametrize("preset", ["compact", "aggregation"])
@pytest.mark.parametrize("probe", ["encrypt", "server"])
def test_peak_memory(benchmark, bench_values: int, probe: str, preset: str) -> None:
    benchmark.group = f"memory: {bench_values} values"
    args = (probe, "--values", str(bench_values), "--uploads", str(UPLOADS), "--preset", preset)
    result = benchmark.pedantic(_run_probe, args=args, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\n{json.dumps(result)}")
    if probe == "encrypt":
        # Input is already resident; the call adds its ciphertexts and a small constant.
        assert result["overhead_bytes"] < 64 * 2**20
    else:
        # The running sum holds full ciphertexts (two polynomials of 64-bit words per value),
        # plus the upload being read; nothing grows with the number of uploads.
        assert result["peak_bytes"] <= result["sum_bytes"] + result["upload_bytes"] + 64 * 2**20
