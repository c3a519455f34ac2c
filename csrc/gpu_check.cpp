#include "gpu_check.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>
#include "cuda/api.h"
#include "cuda/arith.cuh"
#include "cuda/blake2.cuh"
#include "cuda/uniform.cuh"
#include "errors.h"
#include "prng.h"
#include "symmetric.h"
#include "seal/util/ntt.h"
#include "seal/util/uintarithsmallmod.h"

namespace fhto
{
    namespace
    {
        struct PrimeTables
        {
            std::uint64_t q = 0;
            int log_n = 0;
            std::vector<std::uint64_t> roots, quots;
            const seal::util::NTTTables *seal = nullptr;
        };

        std::vector<PrimeTables> tables_of(const Context &context)
        {
            const auto &data = *context.seal_context().first_context_data();
            const auto *ntt = data.small_ntt_tables();
            std::vector<PrimeTables> out;
            for (std::size_t j = 0; j < data.parms().coeff_modulus().size(); j++)
            {
                PrimeTables t;
                t.q = data.parms().coeff_modulus()[j].value();
                t.log_n = ntt[j].coeff_count_power();
                const std::size_t n = std::size_t(1) << t.log_n;
                const auto *powers = ntt[j].get_from_root_powers();
                for (std::size_t i = 0; i < n; i++)
                {
                    t.roots.push_back(powers[i].operand);
                    t.quots.push_back(powers[i].quotient);
                }
                t.seal = &ntt[j];
                out.push_back(std::move(t));
            }
            return out;
        }

        /** Random residues modulo q from the operating system's randomness, as a polynomial. */
        std::vector<std::uint64_t> random_poly(Blake2xbStream &stream, std::size_t n, std::uint64_t q)
        {
            std::vector<std::uint64_t> p(n);
            for (auto &v : p)
            {
                v = stream.next_word() % q;
            }
            return p;
        }

        std::vector<std::uint64_t> seal_ntt(const PrimeTables &t, std::vector<std::uint64_t> p)
        {
            seal::util::ntt_negacyclic_harvey(p.data(), *t.seal);
            return p;
        }
    } // namespace

    std::size_t check_cuda_ntt_host(const Context &context, std::size_t trials)
    {
        Blake2xbStream stream(random_seed());
        std::size_t comparisons = 0;
        for (const auto &t : tables_of(context))
        {
            const std::size_t n = std::size_t(1) << t.log_n;
            for (std::size_t k = 0; k < trials; k++)
            {
                auto p = random_poly(stream, n, t.q);
                if (k == 0)
                {
                    std::fill(p.begin(), p.end(), t.q - 1); // the largest residues: the lazy bounds' edge
                }
                auto ours = p;
                cuda::ntt_forward_host(ours.data(), t.log_n, t.q, t.roots.data(), t.quots.data());
                if (ours != seal_ntt(t, p))
                {
                    throw std::logic_error("the CUDA path's NTT differs from SEAL's modulo " + std::to_string(t.q));
                }
                comparisons++;
            }
        }
        return comparisons;
    }

    std::size_t check_cuda_blake2(std::size_t trials, bool device)
    {
        if (device && (!cuda::compiled() || cuda::device_count() == 0))
        {
            throw DeviceError(cuda::compiled() ? "no usable CUDA device" : "this build has no CUDA path");
        }
        const std::size_t words = 3 * 512 + 37; // a partial last refill too
        std::vector<std::uint64_t> seeds(8 * trials), ours(words * trials), theirs(words);
        Blake2xbStream source(random_seed());
        for (auto &w : seeds)
        {
            w = source.next_word();
        }
        if (device)
        {
            cuda::blake2xb_words_device(seeds.data(), trials, words, ours.data());
        }
        else
        {
            for (std::size_t k = 0; k < trials; k++)
            {
                cuda::blake2xb_words_host(seeds.data() + 8 * k, ours.data() + k * words, words);
            }
        }
        for (std::size_t k = 0; k < trials; k++)
        {
            Seed seed;
            std::copy(seeds.begin() + 8 * k, seeds.begin() + 8 * k + 8, seed.begin());
            Blake2xbStream stream(seed);
            for (auto &w : theirs)
            {
                w = stream.next_word();
            }
            if (!std::equal(theirs.begin(), theirs.end(), ours.begin() + k * words))
            {
                throw std::logic_error(std::string("the CUDA path's Blake2xb (") + (device ? "device" : "host") +
                                       ") differs from the engine's stream");
            }
        }
        return trials;
    }

