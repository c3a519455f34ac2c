#include "encoder.h"

#include <complex>
#include <cstdlib>
#include <string>
#include "dispatch.h"
#include "fft.h"
#include "ntt.h"
#include "seal/util/croots.h"
#include "seal/util/uintarith.h"
#include "seal/util/uintarithsmallmod.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_ENCODE_AVX512 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace
    {
        /** Coefficients i of the inverse FFT's output (real parts) as residues modulo every prime, one at a time. */
        void residues_scalar(const cuda::Complex *work, std::size_t begin, std::size_t end, std::size_t n,
                             const std::vector<cuda::UniformPrime> &primes, std::uint64_t *plain) noexcept
        {
            for (std::size_t i = begin; i < end; i++)
            {
                const double re = work[i].re;
                for (std::size_t l = 0; l < primes.size(); l++)
                {
                    plain[l * n + i] = cuda::coefficient_residue(re, primes[l]);
                }
            }
        }

#ifdef FHTO_ENCODE_AVX512
        /**
        The same, 8 coefficients at a time: round half away from zero as trunc(x) + sign(x) where
        |x - trunc(x)| >= 1/2 (each step exact, so the same integer as round()), then the residue
        of |r| < q directly, negated modulo q where r < 0. A group with a magnitude of q or more
        (coefficients of a multi-prime modulus) takes the exact scalar path.
        */
        __attribute__((target("avx512f,avx512dq"))) void residues_avx512(
            const cuda::Complex *work, std::size_t n, const std::vector<cuda::UniformPrime> &primes,
            std::uint64_t *plain) noexcept
        {
            const __m512i real_parts = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
            const __m512d sign_bit = _mm512_set1_pd(-0.0);
            const double *v = reinterpret_cast<const double *>(work);
            for (std::size_t i = 0; i < n; i += 8)
            {
                const __m512d x = _mm512_permutex2var_pd(_mm512_loadu_pd(v + 2 * i), real_parts, _mm512_loadu_pd(v + 2 * i + 8));
                const __m512d t = _mm512_roundscale_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                const __m512d frac = _mm512_abs_pd(_mm512_sub_pd(x, t));
                const __mmask8 up = _mm512_cmp_pd_mask(frac, half, _CMP_GE_OQ);
                const __m512d r = _mm512_mask_add_pd(t, up, t, _mm512_or_pd(one, _mm512_and_pd(x, sign_bit)));
                const __mmask8 negative = _mm512_movepi64_mask(_mm512_castpd_si512(r));
                const __m512d a = _mm512_abs_pd(r);
                bool exact = _mm512_cmp_pd_mask(a, _mm512_set1_pd(18446744073709551616.0), _CMP_LT_OQ) == 0xFF;
                const __m512i a_u = _mm512_cvttpd_epu64(a);
                for (std::size_t l = 0; exact && l < primes.size(); l++)
                {
                    const __m512i q = _mm512_set1_epi64(static_cast<long long>(primes[l].q));
                    exact = _mm512_cmplt_epu64_mask(a_u, q) == 0xFF;
                    const __mmask8 flip = negative & _mm512_test_epi64_mask(a_u, a_u);
                    _mm512_storeu_si512(plain + l * n + i, _mm512_mask_sub_epi64(a_u, flip, q, a_u));
                }
                if (!exact)
                {
                    residues_scalar(work, i, i + 8, n, primes, plain);
                }
            }
        }
#endif

        bool residues_vectorized() noexcept
        {
#ifdef FHTO_ENCODE_AVX512
            static const bool yes = [] {
                return detail::forced_path("FHTO_ENCODE") != "scalar" && __builtin_cpu_supports("avx512f") &&
                       __builtin_cpu_supports("avx512dq");
            }();
            return yes;
#else
            return false;
#endif
        }
    } // namespace

    cuda::EncodeTables EncoderTables::encode() const noexcept
    {
        cuda::EncodeTables t;
        t.log_n = log_n;
        t.index_map = index_map.data();
        t.inv_roots = reinterpret_cast<const cuda::Complex *>(inv_roots.data());
        t.fix = fix;
        return t;
    }

    EncoderTables encoder_tables(const Context &context)
    {
        const auto &data = *context.seal_context().first_context_data();
        const std::size_t n = data.parms().poly_modulus_degree();
        EncoderTables t;
        t.log_n = seal::util::get_power_of_two(n);
        const int logn = t.log_n;
        const std::uint64_t m = static_cast<std::uint64_t>(n) << 1;
        t.index_map.assign(n, 0);
        for (std::uint64_t i = 0, pos = 1; i < n / 2; i++)
        {
            t.index_map[i] = seal::util::reverse_bits((pos - 1) >> 1, logn);
            t.index_map[n / 2 + i] = seal::util::reverse_bits((m - pos - 1) >> 1, logn);
            pos = (pos * 3) & (m - 1);
        }
        const seal::util::ComplexRoots roots(static_cast<std::size_t>(m), seal::MemoryManager::GetPool());
        t.inv_roots.assign(2 * n, 0.0);
        t.roots.assign(2 * n, 0.0);
        for (std::size_t i = 1; i < n; i++)
        {
            const std::complex<double> inv = std::conj(roots.get_root(seal::util::reverse_bits(i - 1, logn) + 1));
            t.inv_roots[2 * i] = inv.real();
            t.inv_roots[2 * i + 1] = inv.imag();
            const std::complex<double> r = roots.get_root(seal::util::reverse_bits(i, logn));
            t.roots[2 * i] = r.real();
            t.roots[2 * i + 1] = r.imag();
        }
        t.fix = context.scale() / static_cast<double>(n);
        t.primes = uniform_primes(context);
        return t;
    }

    std::vector<cuda::UniformPrime> uniform_primes(const Context &context)
    {
        std::vector<cuda::UniformPrime> primes;
        for (const auto &q : context.seal_context().first_context_data()->parms().coeff_modulus())
        {
            const std::uint64_t max_random = ~0ULL;
            primes.push_back(cuda::UniformPrime{
                q.value(), q.const_ratio()[1], max_random - seal::util::barrett_reduce_64(max_random, q) - 1 });
        }
        return primes;
    }

    template <typename T>
    void encode_ciphertext(
        const Context &context, const EncoderTables &tables, const T *values, std::size_t count, std::size_t k,
        double weight, std::uint64_t *plain, cuda::Complex *work)
    {
        const std::size_t n = tables.n();
        const cuda::EncodeTables t = tables.encode();
        for (std::size_t i = 0; i < n / 2; i++)
        {
            cuda::scatter_slot(values, count, k, i, weight, t, work);
        }
        fft_inverse(work, t);
        const std::size_t limbs = tables.primes.size();
#ifdef FHTO_ENCODE_AVX512
        if (residues_vectorized() && n % 8 == 0)
        {
            residues_avx512(work, n, tables.primes, plain);
        }
        else
#endif
        {
            residues_scalar(work, 0, n, n, tables.primes, plain);
        }
        const auto *ntt = context.seal_context().first_context_data()->small_ntt_tables();
        for (std::size_t l = 0; l < limbs; l++)
        {
            ntt_forward(plain + l * n, ntt[l]);
        }
    }

    bool engine_encoder_enabled() noexcept
    {
        static const bool enabled = [] {
            return detail::forced_path("FHTO_ENCODE") != "seal";
        }();
        return enabled;
    }

    template void encode_ciphertext<float>(
        const Context &, const EncoderTables &, const float *, std::size_t, std::size_t, double, std::uint64_t *,
        cuda::Complex *);
    template void encode_ciphertext<double>(
        const Context &, const EncoderTables &, const double *, std::size_t, std::size_t, double, std::uint64_t *,
        cuda::Complex *);
} // namespace fhto
