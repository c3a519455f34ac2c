"""Structured updates: a torch ``state_dict`` (or any mapping of tensors or arrays), or a sequence of
tensors or arrays, flattened into the one vector the engine encrypts, and rebuilt after decryption.

The order is the structure's own: a mapping's iteration order (a ``state_dict``'s is the module's
registration order), a sequence's order, and within each tensor row-major (C) order; so the
decrypting side must pass a structure with the same names, shapes and order (``like=``). Only the
total number of values can be checked against a ciphertext (its header holds the count): a
mismatch there is a :class:`~fhto_native.errors.LengthMismatchError`, and differing names or shapes
between the two structures are refused when both are given.

Dtypes: float16 and bfloat16 are upcast to float32 (exactly) and float64 stays float64 (a mix
gives float64); decrypted values are cast back to each tensor's own dtype, so a bfloat16 tensor
comes back rounded to bfloat16. Integer and boolean tensors (e.g. BatchNorm's
``num_batches_tracked``) are refused: averaging them is not what FedAvg means; leave them out.
Tensors that require grad are detached; non-contiguous ones are copied. A structure of CUDA
tensors is flattened on its device (:func:`flatten_on_device`) and encrypted there; ``like=``
may hold CUDA tensors, and the decrypted parts then go to those tensors' devices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from .errors import InputTypeError, LengthMismatchError, ShapeError

__all__ = ["Layout", "flatten", "flatten_on_device", "unflatten", "is_structured"]

_HALF = ("float16", "bfloat16")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _is_torch(x)


def is_structured(values: Any) -> bool:
    """A mapping of arrays/tensors, or a list/tuple whose items are arrays/tensors."""
    if isinstance(values, Mapping):
        return True
    return isinstance(values, (list, tuple)) and len(values) > 0 and all(_is_array(v) for v in values)


@dataclass(frozen=True)
class Layout:
    """Where each part of a structured update sits in its flat vector."""

    names: Optional[Tuple[str, ...]]  #: the mapping's keys, or None for a sequence
    shapes: Tuple[Tuple[int, ...], ...]
    dtypes: Tuple[str, ...]  #: "torch.bfloat16", "numpy.float32", ...

    @property
    def size(self) -> int:
        return int(sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes))

    def label(self, i: int) -> str:
        return repr(self.names[i]) if self.names is not None else f"item {i}"


def _part(value: Any, label: str) -> Tuple[np.ndarray, str]:
    """One tensor or array as a C-contiguous float32/float64 numpy array, and its dtype's name."""
    if _is_torch(value):
        device = getattr(getattr(value, "device", None), "type", None)
        if device != "cpu":
            raise InputTypeError(f"{label} is a torch tensor on {device!r}; move it to the CPU first (tensor.cpu())")
        dtype = str(value.dtype).replace("torch.", "")
        if not value.is_floating_point():
            raise InputTypeError(f"{label} is a torch {dtype} tensor; only floating tensors are encrypted (leave it out)")
        value = value.detach()
        if dtype in _HALF:
            value = value.float()
        return np.ascontiguousarray(value.contiguous().numpy()), "torch." + dtype
    if type(value).__module__.split(".")[0] == "cupy":
        raise InputTypeError(f"{label} is a cupy (GPU) array; copy it to the host first (array.get())")
    if not isinstance(value, np.ndarray):
        raise InputTypeError(f"{label} must be a numpy array or a CPU torch tensor; got {type(value).__name__}")
    if value.dtype.kind != "f":
        raise InputTypeError(f"{label} is {value.dtype}; only floating arrays are encrypted (leave it out)")
    dtype = "numpy." + value.dtype.name
    if value.dtype == np.float16:
        value = value.astype(np.float32)
    elif value.dtype not in (np.float32, np.float64):
        raise InputTypeError(f"{label} is {value.dtype}; use float16, float32 or float64")
    return np.ascontiguousarray(value), dtype


def flatten(values: Any) -> Tuple[np.ndarray, Layout]:
    """The flat vector of a structured update and its layout.

    Raises
    ------
    InputTypeError
        A part that is not a floating numpy array or CPU torch tensor, or a key that is not a string.
    ShapeError
        An empty structure, or one with no values.
    """
    if isinstance(values, Mapping):
        names: Optional[Tuple[str, ...]] = tuple(values.keys())
        if not all(isinstance(k, str) for k in names):
            raise InputTypeError("the keys of a structured update must be strings (as a state_dict's are)")
        items = list(values.values())
    else:
        names, items = None, list(values)
    if not items:
        raise ShapeError("the structured update is empty: there is nothing to encrypt")
    parts, shapes, dtypes = [], [], []
    for i, value in enumerate(items):
        label = f"values[{names[i]!r}]" if names is not None else f"values[{i}]"
        array, dtype = _part(value, label)
        parts.append(array.reshape(-1))
        shapes.append(tuple(int(d) for d in array.shape))
        dtypes.append(dtype)
    wide = any(p.dtype == np.float64 for p in parts)
    flat = np.concatenate([p.astype(np.float64 if wide else np.float32, copy=False) for p in parts])
    if flat.size == 0:
        raise ShapeError("the structured update holds no values")
    return flat, Layout(names, tuple(shapes), tuple(dtypes))


