#pragma once

// What the C++ side calls of the CUDA side: plain functions over raw arrays (no SEAL, no CUDA
// headers). Declared always; defined in csrc/cuda/*.cu when the build has the CUDA path.

#include <cstddef>
#include <cstdint>
#include <string>
#include "cuda/plan.h"

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

        /**
        The range check of a flat update of `count` float32 (dtype_bytes 4) or float64 values in
        device memory on `device`: one launch, a block's partial result each, combined on the host.
        @throws DeviceError naming the CUDA error
        */
        ScanResult scan_device(const void *values, int dtype_bytes, std::uint64_t count, int device);

        /**
        Encrypts a whole flat update on `device` (csrc/cuda/encrypt.cuh per ciphertext): the
        values in device memory (values_on_device) or host memory, `ciphertexts` records of
        plan.record_template.size() bytes written to records and their checks to checks. Each
        stage is one launch for a chunk of ciphertexts; chunks alternate between two streams so
        that one chunk's copy back to pinned memory overlaps the next one's arithmetic. Device
        memory is allocated once per call. On error records may hold part of the batch and must be
        discarded (the bindings return nothing then).
        @throws DeviceError naming the CUDA error (out of memory included); the device stays usable
        */
        void encrypt_device(
            const EncryptPlan &plan, const void *values, bool values_on_device, int dtype_bytes, std::uint64_t count,
            double weight, const std::uint64_t *bootstrap_seeds, std::uint64_t ciphertexts, std::uint32_t header_checksum,
            std::uint8_t *records, std::uint32_t *checks, int device);

        /**
        Sums `count` seeded secret-key batches of `ciphertexts` records each on `device` (csrc/cuda/
        sum.cu): sum_c0 and sum_c1 receive the sums of c0 and of the expanded seeds, limbs * n words
        per ciphertext, in host memory. Returns the first problem found (kind none when every record
        was good), in which case the sums are not written.
        @throws DeviceError naming the CUDA error
        */
        SumProblem sum_device(
            const SumPlan &plan, const SumInput *inputs, std::size_t count, std::uint64_t ciphertexts, std::uint64_t *sum_c0,
            std::uint64_t *sum_c1, int device);

        /**
        Decrypts and decodes a batch's `ciphertexts` records on `device` (csrc/cuda/decrypt.cu):
        out receives value_count doubles. Returns the first problem found (kind none when every
        record was good); out is then incomplete and must be discarded.
        @throws DeviceError naming the CUDA error
        */
        SumProblem decrypt_device(
            const DecryptPlan &plan, const SumInput &input, std::uint64_t ciphertexts, double *out, std::uint64_t value_count,
            int device);

        /**
        The device holding a pointer: its index for device (or managed) memory, -1 for host memory.
        @throws DeviceError naming the CUDA error
        */
        int pointer_device(const void *pointer);
    } // namespace cuda
} // namespace fhto
