"""Input coercion at the package boundary: every entry point goes through these helpers, so
wrong types and shapes fail here, in Python, before anything reaches the native core."""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np

from .errors import InputTypeError, ParameterError, ShapeError

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_update(values: Any, name: str = "values") -> np.ndarray:
    """Return ``values`` as a one-dimensional, C-contiguous float32 or float64 array.

    Accepts numpy arrays, CPU ``torch.Tensor`` objects (without importing torch) and Python
    sequences of numbers. float16 and bfloat16 are upcast to float32 (exactly); float32 and float64
    are passed as they are (the core reads both). Tensors that require grad are detached.

    Raises
    ------
    InputTypeError
        Not an array-like of floats (integers, complex, objects, strings), a tensor that is not on
        the CPU, or a cupy array.
    ShapeError
        Not one-dimensional, or empty.
    """
    module = type(values).__module__.split(".")[0]
    if module == "cupy":
        raise InputTypeError(f"{name} is a cupy (GPU) array; copy it to the host first (array.get())")
    if module == "torch":
        device = getattr(getattr(values, "device", None), "type", None)
        if device != "cpu":
            raise InputTypeError(f"{name} is a torch tensor on {device!r}; move it to the CPU first (tensor.cpu())")
        values = values.detach()
        if str(values.dtype) in ("torch.float16", "torch.bfloat16"):
            values = values.float()  # exact: every half-precision value is a float32
        try:
            values = values.numpy()
        except TypeError as exc:
            raise InputTypeError(f"{name} must be a floating tensor; got torch {values.dtype}") from exc
    if isinstance(values, (list, tuple)):
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{name} must hold only numbers: {exc}") from exc
    if not isinstance(values, np.ndarray):
        raise InputTypeError(
            f"{name} must be a numpy array, a CPU torch tensor or a sequence of floats; got {type(values).__name__}"
        )
    if values.dtype == np.float16:
        values = values.astype(np.float32)  # exact
    if values.dtype not in _FLOAT_DTYPES:
        raise InputTypeError(f"{name} must be a float16, float32 or float64 array; got {values.dtype}")
    if values.ndim != 1:
        raise ShapeError(f"{name} must be one-dimensional (a flat update); got shape {values.shape} (flatten with .ravel())")
    if values.size == 0:
        raise ShapeError(f"{name} is empty: there is nothing to encrypt")
    return np.ascontiguousarray(values)


def finite_vector(arr: np.ndarray, name: str) -> np.ndarray:
    """A float64 array already converted by the caller, checked: one-dimensional, non-empty and
    finite (ShapeError, ParameterError naming the first bad index)."""
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise ShapeError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"{name} must be finite: index {i} is {arr[i]}")
    return arr


def as_threads(threads: Optional[int]) -> int:
    """Resolve a thread count: None means the cores this process may run on."""
    if threads is None:
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not on Linux
            return max(os.cpu_count() or 1, 1)
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
        raise InputTypeError(f"threads must be an int or None; got {type(threads).__name__}")
    if threads < 1:
        raise ParameterError(f"threads must be at least 1; got {threads}")
    return int(threads)


def as_parties(parties: int) -> int:
    if not isinstance(parties, (int, np.integer)) or isinstance(parties, bool):
        raise InputTypeError(f"parties must be an int; got {type(parties).__name__}")
    if not 1 <= parties <= 0xFFFFFFFF:
        raise ParameterError(f"parties must be between 1 and 4294967295; got {parties}")
    return int(parties)


def as_weight(weight: float) -> float:
    if not isinstance(weight, (int, float, np.integer, np.floating)) or isinstance(weight, bool):
        raise InputTypeError(f"weight must be a number; got {type(weight).__name__}")
    weight = float(weight)
    if not math.isfinite(weight) or weight == 0.0:
        raise ParameterError(f"weight must be finite and non-zero; got {weight}")
    return weight


_SEED_LIMIT = 1 << 64


