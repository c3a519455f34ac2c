#pragma once

// What the C++ side calls of the CUDA side: plain functions over raw arrays (no SEAL, no CUDA
// headers). Declared always; defined in csrc/cuda/*.cu when the build has the CUDA path.

#include <cstddef>
#include <cstdint>
#include <string>

namespace fhto
{
    namespace cuda
    {
        /** Whether this build has the CUDA path. */
        bool compiled() noexcept;

        /**
        Usable CUDA devices now: 0 without a GPU or without a driver (no error, no message). Never
        throws.
        */
        int device_count() noexcept;

        /** A short description of device 0 ("NVIDIA H200, compute 9.0, 139 GiB"), or "" without one. */
        std::string device_name();

        /**
        Forward negacyclic NTTs of `polys` polynomials of 2^log_n words modulo q, on device 0,
        in place in host memory: one copy in, one launch per stage for the whole batch, one copy
        out; device memory allocated once per call. roots/quots as for ntt_forward_host.
        @throws DeviceError naming the CUDA error (the host array is then left unchanged)
        */
        void ntt_forward_device(
            std::uint64_t *values, std::size_t polys, int log_n, std::uint64_t q, const std::uint64_t *roots,
            const std::uint64_t *quots);
        /**
        The first `words` 64-bit words of the Blake2xb stream of each of `nseeds` 64-byte seeds
        (8 words each), on device 0: out holds nseeds * words words, stream after stream.
        @throws DeviceError naming the CUDA error
        */
        void blake2xb_words_device(const std::uint64_t *seeds, std::size_t nseeds, std::size_t words, std::uint64_t *out);

        /**
        SEAL's uniform sampling of `nseeds` polynomials (limbs * n residues each, out stream after
        stream) from their 64-byte seeds: the streams on device 0, one launch for all of them, then
        the in-order reduction of uniform.cuh on the host. `primes` holds q,
        floor(2^128/q)'s high word and the rejection bound of each limb, three words per limb.
        @throws DeviceError naming the CUDA error
        */
        void expand_uniform_device(
            const std::uint64_t *seeds, std::size_t nseeds, std::size_t n, std::size_t limbs, const std::uint64_t *primes,
            std::uint64_t *out);
    } // namespace cuda
} // namespace fhto
