#include "encrypt.h"
#include "multiparty.h"

#include <cmath>
#include <complex>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>
#include "bytes.h"
#include "checksum.h"
#include "encoder.h"
#include "errors.h"
#include "gpu_encrypt.h"
#include "ntt.h"
#include "pack.h"
#include "plans.h"
#include "parallel.h"
#include "prng.h"
#include "simd.h"
#include "symmetric.h"
#include "wire.h"

namespace fhto
{
    BatchHeader encryption_header(const Context &context, std::size_t count, const EncryptOptions &options)
    {
        BatchHeader h;
        h.mode = options.mode;
        h.packing = options.packing;
        h.fingerprint = context.fingerprint();
        h.value_count = count;
        h.ciphertext_count = ciphertexts_for(context, count);
        h.ciphertext_bytes = context.ciphertext_bytes(options.mode, options.packing);
        h.contributions = 1;
        h.party_budget = options.parties;
        h.batch_id = options.seed ? seeded_batch_id(*options.seed) : random_batch_id();
        return h;
    }

    std::size_t encrypted_size(const Context &context, std::size_t value_count, Mode mode, Packing packing)
    {
        const std::size_t ct_bytes = context.ciphertext_bytes(mode, packing);
        if (ct_bytes == 0)
        {
            throw ParameterError("this SEAL build's ciphertext layout cannot be bit-packed; use packing 'none'");
        }
        return batch_bytes(ciphertexts_for(context, value_count), ct_bytes);
    }

    namespace
    {
        int resolve_threads(int threads)
        {
            if (threads < 0)
            {
                throw ParameterError("threads must be positive (or 0 for all cores); got " + std::to_string(threads));
            }
            return threads == 0 ? detail::default_threads() : threads;
        }

        struct ScanResult
        {
            std::size_t first_bad = SIZE_MAX;
            double max_abs = 0;
            std::size_t max_index = 0;
        };

        constexpr std::size_t kScanBlock = 1 << 16;

        template <typename T>
        ScanResult scan(const T *values, std::size_t count, int threads)
        {
            const std::size_t blocks = count / kScanBlock + (count % kScanBlock != 0);
            std::vector<ScanResult> partial(blocks);
            detail::parallel_for(blocks, threads, [&](std::size_t b) {
                ScanResult r;
                const std::size_t begin = b * kScanBlock;
                const std::size_t end = std::min(count, begin + kScanBlock);
                for (std::size_t i = begin; i < end; i++)
                {
                    const double a = std::fabs(static_cast<double>(values[i]));
                    if (a > r.max_abs)
                    {
                        r.max_abs = a;
                        r.max_index = i;
                    }
                    // NaN fails every comparison, infinity is caught by its size.
                    if (!(a <= 1.7976931348623157e308))
                    {
                        r.first_bad = i;
                        break;
                    }
                }
                partial[b] = r;
            });
            ScanResult total;
            for (const auto &r : partial)
            {
                if (r.first_bad != SIZE_MAX)
                {
                    total.first_bad = r.first_bad;
                    break;
                }
                if (r.max_abs > total.max_abs)
                {
                    total.max_abs = r.max_abs;
                    total.max_index = r.max_index;
                }
            }
            return total;
        }
    } // namespace

    namespace
    {
#ifdef FHTO_SIMD
        FHTO_SIMD_TARGET void c0_limb_simd(
            std::uint64_t *m, const std::uint64_t *a, const std::uint64_t *s, const std::uint64_t *s_quot,
            const std::uint64_t *e, std::size_t n, std::uint64_t q) noexcept
        {
            const __m256i vq = simd::broadcast(q);
            for (std::size_t i = 0; i < n; i += 4)
            {
                __m256i t = simd::reduce_once(
                    simd::mul_shoup_lazy(simd::load(a + i), simd::load(s + i), simd::load(s_quot + i), vq), vq);
                t = simd::reduce_once(_mm256_add_epi64(t, simd::load(e + i)), vq);
                t = simd::reduce_once(_mm256_sub_epi64(vq, t), vq); // q - t, and q itself to 0
                simd::store(m + i, simd::reduce_once(_mm256_add_epi64(t, simd::load(m + i)), vq));
            }
            _mm256_zeroupper();
        }
#endif

