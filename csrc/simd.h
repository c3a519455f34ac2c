#pragma once

// Vector building blocks for the engine's modular arithmetic on x86-64 outside the NTT: 64-bit
// lanes, four to a 256-bit register with AVX-512VL/DQ instructions (vpmullq, vpminuq) on ymm, for
// the one-pass loops over a limb (c0 of an encryption, m of a decryption, sums, the reduction of
// sampled words). Every function here computes exactly what its scalar twin in
// csrc/cuda/arith.cuh computes, lane by lane. Callers check simd::available() at run time; the
// library itself is compiled without -m flags.

#include <cstdint>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_SIMD 1
#include <immintrin.h>
#define FHTO_SIMD_TARGET __attribute__((target("avx2,avx512f,avx512vl,avx512dq")))
#endif

namespace fhto
{
    namespace simd
    {
        /** Whether this CPU runs the functions below (AVX-512F, VL and DQ). */
        inline bool available() noexcept
        {
#ifdef FHTO_SIMD
            static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                                    __builtin_cpu_supports("avx512dq");
            return yes;
#else
            return false;
#endif
        }

#ifdef FHTO_SIMD
        /** The high 64 bits of a * b in each lane, from four 32 x 32 products. */
        FHTO_SIMD_TARGET inline __m256i mulhi(__m256i a, __m256i b) noexcept
        {
            const __m256i lo_mask = _mm256_set1_epi64x(0xFFFFFFFFLL);
            const __m256i a_hi = _mm256_srli_epi64(a, 32), b_hi = _mm256_srli_epi64(b, 32);
            const __m256i lolo = _mm256_mul_epu32(a, b);
            const __m256i hilo = _mm256_mul_epu32(a_hi, b);
            const __m256i lohi = _mm256_mul_epu32(a, b_hi);
            const __m256i hihi = _mm256_mul_epu32(a_hi, b_hi);
            const __m256i t = _mm256_add_epi64(hilo, _mm256_srli_epi64(lolo, 32));
            const __m256i u = _mm256_add_epi64(_mm256_and_si256(t, lo_mask), lohi);
            return _mm256_add_epi64(_mm256_add_epi64(hihi, _mm256_srli_epi64(t, 32)), _mm256_srli_epi64(u, 32));
        }

        /** Shoup's lazy product x w mod q in [0, 2q) (cuda::mul_shoup_lazy). */
        FHTO_SIMD_TARGET inline __m256i mul_shoup_lazy(__m256i x, __m256i w, __m256i w_quot, __m256i q) noexcept
        {
            return _mm256_sub_epi64(_mm256_mullo_epi64(x, w), _mm256_mullo_epi64(mulhi(x, w_quot), q));
        }

        /** a in [0, 2c) to [0, c): a - c wraps above a exactly when a < c. */
        FHTO_SIMD_TARGET inline __m256i reduce_once(__m256i a, __m256i c) noexcept
        {
            return _mm256_min_epu64(a, _mm256_sub_epi64(a, c));
        }

        FHTO_SIMD_TARGET inline __m256i load(const std::uint64_t *p) noexcept
        {
            return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
        }

        FHTO_SIMD_TARGET inline void store(std::uint64_t *p, __m256i v) noexcept
        {
            _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), v);
        }

        FHTO_SIMD_TARGET inline __m256i broadcast(std::uint64_t x) noexcept
        {
            return _mm256_set1_epi64x(static_cast<long long>(x));
        }
#endif
    } // namespace simd
} // namespace fhto
