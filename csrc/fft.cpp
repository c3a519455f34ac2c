#include "fft.h"

#include <cstdlib>
#include <string>
#include "cuda/decode.cuh"
#include "dispatch.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_FFT_AVX 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace
    {
        // The blocks of one butterfly, one at a time (what the vector loops leave). Kept out of the
        // AVX-512 functions: compiled there, GCC vectorises these loops into FMA instructions
        // (vfmaddsub) even under -ffp-contract=off, and the doubles would no longer be SEAL's.
        __attribute__((noinline)) void inverse_single_butterflies(cuda::Complex *values, const cuda::Complex *roots, std::uint64_t m) noexcept
        {
            for (std::uint64_t i = 0; i < m; i++)
            {
                cuda::fft_inverse_butterfly(values[2 * i], values[2 * i + 1], roots[i]);
            }
        }

        __attribute__((noinline)) void forward_single_butterflies(cuda::Complex *values, const cuda::Complex *roots, std::uint64_t m) noexcept
        {
            for (std::uint64_t i = 0; i < m; i++)
            {
                cuda::fft_forward_butterfly(values[2 * i], values[2 * i + 1], roots[i]);
            }
        }

#ifdef FHTO_FFT_AVX
        /** Two complex products d r (r the same for both): (d.re r.re - d.im r.im, d.im r.re + d.re r.im). */
        __attribute__((target("avx"))) inline __m256d cmul2(__m256d d, __m256d r_re, __m256d r_im) noexcept
        {
            const __m256d swapped = _mm256_permute_pd(d, 0x5); // (d.im, d.re) in each pair
            return _mm256_addsub_pd(_mm256_mul_pd(d, r_re), _mm256_mul_pd(swapped, r_im));
        }

        /**
        One stage of m blocks of `gap` butterflies (gap even), two per 256-bit register; block i
        uses roots[i]. Not inlined into the AVX-512 functions, whose FMA instructions the
        compiler would use here (see the single-butterfly stages above).
        */
        __attribute__((target("avx"), noinline)) void inverse_stage_avx(
            double *v, const cuda::Complex *roots, std::uint64_t m, std::uint64_t gap) noexcept
        {
            for (std::uint64_t i = 0; i < m; i++)
            {
                double *x = v + 2 * (2 * gap * i), *y = x + 2 * gap;
                const __m256d r_re = _mm256_set1_pd(roots[i].re), r_im = _mm256_set1_pd(roots[i].im);
                for (std::uint64_t j = 0; j < gap; j += 2)
                {
                    const __m256d u = _mm256_loadu_pd(x + 2 * j), w = _mm256_loadu_pd(y + 2 * j);
                    _mm256_storeu_pd(x + 2 * j, _mm256_add_pd(u, w));
                    _mm256_storeu_pd(y + 2 * j, cmul2(_mm256_sub_pd(u, w), r_re, r_im));
                }
            }
        }

        __attribute__((target("avx"), noinline)) void forward_stage_avx(
            double *v, const cuda::Complex *roots, std::uint64_t m, std::uint64_t gap) noexcept
        {
            for (std::uint64_t i = 0; i < m; i++)
            {
                double *x = v + 2 * (2 * gap * i), *y = x + 2 * gap;
                const __m256d r_re = _mm256_set1_pd(roots[i].re), r_im = _mm256_set1_pd(roots[i].im);
                for (std::uint64_t j = 0; j < gap; j += 2)
                {
                    const __m256d u = _mm256_loadu_pd(x + 2 * j);
                    const __m256d w = cmul2(_mm256_loadu_pd(y + 2 * j), r_re, r_im);
                    _mm256_storeu_pd(x + 2 * j, _mm256_add_pd(u, w));
                    _mm256_storeu_pd(y + 2 * j, _mm256_sub_pd(u, w));
                }
            }
        }

        __attribute__((target("avx"))) void inverse_avx(cuda::Complex *values, const cuda::EncodeTables &t) noexcept
        {
            const std::uint64_t n = std::uint64_t(1) << t.log_n;
            double *v = reinterpret_cast<double *>(values);
            std::uint64_t gap = 1, m = n >> 1;
            inverse_single_butterflies(values, t.inv_roots + cuda::fft_inverse_root_offset(n, m), m);
            for (m >>= 1, gap <<= 1; m > 1; m >>= 1, gap <<= 1)
            {
                inverse_stage_avx(v, t.inv_roots + cuda::fft_inverse_root_offset(n, m), m, gap);
            }
            const cuda::Complex scaled = cuda::cscale(t.inv_roots[cuda::fft_inverse_root_offset(n, 1)], t.fix);
            const __m256d s_re = _mm256_set1_pd(scaled.re), s_im = _mm256_set1_pd(scaled.im), fix = _mm256_set1_pd(t.fix);
            double *x = v, *y = v + 2 * gap;
            for (std::uint64_t j = 0; j < gap; j += 2)
            {
                const __m256d u = _mm256_loadu_pd(x + 2 * j), w = _mm256_loadu_pd(y + 2 * j);
                _mm256_storeu_pd(x + 2 * j, _mm256_mul_pd(_mm256_add_pd(u, w), fix));
                _mm256_storeu_pd(y + 2 * j, cmul2(_mm256_sub_pd(u, w), s_re, s_im));
            }
            _mm256_zeroupper();
        }

        __attribute__((target("avx"))) void forward_avx(cuda::Complex *values, int log_n, const cuda::Complex *roots) noexcept
        {
            const std::uint64_t n = std::uint64_t(1) << log_n;
            double *v = reinterpret_cast<double *>(values);
            std::uint64_t m = 1, gap = n >> 1;
            for (; gap >= 2; m <<= 1, gap >>= 1)
            {
                forward_stage_avx(v, roots + m, m, gap);
            }
            _mm256_zeroupper();
            forward_single_butterflies(values, roots + m, m);
        }
        /**
        Four complex products d r (r the same for all) in a 512-bit register, with the same
        roundings as cmul2: each lane's products, then re = a - b as a + (-b) (IEEE defines
        subtraction so), im = a + b.
        */
        __attribute__((target("avx512f"))) inline __m512d cmul4(__m512d d, __m512d r_re, __m512d r_im) noexcept
        {
            const __m512i even_sign = _mm512_setr_epi64(
                static_cast<long long>(0x8000000000000000ULL), 0, static_cast<long long>(0x8000000000000000ULL), 0,
                static_cast<long long>(0x8000000000000000ULL), 0, static_cast<long long>(0x8000000000000000ULL), 0);
            const __m512d swapped = _mm512_permute_pd(d, 0x55); // (d.im, d.re) in each pair
            __m512d a = _mm512_mul_pd(d, r_re), b = _mm512_mul_pd(swapped, r_im);
            // The compiler would fuse these products with the add below into an FMA (vfmaddsub),
            // whatever -ffp-contract says: hide them from it so that each product is rounded.
            __asm__("" : "+v"(a), "+v"(b));
            return _mm512_add_pd(a, _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(b), even_sign)));
        }

        /**
        The stage whose blocks hold one butterfly (x = values[2i], y = values[2i + 1], root
        roots[i]), 4 butterflies per pass: two registers of (x, y) pairs regrouped into one of x
        and one of y, the roots' real and imaginary parts duplicated, then back. Each lane's
        operations are the scalar butterfly's (cmul4's products stay rounded).
        */
        template <bool Inverse>
        __attribute__((target("avx512f"))) void single_butterflies_avx512(
            cuda::Complex *values, const cuda::Complex *roots, std::uint64_t m) noexcept
        {
            double *v = reinterpret_cast<double *>(values);
            const double *r = reinterpret_cast<const double *>(roots);
            const __m512i xs = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), ys = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
            const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
            std::uint64_t i = 0;
            for (; i + 4 <= m; i += 4)
            {
                const __m512d a = _mm512_loadu_pd(v + 4 * i), b = _mm512_loadu_pd(v + 4 * i + 8);
                const __m512d x = _mm512_permutex2var_pd(a, xs, b), y = _mm512_permutex2var_pd(a, ys, b);
                const __m512d root = _mm512_loadu_pd(r + 2 * i);
                const __m512d r_re = _mm512_movedup_pd(root), r_im = _mm512_permute_pd(root, 0xFF);
                __m512d u, w;
                if (Inverse)
                {
                    u = _mm512_add_pd(x, y);
                    w = cmul4(_mm512_sub_pd(x, y), r_re, r_im);
                }
                else
                {
                    const __m512d t = cmul4(y, r_re, r_im);
                    u = _mm512_add_pd(x, t);
                    w = _mm512_sub_pd(x, t);
                }
                _mm512_storeu_pd(v + 4 * i, _mm512_permutex2var_pd(u, lo, w));
                _mm512_storeu_pd(v + 4 * i + 8, _mm512_permutex2var_pd(u, hi, w));
            }
            if (Inverse)
            {
                inverse_single_butterflies(values + 2 * i, roots + i, m - i);
            }
            else
            {
                forward_single_butterflies(values + 2 * i, roots + i, m - i);
            }
        }

        /** The inverse FFT with blocks of 4 or more butterflies 4 at a time in 512-bit registers, then inverse_avx's last stage. */
        __attribute__((target("avx,avx512f"))) void inverse_avx512(cuda::Complex *values, const cuda::EncodeTables &t) noexcept
        {
            const std::uint64_t n = std::uint64_t(1) << t.log_n;
            double *v = reinterpret_cast<double *>(values);
            std::uint64_t gap = 1, m = n >> 1;
            single_butterflies_avx512<true>(values, t.inv_roots + cuda::fft_inverse_root_offset(n, m), m);
            m >>= 1;
            gap <<= 1;
            inverse_stage_avx(v, t.inv_roots + cuda::fft_inverse_root_offset(n, m), m, gap); // blocks of two
            m >>= 1;
            gap <<= 1;
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                const cuda::Complex *roots = t.inv_roots + cuda::fft_inverse_root_offset(n, m);
                for (std::uint64_t i = 0; i < m; i++)
                {
                    double *x = v + 2 * (2 * gap * i), *y = x + 2 * gap;
                    const __m512d r_re = _mm512_set1_pd(roots[i].re), r_im = _mm512_set1_pd(roots[i].im);
                    for (std::uint64_t j = 0; j < gap; j += 4)
                    {
                        const __m512d u = _mm512_loadu_pd(x + 2 * j), w = _mm512_loadu_pd(y + 2 * j);
                        _mm512_storeu_pd(x + 2 * j, _mm512_add_pd(u, w));
                        _mm512_storeu_pd(y + 2 * j, cmul4(_mm512_sub_pd(u, w), r_re, r_im));
                    }
                }
            }
            const cuda::Complex scaled = cuda::cscale(t.inv_roots[cuda::fft_inverse_root_offset(n, 1)], t.fix);
            const __m512d s_re = _mm512_set1_pd(scaled.re), s_im = _mm512_set1_pd(scaled.im), fix = _mm512_set1_pd(t.fix);
            double *x = v, *y = v + 2 * gap;
            for (std::uint64_t j = 0; j < gap; j += 4)
            {
                const __m512d u = _mm512_loadu_pd(x + 2 * j), w = _mm512_loadu_pd(y + 2 * j);
                _mm512_storeu_pd(x + 2 * j, _mm512_mul_pd(_mm512_add_pd(u, w), fix));
                _mm512_storeu_pd(y + 2 * j, cmul4(_mm512_sub_pd(u, w), s_re, s_im));
            }
            _mm256_zeroupper();
        }

        /** The forward FFT with blocks of 4 or more butterflies 4 at a time in 512-bit registers, then 2, then 1. */
        __attribute__((target("avx,avx512f"))) void forward_avx512(cuda::Complex *values, int log_n, const cuda::Complex *roots) noexcept
        {
            const std::uint64_t n = std::uint64_t(1) << log_n;
            double *v = reinterpret_cast<double *>(values);
            std::uint64_t m = 1, gap = n >> 1;
            for (; gap >= 4; m <<= 1, gap >>= 1)
            {
                for (std::uint64_t i = 0; i < m; i++)
                {
                    double *x = v + 2 * (2 * gap * i), *y = x + 2 * gap;
                    const __m512d r_re = _mm512_set1_pd(roots[m + i].re), r_im = _mm512_set1_pd(roots[m + i].im);
                    for (std::uint64_t j = 0; j < gap; j += 4)
                    {
                        const __m512d u = _mm512_loadu_pd(x + 2 * j);
                        const __m512d w = cmul4(_mm512_loadu_pd(y + 2 * j), r_re, r_im);
                        _mm512_storeu_pd(x + 2 * j, _mm512_add_pd(u, w));
                        _mm512_storeu_pd(y + 2 * j, _mm512_sub_pd(u, w));
                    }
                }
            }
            _mm256_zeroupper();
            forward_stage_avx(v, roots + m, m, gap); // blocks of two butterflies
            m <<= 1;
            single_butterflies_avx512<false>(values, roots + m, m);
        }
