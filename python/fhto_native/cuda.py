"""The GPU path: whether this build has it and whether a GPU is usable now.

Build it with ``pip install . -C cmake.define.FHTO_CUDA=ON`` (``AUTO``, the default, builds it
when nvcc is found; ``OFF`` skips it). Without a GPU at run time everything runs on the CPU path,
with no error and no warning.

Today the GPU path holds the batched negacyclic NTT (one launch per stage for a whole batch) and
the batched Blake2xb streams (a thread per 64-byte leaf), from which a seeded ciphertext's ``a``
is expanded by SEAL's uniform sampling (its in-order pass on the host for now); and, not yet in
a kernel, the centred binomial noise and the bit packing. All are written with the same
``__host__ __device__`` code (``csrc/cuda/arith.cuh``, ``blake2.cuh``, ``uniform.cuh``,
``sample.cuh``) that host drivers run, so CI checks them bit for bit against SEAL's NTT, SEAL's
noise sampler and the engine's stream, sampler and packing on machines without a GPU
(:func:`check_host`, :func:`check_blake2`, :func:`check_uniform`, :func:`check_sampling`). GPU encoding, encryption and the server's sum are the next steps; the GPU
side has not yet run on a GPU (none was available).
"""
from __future__ import annotations

from . import _core
from ._inputs import as_parties
from .engine import _Context

__all__ = [
    "compiled", "available", "device", "check_host", "check_blake2", "check_uniform", "check_sampling", "check_device",
]


def compiled() -> bool:
    """Whether this build has the CUDA path (built with nvcc)."""
    return bool(_core.cuda_compiled())


def available() -> bool:
    """Whether a CUDA device is usable now: False without a GPU, a driver, or the CUDA path."""
    return compiled() and _core.cuda_device_count() > 0


def device() -> str:
    """Device 0 in a few words ("NVIDIA H200, compute 9.0, 139 GiB"), or "" without one."""
    return str(_core.cuda_device_name()) if compiled() else ""


def check_host(context: _Context, trials: int = 4) -> int:
    """Compare the CUDA path's NTT arithmetic, run on the host, with SEAL's NTT, bit for bit, on
    random polynomials modulo each data prime of ``context``; returns the number of comparisons.
    Works in every build and on every machine."""
    return int(_core.cuda_check_ntt_host(context._core, as_parties(trials)))


def check_blake2(trials: int = 4, *, device: bool = False) -> int:
    """Compare the CUDA path's Blake2xb stream (the expansion of every seeded ciphertext's ``a``)
    with the engine's, bit for bit, on ``trials`` random seeds: on the host, or with ``device``
    on the GPU (:class:`DeviceError` without one)."""
    return int(_core.cuda_check_blake2(as_parties(trials), bool(device)))


def check_uniform(context: _Context, trials: int = 4, *, device: bool = False) -> int:
    """Compare the CUDA path's expansion of a seeded ciphertext's ``a`` (SEAL's uniform sampling
    over its Blake2xb stream) with the engine's, bit for bit, for ``context``'s data primes, on
    ``trials`` random seeds: on the host, or with ``device`` using the GPU's streams."""
    return int(_core.cuda_check_uniform(context._core, as_parties(trials), bool(device)))


def check_sampling(context: _Context, trials: int = 4) -> int:
    """Compare the CUDA path's centred binomial noise with SEAL's sampler (the same stream) and its
    bit packing with the engine's packed ciphertexts, bit for bit, run on the host."""
    return int(_core.cuda_check_sampling_host(context._core, as_parties(trials)))


def check_device(context: _Context, trials: int = 4) -> int:
    """The same comparison for the GPU kernel (one batched launch per prime).

    Raises
    ------
    DeviceError
        No CUDA path in this build, no usable device, or a CUDA error.
    """
    return int(_core.cuda_check_ntt_device(context._core, as_parties(trials)))
