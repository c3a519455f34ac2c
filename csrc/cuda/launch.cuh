#pragma once

// Launchers shared by the CUDA path's pipelines: enqueue on a stream, over device memory, and
// return at once (errors of the launch itself become DeviceError).

#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>

namespace fhto
{
    namespace cuda
    {
        /** Scratch words launch_blake2xb needs for nseeds streams of `words` words. */
        std::size_t blake2xb_scratch_words(std::size_t nseeds, std::size_t words);

        /**
        The first `words` words of the Blake2xb stream of each of nseeds 64-byte seeds (seed k at
        seeds + k * seed_stride words) into out (stream k at out + k * words): one launch for every
        refill's root, one for every 64-byte leaf.
        */
        void launch_blake2xb(
            const std::uint64_t *seeds, std::size_t seed_stride, std::size_t nseeds, std::size_t words,
            std::uint64_t *scratch, std::uint64_t *out, cudaStream_t stream);

        struct UniformPrime;

        /**
        SEAL's uniform sampling of cts polynomials of limbs * n residues (into a, one after the
        other) from their Blake2xb streams of stream_words words each: a warp per ciphertext, the
        rejected words replaced in order by lane 0. failed[k] is set when stream k ran out of spares.
        */
        void launch_uniform(
            const std::uint64_t *streams, std::uint64_t stream_words, std::uint64_t cts, std::uint64_t n,
            std::uint64_t limbs, const UniformPrime *primes, std::uint64_t *a, unsigned *failed, cudaStream_t stream);

        /**
        Forward negacyclic NTTs modulo q of `polys` polynomials of 2^log_n words at values +
        p * stride: one launch per stage for all of them, then the final reduction.
        */
        void launch_ntt_forward(
            std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q,
            const std::uint64_t *roots, const std::uint64_t *quots, cudaStream_t stream);

        /**
        Inverse negacyclic NTTs of the same polynomials (output in [0, q)): SEAL's inverse root
        powers in their order, the last stage with 1/n (inv_n) and the scaled last root.
        */
        void launch_ntt_inverse(
            std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q,
            const std::uint64_t *roots, const std::uint64_t *quots, std::uint64_t inv_n, std::uint64_t inv_n_quot,
            std::uint64_t scaled_w, std::uint64_t scaled_w_quot, cudaStream_t stream);

        /** Blocks of `threads` threads covering `work` items. */
        inline unsigned blocks_for(std::size_t work, unsigned threads)
        {
            return static_cast<unsigned>((work + threads - 1) / threads);
        }
    } // namespace cuda
} // namespace fhto
