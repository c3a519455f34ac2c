"""FHTO native: batched CKKS encryption and homomorphic aggregation of model updates.

Hospitals encrypt their flat model updates with :meth:`KeySet.encrypt`; the server sums the
ciphertexts with an :class:`Accumulator` over a :class:`PublicContext` that holds no secret key;
key holders decrypt only the sum with :meth:`KeySet.decrypt`. Built on Microsoft SEAL.
"""
from __future__ import annotations

from . import _core
from .engine import Accumulator, EncryptedUpdate, KeySet, PublicContext, aggregate, allow_secret_pickling
from . import cuda, errors, multiparty
from .errors import *  # noqa: F401,F403 (the hierarchy is part of the public API)
from .params import AGGREGATION, COMPACT, CONSERVATIVE, PRESETS, THRESHOLD, SECURITY_BOUNDS, Params, get_params

__version__ = "0.1.0"
SEAL_VERSION: str = _core.SEAL_VERSION

__all__ = [
    "__version__",
    "SEAL_VERSION",
    "Params",
    "PRESETS",
    "AGGREGATION",
    "COMPACT",
    "CONSERVATIVE",
    "THRESHOLD",
    "SECURITY_BOUNDS",
    "get_params",
    "KeySet",
    "PublicContext",
    "EncryptedUpdate",
    "Accumulator",
    "aggregate",
    "allow_secret_pickling",
] + errors.__all__