        /** c0 = -(a s + e) + m modulo q over one limb, into m (cuda::c0_coefficient, lane by lane). */
        void c0_limb(std::uint64_t *m, const std::uint64_t *a, const std::uint64_t *s, const std::uint64_t *s_quot,
                     const std::uint64_t *e, std::size_t n, std::uint64_t q) noexcept
        {
#ifdef FHTO_SIMD
            if (simd::available() && n % 4 == 0)
            {
                c0_limb_simd(m, a, s, s_quot, e, n, q);
                return;
            }
#endif
            for (std::size_t i = 0; i < n; i++)
            {
                m[i] = cuda::c0_coefficient(m[i], a[i], s[i], s_quot[i], e[i], q);
            }
        }

        /**
        The engine's seeded secret-key encryption of one ciphertext straight into its record: the
        engine's encoder, the bootstrap stream's public seed and noise, SEAL's expansion of `a`,
        the engine's NTT, c0 = -(a s + e) + m in one pass, and c0 packed (or not) between the
        record template's fixed bytes, with the seed. With SEAL's noise source these are the bytes
        of encrypt_symmetric_seeded followed by BatchWriter::store (the tests compare them).
        */
        class RecordEncryptor
        {
        public:
            RecordEncryptor(const Context &context, Packing packing)
                : context_(context), tables_(context.plans().encoder(context)),
                  plan_(context.plans().encrypt(context, packing)), layout_(plan_.layout())
            {}

            template <typename T>
            void encrypt(const T *values, std::size_t count, std::size_t k, double weight, const Seed &bootstrap,
                         NoiseSource source, std::uint8_t *record) const
            {
                const std::size_t n = plan_.n(), limbs = plan_.limbs;
                thread_local std::vector<cuda::Complex> work;
                thread_local std::vector<std::uint64_t> m, a, e;
                thread_local std::vector<std::uint8_t> noise;
                work.resize(n);
                m.resize(limbs * n);
                a.resize(limbs * n);
                e.resize(limbs * n);
                noise.resize(6 * n);
                encode_ciphertext(context_, tables_, values, count, k, weight, m.data(), work.data());

                const Seed public_seed = draw_bootstrap(bootstrap, source, noise.data(), 6 * n);
                expand_uniform(context_, public_seed, a.data());
                noise_residues(noise.data(), n, plan_.primes, e.data());

                const auto *ntt = context_.seal_context().first_context_data()->small_ntt_tables();
                const std::uint8_t *t = plan_.record_template.data();
                std::memcpy(record, t, layout_.c0_offset);
                std::uint8_t *limb = record + layout_.c0_offset;
                for (std::size_t l = 0; l < limbs; l++)
                {
                    const std::size_t at = l * n;
                    ntt_forward(e.data() + at, ntt[l]);
                    c0_limb(m.data() + at, a.data() + at, plan_.secret.data() + at, plan_.secret_quots.data() + at,
                            e.data() + at, n, plan_.primes[l].q);
                    const int bits = layout_.bits[l];
                    if (bits)
                    {
                        pack_limb(m.data() + at, n, bits, limb);
                        limb += n * static_cast<std::size_t>(bits) / 8;
                    }
                    else
                    {
                        for (std::size_t i = 0; i < n; i++)
                        {
                            detail::put_le<std::uint64_t>(limb + 8 * i, m[at + i]);
                        }
                        limb += 8 * n;
                    }
                }
                const std::size_t tail = layout_.c0_offset + layout_.c0_bytes;
                std::memcpy(record + tail, t + tail, layout_.seed_offset - tail);
                cuda::write_seed(layout_, public_seed.data(), record);
                const std::size_t rest = layout_.seed_offset + 64;
                std::memcpy(record + rest, t + rest, layout_.record_bytes - rest);
            }

