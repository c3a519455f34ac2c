"""Key sets, public contexts, encrypted updates and the server's streaming accumulator.

The three roles of a federated round map onto three objects:

* a hospital holds a :class:`KeySet` (secret key shared by the hospitals) and calls
  :meth:`KeySet.encrypt` on its flat update, getting an :class:`EncryptedUpdate`;
* the server holds a :class:`PublicContext` (no secret key) and sums uploads in an
  :class:`Accumulator`, one at a time;
* a key holder calls :meth:`KeySet.decrypt` on the sum.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from . import _core, cuda
from ._files import write_atomic
from ._inputs import as_buffer, as_parties, as_seed, as_threads, as_update, as_weight, device_array
from .errors import FormatError, InputTypeError, ParameterError
from .params import Params, get_params
from .structure import Layout, check_same, flatten, flatten_on_device, is_structured, unflatten

__all__ = ["KeySet", "PublicContext", "EncryptedUpdate", "Accumulator", "aggregate", "allow_secret_pickling"]

_SECRET_PICKLING = contextvars.ContextVar("fhto_secret_pickling", default=False)


@contextlib.contextmanager
def allow_secret_pickling():
    """Within this block, a :class:`KeySet` may be pickled (its secret key included). Outside it,
    pickling a key set is refused: it would copy the secret key wherever the pickle goes (worker
    processes, caches, logs). A :class:`PublicContext` always pickles."""
    token = _SECRET_PICKLING.set(True)
    try:
        yield
    finally:
        _SECRET_PICKLING.reset(token)

Mode = _core.Mode
PathLike = Union[str, "os.PathLike[str]"]

_MODES = {"symmetric": Mode.symmetric, "public_key": Mode.public_key}


def _as_mode(mode: Any) -> "_core.Mode":
    if isinstance(mode, Mode) and mode != Mode.sum:
        return mode
    try:
        return _MODES[mode]
    except (KeyError, TypeError):
        raise ParameterError(f"mode must be 'symmetric' or 'public_key'; got {mode!r}") from None


class _Context:
    """What a key set and a public context share: parameters, fingerprint, encryption."""

    _default_mode = "public_key"

    def __init__(self, core: "_core.Context") -> None:
        self._core = core

    # -- description -------------------------------------------------------------------
    @property
    def params(self) -> Params:
        """The parameter set (with the bit sizes of the actual primes)."""
        return Params(
            self._core.poly_modulus_degree,
            tuple(self._core.coeff_modulus_bits),
            self._core.scale_bits,
            packed=self._core.packing == _core.Packing.bits,
        )

    @property
    def fingerprint(self) -> str:
        """Hex fingerprint of parameters and keys; every batch carries it."""
        return self._core.fingerprint.hex()

    @property
    def values_per_ciphertext(self) -> int:
        return self._core.values_per_ciphertext

    def max_abs_value(self, parties: int = 1, mode: str = "symmetric") -> float:
        """Largest |weight * value| each of ``parties`` contributions may hold."""
        return self._core.max_abs_value(as_parties(parties), _as_mode(mode))

    def error_bound(self, parties: int = 1, mode: str = "symmetric", *, max_abs: Optional[float] = None) -> float:
        """Worst-case absolute error of any value of a decrypted sum of ``parties`` contributions.

        The error has a part that does not depend on the values (encryption noise and the
        rounding of the encoding) and a floating-point part proportional to the largest
        |weight * value| of a contribution. ``max_abs`` is that largest magnitude; by default
        the whole range, ``max_abs_value(parties, mode)``, so the bound holds for every input
        encryption accepts. Pass the magnitude your values really have for a tighter bound.
        """
        limit = self.max_abs_value(parties, mode)
        if max_abs is None:
            return self._core.error_bound(as_parties(parties), _as_mode(mode), limit)
        if isinstance(max_abs, bool) or not isinstance(max_abs, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"max_abs must be a real number or None; got {type(max_abs).__name__}")
        magnitude = float(max_abs)
        if not 0 <= magnitude <= limit:
            raise ParameterError(
                f"max_abs must be between 0 and max_abs_value({parties}, {mode!r}) = {limit:.6g}; got {max_abs!r}"
            )
        return self._core.error_bound(as_parties(parties), _as_mode(mode), magnitude)

    def _packing(self, packed: Optional[bool]) -> "_core.Packing":
        if packed is None:
            return self._core.packing
        if not isinstance(packed, bool):
            raise InputTypeError(f"packed must be a bool or None; got {type(packed).__name__}")
        return _core.Packing.bits if packed else _core.Packing.none

    def encrypted_size(self, value_count: int, mode: Optional[str] = None, packed: Optional[bool] = None) -> int:
        """Bytes of the batch that encrypting ``value_count`` values produces."""
        if not isinstance(value_count, (int, np.integer)) or value_count < 1:
            raise ParameterError(f"value_count must be a positive int; got {value_count!r}")
        return _core.encrypted_size(
            self._core, int(value_count), _as_mode(mode or self._default_mode), self._packing(packed)
        )

    def seal_parameters(self) -> bytes:
        """SEAL's own serialization of the encryption parameters (loads in any SEAL 4.1)."""
        return self._core.seal_parameters_bytes()

    def seal_public_key(self) -> bytes:
        """SEAL's own serialization of the public key."""
        return self._core.seal_public_key_bytes()

    # -- encryption --------------------------------------------------------------------
    def encrypt(
        self,
        values: Any,
        *,
        weight: float = 1.0,
        parties: int = 1,
        mode: Optional[str] = None,
        packed: Optional[bool] = None,
        threads: Optional[int] = None,
        seed: Optional[int] = None,
        device: Any = None,
    ) -> "EncryptedUpdate":
        """Encrypt a whole flat update in one call.

        Parameters
        ----------
        values:
            1-D float32 or float64 numpy array or CPU torch tensor, any length; or a structured
            update: a torch ``state_dict`` (any mapping of tensors or arrays) or a list of tensors
            or arrays, flattened in its own order (see :mod:`fhto_native.structure`: float16 and
            bfloat16 upcast to float32, tensors that require grad detached). Decrypt it back with
            ``decrypt(..., like=the_same_structure)``.
        weight:
            Every value is multiplied by it while encoding; FedAvg hospitals pass their sample
            count ``n_i`` and the decryptor divides the sum by ``sum(n_i)``.
        parties:
            How many contributions will be summed; values are range-checked so that such a sum
            still decrypts correctly, and the server refuses to sum more.
        mode:
            ``"symmetric"`` (secret key, seeded: half the bytes; the default for a key set) or
            ``"public_key"`` (the only choice for a public context).
        packed:
            Store coefficients bit-packed (smaller) or as SEAL's own serialization (loadable by
            any SEAL 4.1 program); ``None`` uses the key set's parameters (``Params.packed``).
        threads:
            Worker threads; ``None`` uses every core this process may run on.
        seed:
            For reproducible studies and tests only; ``None`` (the default) draws fresh
            randomness from the operating system. With an int ``0 <= seed < 2**64``, ciphertext
            ``k`` of the batch takes its randomness from a seed derived from ``(seed, k)`` (the
            bootstrap seed in secret-key mode; the stream of u, e0 and e1 in public-key mode), so
            the bytes are identical across calls and whatever ``threads`` is.
            Never reuse a seed for two different updates under one key: the two batches then
            share their mask and noise, and their difference can be read off the ciphertexts.
            A study derives a distinct seed per (round, hospital, purpose).
        device:
            Where the batch is made (see :mod:`fhto_native.cuda`): ``None`` or ``"auto"`` uses a
            usable GPU for secret-key batches of values already in GPU memory (a CUDA tensor or
            cupy array, read in place) or of at least ``cuda.GPU_MIN_VALUES`` host values, and the
            CPU otherwise; ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` force one. The bytes are the same
            either way for the same ``seed``.

        Raises
        ------
        InputTypeError, ShapeError
            Wrong type, dtype or shape, or empty; a seed that is not an int.
        ParameterError
            A seed outside ``[0, 2**64)``.
        ValueRangeError
            A non-finite value (the message names the first index) or one too large for the range.
        SecretKeyRequiredError
            ``mode="symmetric"`` on a public context.
        DeviceError
            ``device="cuda"`` without a usable CUDA device or CUDA path, values on another device
            than the one asked for, or a CUDA failure (out of device memory included); nothing is
            returned and the device stays usable.
        """
        layout: Optional[Layout] = None
        if is_structured(values):
            on_device = flatten_on_device(values)
            gpu_values = device_array(on_device[0]) if on_device is not None else None
            layout = on_device[1] if on_device is not None else None
        else:
            gpu_values = device_array(values)
        core_mode = _as_mode(mode or self._default_mode)
        packing = self._packing(packed)
        options = (as_weight(weight), as_parties(parties), as_threads(threads), as_seed(seed))
        if gpu_values is not None:
            array = gpu_values
            size = gpu_values.count
        elif is_structured(values):
            array, layout = flatten(values)
            size = array.size
        else:
            array = as_update(values)
            size = array.size
        target = cuda._target(device, core_mode == _core.Mode.symmetric, gpu_values, size)
        if target is not None:
            data = cuda._encrypt(self._core, array, target, packing, *options)
        else:
            if gpu_values is not None:
                array = as_update(gpu_values.to_host())
            data = _core.encrypt(self._core, array, core_mode, packing, *options)
        update = EncryptedUpdate._trusted(data)
        update._layout = layout
        return update

    def sum(
        self, updates: Iterable[Any], *, packed: Optional[bool] = None, threads: Optional[int] = None, device: Any = None
    ) -> "EncryptedUpdate":
        """The homomorphic sum of many uploads in one call, as a batch in ``sum`` mode.

        The same checks, in the same order, and the same ciphertexts as adding the uploads one by
        one to an :class:`Accumulator`. ``device`` as in :meth:`encrypt`: ``None``/``"auto"``
        sums seeded secret-key uploads on a usable GPU (their records checked, their seeds
        expanded and everything added on the device) and anything else on the CPU.

        Raises
        ------
        KeyMismatchError, LengthMismatchError, FormatError, ValueRangeError
            As :meth:`Accumulator.add`, naming the batch.
        ParameterError
            Nothing to sum; ``device="cuda"`` for uploads that are not seeded secret-key batches.
        DeviceError
            ``device="cuda"`` without a usable CUDA device, or a CUDA failure.
        """
        batches = [u.to_bytes() if isinstance(u, EncryptedUpdate) else as_buffer(u, "update") for u in updates]
        if not batches:
            raise ParameterError("there is nothing to sum: pass at least one upload")
        seeded = all(_core.read_header(b)["mode"] == _core.Mode.symmetric for b in batches)
        target = cuda._sum_target(device, seeded)
        if target is not None:
            data = _core.cuda_sum(self._core, batches, target, as_threads(threads), self._packing(packed))
            if data is not None:
                return EncryptedUpdate._trusted(data)
        accumulator = Accumulator(self, threads=threads)
        for batch in batches:
            accumulator.add(batch)
        return accumulator.result(packed)

    def accumulator(self, threads: Optional[int] = None) -> "Accumulator":
        """A new empty :class:`Accumulator` for this key set."""
        return Accumulator(self, threads=threads)

    def __repr__(self) -> str:
        p = self.params
        return (
            f"{type(self).__name__}(N={p.poly_modulus_degree}, q={list(p.coeff_modulus_bits)} bits, "
            f"scale=2^{p.scale_bits}, packed={p.packed}, fingerprint={self.fingerprint})"
        )


