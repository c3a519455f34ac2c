#include "decrypt.h"

#include <cmath>
#include <complex>
#include <vector>
#include <cstdlib>
#include <optional>
#include <string>
#include "cuda/decode.cuh"
#include "errors.h"
#include "fft.h"
#include "encoder.h"
#include "gpu_decrypt.h"
#include "ntt.h"
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

    namespace
    {
        /**
        The engine's own decryption and decoding of one loaded ciphertext (csrc/cuda/decode.cuh on
        the CPU, with the engine's inverse NTT): m = c0 + c1 s, inverse NTT, CRT composition,
        SEAL's doubles, SEAL's forward FFT, the slots. The same doubles as SEAL's Decryptor and
        CKKSEncoder (the tests compare them).
        */
        struct EngineDecoder
        {
            cuda::DecryptPlan plan;

            void decode(const Context &context, const seal::Ciphertext &ct, std::vector<std::complex<double>> &slots) const
            {
                const std::size_t n = plan.n(), limbs = plan.limbs;
                thread_local std::vector<std::uint64_t> m;
                thread_local std::vector<cuda::Complex> work;
                m.resize(limbs * n);
                work.resize(n);
                const cuda::DecodeTables tables = plan.host_tables();
                const auto *ntt = context.seal_context().first_context_data()->small_ntt_tables();
                const std::uint64_t *c0 = ct.data(0), *c1 = ct.data(1);
                for (std::size_t l = 0; l < limbs; l++)
                {
                    const std::uint64_t q = plan.moduli[l];
                    for (std::size_t i = l * n; i < (l + 1) * n; i++)
                    {
                        m[i] = cuda::decrypt_coefficient(c0[i], c1[i], plan.secret[i], plan.secret_quots[i], q);
                    }
                    ntt_inverse(m.data() + l * n, ntt[l]);
                }
                for (std::size_t i = 0; i < n; i++)
                {
                    work[i] = cuda::Complex{ cuda::decode_coefficient(m.data() + i, n, tables), 0.0 };
                }
                fft_forward(work.data(), plan.log_n, tables.roots);
                slots.resize(n / 2);
                for (std::size_t j = 0; j < n / 2; j++)
                {
                    const cuda::Complex v = work[plan.index_map[j]];
                    slots[j] = { v.re, v.im };
                }
            }
        };

        /** The engine's decoder for a batch, or none (FHTO_DECRYPT=seal, or a layout it does not know). */
        std::optional<EngineDecoder> engine_decoder(const Context &context, const BatchView &batch)
        {
            const char *forced = std::getenv("FHTO_DECRYPT");
            if ((forced && std::string(forced) == "seal") || batch.header.ciphertext_count < kEngineMinCiphertexts)
            {
                return std::nullopt;
            }
            try
            {
                return EngineDecoder{ make_decrypt_plan(context, batch.header.mode, batch.header.packing) };
            }
            catch (const ParameterError &)
            {
                return std::nullopt;
            }
        }
    } // namespace

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
        const std::optional<EngineDecoder> engine = engine_decoder(context, batch);
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
                if (engine)
                {
                    engine->decode(context, ct, slot_values);
                }
                else
                {
                    seal::Plaintext plain(pool);
                    decryptor.decrypt(ct, plain);
                    encoder.decode(plain, slot_values, pool);
                }
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
