#include "decrypt.h"

#include <cmath>
#include <complex>
#include <vector>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include "cuda/decode.cuh"
#include "bytes.h"
#include "cuda/encrypt.cuh"
#include "dispatch.h"
#include "errors.h"
#include "fft.h"
#include "encoder.h"
#include "gpu_decrypt.h"
#include "ntt.h"
#include "pack.h"
#include "plans.h"
#include "parallel.h"
#include "simd.h"
#include "symmetric.h"

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
#ifdef FHTO_SIMD
        FHTO_SIMD_TARGET bool decrypt_limb_simd(
            std::uint64_t *c0, const std::uint64_t *c1, const std::uint64_t *s, const std::uint64_t *s_quot, std::size_t n,
            std::uint64_t q) noexcept
        {
            const __m256i vq = simd::broadcast(q);
            __mmask8 bad = 0;
            for (std::size_t i = 0; i < n; i += 4)
            {
                const __m256i a = simd::load(c0 + i), b = simd::load(c1 + i);
                bad |= _mm256_cmpge_epu64_mask(a, vq) | _mm256_cmpge_epu64_mask(b, vq);
                const __m256i t = simd::reduce_once(simd::mul_shoup_lazy(b, simd::load(s + i), simd::load(s_quot + i), vq), vq);
                simd::store(c0 + i, simd::reduce_once(_mm256_add_epi64(t, a), vq));
            }
            _mm256_zeroupper();
            return bad == 0;
        }

        /**
        One prime's coefficients as SEAL's decoder forms their doubles (cuda::decode_coefficient
        with one limb), 8 at a time, as complex values with zero imaginary parts: x below ceil(q/2)
        gives 0.0 + x/scale, x above it 0.0 - (q - x)/scale (the same roundings: the conversion
        of a 64-bit integer to double and one product).
        */
        __attribute__((target("avx512f,avx512dq"))) void decode_one_prime_simd(
            const std::uint64_t *x, std::size_t n, std::uint64_t q, std::uint64_t half, double inv_scale,
            cuda::Complex *work) noexcept
        {
            const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));
            const __m512i vhalf = _mm512_set1_epi64(static_cast<long long>(half));
            const __m512d scale = _mm512_set1_pd(inv_scale), zero = _mm512_setzero_pd();
            const __m512i low = _mm512_setr_epi64(0, 8, 1, 8, 2, 8, 3, 8), high = _mm512_setr_epi64(4, 8, 5, 8, 6, 8, 7, 8);
            double *out = reinterpret_cast<double *>(work);
            for (std::size_t i = 0; i < n; i += 8)
            {
                const __m512i v = _mm512_loadu_si512(x + i);
                const __mmask8 upper = _mm512_cmpge_epu64_mask(v, vhalf);
                const __m512i magnitude = _mm512_mask_sub_epi64(v, upper, vq, v);
                __m512d d = _mm512_mul_pd(_mm512_cvtepu64_pd(magnitude), scale);
                d = _mm512_mask_sub_pd(d, upper, zero, d);
                _mm512_storeu_pd(out + 2 * i, _mm512_permutex2var_pd(d, low, zero));
                _mm512_storeu_pd(out + 2 * i + 8, _mm512_permutex2var_pd(d, high, zero));
            }
        }