        private:
            const Context &context_;
            const EncoderTables &tables_;
            const cuda::EncryptPlan &plan_;
            cuda::RecordLayout layout_;
        };
    } // namespace

    void check_options(const Context &context, const EncryptOptions &options)
    {
        if (options.mode != Mode::symmetric && options.mode != Mode::public_key)
        {
            throw ParameterError("mode must be symmetric or public_key");
        }
        if (!std::isfinite(options.weight) || options.weight == 0)
        {
            throw ParameterError("weight must be finite and non-zero");
        }
        if (options.parties == 0)
        {
            throw ParameterError("parties must be at least 1");
        }
        if (options.mode == Mode::symmetric && !context.has_secret_key())
        {
            throw SecretKeyRequiredError(
                "symmetric encryption needs the secret key; a public context can only encrypt with mode='public_key'");
        }
    }

    void check_scan(
        const Context &context, const EncryptOptions &options, std::size_t first_bad, double bad_value, double max_abs,
        std::size_t max_index)
    {
        if (first_bad != SIZE_MAX)
        {
            throw ValueRangeError(
                "values must be finite: index " + std::to_string(first_bad) + " is " +
                (std::isnan(bad_value) ? "nan" : (bad_value > 0 ? "inf" : "-inf")));
        }
        const double limit = context.max_abs_value(options.parties, options.mode);
        const double worst = max_abs * std::fabs(options.weight);
        if (worst > limit)
        {
            std::ostringstream s;
            s.precision(6);
            s << "values too large for the parameters: |weight * value| = " << worst << " at index " << max_index
              << " exceeds the limit " << limit << " for a sum of " << options.parties << " contribution(s) ("
              << describe(context.params()) << ", data modulus 2^" << context.data_modulus_bits()
              << "); use a smaller weight or fewer parties, or parameters with a smaller scale or a larger modulus";
            throw ValueRangeError(s.str());
        }
    }

    template <typename T>
    void check_values(const Context &context, const T *values, std::size_t count, const EncryptOptions &options)
    {
        check_options(context, options);
        const ScanResult r = scan(values, count, resolve_threads(options.threads));
        check_scan(
            context, options, r.first_bad, r.first_bad != SIZE_MAX ? static_cast<double>(values[r.first_bad]) : 0.0,
            r.max_abs, r.max_index);
    }

