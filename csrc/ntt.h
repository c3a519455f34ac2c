#pragma once

#include <cstdint>
#include "seal/util/ntt.h"

namespace fhto
{
    /**
    SEAL's forward negacyclic NTT (``seal::util::ntt_negacyclic_harvey``: Harvey's butterflies on
    SEAL's root powers, output in bit-reversed order and fully reduced), computed by the engine.
    Paths, chosen at run time: "avx512" (the default where AVX-512F and DQ exist) runs 8
    butterflies per 512-bit register, "avx512vl" 4 per 256-bit register: one pass per stage while
    blocks hold 8 words or more, then the last two stages (three in 512-bit registers) and the
    final reduction in one pass, regrouped in registers so that one holds the butterflies' x and
    the other their y; "scalar" runs the butterflies of csrc/cuda/arith.cuh. The
    vector paths' Shoup products take the high word from three 32 x 32 products (short by at most
    2, with lazy ranges widened to match; ntt.cpp argues them) and the low words from AVX-512DQ.
    The NTT of a polynomial is unique, so every path gives SEAL's words exactly (the tests compare
    each with SEAL's). FHTO_NTT=scalar|avx512vl|avx512 forces one. Never throws.
    */
    void ntt_forward(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept;

    /**
    SEAL's inverse negacyclic NTT (``seal::util::inverse_ntt_negacyclic_harvey``: bit-reversed
    input, output fully reduced), by the same paths: the first two stages (three in 512-bit
    registers) in one pass regrouped as the forward's last, then one pass per stage, the last
    with 1/n folded in. Never throws.
    */
    void ntt_inverse(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept;

    /** Name of the path ntt_forward uses: "avx512vl", "avx512" or "scalar". */
    const char *ntt_backend() noexcept;
} // namespace fhto
