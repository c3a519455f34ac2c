#include "gpu_decrypt.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <vector>
#include "bytes.h"
#include "cuda/api.h"
#include "cuda/blake2.cuh"
#include "cuda/decode.cuh"
#include "cuda/encrypt.cuh"
#include "encoder.h"
#include "errors.h"
#include "parallel.h"
#include "plans.h"
#include "seal/util/croots.h"
#include "seal/util/rns.h"
#include "seal/util/uintarith.h"
#include "seal/util/uintarithsmallmod.h"

namespace fhto
{
    cuda::DecryptPlan make_decrypt_plan(const Context &context, Mode mode, Packing packing)
    {
        const auto &data = *context.seal_context().first_context_data();
        const auto &moduli = data.parms().coeff_modulus();
        const auto *ntt = data.small_ntt_tables();
        const std::size_t n = data.parms().poly_modulus_degree(), limbs = moduli.size();
        if (limbs > static_cast<std::size_t>(cuda::kMaxLimbs) || n < 32)
        {
            throw ParameterError("the CUDA path handles N >= 32 and at most 8 data primes");
        }
        cuda::DecryptPlan plan;
        plan.log_n = ntt[0].coeff_count_power();
        plan.limbs = limbs;
        const std::uint64_t *s = context.secret_key().data().data(); // throws without the secret key
        plan.primes = uniform_primes(context);
        for (std::size_t l = 0; l < limbs; l++)
        {
            const seal::Modulus &q = moduli[l];
            plan.moduli.push_back(q.value());
            const auto *inv = ntt[l].get_from_inv_root_powers();
            for (std::size_t i = 0; i < n; i++)
            {
                plan.inv_roots.push_back(inv[i].operand);
                plan.inv_quots.push_back(inv[i].quotient);
                std::uint64_t wide[2] = { 0, s[l * n + i] }, quotient[2] = { 0, 0 };
                seal::util::divide_uint128_inplace(wide, q.value(), quotient);
                plan.secret.push_back(s[l * n + i]);
                plan.secret_quots.push_back(quotient[0]);
            }
            const seal::util::MultiplyUIntModOperand inv_n = ntt[l].inv_degree_modulo();
            plan.inv_n.push_back(inv_n.operand);
            plan.inv_n_quot.push_back(inv_n.quotient);
            seal::util::MultiplyUIntModOperand scaled;
            scaled.set(seal::util::multiply_uint_mod(inv[n - 1].operand, inv_n, q), q);
            plan.scaled_w.push_back(scaled.operand);
            plan.scaled_w_quot.push_back(scaled.quotient);
        }
        const seal::util::RNSBase *base = data.rns_tool()->base_q();
        plan.q_hat.assign(base->punctured_prod_array(), base->punctured_prod_array() + limbs * limbs);
        for (std::size_t l = 0; l < limbs; l++)
        {
            plan.q_hat_inv.push_back(base->inv_punctured_prod_mod_base_array()[l].operand);
            plan.q_hat_inv_quot.push_back(base->inv_punctured_prod_mod_base_array()[l].quotient);
        }
        plan.modulus.assign(data.total_coeff_modulus(), data.total_coeff_modulus() + limbs);
        plan.half.assign(data.upper_half_threshold(), data.upper_half_threshold() + limbs);
        plan.inv_scale = 1.0 / context.scale();

        // SEAL's decoder tables (CKKSEncoder's constructor).
        const EncoderTables encoder = encoder_tables(context);
        plan.index_map = encoder.index_map;
        plan.roots = encoder.roots;

        // The records: seeded (c0, then SEAL's seed record) or full (c0 and c1).
        plan.seeded = mode == Mode::symmetric;
        const PackLayout *layout = context.pack_layout(mode);
        std::vector<std::uint8_t> sample;
        std::size_t words_offset = 0;
        if (plan.seeded)
        {
            const SeededTemplate *t = context.seeded_template();
            if (t == nullptr)
            {
                throw ParameterError("this context's seeded ciphertexts are not in the form the CUDA path reads");
            }
            plan.prefix = t->prefix;
            words_offset = t->prefix.size();
            plan.tail = t->seed_record_header;
        }
        else
        {
            seal::Ciphertext zero(seal::MemoryManager::GetPool());
            zero.resize(context.seal_context(), context.seal_context().first_parms_id(), 2);
            zero.is_ntt_form() = true;
            zero.scale() = context.scale();
            zero.correction_factor() = 1;
            sample.resize(static_cast<std::size_t>(zero.save_size(seal::compr_mode_type::none)));
            sample.resize(static_cast<std::size_t>(
                zero.save(reinterpret_cast<seal::seal_byte *>(sample.data()), sample.size(), seal::compr_mode_type::none)));
            if (layout == nullptr)
            {
                throw ParameterError("this context's ciphertexts are not in the form the CUDA path reads");
            }
            words_offset = layout->words_offset;
            plan.prefix.assign(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(words_offset));
            plan.tail.assign(sample.begin() + static_cast<std::ptrdiff_t>(words_offset + 16 * n * limbs), sample.end());
        }
        plan.c0_offset = words_offset;
        plan.bits.assign(limbs, 0);
        plan.poly_bytes = 8 * n * limbs;
        if (packing == Packing::bits)
        {
            if (layout == nullptr || layout->words_offset != words_offset)
            {
                throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed");
            }
            plan.bits = layout->bits;
            plan.poly_bytes = 0;
            for (int b : plan.bits)
            {
                plan.poly_bytes += n * static_cast<std::size_t>(b) / 8;
            }
        }
        const std::uint64_t polys = plan.seeded ? 1 : 2;
        plan.tail_offset = plan.c0_offset + polys * plan.poly_bytes;
        plan.seed_offset = plan.tail_offset + plan.tail.size();
        plan.record_bytes = plan.seed_offset + (plan.seeded ? 64 : 0);
        if (plan.record_bytes != context.ciphertext_bytes(mode, packing))
        {
            throw ParameterError("the CUDA path's record size differs from the engine's");
        }
        return plan;
    }