class PublicContext(_Context):
    """Parameters and public key, without the secret key: what the aggregation server holds.

    It can check and sum ciphertexts, and encrypt with the public key, but never decrypt.
    """

    _default_mode = "public_key"

    @classmethod
    def from_bytes(cls, data: Any) -> "PublicContext":
        """Load a public context written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            Malformed or corrupted bytes, or a secret key set (load that with :class:`KeySet`).
        """
        buf = as_buffer(data)
        core = _core.Context.from_bytes(buf)
        if core.has_secret_key:
            raise FormatError("these bytes hold a secret key set; a server must get only the public context (KeySet.public_context())")
        return cls(core)

    @classmethod
    def load(cls, path: PathLike) -> "PublicContext":
        return cls.from_bytes(Path(path).read_bytes())

    def to_bytes(self) -> bytes:
        return self._core.to_bytes(False)

    def __reduce__(self):
        """A public context pickles as its bytes (to send it to worker processes)."""
        return (PublicContext.from_bytes, (self.to_bytes(),))

    def save(self, path: PathLike) -> None:
        """Write the public context to ``path`` atomically.

        Raises
        ------
        StorageError
            The system refused (permission, missing folder, full disk); the message names the path.
        """
        write_atomic(path, self.to_bytes())


class KeySet(_Context):
    """A CKKS key set: parameters, public key and secret key. Held by hospitals and key holders.

    Examples
    --------
    >>> keys = KeySet.generate("aggregation")
    >>> server_ctx = keys.public_context()
    """

    _default_mode = "symmetric"

    @classmethod
    def generate(cls, params: "Params | str | None" = None, *, seed: Optional[int] = None) -> "KeySet":
        """Generate a fresh key set.

        Parameters
        ----------
        params:
            A :class:`Params`, a preset name, or None (the aggregation preset).
        seed:
            For reproducible studies and tests only, never for production keys: anyone who
            knows the seed can recompute the secret key. ``None`` (the default) draws the keys
            from the operating system's randomness. With an int ``0 <= seed < 2**64`` the secret
            and public key are a deterministic function of ``(params, seed)``; the secret key
            and the public key's randomness come from distinct streams derived from the seed.
            The key set's later encryptions stay random unless given a seed of their own.

        Raises
        ------
        ParameterError
            Invalid or insecure parameters, or a seed outside ``[0, 2**64)``.
        InputTypeError
            A seed that is not an int (a bool, float or string included).
        """
        p = get_params(params)
        s = as_seed(seed)
        return cls(
            _core.Context.generate(p.poly_modulus_degree, list(p.coeff_modulus_bits), p.scale_bits, p.packing, s)
        )

    @classmethod
    def from_bytes(cls, data: Any) -> "KeySet":
        """Load a key set written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            Malformed or corrupted bytes, a public context (no secret key), or a secret key that
            does not match the public key.
        """
        core = _core.Context.from_bytes(as_buffer(data))
        if not core.has_secret_key:
            raise FormatError("these bytes hold a public context without a secret key; load them with PublicContext")
        return cls(core)

    @classmethod
    def load(cls, path: PathLike) -> "KeySet":
        return cls.from_bytes(Path(path).read_bytes())

    def to_bytes(self) -> bytes:
        """The whole key set, secret key included: keep it secret."""
        return self._core.to_bytes(True)

    def __reduce__(self):
        """Refused unless inside :func:`allow_secret_pickling`: a pickle would carry the secret key."""
        if not _SECRET_PICKLING.get():
            raise InputTypeError(
                "pickling a KeySet would copy its secret key; pickle keys.public_context() instead, or do it "
                "deliberately inside fhto_native.allow_secret_pickling()"
            )
        return (KeySet.from_bytes, (self.to_bytes(),))

    def save(self, path: PathLike) -> None:
        """Write the key set to ``path`` with mode 0600 (owner read/write only), atomically.

        The secret key never has a temporary name, even if the process is killed during the save:
        the bytes go to an unnamed file in the target folder, which is linked into place once it is
        complete (an existing file of that name is unlinked just before). Where the system lacks
        unnamed files, a 0600 temporary and a rename are used (see :mod:`fhto_native._files`).
        The folder must exist.

        Raises
        ------
        StorageError
            The system refused (permission, missing folder, full disk); the message names the path.
        """
        write_atomic(path, self.to_bytes(), private=True)

    def public_context(self) -> PublicContext:
        """The same parameters and public key without the secret key: give this to the server."""
        return PublicContext(self._core.public_only())

    def seal_secret_key(self) -> bytes:
        """SEAL's own serialization of the secret key."""
        return self._core.seal_secret_key_bytes()

    def decrypt(self, update: Any, *, threads: Optional[int] = None, like: Any = None, device: Any = None) -> Any:
        """Decrypt and decode a batch (one upload or a sum) to a float64 array of its length, or,
        with ``like`` (a state_dict or list of tensors/arrays, the structure that was encrypted),
        to that structure with its names, shapes and dtypes.

        ``device`` as in :meth:`encrypt`: ``None``/``"auto"`` decrypts batches of at least
        ``cuda.GPU_MIN_VALUES`` values on a usable GPU (the same doubles, bit for bit), the rest
        on the CPU; ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` force one side.

        Raises
        ------
        LengthMismatchError, ShapeError
            ``like`` holds another number of values than the batch, or (when the batch is this
            process's own encryption of a structure) other names or shapes.
        KeyMismatchError
            The batch was made under another key or parameter set.
        FormatError
            Malformed or corrupted bytes.
        DeviceError
            ``device="cuda"`` without a usable CUDA device, or a CUDA failure.
        """
        data = update.to_bytes() if isinstance(update, EncryptedUpdate) else as_buffer(update, "update")
        values = None
        target = cuda._decrypt_target(device, int(_core.read_header(data)["value_count"]))
        if target is not None:
            values = _core.cuda_decrypt(self._core, data, target, as_threads(threads))
        if values is None:
            values = _core.decrypt(self._core, data, as_threads(threads))
        if like is None:
            return values
        if isinstance(update, EncryptedUpdate) and update._layout is not None:
            check_same(update._layout, like)
        return unflatten(values, like)


