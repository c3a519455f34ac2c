#include "fft.h"

#include <cstdlib>
#include <string>
#include "cuda/decode.cuh"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_FFT_AVX 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace
    {
#ifdef FHTO_FFT_AVX
        /** Two complex products d r (r the same for both): (d.re r.re - d.im r.im, d.im r.re + d.re r.im). */
        __attribute__((target("avx"))) inline __m256d cmul2(__m256d d, __m256d r_re, __m256d r_im) noexcept
        {
            const __m256d swapped = _mm256_permute_pd(d, 0x5); // (d.im, d.re) in each pair
            return _mm256_addsub_pd(_mm256_mul_pd(d, r_re), _mm256_mul_pd(swapped, r_im));
        }

        __attribute__((target("avx"))) void inverse_avx(cuda::Complex *values, const cuda::EncodeTables &t) noexcept
        {
            const std::uint64_t n = std::uint64_t(1) << t.log_n;
            double *v = reinterpret_cast<double *>(values);
            std::uint64_t gap = 1, m = n >> 1;
            // Blocks of one butterfly: scalar.
            {
                const cuda::Complex *roots = t.inv_roots + cuda::fft_inverse_root_offset(n, m);
                for (std::uint64_t i = 0; i < m; i++)
                {
                    cuda::fft_inverse_butterfly(values[2 * i], values[2 * i + 1], roots[i]);
                }
                m >>= 1;
                gap <<= 1;
            }
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                const cuda::Complex *roots = t.inv_roots + cuda::fft_inverse_root_offset(n, m);
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
                for (std::uint64_t i = 0; i < m; i++)
                {
                    double *x = v + 2 * (2 * gap * i), *y = x + 2 * gap;
                    const __m256d r_re = _mm256_set1_pd(roots[m + i].re), r_im = _mm256_set1_pd(roots[m + i].im);
                    for (std::uint64_t j = 0; j < gap; j += 2)
                    {
                        const __m256d u = _mm256_loadu_pd(x + 2 * j);
                        const __m256d w = cmul2(_mm256_loadu_pd(y + 2 * j), r_re, r_im);
                        _mm256_storeu_pd(x + 2 * j, _mm256_add_pd(u, w));
                        _mm256_storeu_pd(y + 2 * j, _mm256_sub_pd(u, w));
                    }
                }
            }
            _mm256_zeroupper();
            for (std::uint64_t i = 0; i < m; i++) // blocks of one butterfly
            {
                cuda::fft_forward_butterfly(values[2 * i], values[2 * i + 1], roots[m + i]);
            }
        }
#endif

        struct Backend
        {
            bool avx = false;
            Backend()
            {
                const char *forced = std::getenv("FHTO_FFT");
                if (forced && std::string(forced) == "scalar")
                {
                    return;
                }
#ifdef FHTO_FFT_AVX
                avx = __builtin_cpu_supports("avx");
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
        return backend().avx ? "avx" : "scalar";
    }
} // namespace fhto