    namespace
    {
        /** The host driver: csrc/cuda/decode.cuh run on the CPU, ciphertext by ciphertext. */
        cuda::SumProblem decrypt_host(
            const cuda::DecryptPlan &plan, const cuda::SumInput &input, std::uint64_t ciphertexts, double *out,
            std::uint64_t value_count, int threads)
        {
            const std::size_t n = plan.n(), limbs = plan.limbs, words = cuda::uniform_stream_words(limbs, n);
            const cuda::RecordLayout layout = plan.layout();
            const std::vector<cuda::UniformPrime> &primes = plan.primes;
            const std::vector<std::uint64_t> &q = plan.moduli;
            const cuda::DecodeTables t = plan.host_tables();
            const cuda::RecordCrc crc = cuda::record_crc(plan.record_bytes);
            std::vector<int> problem(ciphertexts, cuda::SumProblem::none);
            detail::parallel_for(static_cast<std::size_t>(ciphertexts), threads, [&](std::size_t k) {
                const std::uint8_t *record = input.records + k * plan.record_bytes;
                if (cuda::record_check_host(crc, record, input.header_checksum, k) !=
                    detail::get_le<std::uint32_t>(input.checks + 4 * k))
                {
                    problem[k] = cuda::SumProblem::checksum;
                    return;
                }
                if (!std::equal(plan.prefix.begin(), plan.prefix.end(), record) ||
                    !std::equal(plan.tail.begin(), plan.tail.end(), record + plan.tail_offset))
                {
                    problem[k] = cuda::SumProblem::layout;
                    return;
                }
                std::vector<std::uint64_t> c0(limbs * n), c1(limbs * n);
                const int polys = plan.seeded ? 1 : 2;
                for (int p = 0; p < polys; p++)
                {
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        for (std::size_t g = 0; g < n / 8; g++)
                        {
                            std::uint64_t *dst = (p == 0 ? c0.data() : c1.data()) + l * n + 8 * g;
                            cuda::read_group(layout, n, static_cast<int>(l), g, record, dst, p);
                            for (int i = 0; i < 8; i++)
                            {
                                if (dst[i] >= q[l])
                                {
                                    problem[k] = cuda::SumProblem::coefficient;
                                    return;
                                }
                            }
                        }
                    }
                }
                if (plan.seeded)
                {
                    std::uint64_t seed[8];
                    cuda::read_seed(layout, record, seed);
                    std::vector<std::uint64_t> stream(words);
                    cuda::blake2xb_words_host(seed, stream.data(), words);
                    if (!cuda::expand_uniform_host(stream.data(), words, n, limbs, primes.data(), c1.data()))
                    {
                        throw std::logic_error("uniform sampling ran out of spare stream words");
                    }
                }
                for (std::size_t l = 0; l < limbs; l++)
                {
                    for (std::size_t i = 0; i < n; i++)
                    {
                        const std::size_t at = l * n + i;
                        c0[at] = cuda::decrypt_coefficient(c0[at], c1[at], plan.secret[at], plan.secret_quots[at], q[l]);
                    }
                    cuda::ntt_inverse_host(
                        c0.data() + l * n, plan.log_n, q[l], plan.inv_roots.data() + l * n, plan.inv_quots.data() + l * n,
                        plan.inv_n[l], plan.inv_n_quot[l], plan.scaled_w[l], plan.scaled_w_quot[l]);
                }
                std::vector<cuda::Complex> work(n);
                for (std::size_t i = 0; i < n; i++)
                {
                    work[i] = cuda::Complex{ cuda::decode_coefficient(c0.data() + i, n, t), 0.0 };
                }
                cuda::fft_forward_host(work.data(), plan.log_n, t.roots);
                const std::uint64_t begin = k * n;
                for (std::uint64_t j = 0; j < n / 2; j++)
                {
                    const cuda::Complex v = work[plan.index_map[j]];
                    if (begin + 2 * j < value_count)
                    {
                        out[begin + 2 * j] = v.re;
                    }
                    if (begin + 2 * j + 1 < value_count)
                    {
                        out[begin + 2 * j + 1] = v.im;
                    }
                }
            });
            for (std::size_t k = 0; k < ciphertexts; k++)
            {
                if (problem[k] != cuda::SumProblem::none)
                {
                    cuda::SumProblem p;
                    p.kind = static_cast<cuda::SumProblem::Kind>(problem[k]);
                    p.ciphertext = k;
                    return p;
                }
            }
            return cuda::SumProblem{};
        }
    } // namespace

    bool decrypt_into_cuda(
        const Context &context, const BatchView &batch, double *out, std::size_t out_count, bool host_driver, int device,
        int threads)
    {
        if (out_count != batch.header.value_count)
        {
            throw ParameterError(
                "output holds " + std::to_string(out_count) + " values; the batch has " + std::to_string(batch.header.value_count));
        }
        threads = threads == 0 ? detail::default_threads() : threads;
        const cuda::DecryptPlan *found = nullptr;
        try
        {
            found = &context.plans().decrypt(context, batch.header.mode, batch.header.packing);
        }
        catch (const ParameterError &)
        {
            return false;
        }
        const cuda::DecryptPlan &plan = *found;
        const cuda::SumInput input{ batch.ciphertexts, batch.checksums, batch.header_checksum };
        const std::uint64_t cts = batch.header.ciphertext_count;
        const cuda::SumProblem problem =
            host_driver ? decrypt_host(plan, input, cts, out, out_count, threads)
                        : cuda::decrypt_device(plan, input, cts, out, out_count, device);
        switch (problem.kind)
        {
        case cuda::SumProblem::none: break;
        case cuda::SumProblem::layout: return false;
        case cuda::SumProblem::checksum:
            throw FormatError(
                "ciphertext " + std::to_string(problem.ciphertext) +
                " is corrupted: checksum mismatch (its bytes changed, or it was moved from another position or another batch)");
        case cuda::SumProblem::coefficient:
            throw FormatError(
                "ciphertext " + std::to_string(problem.ciphertext) + " is not a valid SEAL ciphertext: a coefficient is not below its prime");
        }
        // The plausibility check of decrypt_into.
        const std::uint32_t parties = std::max<std::uint32_t>(batch.header.contributions, 1);
        const std::uint32_t budget = std::max<std::uint32_t>(batch.header.party_budget, 1);
        const double limit =
            parties * context.max_abs_value(budget, Mode::symmetric) + context.error_bound(parties, Mode::public_key);
        for (std::size_t j = 0; j < out_count; j++)
        {
            if (!(std::fabs(out[j]) <= limit))
            {
                throw ValueRangeError(
                    "the decrypted batch is implausible: value " + std::to_string(j) + " has magnitude " +
                    std::to_string(std::fabs(out[j])) + ", beyond the " + std::to_string(limit) + " a sum of " +
                    std::to_string(parties) +
                    " range-checked contribution(s) can reach (a ciphertext under another key, or altered)");
            }
        }
        return true;
    }
} // namespace fhto
