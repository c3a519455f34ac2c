"""The key-holder role: a hospital-side role that decrypts sums, never the server's.

With the shared key of ``fhto keygen`` every hospital holds the secret key; one of them (or a
party the consortium names) acts as the key holder: it receives the server's encrypted sum,
checks that it is a sum of enough contributions, and returns the plaintext sum. In process that
is a call; in a deployment the server reaches it through its transport (a Flower query message).
Multiparty keys will replace the single decryption by shares behind the same method.
"""
from __future__ import annotations

import numpy as np

from ..engine import EncryptedUpdate, KeySet
from ..errors import ParameterError

__all__ = ["KeyHolder"]


class KeyHolder:
    """Holds the secret key; decrypts only aggregates (sums of at least ``min_contributions``)."""

    def __init__(self, keys: KeySet, min_contributions: int = 1) -> None:
        if not isinstance(keys, KeySet):
            raise ParameterError(f"a key holder needs a KeySet (with the secret key); got {type(keys).__name__}")
        self._keys = keys
        self.min_contributions = min_contributions

    def decrypt_sum(self, data: bytes) -> np.ndarray:
        """The plaintext of an encrypted sum.

        Raises
        ------
        ParameterError
            Not a sum, or a sum of fewer than ``min_contributions`` contributions: a key holder
            never decrypts a single hospital's update.
        FormatError, KeyMismatchError
            Malformed bytes, or a sum under another key set.
        """
        batch = EncryptedUpdate.from_bytes(data)
        if batch.mode != "sum" or batch.contributions < self.min_contributions:
            raise ParameterError(
                f"the key holder decrypts only sums of at least {self.min_contributions} hospitals; "
                f"got a {batch.mode} batch of {batch.contributions}"
            )
        return self._keys.decrypt(batch, threads=1)
