#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "seal/seal.h"

namespace fhto
{
    /** How each ciphertext's coefficients are stored on the wire. */
    enum class Packing : std::uint8_t
    {
        none = 0, ///< SEAL's own serialization, loadable by any SEAL 4.1 program as it is
        bits = 1 ///< SEAL's serialization with each coefficient in exactly its prime's bit size
    };

    /**
    A CKKS parameter set: ring degree N, the bit sizes of the coefficient-modulus primes, and
    the encoding scale 2^scale_bits. With more than one prime, the last is SEAL's special prime
    (used only for key switching) and data live modulo the product of the others; with a single
    prime, data live modulo that prime and key switching is disabled, which addition never needs.
    */
    struct Params
    {
        std::size_t poly_modulus_degree = 0;
        std::vector<int> coeff_modulus_bits;
        int scale_bits = 0;
        /** The wire packing batches use unless a call asks otherwise (not part of the cryptography). */
        Packing packing = Packing::none;
    };

    /** Noise bound of SEAL's centered binomial sampler (21 coin pairs: |e| <= 21). */
    constexpr double kNoiseMax = 21.0;

    /**
    The HomomorphicEncryption.org 128-bit classical bound on log2 q for ring degree n (as
    tabulated in SEAL), or 0 where n is not a supported degree.
    */
    int max_secure_coeff_bits(std::size_t n) noexcept;

    /**
    Checks a parameter set without building anything.
    @throws ParameterError naming the offending field, and the security bound when it is exceeded
    */
    void validate_params(const Params &params);

    /**
    Builds SEAL encryption parameters (fresh primes of the requested sizes).
    @throws ParameterError if the parameters are invalid or SEAL finds no such primes
    */
    seal::EncryptionParameters make_seal_parameters(const Params &params);

    /** Human-readable form, e.g. "N=4096, q=[60] bits, scale=2^40". */
    std::string describe(const Params &params);
} // namespace fhto