    std::size_t check_cuda_uniform(const Context &context, std::size_t trials, bool device)
    {
        if (device && (!cuda::compiled() || cuda::device_count() == 0))
        {
            throw DeviceError(cuda::compiled() ? "no usable CUDA device" : "this build has no CUDA path");
        }
        const auto &moduli = context.seal_context().first_context_data()->parms().coeff_modulus();
        const std::size_t n = context.values_per_ciphertext(), limbs = moduli.size(), needed = n * limbs;
        std::vector<cuda::UniformPrime> primes;
        std::vector<std::uint64_t> flat;
        for (const auto &q : moduli)
        {
            const std::uint64_t max_multiple = ~std::uint64_t{ 0 } - seal::util::barrett_reduce_64(~std::uint64_t{ 0 }, q) - 1;
            primes.push_back(cuda::UniformPrime{ q.value(), q.const_ratio()[1], max_multiple });
            flat.insert(flat.end(), { q.value(), q.const_ratio()[1], max_multiple });
        }
        Blake2xbStream source(random_seed());
        std::vector<std::uint64_t> seeds(8 * trials), ours(needed * trials), theirs(needed);
        for (auto &w : seeds)
        {
            w = source.next_word();
        }
        if (device)
        {
            cuda::expand_uniform_device(seeds.data(), trials, n, limbs, flat.data(), ours.data());
        }
        else
        {
            for (std::size_t k = 0; k < trials; k++)
            {
                for (std::size_t words = needed + 64;; words *= 2)
                {
                    std::vector<std::uint64_t> stream(words);
                    cuda::blake2xb_words_host(seeds.data() + 8 * k, stream.data(), words);
                    if (cuda::expand_uniform_host(stream.data(), words, n, limbs, primes.data(), ours.data() + k * needed))
                    {
                        break;
                    }
                }
            }
        }
        for (std::size_t k = 0; k < trials; k++)
        {
            Seed seed;
            std::copy(seeds.begin() + 8 * k, seeds.begin() + 8 * k + 8, seed.begin());
            expand_uniform(context, seed, theirs.data());
            if (!std::equal(theirs.begin(), theirs.end(), ours.begin() + k * needed))
            {
                throw std::logic_error(std::string("the CUDA path's uniform sampling (") + (device ? "device" : "host") +
                                       ") differs from the engine's");
            }
        }
        return trials;
    }

    std::size_t check_cuda_ntt_device(const Context &context, std::size_t trials)
    {
        if (!cuda::compiled() || cuda::device_count() == 0)
        {
            throw DeviceError(cuda::compiled() ? "no usable CUDA device" : "this build has no CUDA path");
        }
        Blake2xbStream stream(random_seed());
        std::size_t comparisons = 0;
        for (const auto &t : tables_of(context))
        {
            const std::size_t n = std::size_t(1) << t.log_n;
            std::vector<std::uint64_t> batch, expected;
            for (std::size_t k = 0; k < trials; k++)
            {
                auto p = random_poly(stream, n, t.q);
                auto e = seal_ntt(t, p);
                batch.insert(batch.end(), p.begin(), p.end());
                expected.insert(expected.end(), e.begin(), e.end());
            }
            cuda::ntt_forward_device(batch.data(), trials, t.log_n, t.q, t.roots.data(), t.quots.data());
            if (batch != expected)
            {
                throw std::logic_error("the GPU's NTT differs from SEAL's modulo " + std::to_string(t.q));
            }
            comparisons += trials;
        }
        return comparisons;
    }
} // namespace fhto