class EncryptedUpdate:
    """One batch of ciphertexts in the FHTO wire format (see docs/ARCHITECTURE.md).

    Wraps the bytes without copying them. Construct with :meth:`from_bytes` or :meth:`load`,
    which check the header (magic, version, checksum, counts, length); ciphertext checksums
    and the key fingerprint are checked by whoever adds or decrypts it.
    """

    __slots__ = ("_data", "_header", "_layout")

    def __init__(self) -> None:
        raise InputTypeError("use EncryptedUpdate.from_bytes(), .load(), or KeySet/PublicContext.encrypt()")

    @classmethod
    def _trusted(cls, data: bytes) -> "EncryptedUpdate":
        self = object.__new__(cls)
        self._data = data
        self._header = _core.read_header(data)
        self._layout = None  # the structure it was encrypted from, in this process only
        return self

    @classmethod
    def from_bytes(cls, data: Any) -> "EncryptedUpdate":
        buf = as_buffer(data)
        return cls._trusted(bytes(buf) if not isinstance(buf, bytes) else buf)

    @classmethod
    def load(cls, path: PathLike) -> "EncryptedUpdate":
        return cls.from_bytes(Path(path).read_bytes())

    def to_bytes(self) -> bytes:
        return self._data

    def __reduce__(self):
        return (EncryptedUpdate.from_bytes, (bytes(self._data),))

    def save(self, path: PathLike) -> None:
        """Write the batch to ``path`` atomically (:class:`StorageError` when the system refuses)."""
        write_atomic(path, self._data)

    @property
    def nbytes(self) -> int:
        return len(self._data)

    @property
    def value_count(self) -> int:
        return self._header["value_count"]

    @property
    def ciphertext_count(self) -> int:
        return self._header["ciphertext_count"]

    @property
    def mode(self) -> str:
        return self._header["mode"].name

    @property
    def packed(self) -> bool:
        """Whether the coefficients are bit-packed (False: SEAL's own serialization)."""
        return self._header["packing"] == _core.Packing.bits

    @property
    def contributions(self) -> int:
        return self._header["contributions"]

    @property
    def party_budget(self) -> int:
        return self._header["party_budget"]

    @property
    def fingerprint(self) -> str:
        return self._header["fingerprint"].hex()

    @property
    def bytes_per_value(self) -> float:
        return len(self._data) / self.value_count

    def __len__(self) -> int:
        return self.value_count

    def __repr__(self) -> str:
        return (
            f"EncryptedUpdate(values={self.value_count}, ciphertexts={self.ciphertext_count}, mode={self.mode}, "
            f"packed={self.packed}, "
            f"contributions={self.contributions}/{self.party_budget}, bytes={self.nbytes})"
        )