#endif

        /**
        m = c0 + c1 s modulo q over one limb, into c0 (cuda::decrypt_coefficient, lane by lane).
        Returns false if a word of c0 or c1 is not below q (then m is not computed).
        */
        bool decrypt_limb(std::uint64_t *c0, const std::uint64_t *c1, const std::uint64_t *s, const std::uint64_t *s_quot,
                          std::size_t n, std::uint64_t q) noexcept
        {
#ifdef FHTO_SIMD
            if (simd::available() && n % 4 == 0)
            {
                return decrypt_limb_simd(c0, c1, s, s_quot, n, q);
            }
#endif
            for (std::size_t i = 0; i < n; i++)
            {
                if (c0[i] >= q || c1[i] >= q)
                {
                    return false;
                }
                c0[i] = cuda::decrypt_coefficient(c0[i], c1[i], s[i], s_quot[i], q);
            }
            return true;
        }

        /**
        The engine's own decryption and decoding, straight from a ciphertext's record (csrc/cuda/
        decode.cuh on the CPU, with the engine's NTT, FFT and vector loops): c0 and c1 unpacked
        (or c1 expanded from the seed), m = c0 + c1 s, the inverse NTT, CRT composition, SEAL's
        doubles, SEAL's forward FFT, the slots. The same doubles as SEAL's Decryptor and
        CKKSEncoder (the tests compare them).
        */
        struct EngineDecoder
        {
            const cuda::DecryptPlan &plan;
            cuda::RecordLayout layout;

            /**
            Writes ciphertext k's values (those of out_count that are its own) to out. Returns false,
            writing nothing, if its record is not exactly in the form this context writes or a
            word is not below its prime: the caller then loads it through SEAL, which decides.
            The record's checksum was checked.
            */
            bool decrypt(const Context &context, const BatchView &batch, std::size_t k, double *out,
                         std::size_t out_count) const
            {
                const std::size_t n = plan.n(), limbs = plan.limbs;
                const std::uint8_t *record = batch.ciphertext(k);
                if (std::memcmp(record, plan.prefix.data(), plan.prefix.size()) != 0 ||
                    std::memcmp(record + plan.tail_offset, plan.tail.data(), plan.tail.size()) != 0)
                {
                    return false;
                }
                thread_local std::vector<std::uint64_t> c0, c1;
                thread_local std::vector<cuda::Complex> work;
                c0.resize(limbs * n);
                c1.resize(limbs * n);
                work.resize(n);
                const int polys = plan.seeded ? 1 : 2;
                for (int p = 0; p < polys; p++)
                {
                    std::uint64_t *dst = p == 0 ? c0.data() : c1.data();
                    for (std::size_t l = 0; l < limbs; l++)
                    {
                        const std::uint8_t *limb =
                            record + plan.c0_offset + p * plan.poly_bytes + cuda::limb_offset(layout, n, static_cast<int>(l));
                        if (plan.bits[l])
                        {
                            unpack_limb(limb, n, plan.bits[l], dst + l * n);
                        }
                        else
                        {
                            for (std::size_t i = 0; i < n; i++)
                            {
                                dst[l * n + i] = detail::get_le<std::uint64_t>(limb + 8 * i);
                            }
                        }
                    }
                }
                if (plan.seeded)
                {
                    Seed seed;
                    cuda::read_seed(layout, record, seed.data());
                    expand_uniform(context, seed, c1.data());
                }
                const auto *ntt = context.seal_context().first_context_data()->small_ntt_tables();
                for (std::size_t l = 0; l < limbs; l++)
                {
                    const std::size_t at = l * n;
                    if (!decrypt_limb(c0.data() + at, c1.data() + at, plan.secret.data() + at, plan.secret_quots.data() + at,
                                      n, plan.moduli[l]))
                    {
                        return false;
                    }
                    ntt_inverse(c0.data() + at, ntt[l]);
                }
                const cuda::DecodeTables tables = plan.host_tables();
#ifdef FHTO_SIMD
                static const bool avx512dq = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
                if (limbs == 1 && avx512dq && n % 8 == 0)
                {
                    decode_one_prime_simd(c0.data(), n, plan.moduli[0], plan.half[0], plan.inv_scale, work.data());
                }
                else
#endif
                {
                    for (std::size_t i = 0; i < n; i++)
                    {
                        work[i] = cuda::Complex{ cuda::decode_coefficient(c0.data() + i, n, tables), 0.0 };
                    }
                }
                fft_forward(work.data(), plan.log_n, tables.roots);
                const std::size_t begin = k * n;
                const std::size_t count = std::min<std::size_t>(out_count - begin, n);
                double *dst = out + begin;
                const std::uint64_t *index = plan.index_map.data();
                std::size_t j = 0;
                for (; 2 * j + 1 < count; j++)
                {
                    const cuda::Complex v = work[index[j]];
                    dst[2 * j] = v.re;
                    dst[2 * j + 1] = v.im;
                }
                if (count % 2)
                {
                    dst[count - 1] = work[index[count / 2]].re;
                }
                return true;
            }
        };

        /** The engine's decoder for a batch, or none (FHTO_DECRYPT=seal, or a layout it does not know). */
        std::optional<EngineDecoder> engine_decoder(const Context &context, const BatchView &batch)
        {
            static const bool seal_forced = [] {
                return detail::forced_path("FHTO_DECRYPT") == "seal";
            }();
            if (seal_forced)
            {
                return std::nullopt;
            }
            try
            {
                const cuda::DecryptPlan &plan = context.plans().decrypt(context, batch.header.mode, batch.header.packing);
                return EngineDecoder{ plan, plan.layout() };
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
                const std::size_t begin = k * per_ct;
                std::size_t n = std::min<std::size_t>(out_count - begin, per_ct);
                if (!(engine && engine->decrypt(context, batch, k, out, out_count)))
                {
                    seal::Ciphertext ct(pool);
                    load_ciphertext(context, batch, k, ct);
                    seal::Plaintext plain(pool);
                    decryptor.decrypt(ct, plain);
                    encoder.decode(plain, slot_values, pool);
                    n = write_slot_values(slot_values, k, per_ct, out, out_count);
                }
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