def _items(values: Any) -> Tuple[Optional[Tuple[str, ...]], List[Any]]:
    if isinstance(values, Mapping):
        names: Optional[Tuple[str, ...]] = tuple(values.keys())
        if not all(isinstance(k, str) for k in names):
            raise InputTypeError("the keys of a structured update must be strings (as a state_dict's are)")
        return names, list(values.values())
    return None, list(values)


def _on_cuda(value: Any) -> bool:
    return _is_torch(value) and getattr(getattr(value, "device", None), "type", None) == "cuda"


def _layout(values: Any) -> Layout:
    """A structure's layout without converting its parts (CUDA tensors stay where they are)."""
    names, items = _items(values)
    shapes, dtypes = [], []
    for i, value in enumerate(items):
        if _on_cuda(value):
            label = f"values[{names[i]!r}]" if names is not None else f"values[{i}]"
            dtype = str(value.dtype).replace("torch.", "")
            if not value.is_floating_point():
                raise InputTypeError(f"{label} is a torch {dtype} tensor; only floating tensors are encrypted (leave it out)")
            shapes.append(tuple(int(d) for d in value.shape))
            dtypes.append("torch." + dtype)
        else:
            array, dtype = _part(value, f"values[{names[i]!r}]" if names is not None else f"values[{i}]")
            shapes.append(tuple(int(d) for d in array.shape))
            dtypes.append(dtype)
    return Layout(names, tuple(shapes), tuple(dtypes))


def flatten_on_device(values: Any) -> Optional[Tuple[Any, Layout]]:
    """A structured update whose parts are all CUDA torch tensors, flattened on their device into one
    contiguous float32 tensor (float64 if any part is), and its layout; None for any other structure.

    Raises
    ------
    InputTypeError
        Parts on different CUDA devices, or a part that is not floating.
    """
    names, items = _items(values)
    if not items or not all(_on_cuda(v) for v in items):
        return None
    layout = _layout(values)
    if len({v.device for v in items}) > 1:
        raise InputTypeError("the structured update's tensors are on different CUDA devices; put them on one")
    import torch

    wide = any(v.dtype == torch.float64 for v in items)
    flat = torch.cat([v.detach().reshape(-1).to(torch.float64 if wide else torch.float32) for v in items])
    if flat.numel() == 0:
        raise ShapeError("the structured update holds no values")
    return flat, layout


def unflatten(flat: np.ndarray, like: Any) -> Any:
    """Rebuild ``like``'s structure from a decrypted flat vector: same names (or order), shapes
    and dtypes; torch tensors where ``like`` holds torch tensors, numpy arrays otherwise.

    Raises
    ------
    LengthMismatchError
        ``like`` holds another number of values than ``flat``.
    """
    layout = _layout(like)
    parts = _items(like)[1]
    if layout.size != flat.size:
        raise LengthMismatchError(
            f"the decrypted update holds {flat.size} values; the structure passed as like= holds {layout.size} "
            "(it must be the structure that was encrypted, in the same order)"
        )
    out: List[Any] = []
    at = 0
    for part, shape, dtype in zip(parts, layout.shapes, layout.dtypes):
        n = int(np.prod(shape, dtype=np.int64))
        chunk = flat[at:at + n].reshape(shape)
        at += n
        kind, name = dtype.split(".", 1)
        if kind == "torch":
            import torch

            tensor = torch.from_numpy(np.ascontiguousarray(chunk)).to(getattr(torch, name))
            out.append(tensor.to(part.device) if _on_cuda(part) else tensor)
        else:
            out.append(chunk.astype(np.dtype(name)))
    if layout.names is not None:
        return dict(zip(layout.names, out))
    return out if isinstance(like, list) else tuple(out)


def check_same(encrypted: Layout, like: Any) -> None:
    """Refuse a ``like`` whose names or shapes differ from the structure that was encrypted."""
    theirs = _layout(like)
    if (encrypted.names, encrypted.shapes) != (theirs.names, theirs.shapes):
        raise ShapeError("like= has other names or shapes than the structure that was encrypted")
