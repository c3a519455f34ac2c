#include "ntt.h"

#include <cstdlib>
#include <string>
#include "cuda/arith.cuh"
#include "cuda/decode.cuh"
#include "seal/util/uintarithsmallmod.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_NTT_AVX512 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace
    {
        using Operand = seal::util::MultiplyUIntModOperand;

        /** The inverse NTT's last stage constants: 1/n and the last root times 1/n, with Shoup quotients. */
        struct InverseTail
        {
            std::uint64_t inv_n, inv_n_quot, scaled_w, scaled_w_quot;
        };

        /** The stages with blocks of `min_gap` words or fewer, and the final reduction, one word at a time. */
        void stages_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots, std::size_t m,
                           std::size_t gap) noexcept
        {
            for (; m < n; m <<= 1, gap >>= 1)
            {
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    const Operand &w = roots[m + i];
                    for (std::size_t j = 0; j < gap; j++)
                    {
                        cuda::butterfly(x[j], x[j + gap], w.operand, w.quotient, q);
                    }
                }
            }
            for (std::size_t k = 0; k < n; k++)
            {
                values[k] = cuda::reduce_4q(values[k], q);
            }
        }

        void forward_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            stages_scalar(values, n, q, roots, 1, n >> 1);
        }

        /** Inverse stages with blocks of fewer than `gap_end` words (Gentleman-Sande, lazy, [0, 2q)). */
        void inverse_stages_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots,
                                   std::size_t gap, std::size_t gap_end) noexcept
        {
            for (std::size_t m = n / (2 * gap); gap < gap_end && m > 1; m >>= 1, gap <<= 1)
            {
                const std::size_t first = cuda::fft_inverse_root_offset(n, m);
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    const Operand &w = roots[first + i];
                    for (std::size_t j = 0; j < gap; j++)
                    {
                        cuda::inverse_butterfly(x[j], x[j + gap], w.operand, w.quotient, q);
                    }
                }
            }
        }

        /** The last inverse stage (1/n folded in) and the full reduction, one word at a time. */
        void inverse_last_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const InverseTail &tail) noexcept
        {
            const std::size_t half = n / 2;
            for (std::size_t j = 0; j < half; j++)
            {
                cuda::inverse_last(values[j], values[j + half], tail.inv_n, tail.inv_n_quot, tail.scaled_w,
                                   tail.scaled_w_quot, q);
            }
        }

        void inverse_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots,
                            const InverseTail &tail) noexcept
        {
            inverse_stages_scalar(values, n, q, roots, 1, n);
            inverse_last_scalar(values, n, q, tail);
        }

#ifdef FHTO_NTT_AVX512
        /** The high 64 bits of a * b in each lane, from four 32 x 32 products. */
        __attribute__((target("avx512f,avx512dq"))) inline __m512i mulhi_epu64(__m512i a, __m512i b) noexcept
        {
            const __m512i lo_mask = _mm512_set1_epi64(0xFFFFFFFFLL);
            const __m512i a_hi = _mm512_srli_epi64(a, 32), b_hi = _mm512_srli_epi64(b, 32);
            const __m512i lolo = _mm512_mul_epu32(a, b);
            const __m512i hilo = _mm512_mul_epu32(a_hi, b);
            const __m512i lohi = _mm512_mul_epu32(a, b_hi);
            const __m512i hihi = _mm512_mul_epu32(a_hi, b_hi);
            const __m512i t = _mm512_add_epi64(hilo, _mm512_srli_epi64(lolo, 32));
            const __m512i u = _mm512_add_epi64(_mm512_and_si512(t, lo_mask), lohi);
            return _mm512_add_epi64(_mm512_add_epi64(hihi, _mm512_srli_epi64(t, 32)), _mm512_srli_epi64(u, 32));
        }

        __attribute__((target("avx512f,avx512dq"))) void forward_avx512(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));
            const __m512i two_q = _mm512_set1_epi64(static_cast<long long>(q << 1));
            std::size_t m = 1, gap = n >> 1;
            for (; gap >= 8; m <<= 1, gap >>= 1)
            {
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    std::uint64_t *y = x + gap;
                    const __m512i w = _mm512_set1_epi64(static_cast<long long>(roots[m + i].operand));
                    const __m512i wq = _mm512_set1_epi64(static_cast<long long>(roots[m + i].quotient));
                    for (std::size_t j = 0; j < gap; j += 8)
                    {
                        __m512i vx = _mm512_loadu_si512(x + j);
                        const __m512i vy = _mm512_loadu_si512(y + j);
                        vx = _mm512_min_epu64(vx, _mm512_sub_epi64(vx, two_q)); // guard: [0, 4q) -> [0, 2q)
                        const __m512i hi = mulhi_epu64(vy, wq);
                        const __m512i v = _mm512_sub_epi64(_mm512_mullo_epi64(vy, w), _mm512_mullo_epi64(hi, vq));
                        _mm512_storeu_si512(x + j, _mm512_add_epi64(vx, v));
                        _mm512_storeu_si512(y + j, _mm512_sub_epi64(_mm512_add_epi64(vx, two_q), v));
                    }
                }
            }
            stages_scalar(values, n, q, roots, m, gap);
        }
