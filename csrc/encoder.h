#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>
#include "context.h"
#include "cuda/encode.cuh"

namespace fhto
{
    /**
    SEAL's CKKSEncoder tables for a context, computed as its constructor does: the index map, the
    inverse root powers (encoding) and root powers (decoding) as (re, im) pairs, scale / n and the
    data primes in the form csrc/cuda/uniform.cuh reduces with.
    */
    struct EncoderTables
    {
        int log_n = 0;
        std::vector<std::uint64_t> index_map;
        std::vector<double> inv_roots, roots;
        double fix = 0;
        std::vector<cuda::UniformPrime> primes;

        std::size_t n() const noexcept
        {
            return std::size_t(1) << log_n;
        }
        cuda::EncodeTables encode() const noexcept;
    };

    EncoderTables encoder_tables(const Context &context);

    /** The context's data primes as SEAL's uniform sampler reduces with them (q, Barrett ratio, rejection bound). */
    std::vector<cuda::UniformPrime> uniform_primes(const Context &context);

    /**
    Encodes ciphertext k's share of a flat update (two values per slot, times `weight`) into
    `plain` (limbs * n words, NTT form), exactly as SEAL's CKKSEncoder::encode does with the
    engine's NTT (the tests compare the bytes of whole encryptions); `work` holds n complex values.
    The values must have passed check_values (the coefficients then fit the modulus).
    */
    template <typename T>
    void encode_ciphertext(
        const Context &context, const EncoderTables &tables, const T *values, std::size_t count, std::size_t k,
        double weight, std::uint64_t *plain, cuda::Complex *work);

    /** Whether encryption uses the engine's encoder (FHTO_ENCODE=seal: SEAL's). */
    bool engine_encoder_enabled() noexcept;
} // namespace fhto
