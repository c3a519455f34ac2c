#include "gpu_encrypt.h"

#include <algorithm>
#include <complex>
#include <cstring>
#include <vector>
#include "bytes.h"
#include "cuda/api.h"
#include "cuda/blake2.cuh"
#include "cuda/encrypt.cuh"
#include "encoder.h"
#include "errors.h"
#include "parallel.h"
#include "plans.h"
#include "prng.h"
#include "seal/util/croots.h"
#include "seal/util/uintarith.h"
#include "seal/util/uintarithsmallmod.h"
#include "symmetric.h"
#include "wire.h"

namespace fhto
{
    cuda::EncryptPlan make_encrypt_plan(const Context &context, Packing packing)
    {
        if (!context.has_secret_key())
        {
            throw SecretKeyRequiredError("the CUDA path encrypts with the secret key; a public context cannot use it");
        }
        const auto &data = *context.seal_context().first_context_data();
        const auto &moduli = data.parms().coeff_modulus();
        const auto *ntt = data.small_ntt_tables();
        const std::size_t n = data.parms().poly_modulus_degree(), limbs = moduli.size();
        if (limbs > static_cast<std::size_t>(cuda::kMaxLimbs))
        {
            throw ParameterError("the CUDA path handles at most 8 data primes");
        }
        cuda::EncryptPlan plan;
        plan.log_n = ntt[0].coeff_count_power();
        plan.limbs = limbs;
        const std::uint64_t *s = context.secret_key().data().data();
        for (std::size_t l = 0; l < limbs; l++)
        {
            const seal::Modulus &q = moduli[l];
            const auto *powers = ntt[l].get_from_root_powers();
            for (std::size_t i = 0; i < n; i++)
            {
                plan.ntt_roots.push_back(powers[i].operand);
                plan.ntt_quots.push_back(powers[i].quotient);
                const std::uint64_t si = s[l * n + i];
                std::uint64_t wide[2] = { 0, si }, quotient[2] = { 0, 0 };
                seal::util::divide_uint128_inplace(wide, q.value(), quotient); // floor(si 2^64 / q)
                plan.secret.push_back(si);
                plan.secret_quots.push_back(quotient[0]);
            }
        }

        // SEAL's encoder tables (CKKSEncoder's constructor), computed the same way.
        const EncoderTables encoder = encoder_tables(context);
        plan.primes = encoder.primes;
        plan.index_map = encoder.index_map;
        plan.inv_roots = encoder.inv_roots;
        plan.fix = encoder.fix;

        // The record template: one real ciphertext of this context, as the engine writes it.
        const SeededTemplate *t = context.seeded_template();
        if (t == nullptr)
        {
            throw ParameterError("this SEAL build's seeded ciphertext layout is not the one the CUDA path writes");
        }
        seal::Plaintext zero;
        context.encoder().encode(0.0, context.scale(), zero);
        seal::Ciphertext ct;
        encrypt_symmetric_seeded(context, zero, Seed{}, ct, NoiseSource::seal);
        std::vector<std::uint8_t> seal_bytes(t->total_bytes);
        ct.save(reinterpret_cast<seal::seal_byte *>(seal_bytes.data()), seal_bytes.size(), seal::compr_mode_type::none);
        plan.c0_offset = t->prefix.size();
        std::uint64_t seed_offset = t->seed_record_offset + t->seed_record_header.size();
        const std::uint64_t word_bytes = 8 * n * limbs;
        if (packing == Packing::bits)
        {
            const PackLayout *layout = context.pack_layout(Mode::symmetric);
            if (layout == nullptr || layout->words_offset != plan.c0_offset || layout->polys != 1)
            {
                throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
            }
            plan.record_template.resize(layout->packed_bytes);
            pack_ciphertext(*layout, seal_bytes.data(), plan.record_template.data());
            plan.bits = layout->bits;
            plan.c0_bytes = 0;
            for (int b : plan.bits)
            {
                plan.c0_bytes += n * static_cast<std::size_t>(b) / 8;
            }
            seed_offset -= word_bytes - plan.c0_bytes;
        }
        else
        {
            plan.record_template = std::move(seal_bytes);
            plan.bits.assign(limbs, 0);
            plan.c0_bytes = word_bytes;
        }
        plan.seed_offset = seed_offset;
        if (plan.record_template.size() != context.ciphertext_bytes(Mode::symmetric, packing))
        {
            throw ParameterError("the CUDA path's record size differs from the engine's");
        }
        return plan;
    }

