"""CKKS parameter sets, their security check and the presets.

Only additions happen on ciphertexts, so parameters can be chosen for addition alone. Every
set must satisfy the HomomorphicEncryption.org 128-bit bound on log2 q for its ring degree N.

How a choice bounds precision and range (V = N values per ciphertext, two per complex slot):

* range: every encoding must fit SEAL's encoder (its largest coefficient at most 2^(B-2), B the
  bit count of the data modulus q: the product of all primes but the last when there are
  several), and a sum of P contributions decrypts correctly while its coefficients stay inside
  (-q/2, q/2). Both hold while every |weight * value| is at most ``max_abs_value(P)`` =
  min(2^(B-2), q / (2P) - 1 - e_max) / (sqrt(2) * scale); the first limit is the one for P = 1;
* precision: every decrypted value of such a sum is within ``error_bound(P, max_abs=M)`` =
  P * (N * (1 + e_max) / scale + rho * M) of the true sum, for contributions whose values are at
  most M in magnitude (M defaults to the whole range). e_max = 21 for secret-key (symmetric)
  encryption and 21 * (2N + 1) for public-key encryption (SEAL's centered binomial noise is at
  most 21 per coefficient); rho = sqrt(2N) * (2f + 5u), u = 2^-53 and f the worst-case relative
  error of a size-N FFT in double precision, covers the floating-point error of encoding and
  decoding, which grows with the values. Both terms are worst cases; measured errors are far
  below them (see the tests at the edge of each preset's range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Tuple

from . import _core
from .errors import ParameterError

__all__ = ["Params", "PRESETS", "AGGREGATION", "COMPACT", "CONSERVATIVE", "THRESHOLD", "SECURITY_BOUNDS", "get_params"]

#: HomomorphicEncryption.org 128-bit classical bound on log2 q per ring degree.
SECURITY_BOUNDS: Dict[int, int] = {n: _core.max_secure_coeff_bits(n) for n in (1024, 2048, 4096, 8192, 16384, 32768)}


@dataclass(frozen=True)
class Params:
    """A CKKS parameter set.

    Parameters
    ----------
    poly_modulus_degree:
        Ring degree N (a power of two from 1024 to 32768). One ciphertext carries N values.
    coeff_modulus_bits:
        Bit sizes (20 to 60) of the coefficient-modulus primes. With several primes the last is
        SEAL's special prime, used only for key switching; a single prime disables key
        switching, which addition never needs.
    scale_bits:
        The encoding scale is 2**scale_bits: more bits, more precision, less range.
    packed:
        Whether batches store each coefficient in exactly its prime's bit size instead of SEAL's
        64-bit words (default for this key set's uploads; any call can override it). Packed
        batches are smaller; unpacked ones are SEAL's own serialization, loadable by any SEAL
        4.1 program as they are.
    name:
        Optional label (the preset name).

    Raises
    ------
    ParameterError
        If the set is invalid or exceeds the 128-bit security bound (the message states it).
    """

    poly_modulus_degree: int
    coeff_modulus_bits: Tuple[int, ...]
    scale_bits: int
    packed: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.poly_modulus_degree, int) or isinstance(self.poly_modulus_degree, bool):
            raise ParameterError(f"poly_modulus_degree must be an int; got {self.poly_modulus_degree!r}")
        bits = tuple(self.coeff_modulus_bits)
        if not bits or not all(isinstance(b, int) and not isinstance(b, bool) for b in bits):
            raise ParameterError(f"coeff_modulus_bits must be a non-empty sequence of ints; got {self.coeff_modulus_bits!r}")
        if not isinstance(self.scale_bits, int) or isinstance(self.scale_bits, bool):
            raise ParameterError(f"scale_bits must be an int; got {self.scale_bits!r}")
        if not isinstance(self.packed, bool):
            raise ParameterError(f"packed must be a bool; got {self.packed!r}")
        object.__setattr__(self, "coeff_modulus_bits", bits)
        _core.validate_params(self.poly_modulus_degree, list(bits), self.scale_bits, self.packing)

    @property
    def packing(self) -> "_core.Packing":
        return _core.Packing.bits if self.packed else _core.Packing.none

    @property
    def values_per_ciphertext(self) -> int:
        """Real values one ciphertext carries: two per complex slot, so N."""
        return self.poly_modulus_degree

    @property
    def security_bound_bits(self) -> int:
        """The 128-bit bound on log2 q for this N."""
        return SECURITY_BOUNDS[self.poly_modulus_degree]

    @property
    def data_modulus_bits(self) -> int:
        """Nominal bits of the modulus data live in (all primes but the special one)."""
        bits = self.coeff_modulus_bits
        return bits[0] if len(bits) == 1 else sum(bits[:-1])

    def max_abs_value(self, parties: int = 1) -> float:
        """Approximate largest |weight * value| for a sum of ``parties`` contributions.

        Computed from the nominal prime sizes; a key set's own
        :meth:`fhto_native.KeySet.max_abs_value` uses the exact primes and is what encryption checks.
        """
        # min(2^(B-2), q / (2P)) with q ~ 2^B: the encoder's limit binds for one party.
        return 2.0 ** (self.data_modulus_bits - 1 - self.scale_bits) / math.sqrt(2.0) / max(parties, 2)

    def describe(self) -> str:
        bits = ", ".join(str(b) for b in self.coeff_modulus_bits)
        packed = ", bit-packed" if self.packed else ""
        return f"{self.name}: N={self.poly_modulus_degree}, q=[{bits}] bits, scale=2^{self.scale_bits}{packed}"


#: Addition-only aggregation: N=4096 and one 60-bit prime (log2 q = 60 of the 109 allowed).
#: One ciphertext carries 4096 values; secret-key ciphertexts ship seeded, 8 bytes per value.
#: Range 1.85e5 for one party, 3.7e5 / parties for two or more; measured error ~1e-9 per value of a
#: sum (worst case 8.2e-8 per party, plus 1.8e-12 times the values' magnitude).
AGGREGATION = Params(4096, (60,), 40, name="aggregation")

#: Compact: the smallest uploads that keep the worst-case error of a 100-hospital mean under 1e-6.
#: N=4096, one 56-bit prime, scale 2^37, coefficients bit-packed: 7.07 bytes per value. Range
#: 9.3e4 for one party, 1.85e5 / parties for two or more; worst-case error 6.6e-7 per party plus
#: 1.8e-12 times the values' magnitude.
COMPACT = Params(4096, (56,), 37, packed=True, name="compact")

#: Conservative: N=8192 with primes [60, 40, 40, 60] (200 of 218 bits), the layout SEAL's examples
#: use, leaving two multiplicative levels and ~2^95 of range; 24 bytes per value seeded. Its error
#: grows with the values (2.6e-12 times their magnitude, worst case): the range is wide, but a
#: double-precision value of 1e10 is only exact to ~1e-6 anyway.
CONSERVATIVE = Params(8192, (60, 40, 40, 60), 40, name="conservative")

#: Threshold: multiparty keys (fhto_native.multiparty). N=8192, data modulus two 48-bit primes, a
#: 60-bit special prime (156 of 218 bits): room for decryption shares' flooding noise wide enough
#: for 30 bits of statistical security over 2^36 decrypted coefficients, with the mean of 100
#: hospitals' updates in [-1, 1] still within 1e-6 (docs/MULTIPARTY.md). Public-key uploads,
#: bit-packed: 24 bytes per value. Range 181 for one party, 362 / parties for two or more.
THRESHOLD = Params(8192, (48, 48, 60), 86, packed=True, name="threshold")

PRESETS: Dict[str, Params] = {
    "aggregation": AGGREGATION,
    "compact": COMPACT,
    "conservative": CONSERVATIVE,
    "threshold": THRESHOLD,
}


def get_params(params: "Params | str | None") -> Params:
    """Resolve a preset name, a :class:`Params`, or ``None`` (the aggregation preset)."""
    if params is None:
        return AGGREGATION
    if isinstance(params, Params):
        return params
    if isinstance(params, str):
        try:
            return PRESETS[params]
        except KeyError:
            raise ParameterError(f"unknown parameter preset {params!r}; choose one of {sorted(PRESETS)}") from None
    raise ParameterError(f"params must be a Params, a preset name or None; got {type(params).__name__}")
