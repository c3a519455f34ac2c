"""Overhead over raw SEAL: the same SEAL calls made directly in C++ vs the Python API.

    .venv/bin/python -m pytest benchmarks/test_bench_vs_seal.py --benchmark-only -s

The C++ reference (benchmarks/cpp/seal_raw_bench.cpp, built by this project's CMake with
-DFHTO_BUILD_BENCHMARKS=ON, never part of the wheel) times, per ciphertext on one thread:
encode + encrypt (seeded) + serialize; deserialize + add; deserialize + decrypt + decode; and
the engine's own C++ entry points on the same work. This module runs it and the Python API on
the same parameters and number of ciphertexts, alternating, and keeps the best of
FHTO_BENCH_REPEATS (default 5) for each: every repetition writes fresh memory on both sides, and
on a virtual machine the first touches of memory the guest freed cost kernel time (one run right
after the test suite measured decryption at 43 us per ciphertext instead of 21). Targets: Python within 15% of raw SEAL; encrypt <= 0.20, add <= 0.25 and decrypt
<= 0.25 of raw SEAL's time (compact preset).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fhto_native as fh

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "cpp-bench"
BINARY = BUILD / "seal_raw_bench"
CIPHERTEXTS = int(os.environ.get("FHTO_BENCH_RAW_CIPHERTEXTS", "1000"))
REPEATS = int(os.environ.get("FHTO_BENCH_REPEATS", "5"))
PHASES = ("encode_encrypt_serialize", "deserialize_add", "decrypt_decode")

RESULTS: dict = {}


@pytest.fixture(scope="module")
def raw_bench() -> Path:
    """Build the C++ reference with the project's CMake (SEAL comes from the same cache)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmake = shutil.which("cmake", path=env["PATH"])
    if cmake is None:
        pytest.skip("cmake is not installed")
    generator = ["-G", "Ninja"] if shutil.which("ninja", path=env["PATH"]) else []
    subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(BUILD), *generator, "-DCMAKE_BUILD_TYPE=Release",
         "-DFHTO_BUILD_PYTHON=OFF", "-DFHTO_BUILD_BENCHMARKS=ON", f"-DPython_EXECUTABLE={sys.executable}"],
        check=True, capture_output=True, env=env,
    )
    subprocess.run([cmake, "--build", str(BUILD), "--target", "seal_raw_bench"], check=True, capture_output=True, env=env)
    return BINARY


def _python_per_ciphertext(keys: fh.KeySet, x: np.ndarray) -> dict:
    pub = keys.public_context()
    t = time.perf_counter()
    upload = keys.encrypt(x, parties=2, threads=1)
    enc = time.perf_counter() - t
    acc = fh.Accumulator(pub, threads=1).add(upload)
    t = time.perf_counter()
    acc.add(upload)
    add = time.perf_counter() - t
    total = acc.result()
    t = time.perf_counter()
    keys.decrypt(total, threads=1)
    dec = time.perf_counter() - t
    return {p: s * 1e6 / CIPHERTEXTS for p, s in zip(PHASES, (enc, add, dec))}


@pytest.mark.parametrize("preset", ["compact", "aggregation"])
def test_python_api_vs_raw_seal(benchmark, raw_bench: Path, preset: str) -> None:
    benchmark.group = f"vs raw SEAL: {CIPHERTEXTS} ciphertexts, 1 thread"
    keys = fh.KeySet.generate(preset)
    x = np.random.default_rng(7).uniform(-1, 1, CIPHERTEXTS * keys.values_per_ciphertext).astype(np.float32)
    best = {"raw": {}, "engine": {}, "python": {}}

    def keep(kind: str, timings: dict) -> None:
        for phase, us in timings.items():
            best[kind][phase] = min(best[kind].get(phase, float("inf")), us)

    def one_round() -> None:
        out = subprocess.run([str(raw_bench), "--preset", preset, "--ciphertexts", str(CIPHERTEXTS)],
                             check=True, capture_output=True, text=True)
        raw = json.loads(out.stdout)
        keep("raw", raw["raw_seal_us"])
        keep("engine", raw["engine_cpp_us"])
        keep("python", _python_per_ciphertext(keys, x))

    benchmark.pedantic(one_round, rounds=REPEATS, iterations=1)
    ratios = {p: best["python"][p] / best["raw"][p] for p in PHASES}
    benchmark.extra_info.update({"preset": preset, "microseconds_per_ciphertext": best, "python_over_raw": ratios})
    RESULTS[preset] = (best, ratios)
    lines = [f"\n{preset}: microseconds per ciphertext (best of {REPEATS}), 1 thread"]
    lines.append(f"  {'phase':28s} {'raw SEAL':>10s} {'engine C++':>11s} {'Python API':>11s} {'Python/raw':>11s}")
    for p in PHASES:
        lines.append(f"  {p:28s} {best['raw'][p]:10.1f} {best['engine'][p]:11.1f} {best['python'][p]:11.1f} "
                     f"{ratios[p]:10.3f}{'' if ratios[p] <= 1.15 else '  (over the 15% target)'}")
    print("\n".join(lines))
