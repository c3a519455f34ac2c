"""The GPU path: whether this build has it and whether a GPU is usable now.

Build it with ``pip install . -C cmake.define.FHTO_CUDA=ON`` (``AUTO``, the default, builds it
when nvcc is found; ``OFF`` skips it). Without a GPU at run time everything runs on the CPU path,
with no error and no warning.

Today the GPU path holds the batched negacyclic NTT (one launch per stage for a whole batch),
written with the same ``__host__ __device__`` arithmetic (``csrc/cuda/arith.cuh``) that a host
driver runs, so that CI checks it bit for bit against SEAL's NTT on machines without a GPU
(:func:`check_host`). GPU encoding and encryption are the next steps (see docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from . import _core
from ._inputs import as_parties
from .engine import _Context

__all__ = ["compiled", "available", "device", "check_host", "check_device"]


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


def check_device(context: _Context, trials: int = 4) -> int:
    """The same comparison for the GPU kernel (one batched launch per prime).

    Raises
    ------
    DeviceError
        No CUDA path in this build, no usable device, or a CUDA error.
    """
    return int(_core.cuda_check_ntt_device(context._core, as_parties(trials)))
