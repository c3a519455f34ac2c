"""The GPU path side by side with the CPU path, in one run (skipped without a CUDA device).

* ``encrypt``: a flat update already in GPU memory (a CUDA torch tensor, else a cupy array),
  encrypted and serialized into host memory, end to end; against the CPU path encrypting the
  same values from host memory on every core.
* ``decrypt``: decryption and decoding of a ``FHTO_BENCH_UPLOADS``-contribution sum, from host
  memory to a float64 array, on the GPU against the CPU path on every core.
* ``sum``: the server's sum of ``FHTO_BENCH_UPLOADS`` seeded uploads (default 100) on the GPU
  (records checked, seeds expanded, everything added on the device) against the CPU
  Accumulator on every core.

Run with the ResNet-50 size, as ``scripts/device-check.sh`` does::

    FHTO_BENCH_VALUES=resnet50 python -m pytest benchmarks/test_bench_cuda.py --benchmark-only

Both sides give the same bytes (tests/engine/test_cuda.py checks it); the summary prints each
ratio as CPU time over GPU time.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import cuda

pytestmark = pytest.mark.skipif(not cuda.available(), reason="no CUDA device")

UPLOADS = int(os.environ.get("FHTO_BENCH_UPLOADS", "100"))
_TIMES: dict = {}


@pytest.fixture(scope="module")
def gpu_keys() -> fh.KeySet:
    return fh.KeySet.generate("compact", seed=1)


@pytest.fixture(scope="module")
def host_values(bench_values: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, bench_values).astype(np.float32)


@pytest.fixture(scope="module")
def device_values(host_values: np.ndarray):
    try:
        import torch

        if torch.cuda.is_available():
            return torch.from_numpy(host_values).cuda()
    except ImportError:
        pass
    cupy = pytest.importorskip("cupy")
    return cupy.asarray(host_values)


@pytest.fixture(scope="module")
def uploads(gpu_keys: fh.KeySet, host_values: np.ndarray) -> list:
    return [gpu_keys.encrypt(host_values, parties=UPLOADS, seed=k, device="cuda").to_bytes() for k in range(UPLOADS)]


def _record(benchmark, key: str) -> None:
    _TIMES[key] = benchmark.stats.stats.median


@pytest.mark.benchmark(group="encrypt")
def test_encrypt_gpu_tensor(benchmark, gpu_keys, device_values):
    benchmark.pedantic(lambda: gpu_keys.encrypt(device_values, device="cuda"), rounds=10, warmup_rounds=2)
    _record(benchmark, "encrypt gpu")


@pytest.mark.benchmark(group="encrypt")
def test_encrypt_cpu_all_cores(benchmark, gpu_keys, host_values):
    benchmark.pedantic(lambda: gpu_keys.encrypt(host_values, device="cpu"), rounds=3, warmup_rounds=1)
    _record(benchmark, "encrypt cpu")


@pytest.mark.benchmark(group="sum")
def test_sum_gpu(benchmark, gpu_keys, uploads):
    benchmark.pedantic(lambda: gpu_keys.sum(uploads, device="cuda"), rounds=3, warmup_rounds=1)
    _record(benchmark, "sum gpu")


@pytest.mark.benchmark(group="sum")
def test_sum_cpu_all_cores(benchmark, gpu_keys, uploads):
    benchmark.pedantic(lambda: gpu_keys.sum(uploads, device="cpu"), rounds=1, warmup_rounds=0)
    _record(benchmark, "sum cpu")


@pytest.fixture(scope="module")
def total(gpu_keys, uploads) -> bytes:
    return gpu_keys.sum(uploads, device="cuda").to_bytes()


@pytest.mark.benchmark(group="decrypt")
def test_decrypt_gpu(benchmark, gpu_keys, total):
    benchmark.pedantic(lambda: gpu_keys.decrypt(total, device="cuda"), rounds=5, warmup_rounds=1)
    _record(benchmark, "decrypt gpu")


@pytest.mark.benchmark(group="decrypt")
def test_decrypt_cpu_all_cores(benchmark, gpu_keys, total):
    benchmark.pedantic(lambda: gpu_keys.decrypt(total, device="cpu"), rounds=3, warmup_rounds=1)
    _record(benchmark, "decrypt cpu")


def test_summary(bench_summary, bench_values):
    """Appends the side-by-side table (runs last in this module)."""
    if not _TIMES:
        pytest.skip("no timings")
    lines = [
        f"device: {cuda.device()}; {bench_values:,} float32 values, compact preset; {UPLOADS} uploads; {time.strftime('%Y-%m-%d')}",
        "| phase | GPU, ms | CPU (all cores), ms | CPU / GPU |",
        "|---|---|---|---|",
    ]
    for phase in ("encrypt", "sum", "decrypt"):
        gpu, cpu = _TIMES.get(f"{phase} gpu"), _TIMES.get(f"{phase} cpu")
        if gpu and cpu:
            lines.append(f"| {phase} | {gpu * 1e3:.2f} | {cpu * 1e3:.1f} | {cpu / gpu:.1f}x |")
    bench_summary.append(("GPU path vs CPU path", lines))
