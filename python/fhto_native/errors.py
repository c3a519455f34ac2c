"""The exception hierarchy of fhto_native.

Every error raised on purpose derives from :class:`FhtoError` and from the builtin that
matches its meaning, so callers can catch either (``except ValueError`` keeps working).
The native core raises these same classes.
"""
from __future__ import annotations

from typing import Optional

__all__ = [
    "FhtoError",
    "ParameterError",
    "ValueRangeError",
    "KeyMismatchError",
    "LengthMismatchError",
    "FormatError",
    "SecretKeyRequiredError",
    "DecryptionRefusedError",
    "DeviceError",
    "InputTypeError",
    "ShapeError",
    "DataError",
    "StorageError",
]


class FhtoError(Exception):
    """Base class of every error fhto_native raises on purpose."""


class ParameterError(FhtoError, ValueError):
    """Invalid or insecure encryption parameters, or a bad option value."""


class ValueRangeError(FhtoError, ValueError):
    """Values that cannot be encrypted faithfully: empty, not finite, or too large for the range."""


class KeyMismatchError(FhtoError, ValueError):
    """Ciphertexts made under another key set or parameter set than the context in use."""


class LengthMismatchError(FhtoError, ValueError):
    """Ciphertext batches holding different numbers of values combined."""


class FormatError(FhtoError, ValueError):
    """Bytes that are not a well-formed FHTO object: truncated, corrupted or foreign."""


class SecretKeyRequiredError(FhtoError, PermissionError):
    """An operation that needs the secret key was asked of a public context."""


class DeviceError(FhtoError, RuntimeError):
    """The GPU path failed or is absent: no CUDA device, out of device memory, a failed kernel.
    Nothing partial is returned, and the device is left usable."""


class DecryptionRefusedError(FhtoError, PermissionError):
    """A key holder refused to decrypt or to issue a decryption share: not a sum of enough
    contributions, a sum it already shared, a decrypting set it is not part of, or an exhausted
    decryption budget."""


class InputTypeError(FhtoError, TypeError):
    """An argument of the wrong type (for example an integer array where floats are needed)."""


class ShapeError(FhtoError, ValueError):
    """An input of the wrong shape or size (not one-dimensional, or empty)."""


class DataError(FhtoError, ValueError):
    """Unusable training data: a missing or non-numeric column, an empty hospital, an unknown arm.
    The message names the file (or data set) and the column."""


class StorageError(FhtoError, OSError):
    """A file or folder the operating system refused to create, write or replace: permission
    denied, a read-only file system, a file where a folder should be, a missing folder, a full
    disk. The message names the path and the system's reason (``cannot write out/state.json: No
    space left on device``); ``errno`` is the system's error number and ``path`` the path."""

    def __init__(self, message: str, *, errno: Optional[int] = None, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.errno = errno  # an OSError attribute; strerror stays None, so str() is the message alone
        self.path = path
