#include "encoder.h"

#include <complex>
#include <cstdlib>
#include <string>
#include "fft.h"
#include "ntt.h"
#include "seal/util/croots.h"
#include "seal/util/uintarith.h"
#include "seal/util/uintarithsmallmod.h"

namespace fhto
{
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
        for (std::size_t i = 0; i < n; i++)
        {
            const double re = work[i].re;
            for (std::size_t l = 0; l < limbs; l++)
            {
                plain[l * n + i] = cuda::coefficient_residue(re, tables.primes[l]);
            }
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
            const char *forced = std::getenv("FHTO_ENCODE");
            return !(forced && std::string(forced) == "seal");
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