    namespace
    {
        /**
        The host driver: csrc/cuda/encrypt.cuh run on the CPU, ciphertext by ciphertext, with the
        same functions the kernels call. Slow; it exists so that CI proves the GPU's arithmetic.
        */
        template <typename T>
        void encrypt_records_host(
            const cuda::EncryptPlan &plan, const T *values, std::uint64_t count, double weight, const std::uint64_t *seeds,
            std::uint64_t ciphertexts, std::uint32_t header_checksum, std::uint8_t *records, std::uint32_t *checks,
            int threads)
        {
            const std::size_t n = plan.n(), limbs = plan.limbs, boot_words = plan.bootstrap_words();
            const std::size_t uniform_words = cuda::uniform_stream_words(limbs, n);
            const cuda::RecordLayout layout = plan.layout();
            cuda::EncodeTables tables;
            tables.log_n = plan.log_n;
            tables.index_map = plan.index_map.data();
            tables.inv_roots = reinterpret_cast<const cuda::Complex *>(plan.inv_roots.data());
            tables.fix = plan.fix;
            const std::vector<cuda::UniformPrime> &primes = plan.primes;
            const std::size_t record_bytes = layout.record_bytes;
            const cuda::RecordCrc crc = cuda::record_crc(record_bytes);

            detail::parallel_for(static_cast<std::size_t>(ciphertexts), threads, [&](std::size_t k) {
                std::vector<std::uint64_t> boot(boot_words), stream(uniform_words), a(limbs * n), m(limbs * n), e(limbs * n);
                std::vector<cuda::Complex> work(n);
                cuda::blake2xb_words_host(seeds + 8 * k, boot.data(), boot_words);
                const std::uint64_t *public_seed = boot.data();
                cuda::blake2xb_words_host(public_seed, stream.data(), uniform_words);
                if (!cuda::expand_uniform_host(stream.data(), uniform_words, n, limbs, primes.data(), a.data()))
                {
                    throw std::logic_error("uniform sampling ran out of spare stream words");
                }
                for (std::size_t i = 0; i < n / 2; i++)
                {
                    cuda::scatter_slot(values, count, k, i, weight, tables, work.data());
                }
                cuda::fft_inverse_host(work.data(), tables);
                const auto *noise_bytes = reinterpret_cast<const std::uint8_t *>(boot.data() + 8);
                for (std::size_t i = 0; i < n; i++)
                {
                    const int noise = cuda::cbd_noise(noise_bytes + 6 * i);
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        m[l * n + i] = cuda::coefficient_residue(work[i].re, primes[l]);
                        e[l * n + i] = cuda::noise_residue(noise, primes[l].q);
                    }
                }
                std::uint8_t *record = records + k * record_bytes;
                std::memcpy(record, plan.record_template.data(), record_bytes);
                for (std::size_t l = 0; l < limbs; l++)
                {
                    const std::uint64_t q = primes[l].q;
                    const std::uint64_t *roots = plan.ntt_roots.data() + l * n, *quots = plan.ntt_quots.data() + l * n;
                    cuda::ntt_forward_host(m.data() + l * n, plan.log_n, q, roots, quots);
                    cuda::ntt_forward_host(e.data() + l * n, plan.log_n, q, roots, quots);
                    for (std::size_t i = 0; i < n; i++)
                    {
                        const std::size_t at = l * n + i;
                        m[at] = cuda::c0_coefficient(m[at], a[at], plan.secret[at], plan.secret_quots[at], e[at], q);
                    }
                    for (std::size_t g = 0; g < n / 8; g++)
                    {
                        cuda::write_group(layout, n, static_cast<int>(l), g, m.data() + l * n, record);
                    }
                }
                cuda::write_seed(layout, public_seed, record);
                checks[k] = cuda::record_check_host(crc, record, header_checksum, k);
            });
        }
    } // namespace

    template <typename T>
    void encrypt_into_cuda(
        const Context &context, const T *values, std::size_t count, const EncryptOptions &options, const CudaTarget &target,
        std::uint8_t *out, std::size_t out_size)
    {
        if (count == 0)
        {
            throw ParameterError("cannot encrypt an empty update");
        }
        check_options(context, options);
        if (options.mode != Mode::symmetric)
        {
            throw ParameterError("the CUDA path encrypts in secret-key (seeded) mode only; use the CPU for public-key mode");
        }
        const std::size_t expected = encrypted_size(context, count, options.mode, options.packing);
        if (out_size != expected)
        {
            throw ParameterError(
                "output buffer is " + std::to_string(out_size) + " bytes; the batch needs " + std::to_string(expected));
        }
        if (target.values_on_device)
        {
            const cuda::ScanResult r = cuda::scan_device(values, static_cast<int>(sizeof(T)), count, target.device);
            check_scan(
                context, options, r.first_bad == ~0ULL ? SIZE_MAX : static_cast<std::size_t>(r.first_bad), r.bad_value,
                r.max_abs, static_cast<std::size_t>(r.max_index));
        }
        else
        {
            check_values(context, values, count, options);
        }
        const cuda::EncryptPlan &plan = context.plans().encrypt(context, options.packing);

        const BatchHeader h = encryption_header(context, count, options);
        std::uint8_t image[kBatchHeaderBytes];
        const std::uint32_t header_checksum = write_header(image, h);

        const std::size_t cts = static_cast<std::size_t>(h.ciphertext_count);
        std::vector<std::uint64_t> seeds(8 * cts);
        for (std::size_t k = 0; k < cts; k++)
        {
            const Seed s = options.seed ? derive_seed(SeedPurpose::encrypt, *options.seed, k) : random_seed();
            std::copy(s.begin(), s.end(), seeds.begin() + static_cast<std::ptrdiff_t>(8 * k));
        }
        std::vector<std::uint32_t> checks(cts);
        std::uint8_t *records = out + kBatchHeaderBytes + 4 * cts;
        if (target.host_driver)
        {
            encrypt_records_host(
                plan, values, count, options.weight, seeds.data(), cts, header_checksum, records, checks.data(),
                options.threads == 0 ? detail::default_threads() : options.threads);
        }
        else
        {
            cuda::encrypt_device(
                plan, values, target.values_on_device, static_cast<int>(sizeof(T)), count, options.weight, seeds.data(),
                cts, header_checksum, records, checks.data(), target.device);
        }
        for (std::size_t k = 0; k < cts; k++)
        {
            detail::put_le<std::uint32_t>(out + kBatchHeaderBytes + 4 * k, checks[k]);
        }
        std::memcpy(out, image, kBatchHeaderBytes);
    }

    template void encrypt_into_cuda<float>(
        const Context &, const float *, std::size_t, const EncryptOptions &, const CudaTarget &, std::uint8_t *, std::size_t);
    template void encrypt_into_cuda<double>(
        const Context &, const double *, std::size_t, const EncryptOptions &, const CudaTarget &, std::uint8_t *,
        std::size_t);
} // namespace fhto
