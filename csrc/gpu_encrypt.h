#pragma once

#include <cstddef>
#include <cstdint>
#include "context.h"
#include "cuda/plan.h"
#include "encrypt.h"

namespace fhto
{
    /**
    What the CUDA path needs to encrypt under a context: SEAL's NTT and encoder tables, the secret
    key in NTT form with its Shoup quotients, and the byte template of one ciphertext record.
    @throws SecretKeyRequiredError on a public context (the CUDA path encrypts with the secret key)
    @throws ParameterError if this context's layout cannot be written by the CUDA path
    */
    cuda::EncryptPlan make_encrypt_plan(const Context &context, Packing packing);

    /** Where a batch is encrypted: the CUDA path's host driver (the kernels' code run on the CPU), or a device. */
    struct CudaTarget
    {
        bool host_driver = false; ///< run csrc/cuda/encrypt.cuh on the CPU (tests; any machine)
        int device = 0; ///< otherwise this CUDA device
        bool values_on_device = false; ///< values point to device memory (a CUDA tensor)
    };

    /**
    encrypt_into on the CUDA path, for secret-key (seeded) mode: the same header, the same checks
    and, for a seed, the same bytes as the CPU path (the tests compare them). Values in host memory
    are range-checked on the host; values in device memory by a reduction on the device.
    @throws ParameterError for public-key mode, a bad option or out size
    @throws ValueRangeError for non-finite or too large values
    @throws DeviceError for a CUDA failure (nothing written then)
    */
    template <typename T>
    void encrypt_into_cuda(
        const Context &context, const T *values, std::size_t count, const EncryptOptions &options, const CudaTarget &target,
        std::uint8_t *out, std::size_t out_size);
} // namespace fhto
