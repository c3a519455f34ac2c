#include "decrypt.h"

#include <cmath>
#include <complex>
#include <vector>
#include "errors.h"
#include "parallel.h"

namespace fhto
{
    std::size_t write_slot_values(
        const std::vector<std::complex<double>> &slots, std::size_t k, std::size_t values_per_ciphertext, double *out,
        std::size_t out_count) noexcept
    {
        const std::size_t begin = k * values_per_ciphertext;
        const std::size_t n = std::min<std::size_t>(out_count - begin, values_per_ciphertext);
        double *dst = out + begin;
        for (std::size_t j = 0; 2 * j + 1 < n; j++)
        {
            dst[2 * j] = slots[j].real();
            dst[2 * j + 1] = slots[j].imag();
        }
        if (n % 2)
        {
            dst[n - 1] = slots[n / 2].real();
        }
        return n;
    }

    void decrypt_into(const Context &context, const BatchView &batch, double *out, std::size_t out_count, int threads)
    {
        auto &decryptor = context.decryptor();
        if (out_count != batch.header.value_count)
        {
            throw ParameterError(
                "output holds " + std::to_string(out_count) + " values; the batch has " +
                std::to_string(batch.header.value_count));
        }
        if (threads < 0)
        {
            throw ParameterError("threads must be positive (or 0 for all cores); got " + std::to_string(threads));
        }
        const std::size_t per_ct = context.values_per_ciphertext();
        const auto &encoder = context.encoder();
        // What a batch can hold: each of its P contributions was range-checked for its party
        // budget B, so no value of the sum exceeds P * max_abs_value(B) plus the error bound. A
        // value beyond that is not a sum of checked contributions (a ciphertext under a foreign
        // key with a copied fingerprint decodes to noise of the size of q / scale).
        const std::uint32_t parties = std::max<std::uint32_t>(batch.header.contributions, 1);
        const std::uint32_t budget = std::max<std::uint32_t>(batch.header.party_budget, 1);
        const double limit = parties * context.max_abs_value(budget, Mode::symmetric) +
                             context.error_bound(parties, Mode::public_key);
        detail::parallel_for(
            static_cast<std::size_t>(batch.header.ciphertext_count), threads == 0 ? detail::default_threads() : threads,
            [&](std::size_t k) {
                thread_local std::vector<std::complex<double>> slot_values;
                auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
                check_ciphertext(batch, k);
                seal::Ciphertext ct(pool);
                load_ciphertext(context, batch, k, ct);
                seal::Plaintext plain(pool);
                decryptor.decrypt(ct, plain);
                encoder.decode(plain, slot_values, pool);
                const std::size_t begin = k * per_ct;
                const std::size_t n = write_slot_values(slot_values, k, per_ct, out, out_count);
                const double *dst = out + begin;
                for (std::size_t j = 0; j < n; j++)
                {
                    if (!(std::fabs(dst[j]) <= limit))
                    {
                        throw ValueRangeError(
                            "the decrypted batch is implausible: value " + std::to_string(begin + j) + " has magnitude " +
                            std::to_string(std::fabs(dst[j])) + ", beyond the " + std::to_string(limit) +
                            " a sum of " + std::to_string(parties) +
                            " range-checked contribution(s) can reach (a ciphertext under another key, or altered)");
                    }
                }
            });
    }
} // namespace fhto
