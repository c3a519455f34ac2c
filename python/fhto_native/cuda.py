"""The GPU path: encryption on a CUDA device, and whether this build and this machine have one.

Build it with ``pip install . -C cmake.define.FHTO_CUDA=ON`` (``AUTO``, the default, builds it
when nvcc is found; ``OFF`` skips it). Without a GPU at run time everything runs on the CPU path,
with no error and no warning.

``KeySet.encrypt(values, device=...)`` chooses where a secret-key (seeded) batch is made:
``"auto"`` (the default) uses the GPU for values already in GPU memory (a CUDA torch tensor, a
cupy array, any object with ``__cuda_array_interface__``; read in place, never copied to the
host) and for host updates of at least :data:`GPU_MIN_VALUES` values, when a device is usable;
``"cpu"`` and ``"cuda"`` / ``"cuda:N"`` force one side. For the same ``seed`` the GPU writes the
very bytes the CPU writes. Public-key mode always runs on the CPU (a GPU array is then copied to
the host once).

On the device each step is one launch for a chunk of up to 1,024 ciphertexts: Blake2xb streams (a
thread per 64-byte leaf), SEAL's uniform sampling of ``a`` (a warp per ciphertext, rejected words
replaced in order), encoding (SEAL's index map, inverse FFT stage by stage, exact rounding and
reduction), the centred binomial noise, the forward NTTs, ``c0 = -(a s + e) + m``, bit packing and
the records' CRC-32C (in 1 KiB pieces, then combined). Chunks alternate between two streams, so
one chunk's copy back to pinned memory overlaps the next one's arithmetic; device memory is
allocated once per call. All of it is ``__host__ __device__`` code (``csrc/cuda/*.cuh``) that a host
driver also runs, so CI proves on machines without a GPU that the kernels' arithmetic gives the CPU
engine's bytes (:func:`check_encrypt`), and checks the NTT, Blake2xb, sampling and packing against
SEAL piece by piece (:func:`check_host`, :func:`check_blake2`, :func:`check_uniform`,
:func:`check_sampling`).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._inputs import DeviceArray, as_parties, as_seed, as_update, as_weight
from .errors import DeviceError, ParameterError

#: Host updates (numpy arrays, CPU tensors) of at least this many values are encrypted on the GPU
#: when ``device="auto"`` and a device is usable; smaller ones stay on the CPU, where the copy to
#: the device would cost more than it saves.
GPU_MIN_VALUES = 1 << 20

__all__ = [
    "GPU_MIN_VALUES", "check_encrypt", "compiled", "available", "device", "check_host", "check_blake2", "check_uniform", "check_sampling", "check_device",
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


def check_host(context: Any, trials: int = 4) -> int:
    """Compare the CUDA path's NTT arithmetic, run on the host, with SEAL's NTT, bit for bit, on
    random polynomials modulo each data prime of ``context``; returns the number of comparisons.
    Works in every build and on every machine."""
    return int(_core.cuda_check_ntt_host(context._core, as_parties(trials)))


def check_blake2(trials: int = 4, *, device: bool = False) -> int:
    """Compare the CUDA path's Blake2xb stream (the expansion of every seeded ciphertext's ``a``)
    with the engine's, bit for bit, on ``trials`` random seeds: on the host, or with ``device``
    on the GPU (:class:`DeviceError` without one)."""
    return int(_core.cuda_check_blake2(as_parties(trials), bool(device)))


def check_uniform(context: Any, trials: int = 4, *, device: bool = False) -> int:
    """Compare the CUDA path's expansion of a seeded ciphertext's ``a`` (SEAL's uniform sampling
    over its Blake2xb stream) with the engine's, bit for bit, for ``context``'s data primes, on
    ``trials`` random seeds: on the host, or with ``device`` using the GPU's streams."""
    return int(_core.cuda_check_uniform(context._core, as_parties(trials), bool(device)))


def check_sampling(context: Any, trials: int = 4) -> int:
    """Compare the CUDA path's centred binomial noise with SEAL's sampler (the same stream) and its
    bit packing with the engine's packed ciphertexts, bit for bit, run on the host."""
    return int(_core.cuda_check_sampling_host(context._core, as_parties(trials)))


