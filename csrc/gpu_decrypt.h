#pragma once

#include <cstddef>
#include "context.h"
#include "cuda/plan.h"
#include "wire.h"

namespace fhto
{
    /**
    What the CUDA path needs to decrypt a batch of `mode` and `packing` under a key set.
    @throws SecretKeyRequiredError on a public context
    @throws ParameterError if the context's layout is not the one the CUDA path reads
    */
    cuda::DecryptPlan make_decrypt_plan(const Context &context, Mode mode, Packing packing);

    /**
    decrypt_into on the CUDA path (host driver when host_driver, else `device`): the same checks
    and the same doubles as the CPU path. Returns false, having written nothing, when a record is
    not in this context's exact form; the caller then decrypts on the CPU, whose loader decides.
    @throws FormatError for a corrupted ciphertext or a coefficient not below its prime
    @throws ValueRangeError for an implausible sum, as decrypt_into
    @throws DeviceError for a CUDA failure
    */
    bool decrypt_into_cuda(
        const Context &context, const BatchView &batch, double *out, std::size_t out_count, bool host_driver, int device,
        int threads);
} // namespace fhto