class Accumulator:
    """The server's streaming homomorphic sum: holds one running sum and nothing else.

    Parameters
    ----------
    context:
        A :class:`PublicContext` (the server's) or a :class:`KeySet`; only public material is used.
    threads:
        Worker threads; ``None`` uses every core this process may run on.

    Each :meth:`add` checks the batch (fingerprint, length, checksums, party budget) before it
    touches the sum; a refused batch leaves the sum exactly as it was.
    """

    def __init__(self, context: _Context, *, threads: Optional[int] = None) -> None:
        if not isinstance(context, _Context):
            raise InputTypeError(f"context must be a PublicContext or KeySet; got {type(context).__name__}")
        self._context = context if isinstance(context, PublicContext) else context.public_context()
        self._core = _core.Accumulator(self._context._core, as_threads(threads))

    def add(self, update: Any) -> "Accumulator":
        """Add one hospital's upload (an :class:`EncryptedUpdate` or its bytes), or an earlier sum.

        Raises
        ------
        KeyMismatchError, LengthMismatchError, FormatError, ValueRangeError
            Another key set, another length, malformed bytes, or more contributions than the
            values were range-checked for.
        """
        data = update.to_bytes() if isinstance(update, EncryptedUpdate) else as_buffer(update, "update")
        self._core.add(data)
        return self

    @property
    def contributions(self) -> int:
        return self._core.contributions

    @property
    def value_count(self) -> int:
        return self._core.value_count

    @property
    def context(self) -> PublicContext:
        return self._context

    def result(self, packed: Optional[bool] = None) -> EncryptedUpdate:
        """The running sum as a batch in ``sum`` mode (for the key holder to decrypt).

        ``packed`` as in :meth:`KeySet.encrypt`; ``None`` uses the key set's parameters.

        Raises
        ------
        ParameterError
            Nothing was added yet.
        """
        return EncryptedUpdate._trusted(self._core.to_bytes(self._context._packing(packed)))

    def reset(self) -> None:
        self._core.reset()

    def __repr__(self) -> str:
        return f"Accumulator(contributions={self.contributions}, values={self.value_count})"


def aggregate(updates: Iterable[Any], context: _Context, *, threads: Optional[int] = None) -> EncryptedUpdate:
    """Sum uploads homomorphically, one at a time (the iterable may be a generator reading files)."""
    acc = Accumulator(context, threads=threads)
    for update in updates:
        acc.add(update)
    return acc.result()
