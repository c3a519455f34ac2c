#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>
#include "context.h"
#include "wire.h"

namespace fhto
{
    /** Size of a sum batch of `ciphertexts` full ciphertexts. @throws ParameterError for an unsupported packing */
    std::size_t sum_batch_bytes(const Context &context, std::size_t ciphertexts, Packing packing);

    /**
    Writes `sum` as a batch in `sum` mode (a fresh random batch identifier) into out, which holds
    exactly sum_batch_bytes(context, sum.size(), packing) bytes, on `threads` workers (0: all cores).
    */
    void write_sum_batch(
        const Context &context, const std::vector<seal::Ciphertext> &sum, std::uint64_t value_count,
        std::uint32_t contributions, std::uint32_t party_budget, Packing packing, int threads, std::uint8_t *out);

    /**
    The server's streaming homomorphic sum. Holds one running sum of ciphertexts and nothing
    else; needs no secret key. Each add() checks the batch (fingerprint, length, checksums,
    party budget) and adds it in place, in parallel over ciphertexts; an add that fails leaves
    the running sum exactly as it was. Calls from several threads are serialized.
    */
    class Accumulator
    {
    public:
        /** @param threads worker threads, 0 for the machine's hardware threads */
        explicit Accumulator(Context context, int threads = 0);

        /**
        Adds one batch (a hospital's upload, or an earlier sum) to the running sum.
        @throws KeyMismatchError if it was made under another key or parameter set
        @throws LengthMismatchError if it holds another number of values than the sum
        @throws ValueRangeError if the sum would exceed the party budget its inputs were range-checked for
        @throws FormatError if the bytes are malformed or corrupted
        */
        void add(const std::uint8_t *data, std::size_t size);

        /** Batches added so far (counting the contributions inside added sums). */
        std::uint32_t contributions() const
        {
            std::lock_guard<std::mutex> lock(mutex_);
            return contributions_;
        }

        /** The smallest party budget among the added batches (0 before the first add). */
        std::uint32_t party_budget() const
        {
            std::lock_guard<std::mutex> lock(mutex_);
            return party_budget_;
        }

        /** Values per contribution (0 before the first add). */
        std::uint64_t value_count() const
        {
            std::lock_guard<std::mutex> lock(mutex_);
            return value_count_;
        }

        const Context &context() const noexcept
        {
            return context_;
        }

        /** Serialized size of the running sum. @throws ParameterError before the first add */
        std::size_t serialized_size(Packing packing = Packing::none) const;

        /** Writes the running sum as a batch in `sum` mode. @throws ParameterError before the first add */
        void serialize_into(std::uint8_t *out, std::size_t out_size, Packing packing = Packing::none) const;

        /** Forgets the running sum. */
        void reset();

    private:
        std::size_t serialized_size_locked(Packing packing) const;

        mutable std::mutex mutex_;
        Context context_;
        int threads_;
        std::vector<seal::Ciphertext> sum_;
        std::uint64_t value_count_ = 0;
        std::uint32_t contributions_ = 0;
        std::uint32_t party_budget_ = 0;
    };
} // namespace fhto