#endif

        /** The same in 256-bit registers (AVX-512VL/DQ instructions on ymm: no 512-bit multiply). */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline __m256i mulhi_epu64_256(__m256i a, __m256i b) noexcept
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

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void forward_avx512vl(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            const __m256i vq = _mm256_set1_epi64x(static_cast<long long>(q));
            const __m256i two_q = _mm256_set1_epi64x(static_cast<long long>(q << 1));
            std::size_t m = 1, gap = n >> 1;
            for (; gap >= 4; m <<= 1, gap >>= 1)
            {
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    std::uint64_t *y = x + gap;
                    const __m256i w = _mm256_set1_epi64x(static_cast<long long>(roots[m + i].operand));
                    const __m256i wq = _mm256_set1_epi64x(static_cast<long long>(roots[m + i].quotient));
                    for (std::size_t j = 0; j < gap; j += 4)
                    {
                        __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x + j));
                        const __m256i vy = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y + j));
                        vx = _mm256_min_epu64(vx, _mm256_sub_epi64(vx, two_q));
                        const __m256i hi = mulhi_epu64_256(vy, wq);
                        const __m256i v = _mm256_sub_epi64(_mm256_mullo_epi64(vy, w), _mm256_mullo_epi64(hi, vq));
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(x + j), _mm256_add_epi64(vx, v));
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + j), _mm256_sub_epi64(_mm256_add_epi64(vx, two_q), v));
                    }
                }
            }
            _mm256_zeroupper();
            stages_scalar(values, n, q, roots, m, gap);
        }

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void inverse_avx512vl(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots, const InverseTail &tail) noexcept
        {
            // The first stages (blocks of 1 and 2 words) one butterfly at a time, then 4 per register.
            inverse_stages_scalar(values, n, q, roots, 1, 4);
            const __m256i vq = _mm256_set1_epi64x(static_cast<long long>(q));
            const __m256i two_q = _mm256_set1_epi64x(static_cast<long long>(q << 1));
            std::size_t gap = 4;
            for (std::size_t m = n / 8; m > 1; m >>= 1, gap <<= 1)
            {
                const std::size_t first = cuda::fft_inverse_root_offset(n, m);
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    std::uint64_t *y = x + gap;
                    const __m256i w = _mm256_set1_epi64x(static_cast<long long>(roots[first + i].operand));
                    const __m256i wq = _mm256_set1_epi64x(static_cast<long long>(roots[first + i].quotient));
                    for (std::size_t j = 0; j < gap; j += 4)
                    {
                        const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x + j));
                        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y + j));
                        const __m256i sum = _mm256_add_epi64(u, v);
                        const __m256i diff = _mm256_sub_epi64(_mm256_add_epi64(u, two_q), v);
                        const __m256i hi = mulhi_epu64_256(diff, wq);
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(x + j), _mm256_min_epu64(sum, _mm256_sub_epi64(sum, two_q)));
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + j),
                                            _mm256_sub_epi64(_mm256_mullo_epi64(diff, w), _mm256_mullo_epi64(hi, vq)));
                    }
                }
            }
            // The last stage: x, y <- (x + y)/n, (x - y) w/n, then reduced below q.
            const std::size_t half = n / 2;
            const __m256i inv_n = _mm256_set1_epi64x(static_cast<long long>(tail.inv_n));
            const __m256i inv_n_quot = _mm256_set1_epi64x(static_cast<long long>(tail.inv_n_quot));
            const __m256i sw = _mm256_set1_epi64x(static_cast<long long>(tail.scaled_w));
            const __m256i sw_quot = _mm256_set1_epi64x(static_cast<long long>(tail.scaled_w_quot));
            for (std::size_t j = 0; j < half; j += 4)
            {
                __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(values + j));
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(values + half + j));
                u = _mm256_min_epu64(u, _mm256_sub_epi64(u, two_q));
                __m256i sum = _mm256_add_epi64(u, v);
                sum = _mm256_min_epu64(sum, _mm256_sub_epi64(sum, two_q));
                const __m256i diff = _mm256_sub_epi64(_mm256_add_epi64(u, two_q), v);
                const __m256i x = _mm256_sub_epi64(_mm256_mullo_epi64(sum, inv_n), _mm256_mullo_epi64(mulhi_epu64_256(sum, inv_n_quot), vq));
                const __m256i y = _mm256_sub_epi64(_mm256_mullo_epi64(diff, sw), _mm256_mullo_epi64(mulhi_epu64_256(diff, sw_quot), vq));
                // [0, 2q) -> [0, q)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(values + j), _mm256_min_epu64(x, _mm256_sub_epi64(x, vq)));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(values + half + j), _mm256_min_epu64(y, _mm256_sub_epi64(y, vq)));
            }
            _mm256_zeroupper();
        }

        using ForwardFn = void (*)(std::uint64_t *, std::size_t, std::uint64_t, const Operand *) noexcept;
        using InverseFn = void (*)(std::uint64_t *, std::size_t, std::uint64_t, const Operand *, const InverseTail &) noexcept;

        struct Backend
        {
            ForwardFn forward = forward_scalar;
            InverseFn inverse = inverse_scalar;
            const char *name = "scalar";
            Backend()
            {
                // FHTO_NTT=scalar|avx512vl|avx512 forces a path (the tests compare every path with SEAL).
                // The default is the 256-bit one: on this project's CPUs the 512-bit multiplies lower
                // the core's clock enough to slow the rest of an encryption by more than they save.
                const char *forced = std::getenv("FHTO_NTT");
                const std::string want = forced ? forced : "";
                if (want == "scalar")
                {
                    return;
                }
#ifdef FHTO_NTT_AVX512
                const bool dq = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
                const bool vl = dq && __builtin_cpu_supports("avx512vl");
                if (want == "avx512" && dq)
                {
                    forward = forward_avx512;
                    name = "avx512";
                    if (vl)
                    {
                        inverse = inverse_avx512vl;
                    }
                }
                else if (vl)
                {
                    forward = forward_avx512vl;
                    inverse = inverse_avx512vl;
                    name = "avx512vl";
                }
#endif
            }
        };

        const Backend &backend() noexcept
        {
            static const Backend b;
            return b;
        }
    } // namespace

    void ntt_forward(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept
    {
        if (tables.coeff_count() < 16)
        {
            forward_scalar(values, tables.coeff_count(), tables.modulus().value(), tables.get_from_root_powers());
            return;
        }
        backend().forward(values, tables.coeff_count(), tables.modulus().value(), tables.get_from_root_powers());
    }

    void ntt_inverse(std::uint64_t *values, const seal::util::NTTTables &tables) noexcept
    {
        const std::size_t n = tables.coeff_count();
        const seal::Modulus &q = tables.modulus();
        const Operand *inv = tables.get_from_inv_root_powers();
        const Operand &inv_n = tables.inv_degree_modulo();
        Operand scaled;
        scaled.set(seal::util::multiply_uint_mod(inv[n - 1].operand, inv_n, q), q);
        const InverseTail tail{ inv_n.operand, inv_n.quotient, scaled.operand, scaled.quotient };
        if (n < 8)
        {
            inverse_scalar(values, n, q.value(), inv, tail);
            return;
        }
        backend().inverse(values, n, q.value(), inv, tail);
    }

    const char *ntt_backend() noexcept
    {
        return backend().name;
    }
} // namespace fhto
