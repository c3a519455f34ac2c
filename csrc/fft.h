#pragma once

#include <cstdint>
#include "cuda/encode.cuh"

namespace fhto
{
    /**
    SEAL's inverse FFT of encoding (transform_from_rev with scalar = fix) and forward FFT of
    decoding (transform_to_rev), computed by the engine: the butterflies of csrc/cuda/encode.cuh
    and decode.cuh, two at a time in 256-bit AVX registers where a block holds at least two (each
    lane's product and sum is the same IEEE operation as the scalar one, never fused), one at a
    time otherwise. The same doubles as SEAL's (the tests compare whole encryptions and
    decryptions). FHTO_FFT=scalar forces the scalar path. Never throw.
    */
    void fft_inverse(cuda::Complex *values, const cuda::EncodeTables &tables) noexcept;
    void fft_forward(cuda::Complex *values, int log_n, const cuda::Complex *roots) noexcept;

    /** "avx" or "scalar". */
    const char *fft_backend() noexcept;
} // namespace fhto
