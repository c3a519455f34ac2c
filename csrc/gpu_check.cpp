#include "gpu_check.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>
#include "cuda/api.h"
#include "cuda/arith.cuh"
#include "cuda/blake2.cuh"
#include "cuda/uniform.cuh"
#include "cuda/sample.cuh"
#include "pack.h"
#include "seal/util/rlwe.h"
#include "errors.h"
#include "ntt.h"
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

    std::size_t check_engine_ntt(const Context &context, std::size_t trials)
    {
        Blake2xbStream stream(random_seed());
        std::size_t comparisons = 0;
        for (const auto &t : tables_of(context))
        {
            const std::size_t n = std::size_t(1) << t.log_n;
            for (std::size_t k = 0; k < trials; k++)
            {
                std::vector<std::uint64_t> p = random_poly(stream, n, t.q);
                if (k == 0)
                {
                    std::fill(p.begin(), p.end(), t.q - 1); // the largest residues
                }
                std::vector<std::uint64_t> mine = p;
                ntt_forward(mine.data(), *t.seal);
                if (mine != seal_ntt(t, p))
                {
                    throw std::logic_error(std::string("the engine's NTT (") + ntt_backend() + ") differs from SEAL's");
                }
                std::vector<std::uint64_t> theirs = p;
                mine = p;
                seal::util::inverse_ntt_negacyclic_harvey(theirs.data(), *t.seal);
                ntt_inverse(mine.data(), *t.seal);
                if (mine != theirs)
                {
                    throw std::logic_error(std::string("the engine's inverse NTT (") + ntt_backend() + ") differs from SEAL's");
                }
                comparisons++;
            }
        }
        return comparisons;
    }

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

    std::size_t check_cuda_sampling_host(const Context &context, std::size_t trials)
    {
        const auto &data = *context.seal_context().first_context_data();
        const auto &parms = data.parms();
        const auto &moduli = parms.coeff_modulus();
        const std::size_t n = context.values_per_ciphertext(), limbs = moduli.size();
        std::size_t comparisons = 0;
        Blake2xbStream source(random_seed());
        for (std::size_t k = 0; k < trials; k++)
        {
            // Noise: the same stream through SEAL's sampler and through the shared code.
            Seed seed;
            for (auto &w : seed)
            {
                w = source.next_word();
            }
            std::vector<std::uint64_t> theirs(n * limbs), ours(n * limbs);
            seal::util::sample_poly_cbd(std::make_shared<seal::Blake2xbPRNG>(seal::prng_seed_type(seed)), parms, theirs.data());
            Blake2xbStream stream(seed);
            std::vector<std::uint8_t> bytes(6 * n);
            stream.generate(bytes.data(), bytes.size());
            for (std::size_t i = 0; i < n; i++)
            {
                const int noise = cuda::cbd_noise(bytes.data() + 6 * i);
                for (std::size_t l = 0; l < limbs; l++)
                {
                    ours[l * n + i] = cuda::noise_residue(noise, moduli[l].value());
                }
            }
            if (ours != theirs)
            {
                throw std::logic_error("the CUDA path's centred binomial noise differs from SEAL's");
            }
            comparisons++;
            // Packing: a public-key ciphertext's words, packed by the engine and by the shared code.
            const PackLayout *layout = context.pack_layout(Mode::public_key);
            if (layout == nullptr)
            {
                continue;
            }
            seal::Ciphertext ct;
            context.encryptor().encrypt_zero(ct);
            std::vector<std::uint8_t> seal_bytes(layout->seal_bytes), packed(layout->packed_bytes);
            ct.save(reinterpret_cast<seal::seal_byte *>(seal_bytes.data()), seal_bytes.size(), seal::compr_mode_type::none);
            pack_ciphertext(*layout, seal_bytes.data(), packed.data());
            std::size_t at = layout->words_offset;
            for (std::size_t p = 0; p < layout->polys; p++)
            {
                for (std::size_t l = 0; l < layout->bits.size(); l++)
                {
                    const int bits = layout->bits[l];
                    const std::uint64_t *words = ct.data(p) + l * n;
                    std::vector<std::uint8_t> mine(n / 8 * static_cast<std::size_t>(bits));
                    for (std::size_t g = 0; g < n / 8; g++)
                    {
                        cuda::pack_group(words + 8 * g, bits, mine.data() + g * static_cast<std::size_t>(bits));
                    }
                    if (!std::equal(mine.begin(), mine.end(), packed.begin() + static_cast<std::ptrdiff_t>(at)))
                    {
                        throw std::logic_error("the CUDA path's bit packing differs from the engine's");
                    }
                    at += mine.size();
                }
            }
            comparisons++;
        }
        return comparisons;
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
