"""The study's key model: one key set shared by the hospitals, or multiparty threshold keys.

Both give the hospitals something to encrypt with, the server a public context, and the round a
key holder with ``decrypt_sum``. With ``--keys threshold`` no party holds the secret key: the
hospitals generate it together in round 0 (:func:`fhto_native.fl.threshold.key_generation`) and
t of them decrypt each sum with shares.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from ..engine import KeySet, PublicContext
from ..fl.keyholder import KeyHolder
from ..fl.threshold import KeyGeneration, ThresholdKeyHolder, key_generation
from ..multiparty import Consortium, Party
from .config import StudyConfig
from .hospital import derived_seed

__all__ = ["SharedKeys", "ThresholdKeys", "make_keys", "KeyModel"]


class SharedKeys:
    """Every hospital holds the same key set (``fhto keygen``); a key holder decrypts sums."""

    kind = "shared"

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    @property
    def encryptor(self) -> KeySet:
        """What a hospital encrypts with."""
        return self.keys

    def public_context(self) -> PublicContext:
        return self.keys.public_context()

    def key_holder(self, min_contributions: int, weight_unit: float = 1.0) -> KeyHolder:
        return KeyHolder(self.keys, min_contributions=min_contributions)

    def decrypt_sum(self, data: bytes, *, tags: Optional[Sequence[bytes]] = None, round: Optional[int] = None) -> np.ndarray:
        return self.keys.decrypt(data, threads=1)

    def tagger(self, name: str) -> None:
        """A shared key needs no contribution tags."""
        return None

    def weight_unit(self, total_rows: int) -> float:
        """FedAvg weights are n_i / unit; a shared key's range allows the raw row counts."""
        return 1.0

    def describe(self) -> Dict[str, Any]:
        return {"kind": "shared", "description": "one key set held by every hospital", "fingerprint": self.keys.fingerprint}


class ThresholdKeys:
    """Multiparty keys: t of the n hospitals decrypt each sum together; nobody holds the key."""

    kind = "threshold"

    def __init__(self, generation: KeyGeneration, names: Sequence[str], *, seed: Optional[int] = None) -> None:
        self.generation = generation
        self.names = list(names)
        self.parties = {
            name: Party(generation.shares[name], generation.public, min_contributions=2,
                        seed=None if seed is None else derived_seed("flooding", seed, name), threads=1)
            for name in self.names
        }
        self.holders: List[ThresholdKeyHolder] = []

    @property
    def consortium(self) -> Consortium:
        return self.generation.consortium

    @property
    def encryptor(self) -> PublicContext:
        return self.generation.public

    def public_context(self) -> PublicContext:
        return self.generation.public

    def key_holder(self, min_contributions: int, weight_unit: float = 1.0) -> "_Rescaled":
        """A key holder for sums of updates weighted n_i / weight_unit: it returns the sum times
        weight_unit, the sum of n_i-weighted updates the server expects."""
        holder = ThresholdKeyHolder(self.consortium, self.generation.public, self.parties)
        self.holders.append(holder)
        return _Rescaled(holder, weight_unit)

    def decrypt_sum(self, data: bytes, *, tags: Optional[Sequence[bytes]] = None, round: Optional[int] = None) -> np.ndarray:
        return self.key_holder(2).decrypt_sum(data, tags=tags, round=round)

    def tagger(self, name: str) -> Callable[[bytes, int], bytes]:
        """What hospital ``name`` signs its uploads with: its tag of the upload for a round."""
        share, public = self.generation.shares[name], self.generation.public
        return lambda upload, round: share.sign_tag(public, upload, round).to_bytes()

    def weight_unit(self, total_rows: int) -> float:
        """FedAvg weights are n_i / N (N the total rows, public after standardization): the
        threshold preset's range is narrow, and FedAvg divides by the sum of weights anyway."""
        return float(total_rows)

    def describe(self) -> Dict[str, Any]:
        out = self.generation.describe()
        shares = [b for h in self.holders for entry in h.log for b in entry["share_bytes"]]
        out["decryptions"] = sum(len(h.log) for h in self.holders)
        out["share_bytes_mean"] = float(np.mean(shares)) if shares else 0.0
        return out


class _Rescaled:
    """A threshold key holder whose decrypted sums are multiplied by a public weight unit."""

    def __init__(self, holder: ThresholdKeyHolder, unit: float) -> None:
        self.holder, self.unit = holder, float(unit)

    def decrypt_sum(self, data: bytes, *, tags: Optional[Sequence[bytes]] = None, round: Optional[int] = None) -> np.ndarray:
        values = self.holder.decrypt_sum(data, tags=tags, round=round)
        return values * self.unit if self.unit != 1.0 else values


KeyModel = Union[SharedKeys, ThresholdKeys]


def make_keys(config: StudyConfig, names: Sequence[str]) -> KeyModel:
    """The study's keys from its configuration, reproducibly from its seed."""
    seed = derived_seed("keys", config.seed)
    if config.keys == "shared":
        return SharedKeys(KeySet.generate(config.preset, seed=seed))
    consortium = Consortium.create(len(names), config.key_threshold or len(names), config.preset, seed=seed)
    return ThresholdKeys(key_generation(consortium, names, seed=seed), names, seed=seed)
