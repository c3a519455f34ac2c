#include "gpu_sum.h"

#include <algorithm>
#include <cstring>
#include "aggregate.h"
#include "bytes.h"
#include "cuda/api.h"
#include "cuda/blake2.cuh"
#include "cuda/encrypt.cuh"
#include "encoder.h"
#include "errors.h"
#include "parallel.h"
#include "plans.h"

namespace fhto
{
    cuda::SumPlan make_sum_plan(const Context &context, Packing packing)
    {
        const auto &data = *context.seal_context().first_context_data();
        const auto &moduli = data.parms().coeff_modulus();
        const std::size_t n = data.parms().poly_modulus_degree(), limbs = moduli.size();
        const SeededTemplate *t = context.seeded_template();
        if (t == nullptr || limbs > static_cast<std::size_t>(cuda::kMaxLimbs) || n < 32)
        {
            throw ParameterError("this context's seeded ciphertexts are not in the form the CUDA path reads");
        }
        cuda::SumPlan plan;
        plan.log_n = data.small_ntt_tables()[0].coeff_count_power();
        plan.limbs = limbs;
        plan.primes = uniform_primes(context);
        plan.prefix = t->prefix;
        plan.seed_header = t->seed_record_header;
        plan.c0_offset = t->prefix.size();
        plan.seed_offset = t->seed_record_offset + t->seed_record_header.size();
        const std::uint64_t word_bytes = 8 * n * limbs;
        plan.c0_bytes = word_bytes;
        plan.bits.assign(limbs, 0);
        if (packing == Packing::bits)
        {
            const PackLayout *layout = context.pack_layout(Mode::symmetric);
            if (layout == nullptr || layout->words_offset != plan.c0_offset || layout->polys != 1)
            {
                throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed");
            }
            plan.bits = layout->bits;
            plan.c0_bytes = 0;
            for (int b : plan.bits)
            {
                plan.c0_bytes += n * static_cast<std::size_t>(b) / 8;
            }
            plan.seed_offset -= word_bytes - plan.c0_bytes;
        }
        plan.record_bytes = plan.seed_offset + 64;
        if (plan.record_bytes != context.ciphertext_bytes(Mode::symmetric, packing))
        {
            throw ParameterError("the CUDA path's record size differs from the engine's");
        }
        return plan;
    }

    std::size_t SumResult::serialized_size(const Context &context, Packing packing) const
    {
        return sum_batch_bytes(context, sum.size(), packing);
    }

    void SumResult::serialize_into(const Context &context, std::uint8_t *out, std::size_t out_size, Packing packing, int threads) const
    {
        if (out_size != serialized_size(context, packing))
        {
            throw ParameterError("output buffer has the wrong size for the sum");
        }
        write_sum_batch(context, sum, value_count, contributions, party_budget, packing, threads, out);
    }