def as_seed(seed: Any, name: str = "seed") -> Optional[int]:
    """Check an optional reproducibility seed: None, or an int with 0 <= seed < 2**64.

    Raises
    ------
    InputTypeError
        Not an int (a bool, float or string included).
    ParameterError
        Negative, or 2**64 or more.
    """
    if seed is None:
        return None
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise InputTypeError(f"{name} must be an int or None; got {type(seed).__name__}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ParameterError(f"{name} must be between 0 and 2**64 - 1; got {seed}")
    return int(seed)


def as_buffer(data: Any, name: str = "data") -> Any:
    """Accept bytes, bytearray, memoryview or a uint8 numpy array; return it for the core."""
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, memoryview):
        if not data.contiguous:
            raise InputTypeError(f"{name} must be a contiguous memoryview")
        return data.cast("B") if data.format != "B" or data.ndim != 1 else data
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return np.ascontiguousarray(data)
    raise InputTypeError(f"{name} must be bytes, bytearray, memoryview or a 1-D uint8 array; got {type(data).__name__}")


class DeviceArray:
    """A flat update already in GPU memory: its data pointer, value count, bytes per value and the
    CUDA device holding it (None when the object does not say), plus the object itself, kept
    alive for as long as the pointer is used."""

    __slots__ = ("pointer", "count", "itemsize", "device", "owner")

    def __init__(self, pointer: int, count: int, itemsize: int, device: Optional[int], owner: Any) -> None:
        self.pointer, self.count, self.itemsize, self.device, self.owner = pointer, count, itemsize, device, owner

    def to_host(self) -> np.ndarray:
        """The values copied to host memory once (for the CPU path)."""
        owner = self.owner
        if type(owner).__module__.split(".")[0] == "torch":
            return owner.cpu().numpy()
        if hasattr(owner, "get"):  # cupy
            return owner.get()
        raise InputTypeError(
            "these values live in GPU memory and this encryption runs on the CPU; copy them to the host first"
        )


_DEVICE_DTYPES = {"<f4": 4, "<f8": 8}


def device_array(values: Any, name: str = "values") -> Optional[DeviceArray]:
    """``values`` as a :class:`DeviceArray` if it lives in GPU memory (a CUDA torch tensor, a cupy
    array, or any object with ``__cuda_array_interface__``); None for host data.

    float16 and bfloat16 tensors and arrays are upcast to float32 on the device (exactly).

    Raises
    ------
    InputTypeError
        A tensor on a non-CUDA accelerator, an unsupported dtype, non-contiguous or masked data.
    ShapeError
        Not one-dimensional, or empty.
    """
    module = type(values).__module__.split(".")[0]
    device: Optional[int] = None
    if module == "torch":
        kind = getattr(getattr(values, "device", None), "type", "cpu")
        if kind == "cpu":
            return None
        if kind != "cuda":
            raise InputTypeError(f"{name} is a torch tensor on {kind!r}; move it to the CPU or a CUDA device")
        values = values.detach()
        if str(values.dtype) in ("torch.float16", "torch.bfloat16"):
            values = values.float()
        device = int(values.device.index or 0)
    elif module == "cupy":
        if str(values.dtype) == "float16":
            values = values.astype("float32")
        device = int(values.device.id)
    interface = getattr(values, "__cuda_array_interface__", None)
    if interface is None:
        return None
    typestr = str(interface.get("typestr", ""))
    if typestr not in _DEVICE_DTYPES:
        raise InputTypeError(f"{name} must hold float32 or float64 values on the GPU; got type {typestr!r}")
    itemsize = _DEVICE_DTYPES[typestr]
    shape = tuple(int(d) for d in interface.get("shape", ()))
    if len(shape) != 1:
        raise ShapeError(f"{name} must be one-dimensional (a flat update); got shape {shape} (flatten with .reshape(-1))")
    if shape[0] == 0:
        raise ShapeError(f"{name} is empty: there is nothing to encrypt")
    strides = interface.get("strides")
    if strides is not None and tuple(strides) != (itemsize,):
        raise InputTypeError(f"{name} is not contiguous in GPU memory (strides {tuple(strides)}); pass .contiguous() or a copy")
    if interface.get("mask") is not None:
        raise InputTypeError(f"{name} is a masked GPU array; fill it first")
    pointer = int(interface["data"][0])
    if pointer == 0:
        raise InputTypeError(f"{name} has a null GPU data pointer")
    return DeviceArray(pointer, shape[0], itemsize, device, values)