    template <typename T>
    void encrypt_into(
        const Context &context, const T *values, std::size_t count, const EncryptOptions &options, std::uint8_t *out,
        std::size_t out_size)
    {
        if (count == 0)
        {
            throw ParameterError("cannot encrypt an empty update");
        }
        check_options(context, options);
        const std::size_t expected = encrypted_size(context, count, options.mode, options.packing);
        if (out_size != expected)
        {
            throw ParameterError(
                "output buffer is " + std::to_string(out_size) + " bytes; the batch needs " + std::to_string(expected));
        }
        const int threads = resolve_threads(options.threads);
        check_values(context, values, count, options);

        const BatchHeader h = encryption_header(context, count, options);

        const std::size_t per_ct = context.values_per_ciphertext();
        const std::size_t slots = per_ct / 2;
        const double scale = context.scale();
        const double weight = options.weight;
        const BatchWriter writer(context, out, h);
        const auto &encoder = context.encoder();
        const auto &encryptor = context.encryptor();
        const bool symmetric = options.mode == Mode::symmetric;

        // The engine's encoder (csrc/encoder.h: SEAL's algorithm and doubles, the engine's NTT), or
        // SEAL's own with FHTO_ENCODE=seal; the tests compare the two byte for byte.
        // The context keeps the tables (csrc/plans.h), so even one ciphertext takes the engine's path.
        const EncoderTables *tables = engine_encoder_enabled() ? &context.plans().encoder(context) : nullptr;
        const auto &seal_context = context.seal_context();
        const std::size_t limbs = seal_context.first_context_data()->parms().coeff_modulus().size();

        std::optional<RecordEncryptor> engine;
        if (tables && symmetric)
        {
            try
            {
                engine.emplace(context, options.packing);
            }
            catch (const ParameterError &)
            {
                // A record layout the engine does not write: SEAL's serialization below.
            }
        }
        if (engine)
        {
            const NoiseSource source = noise_source(options.seed.has_value());
            detail::parallel_for(static_cast<std::size_t>(h.ciphertext_count), threads, [&](std::size_t k) {
                const Seed bootstrap = options.seed ? derive_seed(SeedPurpose::encrypt, *options.seed, k) : random_seed();
                engine->encrypt(values, count, k, weight, bootstrap, source, writer.record(k));
                writer.check(k);
            });
            writer.finish();
            return;
        }

        detail::parallel_for(static_cast<std::size_t>(h.ciphertext_count), threads, [&](std::size_t k) {
            auto pool = seal::MemoryManager::GetPool(seal::mm_prof_opt::mm_force_thread_local);
            seal::Plaintext plain(pool);
            if (tables)
            {
                thread_local std::vector<cuda::Complex> work;
                work.resize(per_ct);
                plain.parms_id() = seal::parms_id_zero;
                plain.resize(per_ct * limbs);
                encode_ciphertext(context, *tables, values, count, k, weight, plain.data(), work.data());
                plain.parms_id() = seal_context.first_parms_id();
                plain.scale() = scale;
            }
            else
            {
                thread_local std::vector<std::complex<double>> slot_values;
                slot_values.assign(slots, std::complex<double>(0.0, 0.0));
                const std::size_t begin = k * per_ct;
                const std::size_t end = std::min(count, begin + per_ct);
                const T *src = values + begin;
                const std::size_t n = end - begin;
                for (std::size_t j = 0; 2 * j + 1 < n; j++)
                {
                    slot_values[j] = { weight * static_cast<double>(src[2 * j]), weight * static_cast<double>(src[2 * j + 1]) };
                }
                if (n % 2)
                {
                    slot_values[n / 2] = { weight * static_cast<double>(src[n - 1]), 0.0 };
                }
                try
                {
                    encoder.encode(slot_values, scale, plain, pool);
                }
                catch (const std::invalid_argument &e)
                {
                    // Unreachable after check_values (max_abs_value keeps every encoding inside
                    // SEAL's limit); kept so that no SEAL refusal ever escapes untyped.
                    throw ValueRangeError(
                        "ciphertext " + std::to_string(k) + ": SEAL's encoder refused the values (" + e.what() + ")");
                }
            }
            if (symmetric)
            {
                seal::Ciphertext ct(pool);
                const Seed bootstrap = options.seed ? derive_seed(SeedPurpose::encrypt, *options.seed, k) : random_seed();
                encrypt_symmetric_seeded(context, plain, bootstrap, ct, noise_source(options.seed.has_value()));
                writer.store(k, ct);
            }
            else if (options.seed)
            {
                seal::Ciphertext ct(pool);
                encrypt_asymmetric_seeded(context, plain, derive_seed(SeedPurpose::encrypt, *options.seed, k), ct);
                writer.store(k, ct);
            }
            else
            {
                writer.store(k, encryptor.encrypt(plain, pool));
            }
        });
        writer.finish();
    }

    template void check_values<float>(const Context &, const float *, std::size_t, const EncryptOptions &);
    template void check_values<double>(const Context &, const double *, std::size_t, const EncryptOptions &);
    template void encrypt_into<float>(
        const Context &, const float *, std::size_t, const EncryptOptions &, std::uint8_t *, std::size_t);
    template void encrypt_into<double>(
        const Context &, const double *, std::size_t, const EncryptOptions &, std::uint8_t *, std::size_t);
} // namespace fhto
