#pragma once

#include <cstddef>
#include "context.h"

namespace fhto
{
    /**
    Checks, on `trials` random polynomials per data prime of the context (the first all q - 1),
    that the engine's NTT and inverse NTT (ntt.h, the path chosen for this CPU) equal SEAL's bit
    for bit.
    Returns the number of comparisons. @throws std::logic_error naming the path
    */
    std::size_t check_engine_ntt(const Context &context, std::size_t trials);

    /**
    Checks, on `trials` random polynomials per data prime of the context, that the CUDA path's NTT
    (csrc/cuda/arith.cuh, run by its host driver) equals SEAL's ntt_negacyclic_harvey bit for bit.
    Runs without a GPU and in builds without CUDA (the arithmetic is plain C++ there). Returns the
    number of comparisons. @throws std::logic_error naming the first disagreement
    */
    std::size_t check_cuda_ntt_host(const Context &context, std::size_t trials);

    /**
    Checks, on `trials` random seeds, that the CUDA path's Blake2xb (csrc/cuda/blake2.cuh, run by
    its host driver) gives the engine's Blake2xbStream words, which the engine's own tests prove
    equal to SEAL's PRNG; with `device`, the GPU kernels' instead (@throws DeviceError without a GPU).
    */
    std::size_t check_cuda_blake2(std::size_t trials, bool device);

    /**
    Checks, on `trials` random seeds, that the CUDA path's uniform sampling (uniform.cuh over
    blake2.cuh: host driver, or with `device` the GPU's streams) equals the engine's expand_uniform
    (proved equal to SEAL's sample_poly_uniform) for the context's data primes.
    */
    std::size_t check_cuda_uniform(const Context &context, std::size_t trials, bool device);

    /**
    Checks, on `trials` random seeds and ciphertexts, the CUDA path's per-coefficient steps run on
    the host: its centred binomial noise against SEAL's sample_poly_cbd (same stream), and its bit
    packing against the engine's packed ciphertexts.
    */
    std::size_t check_cuda_sampling_host(const Context &context, std::size_t trials);

    /**
    The same comparison for the device kernel (a batch of `trials` polynomials per prime in one
    call). @throws DeviceError without a usable GPU or on a CUDA error
    */
    std::size_t check_cuda_ntt_device(const Context &context, std::size_t trials);
} // namespace fhto
