// GCC 12's AVX-512 intrinsics fill unused lanes from a self-initialized register
// (_mm512_undefined_epi32), which -Wuninitialized reports at each use; the headers' own lines
// are exempted here, this file's code is not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "ntt.h"

#include <cstdlib>
#include <string>
#include "cuda/arith.cuh"
#include "cuda/decode.cuh"
#include "dispatch.h"
#include "seal/util/uintarithsmallmod.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_NTT_AVX512 1
#include <immintrin.h>
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
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

        /** All forward stages and the final reduction, one word at a time. */
        void forward_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            for (std::size_t m = 1, gap = n >> 1; m < n; m <<= 1, gap >>= 1)
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

        /** All inverse stages but the last (Gentleman-Sande, lazy, [0, 2q)), then the last with 1/n, one word at a time. */
        void inverse_scalar(std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots,
                            const InverseTail &tail) noexcept
        {
            std::size_t gap = 1;
            for (std::size_t m = n / 2; m > 1; m >>= 1, gap <<= 1)
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
            for (std::size_t j = 0; j < gap; j++)
            {
                cuda::inverse_last(values[j], values[j + gap], tail.inv_n, tail.inv_n_quot, tail.scaled_w,
                                   tail.scaled_w_quot, q);
            }
        }

#ifdef FHTO_NTT_AVX512
        /*
        The vector paths' arithmetic. Shoup's product of y by a fixed root w (w_quot = floor(w 2^64 / q))
        is y w - h q with h the high word of y w_quot; for any 64-bit y it lies in [0, 2q). Here h
        comes from three 32 x 32 products instead of four (mulhi_approx_*): the product of the low
        halves and the carry out of the middle products' low halves are left out, three terms below
        2^32 each, so h is short by 0, 1 or 2 and y w - h q lies in [0, 4q); that is below 2^64, so
        the wrapping 64-bit words hold it exactly. The butterflies widen their lazy ranges to match,
        which needs 8q < 2^64 (every seal::Modulus is below 2^61):
        - forward (Cooley-Tukey): words in [0, 8q) between stages; u = x folded to [0, 4q),
          v = w y in [0, 4q); x, y <- u + v in [0, 8q), u + 4q - v in (0, 8q); the last stage
          folds its outputs to [0, q);
        - inverse (Gentleman-Sande): words in [0, 4q); x, y <- x + y folded to [0, 4q),
          w (x + 4q - y) in [0, 4q); the last stage multiplies x + y and x + 4q - y by 1/n and
          w/n the same way and folds the products to [0, q).
        The lazy words differ from SEAL's only by multiples of q and the outputs are fully reduced,
        hence SEAL's word for word. Where one root serves many words its quotient's high half
        (w_quot >> 32) is shifted out once.
        */

        /** The high word of y * wq in each lane, short by 0, 1 or 2 (wq_hi = wq >> 32; see above). */
        __attribute__((target("avx512f,avx512dq"))) inline __m512i mulhi_approx_512(__m512i y, __m512i wq, __m512i wq_hi) noexcept
        {
            const __m512i y_hi = _mm512_srli_epi64(y, 32);
            const __m512i hh = _mm512_mul_epu32(y_hi, wq_hi);
            const __m512i hl = _mm512_srli_epi64(_mm512_mul_epu32(y_hi, wq), 32);
            const __m512i lh = _mm512_srli_epi64(_mm512_mul_epu32(y, wq_hi), 32);
            return _mm512_add_epi64(hh, _mm512_add_epi64(hl, lh));
        }

        /** y * w mod q in [0, 4q) in each lane (Shoup, lazily; see above). */
        __attribute__((target("avx512f,avx512dq"))) inline __m512i mul_shoup_512(
            __m512i y, __m512i w, __m512i wq, __m512i wq_hi, __m512i vq) noexcept
        {
            return _mm512_sub_epi64(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(mulhi_approx_512(y, wq, wq_hi), vq));
        }

        /** a - c where that does not wrap, else a: [0, 2c) -> [0, c). */
        __attribute__((target("avx512f,avx512dq"))) inline __m512i fold_512(__m512i a, __m512i c) noexcept
        {
            return _mm512_min_epu64(a, _mm512_sub_epi64(a, c));
        }

        /** The forward butterfly in each lane: x, y in [0, 8q) <- x + w y, x - w y. */
        __attribute__((target("avx512f,avx512dq"))) inline void butterfly_512(
            __m512i &x, __m512i &y, __m512i w, __m512i wq, __m512i wq_hi, __m512i vq, __m512i four_q) noexcept
        {
            const __m512i u = fold_512(x, four_q);
            const __m512i v = mul_shoup_512(y, w, wq, wq_hi, vq);
            x = _mm512_add_epi64(u, v);
            y = _mm512_sub_epi64(_mm512_add_epi64(u, four_q), v);
        }

        /** The inverse butterfly in each lane: x, y in [0, 4q) <- x + y, (x - y) w. */
        __attribute__((target("avx512f,avx512dq"))) inline void inverse_butterfly_512(
            __m512i &x, __m512i &y, __m512i w, __m512i wq, __m512i wq_hi, __m512i vq, __m512i four_q) noexcept
        {
            const __m512i sum = _mm512_add_epi64(x, y);
            const __m512i diff = _mm512_sub_epi64(_mm512_add_epi64(x, four_q), y);
            x = fold_512(sum, four_q);
            y = mul_shoup_512(diff, w, wq, wq_hi, vq);
        }

        /** One root broadcast to every lane: the root, its Shoup quotient and the quotient's high half. */
        struct Root512
        {
            __m512i w, wq, wq_hi;
        };

        __attribute__((target("avx512f,avx512dq"))) inline Root512 broadcast_root_512(const Operand &r) noexcept
        {
            const __m512i wq = _mm512_set1_epi64(static_cast<long long>(r.quotient));
            return { _mm512_set1_epi64(static_cast<long long>(r.operand)), wq, _mm512_srli_epi64(wq, 32) };
        }

        /** One forward stage (m blocks of 2 gap words, gap >= 8), 8 butterflies per register. */
        __attribute__((target("avx512f,avx512dq"))) void forward_stage_512(
            std::uint64_t *values, std::size_t m, std::size_t gap, const Operand *roots, __m512i vq, __m512i four_q) noexcept
        {
            for (std::size_t i = 0; i < m; i++)
            {
                std::uint64_t *x = values + 2 * gap * i;
                std::uint64_t *y = x + gap;
                const Root512 r = broadcast_root_512(roots[m + i]);
                for (std::size_t j = 0; j < gap; j += 8)
                {
                    __m512i vx = _mm512_loadu_si512(x + j);
                    __m512i vy = _mm512_loadu_si512(y + j);
                    butterfly_512(vx, vy, r.w, r.wq, r.wq_hi, vq, four_q);
                    _mm512_storeu_si512(x + j, vx);
                    _mm512_storeu_si512(y + j, vy);
                }
            }
        }

        /**
        The last three forward stages (blocks of 8, 4 and 2 words) and the final reduction on K chunks
        of 16 words, interleaved (one chunk alone is a long chain of dependent multiplies). Each stage
        regroups a chunk's two registers so that one holds the x of 8 butterflies and the other their
        y, with the roots (read as consecutive Operand structs, then deinterleaved) in the same order.
        */
        template <int K>
        __attribute__((target("avx512f,avx512dq"))) inline void forward_tail_chunks_512(
            std::uint64_t *p, const Operand *roots4, const Operand *roots2, const Operand *roots1, __m512i vq, __m512i two_q,
            __m512i four_q) noexcept
        {
            const __m512i root_pair = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
            const __m512i quot_pair = _mm512_set_epi64(3, 3, 3, 3, 1, 1, 1, 1);
            const __m512i low_pairs = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
            const __m512i high_pairs = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
            const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
            const __m512i odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
            const __m512i zip_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
            const __m512i zip_hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
            __m512i x[K], y[K];
            for (int k = 0; k < K; k++)
            {
                // Blocks of 8 words: x = [a0..a3 b0..b3], y = [a4..a7 b4..b7], roots [w0 x4, w1 x4].
                const __m512i a = _mm512_loadu_si512(p + 16 * k), b = _mm512_loadu_si512(p + 16 * k + 8);
                const __m512i r = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(roots4 + 2 * k)));
                const __m512i wq = _mm512_permutexvar_epi64(quot_pair, r);
                x[k] = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0));
                y[k] = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2));
                butterfly_512(x[k], y[k], _mm512_permutexvar_epi64(root_pair, r), wq, _mm512_srli_epi64(wq, 32), vq, four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Blocks of 4: words [0 1 4 5 8 9 12 13] and [2 3 6 7 10 11 14 15], roots [w0 w0 w1 w1 ...].
                const __m512i r = _mm512_loadu_si512(roots2 + 4 * k);
                const __m512i wq = _mm512_unpackhi_epi64(r, r);
                const __m512i x2 = _mm512_permutex2var_epi64(x[k], low_pairs, y[k]);
                y[k] = _mm512_permutex2var_epi64(x[k], high_pairs, y[k]);
                x[k] = x2;
                butterfly_512(x[k], y[k], _mm512_unpacklo_epi64(r, r), wq, _mm512_srli_epi64(wq, 32), vq, four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Blocks of 2: the even words and the odd words, roots w0..w7 in order.
                const __m512i ra = _mm512_loadu_si512(roots1 + 8 * k), rb = _mm512_loadu_si512(roots1 + 8 * k + 4);
                const __m512i wq = _mm512_permutex2var_epi64(ra, odd, rb);
                const __m512i x1 = _mm512_unpacklo_epi64(x[k], y[k]);
                y[k] = _mm512_unpackhi_epi64(x[k], y[k]);
                x[k] = x1;
                butterfly_512(x[k], y[k], _mm512_permutex2var_epi64(ra, even, rb), wq, _mm512_srli_epi64(wq, 32), vq, four_q);
                // [0, 8q) -> [0, q)
                x[k] = fold_512(fold_512(fold_512(x[k], four_q), two_q), vq);
                y[k] = fold_512(fold_512(fold_512(y[k], four_q), two_q), vq);
                _mm512_storeu_si512(p + 16 * k, _mm512_permutex2var_epi64(x[k], zip_lo, y[k]));
                _mm512_storeu_si512(p + 16 * k + 8, _mm512_permutex2var_epi64(x[k], zip_hi, y[k]));
            }
        }

        /** The forward NTT in 512-bit registers (n >= 16). */
        __attribute__((target("avx512f,avx512dq"))) void forward_avx512(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));
            const __m512i two_q = _mm512_set1_epi64(static_cast<long long>(q << 1));
            const __m512i four_q = _mm512_set1_epi64(static_cast<long long>(q << 2));
            // The stages with blocks of 16 words or more (gap >= 8), one pass each, then the last three.
            std::size_t m = 1, gap = n >> 1;
            for (; gap >= 8; m <<= 1, gap >>= 1)
            {
                forward_stage_512(values, m, gap, roots, vq, four_q);
            }
            // Pointers stepped in the loop, not indices scaled per stream: GCC 12 can fold three
            // differently scaled indices into an address it then takes for a null dereference.
            const Operand *roots4 = roots + n / 8, *roots2 = roots + n / 4, *roots1 = roots + n / 2;
            std::uint64_t *p = values, *end = values + n;
            for (; end - p >= 64; p += 64, roots4 += 8, roots2 += 16, roots1 += 32)
            {
                forward_tail_chunks_512<4>(p, roots4, roots2, roots1, vq, two_q, four_q);
            }
            for (; p != end; p += 16, roots4 += 2, roots2 += 4, roots1 += 8)
            {
                forward_tail_chunks_512<1>(p, roots4, roots2, roots1, vq, two_q, four_q);
            }
        }

        /**
        The first three inverse stages (blocks of 2, 4 and 8 words) on K chunks of 16 words,
        interleaved, each stage's regrouping the mirror of forward_tail_chunks_512's.
        */
        template <int K>
        __attribute__((target("avx512f,avx512dq"))) inline void inverse_head_chunks_512(
            std::uint64_t *p, const Operand *roots1, const Operand *roots2, const Operand *roots4, __m512i vq,
            __m512i four_q) noexcept
        {
            const __m512i pair_lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
            const __m512i pair_hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
            const __m512i root_cross = _mm512_set_epi64(6, 2, 6, 2, 4, 0, 4, 0);
            const __m512i quot_cross = _mm512_set_epi64(7, 3, 7, 3, 5, 1, 5, 1);
            const __m512i root_alt = _mm512_set_epi64(2, 0, 2, 0, 2, 0, 2, 0);
            const __m512i quot_alt = _mm512_set_epi64(3, 1, 3, 1, 3, 1, 3, 1);
            const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
            const __m512i odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
            __m512i x[K], y[K];
            for (int k = 0; k < K; k++)
            {
                // Blocks of 2: x = words [0 8 2 10 4 12 6 14], y = [1 9 3 11 ...] (blocks 0 4 1 5 2 6 3 7,
                // whose roots the same unpacking of the table gives).
                const __m512i a = _mm512_loadu_si512(p + 16 * k), b = _mm512_loadu_si512(p + 16 * k + 8);
                const __m512i ra = _mm512_loadu_si512(roots1 + 8 * k), rb = _mm512_loadu_si512(roots1 + 8 * k + 4);
                const __m512i wq = _mm512_unpackhi_epi64(ra, rb);
                x[k] = _mm512_unpacklo_epi64(a, b);
                y[k] = _mm512_unpackhi_epi64(a, b);
                inverse_butterfly_512(x[k], y[k], _mm512_unpacklo_epi64(ra, rb), wq, _mm512_srli_epi64(wq, 32), vq, four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Blocks of 4: x = words [0 8 1 9 4 12 5 13], y = [2 10 3 11 6 14 7 15], roots [w0 w2 w0 w2 w1 w3 w1 w3].
                const __m512i r = _mm512_loadu_si512(roots2 + 4 * k);
                const __m512i wq = _mm512_permutexvar_epi64(quot_cross, r);
                const __m512i x2 = _mm512_permutex2var_epi64(x[k], pair_lo, y[k]);
                y[k] = _mm512_permutex2var_epi64(x[k], pair_hi, y[k]);
                x[k] = x2;
                inverse_butterfly_512(x[k], y[k], _mm512_permutexvar_epi64(root_cross, r), wq, _mm512_srli_epi64(wq, 32), vq,
                                      four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Blocks of 8: x = words [0 8 1 9 2 10 3 11], y = [4 12 5 13 ...], roots [w0 w1 w0 w1 ...].
                const __m512i r = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(roots4 + 2 * k)));
                const __m512i wq = _mm512_permutexvar_epi64(quot_alt, r);
                const __m512i x4 = _mm512_shuffle_i64x2(x[k], y[k], _MM_SHUFFLE(1, 0, 1, 0));
                y[k] = _mm512_shuffle_i64x2(x[k], y[k], _MM_SHUFFLE(3, 2, 3, 2));
                x[k] = x4;
                inverse_butterfly_512(x[k], y[k], _mm512_permutexvar_epi64(root_alt, r), wq, _mm512_srli_epi64(wq, 32), vq,
                                      four_q);
                _mm512_storeu_si512(p + 16 * k, _mm512_permutex2var_epi64(x[k], even, y[k]));
                _mm512_storeu_si512(p + 16 * k + 8, _mm512_permutex2var_epi64(x[k], odd, y[k]));
            }
        }

        /** One inverse stage (m blocks of 2 gap words, gap >= 8), 8 butterflies per register. */
        __attribute__((target("avx512f,avx512dq"))) void inverse_stage_512(
            std::uint64_t *values, std::size_t n, std::size_t m, std::size_t gap, const Operand *roots, __m512i vq,
            __m512i four_q) noexcept
        {
            const Operand *stage_roots = roots + cuda::fft_inverse_root_offset(n, m);
            for (std::size_t i = 0; i < m; i++)
            {
                std::uint64_t *x = values + 2 * gap * i;
                std::uint64_t *y = x + gap;
                const Root512 r = broadcast_root_512(stage_roots[i]);
                for (std::size_t j = 0; j < gap; j += 8)
                {
                    __m512i u = _mm512_loadu_si512(x + j);
                    __m512i v = _mm512_loadu_si512(y + j);
                    inverse_butterfly_512(u, v, r.w, r.wq, r.wq_hi, vq, four_q);
                    _mm512_storeu_si512(x + j, u);
                    _mm512_storeu_si512(y + j, v);
                }
            }
        }

        /** The inverse NTT in 512-bit registers (n >= 16). */
        __attribute__((target("avx512f,avx512dq"))) void inverse_avx512(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots, const InverseTail &tail) noexcept
        {
            const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));
            const __m512i two_q = _mm512_set1_epi64(static_cast<long long>(q << 1));
            const __m512i four_q = _mm512_set1_epi64(static_cast<long long>(q << 2));
            const Operand *roots1 = roots + cuda::fft_inverse_root_offset(n, n / 2);
            const Operand *roots2 = roots + cuda::fft_inverse_root_offset(n, n / 4);
            const Operand *roots4 = roots + cuda::fft_inverse_root_offset(n, n / 8);
            std::uint64_t *p = values, *end = values + n;
            for (; end - p >= 64; p += 64, roots1 += 32, roots2 += 16, roots4 += 8)
            {
                inverse_head_chunks_512<4>(p, roots1, roots2, roots4, vq, four_q);
            }
            for (; p != end; p += 16, roots1 += 8, roots2 += 4, roots4 += 2)
            {
                inverse_head_chunks_512<1>(p, roots1, roots2, roots4, vq, four_q);
            }
            // The stages with blocks of 16 words or more but the last, one pass each.
            std::size_t m = n / 16, gap = 8;
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                inverse_stage_512(values, n, m, gap, roots, vq, four_q);
            }
            // The last stage: x, y <- (x + y)/n, (x - y) w/n, then reduced below q.
            const std::size_t half = n / 2;
            const __m512i inv_n = _mm512_set1_epi64(static_cast<long long>(tail.inv_n));
            const __m512i inv_n_quot = _mm512_set1_epi64(static_cast<long long>(tail.inv_n_quot));
            const __m512i sw = _mm512_set1_epi64(static_cast<long long>(tail.scaled_w));
            const __m512i sw_quot = _mm512_set1_epi64(static_cast<long long>(tail.scaled_w_quot));
            const __m512i inv_n_quot_hi = _mm512_srli_epi64(inv_n_quot, 32), sw_quot_hi = _mm512_srli_epi64(sw_quot, 32);
            for (std::size_t j = 0; j < half; j += 8)
            {
                const __m512i u = _mm512_loadu_si512(values + j);
                const __m512i v = _mm512_loadu_si512(values + half + j);
                const __m512i sum = _mm512_add_epi64(u, v);
                const __m512i diff = _mm512_sub_epi64(_mm512_add_epi64(u, four_q), v);
                const __m512i x = mul_shoup_512(sum, inv_n, inv_n_quot, inv_n_quot_hi, vq);
                const __m512i y = mul_shoup_512(diff, sw, sw_quot, sw_quot_hi, vq);
                // [0, 4q) -> [0, q)
                _mm512_storeu_si512(values + j, fold_512(fold_512(x, two_q), vq));
                _mm512_storeu_si512(values + half + j, fold_512(fold_512(y, two_q), vq));
            }
        }

        /** The same arithmetic in 256-bit registers (AVX-512VL/DQ instructions on ymm: no 512-bit multiply). */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline __m256i mulhi_approx_256(
            __m256i y, __m256i wq, __m256i wq_hi) noexcept
        {
            const __m256i y_hi = _mm256_srli_epi64(y, 32);
            const __m256i hh = _mm256_mul_epu32(y_hi, wq_hi);
            const __m256i hl = _mm256_srli_epi64(_mm256_mul_epu32(y_hi, wq), 32);
            const __m256i lh = _mm256_srli_epi64(_mm256_mul_epu32(y, wq_hi), 32);
            return _mm256_add_epi64(hh, _mm256_add_epi64(hl, lh));
        }

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline __m256i mul_shoup_256(
            __m256i y, __m256i w, __m256i wq, __m256i wq_hi, __m256i vq) noexcept
        {
            return _mm256_sub_epi64(_mm256_mullo_epi64(y, w), _mm256_mullo_epi64(mulhi_approx_256(y, wq, wq_hi), vq));
        }

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline __m256i fold_256(__m256i a, __m256i c) noexcept
        {
            return _mm256_min_epu64(a, _mm256_sub_epi64(a, c));
        }

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline void butterfly_256(
            __m256i &x, __m256i &y, __m256i w, __m256i wq, __m256i wq_hi, __m256i vq, __m256i four_q) noexcept
        {
            const __m256i u = fold_256(x, four_q);
            const __m256i v = mul_shoup_256(y, w, wq, wq_hi, vq);
            x = _mm256_add_epi64(u, v);
            y = _mm256_sub_epi64(_mm256_add_epi64(u, four_q), v);
        }

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline void inverse_butterfly_256(
            __m256i &x, __m256i &y, __m256i w, __m256i wq, __m256i wq_hi, __m256i vq, __m256i four_q) noexcept
        {
            const __m256i sum = _mm256_add_epi64(x, y);
            const __m256i diff = _mm256_sub_epi64(_mm256_add_epi64(x, four_q), y);
            x = fold_256(sum, four_q);
            y = mul_shoup_256(diff, w, wq, wq_hi, vq);
        }

        /** One root broadcast to every lane, as Root512. */
        struct Root256
        {
            __m256i w, wq, wq_hi;
        };

        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline Root256 broadcast_root_256(const Operand &r) noexcept
        {
            const __m256i wq = _mm256_set1_epi64x(static_cast<long long>(r.quotient));
            return { _mm256_set1_epi64x(static_cast<long long>(r.operand)), wq, _mm256_srli_epi64(wq, 32) };
        }

        /** Two consecutive roots (Operand structs) as [w0 q0 w1 q1]. */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline __m256i load_roots_256(const Operand *roots) noexcept
        {
            return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(roots));
        }

        /** One forward stage (m blocks of 2 gap words, gap >= 4), 4 butterflies per register. */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void forward_stage_256(
            std::uint64_t *values, std::size_t m, std::size_t gap, const Operand *roots, __m256i vq, __m256i four_q) noexcept
        {
            for (std::size_t i = 0; i < m; i++)
            {
                std::uint64_t *x = values + 2 * gap * i;
                std::uint64_t *y = x + gap;
                const Root256 r = broadcast_root_256(roots[m + i]);
                for (std::size_t j = 0; j < gap; j += 4)
                {
                    __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x + j));
                    __m256i vy = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y + j));
                    butterfly_256(vx, vy, r.w, r.wq, r.wq_hi, vq, four_q);
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(x + j), vx);
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + j), vy);
                }
            }
        }

        /**
        The last two forward stages (blocks of 4 and 2 words) and the final reduction on K chunks of
        8 words (two registers), interleaved. Blocks of 4: a = [x0 x1 y0 y1] and b (the next block)
        regroup by 128-bit halves into x = [a0 a1 b0 b1], y = [a2 a3 b2 b3], roots [w0 w0 w1 w1].
        Blocks of 2: unpacking x and y gives the even words (the x of blocks 0..3) and the odd words
        (their y).
        */
        template <int K>
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline void forward_tail_chunks_256(
            std::uint64_t *p, const Operand *roots2, const Operand *roots1, __m256i vq, __m256i two_q, __m256i four_q) noexcept
        {
            const __m256i even = _mm256_set_epi64x(6, 4, 2, 0), odd = _mm256_set_epi64x(7, 5, 3, 1);
            const __m256i zip_lo = _mm256_set_epi64x(5, 1, 4, 0), zip_hi = _mm256_set_epi64x(7, 3, 6, 2);
            __m256i x[K], y[K];
            for (int k = 0; k < K; k++)
            {
                const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 8 * k));
                const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 8 * k + 4));
                const __m256i r = load_roots_256(roots2 + 2 * k);
                const __m256i wq = _mm256_unpackhi_epi64(r, r);
                x[k] = _mm256_permute2x128_si256(a, b, 0x20);
                y[k] = _mm256_permute2x128_si256(a, b, 0x31);
                butterfly_256(x[k], y[k], _mm256_unpacklo_epi64(r, r), wq, _mm256_srli_epi64(wq, 32), vq, four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Words [0 1 4 5] and [2 3 6 7] -> [0 2 4 6] (x) and [1 3 5 7] (y), roots w0..w3 in order.
                const __m256i ra = load_roots_256(roots1 + 4 * k), rb = load_roots_256(roots1 + 4 * k + 2);
                const __m256i wq = _mm256_permutex2var_epi64(ra, odd, rb);
                const __m256i x1 = _mm256_unpacklo_epi64(x[k], y[k]);
                y[k] = _mm256_unpackhi_epi64(x[k], y[k]);
                x[k] = x1;
                butterfly_256(x[k], y[k], _mm256_permutex2var_epi64(ra, even, rb), wq, _mm256_srli_epi64(wq, 32), vq, four_q);
                // [0, 8q) -> [0, q)
                x[k] = fold_256(fold_256(fold_256(x[k], four_q), two_q), vq);
                y[k] = fold_256(fold_256(fold_256(y[k], four_q), two_q), vq);
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(p + 8 * k), _mm256_permutex2var_epi64(x[k], zip_lo, y[k]));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(p + 8 * k + 4), _mm256_permutex2var_epi64(x[k], zip_hi, y[k]));
            }
        }

        /** The forward NTT in 256-bit registers (n >= 16). */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void forward_avx512vl(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots) noexcept
        {
            const __m256i vq = _mm256_set1_epi64x(static_cast<long long>(q));
            const __m256i two_q = _mm256_set1_epi64x(static_cast<long long>(q << 1));
            const __m256i four_q = _mm256_set1_epi64x(static_cast<long long>(q << 2));
            // The stages with blocks of 8 words or more (gap >= 4), one pass each, then the last two.
            std::size_t m = 1, gap = n >> 1;
            for (; gap >= 4; m <<= 1, gap >>= 1)
            {
                forward_stage_256(values, m, gap, roots, vq, four_q);
            }
            // Pointers stepped in the loop, as in forward_avx512.
            const Operand *roots2 = roots + n / 4, *roots1 = roots + n / 2;
            std::uint64_t *p = values, *end = values + n;
            for (; end - p >= 32; p += 32, roots2 += 8, roots1 += 16)
            {
                forward_tail_chunks_256<4>(p, roots2, roots1, vq, two_q, four_q);
            }
            for (; p != end; p += 8, roots2 += 2, roots1 += 4)
            {
                forward_tail_chunks_256<1>(p, roots2, roots1, vq, two_q, four_q);
            }
            _mm256_zeroupper();
        }

        /**
        The first two inverse stages (blocks of 2 and 4 words) on K chunks of 8 words, interleaved:
        unpacking a = [x0 y0 x1 y1] and b gives x = [a0 b0 a2 b2], y = [a1 b1 a3 b3] (blocks 0, 2,
        1, 3, whose roots the same unpacking of the table gives); then the 128-bit halves of those
        two registers pair as the x and y of the blocks of 4 words, roots [w0 w1 w0 w1].
        */
        template <int K>
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) inline void inverse_head_chunks_256(
            std::uint64_t *p, const Operand *roots1, const Operand *roots2, __m256i vq, __m256i four_q) noexcept
        {
            const __m256i even = _mm256_set_epi64x(6, 4, 2, 0), odd = _mm256_set_epi64x(7, 5, 3, 1);
            __m256i x[K], y[K];
            for (int k = 0; k < K; k++)
            {
                const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 8 * k));
                const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 8 * k + 4));
                const __m256i ra = load_roots_256(roots1 + 4 * k), rb = load_roots_256(roots1 + 4 * k + 2);
                const __m256i wq = _mm256_unpackhi_epi64(ra, rb);
                x[k] = _mm256_unpacklo_epi64(a, b);
                y[k] = _mm256_unpackhi_epi64(a, b);
                inverse_butterfly_256(x[k], y[k], _mm256_unpacklo_epi64(ra, rb), wq, _mm256_srli_epi64(wq, 32), vq, four_q);
            }
            for (int k = 0; k < K; k++)
            {
                // Words [0 4 2 6] and [1 5 3 7] -> [0 4 1 5] (x) and [2 6 3 7] (y).
                const __m256i r = load_roots_256(roots2 + 2 * k);
                const __m256i wq = _mm256_permute4x64_epi64(r, _MM_SHUFFLE(3, 1, 3, 1));
                const __m256i x2 = _mm256_permute2x128_si256(x[k], y[k], 0x20);
                y[k] = _mm256_permute2x128_si256(x[k], y[k], 0x31);
                x[k] = x2;
                inverse_butterfly_256(x[k], y[k], _mm256_permute4x64_epi64(r, _MM_SHUFFLE(2, 0, 2, 0)), wq,
                                      _mm256_srli_epi64(wq, 32), vq, four_q);
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(p + 8 * k), _mm256_permutex2var_epi64(x[k], even, y[k]));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(p + 8 * k + 4), _mm256_permutex2var_epi64(x[k], odd, y[k]));
            }
        }

        /** One inverse stage (m blocks of 2 gap words, gap >= 4), 4 butterflies per register. */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void inverse_stage_256(
            std::uint64_t *values, std::size_t n, std::size_t m, std::size_t gap, const Operand *roots, __m256i vq,
            __m256i four_q) noexcept
        {
            const Operand *stage_roots = roots + cuda::fft_inverse_root_offset(n, m);
            for (std::size_t i = 0; i < m; i++)
            {
                std::uint64_t *x = values + 2 * gap * i;
                std::uint64_t *y = x + gap;
                const Root256 r = broadcast_root_256(stage_roots[i]);
                for (std::size_t j = 0; j < gap; j += 4)
                {
                    __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x + j));
                    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(y + j));
                    inverse_butterfly_256(u, v, r.w, r.wq, r.wq_hi, vq, four_q);
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(x + j), u);
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + j), v);
                }
            }
        }

        /** The inverse NTT in 256-bit registers (n >= 16). */
        __attribute__((target("avx2,avx512f,avx512vl,avx512dq"))) void inverse_avx512vl(
            std::uint64_t *values, std::size_t n, std::uint64_t q, const Operand *roots, const InverseTail &tail) noexcept
        {
            const __m256i vq = _mm256_set1_epi64x(static_cast<long long>(q));
            const __m256i two_q = _mm256_set1_epi64x(static_cast<long long>(q << 1));
            const __m256i four_q = _mm256_set1_epi64x(static_cast<long long>(q << 2));
            const Operand *roots1 = roots + cuda::fft_inverse_root_offset(n, n / 2);
            const Operand *roots2 = roots + cuda::fft_inverse_root_offset(n, n / 4);
            std::uint64_t *p = values, *end = values + n;
            for (; end - p >= 32; p += 32, roots1 += 16, roots2 += 8)
            {
                inverse_head_chunks_256<4>(p, roots1, roots2, vq, four_q);
            }
            for (; p != end; p += 8, roots1 += 4, roots2 += 2)
            {
                inverse_head_chunks_256<1>(p, roots1, roots2, vq, four_q);
            }
            // The stages with blocks of 8 words or more but the last, one pass each.
            std::size_t m = n / 8, gap = 4;
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                inverse_stage_256(values, n, m, gap, roots, vq, four_q);
            }
            // The last stage: x, y <- (x + y)/n, (x - y) w/n, then reduced below q.
            const std::size_t half = n / 2;
            const __m256i inv_n = _mm256_set1_epi64x(static_cast<long long>(tail.inv_n));
            const __m256i inv_n_quot = _mm256_set1_epi64x(static_cast<long long>(tail.inv_n_quot));
            const __m256i sw = _mm256_set1_epi64x(static_cast<long long>(tail.scaled_w));
            const __m256i sw_quot = _mm256_set1_epi64x(static_cast<long long>(tail.scaled_w_quot));
            const __m256i inv_n_quot_hi = _mm256_srli_epi64(inv_n_quot, 32), sw_quot_hi = _mm256_srli_epi64(sw_quot, 32);
            for (std::size_t j = 0; j < half; j += 4)
            {
                const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(values + j));
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(values + half + j));
                const __m256i sum = _mm256_add_epi64(u, v);
                const __m256i diff = _mm256_sub_epi64(_mm256_add_epi64(u, four_q), v);
                const __m256i x = mul_shoup_256(sum, inv_n, inv_n_quot, inv_n_quot_hi, vq);
                const __m256i y = mul_shoup_256(diff, sw, sw_quot, sw_quot_hi, vq);
                // [0, 4q) -> [0, q)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(values + j), fold_256(fold_256(x, two_q), vq));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(values + half + j), fold_256(fold_256(y, two_q), vq));
            }
            _mm256_zeroupper();
        }
#endif

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
                // The default is the 512-bit one: on this project's CPUs it takes about 4.3 us per
                // 4096-word transform against 7.8 for the 256-bit one, and whole encryptions and
                // decryptions are faster with it too (docs/BENCHMARKS.md). CPUs that lower their
                // clock for 512-bit multiplies can be given FHTO_NTT=avx512vl.
                const std::string want = detail::forced_path("FHTO_NTT");
                if (want == "scalar")
                {
                    return;
                }
#ifdef FHTO_NTT_AVX512
                const bool dq = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
                const bool vl = dq && __builtin_cpu_supports("avx512vl");
                if (want != "avx512vl" && dq)
                {
                    forward = forward_avx512;
                    inverse = inverse_avx512;
                    name = "avx512";
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
        if (n < 16)
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
