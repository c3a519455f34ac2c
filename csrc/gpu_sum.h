#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>
#include "context.h"
#include "cuda/plan.h"
#include "wire.h"

namespace fhto
{
    /**
    The layout of this context's seeded secret-key records as the CUDA path reads them.
    @throws ParameterError if the layout is not the one the CUDA path knows
    */
    cuda::SumPlan make_sum_plan(const Context &context, Packing packing);

    /** A finished sum: the ciphertexts and what its header says. */
    struct SumResult
    {
        std::vector<seal::Ciphertext> sum;
        std::uint64_t value_count = 0;
        std::uint32_t contributions = 0;
        std::uint32_t party_budget = 0;

        /** Size of the sum batch. */
        std::size_t serialized_size(const Context &context, Packing packing) const;
        /** Writes the sum batch (mode sum), as Accumulator::serialize_into does. */
        void serialize_into(const Context &context, std::uint8_t *out, std::size_t out_size, Packing packing, int threads) const;
    };

    /**
    The sum of seeded secret-key batches on the CUDA path (host driver when host_driver, else
    `device`): the same checks, in the same order, and the same sum as adding them one by one to
    an Accumulator. Returns nothing when a batch is not a seeded secret-key batch in this context's
    exact form; the caller then sums on the CPU, whose loader decides.
    @throws KeyMismatchError, LengthMismatchError, ValueRangeError, FormatError as Accumulator::add
    @throws DeviceError for a CUDA failure
    */
    std::optional<SumResult> sum_cuda(
        const Context &context, const std::vector<std::pair<const std::uint8_t *, std::size_t>> &batches, bool host_driver,
        int device, int threads);
} // namespace fhto