#endif

        struct Backend
        {
            bool avx = false, avx512 = false;
            Backend()
            {
                // FHTO_FFT=scalar|avx forces a slower path (the tests compare every path with SEAL).
                const std::string want = detail::forced_path("FHTO_FFT");
                if (want == "scalar")
                {
                    return;
                }
#ifdef FHTO_FFT_AVX
                avx = __builtin_cpu_supports("avx");
                avx512 = avx && want != "avx" && __builtin_cpu_supports("avx512f");
#endif
            }
        };

        const Backend &backend() noexcept
        {
            static const Backend b;
            return b;
        }
    } // namespace

    void fft_inverse(cuda::Complex *values, const cuda::EncodeTables &tables) noexcept
    {
#ifdef FHTO_FFT_AVX
        if (backend().avx512 && tables.log_n >= 4)
        {
            inverse_avx512(values, tables);
            return;
        }
        if (backend().avx && tables.log_n >= 3)
        {
            inverse_avx(values, tables);
            return;
        }
#endif
        cuda::fft_inverse_host(values, tables);
    }

    void fft_forward(cuda::Complex *values, int log_n, const cuda::Complex *roots) noexcept
    {
#ifdef FHTO_FFT_AVX
        if (backend().avx512 && log_n >= 4)
        {
            forward_avx512(values, log_n, roots);
            return;
        }
        if (backend().avx && log_n >= 3)
        {
            forward_avx(values, log_n, roots);
            return;
        }
#endif
        cuda::fft_forward_host(values, log_n, roots);
    }

    const char *fft_backend() noexcept
    {
        return backend().avx512 ? "avx512" : backend().avx ? "avx" : "scalar";
    }
} // namespace fhto