def check_device(context: Any, trials: int = 4) -> int:
    """The same comparison for the GPU kernel (one batched launch per prime).

    Raises
    ------
    DeviceError
        No CUDA path in this build, no usable device, or a CUDA error.
    """
    return int(_core.cuda_check_ntt_device(context._core, as_parties(trials)))


def check_encrypt(keys: Any, values: Any, *, seed: int = 0, packed: Optional[bool] = None, weight: float = 1.0) -> int:
    """Encrypt ``values`` under ``keys`` twice with the same ``seed``: by the CPU engine and by the
    CUDA path's kernels run on the host (the host driver), and check that the two batches are the
    same bytes. Returns the batch size; raises AssertionError naming the first differing byte.
    Works in every build and on every machine."""
    array = as_update(values)
    packing = keys._packing(packed)
    weight = as_weight(weight)
    seed_value = as_seed(seed)
    cpu = _core.encrypt(keys._core, array, _core.Mode.symmetric, packing, weight, 1, 0, seed_value)
    host = _core.cuda_encrypt(keys._core, array, packing, weight, 1, 0, seed_value, -1)
    if cpu != host:
        first = next(i for i, (a, b) in enumerate(zip(cpu, host)) if a != b) if len(cpu) == len(host) else -1
        raise AssertionError(f"the CUDA path's batch differs from the CPU engine's (first at byte {first})")
    return len(cpu)


def _parse(device: Any) -> Union[str, int]:
    """"auto", "cpu", or a CUDA device index."""
    if device is None:
        return "auto"
    if isinstance(device, str):
        text = device.strip().lower()
        if text in ("auto", "cpu"):
            return text
        if text == "cuda" or text == "gpu":
            return 0
        if text.startswith("cuda:") and text[5:].isdigit():
            return int(text[5:])
    kind = getattr(device, "type", None)  # a torch.device
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        return int(getattr(device, "index", None) or 0)
    raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")


def _target(device: Any, symmetric: bool, array: Optional[DeviceArray], size: int) -> Optional[int]:
    """The CUDA device an encryption runs on, or None for the CPU path."""
    choice = _parse(device)
    if choice == "cpu":
        return None
    if choice == "auto":
        if not symmetric or not available():
            return None
        if array is not None:
            return array.device if array.device is not None else 0
        return 0 if size >= GPU_MIN_VALUES else None
    if not symmetric:
        raise ParameterError("the GPU path encrypts in secret-key mode only; use device='cpu' for public-key mode")
    _require(int(choice))
    if array is not None and array.device is not None and array.device != choice:
        raise DeviceError(f"the values are on cuda:{array.device}, but device='cuda:{choice}' was asked for")
    return int(choice)


def _sum_target(device: Any, seeded: bool) -> Optional[int]:
    """The CUDA device a sum runs on, or None for the CPU path."""
    choice = _parse(device)
    if choice == "cpu":
        return None
    if choice == "auto":
        return 0 if seeded and available() else None
    if not seeded:
        raise ParameterError("the GPU sums seeded secret-key uploads only; use device='cpu' for the others")
    return _require(int(choice))


def _decrypt_target(device: Any, size: int) -> Optional[int]:
    """The CUDA device a decryption runs on, or None for the CPU path."""
    choice = _parse(device)
    if choice == "cpu":
        return None
    if choice == "auto":
        return 0 if size >= GPU_MIN_VALUES and available() else None
    return _require(int(choice))


def _require(index: int) -> int:
    if not compiled():
        raise DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)")
    if _core.cuda_device_count() <= index:
        raise DeviceError(f"no usable CUDA device {index} (this machine has {_core.cuda_device_count()})")
    return index


def _encrypt(
    core: Any, values: Union[np.ndarray, DeviceArray], target: int, packing: Any, weight: float, parties: int,
    threads: int, seed: Optional[int],
) -> bytes:
    if isinstance(values, DeviceArray):
        return _core.cuda_encrypt_pointer(
            core, values.pointer, values.itemsize, values.count, packing, weight, parties, seed, target
        )
    return _core.cuda_encrypt(core, values, packing, weight, parties, threads, seed, target)