    namespace
    {
        /** The host driver of the sum: csrc/cuda/sum steps run on the CPU, batch after batch. */
        cuda::SumProblem sum_host(
            const cuda::SumPlan &plan, const std::vector<cuda::SumInput> &inputs, std::uint64_t ciphertexts,
            std::uint64_t *sum_c0, std::uint64_t *sum_c1, int threads)
        {
            const std::size_t n = plan.n(), limbs = plan.limbs, words = cuda::uniform_stream_words(limbs, n);
            const cuda::RecordLayout layout = plan.layout();
            const std::vector<cuda::UniformPrime> &primes = plan.primes;
            const cuda::RecordCrc crc = cuda::record_crc(plan.record_bytes);
            for (std::size_t b = 0; b < inputs.size(); b++)
            {
                // Check every record of the batch first, then add: a refused batch adds nothing.
                std::vector<int> problem(ciphertexts, cuda::SumProblem::none);
                detail::parallel_for(static_cast<std::size_t>(ciphertexts), threads, [&](std::size_t k) {
                    const std::uint8_t *record = inputs[b].records + k * plan.record_bytes;
                    if (cuda::record_check_host(crc, record, inputs[b].header_checksum, k) !=
                        detail::get_le<std::uint32_t>(inputs[b].checks + 4 * k))
                    {
                        problem[k] = cuda::SumProblem::checksum;
                        return;
                    }
                    if (!std::equal(plan.prefix.begin(), plan.prefix.end(), record) ||
                        !std::equal(plan.seed_header.begin(), plan.seed_header.end(), record + plan.seed_offset - plan.seed_header.size()))
                    {
                        problem[k] = cuda::SumProblem::layout;
                        return;
                    }
                    std::uint64_t group[8];
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        for (std::size_t g = 0; g < n / 8; g++)
                        {
                            cuda::read_group(layout, n, static_cast<int>(l), g, record, group);
                            for (int i = 0; i < 8; i++)
                            {
                                if (group[i] >= primes[l].q)
                                {
                                    problem[k] = cuda::SumProblem::coefficient;
                                    return;
                                }
                            }
                        }
                    }
                });
                for (std::size_t k = 0; k < ciphertexts; k++)
                {
                    if (problem[k] != cuda::SumProblem::none)
                    {
                        cuda::SumProblem p;
                        p.kind = static_cast<cuda::SumProblem::Kind>(problem[k]);
                        p.batch = b;
                        p.ciphertext = k;
                        return p;
                    }
                }
                detail::parallel_for(static_cast<std::size_t>(ciphertexts), threads, [&](std::size_t k) {
                    const std::uint8_t *record = inputs[b].records + k * plan.record_bytes;
                    std::uint64_t seed[8], group[8];
                    cuda::read_seed(layout, record, seed);
                    std::vector<std::uint64_t> stream(words), a(limbs * n);
                    cuda::blake2xb_words_host(seed, stream.data(), words);
                    if (!cuda::expand_uniform_host(stream.data(), words, n, limbs, primes.data(), a.data()))
                    {
                        throw std::logic_error("uniform sampling ran out of spare stream words");
                    }
                    std::uint64_t *c0 = sum_c0 + k * limbs * n, *c1 = sum_c1 + k * limbs * n;
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        const std::uint64_t q = primes[l].q;
                        for (std::size_t g = 0; g < n / 8; g++)
                        {
                            cuda::read_group(layout, n, static_cast<int>(l), g, record, group);
                            for (std::size_t i = 0; i < 8; i++)
                            {
                                const std::size_t at = l * n + 8 * g + i;
                                c0[at] = cuda::add_mod(c0[at], group[i], q);
                                c1[at] = cuda::add_mod(c1[at], a[at], q);
                            }
                        }
                    }
                });
            }
            return cuda::SumProblem{};
        }
    } // namespace

    std::optional<SumResult> sum_cuda(
        const Context &context, const std::vector<std::pair<const std::uint8_t *, std::size_t>> &batches, bool host_driver,
        int device, int threads)
    {
        if (batches.empty())
        {
            throw ParameterError("there is nothing to sum: pass at least one batch");
        }
        threads = threads == 0 ? detail::default_threads() : threads;
        // The header checks of Accumulator::add, batch after batch.
        std::vector<BatchView> views;
        SumResult result;
        for (std::size_t b = 0; b < batches.size(); b++)
        {
            const BatchView view = parse_batch(context, batches[b].first, batches[b].second);
            const BatchHeader &h = view.header;
            if (b > 0 && h.value_count != result.value_count)
            {
                throw LengthMismatchError(
                    "batch " + std::to_string(b) + " holds " + std::to_string(h.value_count) + " values but the running sum holds " +
                    std::to_string(result.value_count));
            }
            const std::uint64_t total = static_cast<std::uint64_t>(result.contributions) + h.contributions;
            const std::uint32_t budget = b == 0 ? h.party_budget : std::min(result.party_budget, h.party_budget);
            if (total > budget)
            {
                throw ValueRangeError(
                    "adding batch " + std::to_string(b) + " makes " + std::to_string(total) +
                    " contributions, but the values were range-checked for a sum of at most " + std::to_string(budget) +
                    "; encrypt with a larger parties= to sum more");
            }
            if (h.mode != Mode::symmetric)
            {
                return std::nullopt;
            }
            result.value_count = h.value_count;
            result.contributions = static_cast<std::uint32_t>(total);
            result.party_budget = budget;
            views.push_back(view);
        }
        // Every batch in one packing (mixed packings go to the CPU path).
        const Packing packing = views[0].header.packing;
        for (const auto &v : views)
        {
            if (v.header.packing != packing)
            {
                return std::nullopt;
            }
        }
        const cuda::SumPlan *found = nullptr;
        try
        {
            found = &context.plans().sum(context, packing);
        }
        catch (const ParameterError &)
        {
            return std::nullopt;
        }
        const cuda::SumPlan &plan = *found;
        std::vector<cuda::SumInput> inputs;
        for (const auto &v : views)
        {
            inputs.push_back(cuda::SumInput{ v.ciphertexts, v.checksums, v.header_checksum });
        }
        const std::uint64_t cts = views[0].header.ciphertext_count;
        const std::size_t words = static_cast<std::size_t>(cts) * plan.limbs * plan.n();
        std::vector<std::uint64_t> c0(words, 0), c1(words, 0);
        const cuda::SumProblem problem = host_driver ? sum_host(plan, inputs, cts, c0.data(), c1.data(), threads)
                                                     : cuda::sum_device(plan, inputs.data(), inputs.size(), cts, c0.data(), c1.data(), device);
        switch (problem.kind)
        {
        case cuda::SumProblem::none: break;
        case cuda::SumProblem::layout: return std::nullopt;
        case cuda::SumProblem::checksum:
            throw FormatError(
                "batch " + std::to_string(problem.batch) + ": ciphertext " + std::to_string(problem.ciphertext) +
                " is corrupted: checksum mismatch (its bytes changed, or it was moved from another position or another batch)");
        case cuda::SumProblem::coefficient:
            throw FormatError(
                "batch " + std::to_string(problem.batch) + ": ciphertext " + std::to_string(problem.ciphertext) +
                " is not a valid SEAL ciphertext: a coefficient is not below its prime");
        }
        // The sums as SEAL ciphertexts, exactly as the CPU Accumulator holds them.
        const auto &seal_context = context.seal_context();
        result.sum.resize(static_cast<std::size_t>(cts));
        const std::size_t per = plan.limbs * plan.n();
        detail::parallel_for(static_cast<std::size_t>(cts), threads, [&](std::size_t k) {
            seal::Ciphertext ct(seal::MemoryManager::GetPool());
            ct.resize(seal_context, seal_context.first_parms_id(), 2);
            ct.is_ntt_form() = true;
            ct.scale() = context.scale();
            ct.correction_factor() = 1;
            std::copy(c0.begin() + static_cast<std::ptrdiff_t>(k * per), c0.begin() + static_cast<std::ptrdiff_t>((k + 1) * per), ct.data(0));
            std::copy(c1.begin() + static_cast<std::ptrdiff_t>(k * per), c1.begin() + static_cast<std::ptrdiff_t>((k + 1) * per), ct.data(1));
            result.sum[k] = std::move(ct);
        });
        return result;
    }
} // namespace fhto
