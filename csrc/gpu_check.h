#pragma once

#include <cstddef>
#include "context.h"

namespace fhto
{
    /**
    Checks, on `trials` random polynomials per data prime of the context, that the CUDA path's NTT
    (csrc/cuda/arith.cuh, run by its host driver) equals SEAL's ntt_negacyclic_harvey bit for bit.
    Runs without a GPU and in builds without CUDA (the arithmetic is plain C++ there). Returns the
    number of comparisons. @throws std::logic_error naming the first disagreement
    */
    std::size_t check_cuda_ntt_host(const Context &context, std::size_t trials);

    /**
    The same comparison for the device kernel (a batch of `trials` polynomials per prime in one
    call). @throws DeviceError without a usable GPU or on a CUDA error
    */
    std::size_t check_cuda_ntt_device(const Context &context, std::size_t trials);
} // namespace fhto
