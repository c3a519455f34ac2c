#pragma once

#include <cstdint>
#include "seal/util/ntt.h"

namespace fhto
{
    /**
    SEAL's forward negacyclic NTT (``seal::util::ntt_negacyclic_harvey``: Harvey's butterflies on
    SEAL's root powers, output in bit-reversed order and fully reduced), computed by the engine.
    Paths, chosen at run time: "avx512vl" (the default where AVX-512VL and DQ exist) runs the stages
    whose blocks hold at least 4 words 4 butterflies at a time in 256-bit registers (the high
    64 bits of a product from four 32 x 32 products, the low word from AVX-512DQ); "avx512" does
    the same 8 at a time in 512-bit registers (only when forced: it lowers the clock, see
    ntt.cpp); "scalar" runs the butterflies of csrc/cuda/arith.cuh, as do the last stages of the
    vector paths. The NTT of a polynomial is unique, so every path gives SEAL's words exactly (the
    tests compare each with SEAL's). FHTO_NTT=scalar|avx512vl|avx512 forces one. Never throws.
    */
    void ntt_forward(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept;

    /**
    SEAL's inverse negacyclic NTT (``seal::util::inverse_ntt_negacyclic_harvey``: bit-reversed
    input, output fully reduced), by the same paths (the first two stages and machines without
    AVX-512VL/DQ one butterfly at a time). Never throws.
    */
    void ntt_inverse(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept;

    /** Name of the path ntt_forward uses: "avx512vl", "avx512" or "scalar". */
    const char *ntt_backend() noexcept;
} // namespace fhto
