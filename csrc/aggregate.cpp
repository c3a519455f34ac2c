#include "aggregate.h"

#include <atomic>
#include <memory>
#include "bytes.h"
#include "checksum.h"
#include "errors.h"
#include "plans.h"
#include "parallel.h"
#include "symmetric.h"

namespace fhto
{
    std::size_t sum_batch_bytes(const Context &context, std::size_t ciphertexts, Packing packing)
    {
        const std::size_t ct_bytes = context.ciphertext_bytes(Mode::sum, packing);
        if (ct_bytes == 0)
        {
            throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
        }
        return batch_bytes(ciphertexts, ct_bytes);
    }

    void write_sum_batch(
        const Context &context, const std::vector<seal::Ciphertext> &sum, std::uint64_t value_count,
        std::uint32_t contributions, std::uint32_t party_budget, Packing packing, int threads, std::uint8_t *out)
    {
        BatchHeader h;
        h.mode = Mode::sum;
        h.packing = packing;
        h.fingerprint = context.fingerprint();
        h.value_count = value_count;
        h.ciphertext_count = sum.size();
        h.ciphertext_bytes = context.ciphertext_bytes(Mode::sum, packing);
        h.contributions = contributions;
        h.party_budget = party_budget;
        h.batch_id = random_batch_id();
        const BatchWriter writer(context, out, h);
        detail::parallel_for(sum.size(), threads == 0 ? detail::default_threads() : threads,
                             [&](std::size_t k) { writer.store(k, sum[k]); });
        writer.finish();
    }

    Accumulator::Accumulator(Context context, int threads) : context_(std::move(context)), threads_(threads)
    {
        if (threads < 0)
        {
            throw ParameterError("threads must be positive (or 0 for all cores); got " + std::to_string(threads));
        }
        if (threads_ == 0)
        {
            threads_ = detail::default_threads();
        }
    }

    void Accumulator::add(const std::uint8_t *data, std::size_t size)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const BatchView batch = parse_batch(context_, data, size);
        const BatchHeader &h = batch.header;
        const bool first = sum_.empty();
        if (!first && h.value_count != value_count_)
        {
            throw LengthMismatchError(
                "batch holds " + std::to_string(h.value_count) + " values but the running sum holds " +
                std::to_string(value_count_));
        }
        const std::uint64_t total = static_cast<std::uint64_t>(contributions_) + h.contributions;
        const std::uint32_t budget = first ? h.party_budget : std::min(party_budget_, h.party_budget);
        if (total > budget)
        {
            throw ValueRangeError(
                "adding this batch makes " + std::to_string(total) + " contributions, but the values were range-checked for a sum of at most " +
                std::to_string(budget) + "; encrypt with a larger parties= to sum more");
        }
        const std::size_t count = static_cast<std::size_t>(h.ciphertext_count);

        // Phase 1: every checksum, before the running sum is touched.
        detail::parallel_for(count, threads_, [&](std::size_t k) { check_ciphertext(batch, k); });

        // Phase 2: load (expanding seeds) and add in place. A ciphertext SEAL refuses despite a
        // good checksum (crafted bytes) makes us subtract what was already added: modular
        // arithmetic undoes it exactly.
        std::vector<seal::Ciphertext> fresh;
        if (first)
        {
            fresh.resize(count);
        }
        std::unique_ptr<std::atomic<bool>[]> added(new std::atomic<bool>[count]);
        for (std::size_t k = 0; k < count; k++)
        {
            added[k] = false;
        }
        const auto &evaluator = context_.evaluator();
        // Secret-key batches are added straight from their records where this context's layout allows.
        const cuda::SumPlan *plan = nullptr;
        if (!first && h.mode == Mode::symmetric)
        {
            try
            {
                plan = &context_.plans().sum(context_, h.packing);
            }
            catch (const ParameterError &)
            {
            }
        }
        try
        {
            detail::parallel_for(count, threads_, [&](std::size_t k) {
                auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
                if (first)
                {
                    // The sum outlives this thread: give it the global pool.
                    fresh[k] = seal::Ciphertext(seal::MemoryManager::GetPool());
                    load_ciphertext(context_, batch, k, fresh[k]);
                }
                else
                {
                    if (plan && add_seeded_record(context_, *plan, batch.ciphertext(k), sum_[k]))
                    {
                        added[k] = true;
                        return;
                    }
                    std::size_t size = 0;
                    const std::uint8_t *data = seal_bytes(context_, batch, k, size);
                    if (!(h.mode == Mode::symmetric && try_add_seeded(context_, data, size, sum_[k])))
                    {
                        seal::Ciphertext ct(pool);
                        load_ciphertext(context_, batch, k, ct);
                        evaluator.add_inplace(sum_[k], ct);
                    }
                    added[k] = true;
                }
            });
        }
        catch (...)
        {
            if (!first)
            {
                for (std::size_t k = 0; k < count; k++)
                {
                    if (added[k])
                    {
                        seal::Ciphertext ct;
                        load_ciphertext(context_, batch, k, ct);
                        evaluator.sub_inplace(sum_[k], ct);
                    }
                }
            }
            throw;
        }
        if (first)
        {
            sum_ = std::move(fresh);
            value_count_ = h.value_count;
        }
        contributions_ = static_cast<std::uint32_t>(total);
        party_budget_ = budget;
    }

    std::size_t Accumulator::serialized_size(Packing packing) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return serialized_size_locked(packing);
    }

    std::size_t Accumulator::serialized_size_locked(Packing packing) const
    {
        if (sum_.empty())
        {
            throw ParameterError("the accumulator is empty: add at least one batch first");
        }
        return sum_batch_bytes(context_, sum_.size(), packing);
    }

    void Accumulator::serialize_into(std::uint8_t *out, std::size_t out_size, Packing packing) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::size_t expected = serialized_size_locked(packing);
        if (out_size != expected)
        {
            throw ParameterError(
                "output buffer is " + std::to_string(out_size) + " bytes; the sum needs " + std::to_string(expected));
        }
        write_sum_batch(context_, sum_, value_count_, contributions_, party_budget_, packing, threads_, out);
    }

    void Accumulator::reset()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        sum_.clear();
        value_count_ = 0;
        contributions_ = 0;
        party_budget_ = 0;
    }
} // namespace fhto
