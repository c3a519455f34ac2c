#pragma once

// SEAL's uniform sampling (the expansion of a seeded ciphertext's c1 = a) from a Blake2xb stream,
// shared by the GPU path and its host driver: the stream's first L * N words, limb after limb,
// each reduced modulo its prime, except that a word in the incomplete last multiple of the prime
// is replaced, in order, by the next unused word of the stream (itself checked the same way).
// Today the GPU makes the streams (blake2.cu) and this in-order pass runs on the host; a device
// reduction with an in-order fix-up of the rare rejections is the next step.

#include <cstdint>
#include "cuda/arith.cuh"
#include "cuda/blake2.cuh"

namespace fhto
{
    namespace cuda
    {
        /** One prime as the sampler needs it: q, floor(2^128 / q)'s high word, the rejection bound. */
        struct UniformPrime
        {
            std::uint64_t q;
            std::uint64_t ratio_hi;
            std::uint64_t max_multiple;
        };

        /**
        Words drawn for one expansion: limbs * n, then spares for the rejected words. SEAL's primes
        reject a word with probability below 2^-8, so the expected need is under limbs * n / 256;
        running out of limbs * n / 16 + 64 spares is a DeviceError, not a wrong answer.
        */
        inline std::size_t uniform_stream_words(std::size_t limbs, std::size_t n)
        {
            return limbs * n + limbs * n / 16 + 64;
        }

        /** SEAL's barrett_reduce_64: x mod q. */
        FHTO_HD std::uint64_t barrett_reduce(std::uint64_t x, const UniformPrime &p)
        {
            const std::uint64_t r = x - mulhi64(x, p.ratio_hi) * p.q;
            return r >= p.q ? r - p.q : r;
        }

        /**
        The expansion of one seed into limbs * n residues (out), on the host: the stream's words
        `stream` (at least limbs * n of them, then the spares) are consumed exactly as SEAL does.
        Returns false if the spares ran out (the caller draws more).
        */
        inline bool expand_uniform_host(
            const std::uint64_t *stream, std::uint64_t stream_words, std::uint64_t n, std::uint64_t limbs,
            const UniformPrime *primes, std::uint64_t *out)
        {
            std::uint64_t next = n * limbs;
            for (std::uint64_t l = 0; l < limbs; l++)
            {
                for (std::uint64_t i = 0; i < n; i++)
                {
                    std::uint64_t w = stream[l * n + i];
                    while (w >= primes[l].max_multiple)
                    {
                        if (next == stream_words)
                        {
                            return false;
                        }
                        w = stream[next++];
                    }
                    out[l * n + i] = barrett_reduce(w, primes[l]);
                }
            }
            return true;
        }
    } // namespace cuda
} // namespace fhto
