#pragma once

// What a batch encryption on the CUDA path needs from a context, as plain host arrays and the
// shared structs of csrc/cuda/*.cuh (no SEAL, no CUDA headers): built once per call by the C++ side (gpu_encrypt.cpp), read by the host
// driver and uploaded by the device pipeline.

#include <cstddef>
#include <cstdint>
#include <vector>
#include "cuda/decode.cuh"
#include "cuda/encrypt.cuh"

namespace fhto
{
    namespace cuda
    {
        struct EncryptPlan
        {
            int log_n = 0;
            std::size_t limbs = 0;
            std::vector<UniformPrime> primes; ///< each data prime as SEAL's sampler reduces with it
            std::vector<std::uint64_t> ntt_roots, ntt_quots; ///< SEAL's forward NTT tables, n per limb
            std::vector<std::uint64_t> secret, secret_quots; ///< s in NTT form and its Shoup quotients, n per limb
            std::vector<std::uint64_t> index_map; ///< SEAL's matrix_reps_index_map_ (n)
            std::vector<double> inv_roots; ///< SEAL's inv_root_powers_ as (re, im) pairs (2n)
            double fix = 0; ///< scale / n
            std::vector<std::uint8_t> record_template; ///< one ciphertext's bytes; c0 and the seed are overwritten
            std::uint64_t c0_offset = 0, c0_bytes = 0, seed_offset = 0;
            std::vector<int> bits; ///< packed bits of each limb (0: 8-byte words)

            std::size_t n() const noexcept
            {
                return std::size_t(1) << log_n;
            }
            RecordLayout layout() const
            {
                return record_layout(record_template.size(), c0_offset, c0_bytes, seed_offset, bits.data(), bits.size());
            }
            /** Bootstrap-stream words a ciphertext reads: the public seed, then 6 noise bytes per coefficient. */
            std::size_t bootstrap_words() const noexcept
            {
                return 8 + (6 * n() + 7) / 8;
            }
        };

        /**
        What summing seeded secret-key batches on the CUDA path needs from a context (no secret):
        the primes, the records' layout, and the bytes every record of this context shares (its
        prefix and the seed record's header) to check each record against.
        */
        struct SumPlan
        {
            int log_n = 0;
            std::size_t limbs = 0;
            std::vector<UniformPrime> primes; ///< as EncryptPlan::primes
            std::uint64_t record_bytes = 0, c0_offset = 0, c0_bytes = 0, seed_offset = 0;
            std::vector<int> bits; ///< packed bits of each limb (0: 8-byte words)
            std::vector<std::uint8_t> prefix; ///< the record's first c0_offset bytes
            std::vector<std::uint8_t> seed_header; ///< the bytes just before the seed

            RecordLayout layout() const
            {
                return record_layout(record_bytes, c0_offset, c0_bytes, seed_offset, bits.data(), bits.size());
            }
            std::size_t n() const noexcept
            {
                return std::size_t(1) << log_n;
            }
        };

        /**
        What decrypting and decoding a batch on the CUDA path needs from a key set, as plain
        arrays: the key, the inverse NTT, the CRT constants, the decoder's tables, and the layout
        of the batch's records (seeded: c0 and the seed; full: c0 and c1) with the bytes every
        record of this context and mode shares.
        */
        struct DecryptPlan
        {
            int log_n = 0;
            std::size_t limbs = 0;
            std::vector<UniformPrime> primes; ///< as EncryptPlan::primes
            std::vector<std::uint64_t> moduli; ///< q of each limb
            std::vector<std::uint64_t> secret, secret_quots; ///< n per limb
            std::vector<std::uint64_t> inv_roots, inv_quots; ///< SEAL's inverse root powers, n per limb
            std::vector<std::uint64_t> inv_n, inv_n_quot, scaled_w, scaled_w_quot; ///< one per limb
            std::vector<std::uint64_t> q_hat, q_hat_inv, q_hat_inv_quot, modulus, half; ///< CRT constants
            std::vector<double> roots; ///< SEAL's root_powers_ as (re, im) pairs (2n)
            std::vector<std::uint64_t> index_map; ///< SEAL's matrix_reps_index_map_ (n)
            double inv_scale = 0;
            bool seeded = false; ///< c1 is a seed to expand (secret-key batches)
            std::uint64_t record_bytes = 0, c0_offset = 0, poly_bytes = 0, seed_offset = 0, tail_offset = 0;
            std::vector<int> bits; ///< packed bits of each limb (0: 8-byte words)
            std::vector<std::uint8_t> prefix, tail; ///< the shared bytes: [0, c0_offset) and from tail_offset

            RecordLayout layout() const
            {
                return record_layout(record_bytes, c0_offset, poly_bytes, seed_offset, bits.data(), bits.size());
            }
            /** The decoder's tables over this plan's own (host) arrays. */
            DecodeTables host_tables() const noexcept
            {
                DecodeTables t;
                t.log_n = log_n;
                t.limbs = static_cast<int>(limbs);
                t.primes = moduli.data();
                t.q_hat = q_hat.data();
                t.q_hat_inv = q_hat_inv.data();
                t.q_hat_inv_quot = q_hat_inv_quot.data();
                t.modulus = modulus.data();
                t.half = half.data();
                t.roots = reinterpret_cast<const Complex *>(roots.data());
                t.index_map = index_map.data();
                t.inv_scale = inv_scale;
                return t;
            }
            std::size_t n() const noexcept
            {
                return std::size_t(1) << log_n;
            }
        };

        /** One batch to add: its records and checks (host memory), and its header's checksum. */
        struct SumInput
        {
            const std::uint8_t *records = nullptr;
            const std::uint8_t *checks = nullptr;
            std::uint32_t header_checksum = 0;
        };

        /** Why a batch could not be added on the GPU: FormatError material, or "use the CPU path". */
        struct SumProblem
        {
            enum Kind
            {
                none,
                checksum, ///< a record does not match its check
                coefficient, ///< a c0 word not below its prime
                layout ///< a record not in the exact form this context writes (the CPU path decides)
            } kind = none;
            std::size_t batch = 0;
            std::uint64_t ciphertext = 0;
        };

        /** The range check's result over a flat update (as the CPU path's scan). */
        struct ScanResult
        {
            std::uint64_t first_bad = ~0ULL; ///< first non-finite index, or ~0 when none
            double bad_value = 0; ///< the value there
            double max_abs = 0; ///< largest |value|
            std::uint64_t max_index = 0; ///< its first index
        };
    } // namespace cuda
} // namespace fhto
