#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include "context.h"
#include "wire.h"

namespace fhto
{
    /** Options of one encryption call. */
    struct EncryptOptions
    {
        Mode mode = Mode::symmetric; ///< symmetric (needs the secret key) or public_key
        Packing packing = Packing::none; ///< SEAL's own serialization, or bit-packed coefficients
        double weight = 1.0; ///< every value is multiplied by it while encoding (FedAvg: n_i)
        std::uint32_t parties = 1; ///< how many such contributions will be summed (range check)
        int threads = 0; ///< worker threads; 0 means the machine's hardware threads
        /**
        Ciphertext k takes its randomness (symmetric: its bootstrap seed; public key: the seed of
        encrypt_asymmetric_seeded) from
        derive_seed(SeedPurpose::encrypt, *seed, k) instead of the operating system, so the
        batch is the same bytes for every thread count. For reproducible studies and tests only.
        Two different updates encrypted under one key with the same seed share their mask and
        noise, so their difference can be read off the ciphertexts: derive a distinct seed per
        (round, hospital, purpose).
        */
        std::optional<std::uint64_t> seed;
    };

    /**
    The header of a fresh encryption of `count` values: one contribution, the options' party
    budget, a batch identifier derived from the seed (random without one).
    */
    BatchHeader encryption_header(const Context &context, std::size_t count, const EncryptOptions &options);

    /** Size of the batch that encrypting value_count values in `mode` produces. */
    std::size_t encrypted_size(const Context &context, std::size_t value_count, Mode mode, Packing packing = Packing::none);

    /**
    Checks the options of one encryption call.
    @throws ParameterError for a bad mode, weight or parties
    @throws SecretKeyRequiredError for symmetric mode on a public context
    */
    void check_options(const Context &context, const EncryptOptions &options);

    /**
    Turns a scan of the values (first non-finite index or SIZE_MAX, the value there, the largest
    |value| and its index) into the range check's verdict. @throws ValueRangeError
    */
    void check_scan(
        const Context &context, const EncryptOptions &options, std::size_t first_bad, double bad_value, double max_abs,
        std::size_t max_index);

    /**
    Checks that every value is finite and that |weight * value| stays within what `parties`
    contributions may hold (Context::max_abs_value). Runs on `threads` threads.
    @throws ValueRangeError naming the first non-finite index, or the largest value and the limit
    */
    template <typename T>
    void check_values(const Context &context, const T *values, std::size_t count, const EncryptOptions &options);

    /**
    Encodes and encrypts a whole flat update into a batch written to out, which must be exactly
    encrypted_size(context, count, options.mode) bytes. Values are packed two per complex slot;
    ciphertexts are made in parallel, each worker with its own SEAL memory pool, and written in
    place. Checks the values first (check_values); nothing is written on error.
    @throws ParameterError for a bad option (mode, weight, parties, out size, a seed outside symmetric mode)
    @throws ValueRangeError for non-finite or too large values
    @throws SecretKeyRequiredError for symmetric mode on a public context
    */
    template <typename T>
    void encrypt_into(
        const Context &context, const T *values, std::size_t count, const EncryptOptions &options, std::uint8_t *out,
        std::size_t out_size);
} // namespace fhto
